//! `extern "C"` shims and dispatch tables for SIGNATURE (provider-signature(7)): RSA, ECDSA,
//! ED25519, ED448, signing on the token and verifying through another provider, and with
//! OpenSSL 3.4+ headers the sign-message algorithms RSA-SHA1 ... RSA-SHA3-512 and ECDSA-SHA1 ...
//! ECDSA-SHA3-512 (`message` below, signing only). Logic lives in `crate::ops::signature`.

use std::ffi::{CStr, c_char, c_int, c_void};
use std::sync::Arc;

use crate::edge::dispatch::{END, Table, dispatch};
use crate::edge::handle;
use crate::ops::keymgmt::KeyData;
use crate::ops::signature::{SigAlgorithm, SignCtx};
use crate::sys::abi::{OSSL_DISPATCH, OSSL_PARAM};
use crate::sys::params::{Params, ParamsOut, param_desc};
use crate::sys::slice::{self, OutBuf};

macro_rules! newctx {
    ($name:ident, $alg:expr) => {
        /// `OSSL_FUNC_SIGNATURE_NEWCTX`.
        unsafe extern "C" fn $name(provctx: *mut c_void, _propq: *const c_char) -> *mut c_void {
            ffi_boundary!("sig_newctx", std::ptr::null_mut(), {
                // SAFETY: provctx is ours.
                let prov = unsafe { super::prov_ctx(provctx)? };
                Ok(handle::into_raw(SignCtx::new(Arc::clone(prov), $alg)))
            })
        }
    };
}
newctx!(sig_rsa_newctx, SigAlgorithm::Rsa);
newctx!(sig_ecdsa_newctx, SigAlgorithm::Ecdsa);
newctx!(sig_ed25519_newctx, SigAlgorithm::Ed25519);
newctx!(sig_ed448_newctx, SigAlgorithm::Ed448);

