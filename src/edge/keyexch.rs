//! `extern "C"` shims and the dispatch table for KEYEXCH (provider-keyexch(7)): ECDH. Logic
//! lives in `crate::ops::keyexch`.

use std::ffi::{c_int, c_void};
use std::sync::Arc;

use crate::edge::dispatch::{END, Table, dispatch};
use crate::edge::handle;
use crate::ops::keyexch::ExchangeCtx;
use crate::ops::keymgmt::KeyData;
use crate::sys::abi::{OSSL_DISPATCH, OSSL_PARAM};
use crate::sys::params::{Params, ParamsOut, param_desc};
use crate::sys::slice::OutBuf;

pub(crate) static ECDH: &[OSSL_DISPATCH] = &[
    dispatch!(
        OSSL_FUNC_KEYEXCH_NEWCTX,
        OSSL_FUNC_keyexch_newctx_fn,
        exch_ecdh_newctx
    ),
    dispatch!(OSSL_FUNC_KEYEXCH_INIT, OSSL_FUNC_keyexch_init_fn, exch_init),
    dispatch!(
        OSSL_FUNC_KEYEXCH_SET_PEER,
        OSSL_FUNC_keyexch_set_peer_fn,
        exch_set_peer
    ),
    dispatch!(
        OSSL_FUNC_KEYEXCH_DERIVE,
        OSSL_FUNC_keyexch_derive_fn,
        exch_derive
    ),
    dispatch!(
        OSSL_FUNC_KEYEXCH_FREECTX,
        OSSL_FUNC_keyexch_freectx_fn,
        exch_freectx
    ),
    dispatch!(
        OSSL_FUNC_KEYEXCH_DUPCTX,
        OSSL_FUNC_keyexch_dupctx_fn,
        exch_dupctx
    ),
    dispatch!(
        OSSL_FUNC_KEYEXCH_SET_CTX_PARAMS,
        OSSL_FUNC_keyexch_set_ctx_params_fn,
        exch_set_ctx_params
    ),
    dispatch!(
        OSSL_FUNC_KEYEXCH_SETTABLE_CTX_PARAMS,
        OSSL_FUNC_keyexch_settable_ctx_params_fn,
        exch_settable_ctx_params
    ),
    dispatch!(
        OSSL_FUNC_KEYEXCH_GET_CTX_PARAMS,
        OSSL_FUNC_keyexch_get_ctx_params_fn,
        exch_get_ctx_params
    ),
    dispatch!(
        OSSL_FUNC_KEYEXCH_GETTABLE_CTX_PARAMS,
        OSSL_FUNC_keyexch_gettable_ctx_params_fn,
        exch_gettable_ctx_params
    ),
    END,
];

/// Borrows an exchange context.
///
/// # Safety
/// `ctx` is NULL or a live `ExchangeCtx` of ours not used by another thread right now.
unsafe fn exchange_ctx<'a>(ctx: *mut c_void) -> crate::error::Result<&'a mut ExchangeCtx> {
    // SAFETY: per the caller's contract.
    unsafe { handle::borrow_mut::<ExchangeCtx>(ctx, "key exchange context") }
}

/// Borrows keydata made by our keymgmt.
///
/// # Safety
/// `provkey` is NULL or a live keydata of ours.
unsafe fn key_data<'a>(provkey: *mut c_void) -> crate::error::Result<&'a KeyData> {
    // SAFETY: per the caller's contract.
    unsafe { handle::borrow::<KeyData>(provkey, "key") }
}

/// `OSSL_FUNC_KEYEXCH_NEWCTX`.
unsafe extern "C" fn exch_ecdh_newctx(provctx: *mut c_void) -> *mut c_void {
    ffi_boundary!("exch_ecdh_newctx", std::ptr::null_mut(), {
        // SAFETY: provctx is ours.
        let prov = unsafe { super::prov_ctx(provctx)? };
        Ok(handle::into_raw(ExchangeCtx::new(Arc::clone(prov))))
    })
}

/// `OSSL_FUNC_KEYEXCH_INIT`.
unsafe extern "C" fn exch_init(
    ctx: *mut c_void,
    provkey: *mut c_void,
    params: *const OSSL_PARAM,
) -> c_int {
    ffi_boundary!("exch_init", 0, {
        // SAFETY: ctx and provkey are ours; params is a terminated array or NULL.
        let (ctx, data, params) =
            unsafe { (exchange_ctx(ctx)?, key_data(provkey)?, Params::new(params)) };
        ctx.init(Arc::clone(data.key()?), params)?;
        Ok(1)
    })
}

