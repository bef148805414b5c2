//! The few libcrypto objects the provider uses itself, each in an RAII type: the provider's
//! child library context, fetched digests and digest contexts (hashing for `EVP_DigestSign`
//! happens here, then one `C_Sign` on the token), big numbers, and reading the public key out of
//! a DER certificate (for tokens that hold only a private key and its certificate).

use std::ffi::{CStr, CString, c_int, c_long};
use std::ptr;
use std::sync::OnceLock;

use super::abi;
use crate::error::{Error, Result};

/// Runs `f` and then drops any errors it left on the thread's OpenSSL error stack.
///
/// PKCS#11 modules that use OpenSSL themselves (SoftHSM2) leave unrelated entries there, e.g.
/// a missing rdrand engine at `C_Initialize` or "bad decrypt" after a wrong PIN. They would
/// confuse callers that inspect the stack after a success; the provider reports failures with
/// its own, clearer error after this returns.
pub(crate) fn discarding_errors<T>(f: impl FnOnce() -> T) -> T {
    // SAFETY: ERR_set_mark/ERR_pop_to_mark only touch this thread's error queue.
    unsafe { abi::ERR_set_mark() };
    let value = f();
    // SAFETY: as above; pops exactly the entries added since the mark.
    unsafe { abi::ERR_pop_to_mark() };
    value
}

/// What `OPENSSL_cleanup` calls first (see [`at_cleanup`]).
static AT_CLEANUP: OnceLock<fn()> = OnceLock::new();

extern "C" fn run_at_cleanup() {
    if let Some(f) = AT_CLEANUP.get() {
        // No panic may cross into libcrypto.
        let _ = std::panic::catch_unwind(*f);
    }
}

/// Has `OPENSSL_cleanup` call `f` before it frees anything (OPENSSL_atexit(3); OpenSSL then
/// keeps this library loaded until it has run). The first `f` of the process is the one kept.
pub(crate) fn at_cleanup(f: fn()) {
    if AT_CLEANUP.set(f).is_ok() {
        // SAFETY: registers a function of this library, which OpenSSL keeps loaded for it.
        unsafe { abi::OPENSSL_atexit(Some(run_at_cleanup)) };
    }
}

/// The provider's library context: a child of the application's, so digests come from whatever
/// providers the application loaded (never from this one: it offers no digests).
pub(crate) struct LibCtx(*mut openssl_sys::OSSL_LIB_CTX);

// SAFETY: an OSSL_LIB_CTX is internally locked and meant to be shared between threads.
unsafe impl Send for LibCtx {}
// SAFETY: as above.
unsafe impl Sync for LibCtx {}

impl LibCtx {
    /// The library context, for libcrypto calls that take one (it stays owned here).
    pub(crate) fn as_ptr(&self) -> *mut openssl_sys::OSSL_LIB_CTX {
        self.0
    }

    /// # Safety
    /// `handle` and `in_` are the arguments of `OSSL_provider_init`.
    pub(crate) unsafe fn new_child(
        handle: *const abi::OSSL_CORE_HANDLE,
        in_: *const abi::OSSL_DISPATCH,
    ) -> Result<LibCtx> {
        // SAFETY: arguments as OpenSSL gave them to the provider (caller's contract).
        let ctx = unsafe { abi::OSSL_LIB_CTX_new_child(handle, in_) };
        if ctx.is_null() {
            Err(Error::Openssl("OSSL_LIB_CTX_new_child"))
        } else {
            Ok(LibCtx(ctx))
        }
    }
}

impl Drop for LibCtx {
    fn drop(&mut self) {
        // SAFETY: made by OSSL_LIB_CTX_new_child and freed once.
        unsafe { openssl_sys::OSSL_LIB_CTX_free(self.0) }
    }
}

/// A fetched digest implementation (`EVP_MD`).
pub(crate) struct Md(*mut openssl_sys::EVP_MD);

// SAFETY: a fetched EVP_MD is reference counted and immutable.
unsafe impl Send for Md {}
// SAFETY: as above.
unsafe impl Sync for Md {}

impl Md {
    /// The `EVP_MD` for libcrypto calls in this layer.
    pub(super) fn as_ptr(&self) -> *const openssl_sys::EVP_MD {
        self.0
    }

