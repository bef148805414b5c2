//! Certificates, CSRs, CRLs, OCSP responses and CMS signatures made with token keys by the stock
//! `openssl` tools (issue 4, items 1 and 5). The provider must give each signature the right
//! `AlgorithmIdentifier` (`OSSL_SIGNATURE_PARAM_ALGORITHM_ID`; RFC 4055 parameters for RSA-PSS,
//! RFC 5758 for ECDSA, RFC 8410 for EdDSA), and every result is checked by OpenSSL's default
//! provider alone: `verify -check_ss_sig`, `req -verify`, `crl -verify`, `cms -verify`,
//! `ocsp -respin`, each also shown to reject a tampered copy. The public key in every certificate
//! is compared with the token key as pkcs11-tool reads it, and the signature algorithm is compared
//! byte for byte with what the default provider writes for a software key of the same kind.

use std::fs;

use crate::common::{Fixture, KeyType, Ran};

const DIGESTS: [&str; 3] = ["sha256", "sha384", "sha512"];

/// Extensions for a CA certificate (`req -x509 -addext ...`).
const CA_EXTENSIONS: &[&str] = &[
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign,cRLSign",
    "-addext",
    "subjectKeyIdentifier=hash",
];

/// Extensions for a leaf certificate the CA issues (`x509 -req -extfile`; `openssl ca`'s
/// `x509_extensions`): a proper leaf that names its issuer's key. Given explicitly because
/// OpenSSL 4.0's `x509 -req` without `-extfile` takes extensions from the configuration file
/// (the `extensions` key of its default section, else the default section itself, which in
/// the provider's openssl.cnf holds `openssl_conf`: "unknown extension name").
const LEAF_EXTENSIONS: &str = "basicConstraints = CA:FALSE\nkeyUsage = digitalSignature\n\
                               subjectKeyIdentifier = hash\n\
                               authorityKeyIdentifier = keyid:always\n";

/// The DER elements (tag, length and content) that `bytes` consists of, in order.
fn der_elements(mut bytes: &[u8]) -> Vec<&[u8]> {
    let mut elements = Vec::new();
    while !bytes.is_empty() {
        let (header, content) = der_header(bytes);
        let (element, rest) = bytes.split_at(header + content);
        elements.push(element);
        bytes = rest;
    }
    elements
}

/// (header length, content length) of the DER element at the start of `bytes`.
fn der_header(bytes: &[u8]) -> (usize, usize) {
    let first = usize::from(bytes[1]);
    if first < 0x80 {
        return (2, first);
    }
    let count = first & 0x7f;
    let length = bytes[2..2 + count]
        .iter()
        .fold(0, |acc, byte| (acc << 8) | usize::from(*byte));
    (2 + count, length)
}

/// The content octets of one DER element.
fn der_content(element: &[u8]) -> &[u8] {
    &element[der_header(element).0..]
}

/// `SEQUENCE { tbs, signatureAlgorithm, signature }` (certificate, CSR, CRL, OCSP response):
/// the DER of the signed part and of the outer signatureAlgorithm.
fn signed_parts(der: &[u8]) -> (&[u8], &[u8]) {
    let outer = der_elements(der);
    let parts = der_elements(der_content(outer[0]));
    (parts[0], parts[1])
}

/// The certificate's outer signatureAlgorithm, checked equal to the one inside the signed part
/// (RFC 5280 4.1.1.2).
fn certificate_signature_algorithm(der: &[u8]) -> Vec<u8> {
    let (tbs, outer) = signed_parts(der);
    let fields = der_elements(der_content(tbs));
    // TBSCertificate: [0] version (optional), serialNumber, signature, ...
    let inner = if fields[0][0] == 0xa0 {
        fields[2]
    } else {
        fields[1]
    };
    assert_eq!(
        inner, outer,
        "TBSCertificate.signature differs from Certificate.signatureAlgorithm"
    );
    outer.to_vec()
}

/// A PEM object as DER (converted by the default provider).
fn to_der(fx: &Fixture, command: &str, pem: &str) -> Vec<u8> {
    let der = format!("{pem}.der");
    fx.software_openssl(&[command, "-in", pem, "-outform", "DER", "-out", &der])
        .success();
    fs::read(&der).unwrap_or_else(|e| panic!("read {der}: {e}"))
}

