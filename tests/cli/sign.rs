//! Signing with token keys through the `openssl` CLI (issue 3, provider-signature(7)):
//! `dgst -sign` (digest sign), `pkeyutl -sign` on a precomputed hash (RSA PKCS#1 v1.5 with
//! DigestInfo, raw ECDSA), `pkeyutl -sign -rawin` for EdDSA, and RSA-PSS salt lengths. Every
//! signature is verified with the default provider against the public key pkcs11-tool read from
//! the token, and must fail on a message with one byte changed.

use crate::common::version::{openssl_at_least, openssl_version, skip};
use crate::common::{Fixture, KeyType, SignatureCheck};

const DIGESTS: [&str; 3] = ["sha256", "sha384", "sha512"];

/// A fixture with one key labelled "key" (id 01), its exported public key and a message.
fn key_fixture(name: &str, key_type: KeyType) -> (Fixture, String, String) {
    let fx = Fixture::new(name);
    fx.generate_key(key_type, "01", "key");
    let public_key = fx.export_pubkey("01");
    let message = fx.message("message.txt");
    (fx, public_key, message)
}

/// `openssl dgst -<digest> -sign <uri>` for each digest.
fn dgst_sign(name: &str, key_type: KeyType) {
    let (fx, public_key, message) = key_fixture(name, key_type);
    let uri = fx.private_key_uri("key");
    for digest in DIGESTS {
        let signature = fx.file(&format!("{digest}.sig"));
        let digest_flag = format!("-{digest}");
        let signed = fx
            .openssl(&[
                "dgst",
                &digest_flag,
                "-sign",
                &uri,
                "-out",
                &signature,
                &message,
            ])
            .success();
        let check = SignatureCheck::new(&public_key, &message, &signature, Some(digest));
        fx.assert_valid_signature(&check, &signed);
    }
}

/// `openssl pkeyutl -sign` on the message's hash: RSA with `digest:<md>` (PKCS#1 v1.5 DigestInfo),
/// ECDSA on the bare hash. The result must verify as a signature of the message.
fn pkeyutl_sign_hash(name: &str, key_type: KeyType) {
    let (fx, public_key, message) = key_fixture(name, key_type);
    let uri = fx.private_key_uri("key");
    for digest in DIGESTS {
        let hash = fx.hash_file(&message, digest);
        let signature = fx.file(&format!("{digest}.sig"));
        let digest_option = format!("digest:{digest}");
        let mut args = vec![
            "pkeyutl", "-sign", "-inkey", &uri, "-in", &hash, "-out", &signature,
        ];
        if key_type.is_rsa() {
            args.extend(["-pkeyopt", &digest_option]);
        }
        let signed = fx.openssl(&args).success();
        let check = SignatureCheck::new(&public_key, &message, &signature, Some(digest));
        fx.assert_valid_signature(&check, &signed);
    }
}

/// `openssl pkeyutl -sign -rawin` (EdDSA signs the message itself).
fn eddsa_sign(name: &str, key_type: KeyType) {
    let (fx, public_key, message) = key_fixture(name, key_type);
    let uri = fx.private_key_uri("key");
    let signature = fx.file("message.sig");
    let signed = fx
        .openssl(&[
            "pkeyutl", "-sign", "-rawin", "-inkey", &uri, "-in", &message, "-out", &signature,
        ])
        .success();
    let check = SignatureCheck::new(&public_key, &message, &signature, None);
    fx.assert_valid_signature(&check, &signed);
}

/// Largest PSS salt for a 2048-bit key: emLen (256) - hLen - 2 (RFC 8017 9.1.1).
fn max_salt_rsa2048(digest: &str) -> usize {
    let hash_len = match digest {
        "sha256" => 32,
        "sha384" => 48,
        _ => 64,
    };
    256 - hash_len - 2
}

