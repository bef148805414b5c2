//! Key generation on the token (issue 12, item 1): `openssl req -x509 -newkey` and
//! `openssl genpkey` with `-propquery '?provider=pkcs11'` and latchset's parameters
//! (`pkcs11_uri`, `pkcs11_key_usage`, `rsa_keygen_bits`, `rsa_keygen_pubexp`,
//! `ec_paramgen_curve`), for RSA, RSA-PSS, EC P-256/384/521, Ed25519 and Ed448.
//!
//! Independent checks: `pkcs11-tool` (another process) lists the new private key only after a
//! login (CKA_PRIVATE, CKA_TOKEN) as "sensitive, never extractable, local" (generated on the
//! token) with the expected usage; the public key it reads is the one in the certificate `req`
//! signed with the new key in the same process (the key signs at once), and signatures made
//! later through the PEM-URI key file verify with it in the default provider. A key generated
//! without `pkcs11_uri` is ephemeral (session objects), as TLS key shares are.

use crate::common::{Fixture, SignatureCheck};

/// `pkcs11-module-encode-provider-uri-to-pem = true`: genpkey/req can write the new key as a
/// PEM-URI file.
fn fixture(name: &str) -> Fixture {
    let mut fx = Fixture::new(name);
    fx.config_mut()
        .set("pkcs11-module-encode-provider-uri-to-pem", "true");
    fx
}

/// The `pkcs11-tool --list-objects` block of the object with CKA_ID `id` (hex).
fn object_block(listing: &str, id: &str) -> Option<String> {
    let mut blocks: Vec<String> = Vec::new();
    for line in listing.lines() {
        if !line.starts_with(' ') {
            blocks.push(String::new());
        }
        if let Some(block) = blocks.last_mut() {
            block.push_str(line);
            block.push('\n');
        }
    }
    blocks.into_iter().find(|block| {
        block.lines().any(|line| {
            line.trim_start()
                .strip_prefix("ID:")
                .is_some_and(|value| value.trim().eq_ignore_ascii_case(id))
        })
    })
}

/// The value of `name:` in a listing block.
fn field<'a>(block: &'a str, name: &str) -> &'a str {
    block
        .lines()
        .find_map(|line| line.trim_start().strip_prefix(name)?.strip_prefix(':'))
        .map_or("", str::trim)
}

/// Asserts what pkcs11-tool sees of a generated key pair with id `id`: a private key that only a
/// logged-in session sees, sensitive, never extractable, made on the token, with usage
/// `usage` (and none of `not_usage`); a public key visible without login.
#[track_caller]
fn assert_generated_on_token(fx: &Fixture, id: &str, usage: &[&str], not_usage: &[&str]) {
    let private = fx.token().list_objects("privkey", true);
    let block = object_block(&private, id)
        .unwrap_or_else(|| panic!("no private key with id {id} on the token\n{private}"));
    let access = field(&block, "Access");
    for flag in ["sensitive", "never extractable", "local"] {
        assert!(
            access.contains(flag),
            "private key {id} is not '{flag}'\n{block}"
        );
    }
    let usages: Vec<&str> = field(&block, "Usage").split(", ").collect();
    for wanted in usage {
        assert!(
            usages.contains(wanted),
            "private key {id} lacks usage {wanted}\n{block}"
        );
    }
    for unwanted in not_usage {
        assert!(
            !usages.contains(unwanted),
            "private key {id} has usage {unwanted}\n{block}"
        );
    }
    let anonymous = fx.token().list_objects("privkey", false);
    assert!(
        object_block(&anonymous, id).is_none(),
        "the private key {id} is visible without login (not CKA_PRIVATE)\n{anonymous}"
    );
    let public = fx.token().list_objects("pubkey", false);
    assert!(
        object_block(&public, id).is_some(),
        "no public key {id} readable without login\n{public}"
    );
}

