//! RSA decryption with token keys (issue 12, item 2): `openssl pkeyutl -decrypt` with PKCS#1
//! v1.5, OAEP (SHA-1 and SHA-2 label hashes, MGF1 hashes, labels) and no padding, and
//! `openssl cms -decrypt` for RSA key transport (PKCS#1 v1.5 and OAEP).
//!
//! Every ciphertext is made by the default provider with the public key pkcs11-tool read from
//! the token; the plaintext must come back byte for byte. A ciphertext the key cannot open is
//! a clean failure (exit code, provider error, no crash) that leaves no plaintext in the output
//! file. Encryption with the token's public key object (`pkeyutl -encrypt -pubin -inkey
//! pkcs11:...`) runs without the token and must give what the token decrypts.

use std::fs;

use crate::common::{Fixture, KeyType};

/// A token RSA key "rsa" (id 01) and its public key as read by pkcs11-tool.
fn rsa_fixture(name: &str) -> (Fixture, String, String) {
    let fx = Fixture::new(name);
    fx.generate_key(KeyType::Rsa2048, "01", "rsa");
    let public_key = fx.export_pubkey("01");
    let uri = fx.private_key_uri("rsa");
    (fx, uri, public_key)
}

/// Encrypts `plaintext` with the default provider (`options` as `-pkeyopt`), decrypts it on the
/// token with the same options, and asserts the round trip.
fn assert_round_trip(
    fx: &Fixture,
    uri: &str,
    public_key: &str,
    plaintext: &[u8],
    options: &[&str],
) {
    let tag = options.join("_").replace([':', '-'], "");
    let plain = fx.write_file(&format!("plain{tag}.bin"), plaintext);
    let sealed = fx.file(&format!("sealed{tag}.bin"));
    let opened = fx.file(&format!("opened{tag}.bin"));
    let mut encrypt = vec!["pkeyutl", "-encrypt", "-pubin", "-inkey", public_key];
    let mut decrypt = vec!["pkeyutl", "-decrypt", "-inkey", uri];
    for option in options {
        encrypt.extend(["-pkeyopt", option]);
        decrypt.extend(["-pkeyopt", option]);
    }
    encrypt.extend(["-in", &plain, "-out", &sealed]);
    decrypt.extend(["-in", &sealed, "-out", &opened]);
    fx.software_openssl(&encrypt).success();
    let ran = fx.openssl(&decrypt).success();
    assert_eq!(
        fs::read(&opened).unwrap_or_default(),
        plaintext,
        "decrypted text differs (options {options:?})\n{}",
        ran.report()
    );
}

#[test]
fn pkcs1_v15_round_trip() {
    let (fx, uri, public_key) = rsa_fixture("decrypt-pkcs1");
    assert_round_trip(&fx, &uri, &public_key, b"Super Secret\n", &[]);
    assert_round_trip(
        &fx,
        &uri,
        &public_key,
        &[0u8; 200],
        &["rsa_padding_mode:pkcs1"],
    );
}

/// OAEP with the label hash and MGF1 hash the token takes (SoftHSM2: SHA-1) and with those it
/// refuses (decoded by libcrypto after a raw decryption on the token), with and without a
/// label.
#[test]
fn oaep_round_trips() {
    let (fx, uri, public_key) = rsa_fixture("decrypt-oaep");
    let cases: &[&[&str]] = &[
        &["rsa_padding_mode:oaep"],
        &["rsa_padding_mode:oaep", "rsa_oaep_md:sha256"],
        &[
            "rsa_padding_mode:oaep",
            "rsa_oaep_md:sha384",
            "rsa_mgf1_md:sha1",
        ],
        &[
            "rsa_padding_mode:oaep",
            "rsa_oaep_md:sha512",
            "rsa_mgf1_md:sha512",
        ],
        &["rsa_padding_mode:oaep", "rsa_oaep_label:0a0b0c0d"],
        &[
            "rsa_padding_mode:oaep",
            "rsa_oaep_md:sha256",
            "rsa_oaep_label:00ff",
        ],
    ];
    for options in cases {
        assert_round_trip(&fx, &uri, &public_key, b"an OAEP secret", options);
    }
}

/// Raw RSA: one modulus-sized block (leading zero so it is below the modulus) comes back whole.
#[test]
fn no_padding_round_trip() {
    let (fx, uri, public_key) = rsa_fixture("decrypt-raw");
    let mut block = vec![0u8];
    block.extend((1..256).map(|i| i as u8));
    assert_round_trip(&fx, &uri, &public_key, &block, &["rsa_padding_mode:none"]);
}

