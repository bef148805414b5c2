//! Verification through the provider (provider-signature(7) `verify_init`, `digest_verify_*`):
//! with `-propquery '?provider=pkcs11'` OpenSSL 3.0 takes this provider's signature
//! implementation for verification too, and does not fall back when it lacks one (TLS clients
//! forced onto the provider verify the server's CertificateVerify this way). The provider runs
//! the verification in the default provider on a copy of the public key. Signatures made with
//! the token keys must verify, with their parameters (PSS padding), and tampered messages must
//! not; the provider's debug log shows that it handled the verification.

use std::fs;

use crate::common::{Fixture, KeyType};

/// Runs `sign` (which must write `{sig}`), then `verify` with `-propquery ?provider=pkcs11` on the
/// message and on a tampered copy; `{uri}` is the token key `label`, `{in}` the input, `{pub}`
/// pkcs11-tool's public key `id`.
fn assert_forced_verification(fx: &Fixture, id: &str, label: &str, sign: &[&str], verify: &[&str]) {
    let public_key = fx.export_pubkey(id);
    let message = fx.message("message.txt");
    let signature = fx.file(&format!("{label}.sig"));
    let uri = fx.private_key_uri(label);
    let fill = |args: &[&str], input: &str| -> Vec<String> {
        args.iter()
            .map(|a| {
                a.replace("{uri}", &uri)
                    .replace("{in}", input)
                    .replace("{sig}", &signature)
                    .replace("{pub}", &public_key)
            })
            .collect()
    };
    let signing = fill(sign, &message);
    let signing: Vec<&str> = signing.iter().map(String::as_str).collect();
    fx.openssl(&signing).success();
    let tampered = fx.tampered_copy(&message);
    for (input, should_verify) in [(&message, true), (&tampered, false)] {
        let mut args = fill(verify, input);
        // Options go before the file operands: right after the command name.
        args.splice(
            1..1,
            ["-propquery".to_owned(), "?provider=pkcs11".to_owned()],
        );
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let run = fx.openssl(&args);
        assert_eq!(
            run.output.status.success(),
            should_verify,
            "verification of {input} (expected {should_verify})\n{}",
            run.report()
        );
    }
    let log = fs::read_to_string(fx.provider_log()).unwrap_or_default();
    assert!(
        log.contains("signature in another provider"),
        "the provider did not verify (provider log {})",
        fx.provider_log().display()
    );
}

#[test]
fn forced_verification_of_rsa_pkcs1_and_pss() {
    let fx = Fixture::new("verify-forced-rsa");
    fx.generate_key(KeyType::Rsa2048, "01", "rsa");
    assert_forced_verification(
        &fx,
        "01",
        "rsa",
        &["dgst", "-sha256", "-sign", "{uri}", "-out", "{sig}", "{in}"],
        &[
            "dgst",
            "-sha256",
            "-verify",
            "{pub}",
            "-signature",
            "{sig}",
            "{in}",
        ],
    );
    let pss = [
        "-sigopt",
        "rsa_padding_mode:pss",
        "-sigopt",
        "rsa_pss_saltlen:digest",
    ];
    let mut sign = vec!["dgst", "-sha384", "-sign", "{uri}", "-out", "{sig}"];
    sign.extend(pss);
    sign.push("{in}");
    let mut verify = vec!["dgst", "-sha384", "-verify", "{pub}", "-signature", "{sig}"];
    verify.extend(pss);
    verify.push("{in}");
    assert_forced_verification(&fx, "01", "rsa", &sign, &verify);
}

#[test]
fn forced_verification_of_ecdsa_and_ed25519() {
    let fx = Fixture::new("verify-forced-ec");
    fx.generate_key(KeyType::EcP256, "01", "ec");
    fx.generate_key(KeyType::Ed25519, "02", "ed");
    assert_forced_verification(
        &fx,
        "01",
        "ec",
        &["dgst", "-sha256", "-sign", "{uri}", "-out", "{sig}", "{in}"],
        &[
            "dgst",
            "-sha256",
            "-verify",
            "{pub}",
            "-signature",
            "{sig}",
            "{in}",
        ],
    );
    assert_forced_verification(
        &fx,
        "02",
        "ed",
        &[
            "pkeyutl", "-sign", "-rawin", "-inkey", "{uri}", "-in", "{in}", "-out", "{sig}",
        ],
        &[
            "pkeyutl", "-verify", "-rawin", "-pubin", "-inkey", "{pub}", "-in", "{in}", "-sigfile",
            "{sig}",
        ],
    );
}
