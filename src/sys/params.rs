//! Safe access to `OSSL_PARAM` arrays (OSSL_PARAM(3)): reading the arrays OpenSSL passes to
//! `set_params`/`init`, answering the arrays it passes to `get_params`, and building the arrays
//! the provider passes to OpenSSL callbacks (store `object_cb`, keymgmt `export`).
//!
//! Reading and answering go through libcrypto's own `OSSL_PARAM_get_*`/`OSSL_PARAM_set_*`, which
//! convert between integer widths and handle the size query (`data == NULL`) correctly.

use std::ffi::{CStr, c_char, c_int, c_uint, c_void};
use std::marker::PhantomData;
use std::ptr;

use super::abi::{self, OSSL_PARAM};
use crate::error::{Error, Result};

/// A read-only parameter array from OpenSSL (may be NULL = no parameters).
#[derive(Clone, Copy)]
pub(crate) struct Params<'a> {
    ptr: *const OSSL_PARAM,
    _life: PhantomData<&'a OSSL_PARAM>,
}

/// One parameter of a [`Params`] array.
#[derive(Clone, Copy)]
pub(crate) struct Param<'a> {
    raw: &'a OSSL_PARAM,
}

impl<'a> Params<'a> {
    /// # Safety
    /// `ptr` is NULL or points to an `OSSL_PARAM` array terminated by an entry with a NULL key,
    /// valid and unchanged for `'a`.
    pub(crate) unsafe fn new(ptr: *const OSSL_PARAM) -> Self {
        Params {
            ptr,
            _life: PhantomData,
        }
    }

    /// The array as OpenSSL passed it (NULL or terminated), to hand on to libcrypto.
    pub(crate) fn as_ptr(&self) -> *const OSSL_PARAM {
        self.ptr
    }

    /// Finds the parameter called `key`.
    pub(crate) fn find(&self, key: &CStr) -> Option<Param<'a>> {
        if self.ptr.is_null() {
            return None;
        }
        // SAFETY: self.ptr is a terminated array valid for 'a (constructor contract); locate
        // only reads it and returns NULL or a pointer into it.
        let found = unsafe { abi::OSSL_PARAM_locate_const(self.ptr, key.as_ptr()) };
        // SAFETY: NULL or an element of the array, valid for 'a.
        unsafe { found.as_ref() }.map(|raw| Param { raw })
    }
}

impl<'a> Param<'a> {
    fn name(&self) -> String {
        if self.raw.key.is_null() {
            return String::from("?");
        }
        // SAFETY: a non-NULL key of an OSSL_PARAM is a NUL-terminated string.
        unsafe { CStr::from_ptr(self.raw.key) }
            .to_string_lossy()
            .into_owned()
    }

    fn wrong_type(&self, wanted: &str) -> Error {
        Error::BadParam(format!("parameter '{}' must be {wanted}", self.name()))
    }

    /// True for UTF-8 string parameters.
    pub(crate) fn is_utf8(&self) -> bool {
        self.raw.data_type == abi::OSSL_PARAM_UTF8_STRING as c_uint
            || self.raw.data_type == abi::OSSL_PARAM_UTF8_PTR as c_uint
    }