/// A ciphertext the key cannot open, a wrong OAEP label and a wrong padding: clean failures
/// with a provider error, and no plaintext written.
#[test]
fn bad_ciphertexts_are_clean_errors() {
    let (fx, uri, public_key) = rsa_fixture("decrypt-bad");
    let garbage = fx.write_file(
        "garbage.bin",
        (0..256).map(|i| (i * 7 + 3) as u8).collect::<Vec<u8>>(),
    );
    let plain = fx.write_file("plain.txt", "not for everyone\n");
    let oaep = fx.file("oaep.bin");
    fx.software_openssl(&[
        "pkeyutl",
        "-encrypt",
        "-pubin",
        "-inkey",
        &public_key,
        "-pkeyopt",
        "rsa_padding_mode:oaep",
        "-pkeyopt",
        "rsa_oaep_label:01",
        "-in",
        &plain,
        "-out",
        &oaep,
    ])
    .success();
    let attempts: [(&str, &[&str]); 4] = [
        (garbage.as_str(), &[]),
        (garbage.as_str(), &["rsa_padding_mode:oaep"]),
        (
            oaep.as_str(),
            &["rsa_padding_mode:oaep", "rsa_oaep_label:02"],
        ),
        (oaep.as_str(), &["rsa_padding_mode:pkcs1"]),
    ];
    for (index, (input, options)) in attempts.into_iter().enumerate() {
        let out = fx.file(&format!("out{index}.bin"));
        let mut args = vec![
            "pkeyutl", "-decrypt", "-inkey", &uri, "-in", input, "-out", &out,
        ];
        for option in options {
            args.extend(["-pkeyopt", option]);
        }
        let failed = fx.openssl(&args).clean_failure();
        failed.assert_provider_error(&["decrypt", "CKR_", "OAEP"]);
        let written = fs::read(&out).unwrap_or_default();
        assert!(
            written.is_empty(),
            "{} bytes written after a failed decryption\n{}",
            written.len(),
            failed.report()
        );
    }
    // A ciphertext longer than the modulus is refused before the token sees it.
    let long = fx.write_file("long.bin", vec![1u8; 300]);
    fx.openssl(&[
        "pkeyutl",
        "-decrypt",
        "-inkey",
        &uri,
        "-in",
        &long,
        "-out",
        &fx.file("l.out"),
    ])
    .clean_failure()
    .assert_provider_error(&["longer than"]);
}

/// `pkeyutl -encrypt` with the token's public key object: no token operation, and the token
/// decrypts the result.
#[test]
fn encryption_with_the_token_public_key() {
    let (fx, uri, _) = rsa_fixture("decrypt-encrypt");
    let public_uri = fx.uri("object=rsa;type=public");
    for options in [
        &[][..],
        &["rsa_padding_mode:oaep", "rsa_oaep_md:sha256"][..],
    ] {
        let plain = fx.write_file("plain.txt", "sealed with the token's public key\n");
        let sealed = fx.file("sealed.bin");
        let opened = fx.file("opened.txt");
        let mut encrypt = vec!["pkeyutl", "-encrypt", "-pubin", "-inkey", &public_uri];
        let mut decrypt = vec!["pkeyutl", "-decrypt", "-inkey", &uri];
        for option in options {
            encrypt.extend(["-pkeyopt", option]);
            decrypt.extend(["-pkeyopt", option]);
        }
        encrypt.extend(["-in", &plain, "-out", &sealed]);
        decrypt.extend(["-in", &sealed, "-out", &opened]);
        fx.openssl(&encrypt).success();
        fx.openssl(&decrypt).success();
        assert_eq!(
            fs::read(&opened).unwrap_or_default(),
            b"sealed with the token's public key\n"
        );
    }
}

/// `openssl cms -decrypt` for an RSA recipient whose key is on the token: key transport with
/// PKCS#1 v1.5 and with OAEP, the message encrypted by the default provider.
#[test]
fn cms_decrypt_rsa_recipient() {
    let (fx, uri, _) = rsa_fixture("decrypt-cms");
    let cert = fx.token_certificate(&uri, "01", "rsa.crt", "/CN=recipient", &[]);
    let message = fx.write_file("message.txt", "CMS to an RSA token key\n");
    for (index, options) in [&[][..], &["-keyopt", "rsa_padding_mode:oaep"][..]]
        .into_iter()
        .enumerate()
    {
        let sealed = fx.file(&format!("message{index}.cms"));
        let opened = fx.file(&format!("message{index}.out"));
        let mut encrypt = vec!["cms", "-encrypt", "-binary", "-aes256", "-recip", &cert];
        encrypt.extend_from_slice(options);
        encrypt.extend(["-in", &message, "-out", &sealed]);
        fx.software_openssl(&encrypt).success();
        fx.openssl(&[
            "cms", "-decrypt", "-binary", "-recip", &cert, "-inkey", &uri, "-in", &sealed, "-out",
            &opened,
        ])
        .success();
        assert_eq!(
            fs::read(&opened).unwrap_or_default(),
            b"CMS to an RSA token key\n"
        );
    }
}
