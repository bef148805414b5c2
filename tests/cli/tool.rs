//! The `pkcs11-ossl` helper command (issue 13) on SoftHSM2 tokens: `list` shows every key and
//! certificate with a URI that works, `keyfile` writes the file an independent writer makes and
//! programs sign with it, refusing URIs that do not name exactly one private key, and `doctor`
//! passes on a good set-up and detects each failure it diagnoses, each in its own test, with a
//! `fix:` line and a non-zero exit status.
//!
//! Every signature checked here is verified with the public key pkcs11-tool reads from the
//! token and OpenSSL's default provider, never through the helper or the provider.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::cli::faults::build_faultmod;
use crate::common::pemfile::pem_uri_file;
use crate::common::softhsm::USER_PIN;
use crate::common::{
    Fixture, KeyType, Ran, SignatureCheck, non_pkcs11_library, percent_encode, provider_so,
};

/// The helper under test.
const HELPER: &str = env!("CARGO_BIN_EXE_pkcs11-ossl");

/// A user PIN the test tokens refuse.
const WRONG_PIN: &str = "9999";

/// Runs the helper with the fixture's provider environment (`OPENSSL_CONF`, `SOFTHSM2_CONF`).
fn helper(fx: &Fixture, args: &[&str]) -> Ran {
    fx.run_with_provider(HELPER, args)
}

/// `pin.txt` readable by its owner only, as doctor wants it.
fn secure_pin_file(fx: &Fixture) {
    fs::set_permissions(fx.file("pin.txt"), fs::Permissions::from_mode(0o600))
        .expect("chmod pin.txt");
}

/// The table rows of `list` output whose first column is `kind` (`private`, `cert`, ...), as
/// cells (the columns are separated by at least two spaces; no cell holds two spaces).
fn rows_of<'a>(listing: &'a str, kind: &str) -> Vec<Vec<&'a str>> {
    listing
        .lines()
        .map(|line| {
            line.split("  ")
                .map(str::trim)
                .filter(|cell| !cell.is_empty())
                .collect::<Vec<_>>()
        })
        .filter(|cells| cells.first() == Some(&kind))
        .collect()
}

/// The URI `list` printed for the `kind` object labelled `label`.
#[track_caller]
fn listed_uri(ran: &Ran, kind: &str, label: &str) -> String {
    let stdout = ran.stdout();
    rows_of(&stdout, kind)
        .into_iter()
        .find(|cells| cells.get(2) == Some(&label))
        .and_then(|cells| cells.last().map(|uri| (*uri).to_owned()))
        .unwrap_or_else(|| panic!("no {kind} row for '{label}'\n{}", ran.report()))
}

// ---------------------------------------------------------------------------------------------
// list
// ---------------------------------------------------------------------------------------------

/// `list` shows the token, each key with its type and size, the certificate, and URIs that
/// select those objects: signing with the listed private-key URIs works and verifies.
#[test]
fn list_shows_keys_and_certificates_with_uris_that_sign() {
    let fx = Fixture::new("tool-list");
    fx.generate_key(KeyType::EcP256, "01", "ec key");
    fx.generate_key(KeyType::Rsa2048, "02", "rsa");
    fx.generate_key(KeyType::Ed25519, "03", "ed");
    fx.import_key_with_cert(KeyType::EcP384, "04", "imported");
    let listed = helper(&fx, &["list"]).success();
    let stdout = listed.stdout();
    assert!(
        stdout.contains(crate::common::TOKEN_LABEL) && stdout.contains("logged in"),
        "{}",
        listed.report()
    );
    let private = rows_of(&stdout, "private");
    for (label, key_type, id) in [
        ("ec key", "EC P-256", "01"),
        ("rsa", "RSA-2048", "02"),
        ("ed", "Ed25519", "03"),
        ("imported", "EC P-384", "04"),
    ] {
        assert!(
            private
                .iter()
                .any(|cells| cells[1..4] == [key_type, label, id]),
            "no private {key_type} key '{label}' with id {id}\n{}",
            listed.report()
        );
    }
    assert_eq!(private.len(), 4, "{}", listed.report());
    let cert_uri = listed_uri(&listed, "cert", "imported");
    assert!(cert_uri.contains("type=cert"), "{cert_uri}");
    let exported = fx
        .openssl(&["storeutl", "-certs", "-text", &cert_uri])
        .success();
    assert!(
        exported.stdout().contains("CN=imported"),
        "{}",
        exported.report()
    );

    let ec_uri = listed_uri(&listed, "private", "ec key");
    assert_eq!(ec_uri, fx.uri("object=ec%20key;type=private;id=%01"));
    fx.assert_dgst_signs(&ec_uri, "01", &[]);
    fx.assert_dgst_signs(&listed_uri(&listed, "private", "rsa"), "02", &[]);
    let message = fx.message("ed.txt");
    let signature = fx.file("ed.sig");
    let ed_uri = listed_uri(&listed, "private", "ed");
    let signed = fx
        .openssl(&[
            "pkeyutl", "-sign", "-rawin", "-inkey", &ed_uri, "-in", &message, "-out", &signature,
        ])
        .success();
    let public_key = fx.export_pubkey("03");
    fx.assert_valid_signature(
        &SignatureCheck::new(&public_key, &message, &signature, None),
        &signed,
    );
}

