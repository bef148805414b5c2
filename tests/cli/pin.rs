//! PIN sources and wrong-PIN handling (issue 3, DESIGN.md "PIN and login"): the user PIN may come
//! from the URI (`pin-value`, `pin-source=file:`) or the config (`pkcs11-module-token-pin`, literal
//! or `file:`). A wrong PIN must fail with `CKR_PIN_INCORRECT` after exactly one `C_Login`, counted
//! with OpenSC's pkcs11-spy between the provider and SoftHSM2, and must not spoil the next login.

use std::fs;

use crate::common::softhsm::{USER_PIN, spy_module};
use crate::common::{Fixture, KeyType, percent_encode};

const WRONG_PIN: &str = "9999";

/// Signs with `uri` through `openssl dgst` and asserts the signature is the token key's.
fn assert_signs(fx: &Fixture, uri: &str) {
    fx.assert_dgst_signs(uri, "01", &[]);
}

/// A fixture with a P-256 key "key" (id 01) and no PIN in the config.
fn fixture_without_config_pin(name: &str) -> Fixture {
    let mut fx = Fixture::new(name);
    fx.generate_key(KeyType::EcP256, "01", "key");
    fx.config_mut().token_pin = None;
    fx
}

/// Routes the provider's PKCS#11 calls through pkcs11-spy; returns the spy log path.
fn install_spy(fx: &mut Fixture) -> String {
    let log = fx.file("spy.log");
    let softhsm = fx.token().module().display().to_string();
    fx.config_mut().module_path = Some(spy_module());
    fx.set_child_env("PKCS11SPY", &softhsm);
    fx.set_child_env("PKCS11SPY_OUTPUT", &log);
    log
}

/// `C_Login` calls in a pkcs11-spy log (lines "N: C_Login").
fn login_calls(spy_log: &str) -> usize {
    let text = fs::read_to_string(spy_log).unwrap_or_default();
    text.lines()
        .filter(|line| {
            line.split_once(": ").is_some_and(|(number, name)| {
                !number.is_empty()
                    && number.bytes().all(|b| b.is_ascii_digit())
                    && name.trim() == "C_Login"
            })
        })
        .count()
}

/// Runs a signature with a wrong PIN through the spy and checks the failure and the login count.
fn assert_wrong_pin_tried_once(fx: &mut Fixture, uri: &str) {
    let spy_log = install_spy(fx);
    let message = fx.message("message.txt");
    let signature = fx.file("wrong-pin.sig");
    let run = fx
        .openssl(&[
            "dgst", "-sha256", "-sign", uri, "-out", &signature, &message,
        ])
        .clean_failure();
    run.assert_stderr_mentions(&["CKR_PIN_INCORRECT"]);
    let logins = login_calls(&spy_log);
    assert_eq!(
        logins,
        1,
        "C_Login calls with a wrong PIN (spy log {spy_log})\n{}",
        run.report()
    );
}

#[test]
fn pin_value_in_uri() {
    let fx = fixture_without_config_pin("pin-uri-value");
    let uri = format!("{}?pin-value={USER_PIN}", fx.private_key_uri("key"));
    assert_signs(&fx, &uri);
}

#[test]
fn pin_source_file_in_uri() {
    let fx = fixture_without_config_pin("pin-uri-source");
    let pin_file = fx.write_file("uri-pin.txt", format!("{USER_PIN}\n"));
    let uri = format!(
        "{}?pin-source=file:{}",
        fx.private_key_uri("key"),
        percent_encode(&pin_file)
    );
    assert_signs(&fx, &uri);
}

#[test]
fn pin_from_passphrase_callback() {
    // No PIN in URI or config: the store asks OpenSSL's passphrase callback (-passin).
    let fx = fixture_without_config_pin("pin-passphrase-callback");
    let passin = format!("pass:{USER_PIN}");
    fx.assert_dgst_signs(&fx.private_key_uri("key"), "01", &["-passin", &passin]);
}