/// One signature algorithm's dispatch table: the functions every algorithm shares, then those
/// of its kind. `hash_then_sign` (RSA, ECDSA): sign over a hash and the digest-sign calls;
/// `one_shot` (EdDSA, like OpenSSL's own): only the one-shot `digest_sign`. A static slice, so
/// an entry can be gated on the OpenSSL version with `#[cfg(ossl_vNNN)]`.
macro_rules! signature_table {
    ($name:ident, $newctx:ident, hash_then_sign) => {
        signature_table!(@table $name, $newctx, [
            dispatch!(
                OSSL_FUNC_SIGNATURE_SIGN_INIT,
                OSSL_FUNC_signature_sign_init_fn,
                sig_sign_init
            ),
            dispatch!(
                OSSL_FUNC_SIGNATURE_SIGN,
                OSSL_FUNC_signature_sign_fn,
                sig_sign
            ),
            dispatch!(
                OSSL_FUNC_SIGNATURE_DIGEST_SIGN_UPDATE,
                OSSL_FUNC_signature_digest_sign_update_fn,
                sig_digest_sign_update
            ),
            dispatch!(
                OSSL_FUNC_SIGNATURE_DIGEST_SIGN_FINAL,
                OSSL_FUNC_signature_digest_sign_final_fn,
                sig_digest_sign_final
            ),
            dispatch!(
                OSSL_FUNC_SIGNATURE_DIGEST_SIGN,
                OSSL_FUNC_signature_digest_sign_fn,
                sig_digest_sign
            ),
            dispatch!(
                OSSL_FUNC_SIGNATURE_VERIFY_INIT,
                OSSL_FUNC_signature_verify_init_fn,
                sig_verify_init
            ),
            dispatch!(
                OSSL_FUNC_SIGNATURE_VERIFY,
                OSSL_FUNC_signature_verify_fn,
                sig_verify
            ),
            dispatch!(
                OSSL_FUNC_SIGNATURE_DIGEST_VERIFY_UPDATE,
                OSSL_FUNC_signature_digest_verify_update_fn,
                sig_digest_verify_update
            ),
            dispatch!(
                OSSL_FUNC_SIGNATURE_DIGEST_VERIFY_FINAL,
                OSSL_FUNC_signature_digest_verify_final_fn,
                sig_digest_verify_final
            ),
            dispatch!(
                OSSL_FUNC_SIGNATURE_DIGEST_VERIFY,
                OSSL_FUNC_signature_digest_verify_fn,
                sig_digest_verify
            ),
        ]);
    };
    ($name:ident, $newctx:ident, one_shot) => {
        signature_table!(@table $name, $newctx, [
            dispatch!(
                OSSL_FUNC_SIGNATURE_DIGEST_SIGN,
                OSSL_FUNC_signature_digest_sign_fn,
                sig_digest_sign
            ),
            dispatch!(
                OSSL_FUNC_SIGNATURE_DIGEST_VERIFY,
                OSSL_FUNC_signature_digest_verify_fn,
                sig_digest_verify
            ),
        ]);
    };
    (@table $name:ident, $newctx:ident, [$($entry:expr),* $(,)?]) => {
        pub(crate) static $name: &[OSSL_DISPATCH] = &[
            dispatch!(
                OSSL_FUNC_SIGNATURE_NEWCTX,
                OSSL_FUNC_signature_newctx_fn,
                $newctx
            ),
            dispatch!(
                OSSL_FUNC_SIGNATURE_FREECTX,
                OSSL_FUNC_signature_freectx_fn,
                sig_freectx
            ),
            dispatch!(
                OSSL_FUNC_SIGNATURE_DUPCTX,
                OSSL_FUNC_signature_dupctx_fn,
                sig_dupctx
            ),
            dispatch!(
                OSSL_FUNC_SIGNATURE_DIGEST_SIGN_INIT,
                OSSL_FUNC_signature_digest_sign_init_fn,
                sig_digest_sign_init
            ),
            dispatch!(
                OSSL_FUNC_SIGNATURE_DIGEST_VERIFY_INIT,
                OSSL_FUNC_signature_digest_verify_init_fn,
                sig_digest_verify_init
            ),
            dispatch!(
                OSSL_FUNC_SIGNATURE_GET_CTX_PARAMS,
                OSSL_FUNC_signature_get_ctx_params_fn,
                sig_get_ctx_params
            ),
            dispatch!(
                OSSL_FUNC_SIGNATURE_GETTABLE_CTX_PARAMS,
                OSSL_FUNC_signature_gettable_ctx_params_fn,
                sig_gettable_ctx_params
            ),
            dispatch!(
                OSSL_FUNC_SIGNATURE_SET_CTX_PARAMS,
                OSSL_FUNC_signature_set_ctx_params_fn,
                sig_set_ctx_params
            ),
            dispatch!(
                OSSL_FUNC_SIGNATURE_SETTABLE_CTX_PARAMS,
                OSSL_FUNC_signature_settable_ctx_params_fn,
                sig_settable_ctx_params
            ),
            $($entry,)*
            END,
        ];
    };
}

signature_table!(RSA, sig_rsa_newctx, hash_then_sign);
signature_table!(ECDSA, sig_ecdsa_newctx, hash_then_sign);
signature_table!(ED25519, sig_ed25519_newctx, one_shot);
signature_table!(ED448, sig_ed448_newctx, one_shot);

/// Borrows a signature context.
///
/// # Safety
/// `ctx` is NULL or a live `SignCtx` of ours not used by another thread right now.
unsafe fn sign_ctx<'a>(ctx: *mut c_void) -> crate::error::Result<&'a mut SignCtx> {
    // SAFETY: per the caller's contract.
    unsafe { handle::borrow_mut::<SignCtx>(ctx, "signature context") }
}

/// The key of keydata made by our keymgmt; `None` for a NULL `provkey`, which OpenSSL passes
/// to re-initialise an operation with the key it already has.
///
/// # Safety
/// `provkey` is NULL or a live keydata of ours.
unsafe fn key_of(
    provkey: *mut c_void,
) -> crate::error::Result<Option<Arc<crate::token::object::KeyObj>>> {
    if provkey.is_null() {
        return Ok(None);
    }
    // SAFETY: per the caller's contract, non-NULL here.
    let data = unsafe { handle::borrow::<KeyData>(provkey, "key")? };
    data.key().cloned().map(Some)
}