    /// Fetches `name` from `libctx` (or the default context).
    pub(crate) fn fetch(libctx: Option<&LibCtx>, name: &str) -> Result<Md> {
        let cname = CString::new(name).map_err(|_| Error::BadParam("digest name".into()))?;
        let ctx = libctx.map_or(ptr::null_mut(), |c| c.0);
        // SAFETY: ctx is NULL or a live library context; name is NUL-terminated.
        let md = unsafe { openssl_sys::EVP_MD_fetch(ctx, cname.as_ptr(), ptr::null()) };
        if md.is_null() {
            Err(Error::Unsupported(format!(
                "digest {name} is not available"
            )))
        } else {
            Ok(Md(md))
        }
    }
}

impl Drop for Md {
    fn drop(&mut self) {
        // SAFETY: fetched by EVP_MD_fetch, freed once.
        unsafe { openssl_sys::EVP_MD_free(self.0) }
    }
}

/// A running hash (`EVP_MD_CTX`).
pub(crate) struct DigestCtx(*mut openssl_sys::EVP_MD_CTX);

// SAFETY: an EVP_MD_CTX may move between threads; it is used by one thread at a time (&mut).
unsafe impl Send for DigestCtx {}

impl DigestCtx {
    /// An empty context (freed on drop).
    fn allocate() -> Result<DigestCtx> {
        // SAFETY: plain allocation.
        let ctx = unsafe { openssl_sys::EVP_MD_CTX_new() };
        if ctx.is_null() {
            Err(Error::Openssl("EVP_MD_CTX_new"))
        } else {
            Ok(DigestCtx(ctx))
        }
    }

    pub(crate) fn new(md: &Md) -> Result<DigestCtx> {
        let ctx = DigestCtx::allocate()?;
        // SAFETY: ctx is fresh, md a live fetched digest.
        if unsafe { openssl_sys::EVP_DigestInit_ex(ctx.0, md.0, ptr::null_mut()) } != 1 {
            return Err(Error::Openssl("EVP_DigestInit_ex"));
        }
        Ok(ctx)
    }

    pub(crate) fn update(&mut self, data: &[u8]) -> Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        // SAFETY: initialised context; data readable for its length.
        if unsafe { openssl_sys::EVP_DigestUpdate(self.0, data.as_ptr().cast(), data.len()) } != 1 {
            return Err(Error::Openssl("EVP_DigestUpdate"));
        }
        Ok(())
    }

    /// Finishes the hash into a new buffer.
    pub(crate) fn finish(&mut self) -> Result<Vec<u8>> {
        let mut out = vec![0u8; openssl_sys::EVP_MAX_MD_SIZE as usize];
        let mut len: u32 = 0;
        // SAFETY: initialised context; out has EVP_MAX_MD_SIZE bytes.
        if unsafe { openssl_sys::EVP_DigestFinal_ex(self.0, out.as_mut_ptr(), &mut len) } != 1 {
            return Err(Error::Openssl("EVP_DigestFinal_ex"));
        }
        out.truncate(len as usize);
        Ok(out)
    }

    /// Copies the running state (for `dupctx`).
    pub(crate) fn duplicate(&self) -> Result<DigestCtx> {
        let copy = DigestCtx::allocate()?;
        // SAFETY: both contexts are live; self is initialised.
        if unsafe { openssl_sys::EVP_MD_CTX_copy_ex(copy.0, self.0) } != 1 {
            return Err(Error::Openssl("EVP_MD_CTX_copy_ex"));
        }
        Ok(copy)
    }
}

impl Drop for DigestCtx {
    fn drop(&mut self) {
        // SAFETY: made by EVP_MD_CTX_new, freed once.
        unsafe { openssl_sys::EVP_MD_CTX_free(self.0) }
    }
}

/// An owned `BIGNUM`.
pub(crate) struct BigNum(*mut openssl_sys::BIGNUM);

impl BigNum {
    pub(crate) fn from_be(bytes: &[u8]) -> Result<BigNum> {
        let len =
            c_int::try_from(bytes.len()).map_err(|_| Error::BadParam("number too big".into()))?;
        // SAFETY: bytes readable for len; a NULL `ret` makes OpenSSL allocate.
        let bn = unsafe { openssl_sys::BN_bin2bn(bytes.as_ptr(), len, ptr::null_mut()) };
        if bn.is_null() {
            Err(Error::Openssl("BN_bin2bn"))
        } else {
            Ok(BigNum(bn))
        }
    }

    /// Takes ownership of a BIGNUM OpenSSL allocated for us.
    ///
    /// # Safety
    /// `bn` is a valid BIGNUM that nobody else frees.
    pub(crate) unsafe fn from_owned(bn: *mut openssl_sys::BIGNUM) -> BigNum {
        BigNum(bn)
    }