/// `openssl dgst -sign` with RSA-PSS and `rsa_pss_saltlen:<salt_length>`; MGF1 uses the message
/// digest (OpenSSL's default; SoftHSM2 2.6 rejects a different MGF1 hash). Verified with the same
/// options; `max` and `auto` (= max when signing, provider-signature(7)) are also checked against
/// the exact maximum, since `auto` on the verifying side accepts any salt length.
fn pss_sign(name: &str, salt_length: &str) {
    let (fx, public_key, message) = key_fixture(name, KeyType::Rsa2048);
    let uri = fx.private_key_uri("key");
    let salt_option = format!("rsa_pss_saltlen:{salt_length}");
    let options = ["rsa_padding_mode:pss", salt_option.as_str()];
    for digest in DIGESTS {
        let signature = fx.file(&format!("{digest}.sig"));
        let digest_flag = format!("-{digest}");
        let mut args = vec!["dgst", &digest_flag, "-sign", &uri, "-out", &signature];
        for option in options {
            args.extend(["-sigopt", option]);
        }
        args.push(&message);
        let signed = fx.openssl(&args).success();
        let check = SignatureCheck {
            public_key: &public_key,
            message: &message,
            signature: &signature,
            digest: Some(digest),
            verify_options: &options,
        };
        fx.assert_valid_signature(&check, &signed);
        if salt_length == "max" || salt_length == "auto" {
            let exact = format!("rsa_pss_saltlen:{}", max_salt_rsa2048(digest));
            let exact_options = ["rsa_padding_mode:pss", exact.as_str()];
            let strict = SignatureCheck {
                verify_options: &exact_options,
                ..check
            };
            assert!(
                fx.verify(&strict),
                "salt length {salt_length} did not give the maximum salt ({exact})\n{}",
                signed.report()
            );
        }
    }
}

#[test]
fn dgst_rsa2048() {
    dgst_sign("sign-dgst-rsa2048", KeyType::Rsa2048);
}

#[test]
fn dgst_rsa3072() {
    dgst_sign("sign-dgst-rsa3072", KeyType::Rsa3072);
}

#[test]
fn dgst_p256() {
    dgst_sign("sign-dgst-p256", KeyType::EcP256);
}

#[test]
fn dgst_p384() {
    dgst_sign("sign-dgst-p384", KeyType::EcP384);
}

#[test]
fn dgst_p521() {
    dgst_sign("sign-dgst-p521", KeyType::EcP521);
}

#[test]
fn pkeyutl_rsa2048() {
    pkeyutl_sign_hash("sign-pkeyutl-rsa2048", KeyType::Rsa2048);
}

#[test]
fn pkeyutl_rsa3072() {
    pkeyutl_sign_hash("sign-pkeyutl-rsa3072", KeyType::Rsa3072);
}

#[test]
fn pkeyutl_p256() {
    pkeyutl_sign_hash("sign-pkeyutl-p256", KeyType::EcP256);
}

#[test]
fn pkeyutl_p384() {
    pkeyutl_sign_hash("sign-pkeyutl-p384", KeyType::EcP384);
}

#[test]
fn pkeyutl_p521() {
    pkeyutl_sign_hash("sign-pkeyutl-p521", KeyType::EcP521);
}

#[test]
fn rawin_ed25519() {
    eddsa_sign("sign-rawin-ed25519", KeyType::Ed25519);
}

#[test]
fn rawin_ed448() {
    eddsa_sign("sign-rawin-ed448", KeyType::Ed448);
}

#[test]
fn pss_salt_digest() {
    pss_sign("sign-pss-digest", "digest");
}

#[test]
fn pss_salt_max() {
    pss_sign("sign-pss-max", "max");
}

#[test]
fn pss_salt_auto() {
    pss_sign("sign-pss-auto", "auto");
}

#[test]
fn pss_salt_32() {
    pss_sign("sign-pss-32", "32");
}

#[test]
fn pss_salt_0() {
    pss_sign("sign-pss-0", "0");
}