/// A PEM copy of `pem` whose DER has its last byte (inside the signature) changed.
fn tampered_pem(fx: &Fixture, command: &str, pem: &str) -> String {
    let der = fx.write_file(&format!("{pem}.bad.der"), to_der(fx, command, pem));
    let bad_der = fx.tampered_copy(&der);
    let bad_pem = format!("{pem}.bad.pem");
    fx.software_openssl(&[command, "-inform", "DER", "-in", &bad_der, "-out", &bad_pem])
        .success();
    bad_pem
}

/// `openssl verify -check_ss_sig -CAfile <ca> <cert>` with the default provider.
fn verify_certificate(fx: &Fixture, ca: &str, cert: &str) -> Ran {
    fx.software_openssl(&["verify", "-check_ss_sig", "-CAfile", ca, cert])
}

/// Asserts that `cert` (signed in run `signed`) verifies against `ca` and that a copy with a
/// changed signature does not, so the verification really checked the token's signature.
#[track_caller]
fn assert_certificate_verifies(fx: &Fixture, ca: &str, cert: &str, signed: &Ran) {
    let verified = verify_certificate(fx, ca, cert);
    assert!(
        verified.output.status.success() && verified.stdout().contains(": OK"),
        "certificate does not verify\n--- signing run ---\n{}\n--- verification run ---\n{}",
        signed.report(),
        verified.report()
    );
    let bad = tampered_pem(fx, "x509", cert);
    let bad_ca = if ca == cert { bad.as_str() } else { ca };
    let rejected = verify_certificate(fx, bad_ca, &bad);
    assert!(
        !rejected.output.status.success(),
        "a certificate with a changed signature verifies\n{}",
        rejected.report()
    );
}

/// `openssl <command> -in <pem> -noout -text` (default provider).
fn text(fx: &Fixture, command: &str, pem: &str) -> String {
    fx.software_openssl(&[command, "-in", pem, "-noout", "-text"])
        .success()
        .stdout()
}

#[track_caller]
fn assert_text_contains(text: &str, expected: &[String], what: &str) {
    for line in expected {
        assert!(
            text.contains(line.as_str()),
            "{what}: `-text` lacks {line:?}\n{text}"
        );
    }
}

/// What `openssl x509 -text` prints for the signature algorithm: PSS with its RFC 4055
/// parameters, else the combined OID's name.
fn expected_algorithm_text(
    key_type: KeyType,
    digest: Option<&str>,
    pss_salt: Option<usize>,
) -> Vec<String> {
    match (key_type, digest, pss_salt) {
        (KeyType::Ed25519, ..) => vec!["Signature Algorithm: ED25519".to_owned()],
        (KeyType::Ed448, ..) => vec!["Signature Algorithm: ED448".to_owned()],
        (_, Some(digest), Some(salt)) => vec![
            "Signature Algorithm: rsassaPss".to_owned(),
            format!("Hash Algorithm: {digest}"),
            format!("Mask Algorithm: mgf1 with {digest}"),
            format!("Salt Length: 0x{salt:X}"),
        ],
        (_, Some(digest), None) if key_type.is_rsa() => {
            vec![format!("Signature Algorithm: {digest}WithRSAEncryption")]
        }
        (_, Some(digest), None) => vec![format!(
            "Signature Algorithm: ecdsa-with-{}",
            digest.to_uppercase()
        )],
        (_, None, _) => panic!("{key_type:?} needs a digest"),
    }
}

/// Hash length in bytes, for the PSS salt lengths `digest` and `max`.
fn hash_len(digest: &str) -> usize {
    match digest {
        "sha256" => 32,
        "sha384" => 48,
        _ => 64,
    }
}

/// How a test signs: digest (None for EdDSA) and PSS salt length option (None for no PSS).
#[derive(Clone, Copy)]
struct Scheme<'a> {
    digest: Option<&'a str>,
    pss_salt: Option<&'a str>,
}

impl Scheme<'_> {
    /// `-<digest> -sigopt ...` for `req`/`x509`/`ca`.
    fn args(&self) -> Vec<String> {
        let mut args = Vec::new();
        if let Some(digest) = self.digest {
            args.push(format!("-{digest}"));
        }
        if let Some(salt) = self.pss_salt {
            args.extend([
                "-sigopt".to_owned(),
                "rsa_padding_mode:pss".to_owned(),
                "-sigopt".to_owned(),
                format!("rsa_pss_saltlen:{salt}"),
            ]);
        }
        args
    }

    /// The salt length in bytes a 2048-bit RSA key gets (RFC 8017 9.1.1: at most emLen-hLen-2).
    fn salt_bytes(&self) -> Option<usize> {
        let salt = self.pss_salt?;
        let hash = hash_len(self.digest.unwrap_or("sha256"));
        Some(match salt {
            "digest" => hash,
            "max" => 256 - hash - 2,
            number => number.parse().unwrap_or_else(|_| panic!("salt {number}")),
        })
    }
}

