//! `OSSL_provider_init` (the library's one exported symbol) and the provider-level functions of
//! provider-base(7): teardown, gettable/get params, query_operation, get_reason_strings, and
//! the algorithm tables `query_operation` hands out.

use std::ffi::{c_int, c_void};
use std::sync::Arc;

use once_cell::sync::Lazy;

use super::dispatch::{END, Table, dispatch};
use super::{
    asym_cipher, capabilities, decoder, encoder, handle, keyexch, keymgmt, signature, store,
};
use crate::config::Config;
use crate::error::{Error, Result, reason_strings};
use crate::ops::provider::ProvCtx;
use crate::sys::abi::{
    self, OSSL_ALGORITHM, OSSL_CORE_HANDLE, OSSL_DISPATCH, OSSL_ITEM, OSSL_PARAM,
};
use crate::sys::core;
use crate::sys::libcrypto::LibCtx;
use crate::sys::params::ParamBuilder;
use crate::sys::params::{ParamsOut, param_desc};
use crate::token::login::Pin;
use crate::token::metrics;
use std::ffi::CString;
use zeroize::Zeroizing;

const VERSION: &std::ffi::CStr = match std::ffi::CStr::from_bytes_with_nul(
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes(),
) {
    Ok(v) => v,
    Err(_) => c"unknown",
};
const BUILDINFO: &std::ffi::CStr = match std::ffi::CStr::from_bytes_with_nul(
    concat!(
        "pkcs11-ossl ",
        env!("CARGO_PKG_VERSION"),
        " (Rust, cryptoki)\0"
    )
    .as_bytes(),
) {
    Ok(v) => v,
    Err(_) => c"pkcs11-ossl",
};

/// Property string every algorithm carries.
const PROPERTIES: &std::ffi::CStr = c"provider=pkcs11";

/// The provider's entry point, called by OpenSSL when openssl.cnf (or `OSSL_PROVIDER_load`)
/// loads the library.
///
/// # Safety
/// Called by OpenSSL with a valid core handle, the core's dispatch table, and writable `out` and
/// `provctx` pointers (provider-base(7)).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn OSSL_provider_init(
    handle: *const OSSL_CORE_HANDLE,
    in_: *const OSSL_DISPATCH,
    out: *mut *const OSSL_DISPATCH,
    provctx: *mut *mut c_void,
) -> c_int {
    ffi_boundary!("OSSL_provider_init", 0, {
        const _: abi::OSSL_provider_init_fn = Some(OSSL_provider_init);
        if handle.is_null() || in_.is_null() || out.is_null() || provctx.is_null() {
            return Err(Error::NullArg("OSSL_provider_init argument"));
        }
        crate::logging::init_from_env();
        crate::sys::atfork::watch_forks();
        // SAFETY: `in_` and `handle` are the core's, as OpenSSL passed them.
        let core_handle = unsafe { core::register(handle, in_) };
        let result = (|| {
            let values = core::config_values(core_handle, Config::KEYS)?;
            // A bad setting does not stop the provider from loading: OpenSSL 3.0 throws away
            // the errors of a provider that fails to load from openssl.cnf and reports only
            // "unregistered scheme" later. Loaded, it names the setting on every use instead.
            let (config, config_error) = match Config::from_lookup(
                |key| values.get(key).cloned(),
                |var| std::env::var(var).ok(),
            ) {
                Ok(config) => (config, None),
                Err(e) => {
                    log::error!("configuration: {e}");
                    (Config::default(), Some(e.to_string()))
                }
            };
            // SAFETY: same arguments as OSSL_provider_init received.
            let libctx = match unsafe { LibCtx::new_child(handle, in_) } {
                Ok(ctx) => Some(ctx),
                Err(e) => {
                    log::debug!("no child library context ({e}); hashing in the default one");
                    None
                }
            };
            ProvCtx::new(core_handle, config, config_error, libctx)
        })();
        match result {
            Ok(ctx) => {
                // SAFETY: both are writable per the provider-base(7) contract.
                unsafe {
                    *provctx = handle::into_raw(Arc::new(ctx));
                    *out = PROVIDER_FUNCTIONS.as_ptr();
                }
                log::debug!("pkcs11-ossl {} loaded", env!("CARGO_PKG_VERSION"));
                Ok(1)
            }
            Err(e) => {
                core::raise_error(&e, "OSSL_provider_init");
                core::unregister(core_handle);
                Ok(0)
            }
        }
    })
}

