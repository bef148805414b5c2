//! `extern "C"` shims and the dispatch table for ASYM_CIPHER (provider-asym_cipher(7)): RSA.
//! Logic lives in `crate::ops::asym_cipher`.

use std::ffi::{c_int, c_void};
use std::sync::Arc;

use crate::edge::dispatch::{END, Table, dispatch};
use crate::edge::handle;
use crate::ops::asym_cipher::CipherCtx;
use crate::ops::keymgmt::KeyData;
use crate::sys::abi::{OSSL_DISPATCH, OSSL_PARAM};
use crate::sys::params::{Params, ParamsOut, param_desc};
use crate::sys::slice::{self, OutBuf};
use crate::token::object::KeyObj;

pub(crate) static RSA: &[OSSL_DISPATCH] = &[
    dispatch!(
        OSSL_FUNC_ASYM_CIPHER_NEWCTX,
        OSSL_FUNC_asym_cipher_newctx_fn,
        asym_rsa_newctx
    ),
    dispatch!(
        OSSL_FUNC_ASYM_CIPHER_FREECTX,
        OSSL_FUNC_asym_cipher_freectx_fn,
        asym_freectx
    ),
    dispatch!(
        OSSL_FUNC_ASYM_CIPHER_DUPCTX,
        OSSL_FUNC_asym_cipher_dupctx_fn,
        asym_dupctx
    ),
    dispatch!(
        OSSL_FUNC_ASYM_CIPHER_ENCRYPT_INIT,
        OSSL_FUNC_asym_cipher_encrypt_init_fn,
        asym_encrypt_init
    ),
    dispatch!(
        OSSL_FUNC_ASYM_CIPHER_ENCRYPT,
        OSSL_FUNC_asym_cipher_encrypt_fn,
        asym_encrypt
    ),
    dispatch!(
        OSSL_FUNC_ASYM_CIPHER_DECRYPT_INIT,
        OSSL_FUNC_asym_cipher_decrypt_init_fn,
        asym_decrypt_init
    ),
    dispatch!(
        OSSL_FUNC_ASYM_CIPHER_DECRYPT,
        OSSL_FUNC_asym_cipher_decrypt_fn,
        asym_decrypt
    ),
    dispatch!(
        OSSL_FUNC_ASYM_CIPHER_GET_CTX_PARAMS,
        OSSL_FUNC_asym_cipher_get_ctx_params_fn,
        asym_get_ctx_params
    ),
    dispatch!(
        OSSL_FUNC_ASYM_CIPHER_GETTABLE_CTX_PARAMS,
        OSSL_FUNC_asym_cipher_gettable_ctx_params_fn,
        asym_gettable_ctx_params
    ),
    dispatch!(
        OSSL_FUNC_ASYM_CIPHER_SET_CTX_PARAMS,
        OSSL_FUNC_asym_cipher_set_ctx_params_fn,
        asym_set_ctx_params
    ),
    dispatch!(
        OSSL_FUNC_ASYM_CIPHER_SETTABLE_CTX_PARAMS,
        OSSL_FUNC_asym_cipher_settable_ctx_params_fn,
        asym_settable_ctx_params
    ),
    END,
];

/// Borrows a cipher context.
///
/// # Safety
/// `ctx` is NULL or a live `CipherCtx` of ours not used by another thread right now.
unsafe fn cipher_ctx<'a>(ctx: *mut c_void) -> crate::error::Result<&'a mut CipherCtx> {
    // SAFETY: per the caller's contract.
    unsafe { handle::borrow_mut::<CipherCtx>(ctx, "asymmetric cipher context") }
}

/// The key of keydata made by our keymgmt.
///
/// # Safety
/// `provkey` is NULL or a live keydata of ours.
unsafe fn key_of(provkey: *mut c_void) -> crate::error::Result<Arc<KeyObj>> {
    // SAFETY: per the caller's contract.
    let data = unsafe { handle::borrow::<KeyData>(provkey, "key")? };
    data.key().cloned()
}

