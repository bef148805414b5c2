//! The text form of token keys in latchset/pkcs11-provider's format, which scripts written for
//! it grep (issue 12): `PKCS11 RSA Private Key (2048 bits)`, `PKCS11 EC Public Key (256
//! bits)`, `PKCS11 ED25519 Public Key ...`, and a last line `URI pkcs11:...` for each key, in
//! `pkey -text` and `storeutl -text`. Each printed URI must select exactly the key it was
//! printed for.

use crate::common::{Fixture, KeyType, Ran};

/// The lines of a run's stdout.
fn lines(run: &Ran) -> Vec<String> {
    run.stdout().lines().map(str::to_owned).collect()
}

/// The `URI pkcs11:...` lines' URIs.
fn printed_uris(run: &Ran) -> Vec<String> {
    lines(run)
        .iter()
        .filter_map(|line| line.strip_prefix("URI ").map(str::to_owned))
        .collect()
}

#[track_caller]
fn assert_line(run: &Ran, expected: &str) {
    assert!(
        lines(run).iter().any(|line| line == expected),
        "no line {expected:?}\n{}",
        run.report()
    );
}

#[test]
fn pkey_text_prints_latchset_headers_and_the_uri() {
    let fx = Fixture::new("text-pkey");
    fx.generate_key(KeyType::Rsa2048, "01", "rsa");
    fx.generate_key(KeyType::EcP256, "02", "ec");
    fx.generate_key(KeyType::Ed25519, "03", "ed25519");
    fx.generate_key(KeyType::Ed448, "04", "ed448");

    let rsa = fx
        .openssl(&["pkey", "-in", &fx.private_key_uri("rsa"), "-text", "-noout"])
        .success();
    assert_line(&rsa, "PKCS11 RSA Private Key (2048 bits)");
    assert_line(&rsa, "PKCS11 RSA Public Key (2048 bits)");
    let uris = printed_uris(&rsa);
    assert_eq!(uris.len(), 1, "one URI line\n{}", rsa.report());
    assert!(
        uris[0].contains("object=rsa") && uris[0].contains("type=private"),
        "{}",
        rsa.report()
    );

    // The public text only (-pubout): no private-key line.
    let ec = fx
        .openssl(&["pkey", "-in", &fx.private_key_uri("ec"), "-pubout", "-text"])
        .success();
    assert_line(&ec, "PKCS11 EC Public Key (256 bits)");
    assert!(
        !ec.stdout().contains("Private Key"),
        "-pubout -text printed a private-key line\n{}",
        ec.report()
    );
    for (label, kind) in [("ed25519", "ED25519"), ("ed448", "ED448")] {
        let run = fx
            .openssl(&[
                "pkey",
                "-in",
                &fx.private_key_uri(label),
                "-pubout",
                "-text",
            ])
            .success();
        assert!(
            run.stdout()
                .contains(&format!("PKCS11 {kind} Public Key (")),
            "no '{kind} Public Key' header\n{}",
            run.report()
        );
    }
}

#[test]
fn storeutl_text_prints_a_uri_per_key_that_selects_only_that_key() {
    let fx = Fixture::new("text-storeutl");
    fx.generate_key(KeyType::Rsa2048, "01", "rsa");
    fx.generate_key(KeyType::EcP256, "02", "ec");
    fx.import_key_with_cert(KeyType::EcP256, "03", "certkey");
    let listing = fx
        .openssl(&["storeutl", "-text", "-noout", &fx.uri("")])
        .success();
    let uris = printed_uris(&listing);
    // Two key pairs (private + public object each) and one private key with a certificate.
    assert_eq!(uris.len(), 5, "URI lines\n{}", listing.report());
    let mut unique = uris.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(
        unique.len(),
        uris.len(),
        "repeated URIs\n{}",
        listing.report()
    );
    for uri in &uris {
        let one = fx.openssl(&["storeutl", "-text", "-noout", uri]).success();
        assert_eq!(
            printed_uris(&one),
            std::slice::from_ref(uri),
            "{uri} does not select exactly its key\n{}",
            one.report()
        );
        assert!(
            one.stdout().contains("Total found: 1"),
            "{uri} selects more than one object\n{}",
            one.report()
        );
    }
}
