//! pkcs11-ossl: an OpenSSL 3 provider that uses private keys kept on PKCS#11 tokens.
//!
//! OpenSSL loads the cdylib through openssl.cnf and calls `OSSL_provider_init`
//! (`ffi::entry`). From there the provider offers a `pkcs11:` URI store, key management and
//! signatures; every token operation goes through cryptoki. All `unsafe` code lives in `ffi`.

#[allow(unsafe_code)]
mod ffi;

mod asn1;
mod config;
mod decoder;
mod encoder;
mod error;
mod keymgmt;
mod logging;
mod module;
mod object;
mod pemuri;
mod provider;
mod signature;
mod slot;
mod store;
mod uri;

pub use ffi::entry::OSSL_provider_init;