static PROVIDER_FUNCTIONS: &[OSSL_DISPATCH] = &[
    dispatch!(
        OSSL_FUNC_PROVIDER_TEARDOWN,
        OSSL_FUNC_provider_teardown_fn,
        prov_teardown
    ),
    dispatch!(
        OSSL_FUNC_PROVIDER_GETTABLE_PARAMS,
        OSSL_FUNC_provider_gettable_params_fn,
        prov_gettable_params
    ),
    dispatch!(
        OSSL_FUNC_PROVIDER_GET_PARAMS,
        OSSL_FUNC_provider_get_params_fn,
        prov_get_params
    ),
    dispatch!(
        OSSL_FUNC_PROVIDER_QUERY_OPERATION,
        OSSL_FUNC_provider_query_operation_fn,
        prov_query_operation
    ),
    dispatch!(
        OSSL_FUNC_PROVIDER_GET_CAPABILITIES,
        OSSL_FUNC_provider_get_capabilities_fn,
        capabilities::prov_get_capabilities
    ),
    dispatch!(
        OSSL_FUNC_PROVIDER_GET_REASON_STRINGS,
        OSSL_FUNC_provider_get_reason_strings_fn,
        prov_get_reason_strings
    ),
    END,
];

/// Borrows the provider context OpenSSL passes back to every function.
///
/// # Safety
/// `provctx` is NULL or the pointer `OSSL_provider_init` stored, not yet torn down.
pub(crate) unsafe fn prov_ctx<'a>(provctx: *mut c_void) -> Result<&'a Arc<ProvCtx>> {
    // SAFETY: per the caller's contract.
    unsafe { handle::borrow::<Arc<ProvCtx>>(provctx, "provider context") }
}

/// Asks OpenSSL's passphrase callback for a PIN.
pub(crate) fn ask_pin(
    callback: abi::OSSL_PASSPHRASE_CALLBACK,
    arg: *mut c_void,
    info: &str,
) -> Result<Option<Pin>> {
    let Some(callback) = callback else {
        return Ok(None);
    };
    let info = CString::new(info).map_err(|_| Error::BadParam("prompt text".into()))?;
    let mut params = ParamBuilder::new();
    params.utf8(abi::OSSL_PASSPHRASE_PARAM_INFO, &info);
    let mut buffer = Zeroizing::new([0u8; 256]);
    let mut len = 0usize;
    // SAFETY: OpenSSL's callback with its own argument; buffer is writable for its size, len is
    // writable, params is terminated and lives across the call.
    let ok = unsafe {
        callback(
            buffer.as_mut_ptr().cast(),
            buffer.len(),
            &mut len,
            params.finish(),
            arg,
        )
    };
    if ok != 1 {
        return Ok(None);
    }
    let pin = buffer
        .get(..len)
        .ok_or_else(|| Error::BadParam("passphrase callback returned a bad length".into()))?;
    Ok(Some(Zeroizing::new(pin.to_vec())))
}

/// `OSSL_FUNC_PROVIDER_TEARDOWN`.
unsafe extern "C" fn prov_teardown(provctx: *mut c_void) {
    ffi_boundary!("prov_teardown", (), {
        // SAFETY: OpenSSL calls teardown once, with the provctx made in OSSL_provider_init.
        if let Some(ctx) = unsafe { handle::take::<Arc<ProvCtx>>(provctx) } {
            core::unregister(ctx.core);
        }
        Ok(())
    })
}

