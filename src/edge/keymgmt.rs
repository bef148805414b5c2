//! `extern "C"` shims and dispatch tables for KEYMGMT (provider-keymgmt(7)): RSA, RSA-PSS, EC,
//! ED25519, ED448. Logic lives in `crate::ops::keymgmt`; the key generation shims are in
//! `keygen`.

use std::ffi::{c_char, c_int, c_void};

use crate::edge::dispatch::{END, Table, dispatch};
use crate::edge::handle;
use crate::edge::keygen::{
    self, kmgmt_gen, kmgmt_gen_cleanup, kmgmt_gen_set_params, kmgmt_gen_set_template,
};
use crate::error::Error;
use crate::ops::keymgmt::{self, KeyData};
use crate::sys::abi::{self, OSSL_DISPATCH, OSSL_PARAM};
use crate::sys::params::{Params, ParamsOut, param_desc};
use crate::sys::slice;
use crate::token::object::KeyAlgorithm;

/// Defines the algorithm-specific shims (`new`, `load`, `query_operation_name`, `gen_init`,
/// `gen_settable_params`) and the table.
macro_rules! keymgmt_table {
    ($table:ident, $alg:expr, $new:ident, $load:ident, $opname:ident, $gen_init:ident,
     $gen_settable:ident) => {
        /// `OSSL_FUNC_KEYMGMT_NEW`: an empty key, filled by `import`.
        unsafe extern "C" fn $new(provctx: *mut c_void) -> *mut c_void {
            ffi_boundary!("kmgmt_new", std::ptr::null_mut(), {
                // SAFETY: provctx is ours.
                unsafe { super::prov_ctx(provctx)? };
                Ok(handle::into_raw(KeyData::empty($alg)))
            })
        }

        /// `OSSL_FUNC_KEYMGMT_LOAD`: the key behind a store reference.
        unsafe extern "C" fn $load(reference: *const c_void, reference_size: usize) -> *mut c_void {
            ffi_boundary!("kmgmt_load", std::ptr::null_mut(), {
                // SAFETY: OpenSSL passes the reference bytes the store emitted.
                let bytes = unsafe { slice::from_raw(reference.cast(), reference_size) };
                Ok(handle::into_raw(keymgmt::load($alg, bytes)?))
            })
        }

        /// `OSSL_FUNC_KEYMGMT_QUERY_OPERATION_NAME`.
        unsafe extern "C" fn $opname(operation_id: c_int) -> *const c_char {
            keymgmt::operation_name($alg, operation_id).map_or(std::ptr::null(), |n| n.as_ptr())
        }

        /// `OSSL_FUNC_KEYMGMT_GEN_INIT`.
        unsafe extern "C" fn $gen_init(
            provctx: *mut c_void,
            selection: c_int,
            params: *const OSSL_PARAM,
        ) -> *mut c_void {
            // SAFETY: OpenSSL passes our provctx and a terminated array or NULL.
            unsafe { keygen::gen_init($alg, provctx, selection, params) }
        }

        /// `OSSL_FUNC_KEYMGMT_GEN_SETTABLE_PARAMS`.
        unsafe extern "C" fn $gen_settable(
            _genctx: *mut c_void,
            _provctx: *mut c_void,
        ) -> *const OSSL_PARAM {
            keygen::gen_settable($alg)
        }

        pub(crate) static $table: &[OSSL_DISPATCH] = &[
            dispatch!(
                OSSL_FUNC_KEYMGMT_GEN_INIT,
                OSSL_FUNC_keymgmt_gen_init_fn,
                $gen_init
            ),
            dispatch!(
                OSSL_FUNC_KEYMGMT_GEN_SET_PARAMS,
                OSSL_FUNC_keymgmt_gen_set_params_fn,
                kmgmt_gen_set_params
            ),
            dispatch!(
                OSSL_FUNC_KEYMGMT_GEN_SETTABLE_PARAMS,
                OSSL_FUNC_keymgmt_gen_settable_params_fn,
                $gen_settable
            ),
            dispatch!(
                OSSL_FUNC_KEYMGMT_GEN_SET_TEMPLATE,
                OSSL_FUNC_keymgmt_gen_set_template_fn,
                kmgmt_gen_set_template
            ),
            dispatch!(OSSL_FUNC_KEYMGMT_GEN, OSSL_FUNC_keymgmt_gen_fn, kmgmt_gen),
            dispatch!(
                OSSL_FUNC_KEYMGMT_GEN_CLEANUP,
                OSSL_FUNC_keymgmt_gen_cleanup_fn,
                kmgmt_gen_cleanup
            ),
            dispatch!(
                OSSL_FUNC_KEYMGMT_SET_PARAMS,
                OSSL_FUNC_keymgmt_set_params_fn,
                kmgmt_set_params
            ),
            dispatch!(
                OSSL_FUNC_KEYMGMT_SETTABLE_PARAMS,
                OSSL_FUNC_keymgmt_settable_params_fn,
                kmgmt_settable_params
            ),
            dispatch!(OSSL_FUNC_KEYMGMT_NEW, OSSL_FUNC_keymgmt_new_fn, $new),
            dispatch!(OSSL_FUNC_KEYMGMT_LOAD, OSSL_FUNC_keymgmt_load_fn, $load),
            dispatch!(
                OSSL_FUNC_KEYMGMT_QUERY_OPERATION_NAME,
                OSSL_FUNC_keymgmt_query_operation_name_fn,
                $opname
            ),
            dispatch!(
                OSSL_FUNC_KEYMGMT_FREE,
                OSSL_FUNC_keymgmt_free_fn,
                kmgmt_free
            ),
            dispatch!(OSSL_FUNC_KEYMGMT_DUP, OSSL_FUNC_keymgmt_dup_fn, kmgmt_dup),
            dispatch!(OSSL_FUNC_KEYMGMT_HAS, OSSL_FUNC_keymgmt_has_fn, kmgmt_has),
            dispatch!(
                OSSL_FUNC_KEYMGMT_MATCH,
                OSSL_FUNC_keymgmt_match_fn,
                kmgmt_match
            ),
            dispatch!(
                OSSL_FUNC_KEYMGMT_GET_PARAMS,
                OSSL_FUNC_keymgmt_get_params_fn,
                kmgmt_get_params
            ),
            dispatch!(
                OSSL_FUNC_KEYMGMT_GETTABLE_PARAMS,
                OSSL_FUNC_keymgmt_gettable_params_fn,
                kmgmt_gettable_params
            ),
            dispatch!(
                OSSL_FUNC_KEYMGMT_EXPORT,
                OSSL_FUNC_keymgmt_export_fn,
                kmgmt_export
            ),
            dispatch!(
                OSSL_FUNC_KEYMGMT_EXPORT_TYPES,
                OSSL_FUNC_keymgmt_export_types_fn,
                kmgmt_key_types
            ),
            dispatch!(
                OSSL_FUNC_KEYMGMT_IMPORT,
                OSSL_FUNC_keymgmt_import_fn,
                kmgmt_import
            ),
            dispatch!(
                OSSL_FUNC_KEYMGMT_IMPORT_TYPES,
                OSSL_FUNC_keymgmt_import_types_fn,
                kmgmt_key_types
            ),
            END,
        ];
    };
}

