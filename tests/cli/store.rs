//! `openssl storeutl` on `pkcs11:` URIs (issue 3, provider-storemgmt(7)): a URI naming only the
//! token lists exactly the objects on it, `-keys`/`-certs` filter by type, path attributes
//! (`object`, `id`, `type`) narrow the search, and the listed certificate and public keys are the
//! ones on the token. OpenSSL 3.0's storeutl has no `-pubkeys` option (it came in 3.2), so public
//! keys are checked with `type=public` and in the unfiltered listing ("N: Public key" lines).

use crate::common::{Fixture, KeyType, Ran};

/// Objects on every store fixture token, by `storeutl` kind ("Pkey", "Public key", "Certificate").
const PRIVATE_KEYS: usize = 3;
const PUBLIC_KEYS: usize = 2;
const CERTIFICATES: usize = 1;

/// RSA key pair "rsa" (id 01), P-256 key pair "ec" (id 02), and an imported RSA private key
/// "certkey" (id 03) with its certificate but no public key object.
fn store_fixture(name: &str) -> (Fixture, String) {
    let fx = Fixture::new(name);
    fx.generate_key(KeyType::Rsa2048, "01", "rsa");
    fx.generate_key(KeyType::EcP256, "02", "ec");
    let imported = fx.import_key_with_cert(KeyType::Rsa2048, "03", "certkey");
    (fx, imported.cert)
}

/// Number of `N: <kind>` lines in storeutl's output.
fn count(run: &Ran, kind: &str) -> usize {
    run.stdout()
        .lines()
        .filter(|line| {
            line.split_once(": ").is_some_and(|(number, rest)| {
                !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit()) && rest == kind
            })
        })
        .count()
}

/// Asserts the listing's (Pkey, Public key, Certificate) counts.
#[track_caller]
fn assert_counts(run: &Ran, expected: (usize, usize, usize)) {
    let found = (
        count(run, "Pkey"),
        count(run, "Public key"),
        count(run, "Certificate"),
    );
    assert_eq!(
        found,
        expected,
        "(private keys, public keys, certificates) listed\n{}",
        run.report()
    );
    let total = expected.0 + expected.1 + expected.2;
    assert!(
        run.stdout().contains(&format!("Total found: {total}")),
        "expected \"Total found: {total}\"\n{}",
        run.report()
    );
}

/// The PEM blocks with `label` (e.g. "CERTIFICATE") in `text`, each written to its own file.
fn pem_blocks(fx: &Fixture, text: &str, label: &str) -> Vec<String> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let mut files = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(&begin) {
        let Some(stop) = rest[start..].find(&end) else {
            break;
        };
        let block = &rest[start..start + stop + end.len()];
        let name = format!(
            "listed-{}-{}.pem",
            label.replace(' ', "-").to_lowercase(),
            files.len()
        );
        files.push(fx.write_file(&name, format!("{block}\n")));
        rest = &rest[start + stop + end.len()..];
    }
    files
}

#[test]
fn token_uri_lists_every_object() {
    let (fx, _) = store_fixture("store-all");
    let run = fx.openssl(&["storeutl", "-noout", &fx.uri("")]).success();
    assert_counts(&run, (PRIVATE_KEYS, PUBLIC_KEYS, CERTIFICATES));
}

#[test]
fn keys_option_lists_private_keys() {
    let (fx, _) = store_fixture("store-keys");
    let run = fx
        .openssl(&["storeutl", "-noout", "-keys", &fx.uri("")])
        .success();
    assert_counts(&run, (PRIVATE_KEYS, 0, 0));
}

#[test]
fn certs_option_lists_the_certificate() {
    let (fx, cert) = store_fixture("store-certs");
    let run = fx.openssl(&["storeutl", "-certs", &fx.uri("")]).success();
    assert_counts(&run, (0, 0, CERTIFICATES));
    let listed = pem_blocks(&fx, &run.stdout(), "CERTIFICATE");
    assert_eq!(
        listed.len(),
        CERTIFICATES,
        "certificate PEM blocks\n{}",
        run.report()
    );
    let der = |pem: &str| {
        let out = format!("{pem}.der");
        fx.software_openssl(&["x509", "-in", pem, "-outform", "DER", "-out", &out])
            .success();
        std::fs::read(&out).expect("read certificate DER")
    };
    assert_eq!(
        der(&listed[0]),
        der(&cert),
        "listed certificate differs\n{}",
        run.report()
    );
}

#[test]
fn type_public_lists_the_token_public_keys() {
    let (fx, _) = store_fixture("store-pubkeys");
    let run = fx.openssl(&["storeutl", &fx.uri("type=public")]).success();
    assert_counts(&run, (0, PUBLIC_KEYS, 0));
    let mut listed: Vec<Vec<u8>> = pem_blocks(&fx, &run.stdout(), "PUBLIC KEY")
        .iter()
        .map(|pem| fx.public_key_der(pem))
        .collect();
    let mut expected = vec![
        fx.public_key_der(&fx.export_pubkey("01")),
        fx.public_key_der(&fx.export_pubkey("02")),
    ];
    listed.sort();
    expected.sort();
    assert_eq!(
        listed,
        expected,
        "listed public keys differ from the token's\n{}",
        run.report()
    );
}

#[test]
fn object_attribute_narrows_the_listing() {
    let (fx, _) = store_fixture("store-object");
    let pair = fx
        .openssl(&["storeutl", "-noout", &fx.uri("object=rsa")])
        .success();
    assert_counts(&pair, (1, 1, 0));
    let with_cert = fx
        .openssl(&["storeutl", "-noout", &fx.uri("object=certkey")])
        .success();
    assert_counts(&with_cert, (1, 0, 1));
    let private = fx
        .openssl(&["storeutl", "-noout", &fx.uri("object=ec;type=private")])
        .success();
    assert_counts(&private, (1, 0, 0));
}

#[test]
fn id_attribute_narrows_the_listing() {
    let (fx, _) = store_fixture("store-id");
    let run = fx
        .openssl(&["storeutl", "-noout", &fx.uri("id=%02")])
        .success();
    assert_counts(&run, (1, 1, 0));
    let cert = fx
        .openssl(&["storeutl", "-noout", &fx.uri("id=%03;type=cert")])
        .success();
    assert_counts(&cert, (0, 0, 1));
}