/// `OSSL_FUNC_ASYM_CIPHER_NEWCTX`.
unsafe extern "C" fn asym_rsa_newctx(provctx: *mut c_void) -> *mut c_void {
    ffi_boundary!("asym_rsa_newctx", std::ptr::null_mut(), {
        // SAFETY: provctx is ours.
        let prov = unsafe { super::prov_ctx(provctx)? };
        Ok(handle::into_raw(CipherCtx::new(Arc::clone(prov))))
    })
}

/// `OSSL_FUNC_ASYM_CIPHER_FREECTX`.
unsafe extern "C" fn asym_freectx(ctx: *mut c_void) {
    ffi_boundary!("asym_freectx", (), {
        // SAFETY: OpenSSL frees each context once.
        drop(unsafe { handle::take::<CipherCtx>(ctx) });
        Ok(())
    })
}

/// `OSSL_FUNC_ASYM_CIPHER_DUPCTX`.
unsafe extern "C" fn asym_dupctx(ctx: *mut c_void) -> *mut c_void {
    ffi_boundary!("asym_dupctx", std::ptr::null_mut(), {
        // SAFETY: ctx is ours.
        let ctx = unsafe { cipher_ctx(ctx)? };
        Ok(handle::into_raw(ctx.clone()))
    })
}

/// `OSSL_FUNC_ASYM_CIPHER_ENCRYPT_INIT`.
unsafe extern "C" fn asym_encrypt_init(
    ctx: *mut c_void,
    provkey: *mut c_void,
    params: *const OSSL_PARAM,
) -> c_int {
    ffi_boundary!("asym_encrypt_init", 0, {
        // SAFETY: ctx and provkey are ours; params is a terminated array or NULL.
        let (ctx, key, params) =
            unsafe { (cipher_ctx(ctx)?, key_of(provkey)?, Params::new(params)) };
        ctx.encrypt_init(key, params)?;
        Ok(1)
    })
}

/// `OSSL_FUNC_ASYM_CIPHER_DECRYPT_INIT`.
unsafe extern "C" fn asym_decrypt_init(
    ctx: *mut c_void,
    provkey: *mut c_void,
    params: *const OSSL_PARAM,
) -> c_int {
    ffi_boundary!("asym_decrypt_init", 0, {
        // SAFETY: ctx and provkey are ours; params is a terminated array or NULL.
        let (ctx, key, params) =
            unsafe { (cipher_ctx(ctx)?, key_of(provkey)?, Params::new(params)) };
        ctx.decrypt_init(key, params)?;
        Ok(1)
    })
}

