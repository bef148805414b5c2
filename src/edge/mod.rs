//! The inbound C edge: every function OpenSSL calls, and nothing else. Allowed to contain
//! `unsafe`.
//!
//! Layers (data flows one way; nothing imports upward):
//! `edge` (this folder: entry points, dispatch tables, panic boundary, handles) → `ops`
//! (store, keymgmt and key generation, signature, asymmetric cipher, key exchange, encoder,
//! decoder) → `token` (module, slot, session pool, login,
//! objects, and the one chokepoint that runs key operations) → `sys` (outbound wrappers:
//! libcrypto, core upcalls, direct PKCS#11 calls, atfork; they import no domain type).
//!
//! Safety contract, in one place: OpenSSL calls these functions with the pointers its provider
//! ABI promises (provider-base(7), provider-keymgmt(7), provider-signature(7),
//! provider-asym_cipher(7), provider-keyexch(7),
//! provider-storemgmt(7), provider-encoder(7), provider-decoder(7)). Each entry function checks
//! pointers for NULL, turns them into Rust references or slices (`handle`, `sys::slice`,
//! `sys::params`), calls one safe function of `ops`, and maps its `Result` to the C return value
//! inside `ffi_boundary!`, which also stops panics at the edge. Objects handed to OpenSSL are
//! boxed in exactly one place and freed in their `free` function (see `handle`).
//!
//! Return conventions of every entry point in this directory:
//!
//! | kind | success | failure (error raised) | "no" that is not an error |
//! |---|---|---|---|
//! | `int` operations (init, sign, set_params) | 1 | 0 | — |
//! | constructors (`newctx`, `new`, `load`, `dup`, `open`) | non-NULL | NULL | — |
//! | `has` / `match` | 1 | 0 only on internal failure | 0, nothing raised |
//! | `export` | 1 | 0 | 0, nothing raised, for a private-key selection |
//! | store `load` | 1 after `object_cb` | 0 | 0, nothing raised, at the end |
//! | `*_gettable/settable_params`, `query_operation` | static table | — | NULL = none |
//!
//! All algorithm tables are registered statically, independent of the token's mechanisms, so a
//! program that builds its TLS context before touching the token still finds them.

#[macro_use]
mod boundary;
pub(crate) mod dispatch;
pub(crate) mod handle;

pub(crate) mod asym_cipher;
pub(crate) mod capabilities;
pub(crate) mod decoder;
pub(crate) mod encoder;
pub(crate) mod keyexch;
pub(crate) mod keygen;
pub(crate) mod keymgmt;
pub(crate) mod provider;
pub(crate) mod signature;
pub(crate) mod store;

pub use provider::OSSL_provider_init;
pub(crate) use provider::{ask_pin, prov_ctx};