    /// The value as UTF-8 text.
    pub(crate) fn utf8(&self) -> Result<&'a str> {
        let mut out: *const c_char = ptr::null();
        // SAFETY: raw is a valid OSSL_PARAM; OpenSSL writes a pointer into its data (valid for 'a).
        let ok = unsafe { abi::OSSL_PARAM_get_utf8_string_ptr(self.raw, &mut out) };
        if ok != 1 || out.is_null() {
            return Err(self.wrong_type("a UTF-8 string"));
        }
        // SAFETY: OSSL_PARAM_get_utf8_string_ptr returns a NUL-terminated string in the param.
        unsafe { CStr::from_ptr(out) }
            .to_str()
            .map_err(|_| self.wrong_type("valid UTF-8"))
    }

    /// The value as bytes.
    pub(crate) fn octets(&self) -> Result<&'a [u8]> {
        let mut out: *const c_void = ptr::null();
        let mut len = 0usize;
        // SAFETY: raw is a valid OSSL_PARAM; OpenSSL writes a pointer/length into its data.
        let ok = unsafe { abi::OSSL_PARAM_get_octet_string_ptr(self.raw, &mut out, &mut len) };
        if ok != 1 {
            return Err(self.wrong_type("an octet string"));
        }
        // SAFETY: out/len describe the param's own data, valid for 'a.
        Ok(unsafe { super::slice::from_raw(out.cast(), len) })
    }

    /// The value as a C `int` (with libcrypto's width conversion).
    pub(crate) fn int(&self) -> Result<i32> {
        let mut out: c_int = 0;
        // SAFETY: raw is a valid OSSL_PARAM; `out` is a valid int to write.
        if unsafe { abi::OSSL_PARAM_get_int(self.raw, &mut out) } == 1 {
            Ok(out)
        } else {
            Err(self.wrong_type("an integer"))
        }
    }

    /// The value as a `size_t` (with libcrypto's width conversion).
    pub(crate) fn size(&self) -> Result<usize> {
        let mut out: usize = 0;
        // SAFETY: raw is a valid OSSL_PARAM; `out` is a valid size_t to write.
        if unsafe { abi::OSSL_PARAM_get_size_t(self.raw, &mut out) } == 1 {
            Ok(out)
        } else {
            Err(self.wrong_type("a non-negative integer"))
        }
    }

    /// The value as a C `unsigned int` (with libcrypto's width conversion).
    pub(crate) fn uint(&self) -> Result<u32> {
        let mut out: c_uint = 0;
        // SAFETY: raw is a valid OSSL_PARAM; `out` is a valid unsigned int to write.
        if unsafe { abi::OSSL_PARAM_get_uint(self.raw, &mut out) } == 1 {
            Ok(out)
        } else {
            Err(self.wrong_type("a non-negative integer"))
        }
    }

    /// The value as an unsigned big number, big-endian.
    pub(crate) fn big_number(&self) -> Result<Vec<u8>> {
        let mut bn: *mut openssl_sys::BIGNUM = ptr::null_mut();
        // SAFETY: raw is a valid OSSL_PARAM; OpenSSL allocates *bn on success.
        if unsafe { openssl_sys::OSSL_PARAM_get_BN(self.raw, &mut bn) } != 1 || bn.is_null() {
            return Err(self.wrong_type("an unsigned integer"));
        }
        // SAFETY: bn was just allocated for us by OSSL_PARAM_get_BN.
        Ok(unsafe { super::libcrypto::BigNum::from_owned(bn) }.to_be())
    }
}

/// A parameter array OpenSSL asks the provider to fill (`get_params`).
pub(crate) struct ParamsOut<'a> {
    ptr: *mut OSSL_PARAM,
    _life: PhantomData<&'a mut OSSL_PARAM>,
}