/// Without a PIN the private keys are hidden, and a note says so; a URI narrows the listing.
#[test]
fn list_without_a_pin_says_private_keys_are_hidden_and_a_uri_filters() {
    let mut fx = Fixture::new("tool-list-no-pin");
    fx.generate_key(KeyType::EcP256, "01", "one");
    fx.generate_key(KeyType::EcP256, "02", "two");
    let filtered = helper(&fx, &["list", &fx.uri("object=two")]).success();
    let stdout = filtered.stdout();
    assert_eq!(
        rows_of(&stdout, "private").len(),
        1,
        "{}",
        filtered.report()
    );
    assert_eq!(
        listed_uri(&filtered, "private", "two"),
        fx.uri("object=two;type=private;id=%02")
    );
    let labels: Vec<&str> = ["private", "public"]
        .iter()
        .flat_map(|kind| rows_of(&stdout, kind))
        .filter_map(|cells| cells.get(2).copied())
        .collect();
    assert!(!labels.contains(&"one"), "{}", filtered.report());

    fx.config_mut().token_pin = None;
    let listed = helper(&fx, &["list"]).success();
    let stdout = listed.stdout();
    assert!(
        rows_of(&stdout, "private").is_empty(),
        "{}",
        listed.report()
    );
    assert_eq!(rows_of(&stdout, "public").len(), 2, "{}", listed.report());
    assert!(
        stdout.contains("not logged in") && stdout.contains("private objects are not shown"),
        "{}",
        listed.report()
    );
}

/// A wrong PIN: `list` shows the public objects, says the PIN was refused, exits 1.
#[test]
fn list_with_a_wrong_pin_fails_after_one_try() {
    let mut fx = Fixture::new("tool-list-wrong-pin");
    fx.generate_key(KeyType::EcP256, "01", "key");
    fx.config_mut().token_pin = Some(WRONG_PIN.to_owned());
    let listed = helper(&fx, &["list"]).clean_failure();
    let stdout = listed.stdout();
    assert!(
        stdout.contains("CKR_PIN_INCORRECT") && stdout.contains("login failed"),
        "{}",
        listed.report()
    );
    assert_eq!(rows_of(&stdout, "public").len(), 1, "{}", listed.report());
}

// ---------------------------------------------------------------------------------------------
// keyfile
// ---------------------------------------------------------------------------------------------

/// `keyfile` writes exactly what an independent PEM-URI writer makes for the key's URI (with
/// `type=private`, without the PIN given in the URI), to `-o` or standard output, and a
/// program that only reads PEM key files signs with it.
#[test]
fn keyfile_writes_the_key_file_programs_sign_with() {
    let fx = Fixture::new("tool-keyfile");
    fx.generate_key(KeyType::EcP256, "01", "key");
    let key_file = fx.file("key.pem");
    let given = format!("{}?pin-value={USER_PIN}", fx.uri("object=key"));
    let written = helper(&fx, &["keyfile", &given, "-o", &key_file]).success();
    let text = fs::read_to_string(&key_file).expect("read key.pem");
    assert_eq!(
        text,
        pem_uri_file(&fx.private_key_uri("key")),
        "{}",
        written.report()
    );
    assert!(
        written.stderr().contains("EC P-256"),
        "{}",
        written.report()
    );
    let to_stdout = helper(&fx, &["keyfile", &fx.uri("id=%01")]).success();
    assert_eq!(
        to_stdout.stdout(),
        pem_uri_file(&fx.uri("type=private;id=%01")),
        "{}",
        to_stdout.report()
    );

    let program = fx.compile_program("pem_read_sign");
    let message = fx.message("message.txt");
    let signature = fx.file("message.sig");
    let signed = fx
        .run_with_provider(&program, &[&key_file, &message, &signature])
        .success();
    let public_key = fx.export_pubkey("01");
    let check = SignatureCheck::new(&public_key, &message, &signature, Some("sha256"));
    fx.assert_valid_signature(&check, &signed);
}

