//! Operations: what each OpenSSL operation means for token keys, in safe Rust. Called only
//! from `edge`; reaches tokens only through `token`.
//!
//! - `provider`: the provider context (configuration, tokens, digests);
//! - `store`: `pkcs11:` URIs through OSSL_STORE (provider-storemgmt(7)); `search`: its
//!   search criteria (subject, issuer and serial, fingerprint, alias);
//! - `keymgmt`: key data for OpenSSL (provider-keymgmt(7));
//! - `signature`: signing contexts (provider-signature(7)); `mechanism`: which PKCS#11
//!   mechanism a signature uses;
//! - `encoder`, `decoder`: PEM-URI key files and public keys (provider-encoder(7),
//!   provider-decoder(7)).

pub(crate) mod decoder;
pub(crate) mod encoder;
pub(crate) mod keymgmt;
pub(crate) mod mechanism;
pub(crate) mod provider;
pub(crate) mod search;
pub(crate) mod signature;
pub(crate) mod store;