impl ParamsOut<'_> {
    /// # Safety
    /// `ptr` is NULL or a terminated, writable `OSSL_PARAM` array valid for `'a`, whose data
    /// pointers are NULL (size query) or writable for `data_size` bytes.
    pub(crate) unsafe fn new(ptr: *mut OSSL_PARAM) -> Self {
        ParamsOut {
            ptr,
            _life: PhantomData,
        }
    }

    /// The array as OpenSSL passed it (NULL or terminated, writable), to hand on to libcrypto.
    pub(crate) fn as_mut_ptr(&mut self) -> *mut OSSL_PARAM {
        self.ptr
    }

    fn locate(&mut self, key: &CStr) -> *mut OSSL_PARAM {
        if self.ptr.is_null() {
            return ptr::null_mut();
        }
        // SAFETY: terminated array (constructor contract); returns NULL or an element.
        unsafe { abi::OSSL_PARAM_locate(self.ptr, key.as_ptr()) }
    }

    /// True when the caller asked for `key`.
    pub(crate) fn wants(&mut self, key: &CStr) -> bool {
        !self.locate(key).is_null()
    }

    fn answer(&mut self, key: &CStr, set: impl FnOnce(*mut OSSL_PARAM) -> c_int) -> Result<()> {
        let p = self.locate(key);
        if p.is_null() {
            return Ok(());
        }
        if set(p) == 1 {
            Ok(())
        } else {
            Err(Error::BadParam(format!(
                "cannot return parameter '{}' (wrong type or buffer too small)",
                key.to_string_lossy()
            )))
        }
    }

    /// Sets an integer parameter if requested.
    pub(crate) fn set_int(&mut self, key: &CStr, value: i32) -> Result<()> {
        // SAFETY: p is an element of the caller's writable array.
        self.answer(key, |p| unsafe { abi::OSSL_PARAM_set_int(p, value) })
    }

    /// Sets a `size_t` parameter if requested.
    pub(crate) fn set_size(&mut self, key: &CStr, value: usize) -> Result<()> {
        // SAFETY: p is an element of the caller's writable array.
        self.answer(key, |p| unsafe { abi::OSSL_PARAM_set_size_t(p, value) })
    }

    /// Sets an `unsigned int` parameter if requested.
    pub(crate) fn set_uint(&mut self, key: &CStr, value: u32) -> Result<()> {
        // SAFETY: p is an element of the caller's writable array.
        self.answer(key, |p| unsafe { abi::OSSL_PARAM_set_uint(p, value) })
    }

    /// Sets a UTF-8 string parameter if requested.
    pub(crate) fn set_utf8(&mut self, key: &CStr, value: &str) -> Result<()> {
        let value = std::ffi::CString::new(value)
            .map_err(|_| Error::BadParam(format!("NUL in value of '{}'", key.to_string_lossy())))?;
        // SAFETY: p is an element of the caller's writable array; value is NUL-terminated
        // and copied by OpenSSL.
        self.answer(key, |p| unsafe {
            abi::OSSL_PARAM_set_utf8_string(p, value.as_ptr())
        })
    }

    /// Sets a parameter to a static string, as a UTF-8 string or (when the caller asked for
    /// one) a UTF-8 pointer.
    pub(crate) fn set_static_utf8(&mut self, key: &CStr, value: &'static CStr) -> Result<()> {
        let p = self.locate(key);
        // SAFETY: p is NULL or an element of the caller's array.
        let is_ptr = unsafe { p.as_ref() }
            .is_some_and(|p| p.data_type == abi::OSSL_PARAM_UTF8_PTR as c_uint);
        if is_ptr {
            // SAFETY: p is an element of the caller's writable array; value is 'static.
            self.answer(key, |p| unsafe {
                abi::OSSL_PARAM_set_utf8_ptr(p, value.as_ptr())
            })
        } else {
            // SAFETY: as in set_utf8; OpenSSL copies the string.
            self.answer(key, |p| unsafe {
                abi::OSSL_PARAM_set_utf8_string(p, value.as_ptr())
            })
        }
    }

    /// Sets an octet-string parameter if requested.
    pub(crate) fn set_octets(&mut self, key: &CStr, value: &[u8]) -> Result<()> {
        // SAFETY: p is an element of the caller's writable array; value is copied by OpenSSL.
        self.answer(key, |p| unsafe {
            abi::OSSL_PARAM_set_octet_string(p, value.as_ptr().cast(), value.len())
        })
    }

    /// Sets a big-number parameter from big-endian bytes if requested.
    pub(crate) fn set_bn(&mut self, key: &CStr, big_endian: &[u8]) -> Result<()> {
        if self.locate(key).is_null() {
            return Ok(());
        }
        let bn = super::libcrypto::BigNum::from_be(big_endian)?;
        // SAFETY: p is an element of the caller's writable array; bn is a valid BIGNUM.
        self.answer(key, |p| unsafe { abi::OSSL_PARAM_set_BN(p, bn.as_ptr()) })
    }
}

/// Builds a parameter array the provider passes to an OpenSSL callback. The array borrows the
/// byte slices it is given for `'a`; integers and converted numbers are owned.
pub(crate) struct ParamBuilder<'a> {
    params: Vec<OSSL_PARAM>,
    #[allow(clippy::vec_box)] // each int needs a stable address while the array lives
    ints: Vec<Box<c_int>>,
    owned: Vec<Vec<u8>>,
    _life: PhantomData<&'a [u8]>,
}

impl<'a> ParamBuilder<'a> {
    pub(crate) fn new() -> Self {
        ParamBuilder {
            params: Vec::with_capacity(8),
            ints: Vec::new(),
            owned: Vec::new(),
            _life: PhantomData,
        }
    }

    fn push(&mut self, key: &'static CStr, data_type: i32, data: *mut c_void, size: usize) {
        self.params.push(OSSL_PARAM {
            key: key.as_ptr(),
            data_type: data_type as c_uint,
            data,
            data_size: size,
            return_size: usize::MAX, // OSSL_PARAM_UNMODIFIED
        });
    }

    /// Adds an `int`.
    pub(crate) fn int(&mut self, key: &'static CStr, value: i32) -> &mut Self {
        let mut boxed = Box::new(value as c_int);
        let data: *mut c_int = &mut *boxed;
        self.ints.push(boxed);
        self.push(
            key,
            abi::OSSL_PARAM_INTEGER,
            data.cast(),
            size_of::<c_int>(),
        );
        self
    }

