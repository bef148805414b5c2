//! Signature verification handed to another provider (provider-signature(7) `verify_init`,
//! `verify`, `digest_verify_*`). Verifying needs only the public key, which OpenSSL's default
//! provider handles; but with `-propquery '?provider=pkcs11'` (or a program that fetches with
//! that property) OpenSSL 3.0 picks this provider's signature implementation for every
//! signature of the algorithm, verification of a peer's included, and does not fall back to
//! another provider when it lacks a function. So the provider verifies, by running the same
//! verification in libcrypto on a public-key copy held by another provider
//! (`provider!=pkcs11`, so never recursing into this one), parameters passed through as they
//! came.

use std::ffi::{CString, c_int};
use std::ptr;

use super::abi;
use super::libcrypto::{LibCtx, PublicPkey};
use crate::error::{Error, Result};

/// Property query that keeps every fetch away from this provider.
const ELSEWHERE: &std::ffi::CStr = c"provider!=pkcs11";

/// One verification operation in another provider.
pub(crate) enum Verifier {
    /// `EVP_PKEY_verify` over a hash (or raw input).
    Hash(*mut openssl_sys::EVP_PKEY_CTX),
    /// `EVP_DigestVerify*` over a message.
    Message(*mut openssl_sys::EVP_MD_CTX),
}

// SAFETY: the contexts are owned by this value and used by one thread at a time (OpenSSL's
// contract for an operation context); they hold their own references to the key.
unsafe impl Send for Verifier {}

fn libctx_ptr(libctx: Option<&LibCtx>) -> *mut openssl_sys::OSSL_LIB_CTX {
    libctx.map_or(ptr::null_mut(), LibCtx::as_ptr)
}

impl Verifier {
    /// `EVP_PKEY_verify_init_ex` on `key` with `params` (NULL or a terminated array).
    pub(crate) fn for_hash(
        libctx: Option<&LibCtx>,
        key: &PublicPkey,
        params: *const openssl_sys::OSSL_PARAM,
    ) -> Result<Verifier> {
        // SAFETY: libctx NULL or live, key live, the property string NUL-terminated; the new
        // context takes its own reference to the key.
        let ctx = unsafe {
            abi::EVP_PKEY_CTX_new_from_pkey(libctx_ptr(libctx), key.as_ptr(), ELSEWHERE.as_ptr())
        };
        if ctx.is_null() {
            return Err(Error::Openssl("EVP_PKEY_CTX_new_from_pkey"));
        }
        let verifier = Verifier::Hash(ctx);
        // SAFETY: ctx is live; params is NULL or terminated and only read.
        if unsafe { abi::EVP_PKEY_verify_init_ex(ctx, params) } != 1 {
            return Err(Error::Openssl("EVP_PKEY_verify_init_ex"));
        }
        Ok(verifier)
    }

    /// `EVP_DigestVerifyInit_ex` on `key` with digest `digest` (`None`: the key's default, or
    /// none for EdDSA) and `params`.
    pub(crate) fn for_message(
        libctx: Option<&LibCtx>,
        digest: Option<&str>,
        key: &PublicPkey,
        params: *const openssl_sys::OSSL_PARAM,
    ) -> Result<Verifier> {
        let digest = digest
            .map(CString::new)
            .transpose()
            .map_err(|_| Error::BadParam("digest name".into()))?;
        // SAFETY: EVP_MD_CTX_new returns a new context or NULL.
        let ctx = unsafe { openssl_sys::EVP_MD_CTX_new() };
        if ctx.is_null() {
            return Err(Error::Openssl("EVP_MD_CTX_new"));
        }
        let verifier = Verifier::Message(ctx);
        // SAFETY: ctx live; the strings NUL-terminated or NULL; libctx NULL or live; key live
        // (the context takes its own reference); params NULL or terminated and only read.
        let ok = unsafe {
            abi::EVP_DigestVerifyInit_ex(
                ctx,
                ptr::null_mut(),
                digest.as_ref().map_or(ptr::null(), |d| d.as_ptr()),
                libctx_ptr(libctx),
                ELSEWHERE.as_ptr(),
                key.as_ptr(),
                params,
            )
        };
        if ok != 1 {
            return Err(Error::Openssl("EVP_DigestVerifyInit_ex"));
        }
        Ok(verifier)
    }

    /// The signature operation's `EVP_PKEY_CTX`, where its parameters are set (for a message
    /// verifier the one `EVP_DigestVerifyInit_ex` made: `EVP_MD_CTX_set_params` would reach
    /// the digest's parameters instead).
    fn pkey_ctx(&self) -> Result<*mut openssl_sys::EVP_PKEY_CTX> {
        let ctx = match *self {
            Verifier::Hash(ctx) => ctx,
            // SAFETY: the digest context is live; the result is owned by it.
            Verifier::Message(ctx) => unsafe { abi::EVP_MD_CTX_get_pkey_ctx(ctx) },
        };
        if ctx.is_null() {
            Err(Error::Openssl("EVP_MD_CTX_get_pkey_ctx"))
        } else {
            Ok(ctx)
        }
    }

