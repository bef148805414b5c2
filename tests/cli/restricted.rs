//! Keys restricted by `CKA_ALLOWED_MECHANISMS` and tokens that offer only some mechanisms
//! (issue 12): the provider signs with a mechanism the key and the token permit, including the
//! combined hash-and-sign ones (`CKM_SHA256_RSA_PKCS_PSS`, `CKM_SHA256_RSA_PKCS`,
//! `CKM_ECDSA_SHA256`) that take the message itself; a signature nothing permits fails when
//! signing with an error naming the mechanisms; a key whose list holds numbers cryptoki has no
//! name for still loads. Signatures are verified by the default provider with the public key
//! pkcs11-tool reads; the mechanism the token was asked for is read from a pkcs11-spy log.

use std::fs;

use crate::common::softhsm::spy_module;
use crate::common::{Fixture, KeyType, SignatureCheck};

/// Generates an RSA-2048 (or P-256 with `ec`) key pair "id"/"label" whose
/// `CKA_ALLOWED_MECHANISMS` is `mechanisms` (pkcs11-tool's names, comma-separated).
fn restricted_key(fx: &Fixture, ec: bool, id: &str, label: &str, mechanisms: &str) {
    let key_type = if ec { "EC:prime256v1" } else { "rsa:2048" };
    fx.token()
        .pkcs11_tool_login()
        .args([
            "--keypairgen",
            "--key-type",
            key_type,
            "--id",
            id,
            "--label",
            label,
        ])
        .args(["--allowed-mechanisms", mechanisms])
        .run()
        .success();
}

/// Puts pkcs11-spy between the provider and SoftHSM2; returns the spy log's path.
fn install_spy(fx: &mut Fixture) -> String {
    let log = fx.file("spy.log");
    let softhsm = fx.token().module().display().to_string();
    fx.config_mut().module_path = Some(spy_module());
    fx.set_child_env("PKCS11SPY", &softhsm);
    fx.set_child_env("PKCS11SPY_OUTPUT", &log);
    log
}

/// The mechanisms the provider passed to `C_SignInit`, in order, from the spy log.
fn sign_mechanisms(spy_log: &str) -> Vec<String> {
    let text = fs::read_to_string(spy_log).unwrap_or_default();
    let mut found = Vec::new();
    let mut in_sign_init = false;
    for line in text.lines() {
        if let Some((_, name)) = line.split_once(": ") {
            if line.starts_with(|c: char| c.is_ascii_digit()) {
                in_sign_init = name.trim() == "C_SignInit";
                continue;
            }
        }
        if in_sign_init && line.contains("pMechanism->type") {
            if let Some((_, name)) = line.split_once('=') {
                found.push(name.trim().to_owned());
                in_sign_init = false;
            }
        }
    }
    found
}

/// Signs a fresh message with `dgst -<digest> -sign <uri> <sigopts>` and checks it with the
/// default provider and pkcs11-tool's public key `id`.
#[track_caller]
fn assert_signs(fx: &Fixture, uri: &str, id: &str, digest: &str, sigopts: &[&str]) {
    let public_key = fx.export_pubkey(id);
    let message = fx.message("message.txt");
    let signature = fx.file(&format!("message-{id}-{digest}.sig"));
    let digest_flag = format!("-{digest}");
    let mut args = vec!["dgst", &digest_flag, "-sign", uri, "-out", &signature];
    for option in sigopts {
        args.extend(["-sigopt", option]);
    }
    args.push(&message);
    let signed = fx.openssl(&args).success();
    let check = SignatureCheck {
        verify_options: sigopts,
        ..SignatureCheck::new(&public_key, &message, &signature, Some(digest))
    };
    fx.assert_valid_signature(&check, &signed);
}

const PSS_SHA256: &[&str] = &[
    "rsa_padding_mode:pss",
    "rsa_pss_saltlen:digest",
    "rsa_mgf1_md:sha256",
];