/// `keyfile` refuses, writing nothing, a URI that selects two private keys (listing both),
/// none, something other than a private key, or that it cannot log in for.
#[test]
fn keyfile_refuses_uris_that_do_not_name_exactly_one_private_key() {
    let mut fx = Fixture::new("tool-keyfile-refusals");
    fx.generate_key(KeyType::EcP256, "01", "same");
    fx.generate_key(KeyType::Rsa2048, "02", "same");
    let out = fx.file("key.pem");
    let two = helper(&fx, &["keyfile", &fx.uri("object=same"), "-o", &out]).clean_failure();
    two.assert_stderr_mentions(&["matches 2 private keys"]);
    for id in ["%01", "%02"] {
        assert!(
            two.stderr().contains(&format!("id={id}")),
            "{}",
            two.report()
        );
    }
    let whole_token = helper(&fx, &["keyfile", &fx.uri(""), "-o", &out]).clean_failure();
    whole_token.assert_stderr_mentions(&["matches 2 private keys"]);
    let none = helper(&fx, &["keyfile", &fx.uri("object=missing"), "-o", &out]).clean_failure();
    none.assert_stderr_mentions(&["no private key matches"]);
    let other_token = helper(
        &fx,
        &["keyfile", "pkcs11:token=elsewhere;object=same", "-o", &out],
    )
    .clean_failure();
    other_token.assert_stderr_mentions(&["no token matches"]);
    let cert = helper(
        &fx,
        &["keyfile", &fx.uri("object=same;type=cert"), "-o", &out],
    )
    .clean_failure();
    cert.assert_stderr_mentions(&["type=cert"]);
    let misspelt = helper(&fx, &["keyfile", &fx.uri("objekt=same"), "-o", &out]).clean_failure();
    misspelt.assert_stderr_mentions(&["objekt"]);
    let wrong_pin = format!("{}?pin-value={WRONG_PIN}", fx.uri("id=%01"));
    let refused = helper(&fx, &["keyfile", &wrong_pin, "-o", &out]).clean_failure();
    refused.assert_stderr_mentions(&["CKR_PIN_INCORRECT"]);
    assert!(
        !refused.stderr().contains(WRONG_PIN),
        "{}",
        refused.report()
    );
    fx.config_mut().token_pin = None;
    let no_pin = helper(&fx, &["keyfile", &fx.uri("id=%01"), "-o", &out]).clean_failure();
    no_pin.assert_stderr_mentions(&["no PIN"]);
    assert!(!Path::new(&out).exists(), "a refused keyfile wrote {out}");
}

// ---------------------------------------------------------------------------------------------
// doctor
// ---------------------------------------------------------------------------------------------

/// Asserts exit status 0 and that no check failed.
#[track_caller]
fn assert_doctor_passes(ran: &Ran) {
    let stdout = ran.stdout();
    assert!(
        ran.output.status.success() && !stdout.contains("FAIL") && stdout.contains("all ok"),
        "doctor did not pass\n{}",
        ran.report()
    );
}

/// Asserts exit status 1 and a `FAIL  <check>` line mentioning every one of `words`, followed
/// by a non-empty `fix:` line.
#[track_caller]
fn assert_doctor_fails(ran: &Ran, check: &str, words: &[&str]) {
    assert_eq!(ran.output.status.code(), Some(1), "{}", ran.report());
    assert!(!ran.stderr().contains("panicked"), "{}", ran.report());
    let stdout = ran.stdout();
    let lines: Vec<&str> = stdout.lines().collect();
    let found = lines.iter().enumerate().find(|(_, line)| {
        line.starts_with(&format!("FAIL  {check}"))
            && words
                .iter()
                .all(|word| line.to_lowercase().contains(&word.to_lowercase()))
    });
    let Some((index, _)) = found else {
        panic!(
            "no 'FAIL  {check}' line mentioning {words:?}\n{}",
            ran.report()
        );
    };
    let fix = lines.get(index + 1).copied().unwrap_or("");
    assert!(
        fix.starts_with("      fix: ") && fix.len() > "      fix: ".len() + 10,
        "no fix after the failure\n{}",
        ran.report()
    );
}

