//! `extern "C"` shims and dispatch table for the `pkcs11` STORE (provider-storemgmt(7)).
//! Logic lives in `crate::ops::store`; this file turns found objects into provider-object(7) params
//! and the OpenSSL passphrase callback into a PIN prompt.

use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::sync::Arc;

use crate::edge::dispatch::{END, Table, dispatch};
use crate::edge::handle;
use crate::error::Error;
use crate::ops::keymgmt;
use crate::ops::search::Search;
use crate::ops::store::{StoreCtx, UriOrigin};
use crate::sys::abi::{self, OSSL_DISPATCH, OSSL_PARAM};
use crate::sys::params::{ParamBuilder, Params, param_desc};
use crate::token::object::Found;

pub(crate) static STORE: &[OSSL_DISPATCH] = &[
    dispatch!(OSSL_FUNC_STORE_OPEN, OSSL_FUNC_store_open_fn, store_open),
    dispatch!(
        OSSL_FUNC_STORE_SETTABLE_CTX_PARAMS,
        OSSL_FUNC_store_settable_ctx_params_fn,
        store_settable_ctx_params
    ),
    dispatch!(
        OSSL_FUNC_STORE_SET_CTX_PARAMS,
        OSSL_FUNC_store_set_ctx_params_fn,
        store_set_ctx_params
    ),
    dispatch!(OSSL_FUNC_STORE_LOAD, OSSL_FUNC_store_load_fn, store_load),
    dispatch!(OSSL_FUNC_STORE_EOF, OSSL_FUNC_store_eof_fn, store_eof),
    dispatch!(OSSL_FUNC_STORE_CLOSE, OSSL_FUNC_store_close_fn, store_close),
    END,
];

/// `OSSL_FUNC_STORE_OPEN`.
unsafe extern "C" fn store_open(provctx: *mut c_void, uri: *const c_char) -> *mut c_void {
    ffi_boundary!("store_open", std::ptr::null_mut(), {
        // SAFETY: provctx is ours.
        let prov = unsafe { super::prov_ctx(provctx)? };
        if uri.is_null() {
            return Err(Error::NullArg("URI"));
        }
        // SAFETY: a non-NULL uri is a NUL-terminated string.
        let uri = unsafe { CStr::from_ptr(uri) }.to_bytes();
        Ok(handle::into_raw(StoreCtx::open(
            Arc::clone(prov),
            uri,
            UriOrigin::Caller,
        )?))
    })
}

/// `expect` and the search criteria. OpenSSL 3.0's `OSSL_STORE_supports_search` looks for the
/// criterion's parameters here (storeutl: "the store scheme doesn't support the given search
/// criteria" when they are missing).
static SETTABLE: Table<OSSL_PARAM> = Table(&[
    param_desc!(OSSL_STORE_PARAM_EXPECT, OSSL_PARAM_INTEGER),
    param_desc!(OSSL_STORE_PARAM_SUBJECT, OSSL_PARAM_OCTET_STRING),
    param_desc!(OSSL_STORE_PARAM_ISSUER, OSSL_PARAM_OCTET_STRING),
    param_desc!(OSSL_STORE_PARAM_SERIAL, OSSL_PARAM_UNSIGNED_INTEGER),
    param_desc!(OSSL_STORE_PARAM_DIGEST, OSSL_PARAM_UTF8_STRING),
    param_desc!(OSSL_STORE_PARAM_FINGERPRINT, OSSL_PARAM_OCTET_STRING),
    param_desc!(OSSL_STORE_PARAM_ALIAS, OSSL_PARAM_UTF8_STRING),
    param_desc!(END),
]);

/// `OSSL_FUNC_STORE_SETTABLE_CTX_PARAMS`.
unsafe extern "C" fn store_settable_ctx_params(_provctx: *mut c_void) -> *const OSSL_PARAM {
    SETTABLE.as_ptr()
}