    pub(crate) fn as_ptr(&self) -> *const openssl_sys::BIGNUM {
        self.0
    }

    /// The value as minimal big-endian bytes (one zero byte for zero).
    pub(crate) fn to_be(&self) -> Vec<u8> {
        // SAFETY: self.0 is a valid BIGNUM.
        let bits = unsafe { openssl_sys::BN_num_bits(self.0) };
        let mut out = vec![0u8; (bits.max(1) as usize).div_ceil(8)];
        // SAFETY: out has room for BN_num_bytes(self.0) bytes.
        let n = unsafe { openssl_sys::BN_bn2bin(self.0, out.as_mut_ptr()) };
        if n > 0 {
            out.truncate(n as usize);
        }
        out
    }
}

impl Drop for BigNum {
    fn drop(&mut self) {
        // SAFETY: allocated by BN_bin2bn, freed once.
        unsafe { openssl_sys::BN_free(self.0) }
    }
}

struct Pkey(*mut openssl_sys::EVP_PKEY);

impl Drop for Pkey {
    fn drop(&mut self) {
        // SAFETY: owned reference, released once.
        unsafe { openssl_sys::EVP_PKEY_free(self.0) }
    }
}

impl Pkey {
    fn bn_param(&self, name: &CStr) -> Result<Vec<u8>> {
        let mut bn: *mut openssl_sys::BIGNUM = ptr::null_mut();
        // SAFETY: live key; OpenSSL allocates *bn on success.
        if unsafe { openssl_sys::EVP_PKEY_get_bn_param(self.0, name.as_ptr(), &mut bn) } != 1 {
            return Err(Error::Openssl("EVP_PKEY_get_bn_param"));
        }
        Ok(BigNum(bn).to_be())
    }

    fn octet_param(&self, name: &CStr) -> Result<Vec<u8>> {
        let mut out = vec![0u8; 1024];
        let mut len = 0usize;
        // SAFETY: live key; out writable for its length.
        let ok = unsafe {
            openssl_sys::EVP_PKEY_get_octet_string_param(
                self.0,
                name.as_ptr(),
                out.as_mut_ptr(),
                out.len(),
                &mut len,
            )
        };
        if ok != 1 {
            return Err(Error::Openssl("EVP_PKEY_get_octet_string_param"));
        }
        out.truncate(len);
        Ok(out)
    }

    fn utf8_param(&self, name: &CStr) -> Result<String> {
        let mut out = [0 as std::ffi::c_char; 80];
        let mut len = 0usize;
        // SAFETY: live key; out writable for its length.
        let ok = unsafe {
            openssl_sys::EVP_PKEY_get_utf8_string_param(
                self.0,
                name.as_ptr(),
                out.as_mut_ptr(),
                out.len(),
                &mut len,
            )
        };
        if ok != 1 {
            return Err(Error::Openssl("EVP_PKEY_get_utf8_string_param"));
        }
        // SAFETY: OpenSSL NUL-terminates the string it wrote into `out`.
        Ok(unsafe { CStr::from_ptr(out.as_ptr()) }
            .to_string_lossy()
            .into_owned())
    }
}

/// The public key of a certificate, in the terms libcrypto reports it.
#[derive(Debug)]
pub(crate) enum CertificateKey {
    /// RSA (or RSA-PSS) modulus and public exponent, big-endian.
    Rsa { modulus: Vec<u8>, exponent: Vec<u8> },
    /// An EC key: OpenSSL's group name and the encoded point.
    Ec { group: String, point: Vec<u8> },
    /// An Ed25519 public key.
    Ed25519(Vec<u8>),
    /// An Ed448 public key.
    Ed448(Vec<u8>),
}

