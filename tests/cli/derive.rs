//! ECDH with token keys (issue 12, item 3): `openssl pkeyutl -derive` on P-256, P-384 and
//! P-521 with a software peer key and with a peer public key on the token, and
//! `openssl cms -decrypt` to an EC recipient (ECDH key agreement with the X9.63 KDF).
//!
//! The secret the token derives must equal the one the default provider derives from the
//! peer's private key and the token's public key as pkcs11-tool reads it. SoftHSM2 2.6 has no
//! Montgomery keys (no CKM_EC_MONTGOMERY_KEY_PAIR_GEN), so X25519/X448 are not offered.

use std::fs;

use crate::common::{Fixture, KeyType};

/// A software key pair on `curve` in the fixture directory: (private key, public key) files.
fn software_peer(fx: &Fixture, curve: &str) -> (String, String) {
    let private = fx.file(&format!("peer-{curve}.key"));
    let public = fx.file(&format!("peer-{curve}.pub"));
    let curve_option = format!("ec_paramgen_curve:{curve}");
    fx.software_openssl(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        &curve_option,
        "-out",
        &private,
    ])
    .success();
    fx.software_openssl(&["pkey", "-in", &private, "-pubout", "-out", &public])
        .success();
    (private, public)
}

/// The token derives with its key `uri` and `peer_public`; the default provider derives with
/// `peer_private` and the token's public key `id`: both secrets must be equal and non-trivial.
#[track_caller]
fn assert_same_secret(fx: &Fixture, uri: &str, id: &str, peer_private: &str, peer_public: &str) {
    let on_token = fx.file(&format!("{id}.token.secret"));
    let ran = fx
        .openssl(&[
            "pkeyutl",
            "-derive",
            "-inkey",
            uri,
            "-peerkey",
            peer_public,
            "-out",
            &on_token,
        ])
        .success();
    let token_public = fx.export_pubkey(id);
    let in_software = fx.file(&format!("{id}.software.secret"));
    fx.software_openssl(&[
        "pkeyutl",
        "-derive",
        "-inkey",
        peer_private,
        "-peerkey",
        &token_public,
        "-out",
        &in_software,
    ])
    .success();
    let token_secret = fs::read(&on_token).unwrap_or_default();
    let software_secret = fs::read(&in_software).unwrap_or_default();
    assert!(
        !token_secret.is_empty() && token_secret.iter().any(|b| *b != 0),
        "empty secret\n{}",
        ran.report()
    );
    assert_eq!(
        token_secret,
        software_secret,
        "the token's ECDH secret differs from the default provider's\n{}",
        ran.report()
    );
}

#[test]
fn ecdh_matches_the_default_provider_on_every_curve() {
    let fx = Fixture::new("derive-curves");
    for (key_type, curve, id, bytes) in [
        (KeyType::EcP256, "P-256", "11", 32),
        (KeyType::EcP384, "P-384", "12", 48),
        (KeyType::EcP521, "P-521", "13", 66),
    ] {
        let label = format!("ecdh-{curve}");
        fx.generate_key(key_type, id, &label);
        let (peer_private, peer_public) = software_peer(&fx, curve);
        let uri = fx.private_key_uri(&label);
        assert_same_secret(&fx, &uri, id, &peer_private, &peer_public);
        let secret = fs::read(fx.file(&format!("{id}.token.secret"))).unwrap_or_default();
        assert_eq!(secret.len(), bytes, "{curve} secret length");
    }
}

