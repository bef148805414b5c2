//! libcrypto primitives the provider applies around token operations, always from another
//! provider than this one (`provider!=pkcs11`, so no recursion): random bytes (RAND(7)), OAEP
//! decoding after a raw RSA decryption on the token (constant-time, libcrypto's own
//! `RSA_padding_check_PKCS1_OAEP_mgf1`), the X9.63 KDF over an ECDH secret (EVP_KDF-X963(7)),
//! and RSA encryption with a public key (EVP_PKEY_encrypt(3)), which needs no token.

use std::ffi::{CStr, c_int};
use std::ptr;

use zeroize::Zeroizing;

use super::abi;
use super::libcrypto::{LibCtx, Md, PublicPkey};
use crate::error::{Error, Result};

/// The library context pointer of `libctx` (NULL: the default context).
fn libctx_ptr(libctx: Option<&LibCtx>) -> *mut openssl_sys::OSSL_LIB_CTX {
    libctx.map_or(ptr::null_mut(), LibCtx::as_ptr)
}

/// Property query for everything fetched here: never this provider.
const NOT_THIS_PROVIDER: &CStr = c"provider!=pkcs11";

/// Fills `out` with random bytes from the private DRBG of `libctx`.
pub(crate) fn random_bytes(libctx: Option<&LibCtx>, out: &mut [u8]) -> Result<()> {
    // SAFETY: the context is NULL or live; out is writable for its length.
    let ok = unsafe { abi::RAND_priv_bytes_ex(libctx_ptr(libctx), out.as_mut_ptr(), out.len(), 0) };
    if ok == 1 {
        Ok(())
    } else {
        Err(Error::Openssl("RAND_priv_bytes_ex"))
    }
}

/// Decodes an OAEP-encoded message (RFC 8017 §7.1.2 step 3): `encoded` is the raw RSA
/// decryption result, `modulus_len` the key's modulus size in bytes. libcrypto checks the
/// padding in constant time; on failure its error is queued and nothing of the message is
/// returned.
pub(crate) fn oaep_decode(
    encoded: &[u8],
    modulus_len: usize,
    label: &[u8],
    digest: &Md,
    mgf1: &Md,
) -> Result<Zeroizing<Vec<u8>>> {
    // Left-pad to the modulus size: a token may drop leading zero bytes of the raw result.
    let start = modulus_len
        .checked_sub(encoded.len())
        .ok_or_else(|| Error::BadParam("raw RSA result longer than the modulus".into()))?;
    let mut block = Zeroizing::new(vec![0u8; modulus_len]);
    block[start..].copy_from_slice(encoded);
    let mut message = Zeroizing::new(vec![0u8; modulus_len]);
    let too_long = || Error::BadParam("RSA block too long".into());
    let size = c_int::try_from(modulus_len).map_err(|_| too_long())?;
    let label_len = c_int::try_from(label.len()).map_err(|_| too_long())?;
    // SAFETY: message is writable for `size` bytes, block readable for `size` bytes, label
    // for its length; both digests are live fetched EVP_MDs.
    let len = unsafe {
        abi::RSA_padding_check_PKCS1_OAEP_mgf1(
            message.as_mut_ptr(),
            size,
            block.as_ptr(),
            size,
            size,
            label.as_ptr(),
            label_len,
            digest.as_ptr(),
            mgf1.as_ptr(),
        )
    };
    let len = usize::try_from(len).map_err(|_| Error::Openssl("OAEP decoding"))?;
    message.truncate(len);
    Ok(message)
}

