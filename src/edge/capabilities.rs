//! `OSSL_FUNC_PROVIDER_GET_CAPABILITIES` (provider-base(7)): the TLS groups of the key types
//! this provider generates and derives with, so that libssl keeps its ECDHE groups when a
//! program fetches key management from this provider (`-propquery '?provider=pkcs11'`).
//!
//! libssl takes a group from the provider whose key management it fetches for the group's
//! algorithm; with `?provider=pkcs11` that is this provider's EC key management, so without
//! these declarations P-256, P-384 and P-521 would vanish from the handshake (and `-groups
//! secp256r1` fail). The entries mirror the default provider's. Nothing is declared when key
//! management or key exchange is blocked (`pkcs11-module-block-operations`).

use std::ffi::{CStr, c_char, c_int, c_void};

use crate::error::Error;
use crate::sys::abi;
use crate::sys::params::ParamBuilder;

/// `TLS1_VERSION` and `DTLS1_VERSION` (openssl/prov_ssl.h); 0 = no maximum.
const TLS1_VERSION: i32 = 0x0301;
const DTLS1_VERSION: i32 = 0xfeff;

/// One TLS group: name, OpenSSL's internal name, IANA group id, security bits.
struct TlsGroup {
    name: &'static CStr,
    internal: &'static CStr,
    id: i32,
    security_bits: i32,
}

/// RFC 8446 §4.2.7 / RFC 8422 §5.1.1 NIST curves, under both names libssl knows.
const TLS_GROUPS: &[TlsGroup] = &[
    TlsGroup {
        name: c"secp256r1",
        internal: c"prime256v1",
        id: 23,
        security_bits: 128,
    },
    TlsGroup {
        name: c"P-256",
        internal: c"prime256v1",
        id: 23,
        security_bits: 128,
    },
    TlsGroup {
        name: c"secp384r1",
        internal: c"secp384r1",
        id: 24,
        security_bits: 192,
    },
    TlsGroup {
        name: c"P-384",
        internal: c"secp384r1",
        id: 24,
        security_bits: 192,
    },
    TlsGroup {
        name: c"secp521r1",
        internal: c"secp521r1",
        id: 25,
        security_bits: 256,
    },
    TlsGroup {
        name: c"P-521",
        internal: c"secp521r1",
        id: 25,
        security_bits: 256,
    },
];

/// `OSSL_FUNC_PROVIDER_GET_CAPABILITIES`.
pub(super) unsafe extern "C" fn prov_get_capabilities(
    provctx: *mut c_void,
    capability: *const c_char,
    callback: abi::OSSL_CALLBACK,
    arg: *mut c_void,
) -> c_int {
    ffi_boundary!("prov_get_capabilities", 0, {
        if capability.is_null() {
            return Err(Error::NullArg("capability name"));
        }
        // SAFETY: a non-NULL capability name is a NUL-terminated string.
        let capability = unsafe { CStr::from_ptr(capability) };
        if !capability.to_bytes().eq_ignore_ascii_case(b"TLS-GROUP") {
            // Nothing to declare is not a failure: libssl asks every provider.
            return Ok(1);
        }
        // SAFETY: provctx is ours.
        let ctx = unsafe { super::prov_ctx(provctx)? };
        let blocked = ctx
            .config()
            .block_operations
            .iter()
            .any(|op| matches!(op.as_str(), "keymgmt" | "keyexch" | "exchange"));
        if blocked {
            return Ok(1);
        }
        let callback = callback.ok_or(Error::NullArg("capability callback"))?;
        for group in TLS_GROUPS {
            let mut params = ParamBuilder::new();
            params
                .utf8(abi::OSSL_CAPABILITY_TLS_GROUP_NAME, group.name)
                .utf8(abi::OSSL_CAPABILITY_TLS_GROUP_NAME_INTERNAL, group.internal)
                .utf8(abi::OSSL_CAPABILITY_TLS_GROUP_ALG, c"EC")
                .int(abi::OSSL_CAPABILITY_TLS_GROUP_ID, group.id)
                .int(
                    abi::OSSL_CAPABILITY_TLS_GROUP_SECURITY_BITS,
                    group.security_bits,
                )
                .int(abi::OSSL_CAPABILITY_TLS_GROUP_MIN_TLS, TLS1_VERSION)
                .int(abi::OSSL_CAPABILITY_TLS_GROUP_MAX_TLS, 0)
                .int(abi::OSSL_CAPABILITY_TLS_GROUP_MIN_DTLS, DTLS1_VERSION)
                .int(abi::OSSL_CAPABILITY_TLS_GROUP_MAX_DTLS, 0);
            // SAFETY: OpenSSL's callback with its own argument and our terminated array, which
            // lives across the call.
            if unsafe { callback(params.finish(), arg) } != 1 {
                return Ok(0);
            }
        }
        Ok(1)
    })
}
