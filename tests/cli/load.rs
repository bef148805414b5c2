//! Loading token keys with `openssl pkey` (issue 3: store load + keymgmt export of public parts,
//! provider-keymgmt(7)): `-pubout` must equal the public key pkcs11-tool reads from the token, and
//! `-text` must show no private components, for every key type; a private key whose only companion
//! on the token is a certificate (no public key object) must load too.

use std::fs;
use std::path::Path;

use crate::common::{Fixture, KeyType, SignatureCheck};

/// Headings `openssl pkey -text` prints only for private key material (RSA, EC, EdDSA).
/// Field labels OpenSSL prints for private key parts (with the colon, so that e.g. the curve
/// name "prime256v1" does not count as "prime2").
const PRIVATE_COMPONENTS: &[&str] = &[
    "privateExponent:",
    "prime1:",
    "prime2:",
    "exponent1:",
    "exponent2:",
    "coefficient:",
    "priv:",
];

/// `openssl pkey -in <uri> -pubout` equals the token's public key object, compared as DER.
fn pubout_matches_token(name: &str, key_type: KeyType) {
    let fx = Fixture::new(name);
    fx.generate_key(key_type, "01", "key");
    assert_pubout_matches(&fx);
}

/// `-pubout` of the private key "key" equals public key object 01 read by pkcs11-tool.
fn assert_pubout_matches(fx: &Fixture) {
    let expected = fx.export_pubkey("01");
    let pubout = fx.file("pubout.pem");
    let run = fx
        .openssl(&[
            "pkey",
            "-in",
            &fx.private_key_uri("key"),
            "-pubout",
            "-out",
            &pubout,
        ])
        .success();
    assert_eq!(
        fx.public_key_der(&pubout),
        fx.public_key_der(&expected),
        "-pubout differs from the token's public key\n{}",
        run.report()
    );
}

/// `openssl pkey -in <uri> -text -noout` describes the key without private components.
fn text_shows_no_private_components(name: &str, key_type: KeyType) {
    let fx = Fixture::new(name);
    fx.generate_key(key_type, "01", "key");
    let run = fx
        .openssl(&["pkey", "-in", &fx.private_key_uri("key"), "-text", "-noout"])
        .success();
    let text = run.stdout();
    for component in PRIVATE_COMPONENTS {
        assert!(
            !text.contains(component),
            "-text shows {component:?}\n{}",
            run.report()
        );
    }
    assert!(
        text.to_lowercase().contains(key_type.text_marker()),
        "-text does not describe the key (no {:?})\n{}",
        key_type.text_marker(),
        run.report()
    );
}

/// A private key object + certificate, no public key object: the public key comes from the
/// certificate, and the key signs.
fn private_key_with_only_a_certificate(name: &str, key_type: KeyType) {
    let fx = Fixture::new(name);
    let imported = fx.import_key_with_cert(key_type, "01", "certkey");
    let uri = fx.private_key_uri("certkey");
    let pubout = fx.file("pubout.pem");
    let run = fx
        .openssl(&["pkey", "-in", &uri, "-pubout", "-out", &pubout])
        .success();
    assert_eq!(
        fx.public_key_der(&pubout),
        fx.public_key_der(&imported.public_key),
        "-pubout differs from the certificate's public key\n{}",
        run.report()
    );
    let message = fx.message("message.txt");
    let signature = fx.file("message.sig");
    let signed = fx.openssl(&[
        "dgst", "-sha256", "-sign", &uri, "-out", &signature, &message,
    ]);
    let check = SignatureCheck {
        public_key: &imported.public_key,
        message: &message,
        signature: &signature,
        digest: Some("sha256"),
        verify_options: &[],
    };
    fx.assert_valid_signature(&check, &signed.success());
}

#[test]
fn pubout_rsa2048() {
    pubout_matches_token("load-pubout-rsa2048", KeyType::Rsa2048);
}

#[test]
fn pubout_rsa3072() {
    pubout_matches_token("load-pubout-rsa3072", KeyType::Rsa3072);
}

#[test]
fn pubout_p256() {
    pubout_matches_token("load-pubout-p256", KeyType::EcP256);
}

#[test]
fn pubout_p384() {
    pubout_matches_token("load-pubout-p384", KeyType::EcP384);
}

#[test]
fn pubout_p521() {
    pubout_matches_token("load-pubout-p521", KeyType::EcP521);
}

#[test]
fn pubout_ed25519() {
    pubout_matches_token("load-pubout-ed25519", KeyType::Ed25519);
}

#[test]
fn pubout_ed448() {
    pubout_matches_token("load-pubout-ed448", KeyType::Ed448);
}

#[test]
fn pubout_by_id_only() {
    let fx = Fixture::new("load-pubout-by-id");
    fx.generate_key(KeyType::EcP256, "a1b2", "first");
    fx.generate_key(KeyType::EcP256, "0c", "second");
    let expected = fx.export_pubkey("0c");
    let pubout = fx.file("pubout.pem");
    let uri = fx.uri("id=%0C;type=private");
    let run = fx
        .openssl(&["pkey", "-in", &uri, "-pubout", "-out", &pubout])
        .success();
    assert_eq!(
        fx.public_key_der(&pubout),
        fx.public_key_der(&expected),
        "{}",
        run.report()
    );
}

#[test]
fn text_rsa() {
    text_shows_no_private_components("load-text-rsa", KeyType::Rsa2048);
}