/// `openssl req -x509 -newkey <newkey> [-pkeyopt ...]` generating on the token as
/// `object=<label>;id=%<id>`: returns the PEM-URI key file and the self-signed certificate,
/// after checking that the certificate holds the token's public key and verifies.
fn req_new_key(fx: &Fixture, newkey: &[&str], label: &str, id: &str) -> (String, String) {
    let key = fx.file(&format!("{label}.key.pem"));
    let cert = fx.file(&format!("{label}.crt"));
    let uri = format!("pkcs11_uri:{}", fx.uri(&format!("object={label};id=%{id}")));
    let subject = format!("/CN={label}");
    let mut args = vec!["req", "-x509", "-propquery", "?provider=pkcs11", "-newkey"];
    args.extend_from_slice(newkey);
    args.extend([
        "-pkeyopt", &uri, "-keyout", &key, "-noenc", "-subj", &subject, "-days", "30", "-out",
        &cert,
    ]);
    let made = fx.openssl(&args).success();
    let text = std::fs::read_to_string(&key).unwrap_or_default();
    assert!(
        text.starts_with("-----BEGIN PKCS#11 PROVIDER URI-----"),
        "req wrote no PEM-URI key file\n{text}\n{}",
        made.report()
    );
    fx.assert_cert_key_is_token_key(&cert, id);
    let verified = fx.software_openssl(&["verify", "-check_ss_sig", "-CAfile", &cert, &cert]);
    assert!(
        verified.output.status.success(),
        "the certificate signed with the new key does not verify\n{}\n{}",
        made.report(),
        verified.report()
    );
    (key, cert)
}

/// Signs a message with the key file `key` (`pkeyutl -rawin`, EdDSA) and checks it with the
/// token's public key `id`.
fn assert_eddsa_signs(fx: &Fixture, key: &str, id: &str) {
    let public_key = fx.export_pubkey(id);
    let message = fx.message("eddsa.txt");
    let signature = fx.file(&format!("{id}.eddsa.sig"));
    let signed = fx
        .openssl(&[
            "pkeyutl", "-sign", "-rawin", "-inkey", key, "-in", &message, "-out", &signature,
        ])
        .success();
    let check = SignatureCheck::new(&public_key, &message, &signature, None);
    fx.assert_valid_signature(&check, &signed);
}

#[test]
fn req_generates_rsa_keys_that_sign_at_once() {
    let fx = fixture("keygen-rsa");
    let (key, _) = req_new_key(&fx, &["rsa:2048"], "rsa-new", "a1");
    assert_generated_on_token(&fx, "a1", &["sign", "decrypt"], &[]);
    fx.assert_dgst_signs(&key, "a1", &[]);
}

#[test]
fn req_generates_ec_keys_on_every_curve() {
    let fx = fixture("keygen-ec");
    for (curve, id) in [("P-256", "b1"), ("P-384", "b2"), ("P-521", "b3")] {
        let curve_option = format!("ec_paramgen_curve:{curve}");
        let label = format!("ec-{curve}");
        let (key, _) = req_new_key(&fx, &["ec", "-pkeyopt", &curve_option], &label, id);
        assert_generated_on_token(&fx, id, &["sign", "derive"], &[]);
        fx.assert_dgst_signs(&key, id, &[]);
    }
}

#[test]
fn req_generates_eddsa_keys() {
    let fx = fixture("keygen-eddsa");
    for (algorithm, id) in [("ed25519", "c1"), ("ed448", "c2")] {
        let (key, _) = req_new_key(&fx, &[algorithm], algorithm, id);
        assert_generated_on_token(&fx, id, &["sign"], &["derive"]);
        assert_eddsa_signs(&fx, &key, id);
    }
}

