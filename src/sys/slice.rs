//! NULL-safe views of C buffers, and the `(buf, *len, size)` output convention of
//! provider-signature(7): a NULL `buf` asks only for the size.

use crate::error::{Error, Result};

/// Views `len` bytes at `ptr`; `(NULL, _)` and `(_, 0)` give an empty slice.
///
/// # Safety
/// A non-NULL `ptr` is readable for `len` bytes for the lifetime `'a`.
pub(crate) unsafe fn from_raw<'a>(ptr: *const u8, len: usize) -> &'a [u8] {
    if ptr.is_null() || len == 0 {
        &[]
    } else {
        #[allow(clippy::disallowed_methods)] // this is the one sanctioned place
        // SAFETY: non-NULL and readable for len bytes by the caller's contract.
        unsafe {
            std::slice::from_raw_parts(ptr, len)
        }
    }
}

/// An output buffer from C: the signature buffer of `sign`/`digest_sign_final`.
pub(crate) struct OutBuf<'a> {
    buf: Option<&'a mut [u8]>,
    len_out: &'a mut usize,
}

impl<'a> OutBuf<'a> {
    /// # Safety
    /// `buf` is NULL or writable for `size` bytes; `len_out` is NULL or writable, for `'a`.
    pub(crate) unsafe fn new(buf: *mut u8, size: usize, len_out: *mut usize) -> Result<Self> {
        // SAFETY: a non-NULL len_out is writable by the caller's contract.
        let len_out = unsafe { len_out.as_mut() }.ok_or(Error::NullArg("signature length"))?;
        let buf = if buf.is_null() {
            None
        } else {
            #[allow(clippy::disallowed_methods)] // this is the one sanctioned place
            // SAFETY: non-NULL and writable for size bytes by the caller's contract.
            let out = unsafe { std::slice::from_raw_parts_mut(buf, size) };
            Some(out)
        };
        Ok(OutBuf { buf, len_out })
    }

    /// True when the caller only asks for the maximum output size.
    pub(crate) fn is_size_query(&self) -> bool {
        self.buf.is_none()
    }

    /// Answers a size query.
    pub(crate) fn set_size(self, size: usize) {
        *self.len_out = size;
    }

    /// Writable space (empty for a size query).
    pub(crate) fn capacity(&self) -> usize {
        self.buf.as_ref().map_or(0, |b| b.len())
    }

    /// Copies `data` out and sets the length; errors if the buffer is too small.
    pub(crate) fn write(self, data: &[u8]) -> Result<()> {
        let buf = self.buf.ok_or(Error::NullArg("signature buffer"))?;
        let given = buf.len();
        let dest = buf.get_mut(..data.len()).ok_or_else(|| {
            Error::BadParam(format!(
                "signature buffer too small: {given} bytes given, {} needed",
                data.len()
            ))
        })?;
        dest.copy_from_slice(data);
        *self.len_out = data.len();
        Ok(())
    }
}