#[test]
fn no_pin_anywhere_is_a_clear_error() {
    let fx = fixture_without_config_pin("pin-none");
    let message = fx.message("message.txt");
    let signature = fx.file("none.sig");
    let uri = fx.private_key_uri("key");
    let run = fx
        .openssl(&[
            "dgst", "-sha256", "-sign", &uri, "-out", &signature, &message,
        ])
        .clean_failure();
    run.assert_stderr_mentions(&["login"]);
}

#[test]
fn pin_file_in_config() {
    // The fixture's default config: pkcs11-module-token-pin = file:<dir>/pin.txt.
    let fx = Fixture::new("pin-config-file");
    fx.generate_key(KeyType::EcP256, "01", "key");
    assert_signs(&fx, &fx.private_key_uri("key"));
}

#[test]
fn pin_literal_in_config() {
    let mut fx = Fixture::new("pin-config-literal");
    fx.generate_key(KeyType::EcP256, "01", "key");
    fx.config_mut().token_pin = Some(USER_PIN.to_owned());
    assert_signs(&fx, &fx.private_key_uri("key"));
}

#[test]
fn wrong_pin_in_config_is_tried_once() {
    let mut fx = Fixture::new("pin-wrong-config");
    fx.generate_key(KeyType::EcP256, "01", "key");
    let wrong_pin_file = fx.write_file("wrong-pin.txt", format!("{WRONG_PIN}\n"));
    fx.config_mut().token_pin = Some(format!("file:{wrong_pin_file}"));
    let uri = fx.private_key_uri("key");
    assert_wrong_pin_tried_once(&mut fx, &uri);

    // The right PIN still works afterwards (the failed attempt did not lock the token).
    fx.config_mut().token_pin = Some(USER_PIN.to_owned());
    assert_signs(&fx, &uri);
}

#[test]
fn wrong_pin_in_uri_is_tried_once() {
    let mut fx = fixture_without_config_pin("pin-wrong-uri");
    let uri = format!("{}?pin-value={WRONG_PIN}", fx.private_key_uri("key"));
    assert_wrong_pin_tried_once(&mut fx, &uri);

    let right_uri = format!("{}?pin-value={USER_PIN}", fx.private_key_uri("key"));
    assert_signs(&fx, &right_uri);
}

#[test]
fn pins_never_reach_the_debug_log_or_stderr() {
    // A PIN that cannot occur by chance (a pid or a byte count could contain "1234").
    const SECRET_PIN: &str = "pin-7c3f9e1a";
    const SECRET_WRONG_PIN: &str = "pin-wrong-5d2b80";
    let mut fx = fixture_without_config_pin("pin-not-logged");
    let token = fx.token();
    let changed = std::process::Command::new("pkcs11-tool")
        .arg("--module")
        .arg(token.module())
        .args(["--token-label", token.label(), "--login", "--pin", USER_PIN])
        .args(["--change-pin", "--new-pin", SECRET_PIN])
        .env("SOFTHSM2_CONF", token.conf())
        .output()
        .expect("run pkcs11-tool --change-pin");
    assert!(changed.status.success(), "{changed:?}");
    let log = fx.file("trace.log");
    fx.set_child_env("PKCS11_PROVIDER_DEBUG", &format!("file:{log},level:3"));
    let message = fx.message("message.txt");
    let signature = fx.file("message.sig");

    let good_uri = format!("{}?pin-value={SECRET_PIN}", fx.private_key_uri("key"));
    let good = fx
        .openssl(&[
            "dgst", "-sha256", "-sign", &good_uri, "-out", &signature, &message,
        ])
        .success();
    let trace = fs::read_to_string(&log).unwrap_or_default();
    assert!(
        trace.contains("logged in"),
        "no trace written\n{}",
        good.report()
    );
    // A successful signature leaves no error behind (not even one OpenSSL ignored).
    assert!(
        !trace.contains(" ERROR "),
        "errors logged on success:\n{trace}"
    );

    let bad_uri = format!("{}?pin-value={SECRET_WRONG_PIN}", fx.private_key_uri("key"));
    let bad = fx
        .openssl(&[
            "dgst", "-sha256", "-sign", &bad_uri, "-out", &signature, &message,
        ])
        .clean_failure();
    bad.assert_stderr_mentions(&["CKR_PIN_INCORRECT"]);

    let trace = fs::read_to_string(&log).unwrap_or_default();
    // The openssl CLI echoes its own argument ("Could not read private key from <uri>"); the
    // provider's error lines (they name the file "pkcs11-ossl") must not repeat the PIN.
    let provider_lines: Vec<String> = [good.stderr(), bad.stderr()]
        .iter()
        .flat_map(|e| e.lines().map(str::to_owned).collect::<Vec<_>>())
        .filter(|line| line.contains("pkcs11-ossl"))
        .collect();
    assert!(
        !provider_lines.is_empty(),
        "no provider error line\n{}",
        bad.report()
    );
    for pin in [SECRET_PIN, SECRET_WRONG_PIN] {
        assert!(!trace.contains(pin), "PIN in the debug log {log}");
        assert!(
            provider_lines.iter().all(|line| !line.contains(pin)),
            "PIN in a provider error line: {provider_lines:?}"
        );
    }
}