/// `OSSL_FUNC_STORE_SET_CTX_PARAMS`: `expect` and the search criteria.
unsafe extern "C" fn store_set_ctx_params(ctx: *mut c_void, params: *const OSSL_PARAM) -> c_int {
    ffi_boundary!("store_set_ctx_params", 0, {
        // SAFETY: ctx is ours; params is a terminated array or NULL.
        let (ctx, params) = unsafe {
            (
                handle::borrow_mut::<StoreCtx>(ctx, "store")?,
                Params::new(params),
            )
        };
        if let Some(p) = params.find(abi::OSSL_STORE_PARAM_EXPECT) {
            ctx.set_expect(p.int()?);
        }
        let octets = |key| params.find(key).map(|p| p.octets().map(<[u8]>::to_vec));
        let text = |key| params.find(key).map(|p| p.utf8().map(str::to_owned));
        let criteria = Search {
            subject: octets(abi::OSSL_STORE_PARAM_SUBJECT).transpose()?,
            issuer: octets(abi::OSSL_STORE_PARAM_ISSUER).transpose()?,
            serial: params
                .find(abi::OSSL_STORE_PARAM_SERIAL)
                .map(|p| p.big_number())
                .transpose()?,
            digest: text(abi::OSSL_STORE_PARAM_DIGEST).transpose()?,
            fingerprint: octets(abi::OSSL_STORE_PARAM_FINGERPRINT).transpose()?,
            alias: text(abi::OSSL_STORE_PARAM_ALIAS).transpose()?,
        };
        if !criteria.is_empty() {
            ctx.add_search(criteria)?;
        }
        Ok(1)
    })
}

/// `OSSL_FUNC_STORE_LOAD`: hands the next object to `object_cb`.
unsafe extern "C" fn store_load(
    ctx: *mut c_void,
    object_cb: abi::OSSL_CALLBACK,
    object_cbarg: *mut c_void,
    pw_cb: abi::OSSL_PASSPHRASE_CALLBACK,
    pw_cbarg: *mut c_void,
) -> c_int {
    ffi_boundary!("store_load", 0, {
        // SAFETY: ctx is ours and used by one thread at a time.
        let ctx = unsafe { handle::borrow_mut::<StoreCtx>(ctx, "store")? };
        let object_cb = object_cb.ok_or(Error::NullArg("object callback"))?;
        let mut prompt = |info: &str| super::ask_pin(pw_cb, pw_cbarg, info);
        let Some(found) = ctx.next(Some(&mut prompt))? else {
            return Ok(0); // end of objects: not an error
        };
        let mut params = ParamBuilder::new();
        let published;
        let description = found_label(&found);
        match &found {
            Found::Key(key) => {
                published = keymgmt::publish(Arc::clone(key))?;
                params
                    .int(abi::OSSL_OBJECT_PARAM_TYPE, abi::OSSL_OBJECT_PKEY)
                    .utf8(abi::OSSL_OBJECT_PARAM_DATA_TYPE, key.algorithm.type_name())
                    .octets(abi::OSSL_OBJECT_PARAM_REFERENCE, published.reference());
            }
            Found::Certificate { der, .. } => {
                params
                    .int(abi::OSSL_OBJECT_PARAM_TYPE, abi::OSSL_OBJECT_CERT)
                    .octets(abi::OSSL_OBJECT_PARAM_DATA, der);
            }
        }
        if let Some(desc) = &description {
            params.utf8(abi::OSSL_OBJECT_PARAM_DESC, desc);
        }
        // SAFETY: OpenSSL's callback with its own argument and our terminated array, which
        // (with the published reference) stays alive until the callback returns.
        Ok(unsafe { object_cb(params.finish(), object_cbarg) })
    })
}

/// The object's label as a C string (`OSSL_OBJECT_PARAM_DESC`), if it has a usable one.
fn found_label(found: &Found) -> Option<CString> {
    let label = match found {
        Found::Key(key) => key.token.as_ref().and_then(|t| t.label.as_deref()),
        Found::Certificate { label, .. } => label.as_deref(),
    };
    label.and_then(|l| CString::new(l).ok())
}

/// `OSSL_FUNC_STORE_EOF`.
unsafe extern "C" fn store_eof(ctx: *mut c_void) -> c_int {
    ffi_boundary!("store_eof", 1, {
        // SAFETY: ctx is ours.
        let ctx = unsafe { handle::borrow::<StoreCtx>(ctx, "store")? };
        Ok(ctx.eof().into())
    })
}

/// `OSSL_FUNC_STORE_CLOSE`.
unsafe extern "C" fn store_close(ctx: *mut c_void) -> c_int {
    ffi_boundary!("store_close", 0, {
        // SAFETY: OpenSSL closes each store context once.
        drop(unsafe { handle::take::<StoreCtx>(ctx) });
        Ok(1)
    })
}