#[test]
fn text_p256() {
    text_shows_no_private_components("load-text-p256", KeyType::EcP256);
}

#[test]
fn text_ed25519() {
    text_shows_no_private_components("load-text-ed25519", KeyType::Ed25519);
}

#[test]
fn private_key_and_certificate_only_rsa() {
    private_key_with_only_a_certificate("load-cert-only-rsa", KeyType::Rsa2048);
}

#[test]
fn private_key_and_certificate_only_p256() {
    private_key_with_only_a_certificate("load-cert-only-p256", KeyType::EcP256);
}

#[test]
fn pubout_with_early_module_load() {
    // `pkcs11-module-load-behavior = early` initialises the module in OSSL_provider_init.
    let mut fx = Fixture::new("load-pubout-early");
    fx.generate_key(KeyType::EcP384, "01", "key");
    fx.config_mut().set("pkcs11-module-load-behavior", "early");
    assert_pubout_matches(&fx);
}

#[test]
fn allow_export_1_keeps_public_keys_in_the_provider() {
    // `pkcs11-module-allow-export = 1` forbids handing public keys to other providers. The
    // provider's own SubjectPublicKeyInfo encoder still writes -pubout (that is not an export),
    // verification in the default provider through a public-key URI is refused, and signing on
    // the token still works.
    let mut fx = Fixture::new("load-no-export");
    fx.generate_key(KeyType::EcP256, "01", "key");
    fx.config_mut().set("pkcs11-module-allow-export", "1");
    assert_pubout_matches(&fx);
    let uri = fx.private_key_uri("key");
    fx.assert_dgst_signs(&uri, "01", &[]);
    // The message and the verified signature assert_dgst_signs left behind.
    let (message, signature) = (fx.file("message.txt"), fx.file("message.sig"));
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
    .clean_failure();
}

/// The provider's own SubjectPublicKeyInfo encoders: `-pubout` as PEM and DER for every key
/// type equals the public key pkcs11-tool reads from the token, byte for byte in DER.
#[test]
fn pubout_der_and_pem_from_the_provider_encoder() {
    for (name, key_type) in [
        ("rsa", KeyType::Rsa2048),
        ("p256", KeyType::EcP256),
        ("ed25519", KeyType::Ed25519),
    ] {
        let mut fx = Fixture::new(&format!("load-spki-{name}"));
        fx.generate_key(key_type, "01", "key");
        // No export: only the provider's own encoders can answer.
        fx.config_mut().set("pkcs11-module-allow-export", "1");
        let expected = fx.public_key_der(&fx.export_pubkey("01"));
        let uri = fx.private_key_uri("key");
        let der = fx.file("pubout.der");
        fx.openssl(&[
            "pkey", "-in", &uri, "-pubout", "-outform", "DER", "-out", &der,
        ])
        .success();
        assert_eq!(fs::read(&der).expect("read DER"), expected, "{name} DER");
        let pem = fx.file("pubout.pem");
        fx.openssl(&["pkey", "-in", &uri, "-pubout", "-out", &pem])
            .success();
        assert_eq!(fx.public_key_der(&pem), expected, "{name} PEM");
    }
}

/// The provider links the libcrypto of the `openssl` binary that loads it (OpenSSL 4.0 builds:
/// libcrypto.so.4), while the token module may link another one: Debian's SoftHSM2 stays on
/// libcrypto.so.3 under 4.0. Both then live in one process (the dynamic loader's `LD_DEBUG=libs`
/// trace shows each loaded), and signing with the token key still works and verifies.
#[test]
fn token_module_with_another_libcrypto_coexists() {
    let fx = Fixture::new("load-two-libcryptos");
    fx.generate_key(KeyType::EcP256, "01", "key");
    let openssl = crate::common::version::libcrypto_soname(&which("openssl"));
    let provider = crate::common::version::libcrypto_soname(&crate::common::provider_so());
    assert!(
        openssl.is_some() && openssl == provider,
        "the provider loads {provider:?}, but openssl {openssl:?}: build the provider against \
         the OpenSSL it is loaded into"
    );
    let module = crate::common::version::libcrypto_soname(fx.token().module());
    let message = fx.message("message.txt");
    let signature = fx.file("message.sig");
    let mut command = fx.provider_command("openssl");
    command.env("LD_DEBUG", "libs").args([
        "dgst",
        "-sha256",
        "-sign",
        &fx.private_key_uri("key"),
        "-out",
        &signature,
        &message,
    ]);
    let log = fx.provider_log();
    let signed =
        crate::common::run_command(&mut command, Path::new(&fx.file("")), Some(&log)).success();
    let public_key = fx.export_pubkey("01");
    fx.assert_valid_signature(
        &SignatureCheck::new(&public_key, &message, &signature, Some("sha256")),
        &signed,
    );
    let trace = signed.stderr();
    let initialised = |soname: &str| {
        trace
            .lines()
            .any(|line| line.contains("calling init:") && line.trim_end().ends_with(soname))
    };
    for soname in [&openssl, &module].into_iter().flatten() {
        assert!(
            initialised(soname),
            "{soname} was not loaded into the signing process\n{}",
            signed.report()
        );
    }
    if module != openssl {
        println!("token module loads {module:?}, provider and openssl {openssl:?}: coexisting");
    }
}

/// The absolute path of `program` in PATH.
fn which(program: &str) -> std::path::PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| panic!("`{program}` not found in PATH"))
}