    /// Passes `set_ctx_params` on.
    pub(crate) fn set_params(&mut self, params: *const openssl_sys::OSSL_PARAM) -> Result<()> {
        if params.is_null() {
            return Ok(());
        }
        // SAFETY: the context is live; params is terminated and only read.
        let ok = unsafe { openssl_sys::EVP_PKEY_CTX_set_params(self.pkey_ctx()?, params) };
        if ok == 1 {
            Ok(())
        } else {
            Err(Error::Openssl("EVP_PKEY_CTX_set_params"))
        }
    }

    /// Passes `get_ctx_params` on.
    pub(crate) fn get_params(&self, params: *mut openssl_sys::OSSL_PARAM) -> Result<()> {
        if params.is_null() {
            return Ok(());
        }
        // SAFETY: the context is live; params is terminated and writable as OpenSSL gave it.
        let ok = unsafe { openssl_sys::EVP_PKEY_CTX_get_params(self.pkey_ctx()?, params) };
        if ok == 1 {
            Ok(())
        } else {
            Err(Error::Openssl("EVP_PKEY_CTX_get_params"))
        }
    }

    /// `EVP_PKEY_verify` (hash verifiers) or `EVP_DigestVerify` (message verifiers, one-shot).
    /// `Ok(false)`: the signature does not verify (libcrypto's reason stays queued).
    pub(crate) fn verify(&mut self, signature: &[u8], data: &[u8]) -> Result<bool> {
        // SAFETY: the context is live; both slices are readable for their lengths.
        let result: c_int = unsafe {
            match *self {
                Verifier::Hash(ctx) => openssl_sys::EVP_PKEY_verify(
                    ctx,
                    signature.as_ptr(),
                    signature.len(),
                    data.as_ptr(),
                    data.len(),
                ),
                Verifier::Message(ctx) => openssl_sys::EVP_DigestVerify(
                    ctx,
                    signature.as_ptr(),
                    signature.len(),
                    data.as_ptr(),
                    data.len(),
                ),
            }
        };
        Ok(result == 1)
    }

    /// `EVP_DigestVerifyUpdate`.
    pub(crate) fn update(&mut self, data: &[u8]) -> Result<()> {
        let Verifier::Message(ctx) = *self else {
            return Err(Error::BadParam(
                "digest_verify_update without digest_verify_init".into(),
            ));
        };
        // SAFETY: ctx is live; data readable for its length.
        if unsafe { openssl_sys::EVP_DigestVerifyUpdate(ctx, data.as_ptr().cast(), data.len()) }
            == 1
        {
            Ok(())
        } else {
            Err(Error::Openssl("EVP_DigestVerifyUpdate"))
        }
    }

    /// `EVP_DigestVerifyFinal`; `Ok(false)` when the signature does not verify.
    pub(crate) fn finish(&mut self, signature: &[u8]) -> Result<bool> {
        let Verifier::Message(ctx) = *self else {
            return Err(Error::BadParam(
                "digest_verify_final without digest_verify_init".into(),
            ));
        };
        // SAFETY: ctx is live; signature readable for its length.
        let result =
            unsafe { openssl_sys::EVP_DigestVerifyFinal(ctx, signature.as_ptr(), signature.len()) };
        Ok(result == 1)
    }

    /// An independent copy (`dupctx`).
    pub(crate) fn duplicate(&self) -> Result<Verifier> {
        match *self {
            Verifier::Hash(ctx) => {
                // SAFETY: ctx is live; the copy is a new context or NULL.
                let copy = unsafe { abi::EVP_PKEY_CTX_dup(ctx) };
                if copy.is_null() {
                    Err(Error::Openssl("EVP_PKEY_CTX_dup"))
                } else {
                    Ok(Verifier::Hash(copy))
                }
            }
            Verifier::Message(ctx) => {
                // SAFETY: EVP_MD_CTX_new returns a new context or NULL.
                let copy = unsafe { openssl_sys::EVP_MD_CTX_new() };
                if copy.is_null() {
                    return Err(Error::Openssl("EVP_MD_CTX_new"));
                }
                // Owned from here on, so an error below frees it.
                let verifier = Verifier::Message(copy);
                // SAFETY: both contexts are live.
                if unsafe { openssl_sys::EVP_MD_CTX_copy_ex(copy, ctx) } != 1 {
                    return Err(Error::Openssl("EVP_MD_CTX_copy_ex"));
                }
                Ok(verifier)
            }
        }
    }
}

impl Drop for Verifier {
    fn drop(&mut self) {
        // SAFETY: each context is owned here and freed once.
        unsafe {
            match *self {
                Verifier::Hash(ctx) => openssl_sys::EVP_PKEY_CTX_free(ctx),
                Verifier::Message(ctx) => openssl_sys::EVP_MD_CTX_free(ctx),
            }
        }
    }
}