keymgmt_table!(
    RSA,
    KeyAlgorithm::Rsa,
    kmgmt_rsa_new,
    kmgmt_rsa_load,
    kmgmt_rsa_query_operation_name,
    kmgmt_rsa_gen_init,
    kmgmt_rsa_gen_settable_params
);
keymgmt_table!(
    RSA_PSS,
    KeyAlgorithm::RsaPss,
    kmgmt_rsa_pss_new,
    kmgmt_rsa_pss_load,
    kmgmt_rsa_pss_query_operation_name,
    kmgmt_rsa_pss_gen_init,
    kmgmt_rsa_pss_gen_settable_params
);
keymgmt_table!(
    EC,
    KeyAlgorithm::Ec,
    kmgmt_ec_new,
    kmgmt_ec_load,
    kmgmt_ec_query_operation_name,
    kmgmt_ec_gen_init,
    kmgmt_ec_gen_settable_params
);
keymgmt_table!(
    ED25519,
    KeyAlgorithm::Ed25519,
    kmgmt_ed25519_new,
    kmgmt_ed25519_load,
    kmgmt_ed25519_query_operation_name,
    kmgmt_ed25519_gen_init,
    kmgmt_ed25519_gen_settable_params
);
keymgmt_table!(
    ED448,
    KeyAlgorithm::Ed448,
    kmgmt_ed448_new,
    kmgmt_ed448_load,
    kmgmt_ed448_query_operation_name,
    kmgmt_ed448_gen_init,
    kmgmt_ed448_gen_settable_params
);