/// `openssl pkeyutl -sign` on a hash with PSS padding (`CKM_RSA_PKCS_PSS` on the bare hash).
#[test]
fn pss_pkeyutl_hash() {
    let (fx, public_key, message) = key_fixture("sign-pss-pkeyutl", KeyType::Rsa2048);
    let uri = fx.private_key_uri("key");
    let options = ["rsa_padding_mode:pss", "rsa_pss_saltlen:digest"];
    for digest in DIGESTS {
        let hash = fx.hash_file(&message, digest);
        let signature = fx.file(&format!("{digest}.sig"));
        let digest_option = format!("digest:{digest}");
        let mut args = vec![
            "pkeyutl", "-sign", "-inkey", &uri, "-in", &hash, "-out", &signature,
        ];
        args.extend(["-pkeyopt", &digest_option]);
        for option in options {
            args.extend(["-pkeyopt", option]);
        }
        let signed = fx.openssl(&args).success();
        let check = SignatureCheck {
            public_key: &public_key,
            message: &message,
            signature: &signature,
            digest: Some(digest),
            verify_options: &options,
        };
        fx.assert_valid_signature(&check, &signed);
    }
}

/// Signs with the private key, then verifies through the provider with the token's *public* key
/// object (`type=public`): the public key moves to the default provider for verification.
fn verify_with_token_public_key(name: &str, key_type: KeyType) {
    let (fx, public_key, message) = key_fixture(name, key_type);
    let signature = fx.file("message.sig");
    let private_uri = fx.private_key_uri("key");
    let signed = fx
        .openssl(&[
            "dgst",
            "-sha256",
            "-sign",
            &private_uri,
            "-out",
            &signature,
            &message,
        ])
        .success();
    let check = SignatureCheck::new(&public_key, &message, &signature, Some("sha256"));
    fx.assert_valid_signature(&check, &signed);
    let public_uri = fx.uri("object=key;type=public");
    fx.openssl(&[
        "dgst",
        "-sha256",
        "-verify",
        &public_uri,
        "-signature",
        &signature,
        &message,
    ])
    .success();
    let tampered = fx.tampered_copy(&message);
    fx.openssl(&[
        "dgst",
        "-sha256",
        "-verify",
        &public_uri,
        "-signature",
        &signature,
        &tampered,
    ])
    .clean_failure();
}

#[test]
fn verify_with_token_public_key_rsa() {
    verify_with_token_public_key("sign-verify-pub-rsa", KeyType::Rsa2048);
}

#[test]
fn verify_with_token_public_key_p256() {
    verify_with_token_public_key("sign-verify-pub-p256", KeyType::EcP256);
}

/// OpenSSL 3.4's sign-message API with token keys (tests/programs/sign_message.c):
/// `EVP_PKEY_sign_message_init` with the provider's RSA-SHA256, RSA-SHA3-256, ECDSA-SHA384 and
/// ECDSA-SHA256 (on P-384), streaming and one-shot, each signature verified by the default
/// provider with the same algorithm and the token's public key. OpenSSL before 3.4 has no such
/// API (and the provider registers these algorithms only when built against 3.4+ headers):
/// there the program says so and the test records a skip.
#[test]
fn sign_message_api() {
    let fx = Fixture::new("sign-message-api");
    fx.generate_key(KeyType::Rsa2048, "01", "rsa");
    fx.generate_key(KeyType::EcP384, "02", "p384");
    let program = fx.compile_program("sign_message");
    let message = fx.message("message.txt");
    for (label, id, algorithm) in [
        ("rsa", "01", "RSA-SHA256"),
        ("rsa", "01", "RSA-SHA3-256"),
        ("p384", "02", "ECDSA-SHA384"),
        ("p384", "02", "ECDSA-SHA256"),
    ] {
        let public_key = fx.export_pubkey(id);
        let uri = fx.private_key_uri(label);
        let ran = fx.run_with_provider(&program, &[&uri, &public_key, &message, algorithm]);
        if ran.output.status.code() == Some(77) {
            assert!(
                !openssl_at_least(3, 4),
                "the sign-message API is missing on OpenSSL 3.4+\n{}",
                ran.report()
            );
            skip(
                "sign_message_api",
                &format!(
                    "OpenSSL {}.{} has no sign-message API (3.4 added it)",
                    openssl_version().0,
                    openssl_version().1
                ),
            );
            return;
        }
        let ran = ran.success();
        let stdout = ran.stdout();
        assert!(
            stdout.contains("from provider pkcs11")
                && stdout.contains("sign_message_update/final:")
                && stdout.contains("EVP_PKEY_sign:"),
            "{algorithm} did not sign both ways through the provider\n{}",
            ran.report()
        );
    }
}