/// `openssl req -new -x509` with the token key of `key_type` for each scheme: the certificate
/// verifies with the default provider (and fails when its signature is changed), holds the token's
/// public key, names the expected algorithm in `-text`, and its signatureAlgorithm DER equals
/// the one the default provider writes when signing the same way with a software key.
fn self_signed(name: &str, key_type: KeyType, schemes: &[Scheme<'_>]) {
    let fx = Fixture::new(name);
    fx.generate_key(key_type, "01", "key");
    let uri = fx.private_key_uri("key");
    let software_key = fx.file("software.key.pem");
    let mut args = vec!["req", "-x509", "-nodes", "-subj", "/CN=software"];
    args.extend(key_type.openssl_newkey_args());
    args.extend(["-keyout", &software_key, "-out", "/dev/null"]);
    fx.software_openssl(&args).success();
    for (index, scheme) in schemes.iter().enumerate() {
        let scheme_args = scheme.args();
        let extra: Vec<&str> = scheme_args.iter().map(String::as_str).collect();
        let cert = fx.file(&format!("token-{index}.crt"));
        let mut args = vec!["req", "-new", "-x509", "-key", &uri, "-subj", "/CN=token"];
        args.extend(["-days", "30", "-out", &cert]);
        args.extend(&extra);
        let signed = fx.openssl(&args).success();
        assert_certificate_verifies(&fx, &cert, &cert, &signed);
        fx.assert_cert_key_is_token_key(&cert, "01");
        let expected = expected_algorithm_text(key_type, scheme.digest, scheme.salt_bytes());
        assert_text_contains(&text(&fx, "x509", &cert), &expected, &cert);

        let reference = fx.file(&format!("software-{index}.crt"));
        let mut args = vec!["req", "-new", "-x509", "-key", &software_key];
        args.extend(["-subj", "/CN=software", "-out", &reference]);
        args.extend(&extra);
        fx.software_openssl(&args).success();
        assert_eq!(
            certificate_signature_algorithm(&to_der(&fx, "x509", &cert)),
            certificate_signature_algorithm(&to_der(&fx, "x509", &reference)),
            "signatureAlgorithm of {cert} differs from the default provider's for {:?}\n{}",
            extra,
            signed.report()
        );
    }
}

fn digest_schemes(pss_salt: Option<&'static str>) -> Vec<Scheme<'static>> {
    DIGESTS
        .iter()
        .map(|digest| Scheme {
            digest: Some(digest),
            pss_salt,
        })
        .collect()
}

const EDDSA: Scheme<'static> = Scheme {
    digest: None,
    pss_salt: None,
};

#[test]
fn self_signed_rsa_pkcs1() {
    self_signed("x509-rsa-pkcs1", KeyType::Rsa2048, &digest_schemes(None));
}

#[test]
fn self_signed_rsa_pss_salt_digest() {
    let schemes = digest_schemes(Some("digest"));
    self_signed("x509-rsa-pss-digest", KeyType::Rsa2048, &schemes);
}

#[test]
fn self_signed_rsa_pss_salt_max() {
    let schemes = digest_schemes(Some("max"));
    self_signed("x509-rsa-pss-max", KeyType::Rsa2048, &schemes);
}

#[test]
fn self_signed_p256() {
    self_signed("x509-p256", KeyType::EcP256, &digest_schemes(None));
}

#[test]
fn self_signed_p384() {
    self_signed("x509-p384", KeyType::EcP384, &digest_schemes(None));
}

#[test]
fn self_signed_p521() {
    self_signed("x509-p521", KeyType::EcP521, &digest_schemes(None));
}

#[test]
fn self_signed_ed25519() {
    self_signed("x509-ed25519", KeyType::Ed25519, &[EDDSA]);
}

#[test]
fn self_signed_ed448() {
    self_signed("x509-ed448", KeyType::Ed448, &[EDDSA]);
}

/// `openssl req -verify` output; OpenSSL 3.0 exits 0 even when the self-signature is bad.
fn csr_verifies(fx: &Fixture, csr: &str) -> (bool, Ran) {
    let run = fx.software_openssl(&["req", "-in", csr, "-verify", "-noout"]);
    let output = format!("{}{}", run.stdout(), run.stderr());
    let ok = run.output.status.success()
        && output.contains("verify OK")
        && !output.contains("verify failure");
    (ok, run)
}

/// `openssl req -new` (CSR) with token keys: RSA PKCS#1, RSA-PSS, P-384 and Ed25519. Each CSR's
/// self-signature verifies with the default provider (`req -verify`), a changed one does not,
/// its public key is the token key and its algorithm is the requested one.
#[test]
fn csr_self_signature() {
    let fx = Fixture::new("x509-csr");
    fx.generate_key(KeyType::Rsa2048, "01", "rsa");
    fx.generate_key(KeyType::EcP384, "02", "p384");
    fx.generate_key(KeyType::Ed25519, "03", "ed25519");
    let cases: [(&str, &str, KeyType, Scheme<'_>); 4] = [
        (
            "rsa",
            "01",
            KeyType::Rsa2048,
            Scheme {
                digest: Some("sha256"),
                pss_salt: None,
            },
        ),
        (
            "rsa",
            "01",
            KeyType::Rsa2048,
            Scheme {
                digest: Some("sha384"),
                pss_salt: Some("digest"),
            },
        ),
        (
            "p384",
            "02",
            KeyType::EcP384,
            Scheme {
                digest: Some("sha384"),
                pss_salt: None,
            },
        ),
        ("ed25519", "03", KeyType::Ed25519, EDDSA),
    ];
    for (index, (label, id, key_type, scheme)) in cases.into_iter().enumerate() {
        let uri = fx.private_key_uri(label);
        let csr = fx.file(&format!("{index}.csr"));
        let scheme_args = scheme.args();
        let mut args = vec![
            "req", "-new", "-key", &uri, "-subj", "/CN=csr", "-out", &csr,
        ];
        args.extend(scheme_args.iter().map(String::as_str));
        let signed = fx.openssl(&args).success();
        let (ok, verified) = csr_verifies(&fx, &csr);
        assert!(
            ok,
            "CSR does not verify\n--- signing run ---\n{}\n--- verification run ---\n{}",
            signed.report(),
            verified.report()
        );
        let (bad_ok, rejected) = csr_verifies(&fx, &tampered_pem(&fx, "req", &csr));
        assert!(
            !bad_ok,
            "a CSR with a changed signature verifies\n{}",
            rejected.report()
        );
        let public_key = fx.file(&format!("{index}.csr.pub.pem"));
        fx.software_openssl(&["req", "-in", &csr, "-pubkey", "-noout", "-out", &public_key])
            .success();
        assert_eq!(
            fx.public_key_der(&public_key),
            fx.public_key_der(&fx.export_pubkey(id)),
            "CSR public key is not the token key {id}"
        );
        let expected = expected_algorithm_text(key_type, scheme.digest, scheme.salt_bytes());
        assert_text_contains(&text(&fx, "req", &csr), &expected, &csr);
    }
}

/// A software key and CSR for a leaf certificate (default provider only).
fn software_csr(fx: &Fixture, name: &str) -> String {
    let key = fx.file(&format!("{name}.key.pem"));
    let csr = fx.file(&format!("{name}.csr"));
    let subject = format!("/CN={name}");
    let mut args = vec!["req", "-new", "-nodes", "-subj", &subject];
    args.extend(KeyType::EcP256.openssl_newkey_args());
    args.extend(["-keyout", &key, "-out", &csr]);
    fx.software_openssl(&args).success();
    csr
}

/// `openssl x509 -req -CA ca.crt -CAkey <token uri>` signs a software CSR; the leaf verifies
/// against the CA certificate with the default provider and names the expected algorithm.
fn x509_req_signed_by_token_ca(name: &str, key_type: KeyType, scheme: Scheme<'_>) {
    let fx = Fixture::new(name);
    fx.generate_key(key_type, "01", "ca");
    let ca_uri = fx.private_key_uri("ca");
    let ca = fx.token_certificate(&ca_uri, "01", "ca.crt", "/CN=token CA", CA_EXTENSIONS);
    let csr = software_csr(&fx, "leaf");
    let leaf = fx.file("leaf.crt");
    let extensions = fx.write_file("leaf.ext", LEAF_EXTENSIONS);
    let scheme_args = scheme.args();
    let mut args = vec!["x509", "-req", "-in", &csr, "-CA", &ca, "-CAkey", &ca_uri];
    args.extend(["-set_serial", "0x1001", "-days", "1", "-out", &leaf]);
    args.extend(["-extfile", &extensions]);
    args.extend(scheme_args.iter().map(String::as_str));
    let signed = fx.openssl(&args).success();
    assert_certificate_verifies(&fx, &ca, &leaf, &signed);
    let expected = expected_algorithm_text(key_type, scheme.digest, scheme.salt_bytes());
    assert_text_contains(&text(&fx, "x509", &leaf), &expected, &leaf);
}

#[test]
fn x509_req_ca_key_p384() {
    let scheme = Scheme {
        digest: Some("sha384"),
        pss_salt: None,
    };
    x509_req_signed_by_token_ca("x509-req-p384", KeyType::EcP384, scheme);
}

#[test]
fn x509_req_ca_key_rsa_pss() {
    let scheme = Scheme {
        digest: Some("sha512"),
        pss_salt: Some("digest"),
    };
    x509_req_signed_by_token_ca("x509-req-rsa-pss", KeyType::Rsa2048, scheme);
}

/// A minimal `openssl ca` configuration whose CA private key is the token key `key_uri`.
fn write_ca_config(fx: &Fixture, ca_cert: &str, key_uri: &str) -> String {
    let dir = fx.file("ca");
    fs::create_dir_all(format!("{dir}/newcerts")).expect("create CA directory");
    fx.write_file("ca/index.txt", "");
    fx.write_file("ca/serial", "1000\n");
    fx.write_file("ca/crlnumber", "1000\n");
    let config = format!(
        "[ca]\ndefault_ca = token_ca\n\n\
         [token_ca]\n\
         dir = {dir}\n\
         database = $dir/index.txt\n\
         new_certs_dir = $dir/newcerts\n\
         serial = $dir/serial\n\
         crlnumber = $dir/crlnumber\n\
         certificate = {ca_cert}\n\
         private_key = {key_uri}\n\
         default_md = sha256\n\
         default_days = 1\n\
         default_crl_days = 1\n\
         unique_subject = no\n\
         policy = policy_any\n\
         x509_extensions = leaf_extensions\n\n\
         [policy_any]\ncommonName = supplied\n\n\
         [leaf_extensions]\n{LEAF_EXTENSIONS}"
    );
    fx.write_file("ca.cnf", config)
}

/// `openssl ca` with the CA key on the token: issues a certificate for a software CSR, then a CRL
/// (empty, and again after revoking the certificate). Certificate and CRLs verify against the CA
/// certificate with the default provider, a changed CRL does not, and the revocation takes effect.
#[test]
fn openssl_ca_issues_certificate_and_crl() {
    let fx = Fixture::new("x509-ca");
    fx.generate_key(KeyType::Rsa2048, "01", "ca");
    let ca_uri = fx.private_key_uri("ca");
    let ca = fx.token_certificate(&ca_uri, "01", "ca.crt", "/CN=token CA", CA_EXTENSIONS);
    let config = write_ca_config(&fx, &ca, &ca_uri);
    let csr = software_csr(&fx, "leaf");
    let leaf = fx.file("leaf.crt");
    let issued = fx
        .openssl(&[
            "ca", "-batch", "-config", &config, "-in", &csr, "-out", &leaf, "-notext",
        ])
        .success();
    assert_certificate_verifies(&fx, &ca, &leaf, &issued);
    let expected = expected_algorithm_text(KeyType::Rsa2048, Some("sha256"), None);
    assert_text_contains(&text(&fx, "x509", &leaf), &expected, &leaf);

    let crl = fx.file("empty.crl");
    let made = fx
        .openssl(&["ca", "-config", &config, "-gencrl", "-out", &crl])
        .success();
    assert_crl_verifies(&fx, &ca, &crl, &made);
    fx.openssl(&["ca", "-config", &config, "-revoke", &leaf])
        .success();
    let revoked_crl = fx.file("revoked.crl");
    let made = fx
        .openssl(&["ca", "-config", &config, "-gencrl", "-out", &revoked_crl])
        .success();
    assert_crl_verifies(&fx, &ca, &revoked_crl, &made);
    assert!(
        text(&fx, "crl", &revoked_crl).contains("Serial Number: 1000"),
        "the CRL does not list the revoked certificate"
    );
    let checked = fx.software_openssl(&[
        "verify",
        "-crl_check",
        "-CRLfile",
        &revoked_crl,
        "-CAfile",
        &ca,
        &leaf,
    ]);
    assert!(
        !checked.output.status.success() && checked.stderr().contains("revoked"),
        "the token-signed CRL did not revoke the certificate\n{}",
        checked.report()
    );
}

/// `openssl crl -verify` accepts `crl` under `ca` and rejects a copy with a changed signature.
#[track_caller]
fn assert_crl_verifies(fx: &Fixture, ca: &str, crl: &str, made: &Ran) {
    let verify =
        |path: &str| fx.software_openssl(&["crl", "-in", path, "-CAfile", ca, "-verify", "-noout"]);
    let verified = verify(crl);
    assert!(
        verified.output.status.success() && verified.stderr().contains("verify OK"),
        "CRL does not verify\n--- signing run ---\n{}\n--- verification run ---\n{}",
        made.report(),
        verified.report()
    );
    let rejected = verify(&tampered_pem(fx, "crl", crl));
    assert!(
        !rejected.output.status.success() || !rejected.stderr().contains("verify OK"),
        "a CRL with a changed signature verifies\n{}",
        rejected.report()
    );
}

/// `openssl cms -sign -signer <cert> -inkey <uri>` (detached, DER) for RSA PKCS#1, RSA-PSS and
/// P-256; `cms -verify` with the default provider accepts the message and rejects a changed one.
/// EdDSA is left out: OpenSSL 3.0's CMS cannot sign with EdDSA keys at all (software keys
/// included: "no default digest", or "invalid digest" with `-md`).
#[test]
fn cms_sign_and_verify() {
    let fx = Fixture::new("x509-cms");
    fx.generate_key(KeyType::Rsa2048, "01", "rsa");
    fx.generate_key(KeyType::EcP256, "02", "p256");
    let message = fx.message("message.txt");
    let tampered = fx.tampered_copy(&message);
    let cases: [(&str, &str, &[&str], &str); 3] = [
        ("rsa", "01", &["-md", "sha256"], "sha256WithRSAEncryption"),
        (
            "rsa",
            "01",
            &["-md", "sha384", "-keyopt", "rsa_padding_mode:pss"],
            "rsassaPss",
        ),
        ("p256", "02", &["-md", "sha256"], "ecdsa-with-SHA256"),
    ];
    for (index, (label, id, options, algorithm)) in cases.into_iter().enumerate() {
        let uri = fx.private_key_uri(label);
        let subject = format!("/CN=cms {label}");
        let signer = fx.token_certificate(&uri, id, &format!("signer-{index}.crt"), &subject, &[]);
        let signed_data = fx.file(&format!("message-{index}.p7s"));
        let mut args = vec![
            "cms", "-sign", "-binary", "-signer", &signer, "-inkey", &uri,
        ];
        args.extend(["-in", &message, "-outform", "DER", "-out", &signed_data]);
        args.extend(options);
        let signed = fx.openssl(&args).success();
        let verify = |content: &str| {
            fx.software_openssl(&[
                "cms",
                "-verify",
                "-binary",
                "-inform",
                "DER",
                "-in",
                &signed_data,
                "-content",
                content,
                "-CAfile",
                &signer,
                "-out",
                "/dev/null",
            ])
        };
        let verified = verify(&message);
        assert!(
            verified.output.status.success()
                && verified.stderr().contains("Verification successful"),
            "CMS signature does not verify\n--- signing run ---\n{}\n--- verification run ---\n{}",
            signed.report(),
            verified.report()
        );
        let rejected = verify(&tampered);
        assert!(
            !rejected.output.status.success(),
            "CMS signature verifies on a changed message\n{}",
            rejected.report()
        );
        let printed = fx
            .software_openssl(&[
                "cms",
                "-cmsout",
                "-print",
                "-inform",
                "DER",
                "-in",
                &signed_data,
            ])
            .success()
            .stdout();
        assert!(
            printed.contains(algorithm),
            "SignerInfo does not name {algorithm}\n{printed}"
        );
    }
}

/// `openssl ocsp` as a responder whose signing key is on the token (a delegated responder
/// certificate issued by a CA whose key is on the token too). The response verifies with the
/// default provider, both with the responder certificate in the response (`-CAfile`) and
/// without it (`-resp_no_certs`, responder trusted with `-VAfile`); a changed signature fails.
#[test]
fn ocsp_response_signed_with_token_key() {
    let fx = Fixture::new("x509-ocsp");
    fx.generate_key(KeyType::EcP256, "01", "ca");
    fx.generate_key(KeyType::EcP384, "02", "responder");
    let ca_uri = fx.private_key_uri("ca");
    let responder_uri = fx.private_key_uri("responder");
    let ca = fx.token_certificate(&ca_uri, "01", "ca.crt", "/CN=token CA", CA_EXTENSIONS);

    // Leaf and responder certificates, both signed by the token CA.
    let leaf_csr = software_csr(&fx, "leaf");
    let leaf = fx.file("leaf.crt");
    let leaf_extensions = fx.write_file("leaf.ext", LEAF_EXTENSIONS);
    fx.openssl(&[
        "x509",
        "-req",
        "-in",
        &leaf_csr,
        "-CA",
        &ca,
        "-CAkey",
        &ca_uri,
        "-set_serial",
        "0x1001",
        "-days",
        "1",
        "-extfile",
        &leaf_extensions,
        "-out",
        &leaf,
    ])
    .success();
    let responder_csr = fx.file("responder.csr");
    fx.openssl(&[
        "req",
        "-new",
        "-key",
        &responder_uri,
        "-subj",
        "/CN=OCSP responder",
        "-out",
        &responder_csr,
    ])
    .success();
    let extensions = fx.write_file(
        "responder.ext",
        "extendedKeyUsage = OCSPSigning\nkeyUsage = critical,digitalSignature\n\
         subjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid:always\n",
    );
    let responder = fx.file("responder.crt");
    fx.openssl(&[
        "x509",
        "-req",
        "-in",
        &responder_csr,
        "-CA",
        &ca,
        "-CAkey",
        &ca_uri,
        "-set_serial",
        "0x2001",
        "-days",
        "1",
        "-extfile",
        &extensions,
        "-out",
        &responder,
    ])
    .success();
    fx.assert_cert_key_is_token_key(&responder, "02");

    let index = fx.write_file("index.txt", "V\t351231235959Z\t\t1001\tunknown\t/CN=leaf\n");
    let request = fx.file("request.der");
    fx.software_openssl(&[
        "ocsp",
        "-issuer",
        &ca,
        "-cert",
        &leaf,
        "-no_nonce",
        "-reqout",
        &request,
    ])
    .success();

    for (name, extra, trust) in [
        ("with-certs.der", &[][..], ["-CAfile", ca.as_str()]),
        (
            "no-certs.der",
            &["-resp_no_certs"][..],
            ["-VAfile", responder.as_str()],
        ),
    ] {
        let response = fx.file(name);
        let mut args = vec![
            "ocsp",
            "-index",
            &index,
            "-CA",
            &ca,
            "-rsigner",
            &responder,
            "-rkey",
            &responder_uri,
            "-rmd",
            "sha384",
            "-ndays",
            "1",
            "-reqin",
            &request,
            "-respout",
            &response,
        ];
        args.extend(extra);
        let signed = fx.openssl(&args).success();
        let check = |path: &str| {
            let mut args = vec!["ocsp", "-respin", path, "-issuer", &ca, "-cert", &leaf];
            args.extend(trust);
            fx.software_openssl(&args)
        };
        let verified = check(&response);
        assert!(
            verified.output.status.success()
                && verified.stderr().contains("Response verify OK")
                && verified.stdout().contains(": good"),
            "OCSP response does not verify\n--- signing run ---\n{}\n--- verification run ---\n{}",
            signed.report(),
            verified.report()
        );
        let printed = fx
            .software_openssl(&["ocsp", "-respin", &response, "-resp_text", "-noverify"])
            .success()
            .stdout();
        assert!(
            printed.contains("Signature Algorithm: ecdsa-with-SHA384"),
            "OCSP response is not signed with ecdsa-with-SHA384\n{printed}"
        );
        if extra.is_empty() {
            continue;
        }
        // Without certificates the signature is the last element of the response.
        let rejected = check(&fx.tampered_copy(&response));
        assert!(
            !rejected.output.status.success(),
            "an OCSP response with a changed signature verifies\n{}",
            rejected.report()
        );
    }
}