/// Borrows keydata made by `new`/`load`/`dup`.
///
/// # Safety
/// `keydata` is NULL or a live keydata of this provider.
unsafe fn key_data<'a>(keydata: *const c_void) -> crate::error::Result<&'a KeyData> {
    // SAFETY: per the caller's contract.
    unsafe { handle::borrow::<KeyData>(keydata, "key") }
}

/// `OSSL_FUNC_KEYMGMT_FREE`.
unsafe extern "C" fn kmgmt_free(keydata: *mut c_void) {
    ffi_boundary!("kmgmt_free", (), {
        // SAFETY: OpenSSL frees each keydata once, after its last use.
        drop(unsafe { handle::take::<KeyData>(keydata) });
        Ok(())
    })
}

/// `OSSL_FUNC_KEYMGMT_DUP`: shares the same token key (a parameters-only selection copies the
/// curve alone).
unsafe extern "C" fn kmgmt_dup(keydata: *const c_void, selection: c_int) -> *mut c_void {
    ffi_boundary!("kmgmt_dup", std::ptr::null_mut(), {
        // SAFETY: keydata is a live keydata of ours.
        let data = unsafe { key_data(keydata)? };
        Ok(handle::into_raw(data.duplicate(selection)))
    })
}

/// `OSSL_FUNC_KEYMGMT_HAS`.
unsafe extern "C" fn kmgmt_has(keydata: *const c_void, selection: c_int) -> c_int {
    ffi_boundary!("kmgmt_has", 0, {
        // SAFETY: keydata is NULL or a live keydata of ours.
        match unsafe { handle::borrow::<KeyData>(keydata, "key") } {
            Ok(data) => Ok(keymgmt::has(data, selection).into()),
            // provider-keymgmt(7): a NULL key has nothing, which is not an error.
            Err(_) => Ok(0),
        }
    })
}

/// `OSSL_FUNC_KEYMGMT_MATCH`.
unsafe extern "C" fn kmgmt_match(
    keydata1: *const c_void,
    keydata2: *const c_void,
    selection: c_int,
) -> c_int {
    ffi_boundary!("kmgmt_match", 0, {
        // SAFETY: both are live keydata of ours (OpenSSL matches within one keymgmt).
        let (a, b) = unsafe { (key_data(keydata1)?, key_data(keydata2)?) };
        Ok(keymgmt::matches(a, b, selection).into())
    })
}

/// `OSSL_FUNC_KEYMGMT_GET_PARAMS`.
unsafe extern "C" fn kmgmt_get_params(keydata: *mut c_void, params: *mut OSSL_PARAM) -> c_int {
    ffi_boundary!("kmgmt_get_params", 0, {
        // SAFETY: keydata is ours; params is a terminated writable request array.
        let (data, mut out) = unsafe { (key_data(keydata)?, ParamsOut::new(params)) };
        keymgmt::get_params(data, &mut out)?;
        Ok(1)
    })
}

static GETTABLE: Table<OSSL_PARAM> = Table(&[
    param_desc!(OSSL_PKEY_PARAM_BITS, OSSL_PARAM_INTEGER),
    param_desc!(OSSL_PKEY_PARAM_SECURITY_BITS, OSSL_PARAM_INTEGER),
    param_desc!(OSSL_PKEY_PARAM_MAX_SIZE, OSSL_PARAM_INTEGER),
    param_desc!(OSSL_PKEY_PARAM_DEFAULT_DIGEST, OSSL_PARAM_UTF8_STRING),
    param_desc!(OSSL_PKEY_PARAM_MANDATORY_DIGEST, OSSL_PARAM_UTF8_STRING),
    param_desc!(OSSL_PKEY_PARAM_RSA_N, OSSL_PARAM_UNSIGNED_INTEGER),
    param_desc!(OSSL_PKEY_PARAM_RSA_E, OSSL_PARAM_UNSIGNED_INTEGER),
    param_desc!(OSSL_PKEY_PARAM_GROUP_NAME, OSSL_PARAM_UTF8_STRING),
    param_desc!(
        OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT,
        OSSL_PARAM_UTF8_STRING
    ),
    param_desc!(OSSL_PKEY_PARAM_EC_ENCODING, OSSL_PARAM_UTF8_STRING),
    param_desc!(OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, OSSL_PARAM_OCTET_STRING),
    param_desc!(OSSL_PKEY_PARAM_PUB_KEY, OSSL_PARAM_OCTET_STRING),
    param_desc!(OSSL_PKEY_PARAM_EC_PUB_X, OSSL_PARAM_UNSIGNED_INTEGER),
    param_desc!(OSSL_PKEY_PARAM_EC_PUB_Y, OSSL_PARAM_UNSIGNED_INTEGER),
    param_desc!(END),
]);