/// The fixture's configuration with `[pkcs11_sect]` (minus `activate`) replaced by `section`
/// and `[provider_sect]` by `providers`, written to `name`.
fn config_file(fx: &Fixture, name: &str, providers: &str, section: &str) -> String {
    let text = format!(
        "openssl_conf = openssl_init\n\n[openssl_init]\nproviders = provider_sect\n\n\
         [provider_sect]\n{providers}\n\n[default_sect]\nactivate = 1\n\n[pkcs11_sect]\n{section}\n"
    );
    fx.write_file(name, text)
}

/// The usual `[pkcs11_sect]` lines: module, PKCS#11 module, PIN file, quirks.
fn usual_section(fx: &Fixture) -> String {
    format!(
        "module = {}\npkcs11-module-path = {}\npkcs11-module-token-pin = file:{}\n\
         pkcs11-module-quirks = no-deinit",
        provider_so().display(),
        fx.token().module().display(),
        fx.file("pin.txt")
    )
}

const PROVIDERS: &str = "default = default_sect\npkcs11 = pkcs11_sect";

/// A good set-up with a URI: every check passes, and each key (EC, RSA, Ed25519, and an
/// imported key with its certificate) is reported as signing and verifying; the certificate
/// is reported as the key's.
#[test]
fn doctor_passes_on_a_good_setup_and_checks_each_key() {
    let fx = Fixture::new("tool-doctor-good");
    secure_pin_file(&fx);
    fx.generate_key(KeyType::EcP256, "01", "ec");
    fx.generate_key(KeyType::Rsa2048, "02", "rsa");
    fx.generate_key(KeyType::Ed25519, "03", "ed");
    fx.import_key_with_cert(KeyType::EcP256, "04", "with-cert");
    let without_uri = helper(&fx, &["doctor"]);
    assert_doctor_passes(&without_uri);
    assert!(
        without_uri.stdout().contains("skip  keys"),
        "{}",
        without_uri.report()
    );
    let ran = helper(&fx, &["doctor", &fx.uri("")]);
    assert_doctor_passes(&ran);
    let stdout = ran.stdout();
    for check in [
        "ok    config file",
        "ok    provider section: [pkcs11_sect]",
        "ok    provider active",
        "ok    provider library",
        "ok    provider loads",
        "ok    settings",
        "ok    PKCS#11 module",
        "ok    tokens",
        "ok    PIN source",
        "ok    login",
        "ok    keys: 4 private key(s)",
        "certificate 'with-cert' holds the key's public key",
    ] {
        assert!(stdout.contains(check), "no '{check}'\n{}", ran.report());
    }
    let signed = stdout
        .lines()
        .filter(|line| line.starts_with("ok    key '") && line.contains("signature verifies"))
        .count();
    assert_eq!(signed, 4, "{}", ran.report());
}

#[test]
fn doctor_detects_a_missing_config_file() {
    let fx = Fixture::new("tool-doctor-no-config");
    let missing = fx.file("no-such.cnf");
    let ran = helper(&fx, &["doctor", "--config", &missing]);
    assert_doctor_fails(&ran, "config file", &["no-such.cnf"]);
}

/// No `openssl_conf` line, no entry for the provider, an entry naming a missing section.
#[test]
fn doctor_detects_a_missing_provider_section() {
    let fx = Fixture::new("tool-doctor-no-section");
    secure_pin_file(&fx);
    let section = format!("{}\nactivate = 1", usual_section(&fx));
    let no_init = fx.write_file("no-init.cnf", format!("[pkcs11_sect]\n{section}\n"));
    let ran = helper(&fx, &["doctor", "--config", &no_init]);
    assert_doctor_fails(&ran, "provider section", &["openssl_conf"]);
    let no_entry = config_file(&fx, "no-entry.cnf", "default = default_sect", &section);
    let ran = helper(&fx, &["doctor", "--config", &no_entry]);
    assert_doctor_fails(&ran, "provider section", &["no entry for pkcs11-ossl"]);
    let text = fs::read_to_string(&no_entry).expect("read no-entry.cnf");
    let dangling = fx.write_file(
        "dangling.cnf",
        text.replace(
            "default = default_sect\n\n",
            "default = default_sect\npkcs11 = p11_sect\n\n",
        ),
    );
    let ran = helper(&fx, &["doctor", "--config", &dangling]);
    assert_doctor_fails(&ran, "provider section", &["[p11_sect]", "no such section"]);
}

