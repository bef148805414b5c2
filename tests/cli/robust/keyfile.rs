//! Issue 15, item 6: a PEM-URI key file must not make the provider log in with a PIN of the
//! file's choosing, nor read any file the key file names as a PIN. By default the `pin-value` /
//! `pin-source` of a key file's URI is ignored (the key needs a PIN from elsewhere:
//! "login required", and no `C_Login` at all, counted with pkcs11-spy); with
//! `pkcs11-module-key-file-pins = use` the key file's PIN is used, and a `pin-source` that is
//! missing, not UTF-8 or absurdly long gives one and the same error, so a key file cannot probe
//! which files exist or what they hold.

use std::fs;

use super::{Outcome, assert_signs, sign_with};
use crate::common::pemfile::pem_uri_file;
use crate::common::softhsm::{USER_PIN, spy_module};
use crate::common::{Fixture, KeyType, percent_encode};

/// The config key that lets key files carry PINs, and its value that does.
const KEY_FILE_PINS: &str = "pkcs11-module-key-file-pins";
const USE: &str = "use";

/// A fixture with a P-256 key (id 01, "key"), no PIN in the config, and two PEM-URI key files
/// whose URIs carry the right PIN: `value.pem` (`?pin-value=`) and `source.pem`
/// (`?pin-source=file:`). Signing with `?pin-value=` on the command line proves the set-up.
fn key_file_fixture(name: &str) -> (Fixture, [String; 2]) {
    let mut fx = Fixture::new(name);
    fx.generate_key(KeyType::EcP256, "01", "key");
    fx.config_mut().token_pin = None;
    let uri = fx.private_key_uri("key");
    let with_pin = format!("{uri}?pin-value={USER_PIN}");
    assert_signs(&fx, KeyType::EcP256, &with_pin, "01", "uri-pin");

    let pin_file = fx.write_file("key-file-pin.txt", format!("{USER_PIN}\n"));
    let value = fx.write_file("value.pem", pem_uri_file(&with_pin));
    let source = fx.write_file(
        "source.pem",
        pem_uri_file(&format!(
            "{uri}?pin-source=file:{}",
            percent_encode(&pin_file)
        )),
    );
    (fx, [value, source])
}

/// `C_Login` calls in a pkcs11-spy log (lines "N: C_Login").
fn login_calls(spy_log: &str) -> usize {
    fs::read_to_string(spy_log)
        .unwrap_or_default()
        .lines()
        .filter(|line| {
            line.split_once(": ").is_some_and(|(number, function)| {
                !number.is_empty()
                    && number.bytes().all(|b| b.is_ascii_digit())
                    && function.trim() == "C_Login"
            })
        })
        .count()
}

#[test]
fn key_file_pins_are_ignored_by_default() {
    let (mut fx, key_files) = key_file_fixture("robust-keyfile-pin-ignored");
    let spy_log = fx.file("spy.log");
    let softhsm = fx.token().module().display().to_string();
    fx.config_mut().module_path = Some(spy_module());
    fx.set_child_env("PKCS11SPY", &softhsm);
    fx.set_child_env("PKCS11SPY_OUTPUT", &spy_log);
    for (index, key_file) in key_files.iter().enumerate() {
        let _ = fs::remove_file(&spy_log);
        let ran = sign_with(&fx, KeyType::EcP256, key_file, &format!("ignored-{index}"));
        assert!(
            ran.status.code() != Some(0),
            "signed with {key_file}: the provider logged in with the key file's PIN\n{}",
            ran.report()
        );
        let ran = ran.clean_failure();
        ran.assert_provider_error(&["login required"]);
        let spied = fs::read_to_string(&spy_log).unwrap_or_default();
        assert!(
            spied.contains("C_Initialize"),
            "the provider did not go through pkcs11-spy ({spy_log})\n{}",
            ran.report()
        );
        assert_eq!(
            login_calls(&spy_log),
            0,
            "C_Login calls for {key_file} (spy log {spy_log})\n{}",
            ran.report()
        );
    }
}

#[test]
fn key_file_pins_used_when_configured() {
    let (mut fx, key_files) = key_file_fixture("robust-keyfile-pin-use");
    fx.config_mut().set(KEY_FILE_PINS, USE);
    for (index, key_file) in key_files.iter().enumerate() {
        assert_signs(
            &fx,
            KeyType::EcP256,
            key_file,
            "01",
            &format!("used-{index}"),
        );
    }
}

/// The provider's errors for a signature with `key_file`, with `path` replaced by `<path>`.
fn errors_without_path(ran: &Outcome, path: &str) -> Vec<String> {
    ran.provider_errors()
        .iter()
        .map(|line| line.replace(&path.to_lowercase(), "<path>"))
        .collect()
}

#[test]
fn unusable_pin_sources_give_one_error() {
    let (mut fx, _) = key_file_fixture("robust-keyfile-pin-errors");
    fx.config_mut().set(KEY_FILE_PINS, USE);
    let pin_source = fx.file("pin-source.txt");
    let key_file = fx.write_file(
        "pin-source.pem",
        pem_uri_file(&format!(
            "{}?pin-source=file:{}",
            fx.private_key_uri("key"),
            percent_encode(&pin_source)
        )),
    );
    // The same key file signs while its pin-source holds the PIN.
    fs::write(&pin_source, format!("{USER_PIN}\n")).expect("write pin-source");
    assert_signs(&fx, KeyType::EcP256, &key_file, "01", "pin-source-good");

    let mut long_line = vec![b'1'; 10_000];
    long_line.push(b'\n');
    let cases: [(&str, Option<Vec<u8>>); 3] = [
        ("missing", None),
        ("not UTF-8", Some(b"\xff\xfe\xfd1234\n".to_vec())),
        ("10 000-byte first line", Some(long_line)),
    ];
    let mut seen: Vec<(&str, Vec<String>, Outcome)> = Vec::new();
    for (index, (what, contents)) in cases.into_iter().enumerate() {
        match contents {
            Some(bytes) => fs::write(&pin_source, bytes).expect("write pin-source"),
            None => {
                let _ = fs::remove_file(&pin_source);
            }
        }
        let ran = sign_with(
            &fx,
            KeyType::EcP256,
            &key_file,
            &format!("bad-source-{index}"),
        )
        .clean_failure();
        let errors = errors_without_path(&ran, &pin_source);
        assert!(
            !errors.is_empty(),
            "pin-source {what}: no provider error\n{}",
            ran.report()
        );
        seen.push((what, errors, ran));
    }
    let (first_what, first_errors, first_ran) = &seen[0];
    for (what, errors, ran) in &seen[1..] {
        assert!(
            errors == first_errors,
            "pin-source {what} and pin-source {first_what} give different errors:\n\
             {errors:#?}\nversus\n{first_errors:#?}\n--- {what} ---\n{}\n--- {first_what} ---\n{}",
            ran.report(),
            first_ran.report()
        );
    }
}