/// `OSSL_FUNC_KEYMGMT_GETTABLE_PARAMS`.
unsafe extern "C" fn kmgmt_gettable_params(_provctx: *mut c_void) -> *const OSSL_PARAM {
    GETTABLE.as_ptr()
}

/// `OSSL_FUNC_KEYMGMT_SET_PARAMS`: the encoded public key of a peer key (see
/// `keymgmt::set_params`).
unsafe extern "C" fn kmgmt_set_params(keydata: *mut c_void, params: *const OSSL_PARAM) -> c_int {
    ffi_boundary!("kmgmt_set_params", 0, {
        // SAFETY: OpenSSL changes a keydata only while it owns it alone (EVP_PKEY_set_params on
        // a key being built); params is a terminated array or NULL.
        let (data, params) = unsafe {
            (
                handle::borrow_mut::<KeyData>(keydata, "key")?,
                Params::new(params),
            )
        };
        keymgmt::set_params(data, params)?;
        Ok(1)
    })
}

static SETTABLE: Table<OSSL_PARAM> = Table(&[
    param_desc!(OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, OSSL_PARAM_OCTET_STRING),
    param_desc!(END),
]);

/// `OSSL_FUNC_KEYMGMT_SETTABLE_PARAMS`.
unsafe extern "C" fn kmgmt_settable_params(_provctx: *mut c_void) -> *const OSSL_PARAM {
    SETTABLE.as_ptr()
}

static KEY_TYPES: Table<OSSL_PARAM> = Table(&[
    param_desc!(OSSL_PKEY_PARAM_RSA_N, OSSL_PARAM_UNSIGNED_INTEGER),
    param_desc!(OSSL_PKEY_PARAM_RSA_E, OSSL_PARAM_UNSIGNED_INTEGER),
    param_desc!(OSSL_PKEY_PARAM_GROUP_NAME, OSSL_PARAM_UTF8_STRING),
    param_desc!(OSSL_PKEY_PARAM_PUB_KEY, OSSL_PARAM_OCTET_STRING),
    param_desc!(END),
]);

/// `OSSL_FUNC_KEYMGMT_EXPORT_TYPES` / `IMPORT_TYPES`: public parts only, whatever the selection.
unsafe extern "C" fn kmgmt_key_types(_selection: c_int) -> *const OSSL_PARAM {
    KEY_TYPES.as_ptr()
}

/// `OSSL_FUNC_KEYMGMT_EXPORT`.
unsafe extern "C" fn kmgmt_export(
    keydata: *mut c_void,
    selection: c_int,
    callback: abi::OSSL_CALLBACK,
    cbarg: *mut c_void,
) -> c_int {
    ffi_boundary!("kmgmt_export", 0, {
        // SAFETY: keydata is ours.
        let data = unsafe { key_data(keydata)? };
        let callback = callback.ok_or(Error::NullArg("export callback"))?;
        let exported = keymgmt::export(data, selection, |params| {
            // SAFETY: OpenSSL's callback with its own argument and our terminated array.
            unsafe { callback(params, cbarg) == 1 }
        })?;
        Ok(exported.into())
    })
}

/// `OSSL_FUNC_KEYMGMT_IMPORT`: public keys only.
unsafe extern "C" fn kmgmt_import(
    keydata: *mut c_void,
    selection: c_int,
    params: *const OSSL_PARAM,
) -> c_int {
    ffi_boundary!("kmgmt_import", 0, {
        // SAFETY: a fresh keydata from `new`, not yet shared (provider-keymgmt(7)).
        let data = unsafe { handle::borrow_mut::<KeyData>(keydata, "key")? };
        // SAFETY: OpenSSL passes a terminated array.
        let params = unsafe { Params::new(params) };
        Ok(keymgmt::import(data, selection, params)?.into())
    })
}