/// The sign-duration metrics in Prometheus text (`OSSL_PROVIDER_get_params`; ask for the size
/// with a NULL buffer first).
const PARAM_METRICS: &std::ffi::CStr = c"pkcs11-metrics";
/// Signatures made, by status, and those in flight or queued now (`size_t`).
const PARAM_SIGN_OK: &std::ffi::CStr = c"pkcs11-sign-ok";
const PARAM_SIGN_ERROR: &std::ffi::CStr = c"pkcs11-sign-error";
const PARAM_SIGN_IN_FLIGHT: &std::ffi::CStr = c"pkcs11-sign-in-flight";
const PARAM_SIGN_QUEUED: &std::ffi::CStr = c"pkcs11-sign-queued";

static PROVIDER_GETTABLE: Table<OSSL_PARAM> = Table(&[
    param_desc!(OSSL_PROV_PARAM_NAME, OSSL_PARAM_UTF8_PTR),
    param_desc!(OSSL_PROV_PARAM_VERSION, OSSL_PARAM_UTF8_PTR),
    param_desc!(OSSL_PROV_PARAM_BUILDINFO, OSSL_PARAM_UTF8_PTR),
    param_desc!(OSSL_PROV_PARAM_STATUS, OSSL_PARAM_INTEGER),
    param_desc!(name PARAM_METRICS, OSSL_PARAM_UTF8_STRING),
    param_desc!(name PARAM_SIGN_OK, OSSL_PARAM_UNSIGNED_INTEGER),
    param_desc!(name PARAM_SIGN_ERROR, OSSL_PARAM_UNSIGNED_INTEGER),
    param_desc!(name PARAM_SIGN_IN_FLIGHT, OSSL_PARAM_UNSIGNED_INTEGER),
    param_desc!(name PARAM_SIGN_QUEUED, OSSL_PARAM_UNSIGNED_INTEGER),
    param_desc!(END),
]);

/// `OSSL_FUNC_PROVIDER_GETTABLE_PARAMS`.
unsafe extern "C" fn prov_gettable_params(_provctx: *mut c_void) -> *const OSSL_PARAM {
    PROVIDER_GETTABLE.as_ptr()
}

/// `OSSL_FUNC_PROVIDER_GET_PARAMS`.
unsafe extern "C" fn prov_get_params(_provctx: *mut c_void, params: *mut OSSL_PARAM) -> c_int {
    ffi_boundary!("prov_get_params", 0, {
        // SAFETY: OpenSSL passes a terminated, writable request array.
        let mut out = unsafe { ParamsOut::new(params) };
        out.set_static_utf8(abi::OSSL_PROV_PARAM_NAME, c"pkcs11-ossl PKCS#11 provider")?;
        out.set_static_utf8(abi::OSSL_PROV_PARAM_VERSION, VERSION)?;
        out.set_static_utf8(abi::OSSL_PROV_PARAM_BUILDINFO, BUILDINFO)?;
        out.set_int(abi::OSSL_PROV_PARAM_STATUS, 1)?;
        if out.wants(PARAM_METRICS) {
            out.set_utf8(PARAM_METRICS, &metrics::prometheus_text())?;
        }
        let totals = metrics::totals();
        for (key, value) in [
            (PARAM_SIGN_OK, totals.ok),
            (PARAM_SIGN_ERROR, totals.error),
            (PARAM_SIGN_IN_FLIGHT, totals.in_flight),
            (PARAM_SIGN_QUEUED, totals.queued),
        ] {
            out.set_size(key, usize::try_from(value).unwrap_or(usize::MAX))?;
        }
        Ok(1)
    })
}

/// Builds one `OSSL_ALGORITHM` entry.
macro_rules! algorithm {
    ($names:expr, $table:expr, $description:expr) => {
        OSSL_ALGORITHM {
            algorithm_names: $names.as_ptr(),
            property_definition: PROPERTIES.as_ptr(),
            implementation: $table.as_ptr(),
            algorithm_description: $description.as_ptr(),
        }
    };
}

const ALGORITHM_END: OSSL_ALGORITHM = OSSL_ALGORITHM {
    algorithm_names: std::ptr::null(),
    property_definition: std::ptr::null(),
    implementation: std::ptr::null(),
    algorithm_description: std::ptr::null(),
};

