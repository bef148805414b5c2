//! Operations: what each OpenSSL operation means for token keys, in safe Rust. Called only
//! from `edge`; reaches tokens only through `token`.
//!
//! - `provider`: the provider context (configuration, tokens, digests);
//! - `store`: `pkcs11:` URIs through OSSL_STORE (provider-storemgmt(7)); `search`: its
//!   search criteria (subject, issuer and serial, fingerprint, alias);
//! - `keymgmt`: key data for OpenSSL (provider-keymgmt(7)); `keygen`: key generation on the
//!   token;
//! - `signature`: signing contexts (provider-signature(7)); `mechanism`: which PKCS#11
//!   mechanism a signature uses;
//! - `asym_cipher`: RSA decryption on the token, encryption with the public key
//!   (provider-asym_cipher(7));
//! - `keyexch`: ECDH on the token (provider-keyexch(7));
//! - `encoder`, `decoder`: PEM-URI key files and public keys (provider-encoder(7),
//!   provider-decoder(7)).

pub(crate) mod asym_cipher;
pub(crate) mod decoder;
pub(crate) mod encoder;
pub(crate) mod keyexch;
pub(crate) mod keygen;
pub(crate) mod keymgmt;
pub(crate) mod mechanism;
pub(crate) mod provider;
pub(crate) mod search;
pub(crate) mod signature;
pub(crate) mod store;