/// The peer's public key may itself be a token object (`-peerkey pkcs11:...;type=public`):
/// ECDH of a key with its own public key equals the default provider's.
#[test]
fn ecdh_with_a_peer_key_on_the_token() {
    let fx = Fixture::new("derive-token-peer");
    fx.generate_key(KeyType::EcP256, "21", "ours");
    fx.generate_key(KeyType::EcP256, "22", "theirs");
    let ours = fx.private_key_uri("ours");
    let theirs = fx.uri("object=theirs;type=public");
    let secret = fx.file("token-peer.secret");
    let ran = fx
        .openssl(&[
            "pkeyutl", "-derive", "-inkey", &ours, "-peerkey", &theirs, "-out", &secret,
        ])
        .success();
    // Reference: the other direction, token key "theirs" with our public key, also on the token.
    let reverse = fx.file("reverse.secret");
    let our_public = fx.export_pubkey("21");
    fx.openssl(&[
        "pkeyutl",
        "-derive",
        "-inkey",
        &fx.private_key_uri("theirs"),
        "-peerkey",
        &our_public,
        "-out",
        &reverse,
    ])
    .success();
    assert_eq!(
        fs::read(&secret).unwrap_or_default(),
        fs::read(&reverse).unwrap_or_default(),
        "ECDH is not symmetric\n{}",
        ran.report()
    );
}

/// A key generated on the token derives at once.
#[test]
fn a_generated_key_derives() {
    let mut fx = Fixture::new("derive-generated");
    fx.config_mut()
        .set("pkcs11-module-encode-provider-uri-to-pem", "true");
    let key = fx.file("generated.pem");
    let uri = format!("pkcs11_uri:{}", fx.uri("object=gen;id=%31"));
    fx.openssl(&[
        "genpkey",
        "-propquery",
        "?provider=pkcs11",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-384",
        "-pkeyopt",
        &uri,
        "-out",
        &key,
    ])
    .success();
    let (peer_private, peer_public) = software_peer(&fx, "P-384");
    assert_same_secret(&fx, &key, "31", &peer_private, &peer_public);
}

/// Keys that cannot do ECDH fail cleanly: a peer on another curve, an Ed25519 token key.
#[test]
fn ecdh_refusals_are_clean_errors() {
    let fx = Fixture::new("derive-refusals");
    fx.generate_key(KeyType::EcP256, "41", "p256");
    fx.generate_key(KeyType::Ed25519, "42", "ed");
    let (_, p384_peer) = software_peer(&fx, "P-384");
    let (_, p256_peer) = software_peer(&fx, "P-256");
    let out = fx.file("never.secret");
    fx.openssl(&[
        "pkeyutl",
        "-derive",
        "-inkey",
        &fx.private_key_uri("p256"),
        "-peerkey",
        &p384_peer,
        "-out",
        &out,
    ])
    .clean_failure();
    fx.openssl(&[
        "pkeyutl",
        "-derive",
        "-inkey",
        &fx.private_key_uri("ed"),
        "-peerkey",
        &p256_peer,
        "-out",
        &out,
    ])
    .clean_failure();
    assert!(fs::read(&out).unwrap_or_default().is_empty());
}

/// `openssl cms -decrypt -recip <cert> -inkey pkcs11:...` for an EC recipient: the default
/// provider encrypts (ephemeral ECDH, X9.63 KDF, AES key wrap), the token derives.
#[test]
fn cms_decrypt_ec_recipient() {
    let fx = Fixture::new("derive-cms");
    for (key_type, id, label) in [
        (KeyType::EcP256, "51", "cms256"),
        (KeyType::EcP384, "52", "cms384"),
    ] {
        fx.generate_key(key_type, id, label);
        let uri = fx.private_key_uri(label);
        let cert = fx.token_certificate(&uri, id, &format!("{label}.crt"), "/CN=recipient", &[]);
        let message = fx.write_file("message.txt", "CMS to an EC token key\n");
        let sealed = fx.file(&format!("{label}.cms"));
        let opened = fx.file(&format!("{label}.out"));
        fx.software_openssl(&[
            "cms", "-encrypt", "-binary", "-aes256", "-recip", &cert, "-in", &message, "-out",
            &sealed,
        ])
        .success();
        let ran = fx
            .openssl(&[
                "cms", "-decrypt", "-binary", "-recip", &cert, "-inkey", &uri, "-in", &sealed,
                "-out", &opened,
            ])
            .success();
        assert_eq!(
            fs::read(&opened).unwrap_or_default(),
            b"CMS to an EC token key\n",
            "{}",
            ran.report()
        );
    }
}