/// Reads the public key of a DER X.509 certificate.
pub(crate) fn certificate_public_key(der: &[u8]) -> Result<CertificateKey> {
    let mut p = der.as_ptr();
    let len =
        c_long::try_from(der.len()).map_err(|_| Error::BadParam("certificate too big".into()))?;
    // SAFETY: p points to len readable bytes; d2i allocates a new X509 or returns NULL.
    let x509 = unsafe { openssl_sys::d2i_X509(ptr::null_mut(), &mut p, len) };
    if x509.is_null() {
        return Err(Error::Unsupported(
            "certificate on the token is not valid DER".into(),
        ));
    }
    // SAFETY: x509 is valid; X509_get_pubkey returns a new reference or NULL.
    let pkey = unsafe { openssl_sys::X509_get_pubkey(x509) };
    // SAFETY: x509 is ours and no longer needed.
    unsafe { openssl_sys::X509_free(x509) };
    if pkey.is_null() {
        return Err(Error::Unsupported(
            "certificate public key cannot be read".into(),
        ));
    }
    let pkey = Pkey(pkey);
    // SAFETY: live key.
    let id = unsafe { openssl_sys::EVP_PKEY_get_id(pkey.0) };
    match id {
        openssl_sys::EVP_PKEY_RSA | openssl_sys::EVP_PKEY_RSA_PSS => Ok(CertificateKey::Rsa {
            modulus: pkey.bn_param(c"n")?,
            exponent: pkey.bn_param(c"e")?,
        }),
        openssl_sys::EVP_PKEY_EC => Ok(CertificateKey::Ec {
            group: pkey.utf8_param(c"group")?,
            point: pkey.octet_param(c"encoded-pub-key")?,
        }),
        openssl_sys::EVP_PKEY_ED25519 => Ok(CertificateKey::Ed25519(pkey.octet_param(c"pub")?)),
        openssl_sys::EVP_PKEY_ED448 => Ok(CertificateKey::Ed448(pkey.octet_param(c"pub")?)),
        other => Err(Error::Unsupported(format!(
            "certificate key type {other} is not supported"
        ))),
    }
}

/// The output BIO OpenSSL passes to an encoder.
pub(crate) struct CoreBio(*mut abi::OSSL_CORE_BIO);

impl CoreBio {
    /// # Safety
    /// `ptr` is the non-NULL `OSSL_CORE_BIO` OpenSSL passed to `encode`, valid while this
    /// value is used.
    pub(crate) unsafe fn new(ptr: *mut abi::OSSL_CORE_BIO) -> CoreBio {
        CoreBio(ptr)
    }

    /// Runs `f` on a libcrypto BIO over this core BIO, freed afterwards (which does not close
    /// the core BIO).
    fn with_bio<T>(
        &self,
        libctx: Option<&LibCtx>,
        f: impl FnOnce(*mut abi::BIO) -> T,
    ) -> Result<T> {
        let ctx = libctx.ok_or(Error::Openssl("no provider library context"))?;
        // SAFETY: ctx was made from the core's dispatch table; self.0 is a live core BIO.
        let bio = unsafe { abi::BIO_new_from_core_bio(ctx.0, self.0) };
        if bio.is_null() {
            return Err(Error::Openssl("BIO_new_from_core_bio"));
        }
        let result = f(bio);
        // SAFETY: bio is ours and no longer used; freeing it does not close the core BIO.
        unsafe { abi::BIO_free(bio) };
        Ok(result)
    }

    /// Writes all of `data`.
    pub(crate) fn write_all(&self, libctx: Option<&LibCtx>, data: &[u8]) -> Result<()> {
        let len =
            c_int::try_from(data.len()).map_err(|_| Error::BadParam("output too big".into()))?;
        // SAFETY: bio is live for the closure; data is readable for len bytes.
        let written = self.with_bio(libctx, |bio| unsafe {
            openssl_sys::BIO_write(bio, data.as_ptr().cast(), len)
        })?;
        if written == len {
            Ok(())
        } else {
            Err(Error::Openssl("BIO_write"))
        }
    }

    /// Reads up to `limit` bytes (less at end of input).
    pub(crate) fn read_up_to(&self, libctx: Option<&LibCtx>, limit: usize) -> Result<Vec<u8>> {
        let mut out = vec![0u8; limit];
        let filled = self.with_bio(libctx, |bio| {
            let mut filled = 0usize;
            while filled < limit {
                let want = c_int::try_from(limit - filled).unwrap_or(c_int::MAX);
                // SAFETY: bio is live; out has `limit - filled` writable bytes from `filled`.
                let n =
                    unsafe { openssl_sys::BIO_read(bio, out[filled..].as_mut_ptr().cast(), want) };
                let Ok(n @ 1..) = usize::try_from(n) else {
                    break;
                };
                filled += n;
            }
            filled
        })?;
        out.truncate(filled);
        Ok(out)
    }