/// Names of the key types (OpenSSL name, alias, OID), shared by every table below.
const RSA_NAMES: &std::ffi::CStr = c"RSA:rsaEncryption:1.2.840.113549.1.1.1";
const RSA_PSS_NAMES: &std::ffi::CStr = c"RSA-PSS:RSASSA-PSS:1.2.840.113549.1.1.10";
const EC_NAMES: &std::ffi::CStr = c"EC:id-ecPublicKey:1.2.840.10045.2.1";
const ED25519_NAMES: &std::ffi::CStr = c"ED25519:1.3.101.112";
const ED448_NAMES: &std::ffi::CStr = c"ED448:1.3.101.113";

static KEYMGMT_ALGORITHMS: Table<OSSL_ALGORITHM> = Table(&[
    algorithm!(RSA_NAMES, keymgmt::RSA, c"PKCS#11 RSA key"),
    algorithm!(RSA_PSS_NAMES, keymgmt::RSA_PSS, c"PKCS#11 RSA-PSS key"),
    algorithm!(EC_NAMES, keymgmt::EC, c"PKCS#11 EC key"),
    algorithm!(ED25519_NAMES, keymgmt::ED25519, c"PKCS#11 Ed25519 key"),
    algorithm!(ED448_NAMES, keymgmt::ED448, c"PKCS#11 Ed448 key"),
    ALGORITHM_END,
]);