/// A key allowed only `CKM_SHA256_RSA_PKCS_PSS` signs PSS/SHA-256 with that mechanism (the
/// token hashes the message); SHA-384 and PKCS#1 v1.5 padding fail when signing, naming the
/// mechanisms, and do not reach the token.
#[test]
fn key_allowed_only_sha256_pss_signs_with_the_combined_mechanism() {
    let mut fx = Fixture::new("restricted-sha256-pss");
    restricted_key(&fx, false, "01", "pss256", "SHA256-RSA-PKCS-PSS");
    let spy_log = install_spy(&mut fx);
    let uri = fx.private_key_uri("pss256");
    assert_signs(&fx, &uri, "01", "sha256", PSS_SHA256);
    // pkeyutl on the raw message (latchset's rsapssam does this) takes the same path.
    let message = fx.message("message.txt");
    let signature = fx.file("rawin.sig");
    let options = [
        "-pkeyopt",
        "pad-mode:pss",
        "-pkeyopt",
        "mgf1-digest:sha256",
        "-pkeyopt",
        "saltlen:digest",
    ];
    let mut args = vec![
        "pkeyutl", "-sign", "-inkey", &uri, "-digest", "sha256", "-rawin",
    ];
    args.extend(options);
    args.extend(["-in", &message, "-out", &signature]);
    let signed = fx.openssl(&args).success();
    let public_key = fx.export_pubkey("01");
    let check = SignatureCheck {
        verify_options: PSS_SHA256,
        ..SignatureCheck::new(&public_key, &message, &signature, Some("sha256"))
    };
    fx.assert_valid_signature(&check, &signed);
    assert_eq!(
        sign_mechanisms(&spy_log),
        ["CKM_SHA256_RSA_PKCS_PSS", "CKM_SHA256_RSA_PKCS_PSS"],
        "spy log {spy_log}"
    );

    let refused = fx
        .openssl(&[
            "dgst",
            "-sha384",
            "-sign",
            &uri,
            "-sigopt",
            "rsa_padding_mode:pss",
            "-out",
            &fx.file("sha384.sig"),
            &message,
        ])
        .clean_failure();
    refused.assert_provider_error(&["allows only CKM_SHA256_RSA_PKCS_PSS"]);
    refused.assert_provider_error(&["CKM_SHA384_RSA_PKCS_PSS"]);
    let refused = fx
        .openssl(&[
            "pkeyutl",
            "-sign",
            "-inkey",
            &uri,
            "-digest",
            "sha256",
            "-rawin",
            "-pkeyopt",
            "rsa_padding_mode:pkcs1",
            "-in",
            &message,
            "-out",
            &fx.file("pkcs1.sig"),
        ])
        .clean_failure();
    // The failure comes from the signature itself, as latchset's scripts expect.
    refused.assert_stderr_mentions(&["Public Key operation error"]);
    refused.assert_provider_error(&["needs CKM_RSA_PKCS or CKM_SHA256_RSA_PKCS"]);
    assert_eq!(
        sign_mechanisms(&spy_log).len(),
        2,
        "a refused signature reached the token: spy log {spy_log}"
    );
}

/// An RSA PKCS#1 v1.5 key allowed only `CKM_SHA256_RSA_PKCS` signs whole messages with it; a
/// precomputed hash cannot go to a mechanism that hashes on the token. An ECDSA key allowed
/// only `CKM_ECDSA_SHA256` cannot sign on SoftHSM2 2.6, which has no `CKM_ECDSA_SHA*` at all:
/// the error says so, and nothing reaches the token.
#[test]
fn keys_allowed_only_combined_mechanisms_sign_messages() {
    let mut fx = Fixture::new("restricted-combined");
    restricted_key(&fx, false, "01", "rsa256", "SHA256-RSA-PKCS");
    restricted_key(&fx, true, "02", "ec256", "ECDSA-SHA256");
    let spy_log = install_spy(&mut fx);
    let rsa = fx.private_key_uri("rsa256");
    assert_signs(&fx, &rsa, "01", "sha256", &[]);
    assert_eq!(
        sign_mechanisms(&spy_log),
        ["CKM_SHA256_RSA_PKCS"],
        "spy log {spy_log}"
    );
    let message = fx.message("message.txt");
    let hash = fx.hash_file(&message, "sha256");
    let refused = fx
        .openssl(&[
            "pkeyutl",
            "-sign",
            "-inkey",
            &rsa,
            "-pkeyopt",
            "digest:sha256",
            "-in",
            &hash,
            "-out",
            &fx.file("prehashed.sig"),
        ])
        .clean_failure();
    refused.assert_provider_error(&["not a precomputed hash"]);
    let refused = fx
        .openssl(&[
            "dgst",
            "-sha256",
            "-sign",
            &fx.private_key_uri("ec256"),
            "-out",
            &fx.file("ec.sig"),
            &message,
        ])
        .clean_failure();
    refused.assert_provider_error(&["the token does not offer CKM_ECDSA_SHA256"]);
    assert_eq!(sign_mechanisms(&spy_log).len(), 1, "spy log {spy_log}");
}