/// The ANSI X9.63 KDF (as in SEC 1 §3.6.1) of `secret` with `digest` and `shared_info`,
/// `out_len` bytes long.
pub(crate) fn x963_kdf(
    libctx: Option<&LibCtx>,
    digest: &CStr,
    secret: &[u8],
    shared_info: &[u8],
    out_len: usize,
) -> Result<Zeroizing<Vec<u8>>> {
    // SAFETY: the context is NULL or live; the names are NUL-terminated.
    let kdf = unsafe {
        openssl_sys::EVP_KDF_fetch(
            libctx_ptr(libctx),
            c"X963KDF".as_ptr(),
            NOT_THIS_PROVIDER.as_ptr(),
        )
    };
    if kdf.is_null() {
        return Err(Error::Unsupported(
            "the X963KDF key derivation is not available from another provider".into(),
        ));
    }
    // SAFETY: kdf is a live fetched KDF; the context takes its own reference.
    let ctx = unsafe { openssl_sys::EVP_KDF_CTX_new(kdf) };
    // SAFETY: our reference to the fetched KDF, released once.
    unsafe { openssl_sys::EVP_KDF_free(kdf) };
    if ctx.is_null() {
        return Err(Error::Openssl("EVP_KDF_CTX_new"));
    }
    let mut params = super::params::ParamBuilder::new();
    params
        .utf8(abi::OSSL_KDF_PARAM_DIGEST, digest)
        .octets(abi::OSSL_KDF_PARAM_KEY, secret);
    if !shared_info.is_empty() {
        params.octets(abi::OSSL_KDF_PARAM_INFO, shared_info);
    }
    let mut out = Zeroizing::new(vec![0u8; out_len]);
    // SAFETY: ctx is live; out is writable for out_len bytes; params is terminated and
    // borrows data that lives across the call.
    let ok =
        unsafe { openssl_sys::EVP_KDF_derive(ctx, out.as_mut_ptr(), out_len, params.finish()) };
    // SAFETY: ours, freed once.
    unsafe { openssl_sys::EVP_KDF_CTX_free(ctx) };
    if ok == 1 {
        Ok(out)
    } else {
        Err(Error::Openssl("EVP_KDF_derive (X963KDF)"))
    }
}

/// Encrypts `input` with the RSA public key `key` in another provider, with the asymmetric
/// cipher parameters `params` (padding mode, OAEP digests and label).
pub(crate) fn public_encrypt(
    libctx: Option<&LibCtx>,
    key: &PublicPkey,
    params: *const abi::OSSL_PARAM,
    input: &[u8],
) -> Result<Vec<u8>> {
    // SAFETY: the context is NULL or live; key is a live EVP_PKEY; the query is a C string.
    let ctx = unsafe {
        abi::EVP_PKEY_CTX_new_from_pkey(
            libctx_ptr(libctx),
            key.as_ptr(),
            NOT_THIS_PROVIDER.as_ptr(),
        )
    };
    if ctx.is_null() {
        return Err(Error::Openssl("EVP_PKEY_CTX_new_from_pkey"));
    }
    let result = (|| {
        // SAFETY: ctx is live; params is a terminated array the caller keeps alive.
        if unsafe { abi::EVP_PKEY_encrypt_init_ex(ctx, params) } != 1 {
            return Err(Error::Openssl("EVP_PKEY_encrypt_init_ex"));
        }
        let mut len = 0usize;
        // SAFETY: ctx is initialised; a NULL output asks for the size.
        if unsafe {
            openssl_sys::EVP_PKEY_encrypt(
                ctx,
                ptr::null_mut(),
                &mut len,
                input.as_ptr(),
                input.len(),
            )
        } != 1
        {
            return Err(Error::Openssl("EVP_PKEY_encrypt"));
        }
        let mut out = vec![0u8; len];
        // SAFETY: out is writable for len bytes; input readable for its length.
        if unsafe {
            openssl_sys::EVP_PKEY_encrypt(
                ctx,
                out.as_mut_ptr(),
                &mut len,
                input.as_ptr(),
                input.len(),
            )
        } != 1
        {
            return Err(Error::Openssl("EVP_PKEY_encrypt"));
        }
        out.truncate(len);
        Ok(out)
    })();
    // SAFETY: ours, freed once.
    unsafe { openssl_sys::EVP_PKEY_CTX_free(ctx) };
    result
}