/// No `activate` line, and `activate = 0` (which OpenSSL 3.2 and later honour).
#[test]
fn doctor_detects_an_inactive_section() {
    let fx = Fixture::new("tool-doctor-inactive");
    secure_pin_file(&fx);
    let section = usual_section(&fx);
    let inactive = config_file(&fx, "inactive.cnf", PROVIDERS, &section);
    let ran = helper(&fx, &["doctor", "--config", &inactive]);
    assert_doctor_fails(&ran, "provider active", &["no 'activate' line"]);
    assert!(
        ran.stdout().contains("skip  provider loads"),
        "{}",
        ran.report()
    );
    let zero = config_file(
        &fx,
        "zero.cnf",
        PROVIDERS,
        &format!("{section}\nactivate = 0"),
    );
    let ran = helper(&fx, &["doctor", "--config", &zero]);
    assert_doctor_fails(&ran, "provider active", &["activate = 0"]);
}

/// A `module =` file that does not exist; no `module` line and no `pkcs11.so` in the modules
/// directory; a module file that is no provider (OpenSSL refuses to load it).
#[test]
fn doctor_detects_a_provider_library_that_is_missing_or_does_not_load() {
    let mut fx = Fixture::new("tool-doctor-library");
    secure_pin_file(&fx);
    let rest = format!(
        "pkcs11-module-path = {}\npkcs11-module-token-pin = file:{}\nactivate = 1",
        fx.token().module().display(),
        fx.file("pin.txt")
    );
    let missing = config_file(
        &fx,
        "missing.cnf",
        PROVIDERS,
        &format!("module = {}\n{rest}", fx.file("nowhere/libpkcs11_ossl.so")),
    );
    let ran = helper(&fx, &["doctor", "--config", &missing]);
    assert_doctor_fails(&ran, "provider library", &["does not exist"]);
    let empty_modules = fx.file("modules");
    fs::create_dir_all(&empty_modules).expect("create modules directory");
    fx.set_child_env("OPENSSL_MODULES", &empty_modules);
    let by_name = config_file(&fx, "by-name.cnf", PROVIDERS, &rest);
    let ran = helper(&fx, &["doctor", "--config", &by_name]);
    assert_doctor_fails(
        &ran,
        "provider library",
        &["modules/pkcs11.so", "no module line"],
    );
    let not_provider = config_file(
        &fx,
        "not-provider.cnf",
        PROVIDERS,
        &format!("module = {}\n{rest}", non_pkcs11_library()),
    );
    let ran = helper(&fx, &["doctor", "--config", &not_provider]);
    assert_doctor_fails(
        &ran,
        "provider loads",
        &["does not list 'pkcs11' as active"],
    );
}

/// A misspelt key (which the provider would ignore) and a value the provider refuses.
#[test]
fn doctor_detects_unknown_keys_and_bad_values() {
    let mut fx = Fixture::new("tool-doctor-settings");
    secure_pin_file(&fx);
    fx.config_mut().set("pkcs11-module-cache-pin", "cache");
    assert_doctor_fails(
        &helper(&fx, &["doctor"]),
        "settings",
        &["pkcs11-module-cache-pin"],
    );
    fx.config_mut()
        .settings
        .retain(|(key, _)| key != "pkcs11-module-cache-pin");
    fx.config_mut()
        .set("pkcs11-module-login-behavior", "sometimes");
    assert_doctor_fails(
        &helper(&fx, &["doctor"]),
        "settings",
        &["pkcs11-module-login-behavior", "sometimes"],
    );
}

/// The PKCS#11 module: a path that does not exist, a library that is not a PKCS#11 module,
/// none configured at all.
#[test]
fn doctor_detects_a_wrong_module_path() {
    let mut fx = Fixture::new("tool-doctor-module");
    secure_pin_file(&fx);
    fx.config_mut().module_path = Some(fx.file("no-such-module.so").into());
    let ran = helper(&fx, &["doctor"]);
    assert_doctor_fails(
        &ran,
        "PKCS#11 module",
        &["no-such-module.so", "does not exist"],
    );
    assert!(ran.stdout().contains("skip  tokens"), "{}", ran.report());
    fx.config_mut().module_path = Some(non_pkcs11_library().into());
    assert_doctor_fails(
        &helper(&fx, &["doctor"]),
        "PKCS#11 module",
        &["not a PKCS#11 module"],
    );
    fx.config_mut().module_path = None;
    assert_doctor_fails(
        &helper(&fx, &["doctor"]),
        "PKCS#11 module",
        &["pkcs11-module-path is not set"],
    );
}