/// The command of the issue: `genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -pkeyopt
/// pkcs11_uri:...` writes a PEM-URI file naming the new key, which then signs.
#[test]
fn genpkey_writes_a_pem_uri_file_for_the_new_key() {
    let fx = fixture("keygen-genpkey");
    let key = fx.file("new.pem");
    let uri = format!("pkcs11_uri:{}", fx.uri("object=new;id=%01"));
    let made = fx
        .openssl(&[
            "genpkey",
            "-propquery",
            "?provider=pkcs11",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-pkeyopt",
            &uri,
            "-out",
            &key,
        ])
        .success();
    let text = std::fs::read_to_string(&key).unwrap_or_default();
    assert!(
        text.starts_with("-----BEGIN PKCS#11 PROVIDER URI-----"),
        "{text}\n{}",
        made.report()
    );
    assert_generated_on_token(&fx, "01", &["sign", "derive"], &[]);
    fx.assert_dgst_signs(&key, "01", &[]);
    // The key file names the key by URI; the store finds the same key by label.
    fx.assert_dgst_signs(&fx.private_key_uri("new"), "01", &[]);
}

/// `rsa_keygen_bits` and `rsa_keygen_pubexp` reach the token: pkcs11-tool reads a 3072-bit
/// modulus and the exponent 3.
#[test]
fn genpkey_rsa_size_and_exponent() {
    let fx = fixture("keygen-rsa-params");
    let key = fx.file("rsa3072.pem");
    let uri = format!("pkcs11_uri:{}", fx.uri("object=big;id=%02"));
    fx.openssl(&[
        "genpkey",
        "-propquery",
        "?provider=pkcs11",
        "-algorithm",
        "RSA",
        "-pkeyopt",
        "rsa_keygen_bits:3072",
        "-pkeyopt",
        "rsa_keygen_pubexp:3",
        "-pkeyopt",
        &uri,
        "-out",
        &key,
    ])
    .success();
    let public_key = fx.export_pubkey("02");
    let text = fx
        .software_openssl(&["pkey", "-pubin", "-in", &public_key, "-text", "-noout"])
        .success()
        .stdout();
    assert!(text.contains("3072 bit"), "{text}");
    assert!(text.contains("Exponent: 3 (0x3)"), "{text}");
    fx.assert_dgst_signs(&key, "02", &[]);
}

/// RSA-PSS keys are restricted to the PSS mechanisms (CKA_ALLOWED_MECHANISMS), sign with PSS,
/// and `digest` narrows the restriction to one hash-and-sign mechanism.
#[test]
fn genpkey_rsa_pss_keys_allow_only_pss() {
    let fx = fixture("keygen-rsa-pss");
    let key = fx.file("pss.pem");
    let uri = format!("pkcs11_uri:{}", fx.uri("object=pss;id=%03"));
    fx.openssl(&[
        "genpkey",
        "-propquery",
        "?provider=pkcs11",
        "-algorithm",
        "RSA-PSS",
        "-pkeyopt",
        "rsa_keygen_bits:2048",
        "-pkeyopt",
        &uri,
        "-out",
        &key,
    ])
    .success();
    let listing = fx.token().list_objects("privkey", true);
    let block = object_block(&listing, "03").expect("the RSA-PSS key");
    let allowed: Vec<&str> = field(&block, "Allowed mechanisms").split(',').collect();
    assert!(allowed.contains(&"RSA-PKCS-PSS"), "{block}");
    assert!(allowed.contains(&"SHA256-RSA-PKCS-PSS"), "{block}");
    assert!(!allowed.contains(&"RSA-PKCS"), "{block}");
    let public_key = fx.export_pubkey("03");
    let message = fx.message("pss.txt");
    let signature = fx.file("pss.sig");
    let signed = fx
        .openssl(&[
            "dgst", "-sha256", "-sign", &key, "-out", &signature, &message,
        ])
        .success();
    let options = ["rsa_padding_mode:pss"];
    let check = SignatureCheck {
        public_key: &public_key,
        message: &message,
        signature: &signature,
        digest: Some("sha256"),
        verify_options: &options,
    };
    fx.assert_valid_signature(&check, &signed);

    let narrowed = format!("pkcs11_uri:{}", fx.uri("object=pss256;id=%04"));
    fx.openssl(&[
        "genpkey",
        "-propquery",
        "?provider=pkcs11",
        "-algorithm",
        "RSA-PSS",
        "-pkeyopt",
        "rsa_keygen_bits:2048",
        "-pkeyopt",
        "rsa_pss_keygen_md:sha256",
        "-pkeyopt",
        &narrowed,
        "-out",
        &fx.file("pss256.pem"),
    ])
    .success();
    let listing = fx.token().list_objects("privkey", true);
    let block = object_block(&listing, "04").expect("the restricted RSA-PSS key");
    assert_eq!(
        field(&block, "Allowed mechanisms"),
        "SHA256-RSA-PKCS-PSS",
        "{block}"
    );
}

