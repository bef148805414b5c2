//! `openssl storeutl` search criteria on `pkcs11:` URIs (issue 12, provider-storemgmt(7)
//! `OSSL_STORE_PARAM_SUBJECT`, `ISSUER` + `SERIAL`, `ALIAS`, `FINGERPRINT` + `DIGEST`). The token
//! holds a CA certificate and two certificates it issued (same issuer, different serials), made
//! with the default provider; each search must return exactly the expected certificate, compared
//! byte for byte (as DER, by the default provider) with the one written to the token.

use crate::common::{Fixture, KeyType, Ran};

/// Serial numbers of the two issued certificates.
const SERIAL_ONE: &str = "0x1001";
const SERIAL_TWO: &str = "0x1002";

/// A token with "ca" (id a0), "leaf-one" (id a1, serial 0x1001) and "leaf-two" (id a2, serial
/// 0x1002) certificates, the leaves issued by the CA; returns the fixture and the PEM files in
/// that order. "leaf-one"'s subject is written with PrintableString (`string_mask = default`),
/// while storeutl encodes `-subject` as UTF8String: the names must compare as OpenSSL compares
/// them, not byte for byte.
fn search_fixture(name: &str) -> (Fixture, [String; 3]) {
    let fx = Fixture::new(name);
    let conf = fx.write_file(
        "req.cnf",
        "[req]\ndistinguished_name = dn\nstring_mask = default\n[dn]\n",
    );
    let ca_key = fx.file("ca.key");
    let ca = fx.file("ca.pem");
    fx.software_openssl(&[
        "req",
        "-x509",
        "-nodes",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-subj",
        "/O=pkcs11-ossl/CN=Search Test CA",
        "-days",
        "30",
        "-keyout",
        &ca_key,
        "-out",
        &ca,
    ])
    .success();
    let mut leaves = Vec::new();
    for (label, subject, serial, config) in [
        (
            "leaf-one",
            "/O=pkcs11-ossl/CN=Leaf One",
            SERIAL_ONE,
            Some(&conf),
        ),
        ("leaf-two", "/O=pkcs11-ossl/CN=Leaf Two", SERIAL_TWO, None),
    ] {
        let key = fx.file(&format!("{label}.key"));
        let csr = fx.file(&format!("{label}.csr"));
        let cert = fx.file(&format!("{label}.pem"));
        let mut args = vec!["req", "-new", "-nodes", "-newkey", "rsa:2048"];
        if let Some(config) = config {
            args.extend(["-config", config.as_str()]);
        }
        args.extend(["-subj", subject, "-keyout", &key, "-out", &csr]);
        fx.software_openssl(&args).success();
        fx.software_openssl(&[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca,
            "-CAkey",
            &ca_key,
            "-set_serial",
            serial,
            "-days",
            "30",
            "-out",
            &cert,
        ])
        .success();
        leaves.push(cert);
    }
    let [one, two]: [String; 2] = leaves.try_into().expect("two leaves");
    for (file, id, label) in [
        (&ca, "a0", "ca"),
        (&one, "a1", "leaf-one"),
        (&two, "a2", "leaf-two"),
    ] {
        fx.token()
            .write_object(std::path::Path::new(file), "cert", id, label);
    }
    // A key pair whose label equals no certificate's, so that the alias search has keys to skip.
    fx.generate_key(KeyType::EcP256, "b0", "some-key");
    (fx, [ca, one, two])
}

/// Runs `storeutl -certs <criteria> <uri>`.
fn search(fx: &Fixture, criteria: &[&str], uri: &str) -> Ran {
    let mut args = vec!["storeutl", "-certs"];
    args.extend_from_slice(criteria);
    args.push(uri);
    fx.openssl(&args)
}

/// DER of a PEM certificate (default provider).
fn der_of(fx: &Fixture, pem: &str) -> Vec<u8> {
    let der = format!("{pem}.der");
    fx.software_openssl(&["x509", "-in", pem, "-outform", "DER", "-out", &der])
        .success();
    std::fs::read(&der).unwrap_or_else(|e| panic!("read {der}: {e}"))
}

/// Asserts that the search found exactly one certificate and that it is `expected`.
#[track_caller]
fn assert_found_only(fx: &Fixture, run: &Ran, expected: &str) {
    let stdout = run.stdout();
    assert!(
        stdout.contains("Total found: 1") && stdout.contains("0: Certificate"),
        "expected exactly one certificate\n{}",
        run.report()
    );
    let begin = stdout
        .find("-----BEGIN CERTIFICATE-----")
        .expect("a PEM certificate");
    let end = stdout
        .find("-----END CERTIFICATE-----")
        .expect("end of the PEM certificate");
    let pem = fx.write_file(
        "found.pem",
        format!("{}-----END CERTIFICATE-----\n", &stdout[begin..end]),
    );
    assert!(
        der_of(fx, &pem) == der_of(fx, expected),
        "storeutl returned another certificate than {expected}\n{}",
        run.report()
    );
}

