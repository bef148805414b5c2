//! `extern "C"` shims for key generation (provider-keymgmt(7) `OSSL_FUNC_KEYMGMT_GEN_*`), shared
//! by the keymgmt tables of `keymgmt`. Logic lives in `crate::ops::keygen`.

use std::ffi::{c_int, c_void};
use std::sync::Arc;

use crate::edge::dispatch::Table;
use crate::edge::handle;
use crate::ops::keygen::{GenCtx, PARAM_KEY_USAGE, PARAM_URI};
use crate::ops::keymgmt::KeyData;
use crate::sys::abi::{self, OSSL_PARAM};
use crate::sys::params::{Params, param_desc};
use crate::token::object::KeyAlgorithm;

/// `OSSL_FUNC_KEYMGMT_GEN_INIT` of `algorithm`.
///
/// # Safety
/// `provctx` is ours; `params` is NULL or a terminated array.
pub(super) unsafe fn gen_init(
    algorithm: KeyAlgorithm,
    provctx: *mut c_void,
    selection: c_int,
    params: *const OSSL_PARAM,
) -> *mut c_void {
    ffi_boundary!("kmgmt_gen_init", std::ptr::null_mut(), {
        // SAFETY: per the caller's contract.
        let (prov, params) = unsafe { (super::prov_ctx(provctx)?, Params::new(params)) };
        Ok(handle::into_raw(GenCtx::new(
            Arc::clone(prov),
            algorithm,
            selection,
            params,
        )?))
    })
}

/// Borrows a generation context.
///
/// # Safety
/// `genctx` is NULL or a live `GenCtx` of ours, not used by another thread right now.
unsafe fn gen_ctx<'a>(genctx: *mut c_void) -> crate::error::Result<&'a mut GenCtx> {
    // SAFETY: per the caller's contract.
    unsafe { handle::borrow_mut::<GenCtx>(genctx, "key generation context") }
}

/// `OSSL_FUNC_KEYMGMT_GEN_SET_PARAMS`.
pub(super) unsafe extern "C" fn kmgmt_gen_set_params(
    genctx: *mut c_void,
    params: *const OSSL_PARAM,
) -> c_int {
    ffi_boundary!("kmgmt_gen_set_params", 0, {
        // SAFETY: genctx is ours; params is a terminated array or NULL.
        let (ctx, params) = unsafe { (gen_ctx(genctx)?, Params::new(params)) };
        ctx.set_params(params)?;
        Ok(1)
    })
}

/// `OSSL_FUNC_KEYMGMT_GEN_SET_TEMPLATE`: parameters from a key of ours.
pub(super) unsafe extern "C" fn kmgmt_gen_set_template(
    genctx: *mut c_void,
    template: *mut c_void,
) -> c_int {
    ffi_boundary!("kmgmt_gen_set_template", 0, {
        // SAFETY: genctx is ours; OpenSSL moved the template to our keymgmt (NULL allowed).
        let ctx = unsafe { gen_ctx(genctx)? };
        // SAFETY: template is NULL or a live keydata of ours.
        if let Ok(template) = unsafe { handle::borrow::<KeyData>(template, "template key") } {
            ctx.set_template(template)?;
        }
        Ok(1)
    })
}

/// `OSSL_FUNC_KEYMGMT_GEN`: the new key (the OpenSSL progress callback is not called: the token
/// reports no progress).
pub(super) unsafe extern "C" fn kmgmt_gen(
    genctx: *mut c_void,
    _callback: abi::OSSL_CALLBACK,
    _cbarg: *mut c_void,
) -> *mut c_void {
    ffi_boundary!("kmgmt_gen", std::ptr::null_mut(), {
        // SAFETY: genctx is ours.
        let ctx = unsafe { gen_ctx(genctx)? };
        Ok(handle::into_raw(ctx.generate()?))
    })
}

/// `OSSL_FUNC_KEYMGMT_GEN_CLEANUP`.
pub(super) unsafe extern "C" fn kmgmt_gen_cleanup(genctx: *mut c_void) {
    ffi_boundary!("kmgmt_gen_cleanup", (), {
        // SAFETY: OpenSSL frees each generation context once.
        drop(unsafe { handle::take::<GenCtx>(genctx) });
        Ok(())
    })
}

static RSA_SETTABLE: Table<OSSL_PARAM> = Table(&[
    param_desc!(OSSL_PKEY_PARAM_RSA_BITS, OSSL_PARAM_UNSIGNED_INTEGER),
    param_desc!(OSSL_PKEY_PARAM_RSA_PRIMES, OSSL_PARAM_UNSIGNED_INTEGER),
    param_desc!(OSSL_PKEY_PARAM_RSA_E, OSSL_PARAM_UNSIGNED_INTEGER),
    param_desc!(name PARAM_URI, OSSL_PARAM_UTF8_STRING),
    param_desc!(name PARAM_KEY_USAGE, OSSL_PARAM_UTF8_STRING),
    param_desc!(END),
]);

static RSA_PSS_SETTABLE: Table<OSSL_PARAM> = Table(&[
    param_desc!(OSSL_PKEY_PARAM_RSA_BITS, OSSL_PARAM_UNSIGNED_INTEGER),
    param_desc!(OSSL_PKEY_PARAM_RSA_PRIMES, OSSL_PARAM_UNSIGNED_INTEGER),
    param_desc!(OSSL_PKEY_PARAM_RSA_E, OSSL_PARAM_UNSIGNED_INTEGER),
    param_desc!(OSSL_PKEY_PARAM_RSA_DIGEST, OSSL_PARAM_UTF8_STRING),
    param_desc!(name PARAM_URI, OSSL_PARAM_UTF8_STRING),
    param_desc!(name PARAM_KEY_USAGE, OSSL_PARAM_UTF8_STRING),
    param_desc!(END),
]);

static EC_SETTABLE: Table<OSSL_PARAM> = Table(&[
    param_desc!(OSSL_PKEY_PARAM_GROUP_NAME, OSSL_PARAM_UTF8_STRING),
    param_desc!(OSSL_PKEY_PARAM_EC_ENCODING, OSSL_PARAM_UTF8_STRING),
    param_desc!(name PARAM_URI, OSSL_PARAM_UTF8_STRING),
    param_desc!(name PARAM_KEY_USAGE, OSSL_PARAM_UTF8_STRING),
    param_desc!(END),
]);

static EDDSA_SETTABLE: Table<OSSL_PARAM> = Table(&[
    param_desc!(name PARAM_URI, OSSL_PARAM_UTF8_STRING),
    param_desc!(name PARAM_KEY_USAGE, OSSL_PARAM_UTF8_STRING),
    param_desc!(END),
]);

/// The `OSSL_FUNC_KEYMGMT_GEN_SETTABLE_PARAMS` table of `algorithm`.
pub(super) fn gen_settable(algorithm: KeyAlgorithm) -> *const OSSL_PARAM {
    match algorithm {
        KeyAlgorithm::Rsa => RSA_SETTABLE.as_ptr(),
        KeyAlgorithm::RsaPss => RSA_PSS_SETTABLE.as_ptr(),
        KeyAlgorithm::Ec => EC_SETTABLE.as_ptr(),
        KeyAlgorithm::Ed25519 | KeyAlgorithm::Ed448 => EDDSA_SETTABLE.as_ptr(),
    }
}