    /// Adds a UTF-8 string (the C string must outlive the array).
    pub(crate) fn utf8(&mut self, key: &'static CStr, value: &'a CStr) -> &mut Self {
        self.push(
            key,
            abi::OSSL_PARAM_UTF8_STRING,
            value.as_ptr().cast_mut().cast(),
            value.to_bytes().len(),
        );
        self
    }

    /// Adds an octet string.
    pub(crate) fn octets(&mut self, key: &'static CStr, value: &'a [u8]) -> &mut Self {
        // The receiver only reads the data; OSSL_PARAM has no const data pointer.
        self.push(
            key,
            abi::OSSL_PARAM_OCTET_STRING,
            value.as_ptr().cast_mut().cast(),
            value.len(),
        );
        self
    }

    /// Adds an unsigned big number given as big-endian bytes (OSSL_PARAM numbers are native
    /// endian).
    pub(crate) fn big_number(&mut self, key: &'static CStr, big_endian: &[u8]) -> &mut Self {
        let mut native: Vec<u8> = big_endian.to_vec();
        if cfg!(target_endian = "little") {
            native.reverse();
        }
        if native.is_empty() {
            native.push(0);
        }
        let data = native.as_mut_ptr();
        let len = native.len();
        self.owned.push(native);
        self.push(key, abi::OSSL_PARAM_UNSIGNED_INTEGER, data.cast(), len);
        self
    }

    /// Terminates the array and returns it; valid while `self` lives and is not changed.
    pub(crate) fn finish(&mut self) -> *const OSSL_PARAM {
        if self.params.last().is_none_or(|p| !p.key.is_null()) {
            self.params.push(OSSL_PARAM {
                key: ptr::null(),
                data_type: 0,
                data: ptr::null_mut(),
                data_size: 0,
                return_size: 0,
            });
        }
        self.params.as_ptr()
    }
}

/// Static parameter descriptor tables (`gettable`/`settable`): `param_desc!(KEY, TYPE)`.
macro_rules! param_desc {
    ($key:ident, $ty:ident) => {
        $crate::sys::abi::OSSL_PARAM {
            key: $crate::sys::abi::$key.as_ptr(),
            data_type: $crate::sys::abi::$ty as ::std::ffi::c_uint,
            data: ::std::ptr::null_mut(),
            data_size: 0,
            return_size: usize::MAX,
        }
    };
    (name $key:expr, $ty:ident) => {
        $crate::sys::abi::OSSL_PARAM {
            key: $key.as_ptr(),
            data_type: $crate::sys::abi::$ty as ::std::ffi::c_uint,
            data: ::std::ptr::null_mut(),
            data_size: 0,
            return_size: usize::MAX,
        }
    };
    (END) => {
        $crate::sys::abi::OSSL_PARAM {
            key: ::std::ptr::null(),
            data_type: 0,
            data: ::std::ptr::null_mut(),
            data_size: 0,
            return_size: 0,
        }
    };
}
pub(crate) use param_desc;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_round_trips_through_libcrypto_readers() {
        let bytes = [1u8, 2, 3];
        let mut b = ParamBuilder::new();
        b.int(abi::OSSL_OBJECT_PARAM_TYPE, 2)
            .utf8(abi::OSSL_OBJECT_PARAM_DATA_TYPE, c"EC")
            .octets(abi::OSSL_OBJECT_PARAM_REFERENCE, &bytes);
        let arr = b.finish();
        // SAFETY: `arr` is terminated and lives as long as `b`.
        let params = unsafe { Params::new(arr) };
        assert_eq!(
            params
                .find(abi::OSSL_OBJECT_PARAM_TYPE)
                .unwrap()
                .int()
                .unwrap(),
            2
        );
        let dt = params.find(abi::OSSL_OBJECT_PARAM_DATA_TYPE).unwrap();
        assert!(dt.is_utf8());
        assert_eq!(dt.utf8().unwrap(), "EC");
        assert_eq!(
            params
                .find(abi::OSSL_OBJECT_PARAM_REFERENCE)
                .unwrap()
                .octets()
                .unwrap(),
            &bytes
        );
        assert!(params.find(abi::OSSL_OBJECT_PARAM_DESC).is_none());
        assert!(dt.octets().is_err());
    }

    #[test]
    fn null_array_finds_nothing() {
        // SAFETY: NULL is a valid "no parameters" array.
        let params = unsafe { Params::new(ptr::null()) };
        assert!(params.find(abi::OSSL_OBJECT_PARAM_TYPE).is_none());
    }
}