/// A token that offers RSA signatures only as `CKM_SHA256_RSA_PKCS` and `CKM_SHA384_RSA_PKCS`
/// (SoftHSM2's `slots.mechanisms`, set after the key was made) gets PKCS#1 v1.5 signatures
/// through them.
#[test]
fn token_offering_only_combined_mechanisms_gets_them() {
    let mut fx = Fixture::new("restricted-token");
    fx.generate_key(KeyType::Rsa2048, "01", "rsa");
    let conf = fx.token().conf().to_path_buf();
    let mut text = fs::read_to_string(&conf).expect("read softhsm2.conf");
    text.push_str("slots.mechanisms = CKM_SHA256_RSA_PKCS,CKM_SHA384_RSA_PKCS\n");
    fs::write(&conf, text).expect("write softhsm2.conf");
    let spy_log = install_spy(&mut fx);
    assert_signs(&fx, &fx.private_key_uri("rsa"), "01", "sha256", &[]);
    assert_signs(&fx, &fx.private_key_uri("rsa"), "01", "sha384", &[]);
    assert_eq!(
        sign_mechanisms(&spy_log),
        ["CKM_SHA256_RSA_PKCS", "CKM_SHA384_RSA_PKCS"],
        "spy log {spy_log}"
    );
    let refused = fx
        .openssl(&[
            "dgst",
            "-sha512",
            "-sign",
            &fx.private_key_uri("rsa"),
            "-out",
            &fx.file("sha512.sig"),
            &fx.message("message.txt"),
        ])
        .clean_failure();
    refused.assert_provider_error(&["does not offer CKM_RSA_PKCS or CKM_SHA512_RSA_PKCS"]);
}

/// `CKA_ALLOWED_MECHANISMS` holding `CKM_SHA224_RSA_PKCS_PSS` and `CKM_SHA224_RSA_PKCS`
/// (numbers cryptoki 0.12 cannot name): the keys load and sign with what they allow; the
/// PSS-only one is an RSA-PSS key for OpenSSL (as latchset's democa key).
#[test]
fn keys_with_mechanisms_cryptoki_does_not_name_load_and_sign() {
    let mut fx = Fixture::new("restricted-unnamed");
    restricted_key(&fx, false, "01", "mixed", "RSA-PKCS,SHA224-RSA-PKCS");
    restricted_key(
        &fx,
        false,
        "02",
        "pss-only",
        "RSA-PKCS-PSS,SHA224-RSA-PKCS-PSS,SHA256-RSA-PKCS-PSS",
    );
    let spy_log = install_spy(&mut fx);
    assert_signs(&fx, &fx.private_key_uri("mixed"), "01", "sha256", &[]);
    let pss = fx.private_key_uri("pss-only");
    let shown = fx
        .openssl(&["pkey", "-in", &pss, "-pubout", "-text"])
        .success();
    assert!(
        shown.stdout().contains("BEGIN PUBLIC KEY") && shown.stdout().contains("PSS"),
        "the PSS-only key is not an RSA-PSS key\n{}",
        shown.report()
    );
    assert_signs(
        &fx,
        &pss,
        "02",
        "sha384",
        &[
            "rsa_padding_mode:pss",
            "rsa_pss_saltlen:digest",
            "rsa_mgf1_md:sha384",
        ],
    );
    assert_eq!(
        sign_mechanisms(&spy_log),
        ["CKM_RSA_PKCS", "CKM_RSA_PKCS_PSS"],
        "spy log {spy_log}"
    );
}
