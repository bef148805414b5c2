//! PEM-URI key files (issue 4, DESIGN.md "PEM-URI key files"): the encoder writes them when
//! `pkcs11-module-encode-provider-uri-to-pem = true`, and the decoder lets a program that only
//! reads PEM key files (`PEM_read_PrivateKey`, tests/programs/pem_read_sign.c) sign with the
//! token key. Files are also built here without the provider, so the format is checked on both
//! sides; broken files and wrong objects must fail clearly.

use std::fs;

use crate::common::pemfile::pem_uri_file_with;
use crate::common::{Fixture, KeyType, SignatureCheck};

const BEGIN: &str = "-----BEGIN PKCS#11 PROVIDER URI-----";

/// Signs with `key_file` through `pem_read_sign` and checks the signature with key 01's public
/// key read by pkcs11-tool.
fn assert_program_signs(fx: &Fixture, key_file: &str, digest: Option<&str>) {
    let program = fx.compile_program("pem_read_sign");
    let message = fx.message("message.txt");
    let signature = fx.file("message.sig");
    let signed = fx
        .run_with_provider(&program, &[key_file, &message, &signature])
        .success();
    let public_key = fx.export_pubkey("01");
    let check = SignatureCheck::new(&public_key, &message, &signature, digest);
    fx.assert_valid_signature(&check, &signed);
}

#[test]
fn encoder_writes_a_file_that_programs_sign_with() {
    let mut fx = Fixture::new("pemuri-encode");
    fx.generate_key(KeyType::EcP256, "01", "key");
    fx.config_mut()
        .set("pkcs11-module-encode-provider-uri-to-pem", "true");
    let key_file = fx.file("key.pem");
    let uri = fx.private_key_uri("key");
    fx.openssl(&["pkey", "-in", &uri, "-out", &key_file])
        .success();
    let text = fs::read_to_string(&key_file).expect("read key.pem");
    assert!(text.starts_with(BEGIN), "{text}");
    assert!(!text.contains("PRIVATE KEY-----"), "{text}");
    assert_program_signs(&fx, &key_file, Some("sha256"));
}

#[test]
fn without_the_option_a_token_key_is_not_written() {
    let fx = Fixture::new("pemuri-encode-off");
    fx.generate_key(KeyType::EcP256, "01", "key");
    let key_file = fx.file("key.pem");
    let uri = fx.private_key_uri("key");
    let run = fx
        .openssl(&["pkey", "-in", &uri, "-out", &key_file])
        .clean_failure();
    run.assert_stderr_mentions(&["pkcs11-module-encode-provider-uri-to-pem"]);
}

#[test]
fn independently_made_files_load_for_rsa_and_ed25519() {
    for (name, key_type, digest) in [
        ("pemuri-rsa", KeyType::Rsa2048, Some("sha256")),
        ("pemuri-ed25519", KeyType::Ed25519, None),
    ] {
        let fx = Fixture::new(name);
        fx.generate_key(key_type, "01", "key");
        let uri = fx.private_key_uri("key");
        let key_file = fx.write_file(
            "key.pem",
            pem_uri_file_with("PKCS#11 Provider URI v1.0", &uri),
        );
        assert_program_signs(&fx, &key_file, digest);
    }
}

#[test]
fn broken_files_and_wrong_objects_fail_clearly() {
    let fx = Fixture::new("pemuri-broken");
    fx.generate_key(KeyType::EcP256, "01", "key");
    let program = fx.compile_program("pem_read_sign");
    let message = fx.message("message.txt");
    let signature = fx.file("message.sig");
    let good = pem_uri_file_with("PKCS#11 Provider URI v1.0", &fx.private_key_uri("key"));
    let cases = [
        (
            "missing.pem",
            pem_uri_file_with(
                "PKCS#11 Provider URI v1.0",
                &fx.uri("object=nope;type=private"),
            ),
            "no object matches",
        ),
        (
            "public.pem",
            pem_uri_file_with(
                "PKCS#11 Provider URI v1.0",
                &fx.uri("object=key;type=public"),
            ),
            "private key is needed",
        ),
        (
            "garbled.pem",
            good.replacen("\nM", "\n!", 1),
            "malformed PKCS#11 PROVIDER URI",
        ),
        (
            "wrong-description.pem",
            pem_uri_file_with("Some Other Thing v1.0", &fx.private_key_uri("key")),
            "unknown description",
        ),
        (
            "bad-uri.pem",
            pem_uri_file_with("PKCS#11 Provider URI v1.0", "pkcs11:object=%zz"),
            "bad percent-escape",
        ),
    ];
    for (file, contents, expected) in cases {
        let path = fx.write_file(file, contents);
        let run = fx
            .run_with_provider(&program, &[&path, &message, &signature])
            .clean_failure();
        run.assert_stderr_mentions(&[expected]);
    }
}