/// `OSSL_FUNC_KEYEXCH_SET_PEER`: OpenSSL has moved the peer key to our keymgmt.
unsafe extern "C" fn exch_set_peer(ctx: *mut c_void, provkey: *mut c_void) -> c_int {
    ffi_boundary!("exch_set_peer", 0, {
        // SAFETY: ctx and provkey are ours.
        let (ctx, data) = unsafe { (exchange_ctx(ctx)?, key_data(provkey)?) };
        ctx.set_peer(data.key()?)?;
        Ok(1)
    })
}

/// `OSSL_FUNC_KEYEXCH_DERIVE`.
unsafe extern "C" fn exch_derive(
    ctx: *mut c_void,
    secret: *mut u8,
    secretlen: *mut usize,
    outlen: usize,
) -> c_int {
    ffi_boundary!("exch_derive", 0, {
        // SAFETY: ctx is ours; secret is NULL or writable for outlen; secretlen is writable.
        let (ctx, out) = unsafe { (exchange_ctx(ctx)?, OutBuf::new(secret, outlen, secretlen)?) };
        ctx.derive(out)?;
        Ok(1)
    })
}

/// `OSSL_FUNC_KEYEXCH_FREECTX`.
unsafe extern "C" fn exch_freectx(ctx: *mut c_void) {
    ffi_boundary!("exch_freectx", (), {
        // SAFETY: OpenSSL frees each context once.
        drop(unsafe { handle::take::<ExchangeCtx>(ctx) });
        Ok(())
    })
}

/// `OSSL_FUNC_KEYEXCH_DUPCTX`.
unsafe extern "C" fn exch_dupctx(ctx: *mut c_void) -> *mut c_void {
    ffi_boundary!("exch_dupctx", std::ptr::null_mut(), {
        // SAFETY: ctx is ours.
        let ctx = unsafe { exchange_ctx(ctx)? };
        Ok(handle::into_raw(ctx.clone()))
    })
}

/// `OSSL_FUNC_KEYEXCH_SET_CTX_PARAMS`.
unsafe extern "C" fn exch_set_ctx_params(ctx: *mut c_void, params: *const OSSL_PARAM) -> c_int {
    ffi_boundary!("exch_set_ctx_params", 0, {
        // SAFETY: ctx is ours; params is a terminated array or NULL.
        let (ctx, params) = unsafe { (exchange_ctx(ctx)?, Params::new(params)) };
        ctx.set_params(params)?;
        Ok(1)
    })
}

/// `OSSL_FUNC_KEYEXCH_GET_CTX_PARAMS`.
unsafe extern "C" fn exch_get_ctx_params(ctx: *mut c_void, params: *mut OSSL_PARAM) -> c_int {
    ffi_boundary!("exch_get_ctx_params", 0, {
        // SAFETY: ctx is ours; params is a terminated writable array.
        let (ctx, mut out) = unsafe { (exchange_ctx(ctx)?, ParamsOut::new(params)) };
        ctx.get_params(&mut out)?;
        Ok(1)
    })
}

static PARAMS: Table<OSSL_PARAM> = Table(&[
    param_desc!(
        OSSL_EXCHANGE_PARAM_EC_ECDH_COFACTOR_MODE,
        OSSL_PARAM_INTEGER
    ),
    param_desc!(OSSL_EXCHANGE_PARAM_KDF_TYPE, OSSL_PARAM_UTF8_STRING),
    param_desc!(OSSL_EXCHANGE_PARAM_KDF_DIGEST, OSSL_PARAM_UTF8_STRING),
    param_desc!(OSSL_EXCHANGE_PARAM_KDF_OUTLEN, OSSL_PARAM_UNSIGNED_INTEGER),
    param_desc!(OSSL_EXCHANGE_PARAM_KDF_UKM, OSSL_PARAM_OCTET_STRING),
    param_desc!(END),
]);

/// `OSSL_FUNC_KEYEXCH_SETTABLE_CTX_PARAMS`.
unsafe extern "C" fn exch_settable_ctx_params(
    _ctx: *mut c_void,
    _provctx: *mut c_void,
) -> *const OSSL_PARAM {
    PARAMS.as_ptr()
}

/// `OSSL_FUNC_KEYEXCH_GETTABLE_CTX_PARAMS`.
unsafe extern "C" fn exch_gettable_ctx_params(
    _ctx: *mut c_void,
    _provctx: *mut c_void,
) -> *const OSSL_PARAM {
    PARAMS.as_ptr()
}