/// `OSSL_FUNC_SIGNATURE_FREECTX`.
unsafe extern "C" fn sig_freectx(ctx: *mut c_void) {
    ffi_boundary!("sig_freectx", (), {
        // SAFETY: OpenSSL frees each context once.
        drop(unsafe { handle::take::<SignCtx>(ctx) });
        Ok(())
    })
}

/// `OSSL_FUNC_SIGNATURE_DUPCTX`.
unsafe extern "C" fn sig_dupctx(ctx: *mut c_void) -> *mut c_void {
    ffi_boundary!("sig_dupctx", std::ptr::null_mut(), {
        // SAFETY: ctx is ours.
        let ctx = unsafe { sign_ctx(ctx)? };
        Ok(handle::into_raw(ctx.duplicate()?))
    })
}

/// `OSSL_FUNC_SIGNATURE_SIGN_INIT`.
unsafe extern "C" fn sig_sign_init(
    ctx: *mut c_void,
    provkey: *mut c_void,
    params: *const OSSL_PARAM,
) -> c_int {
    ffi_boundary!("sig_sign_init", 0, {
        // SAFETY: ctx and provkey are ours; params is a terminated array or NULL.
        let (ctx, key, params) = unsafe { (sign_ctx(ctx)?, key_of(provkey)?, Params::new(params)) };
        ctx.sign_init(key, params)?;
        Ok(1)
    })
}