    /// Reads whole lines until one for which `last` holds (included), end of input, or
    /// `limit` bytes.
    ///
    /// Line by line, like OpenSSL's own PEM reader, so that whatever follows the caller's last
    /// line (a certificate after the key) is left unread for the next reader.
    pub(crate) fn read_lines(
        &self,
        libctx: Option<&LibCtx>,
        limit: usize,
        last: impl Fn(&[u8]) -> bool,
    ) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        self.each_line(libctx, |line| {
            out.extend_from_slice(line);
            out.len() < limit && !last(line)
        })?;
        out.truncate(limit);
        Ok(out)
    }

    /// Reads and drops whole lines up to and including one for which `last` holds, or to the
    /// end of input (to get past a block too long to keep).
    pub(crate) fn skip_lines(
        &self,
        libctx: Option<&LibCtx>,
        last: impl Fn(&[u8]) -> bool,
    ) -> Result<()> {
        self.each_line(libctx, |line| !last(line))
    }

    /// Calls `more` with each line (pieces of at most 1 KiB for longer lines) until it returns
    /// false or the input ends.
    fn each_line(
        &self,
        libctx: Option<&LibCtx>,
        mut more: impl FnMut(&[u8]) -> bool,
    ) -> Result<()> {
        const LINE: usize = 1024;
        self.with_bio(libctx, |bio| {
            let mut line = [0u8; LINE];
            loop {
                // SAFETY: bio is live; line has LINE writable bytes; BIO_gets writes at most
                // LINE - 1 bytes and a terminating NUL.
                let n = unsafe { abi::BIO_gets(bio, line.as_mut_ptr().cast(), LINE as c_int) };
                let Ok(n @ 1..) = usize::try_from(n) else {
                    break;
                };
                if !more(&line[..n.min(LINE - 1)]) {
                    break;
                }
            }
        })
    }
}

/// A public key held by another provider (never this one, so no recursion), built from a token
/// key's public parts: used to print keys in OpenSSL's own text format.
pub(crate) struct PublicPkey(*mut openssl_sys::EVP_PKEY);

impl Drop for PublicPkey {
    fn drop(&mut self) {
        // SAFETY: owned key, freed once.
        unsafe { openssl_sys::EVP_PKEY_free(self.0) }
    }
}

impl PublicPkey {
    /// Imports the public key `params` of type `key_type` (e.g. "RSA").
    pub(crate) fn from_params(
        libctx: Option<&LibCtx>,
        key_type: &CStr,
        params: *const abi::OSSL_PARAM,
    ) -> Result<PublicPkey> {
        let ctx = libctx.map_or(ptr::null_mut(), |c| c.0);
        // SAFETY: ctx is NULL or live; the strings are NUL-terminated.
        let pctx = unsafe {
            openssl_sys::EVP_PKEY_CTX_new_from_name(
                ctx,
                key_type.as_ptr(),
                c"provider!=pkcs11".as_ptr(),
            )
        };
        if pctx.is_null() {
            return Err(Error::Openssl("EVP_PKEY_CTX_new_from_name"));
        }
        let mut pkey: *mut openssl_sys::EVP_PKEY = ptr::null_mut();
        // SAFETY: pctx is live; params is a terminated array valid for the call (fromdata only
        // reads it despite the non-const pointer).
        let ok = unsafe {
            openssl_sys::EVP_PKEY_fromdata_init(pctx) == 1
                && openssl_sys::EVP_PKEY_fromdata(
                    pctx,
                    &mut pkey,
                    openssl_sys::EVP_PKEY_PUBLIC_KEY,
                    params.cast_mut(),
                ) == 1
        };
        // SAFETY: pctx is ours and no longer needed.
        unsafe { openssl_sys::EVP_PKEY_CTX_free(pctx) };
        if !ok || pkey.is_null() {
            return Err(Error::Openssl("EVP_PKEY_fromdata"));
        }
        Ok(PublicPkey(pkey))
    }

    /// The key, for libcrypto calls that take it (it stays owned here).
    pub(crate) fn as_ptr(&self) -> *mut openssl_sys::EVP_PKEY {
        self.0
    }

    /// Writes `header` and then OpenSSL's text form of the public key to a core BIO.
    pub(crate) fn print(&self, libctx: Option<&LibCtx>, out: &CoreBio, header: &str) -> Result<()> {
        let len = c_int::try_from(header.len()).map_err(|_| Error::BadParam("header".into()))?;
        // SAFETY: bio is live for the closure; header readable for len bytes; self.0 is a
        // live key.
        let ok = out.with_bio(libctx, |bio| unsafe {
            openssl_sys::BIO_write(bio, header.as_ptr().cast(), len) == len
                && abi::EVP_PKEY_print_public(bio, self.0, 0, ptr::null_mut()) == 1
        })?;
        if ok {
            Ok(())
        } else {
            Err(Error::Openssl("EVP_PKEY_print_public"))
        }
    }
}