/// A URI whose token is not there, a token directory without an initialised token, and a URI
/// that does not parse.
#[test]
fn doctor_detects_missing_tokens_and_bad_uris() {
    let mut fx = Fixture::new("tool-doctor-tokens");
    secure_pin_file(&fx);
    let ran = helper(&fx, &["doctor", "pkcs11:token=elsewhere"]);
    assert_doctor_fails(
        &ran,
        "tokens",
        &["no token matches", crate::common::TOKEN_LABEL],
    );
    assert_doctor_fails(
        &helper(&fx, &["doctor", "pkcs11:objekt=x"]),
        "URI",
        &["objekt"],
    );
    let empty = fx.file("empty-tokens");
    fs::create_dir_all(&empty).expect("create token directory");
    let conf = fx.write_file(
        "empty-softhsm2.conf",
        format!("directories.tokendir = {empty}\nobjectstore.backend = file\n"),
    );
    fx.set_child_env("SOFTHSM2_CONF", &conf);
    assert_doctor_fails(
        &helper(&fx, &["doctor"]),
        "tokens",
        &["no initialised token"],
    );
}

/// PIN files: one that does not exist, a directory, one everyone can read; a `pin-source`
/// that is no file.
#[test]
fn doctor_detects_unreadable_and_world_readable_pin_files() {
    let mut fx = Fixture::new("tool-doctor-pin-file");
    fx.generate_key(KeyType::EcP256, "01", "key");
    // Written with the default umask: 0644.
    let ran = helper(&fx, &["doctor"]);
    assert_doctor_fails(&ran, "PIN source", &["readable by everyone", "0644"]);
    assert!(ran.stdout().contains("skip  login"), "{}", ran.report());
    secure_pin_file(&fx);
    assert_doctor_passes(&helper(&fx, &["doctor"]));
    fx.config_mut().token_pin = Some(format!("file:{}", fx.file("no-such.pin")));
    assert_doctor_fails(
        &helper(&fx, &["doctor"]),
        "PIN source",
        &["no-such.pin", "cannot be read"],
    );
    let directory = fx.file("pin-dir");
    fs::create_dir_all(&directory).expect("create directory");
    fx.config_mut().token_pin = Some(format!("file:{directory}"));
    assert_doctor_fails(
        &helper(&fx, &["doctor"]),
        "PIN source",
        &["not a regular file"],
    );
    // A pin-source in the URI comes first; the configured file is checked as well, since the
    // provider reads it in any case.
    let remote = format!(
        "{}?pin-source=https://example.invalid/pin",
        fx.uri("object=key")
    );
    let ran = helper(&fx, &["doctor", &remote]);
    assert_doctor_fails(&ran, "PIN source", &["not a regular file"]);
    assert_doctor_fails(
        &helper(&fx, &["doctor", &remote]),
        "PIN source",
        &["pin-source"],
    );
    fx.config_mut().token_pin = Some(format!("file:{}", fx.file("pin.txt")));
    let from_uri = format!(
        "{}?pin-source=file:{}",
        fx.uri("object=key"),
        percent_encode(&fx.file("pin.txt"))
    );
    let ran = helper(&fx, &["doctor", &from_uri]);
    assert_doctor_passes(&ran);
    assert!(
        ran.stdout().contains("pin-source in the URI"),
        "{}",
        ran.report()
    );
}

/// The fixture, with the provider and the helper going through the fault module, which counts
/// calls into `counts.txt` (one process's counts: the last writer's).
fn fault_fixture(name: &str) -> (Fixture, String) {
    let mut fx = Fixture::new(name);
    secure_pin_file(&fx);
    fx.generate_key(KeyType::EcP256, "01", "key");
    let faultmod = build_faultmod(&fx);
    let real = fx.token().module().display().to_string();
    fx.config_mut().module_path = Some(faultmod);
    fx.set_child_env("FAULT_REAL_MODULE", &real);
    let counts = fx.file("counts.txt");
    fx.set_child_env("FAULT_COUNT_FILE", &counts);
    (fx, counts)
}