static SIGNATURE_ALGORITHMS: Table<OSSL_ALGORITHM> = Table(&[
    algorithm!(RSA_NAMES, signature::RSA, c"PKCS#11 RSA signature"),
    algorithm!(c"ECDSA", signature::ECDSA, c"PKCS#11 ECDSA signature"),
    algorithm!(
        ED25519_NAMES,
        signature::ED25519,
        c"PKCS#11 Ed25519 signature"
    ),
    algorithm!(ED448_NAMES, signature::ED448, c"PKCS#11 Ed448 signature"),
    // OpenSSL 3.4+: the sign-message algorithms (EVP_PKEY_sign_message_init), each with the
    // names OpenSSL's default provider gives it.
    #[cfg(ossl_v340)]
    algorithm!(
        c"RSA-SHA1:RSA-SHA-1:sha1WithRSAEncryption:1.2.840.113549.1.1.5",
        signature::message::RSA_SHA1,
        c"PKCS#11 RSA-SHA1 signature (sign-message API)"
    ),
    #[cfg(ossl_v340)]
    algorithm!(
        c"RSA-SHA2-224:RSA-SHA224:sha224WithRSAEncryption:1.2.840.113549.1.1.14",
        signature::message::RSA_SHA224,
        c"PKCS#11 RSA-SHA2-224 signature (sign-message API)"
    ),
    #[cfg(ossl_v340)]
    algorithm!(
        c"RSA-SHA2-256:RSA-SHA256:sha256WithRSAEncryption:1.2.840.113549.1.1.11",
        signature::message::RSA_SHA256,
        c"PKCS#11 RSA-SHA2-256 signature (sign-message API)"
    ),
    #[cfg(ossl_v340)]
    algorithm!(
        c"RSA-SHA2-384:RSA-SHA384:sha384WithRSAEncryption:1.2.840.113549.1.1.12",
        signature::message::RSA_SHA384,
        c"PKCS#11 RSA-SHA2-384 signature (sign-message API)"
    ),
    #[cfg(ossl_v340)]
    algorithm!(
        c"RSA-SHA2-512:RSA-SHA512:sha512WithRSAEncryption:1.2.840.113549.1.1.13",
        signature::message::RSA_SHA512,
        c"PKCS#11 RSA-SHA2-512 signature (sign-message API)"
    ),
    #[cfg(ossl_v340)]
    algorithm!(
        c"RSA-SHA3-224:id-rsassa-pkcs1-v1_5-with-sha3-224:2.16.840.1.101.3.4.3.13",
        signature::message::RSA_SHA3_224,
        c"PKCS#11 RSA-SHA3-224 signature (sign-message API)"
    ),
    #[cfg(ossl_v340)]
    algorithm!(
        c"RSA-SHA3-256:id-rsassa-pkcs1-v1_5-with-sha3-256:2.16.840.1.101.3.4.3.14",
        signature::message::RSA_SHA3_256,
        c"PKCS#11 RSA-SHA3-256 signature (sign-message API)"
    ),
    #[cfg(ossl_v340)]
    algorithm!(
        c"RSA-SHA3-384:id-rsassa-pkcs1-v1_5-with-sha3-384:2.16.840.1.101.3.4.3.15",
        signature::message::RSA_SHA3_384,
        c"PKCS#11 RSA-SHA3-384 signature (sign-message API)"
    ),
    #[cfg(ossl_v340)]
    algorithm!(
        c"RSA-SHA3-512:id-rsassa-pkcs1-v1_5-with-sha3-512:2.16.840.1.101.3.4.3.16",
        signature::message::RSA_SHA3_512,
        c"PKCS#11 RSA-SHA3-512 signature (sign-message API)"
    ),
    #[cfg(ossl_v340)]
    algorithm!(
        c"ECDSA-SHA1:ECDSA-SHA-1:ecdsa-with-SHA1:1.2.840.10045.4.1",
        signature::message::ECDSA_SHA1,
        c"PKCS#11 ECDSA-SHA1 signature (sign-message API)"
    ),
    #[cfg(ossl_v340)]
    algorithm!(
        c"ECDSA-SHA2-224:ECDSA-SHA224:ecdsa-with-SHA224:1.2.840.10045.4.3.1",
        signature::message::ECDSA_SHA224,
        c"PKCS#11 ECDSA-SHA2-224 signature (sign-message API)"
    ),
    #[cfg(ossl_v340)]
    algorithm!(
        c"ECDSA-SHA2-256:ECDSA-SHA256:ecdsa-with-SHA256:1.2.840.10045.4.3.2",
        signature::message::ECDSA_SHA256,
        c"PKCS#11 ECDSA-SHA2-256 signature (sign-message API)"
    ),
    #[cfg(ossl_v340)]
    algorithm!(
        c"ECDSA-SHA2-384:ECDSA-SHA384:ecdsa-with-SHA384:1.2.840.10045.4.3.3",
        signature::message::ECDSA_SHA384,
        c"PKCS#11 ECDSA-SHA2-384 signature (sign-message API)"
    ),
    #[cfg(ossl_v340)]
    algorithm!(
        c"ECDSA-SHA2-512:ECDSA-SHA512:ecdsa-with-SHA512:1.2.840.10045.4.3.4",
        signature::message::ECDSA_SHA512,
        c"PKCS#11 ECDSA-SHA2-512 signature (sign-message API)"
    ),
    #[cfg(ossl_v340)]
    algorithm!(
        c"ECDSA-SHA3-224:ecdsa_with_SHA3-224:id-ecdsa-with-sha3-224:2.16.840.1.101.3.4.3.9",
        signature::message::ECDSA_SHA3_224,
        c"PKCS#11 ECDSA-SHA3-224 signature (sign-message API)"
    ),
    #[cfg(ossl_v340)]
    algorithm!(
        c"ECDSA-SHA3-256:ecdsa_with_SHA3-256:id-ecdsa-with-sha3-256:2.16.840.1.101.3.4.3.10",
        signature::message::ECDSA_SHA3_256,
        c"PKCS#11 ECDSA-SHA3-256 signature (sign-message API)"
    ),
    #[cfg(ossl_v340)]
    algorithm!(
        c"ECDSA-SHA3-384:ecdsa_with_SHA3-384:id-ecdsa-with-sha3-384:2.16.840.1.101.3.4.3.11",
        signature::message::ECDSA_SHA3_384,
        c"PKCS#11 ECDSA-SHA3-384 signature (sign-message API)"
    ),
    #[cfg(ossl_v340)]
    algorithm!(
        c"ECDSA-SHA3-512:ecdsa_with_SHA3-512:id-ecdsa-with-sha3-512:2.16.840.1.101.3.4.3.12",
        signature::message::ECDSA_SHA3_512,
        c"PKCS#11 ECDSA-SHA3-512 signature (sign-message API)"
    ),
    ALGORITHM_END,
]);