/// `sign` and `digest_sign` share the C prototype `(ctx, sig, siglen, sigsize, tbs, tbslen)`.
macro_rules! one_shot_sign {
    ($(#[$doc:meta])* $name:ident, $method:ident) => {
        $(#[$doc])*
        unsafe extern "C" fn $name(
            ctx: *mut c_void,
            sig: *mut u8,
            siglen: *mut usize,
            sigsize: usize,
            tbs: *const u8,
            tbslen: usize,
        ) -> c_int {
            ffi_boundary!(stringify!($name), 0, {
                // SAFETY: ctx is ours; tbs is readable for tbslen; sig is NULL or writable for
                // sigsize; siglen is writable (provider-signature(7)).
                let (ctx, tbs, out) = unsafe {
                    (
                        sign_ctx(ctx)?,
                        slice::from_raw(tbs, tbslen),
                        OutBuf::new(sig, sigsize, siglen)?,
                    )
                };
                ctx.$method(tbs, out)?;
                Ok(1)
            })
        }
    };
}

one_shot_sign!(
    /// `OSSL_FUNC_SIGNATURE_SIGN`: sign a hash (or raw input without a digest).
    sig_sign,
    sign
);
one_shot_sign!(
    /// `OSSL_FUNC_SIGNATURE_DIGEST_SIGN`: one-shot hash-and-sign (EdDSA: sign the message).
    sig_digest_sign,
    digest_sign
);

/// `OSSL_FUNC_SIGNATURE_DIGEST_SIGN_INIT`.
unsafe extern "C" fn sig_digest_sign_init(
    ctx: *mut c_void,
    mdname: *const c_char,
    provkey: *mut c_void,
    params: *const OSSL_PARAM,
) -> c_int {
    ffi_boundary!("sig_digest_sign_init", 0, {
        // SAFETY: ctx and provkey are ours; params is a terminated array or NULL.
        let (ctx, key, params) = unsafe { (sign_ctx(ctx)?, key_of(provkey)?, Params::new(params)) };
        // SAFETY: mdname is NULL or a NUL-terminated string.
        let name = unsafe { digest_name(mdname)? };
        ctx.digest_sign_init(name, key, params)?;
        Ok(1)
    })
}

/// `OSSL_FUNC_SIGNATURE_DIGEST_SIGN_UPDATE`.
unsafe extern "C" fn sig_digest_sign_update(
    ctx: *mut c_void,
    data: *const u8,
    len: usize,
) -> c_int {
    ffi_boundary!("sig_digest_sign_update", 0, {
        // SAFETY: ctx is ours; data is readable for len bytes.
        let (ctx, data) = unsafe { (sign_ctx(ctx)?, slice::from_raw(data, len)) };
        ctx.digest_sign_update(data)?;
        Ok(1)
    })
}

/// `OSSL_FUNC_SIGNATURE_DIGEST_SIGN_FINAL`.
unsafe extern "C" fn sig_digest_sign_final(
    ctx: *mut c_void,
    sig: *mut u8,
    siglen: *mut usize,
    sigsize: usize,
) -> c_int {
    ffi_boundary!("sig_digest_sign_final", 0, {
        // SAFETY: ctx is ours; sig NULL or writable for sigsize; siglen writable.
        let (ctx, out) = unsafe { (sign_ctx(ctx)?, OutBuf::new(sig, sigsize, siglen)?) };
        ctx.digest_sign_final(out)?;
        Ok(1)
    })
}

/// A digest name argument (NULL: none).
///
/// # Safety
/// `mdname` is NULL or a NUL-terminated string.
unsafe fn digest_name<'a>(mdname: *const c_char) -> crate::error::Result<Option<&'a str>> {
    if mdname.is_null() {
        return Ok(None);
    }
    // SAFETY: per the caller's contract.
    unsafe { CStr::from_ptr(mdname) }
        .to_str()
        .map(Some)
        .map_err(|_| crate::error::Error::BadParam("digest name is not UTF-8".into()))
}

/// `OSSL_FUNC_SIGNATURE_VERIFY_INIT`: verification by another provider (see ops::signature).
unsafe extern "C" fn sig_verify_init(
    ctx: *mut c_void,
    provkey: *mut c_void,
    params: *const OSSL_PARAM,
) -> c_int {
    ffi_boundary!("sig_verify_init", 0, {
        // SAFETY: ctx and provkey are ours; params is a terminated array or NULL.
        let (ctx, key, params) = unsafe { (sign_ctx(ctx)?, key_of(provkey)?, Params::new(params)) };
        ctx.verify_init(None, key, params)?;
        Ok(1)
    })
}

/// `OSSL_FUNC_SIGNATURE_DIGEST_VERIFY_INIT`.
unsafe extern "C" fn sig_digest_verify_init(
    ctx: *mut c_void,
    mdname: *const c_char,
    provkey: *mut c_void,
    params: *const OSSL_PARAM,
) -> c_int {
    ffi_boundary!("sig_digest_verify_init", 0, {
        // SAFETY: ctx and provkey are ours; mdname NULL or a C string; params terminated or
        // NULL.
        let (ctx, key, params, name) = unsafe {
            (
                sign_ctx(ctx)?,
                key_of(provkey)?,
                Params::new(params),
                digest_name(mdname)?,
            )
        };
        ctx.verify_init(Some(name), key, params)?;
        Ok(1)
    })
}

/// `verify` and `digest_verify` share the prototype `(ctx, sig, siglen, tbs, tbslen)`; 1 when
/// the signature verifies, 0 (nothing raised by this provider) when it does not.
macro_rules! one_shot_verify {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        unsafe extern "C" fn $name(
            ctx: *mut c_void,
            sig: *const u8,
            siglen: usize,
            tbs: *const u8,
            tbslen: usize,
        ) -> c_int {
            ffi_boundary!(stringify!($name), 0, {
                // SAFETY: ctx is ours; sig and tbs are readable for their lengths.
                let (ctx, sig, tbs) = unsafe {
                    (
                        sign_ctx(ctx)?,
                        slice::from_raw(sig, siglen),
                        slice::from_raw(tbs, tbslen),
                    )
                };
                Ok(ctx.verify(sig, tbs)?.into())
            })
        }
    };
}

one_shot_verify!(
    /// `OSSL_FUNC_SIGNATURE_VERIFY`: verify a signature of a hash.
    sig_verify
);
one_shot_verify!(
    /// `OSSL_FUNC_SIGNATURE_DIGEST_VERIFY`: one-shot verification of a message.
    sig_digest_verify
);

/// `OSSL_FUNC_SIGNATURE_DIGEST_VERIFY_UPDATE`.
unsafe extern "C" fn sig_digest_verify_update(
    ctx: *mut c_void,
    data: *const u8,
    len: usize,
) -> c_int {
    ffi_boundary!("sig_digest_verify_update", 0, {
        // SAFETY: ctx is ours; data is readable for len bytes.
        let (ctx, data) = unsafe { (sign_ctx(ctx)?, slice::from_raw(data, len)) };
        ctx.digest_verify_update(data)?;
        Ok(1)
    })
}

/// `OSSL_FUNC_SIGNATURE_DIGEST_VERIFY_FINAL`: 1 when the signature verifies, 0 when not.
unsafe extern "C" fn sig_digest_verify_final(
    ctx: *mut c_void,
    sig: *const u8,
    siglen: usize,
) -> c_int {
    ffi_boundary!("sig_digest_verify_final", 0, {
        // SAFETY: ctx is ours; sig is readable for siglen bytes.
        let (ctx, sig) = unsafe { (sign_ctx(ctx)?, slice::from_raw(sig, siglen)) };
        Ok(ctx.digest_verify_final(sig)?.into())
    })
}

/// `OSSL_FUNC_SIGNATURE_GET_CTX_PARAMS`.
unsafe extern "C" fn sig_get_ctx_params(ctx: *mut c_void, params: *mut OSSL_PARAM) -> c_int {
    ffi_boundary!("sig_get_ctx_params", 0, {
        // SAFETY: ctx is ours; params is a terminated writable array.
        let (ctx, mut out) = unsafe { (sign_ctx(ctx)?, ParamsOut::new(params)) };
        ctx.get_params(&mut out)?;
        Ok(1)
    })
}

/// `OSSL_FUNC_SIGNATURE_SET_CTX_PARAMS`.
unsafe extern "C" fn sig_set_ctx_params(ctx: *mut c_void, params: *const OSSL_PARAM) -> c_int {
    ffi_boundary!("sig_set_ctx_params", 0, {
        // SAFETY: ctx is ours; params is a terminated array or NULL.
        let (ctx, params) = unsafe { (sign_ctx(ctx)?, Params::new(params)) };
        ctx.set_params(params)?;
        Ok(1)
    })
}

static GETTABLE: Table<OSSL_PARAM> = Table(&[
    param_desc!(OSSL_SIGNATURE_PARAM_ALGORITHM_ID, OSSL_PARAM_OCTET_STRING),
    param_desc!(OSSL_SIGNATURE_PARAM_DIGEST, OSSL_PARAM_UTF8_STRING),
    param_desc!(
        OSSL_SIGNATURE_PARAM_DIGEST_SIZE,
        OSSL_PARAM_UNSIGNED_INTEGER
    ),
    param_desc!(OSSL_SIGNATURE_PARAM_PAD_MODE, OSSL_PARAM_INTEGER),
    param_desc!(OSSL_SIGNATURE_PARAM_PSS_SALTLEN, OSSL_PARAM_INTEGER),
    param_desc!(OSSL_SIGNATURE_PARAM_MGF1_DIGEST, OSSL_PARAM_UTF8_STRING),
    param_desc!(END),
]);

/// `OSSL_FUNC_SIGNATURE_GETTABLE_CTX_PARAMS`.
unsafe extern "C" fn sig_gettable_ctx_params(
    _ctx: *mut c_void,
    _provctx: *mut c_void,
) -> *const OSSL_PARAM {
    GETTABLE.as_ptr()
}

// pad-mode and saltlen are declared as strings (as OpenSSL's own RSA signature does) so that
// text options like `-sigopt rsa_padding_mode:pss` convert; set_params accepts integers too.
static SETTABLE: Table<OSSL_PARAM> = Table(&[
    param_desc!(OSSL_SIGNATURE_PARAM_DIGEST, OSSL_PARAM_UTF8_STRING),
    param_desc!(OSSL_SIGNATURE_PARAM_PROPERTIES, OSSL_PARAM_UTF8_STRING),
    param_desc!(OSSL_SIGNATURE_PARAM_PAD_MODE, OSSL_PARAM_UTF8_STRING),
    param_desc!(OSSL_SIGNATURE_PARAM_PSS_SALTLEN, OSSL_PARAM_UTF8_STRING),
    param_desc!(OSSL_SIGNATURE_PARAM_MGF1_DIGEST, OSSL_PARAM_UTF8_STRING),
    param_desc!(OSSL_SIGNATURE_PARAM_MGF1_PROPERTIES, OSSL_PARAM_UTF8_STRING),
    param_desc!(END),
]);

/// `OSSL_FUNC_SIGNATURE_SETTABLE_CTX_PARAMS`.
unsafe extern "C" fn sig_settable_ctx_params(
    _ctx: *mut c_void,
    _provctx: *mut c_void,
) -> *const OSSL_PARAM {
    SETTABLE.as_ptr()
}

/// The sign-message algorithms of OpenSSL 3.4+ (`EVP_PKEY_sign_message_init` with
/// `RSA-SHA256`, `ECDSA-SHA384`, ...): each fixes the digest; signing is the digest-sign path.
/// Only built against 3.4+ headers (the dispatch ids and prototypes exist from 3.4).
#[cfg(ossl_v340)]
pub(crate) mod message {
    use std::ffi::{c_char, c_int, c_void};
    use std::sync::Arc;

    use super::{
        key_of, sig_dupctx, sig_freectx, sig_get_ctx_params, sig_gettable_ctx_params,
        sig_set_ctx_params, sig_settable_ctx_params, sig_sign, sign_ctx,
    };
    use crate::asn1::Digest;
    use crate::edge::dispatch::{END, Table, dispatch};
    use crate::edge::handle;
    use crate::ops::signature::{SigAlgorithm, SignCtx};
    use crate::sys::abi::{OSSL_DISPATCH, OSSL_PARAM};
    use crate::sys::params::Params;
    use crate::sys::slice::{self, OutBuf};

    /// `OSSL_FUNC_SIGNATURE_SIGN_MESSAGE_INIT`.
    unsafe extern "C" fn sig_sign_message_init(
        ctx: *mut c_void,
        provkey: *mut c_void,
        params: *const OSSL_PARAM,
    ) -> c_int {
        ffi_boundary!("sig_sign_message_init", 0, {
            // SAFETY: ctx and provkey are ours; params is a terminated array or NULL.
            let (ctx, key, params) =
                unsafe { (sign_ctx(ctx)?, key_of(provkey)?, Params::new(params)) };
            ctx.sign_message_init(key, params)?;
            Ok(1)
        })
    }

    /// `OSSL_FUNC_SIGNATURE_SIGN_MESSAGE_UPDATE`.
    unsafe extern "C" fn sig_sign_message_update(
        ctx: *mut c_void,
        data: *const u8,
        len: usize,
    ) -> c_int {
        ffi_boundary!("sig_sign_message_update", 0, {
            // SAFETY: ctx is ours; data is readable for len bytes.
            let (ctx, data) = unsafe { (sign_ctx(ctx)?, slice::from_raw(data, len)) };
            ctx.digest_sign_update(data)?;
            Ok(1)
        })
    }

    /// `OSSL_FUNC_SIGNATURE_SIGN_MESSAGE_FINAL`.
    unsafe extern "C" fn sig_sign_message_final(
        ctx: *mut c_void,
        sig: *mut u8,
        siglen: *mut usize,
        sigsize: usize,
    ) -> c_int {
        ffi_boundary!("sig_sign_message_final", 0, {
            // SAFETY: ctx is ours; sig NULL or writable for sigsize; siglen writable.
            let (ctx, out) = unsafe { (sign_ctx(ctx)?, OutBuf::new(sig, sigsize, siglen)?) };
            ctx.digest_sign_final(out)?;
            Ok(1)
        })
    }

    /// NULL-terminated key type lists for `OSSL_FUNC_SIGNATURE_QUERY_KEY_TYPES`.
    static RSA_KEY_TYPES: Table<*const c_char> = Table(&[c"RSA".as_ptr(), std::ptr::null()]);
    static EC_KEY_TYPES: Table<*const c_char> = Table(&[c"EC".as_ptr(), std::ptr::null()]);

    /// `OSSL_FUNC_SIGNATURE_QUERY_KEY_TYPES` of the RSA-* algorithms.
    unsafe extern "C" fn rsa_key_types() -> *mut *const c_char {
        RSA_KEY_TYPES.as_ptr().cast_mut()
    }

    /// `OSSL_FUNC_SIGNATURE_QUERY_KEY_TYPES` of the ECDSA-* algorithms.
    unsafe extern "C" fn ec_key_types() -> *mut *const c_char {
        EC_KEY_TYPES.as_ptr().cast_mut()
    }

    /// One algorithm: its newctx (the digest fixed) and dispatch table.
    macro_rules! message_algorithm {
        ($table:ident, $newctx:ident, $alg:expr, $digest:expr, $key_types:ident) => {
            /// `OSSL_FUNC_SIGNATURE_NEWCTX`.
            unsafe extern "C" fn $newctx(
                provctx: *mut c_void,
                _propq: *const c_char,
            ) -> *mut c_void {
                ffi_boundary!("sig_message_newctx", std::ptr::null_mut(), {
                    // SAFETY: provctx is ours.
                    let prov = unsafe { crate::edge::prov_ctx(provctx)? };
                    Ok(handle::into_raw(SignCtx::for_messages(
                        Arc::clone(prov),
                        $alg,
                        $digest,
                    )))
                })
            }

            pub(crate) static $table: &[OSSL_DISPATCH] = &[
                dispatch!(
                    OSSL_FUNC_SIGNATURE_NEWCTX,
                    OSSL_FUNC_signature_newctx_fn,
                    $newctx
                ),
                dispatch!(
                    OSSL_FUNC_SIGNATURE_FREECTX,
                    OSSL_FUNC_signature_freectx_fn,
                    sig_freectx
                ),
                dispatch!(
                    OSSL_FUNC_SIGNATURE_DUPCTX,
                    OSSL_FUNC_signature_dupctx_fn,
                    sig_dupctx
                ),
                dispatch!(
                    OSSL_FUNC_SIGNATURE_SIGN_MESSAGE_INIT,
                    OSSL_FUNC_signature_sign_message_init_fn,
                    sig_sign_message_init
                ),
                dispatch!(
                    OSSL_FUNC_SIGNATURE_SIGN_MESSAGE_UPDATE,
                    OSSL_FUNC_signature_sign_message_update_fn,
                    sig_sign_message_update
                ),
                dispatch!(
                    OSSL_FUNC_SIGNATURE_SIGN_MESSAGE_FINAL,
                    OSSL_FUNC_signature_sign_message_final_fn,
                    sig_sign_message_final
                ),
                // One-shot EVP_PKEY_sign after EVP_PKEY_sign_message_init: the message.
                dispatch!(
                    OSSL_FUNC_SIGNATURE_SIGN,
                    OSSL_FUNC_signature_sign_fn,
                    sig_sign
                ),
                dispatch!(
                    OSSL_FUNC_SIGNATURE_QUERY_KEY_TYPES,
                    OSSL_FUNC_signature_query_key_types_fn,
                    $key_types
                ),
                dispatch!(
                    OSSL_FUNC_SIGNATURE_GET_CTX_PARAMS,
                    OSSL_FUNC_signature_get_ctx_params_fn,
                    sig_get_ctx_params
                ),
                dispatch!(
                    OSSL_FUNC_SIGNATURE_GETTABLE_CTX_PARAMS,
                    OSSL_FUNC_signature_gettable_ctx_params_fn,
                    sig_gettable_ctx_params
                ),
                dispatch!(
                    OSSL_FUNC_SIGNATURE_SET_CTX_PARAMS,
                    OSSL_FUNC_signature_set_ctx_params_fn,
                    sig_set_ctx_params
                ),
                dispatch!(
                    OSSL_FUNC_SIGNATURE_SETTABLE_CTX_PARAMS,
                    OSSL_FUNC_signature_settable_ctx_params_fn,
                    sig_settable_ctx_params
                ),
                END,
            ];
        };
    }

    message_algorithm!(
        RSA_SHA1,
        rsa_sha1_newctx,
        SigAlgorithm::Rsa,
        Digest::Sha1,
        rsa_key_types
    );
    message_algorithm!(
        RSA_SHA224,
        rsa_sha224_newctx,
        SigAlgorithm::Rsa,
        Digest::Sha224,
        rsa_key_types
    );
    message_algorithm!(
        RSA_SHA256,
        rsa_sha256_newctx,
        SigAlgorithm::Rsa,
        Digest::Sha256,
        rsa_key_types
    );
    message_algorithm!(
        RSA_SHA384,
        rsa_sha384_newctx,
        SigAlgorithm::Rsa,
        Digest::Sha384,
        rsa_key_types
    );
    message_algorithm!(
        RSA_SHA512,
        rsa_sha512_newctx,
        SigAlgorithm::Rsa,
        Digest::Sha512,
        rsa_key_types
    );
    message_algorithm!(
        RSA_SHA3_224,
        rsa_sha3_224_newctx,
        SigAlgorithm::Rsa,
        Digest::Sha3_224,
        rsa_key_types
    );
    message_algorithm!(
        RSA_SHA3_256,
        rsa_sha3_256_newctx,
        SigAlgorithm::Rsa,
        Digest::Sha3_256,
        rsa_key_types
    );
    message_algorithm!(
        RSA_SHA3_384,
        rsa_sha3_384_newctx,
        SigAlgorithm::Rsa,
        Digest::Sha3_384,
        rsa_key_types
    );
    message_algorithm!(
        RSA_SHA3_512,
        rsa_sha3_512_newctx,
        SigAlgorithm::Rsa,
        Digest::Sha3_512,
        rsa_key_types
    );
    message_algorithm!(
        ECDSA_SHA1,
        ecdsa_sha1_newctx,
        SigAlgorithm::Ecdsa,
        Digest::Sha1,
        ec_key_types
    );
    message_algorithm!(
        ECDSA_SHA224,
        ecdsa_sha224_newctx,
        SigAlgorithm::Ecdsa,
        Digest::Sha224,
        ec_key_types
    );
    message_algorithm!(
        ECDSA_SHA256,
        ecdsa_sha256_newctx,
        SigAlgorithm::Ecdsa,
        Digest::Sha256,
        ec_key_types
    );
    message_algorithm!(
        ECDSA_SHA384,
        ecdsa_sha384_newctx,
        SigAlgorithm::Ecdsa,
        Digest::Sha384,
        ec_key_types
    );
    message_algorithm!(
        ECDSA_SHA512,
        ecdsa_sha512_newctx,
        SigAlgorithm::Ecdsa,
        Digest::Sha512,
        ec_key_types
    );
    message_algorithm!(
        ECDSA_SHA3_224,
        ecdsa_sha3_224_newctx,
        SigAlgorithm::Ecdsa,
        Digest::Sha3_224,
        ec_key_types
    );
    message_algorithm!(
        ECDSA_SHA3_256,
        ecdsa_sha3_256_newctx,
        SigAlgorithm::Ecdsa,
        Digest::Sha3_256,
        ec_key_types
    );
    message_algorithm!(
        ECDSA_SHA3_384,
        ecdsa_sha3_384_newctx,
        SigAlgorithm::Ecdsa,
        Digest::Sha3_384,
        ec_key_types
    );
    message_algorithm!(
        ECDSA_SHA3_512,
        ecdsa_sha3_512_newctx,
        SigAlgorithm::Ecdsa,
        Digest::Sha3_512,
        ec_key_types
    );
}