#[test]
fn subject_search_finds_exactly_the_certificate_with_that_name() {
    let (fx, [ca, one, two]) = search_fixture("search-subject");
    let uri = fx.uri("type=cert");
    let run = search(&fx, &["-subject", "/O=pkcs11-ossl/CN=Leaf One"], &uri).success();
    assert_found_only(&fx, &run, &one);
    let run = search(&fx, &["-subject", "/O=pkcs11-ossl/CN=Leaf Two"], &uri).success();
    assert_found_only(&fx, &run, &two);
    // Without type=cert, on the whole token: keys are not certificates, and need no PIN here.
    let run = search(
        &fx,
        &["-subject", "/O=pkcs11-ossl/CN=Search Test CA"],
        &fx.uri(""),
    )
    .success();
    assert_found_only(&fx, &run, &ca);
    // Case and spacing do not matter to X509_NAME_cmp; a name nobody has finds nothing.
    let run = search(&fx, &["-subject", "/O=PKCS11-OSSL/CN=leaf  one"], &uri).success();
    assert_found_only(&fx, &run, &one);
    let none = search(&fx, &["-subject", "/CN=Nobody"], &uri).success();
    assert!(
        none.stdout().contains("Total found: 0"),
        "a subject nobody has must find nothing\n{}",
        none.report()
    );
}

#[test]
fn issuer_and_serial_search_finds_exactly_one_of_two_sibling_certificates() {
    let (fx, [_ca, one, two]) = search_fixture("search-issuer-serial");
    let uri = fx.uri("type=cert");
    let issuer = "/O=pkcs11-ossl/CN=Search Test CA";
    let run = search(&fx, &["-issuer", issuer, "-serial", SERIAL_TWO], &uri).success();
    assert_found_only(&fx, &run, &two);
    let run = search(&fx, &["-issuer", issuer, "-serial", SERIAL_ONE], &uri).success();
    assert_found_only(&fx, &run, &one);
    let none = search(
        &fx,
        &["-issuer", "/CN=Leaf One", "-serial", SERIAL_ONE],
        &uri,
    )
    .success();
    assert!(
        none.stdout().contains("Total found: 0"),
        "the right serial with the wrong issuer must find nothing\n{}",
        none.report()
    );
}

#[test]
fn alias_search_matches_the_label() {
    let (fx, [_ca, _one, two]) = search_fixture("search-alias");
    let run = search(&fx, &["-alias", "leaf-two"], &fx.uri("")).success();
    assert_found_only(&fx, &run, &two);
    // Keys are found by their label too (storeutl without -certs).
    let run = fx
        .openssl(&["storeutl", "-alias", "some-key", &fx.uri("")])
        .success();
    let stdout = run.stdout();
    assert!(
        stdout.contains("Total found: 2")
            && stdout.contains(": Pkey")
            && stdout.contains(": Public key"),
        "alias some-key must find its private and public key\n{}",
        run.report()
    );
}

#[test]
fn fingerprint_search_matches_the_certificate_or_its_public_key() {
    let (fx, [ca, one, _two]) = search_fixture("search-fingerprint");
    let uri = fx.uri("type=cert");
    // What `openssl x509 -fingerprint -sha256` prints: the digest of the DER certificate.
    let printed = fx
        .software_openssl(&["x509", "-in", &one, "-noout", "-fingerprint", "-sha256"])
        .success()
        .stdout();
    let fingerprint = printed
        .trim()
        .split_once('=')
        .map(|(_, hex)| hex.to_owned())
        .expect("a fingerprint line");
    let run = search(&fx, &["-sha256", "-fingerprint", &fingerprint], &uri).success();
    assert_found_only(&fx, &run, &one);
    // The SHA-1 digest of the CA's SubjectPublicKeyInfo (a public key fingerprint).
    let spki = fx.file("ca.spki.der");
    fx.software_openssl(&[
        "x509",
        "-in",
        &ca,
        "-noout",
        "-pubkey",
        "-out",
        &fx.file("ca.pub.pem"),
    ])
    .success();
    fx.software_openssl(&[
        "pkey",
        "-pubin",
        "-in",
        &fx.file("ca.pub.pem"),
        "-outform",
        "DER",
        "-out",
        &spki,
    ])
    .success();
    let digest = fx
        .software_openssl(&["dgst", "-sha1", "-r", &spki])
        .success()
        .stdout();
    let hex = digest.split_whitespace().next().expect("a digest");
    let run = search(&fx, &["-sha1", "-fingerprint", hex], &uri).success();
    assert_found_only(&fx, &run, &ca);
}