/// How often `function` was called according to the count file.
fn count_of(counts: &str, function: &str) -> u64 {
    fs::read_to_string(counts)
        .unwrap_or_default()
        .lines()
        .find_map(|line| {
            line.strip_prefix(&format!("{function} "))?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

/// A wrong PIN is tried once: doctor's process calls `C_Login` exactly once and finalises the
/// module last (so no later process wrote the counts), no key check runs, and the failure
/// names the PIN's source. A token reporting "final try" or "locked" is not tried at all.
#[test]
fn doctor_detects_a_wrong_pin_and_tries_it_once() {
    let (mut fx, counts) = fault_fixture("tool-doctor-wrong-pin");
    let uri = fx.uri("object=key");
    assert_doctor_passes(&helper(&fx, &["doctor", &uri]));
    let wrong = fx.write_file("wrong.pin", format!("{WRONG_PIN}\n"));
    fs::set_permissions(&wrong, fs::Permissions::from_mode(0o600)).expect("chmod wrong.pin");
    fx.config_mut().token_pin = Some(format!("file:{wrong}"));
    let _ = fs::remove_file(&counts);
    let ran = helper(&fx, &["doctor", &uri]);
    assert_doctor_fails(
        &ran,
        "login",
        &["CKR_PIN_INCORRECT", "wrong.pin", "tried once"],
    );
    let text = fs::read_to_string(&counts).unwrap_or_default();
    assert_eq!(
        count_of(&counts, "C_Login"),
        1,
        "counts:\n{text}\n{}",
        ran.report()
    );
    assert_eq!(
        count_of(&counts, "C_Finalize"),
        1,
        "counts:\n{text}\n{}",
        ran.report()
    );
    assert!(
        ran.stdout().contains("skip  keys") && !ran.stdout().contains("key 'key'"),
        "{}",
        ran.report()
    );
    fx.config_mut().token_pin = Some(format!("file:{}", fx.file("pin.txt")));
    for flag in ["+CKF_USER_PIN_FINAL_TRY", "+CKF_USER_PIN_LOCKED"] {
        fx.set_child_env("FAULT_TOKEN_FLAGS", flag);
        let _ = fs::remove_file(&counts);
        let ran = helper(&fx, &["doctor", &uri]);
        assert_doctor_fails(&ran, "login", &["CKF_USER_PIN"]);
        assert!(
            count_of(&counts, "C_GetTokenInfo") > 0,
            "{flag}\n{}",
            ran.report()
        );
        assert_eq!(count_of(&counts, "C_Login"), 0, "{flag}\n{}", ran.report());
    }
}

/// A key the token will not sign with (every `C_SignInit` fails in the fault module with
/// `CKR_KEY_FUNCTION_NOT_PERMITTED`, 0x68) and a
/// key whose public key object belongs to another key.
#[test]
fn doctor_detects_keys_that_do_not_sign_or_verify() {
    let (mut fx, _counts) = fault_fixture("tool-doctor-key-fails");
    let uri = fx.uri("object=key");
    fx.set_child_env("FAULT_RULES", "C_SignInit:1-:0x68");
    assert_doctor_fails(
        &helper(&fx, &["doctor", &uri]),
        "key 'key'",
        &["signing through the provider fails"],
    );
    // With the PIN in the URI, nothing doctor prints shows it.
    let with_pin = format!("{uri}?pin-value={USER_PIN}");
    let ran = helper(&fx, &["doctor", &with_pin]);
    assert_doctor_fails(&ran, "key 'key'", &["signing through the provider fails"]);
    assert!(!ran.stdout().contains("pin-value="), "{}", ran.report());
    fx.set_child_env("FAULT_RULES", "");
    assert_doctor_passes(&helper(&fx, &["doctor", &uri]));

    // Key 01's public key object replaced by the public key of key 02.
    fx.generate_key(KeyType::EcP256, "02", "other");
    let other_public = fx.export_pubkey("02");
    fx.token()
        .pkcs11_tool_login()
        .args(["--delete-object", "--type", "pubkey", "--id", "01"])
        .run()
        .success();
    fx.token()
        .write_object(Path::new(&other_public), "pubkey", "01", "key");
    assert_doctor_fails(
        &helper(&fx, &["doctor", &uri]),
        "key 'key'",
        &["does not verify with the key's public key"],
    );
    assert_doctor_fails(
        &helper(&fx, &["doctor", &fx.uri("object=nothing")]),
        "keys",
        &["no private key matches"],
    );
}

/// A certificate stored under a key's id that was issued for another key.
#[test]
fn doctor_detects_a_key_that_does_not_match_its_certificate() {
    let fx = Fixture::new("tool-doctor-cert");
    secure_pin_file(&fx);
    // RSA: the provider reads the public key from the private key object itself, so a second
    // certificate under the id cannot change which public key the key has.
    fx.import_key_with_cert(KeyType::Rsa2048, "01", "key");
    let uri = fx.uri("object=key;type=private");
    let ran = helper(&fx, &["doctor", &uri]);
    assert_doctor_passes(&ran);
    assert!(
        ran.stdout()
            .contains("certificate 'key' holds the key's public key"),
        "{}",
        ran.report()
    );
    let stranger = fx.import_key_with_cert(KeyType::EcP256, "02", "stranger");
    fx.token()
        .write_object(Path::new(&stranger.cert), "cert", "01", "wrong-cert");
    let ran = helper(&fx, &["doctor", &uri]);
    assert_doctor_fails(
        &ran,
        "certificate of 'key'",
        &["'wrong-cert' does not belong to this key"],
    );
    assert!(
        ran.stdout()
            .contains("certificate 'key' holds the key's public key"),
        "{}",
        ran.report()
    );
}

/// Without any PIN, doctor says where to put one and skips the login instead of failing.
#[test]
fn doctor_without_a_pin_explains_and_skips_the_login() {
    let mut fx = Fixture::new("tool-doctor-no-pin");
    fx.generate_key(KeyType::EcP256, "01", "key");
    fx.config_mut().token_pin = None;
    let ran = helper(&fx, &["doctor", &fx.uri("object=key")]);
    let stdout = ran.stdout();
    assert!(
        stdout.contains("skip  PIN source") && stdout.contains("pkcs11-module-token-pin = file:"),
        "{}",
        ran.report()
    );
    assert!(stdout.contains("skip  login"), "{}", ran.report());
}

/// Usage errors exit with 2 and print the usage; `--version` and `--help` exit 0.
#[test]
fn helper_usage_errors_and_version() {
    let fx = Fixture::new("tool-usage");
    for args in [&["frobnicate"][..], &["keyfile"], &["list", "--bogus"], &[]] {
        let ran = helper(&fx, args);
        assert_eq!(ran.output.status.code(), Some(2), "{}", ran.report());
        assert!(
            ran.stdout().contains("usage:") || ran.stderr().contains("usage:"),
            "{}",
            ran.report()
        );
    }
    let version = helper(&fx, &["--version"]).success();
    assert_eq!(
        version.stdout().trim(),
        format!("pkcs11-ossl {}", env!("CARGO_PKG_VERSION"))
    );
    helper(&fx, &["--help"]).success();
}

/// `stats` reads the metrics file the provider writes (`pkcs11-module-metrics-file` with `%p`)
/// and counts exactly the signatures made, by algorithm and status.
#[test]
fn stats_counts_the_signatures_in_the_metrics_file() {
    let mut fx = Fixture::new("tool-stats");
    fx.generate_key(KeyType::EcP256, "01", "p256");
    let pattern = fx.file("metrics-%p.prom");
    fx.config_mut().set("pkcs11-module-metrics-file", &pattern);
    fx.config_mut().set("pkcs11-module-metrics-interval", "1");
    // Three `openssl dgst` processes, each signing once (verified): each writes its own file
    // (its pid in the name) when it first uses the token and a last time at exit.
    let uri = fx.private_key_uri("p256");
    for _ in 0..3 {
        fx.assert_dgst_signs(&uri, "01", &[]);
    }
    let ran = helper(&fx, &["stats"]).success();
    let stdout = ran.stdout();
    let line = stdout
        .lines()
        .find(|l| l.starts_with("ecdsa-p256") && l.contains(" ok "))
        .unwrap_or_else(|| panic!("no ecdsa-p256 ok line\n{}", ran.report()));
    let count: u64 = line
        .split_whitespace()
        .nth(2)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no count in {line}"));
    assert_eq!(count, 3, "{}", ran.report());
    assert!(stdout.contains("signatures in flight: 0"), "{stdout}");
}