static ASYM_CIPHER_ALGORITHMS: Table<OSSL_ALGORITHM> = Table(&[
    algorithm!(RSA_NAMES, asym_cipher::RSA, c"PKCS#11 RSA decryption"),
    ALGORITHM_END,
]);

static KEYEXCH_ALGORITHMS: Table<OSSL_ALGORITHM> = Table(&[
    algorithm!(c"ECDH", keyexch::ECDH, c"PKCS#11 ECDH key exchange"),
    ALGORITHM_END,
]);

/// Property string of the text encoders.
const TEXT_ENCODER_PROPERTIES: &std::ffi::CStr = c"provider=pkcs11,output=text";

/// Builds one text-encoder `OSSL_ALGORITHM` entry.
macro_rules! text_encoder {
    ($names:expr) => {
        OSSL_ALGORITHM {
            algorithm_names: $names.as_ptr(),
            property_definition: TEXT_ENCODER_PROPERTIES.as_ptr(),
            implementation: encoder::TEXT.as_ptr(),
            algorithm_description: c"PKCS#11 key to text".as_ptr(),
        }
    };
}

/// Property strings of the PEM-URI decoders: PEM armour to DER body (named "DER" so that
/// OpenSSL chains it in front of every DER decoder, the `file:` store's included), and DER body
/// to token key, one per key type.
const PEM_TO_DER_PROPERTIES: &std::ffi::CStr = c"provider=pkcs11,input=pem";
const KEY_DECODER_PROPERTIES: &std::ffi::CStr = c"provider=pkcs11,input=der";

/// Builds one PEM-URI decoder `OSSL_ALGORITHM` entry.
macro_rules! pem_uri_decoder {
    ($names:expr, $properties:expr, $table:expr) => {
        OSSL_ALGORITHM {
            algorithm_names: $names.as_ptr(),
            property_definition: $properties.as_ptr(),
            implementation: $table.as_ptr(),
            algorithm_description: c"PKCS#11 PROVIDER URI key file to token key".as_ptr(),
        }
    };
}

static DECODER_ALGORITHMS: Table<OSSL_ALGORITHM> = Table(&[
    pem_uri_decoder!(c"DER", PEM_TO_DER_PROPERTIES, decoder::PEM_TO_DER),
    pem_uri_decoder!(RSA_NAMES, KEY_DECODER_PROPERTIES, decoder::RSA),
    pem_uri_decoder!(RSA_PSS_NAMES, KEY_DECODER_PROPERTIES, decoder::RSA_PSS),
    pem_uri_decoder!(EC_NAMES, KEY_DECODER_PROPERTIES, decoder::EC),
    pem_uri_decoder!(ED25519_NAMES, KEY_DECODER_PROPERTIES, decoder::ED25519),
    pem_uri_decoder!(ED448_NAMES, KEY_DECODER_PROPERTIES, decoder::ED448),
    ALGORITHM_END,
]);

/// Property string of the PEM-URI encoders (what `PEM_write_bio_PrivateKey` asks for).
const PEM_URI_ENCODER_PROPERTIES: &std::ffi::CStr =
    c"provider=pkcs11,output=pem,structure=PrivateKeyInfo";

/// Builds one PEM-URI encoder `OSSL_ALGORITHM` entry.
macro_rules! pem_uri_encoder {
    ($names:expr) => {
        OSSL_ALGORITHM {
            algorithm_names: $names.as_ptr(),
            property_definition: PEM_URI_ENCODER_PROPERTIES.as_ptr(),
            implementation: encoder::PEM_URI.as_ptr(),
            algorithm_description: c"PKCS#11 key to PKCS#11 PROVIDER URI PEM file".as_ptr(),
        }
    };
}

/// Property strings of the SubjectPublicKeyInfo encoders (what `openssl pkey -pubout` and
/// `i2d_PUBKEY` ask for).
const SPKI_DER_PROPERTIES: &std::ffi::CStr =
    c"provider=pkcs11,output=der,structure=SubjectPublicKeyInfo";
const SPKI_PEM_PROPERTIES: &std::ffi::CStr =
    c"provider=pkcs11,output=pem,structure=SubjectPublicKeyInfo";