/// `encrypt` and `decrypt` share the C prototype `(ctx, out, outlen, outsize, in, inlen)`.
macro_rules! cipher_call {
    ($(#[$doc:meta])* $name:ident, $method:ident) => {
        $(#[$doc])*
        unsafe extern "C" fn $name(
            ctx: *mut c_void,
            out: *mut u8,
            outlen: *mut usize,
            outsize: usize,
            input: *const u8,
            inlen: usize,
        ) -> c_int {
            ffi_boundary!(stringify!($name), 0, {
                // SAFETY: ctx is ours; input is readable for inlen; out is NULL or writable for
                // outsize; outlen is writable (provider-asym_cipher(7)).
                let (ctx, input, out) = unsafe {
                    (
                        cipher_ctx(ctx)?,
                        slice::from_raw(input, inlen),
                        OutBuf::new(out, outsize, outlen)?,
                    )
                };
                ctx.$method(input, out)?;
                Ok(1)
            })
        }
    };
}

cipher_call!(
    /// `OSSL_FUNC_ASYM_CIPHER_ENCRYPT`.
    asym_encrypt,
    encrypt
);
cipher_call!(
    /// `OSSL_FUNC_ASYM_CIPHER_DECRYPT`.
    asym_decrypt,
    decrypt
);

/// `OSSL_FUNC_ASYM_CIPHER_GET_CTX_PARAMS`.
unsafe extern "C" fn asym_get_ctx_params(ctx: *mut c_void, params: *mut OSSL_PARAM) -> c_int {
    ffi_boundary!("asym_get_ctx_params", 0, {
        // SAFETY: ctx is ours; params is a terminated writable array.
        let (ctx, mut out) = unsafe { (cipher_ctx(ctx)?, ParamsOut::new(params)) };
        ctx.get_params(&mut out)?;
        Ok(1)
    })
}

/// `OSSL_FUNC_ASYM_CIPHER_SET_CTX_PARAMS`.
unsafe extern "C" fn asym_set_ctx_params(ctx: *mut c_void, params: *const OSSL_PARAM) -> c_int {
    ffi_boundary!("asym_set_ctx_params", 0, {
        // SAFETY: ctx is ours; params is a terminated array or NULL.
        let (ctx, params) = unsafe { (cipher_ctx(ctx)?, Params::new(params)) };
        ctx.set_params(params)?;
        Ok(1)
    })
}

static GETTABLE: Table<OSSL_PARAM> = Table(&[
    param_desc!(OSSL_ASYM_CIPHER_PARAM_PAD_MODE, OSSL_PARAM_INTEGER),
    param_desc!(OSSL_ASYM_CIPHER_PARAM_OAEP_DIGEST, OSSL_PARAM_UTF8_STRING),
    param_desc!(OSSL_ASYM_CIPHER_PARAM_MGF1_DIGEST, OSSL_PARAM_UTF8_STRING),
    param_desc!(OSSL_ASYM_CIPHER_PARAM_OAEP_LABEL, OSSL_PARAM_OCTET_STRING),
    param_desc!(
        OSSL_ASYM_CIPHER_PARAM_TLS_CLIENT_VERSION,
        OSSL_PARAM_UNSIGNED_INTEGER
    ),
    param_desc!(
        OSSL_ASYM_CIPHER_PARAM_TLS_NEGOTIATED_VERSION,
        OSSL_PARAM_UNSIGNED_INTEGER
    ),
    param_desc!(END),
]);

/// `OSSL_FUNC_ASYM_CIPHER_GETTABLE_CTX_PARAMS`.
unsafe extern "C" fn asym_gettable_ctx_params(
    _ctx: *mut c_void,
    _provctx: *mut c_void,
) -> *const OSSL_PARAM {
    GETTABLE.as_ptr()
}

// pad-mode is declared as a string (as OpenSSL's own RSA cipher does) so that text options
// like `-pkeyopt rsa_padding_mode:oaep` convert; set_params accepts integers too.
static SETTABLE: Table<OSSL_PARAM> = Table(&[
    param_desc!(OSSL_ASYM_CIPHER_PARAM_PAD_MODE, OSSL_PARAM_UTF8_STRING),
    param_desc!(OSSL_ASYM_CIPHER_PARAM_OAEP_DIGEST, OSSL_PARAM_UTF8_STRING),
    param_desc!(
        OSSL_ASYM_CIPHER_PARAM_OAEP_DIGEST_PROPS,
        OSSL_PARAM_UTF8_STRING
    ),
    param_desc!(OSSL_ASYM_CIPHER_PARAM_MGF1_DIGEST, OSSL_PARAM_UTF8_STRING),
    param_desc!(
        OSSL_ASYM_CIPHER_PARAM_MGF1_DIGEST_PROPS,
        OSSL_PARAM_UTF8_STRING
    ),
    param_desc!(OSSL_ASYM_CIPHER_PARAM_OAEP_LABEL, OSSL_PARAM_OCTET_STRING),
    param_desc!(
        OSSL_ASYM_CIPHER_PARAM_TLS_CLIENT_VERSION,
        OSSL_PARAM_UNSIGNED_INTEGER
    ),
    param_desc!(
        OSSL_ASYM_CIPHER_PARAM_TLS_NEGOTIATED_VERSION,
        OSSL_PARAM_UNSIGNED_INTEGER
    ),
    param_desc!(END),
]);

/// `OSSL_FUNC_ASYM_CIPHER_SETTABLE_CTX_PARAMS`.
unsafe extern "C" fn asym_settable_ctx_params(
    _ctx: *mut c_void,
    _provctx: *mut c_void,
) -> *const OSSL_PARAM {
    SETTABLE.as_ptr()
}