/// A P-256 key "always" (id 02) created with `CKA_ALWAYS_AUTHENTICATE`.
fn generate_always_authenticate_key(fx: &Fixture) {
    fx.token()
        .pkcs11_tool_login()
        .args([
            "--keypairgen",
            "--key-type",
            "EC:prime256v1",
            "--id",
            "02",
            "--label",
            "always",
            "--usage-sign",
            "--always-auth",
        ])
        .run()
        .success();
}

/// Context-specific `C_Login` calls in a pkcs11-spy log.
fn context_specific_logins(spy_log: &str) -> usize {
    fs::read_to_string(spy_log)
        .unwrap_or_default()
        .matches("CKU_CONTEXT_SPECIFIC")
        .count()
}

/// A `CKA_ALWAYS_AUTHENTICATE` key signs, with one context-specific login per signature
/// (PKCS#11 3.0 §5.1: between `C_SignInit` and `C_Sign`); the signatures verify.
#[test]
fn always_authenticate_key_logs_in_per_signature() {
    let mut fx = Fixture::new("pin-always-authenticate");
    generate_always_authenticate_key(&fx);
    let spy_log = install_spy(&mut fx);
    let uri = fx.private_key_uri("always");
    fx.assert_dgst_signs(&uri, "02", &[]);
    assert_eq!(context_specific_logins(&spy_log), 1, "spy log {spy_log}");
    // Each openssl run signs once; a second run adds exactly one more.
    fx.assert_dgst_signs(&uri, "02", &[]);
    assert_eq!(context_specific_logins(&spy_log), 2, "spy log {spy_log}");
}

/// Without a PIN that may be reused (typed at a prompt, not cached) and without a terminal to
/// ask on (standard input is not one here; prompt.rs has the terminal case), a key that needs a
/// login per signature fails with an error that says what to configure, instead of signing
/// without the login.
#[test]
fn always_authenticate_key_without_reusable_pin_fails_clearly() {
    let mut fx = Fixture::new("pin-always-authenticate-no-pin");
    generate_always_authenticate_key(&fx);
    fx.config_mut().token_pin = None;
    let uri = fx.private_key_uri("always");
    let message = fx.message("message.txt");
    let signature = fx.file("prompted.sig");
    let passin = format!("pass:{USER_PIN}");
    // The PIN comes from the passphrase callback (-passin), which is not kept by default.
    let run = fx
        .openssl(&[
            "dgst", "-sha256", "-sign", &uri, "-passin", &passin, "-out", &signature, &message,
        ])
        .clean_failure();
    run.assert_provider_error(&["CKA_ALWAYS_AUTHENTICATE", "pkcs11-module-cache-pins"]);
    // With cache-pins the typed PIN is kept, and the same command signs.
    fx.config_mut().set("pkcs11-module-cache-pins", "cache");
    fx.assert_dgst_signs(&uri, "02", &["-passin", &passin]);
}
