//! Bad input must give a clear error and a non-zero exit, never a crash (issue 3): malformed URI,
//! no matching object, an ambiguous object where one key is required, a missing module path, and
//! a module that is not a PKCS#11 library. Each test first shows the same fixture working with good
//! input, so a missing or broken provider cannot pass as "it failed as expected".
//!
//! The provider's wording is not fixed yet: each case accepts any of a few key words (matched
//! case-insensitively in stderr). Adjust the lists below to the messages the provider settles on.

use std::path::{Path, PathBuf};

use crate::common::{Fixture, KeyType, NOT_PKCS11_WORDS, Ran, non_pkcs11_library};

/// stderr for `pkcs11:object=%zz`.
const MALFORMED_URI_WORDS: &[&str] = &["malformed", "invalid", "percent", "escape"];
/// stderr when no object matches the URI.
const NO_OBJECT_WORDS: &[&str] = &["no object", "no key", "not found", "no match", "matches no"];
/// stderr when two private keys match a URI that must name one.
const AMBIGUOUS_WORDS: &[&str] = &["ambiguous", "more than one", "multiple", "several"];
/// stderr when the config has no `pkcs11-module-path` (and no `PKCS11_PROVIDER_MODULE`).
const MISSING_MODULE_WORDS: &[&str] = &[
    "pkcs11-module-path",
    "module path",
    "no module",
    "PKCS11_PROVIDER_MODULE",
];
/// stderr when `pkcs11-module-path` does not exist.
const NO_SUCH_MODULE_WORDS: &[&str] =
    &["no such file", "cannot open", "not found", "does not exist"];

/// A fixture with a P-256 key "key" (id 01) that `openssl pkey -pubout` can load.
fn working_fixture(name: &str) -> Fixture {
    let fx = Fixture::new(name);
    fx.generate_key(KeyType::EcP256, "01", "key");
    load_public_key(&fx, &fx.private_key_uri("key")).success();
    fx
}

fn load_public_key(fx: &Fixture, uri: &str) -> Ran {
    fx.openssl(&["pkey", "-in", uri, "-pubout"])
}

/// Configures `module` as the PKCS#11 module and asserts the key load then fails cleanly.
fn assert_module_rejected(fx: &mut Fixture, module: &Path, words: &[&str]) {
    fx.config_mut().module_path = Some(module.to_path_buf());
    let run = load_public_key(fx, &fx.private_key_uri("key")).clean_failure();
    run.assert_stderr_mentions(words);
}

#[test]
fn malformed_uri() {
    let fx = working_fixture("errors-malformed-uri");
    let run = load_public_key(&fx, "pkcs11:object=%zz").clean_failure();
    run.assert_stderr_mentions(MALFORMED_URI_WORDS);
}

#[test]
fn no_matching_object() {
    let fx = working_fixture("errors-no-object");
    let run = load_public_key(&fx, &fx.private_key_uri("missing")).clean_failure();
    run.assert_stderr_mentions(NO_OBJECT_WORDS);
}

#[test]
fn two_private_keys_match() {
    let fx = Fixture::new("errors-ambiguous");
    fx.generate_key(KeyType::EcP256, "01", "dup");
    fx.generate_key(KeyType::EcP256, "02", "dup");
    load_public_key(&fx, &fx.uri("object=dup;id=%01;type=private")).success();
    let run = load_public_key(&fx, &fx.private_key_uri("dup")).clean_failure();
    run.assert_stderr_mentions(AMBIGUOUS_WORDS);
}

#[test]
fn missing_module_path() {
    let mut fx = working_fixture("errors-no-module-path");
    fx.config_mut().module_path = None;
    let run = load_public_key(&fx, &fx.private_key_uri("key")).clean_failure();
    run.assert_stderr_mentions(MISSING_MODULE_WORDS);
}

#[test]
fn module_is_a_text_file() {
    let mut fx = working_fixture("errors-module-text");
    let module = PathBuf::from(fx.write_file("not-a-module.so", "this is not a shared library\n"));
    assert_module_rejected(&mut fx, &module, NOT_PKCS11_WORDS);
}

#[test]
fn module_is_not_pkcs11() {
    let mut fx = working_fixture("errors-module-libz");
    let module = PathBuf::from(non_pkcs11_library());
    assert_module_rejected(&mut fx, &module, NOT_PKCS11_WORDS);
}

#[test]
fn module_does_not_exist() {
    let mut fx = working_fixture("errors-module-missing");
    let module = PathBuf::from(fx.file("no-such-module.so"));
    assert_module_rejected(&mut fx, &module, NO_SUCH_MODULE_WORDS);
}