/// `pkcs11_key_usage` sets exactly the usage it names: an encryption-only RSA key decrypts but
/// cannot sign (the token refuses, the provider reports it), a signature-only EC key cannot
/// derive; an unknown usage name fails the generation and leaves no key behind.
#[test]
fn key_usage_sets_the_token_usage_flags() {
    let fx = fixture("keygen-usage");
    let key = fx.file("enc.pem");
    let uri = format!("pkcs11_uri:{}", fx.uri("object=enc;id=%05"));
    fx.openssl(&[
        "genpkey",
        "-propquery",
        "?provider=pkcs11",
        "-algorithm",
        "RSA",
        "-pkeyopt",
        "rsa_keygen_bits:2048",
        "-pkeyopt",
        &uri,
        "-pkeyopt",
        "pkcs11_key_usage:dataEncipherment keyEncipherment",
        "-out",
        &key,
    ])
    .success();
    assert_generated_on_token(&fx, "05", &["decrypt", "unwrap"], &["sign"]);
    let message = fx.message("usage.txt");
    let refused = fx
        .openssl(&[
            "dgst",
            "-sha256",
            "-sign",
            &key,
            "-out",
            &fx.file("x.sig"),
            &message,
        ])
        .clean_failure();
    refused.assert_provider_error(&["CKR_KEY_FUNCTION_NOT_PERMITTED", "not permitted"]);
    // It decrypts what the default provider encrypted with its public key.
    let public_key = fx.export_pubkey("05");
    let secret = fx.write_file("secret.txt", "usage secret\n");
    let sealed = fx.file("secret.enc");
    fx.software_openssl(&[
        "pkeyutl",
        "-encrypt",
        "-pubin",
        "-inkey",
        &public_key,
        "-in",
        &secret,
        "-out",
        &sealed,
    ])
    .success();
    let opened = fx.file("secret.dec");
    fx.openssl(&[
        "pkeyutl", "-decrypt", "-inkey", &key, "-in", &sealed, "-out", &opened,
    ])
    .success();
    assert_eq!(std::fs::read(&opened).unwrap(), b"usage secret\n");

    let sign_only = format!("pkcs11_uri:{}", fx.uri("object=sig;id=%06"));
    fx.openssl(&[
        "genpkey",
        "-propquery",
        "?provider=pkcs11",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-pkeyopt",
        &sign_only,
        "-pkeyopt",
        "pkcs11_key_usage:digitalSignature",
        "-out",
        &fx.file("sig.pem"),
    ])
    .success();
    assert_generated_on_token(&fx, "06", &["sign"], &["derive", "decrypt", "unwrap"]);

    let bad = format!("pkcs11_uri:{}", fx.uri("object=bad;id=%07"));
    let failed = fx
        .openssl(&[
            "genpkey",
            "-propquery",
            "?provider=pkcs11",
            "-algorithm",
            "EC",
            "-pkeyopt",
            &bad,
            "-pkeyopt",
            "pkcs11_key_usage:dataEncipherment gibberish",
            "-out",
            &fx.file("bad.pem"),
        ])
        .clean_failure();
    failed.assert_provider_error(&["gibberish"]);
    let listing = fx.token().list_objects("privkey", true);
    assert!(object_block(&listing, "07").is_none(), "{listing}");
}

