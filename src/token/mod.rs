//! The token model: PKCS#11 modules, slots and their tokens, session pools, login, objects,
//! and `op`, the one function every key operation goes through (retry, re-login, rebind,
//! logging and timing). Safe Rust over cryptoki; the few direct C calls are in `sys::pkcs11`.

pub(crate) mod module;
pub(crate) mod object;
pub(crate) mod slot;
