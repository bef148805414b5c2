//! Outbound wrappers: the calls the provider makes into C, each behind a small safe type or
//! function. Allowed to contain `unsafe`; imports no domain type (keys, slots, URIs), only
//! `crate::error`, so every layer above may use it.
//!
//! - `abi`: bindgen output for OpenSSL's provider ABI (ids, function types, parameter names);
//! - `params`: typed views of `OSSL_PARAM` arrays; `slice`: NULL-safe slices and output buffers;
//! - `core`: the core's upcalls (configuration, raising errors);
//! - `libcrypto`: libcrypto objects (library context, digests, BIOs, certificates);
//! - `primitives`: libcrypto primitives around token operations (random bytes, OAEP decoding,
//!   X9.63 KDF, public-key RSA encryption);
//! - `pkcs11`: PKCS#11 calls cryptoki does not wrap the way the provider needs;
//! - `pkcs11_query`: mechanism lists and attributes holding mechanism numbers cryptoki cannot
//!   name;
//! - `x509`: certificate names and serial numbers for the store's search criteria;
//! - `ui`: the terminal PIN prompt (OpenSSL's default UI);
//! - `verify`: signature verification run in another provider;
//! - `atfork`: fork detection and the fork gate;
//! - `async_job`: ASYNC jobs, their wait contexts and eventfds.

pub(crate) mod abi;
pub(crate) mod async_job;
pub(crate) mod atfork;
pub(crate) mod core;
pub(crate) mod libcrypto;
pub(crate) mod params;
pub(crate) mod pkcs11;
pub(crate) mod pkcs11_query;
pub(crate) mod primitives;
pub(crate) mod slice;
pub(crate) mod ui;
pub(crate) mod verify;
pub(crate) mod x509;