/// An id already taken on the token is refused (no URI could tell the keys apart) and nothing
/// new appears; a taken label is not (latchset allows it), but a URI naming only that label is
/// then refused as ambiguous instead of picking one of the keys.
#[test]
fn taken_id_is_refused_a_taken_label_is_ambiguous() {
    let fx = fixture("keygen-duplicate");
    let generate = |attributes: &str, out: &str| {
        let uri = format!("pkcs11_uri:{}", fx.uri(attributes));
        fx.openssl(&[
            "genpkey",
            "-propquery",
            "?provider=pkcs11",
            "-algorithm",
            "EC",
            "-pkeyopt",
            &uri,
            "-out",
            &fx.file(out),
        ])
    };
    generate("object=twin;id=%08", "first.pem").success();
    generate("object=other;id=%08", "same-id.pem")
        .clean_failure()
        .assert_provider_error(&["already has a private key with id"]);
    let listing = fx.token().list_objects("privkey", true);
    assert!(!listing.contains("label:      other"), "{listing}");
    generate("object=twin;id=%09", "same-label.pem").success();
    let message = fx.message("twin.txt");
    fx.openssl(&[
        "dgst",
        "-sha256",
        "-sign",
        &fx.private_key_uri("twin"),
        "-out",
        &fx.file("twin.sig"),
        &message,
    ])
    .clean_failure()
    .assert_provider_error(&["2 private keys match"]);
    // Each key file names its own key by id.
    fx.assert_dgst_signs(&fx.file("first.pem"), "08", &[]);
    fx.assert_dgst_signs(&fx.file("same-label.pem"), "09", &[]);
}

/// Without a `pkcs11_uri` the key pair is ephemeral: session objects in the generating process
/// (what libssl's ECDHE key shares need), so nothing appears on the token and genpkey cannot
/// write a key file naming it, and says how to keep a key.
#[test]
fn a_key_without_uri_is_ephemeral() {
    let fx = fixture("keygen-no-uri");
    let before = fx.token().list_objects("privkey", true);
    let failed = fx
        .openssl(&[
            "genpkey",
            "-propquery",
            "?provider=pkcs11",
            "-algorithm",
            "EC",
            "-out",
            &fx.file("ephemeral.pem"),
        ])
        .clean_failure();
    failed.assert_provider_error(&["without pkcs11_uri"]);
    let log = std::fs::read_to_string(fx.provider_log()).unwrap_or_default();
    assert!(
        log.contains("C_GenerateKeyPair CKM_EC_KEY_PAIR_GEN")
            && log.contains("destroyed 2 session objects"),
        "no ephemeral key made and destroyed\n{}",
        failed.report()
    );
    assert_eq!(fx.token().list_objects("privkey", true), before);
    assert!(fx.token().list_objects("pubkey", false).trim().is_empty());
}

/// Without `pkcs11-module-encode-provider-uri-to-pem` the key is made but genpkey cannot write
/// it, and the error says which setting writes a PEM-URI file.
#[test]
fn genpkey_without_pem_uri_encoding_says_why_it_cannot_write_the_key() {
    let fx = Fixture::new("keygen-no-encoder");
    let uri = format!("pkcs11_uri:{}", fx.uri("object=made;id=%0a"));
    let failed = fx
        .openssl(&[
            "genpkey",
            "-propquery",
            "?provider=pkcs11",
            "-algorithm",
            "EC",
            "-pkeyopt",
            &uri,
            "-out",
            &fx.file("made.pem"),
        ])
        .clean_failure();
    failed.assert_stderr_mentions(&["pkcs11-module-encode-provider-uri-to-pem"]);
    assert_generated_on_token(&fx, "0a", &["sign"], &[]);
}
