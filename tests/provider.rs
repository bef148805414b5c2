//! CLI integration tests for the provider (issue 3, "Shown by"): each test builds its own SoftHSM2
//! token, drives the stock `openssl` binary with our provider loaded from `openssl.cnf`, and checks
//! the results cryptographically with OpenSSL's default provider and the key material that
//! `pkcs11-tool` reads from the token. Needs `openssl`, `softhsm2-util`, `pkcs11-tool` and
//! OpenSC's `pkcs11-spy.so`; a missing tool fails the test with an install hint.

// `cfg(test)` always holds in this binary; it marks the helper modules as test code so that
// clippy's `allow-{unwrap,expect,panic}-in-tests` cover the fixture as well as the tests.
#[cfg(test)]
mod cli;
#[cfg(test)]
mod common;