/// Builds one SubjectPublicKeyInfo encoder `OSSL_ALGORITHM` entry.
macro_rules! public_key_encoder {
    ($names:expr, $properties:expr, $table:expr) => {
        OSSL_ALGORITHM {
            algorithm_names: $names.as_ptr(),
            property_definition: $properties.as_ptr(),
            implementation: $table.as_ptr(),
            algorithm_description: c"PKCS#11 public key to SubjectPublicKeyInfo".as_ptr(),
        }
    };
}

/// Text encoders, PEM-URI encoders (they refuse with a clear message unless
/// `pkcs11-module-encode-provider-uri-to-pem = true`) and SubjectPublicKeyInfo encoders.
static ENCODER_ALGORITHMS: Table<OSSL_ALGORITHM> = Table(&[
    text_encoder!(RSA_NAMES),
    text_encoder!(RSA_PSS_NAMES),
    text_encoder!(EC_NAMES),
    text_encoder!(ED25519_NAMES),
    text_encoder!(ED448_NAMES),
    pem_uri_encoder!(RSA_NAMES),
    pem_uri_encoder!(RSA_PSS_NAMES),
    pem_uri_encoder!(EC_NAMES),
    pem_uri_encoder!(ED25519_NAMES),
    pem_uri_encoder!(ED448_NAMES),
    public_key_encoder!(RSA_NAMES, SPKI_DER_PROPERTIES, encoder::PUBLIC_KEY_DER),
    public_key_encoder!(RSA_PSS_NAMES, SPKI_DER_PROPERTIES, encoder::PUBLIC_KEY_DER),
    public_key_encoder!(EC_NAMES, SPKI_DER_PROPERTIES, encoder::PUBLIC_KEY_DER),
    public_key_encoder!(ED25519_NAMES, SPKI_DER_PROPERTIES, encoder::PUBLIC_KEY_DER),
    public_key_encoder!(ED448_NAMES, SPKI_DER_PROPERTIES, encoder::PUBLIC_KEY_DER),
    public_key_encoder!(RSA_NAMES, SPKI_PEM_PROPERTIES, encoder::PUBLIC_KEY_PEM),
    public_key_encoder!(RSA_PSS_NAMES, SPKI_PEM_PROPERTIES, encoder::PUBLIC_KEY_PEM),
    public_key_encoder!(EC_NAMES, SPKI_PEM_PROPERTIES, encoder::PUBLIC_KEY_PEM),
    public_key_encoder!(ED25519_NAMES, SPKI_PEM_PROPERTIES, encoder::PUBLIC_KEY_PEM),
    public_key_encoder!(ED448_NAMES, SPKI_PEM_PROPERTIES, encoder::PUBLIC_KEY_PEM),
    ALGORITHM_END,
]);

static STORE_ALGORITHMS: Table<OSSL_ALGORITHM> = Table(&[
    algorithm!(c"pkcs11", store::STORE, c"PKCS#11 URI (RFC 7512) store"),
    ALGORITHM_END,
]);

/// `OSSL_FUNC_PROVIDER_QUERY_OPERATION`.
unsafe extern "C" fn prov_query_operation(
    provctx: *mut c_void,
    operation_id: c_int,
    no_cache: *mut c_int,
) -> *const OSSL_ALGORITHM {
    ffi_boundary!("prov_query_operation", std::ptr::null(), {
        // SAFETY: no_cache is NULL or writable.
        if let Some(flag) = unsafe { no_cache.as_mut() } {
            *flag = 0;
        }
        // SAFETY: provctx is ours.
        let ctx = unsafe { prov_ctx(provctx)? };
        let (name, table) = match operation_id {
            abi::OSSL_OP_KEYMGMT => ("keymgmt", KEYMGMT_ALGORITHMS.as_ptr()),
            abi::OSSL_OP_SIGNATURE => ("signature", SIGNATURE_ALGORITHMS.as_ptr()),
            abi::OSSL_OP_ASYM_CIPHER => ("asym-cipher", ASYM_CIPHER_ALGORITHMS.as_ptr()),
            abi::OSSL_OP_KEYEXCH => ("keyexch", KEYEXCH_ALGORITHMS.as_ptr()),
            abi::OSSL_OP_STORE => ("store", STORE_ALGORITHMS.as_ptr()),
            abi::OSSL_OP_ENCODER => ("encoder", ENCODER_ALGORITHMS.as_ptr()),
            abi::OSSL_OP_DECODER => ("decoder", DECODER_ALGORITHMS.as_ptr()),
            _ => return Ok(std::ptr::null()),
        };
        // "exchange" is taken as another name of "keyexch".
        let blocked = |b: &String| b == name || (name == "keyexch" && b == "exchange");
        if ctx.config().block_operations.iter().any(blocked) {
            return Ok(std::ptr::null());
        }
        Ok(table)
    })
}

/// The reason-string table handed to OpenSSL (built once from error.rs).
struct ReasonTable(Vec<OSSL_ITEM>);
// SAFETY: the items point to 'static C strings and the table is never changed after creation.
unsafe impl Sync for ReasonTable {}
// SAFETY: as above.
unsafe impl Send for ReasonTable {}

static REASONS: Lazy<ReasonTable> = Lazy::new(|| {
    let mut items: Vec<OSSL_ITEM> = reason_strings()
        .map(|(id, text)| OSSL_ITEM {
            id,
            ptr: text.as_ptr().cast_mut().cast(),
        })
        .collect();
    items.push(OSSL_ITEM {
        id: 0,
        ptr: std::ptr::null_mut(),
    });
    ReasonTable(items)
});

/// `OSSL_FUNC_PROVIDER_GET_REASON_STRINGS`.
unsafe extern "C" fn prov_get_reason_strings(_provctx: *mut c_void) -> *const OSSL_ITEM {
    REASONS.0.as_ptr()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(table: &[OSSL_DISPATCH]) -> Vec<c_int> {
        table
            .iter()
            .take_while(|d| d.function_id != 0)
            .map(|d| d.function_id)
            .collect()
    }

    #[test]
    fn dispatch_tables_are_terminated_and_unique() {
        for table in [
            PROVIDER_FUNCTIONS,
            keymgmt::RSA,
            keymgmt::RSA_PSS,
            keymgmt::EC,
            keymgmt::ED25519,
            keymgmt::ED448,
            signature::RSA,
            signature::ECDSA,
            signature::ED25519,
            signature::ED448,
            asym_cipher::RSA,
            keyexch::ECDH,
            store::STORE,
            decoder::PEM_TO_DER,
            decoder::RSA,
            encoder::TEXT,
            encoder::PEM_URI,
        ] {
            assert_eq!(table.last().map(|d| d.function_id), Some(0));
            let ids = ids(table);
            let unique: std::collections::HashSet<_> = ids.iter().collect();
            assert_eq!(unique.len(), ids.len());
        }
    }

    /// Every signature algorithm's table (with 3.4+ headers also the sign-message ones) ends
    /// with the terminator and has no function twice.
    #[test]
    fn signature_algorithm_tables_are_terminated_and_unique() {
        let algorithms: Vec<&OSSL_ALGORITHM> = SIGNATURE_ALGORITHMS
            .0
            .iter()
            .take_while(|a| !a.algorithm_names.is_null())
            .collect();
        assert_eq!(algorithms.len(), if cfg!(ossl_v340) { 22 } else { 4 });
        for algorithm in algorithms {
            let mut ids = Vec::new();
            let mut entry = algorithm.implementation;
            // SAFETY: every implementation is one of this crate's static dispatch tables, which
            // end with a zero function id (so the walk stops inside the table).
            while unsafe { (*entry).function_id } != 0 {
                // SAFETY: as above; the entry is not the terminator, so the next one exists.
                ids.push(unsafe { (*entry).function_id });
                // SAFETY: as above.
                entry = unsafe { entry.add(1) };
            }
            let unique: std::collections::HashSet<_> = ids.iter().collect();
            assert_eq!(unique.len(), ids.len());
        }
    }

    #[test]
    fn reason_table_is_terminated() {
        assert_eq!(REASONS.0.last().map(|i| i.id), Some(0));
        assert!(REASONS.0.len() > 90);
    }
}
