//! Bad-input matrix (issue 6, parts 3 and 4): malformed `pkcs11:` URIs, bad values for every
//! provider config key, broken PEM-URI key files, and operations the key cannot do, all driven
//! through the stock `openssl` CLI with the provider loaded.
//!
//! Every table shares one fixture and runs its cases in a loop. A case passes when the run ends
//! the way the table says (a clean non-zero exit, never a signal, a hang or a Rust panic) and the
//! error names the problem: for errors the provider raises, one of the case's words must appear in
//! an OpenSSL error line whose library is `pkcs11` (URIs quoted in it are not searched, since
//! they may contain the words); for input the provider never sees, in stderr. Cases marked
//! `Success` are inputs DESIGN.md (or the comment next to them) says are fine. The token's objects
//! are listed with `pkcs11-tool` before and after each table and must not change. All problems of
//! a table are collected and reported together, with each run's command line and stderr.

use std::fmt::Write as _;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::Instant;

use crate::common::pemfile::{PEM_URI_DESCRIPTION, PEM_URI_LABEL, der_element, pem, pem_uri_der};
use crate::common::version::openssl_at_least;
use crate::common::{Fixture, KeyType, NOT_PKCS11_WORDS, Ran, SignatureCheck, non_pkcs11_library};

/// How a case must end.
#[derive(Clone, Copy)]
enum Expect {
    /// Non-zero exit and a provider error line mentioning one of the words.
    Provider(&'static [&'static str]),
    /// Non-zero exit and stderr mentioning one of the words: OpenSSL rejects the input before
    /// (or instead of) asking the provider, so there is no provider error line to look for.
    Rejected(&'static [&'static str]),
    /// Exit status 0.
    Success,
}

struct Case {
    name: String,
    args: Vec<String>,
    expect: Expect,
    /// Words the provider's error lines must not contain (misleading or leaking text).
    avoid: &'static [&'static str],
}

impl Case {
    fn new(name: impl Into<String>, args: &[&str], expect: Expect) -> Case {
        Case {
            name: name.into(),
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            expect,
            avoid: &[],
        }
    }

    fn avoiding(mut self, words: &'static [&'static str]) -> Case {
        self.avoid = words;
        self
    }
}

// Words of the URI parser's messages (src/uri/error.rs, `ParseError`'s Display).
const PERCENT: &[&str] = &["percent-escape"];
const TOO_LONG: &[&str] = &["longer than"];
const NUL: &[&str] = &["nul byte"];
const TWICE: &[&str] = &["given twice"];
const UNKNOWN_TYPE: &[&str] = &["unknown object type"];
const NOT_UTF8: &[&str] = &["utf-8"];
const EMPTY_NAME: &[&str] = &["empty attribute name"];
const NO_EQUALS: &[&str] = &["without '='"];
const BAD_NAME: &[&str] = &["bad character in attribute name"];
const MUST_ESCAPE: &[&str] = &["must be percent-encoded"];
const NUMBER: &[&str] = &["decimal number"];
const TOO_LARGE: &[&str] = &["too large"];
const VERSION: &[&str] = &["version"];
const PIN_BOTH: &[&str] = &["both given"];
// Resolving a well-formed URI.
const NO_OBJECT: &[&str] = &["no object", "no key", "matches no", "no token", "not found"];
const AMBIGUOUS: &[&str] = &["ambiguous", "more than one", "several", "multiple"];
const NOT_PRIVATE: &[&str] = &["public key", "not a private key"];
/// Every unusable URI pin-source (missing, a directory, unreadable, not UTF-8, ...) gets this one
/// text, so a URI from someone else learns nothing about the files the program can read.
const PIN_SOURCE_UNUSABLE: &[&str] = &["cannot be used: it must be a readable regular file"];
const PIN_SOURCE_SCHEME: &[&str] = &["pin-source must be"];
const MODULE_PATH: &[&str] = &["module-path"];
/// A URI `pin-source` problem is not a problem of the config key: naming it misleads.
const CONFIG_PIN_KEY: &[&str] = &["pkcs11-module-token-pin"];
/// OpenSSL's own words when no store loader takes a URI and it is not a file either.
const UNREADABLE_KEY: &[&str] = &["could not", "no such file", "unsupported", "unregistered"];

/// The token's objects as `pkcs11-tool --list-objects --login` prints them.
fn token_objects(fx: &Fixture) -> String {
    fx.token()
        .pkcs11_tool_login()
        .arg("--list-objects")
        .run()
        .success()
        .stdout()
}

/// The provider's error lines (library `pkcs11`): everything after the library field,
/// lower-cased, without the URIs quoted in it (they may contain any word).
fn provider_errors(run: &Ran) -> Vec<String> {
    run.stderr()
        .lines()
        .filter_map(|line| {
            // `<thread>:error:<code>:<library>:<function>:<reason>:<file>:<line>:<data>`
            let fields: Vec<&str> = line.splitn(5, ':').collect();
            let [_, "error", _, "pkcs11", text] = fields[..] else {
                return None;
            };
            let text = text
                .split_whitespace()
                .filter(|word| !word.starts_with("pkcs11:"))
                .collect::<Vec<_>>()
                .join(" ")
                .to_lowercase();
            Some(text)
        })
        .collect()
}

/// Whether a provider error line mentions one of `words`; the non-panicking twin of
/// `Ran::assert_provider_error`.
fn provider_error_mentions(run: &Ran, words: &[&str]) -> bool {
    provider_errors(run)
        .iter()
        .any(|text| words.iter().any(|word| text.contains(&word.to_lowercase())))
}

/// Whether a provider error line has an empty data field: OpenSSL 3.0's `ERR_vset_error`
/// drops a message that does not fit its 1 KiB buffer, leaving only the reason string.
fn provider_error_without_text(run: &Ran) -> bool {
    run.stderr().lines().any(|line| {
        let fields: Vec<&str> = line.splitn(9, ':').collect();
        matches!(fields[..], [_, "error", _, "pkcs11", _, _, _, _, data] if data.trim().is_empty())
    })
}

/// The first provider error line of a run, for the outcome table.
fn first_provider_error(run: &Ran) -> String {
    let stderr = run.stderr();
    let line = stderr
        .lines()
        .find(|line| line.split(':').nth(3) == Some("pkcs11"))
        .or_else(|| stderr.lines().find(|line| line.contains(":error:")))
        .unwrap_or("");
    line.chars().take(200).collect()
}

/// What is wrong with the outcome of `case`, if anything.
fn problem(case: &Case, run: &Ran) -> Option<String> {
    if run.timed_out {
        return Some("hung (killed after the run timeout)".to_owned());
    }
    let Some(code) = run.output.status.code() else {
        return Some(format!("killed by a signal: {}", run.output.status));
    };
    if run.stderr().contains("panicked at") {
        return Some("the provider panicked".to_owned());
    }
    if provider_error_without_text(run) {
        return Some("a provider error line has no text after the reason".to_owned());
    }
    if let Some(word) = case
        .avoid
        .iter()
        .find(|word| provider_error_mentions(run, &[word]))
    {
        return Some(format!("a provider error line mentions {word:?}"));
    }
    match case.expect {
        Expect::Success if code != 0 => Some(format!("failed (exit {code}), should succeed")),
        Expect::Success => None,
        Expect::Provider(_) | Expect::Rejected(_) if code == 0 => {
            Some("succeeded, should fail".to_owned())
        }
        Expect::Provider(words) if !provider_error_mentions(run, words) => {
            Some(format!("no provider error line mentions any of {words:?}"))
        }
        Expect::Rejected(words) => {
            let stderr = run.stderr().to_lowercase();
            (!words.iter().any(|w| stderr.contains(&w.to_lowercase())))
                .then(|| format!("stderr mentions none of {words:?}"))
        }
        Expect::Provider(_) => None,
    }
}

/// Runs every case through the provider and asserts, once, that all ended as expected and that
/// the token's objects did not change. `prepare` adjusts the fixture before each case (config
/// tables) and is given `None` afterwards to restore it.
fn run_table(
    fx: &mut Fixture,
    table: &str,
    cases: &[Case],
    mut prepare: impl FnMut(&mut Fixture, Option<&Case>),
) {
    let before = token_objects(fx);
    let mut outcomes = String::new();
    let mut problems = String::new();
    for case in cases {
        prepare(fx, Some(case));
        let args: Vec<&str> = case.args.iter().map(String::as_str).collect();
        let started = Instant::now();
        let run = fx.openssl(&args);
        let elapsed = started.elapsed();
        prepare(fx, None);
        let _ = writeln!(
            outcomes,
            "{:<44} {:>6.2}s {:>6}  {}",
            case.name,
            elapsed.as_secs_f64(),
            run.output
                .status
                .code()
                .map_or_else(|| "signal".to_owned(), |c| c.to_string()),
            first_provider_error(&run)
        );
        if let Some(what) = problem(case, &run) {
            let _ = writeln!(
                problems,
                "=== {table}: {}: {what}\n{}\n",
                case.name,
                run.report()
            );
        }
    }
    let after = token_objects(fx);
    if before != after {
        let _ = writeln!(
            problems,
            "=== {table}: the token's objects changed\n--- before ---\n{before}\n--- after ---\n{after}"
        );
    }
    // Shown by libtest only when the test fails: every case's exit code and first error line.
    println!("{table}: {} cases\n{outcomes}", cases.len());
    assert!(problems.is_empty(), "{problems}");
}

/// A fixture with an RSA-2048 key pair "rsa" (id 01), a P-256 pair "ec" (02) and an Ed25519
/// pair "ed" (03).
fn three_key_fixture(name: &str) -> Fixture {
    let fx = Fixture::new(name);
    fx.generate_key(KeyType::Rsa2048, "01", "rsa");
    fx.generate_key(KeyType::EcP256, "02", "ec");
    fx.generate_key(KeyType::Ed25519, "03", "ed");
    fx
}

#[test]
fn malformed_uris() {
    let mut fx = Fixture::new("badinput-uri");
    fx.generate_key(KeyType::EcP256, "02", "ec");
    fx.generate_key(KeyType::EcP256, "04", "twin");
    fx.generate_key(KeyType::EcP256, "05", "twin");
    let hash = fx.write_file("hash32.bin", [0x5a; 32]);
    let signature = fx.file("out.sig");
    let token = fx.uri("");
    let missing_pin_file = fx.file("no-such-pin.txt");
    let pin_directory = fx.file("pin-directory");
    fs::create_dir_all(&pin_directory).expect("create pin directory");
    // chmod 000 does not stop root, and the tests usually run as root: the file holds the right
    // PIN, so the case must succeed where it can be read and fail with "permission" elsewhere.
    let locked_pin_file = fx.write_file("locked-pin.txt", "1234\n");
    fs::set_permissions(&locked_pin_file, fs::Permissions::from_mode(0o000))
        .expect("chmod 000 locked-pin.txt");
    let locked_expect = if fs::read(&locked_pin_file).is_ok() {
        Expect::Success
    } else {
        Expect::Provider(&["permission"])
    };
    let module = fx.token().module().display().to_string();
    let huge_label = "a".repeat(100 * 1024);
    let big_label = "b".repeat(60 * 1024);

    // `pkeyutl -sign` with the URI `<token>;<attributes>` (raw ECDSA on a 32-byte hash).
    let sign = |name: &str, attributes: &str, expect: Expect| {
        let uri = if attributes.is_empty() {
            token.clone()
        } else {
            format!("{token};{attributes}")
        };
        Case::new(
            name,
            &[
                "pkeyutl", "-sign", "-inkey", &uri, "-in", &hash, "-out", &signature,
            ],
            expect,
        )
    };
    // `pkeyutl -sign` with a complete URI.
    let sign_raw = |name: &str, uri: &str, expect: Expect| {
        Case::new(
            name,
            &[
                "pkeyutl", "-sign", "-inkey", uri, "-in", &hash, "-out", &signature,
            ],
            expect,
        )
    };
    let store = |name: &str, uri: &str, expect: Expect| {
        Case::new(name, &["storeutl", "-noout", uri], expect)
    };
    let ec = "object=ec;type=private";

    let cases = vec![
        // Baselines: the fixture works, so the failures below are about the input.
        sign("good uri signs", ec, Expect::Success),
        store("good uri lists", &token, Expect::Success),
        // Percent escapes.
        sign_raw("lone %", "pkcs11:object=%", Expect::Provider(PERCENT)),
        sign_raw(
            "%4 (one digit)",
            "pkcs11:object=%4",
            Expect::Provider(PERCENT),
        ),
        sign_raw("%G1", "pkcs11:object=%G1", Expect::Provider(PERCENT)),
        sign_raw("%zz", "pkcs11:object=%zz", Expect::Provider(PERCENT)),
        sign(
            "% at end of label",
            "object=ec%;type=private",
            Expect::Provider(PERCENT),
        ),
        sign_raw(
            "%% in token",
            "pkcs11:token=a%%41",
            Expect::Provider(PERCENT),
        ),
        store(
            "storeutl %zz",
            "pkcs11:object=%zz",
            Expect::Provider(PERCENT),
        ),
        store(
            "storeutl %4 in token",
            "pkcs11:token=%4",
            Expect::Provider(PERCENT),
        ),
        // id= with odd escapes.
        sign(
            "id=%0 (odd)",
            "id=%0;type=private",
            Expect::Provider(PERCENT),
        ),
        sign("id=%%02", "id=%%02;type=private", Expect::Provider(PERCENT)),
        sign("id=%0G", "id=%0G;type=private", Expect::Provider(PERCENT)),
        sign("id=%2 then ;", "id=%2;object=ec", Expect::Provider(PERCENT)),
        // An id given as literal bytes is legal (RFC 7512): "%02" and "\x02" differ from "02".
        sign(
            "id=02 literal (no match)",
            "id=02;type=private",
            Expect::Provider(NO_OBJECT),
        ),
        sign("id=%02 matches", "id=%02;type=private", Expect::Success),
        // Size.
        sign_raw(
            "100 KB label",
            &format!("pkcs11:object={huge_label}"),
            Expect::Provider(TOO_LONG),
        ),
        store(
            "storeutl 100 KB label",
            &format!("pkcs11:object={huge_label}"),
            Expect::Provider(TOO_LONG),
        ),
        sign(
            "60 KB label (under the cap, no match)",
            &format!("object={big_label};type=private"),
            Expect::Provider(NO_OBJECT),
        ),
        // NUL bytes.
        sign_raw(
            "%00 in token",
            "pkcs11:token=p11rs%00test;object=ec",
            Expect::Provider(NUL),
        ),
        sign(
            "%00 in object",
            "object=ec%00;type=private",
            Expect::Provider(NUL),
        ),
        store(
            "storeutl %00 in object",
            "pkcs11:object=%00",
            Expect::Provider(NUL),
        ),
        // Duplicates.
        sign(
            "object twice",
            "object=ec;object=ec;type=private",
            Expect::Provider(TWICE),
        ),
        sign(
            "id twice",
            "id=%02;id=%02;type=private",
            Expect::Provider(TWICE),
        ),
        sign(
            "type twice",
            "type=private;type=private;object=ec",
            Expect::Provider(TWICE),
        ),
        sign(
            "token twice",
            "token=p11rs-test;object=ec",
            Expect::Provider(TWICE),
        ),
        sign(
            "pin-value twice",
            "object=ec;type=private?pin-value=1234&pin-value=1234",
            Expect::Provider(TWICE),
        ),
        sign(
            "pin-value and pin-source",
            &format!("object=ec;type=private?pin-value=1234&pin-source={missing_pin_file}"),
            Expect::Provider(PIN_BOTH),
        ),
        // type= values.
        sign(
            "type=secret",
            "object=ec;type=secret",
            Expect::Provider(UNKNOWN_TYPE),
        ),
        sign(
            "type=PRIVATE",
            "object=ec;type=PRIVATE",
            Expect::Provider(UNKNOWN_TYPE),
        ),
        sign(
            "type= (empty)",
            "object=ec;type=",
            Expect::Provider(UNKNOWN_TYPE),
        ),
        sign(
            "type=%FF",
            "object=ec;type=%FF",
            Expect::Provider(UNKNOWN_TYPE),
        ),
        store(
            "storeutl type=privkey",
            "pkcs11:type=privkey",
            Expect::Provider(UNKNOWN_TYPE),
        ),
        // Text that is not UTF-8.
        sign(
            "%FF%FE in object",
            "object=%FF%FE;type=private",
            Expect::Provider(NOT_UTF8),
        ),
        sign_raw(
            "%C3( in token",
            "pkcs11:token=%C3(",
            Expect::Provider(NOT_UTF8),
        ),
        store(
            "storeutl %80 in object",
            "pkcs11:object=%80",
            Expect::Provider(NOT_UTF8),
        ),
        // Attribute syntax.
        sign_raw("empty name", "pkcs11:=ec", Expect::Provider(EMPTY_NAME)),
        sign(
            "empty name after ;",
            "object=ec;=x",
            Expect::Provider(EMPTY_NAME),
        ),
        sign("missing =", "object", Expect::Provider(NO_EQUALS)),
        sign(
            "missing = after type",
            "object=ec;type",
            Expect::Provider(NO_EQUALS),
        ),
        sign("space in name", "obj ect=ec", Expect::Provider(BAD_NAME)),
        sign(
            "raw space in value",
            "object=e c",
            Expect::Provider(MUST_ESCAPE),
        ),
        sign(
            "raw / in path value",
            "object=e/c",
            Expect::Provider(MUST_ESCAPE),
        ),
        sign(
            "raw | in value",
            "object=e|c",
            Expect::Provider(MUST_ESCAPE),
        ),
        // The parser skips empty components on purpose (src/uri/parse.rs `parse_section`), though
        // RFC 7512's grammar has no empty attribute: a stray ';' is harmless.
        sign(
            ";; between attributes",
            "object=ec;;type=private",
            Expect::Success,
        ),
        sign("trailing ;", "object=ec;type=private;", Expect::Success),
        // Vendor (`x-`) path attributes and unknown query attributes are ignored (RFC 7512
        // §2.3) but must be well-formed; any other unknown path attribute is refused by name,
        // since skipping a misspelt one would select another key (issue 15).
        sign(
            "unknown x-vendor attribute",
            "object=ec;type=private;x-vendor=1",
            Expect::Success,
        ),
        sign(
            "unknown plain attribute",
            "object=ec;type=private;color=blue",
            Expect::Provider(&["unknown attribute 'color'"]),
        ),
        sign(
            "unknown query attribute",
            "object=ec;type=private?color=blue",
            Expect::Success,
        ),
        sign(
            "unknown attribute with %zz",
            "object=ec;type=private;x-vendor=%zz",
            Expect::Provider(PERCENT),
        ),
        // Wrong scheme: no store loader claims it, OpenSSL then tries it as a file name.
        sign_raw(
            "pkcs12: scheme",
            "pkcs12:object=ec;type=private",
            Expect::Rejected(UNREADABLE_KEY),
        ),
        sign_raw(
            "pkcs11 without colon",
            "pkcs11object=ec",
            Expect::Rejected(UNREADABLE_KEY),
        ),
        // Query-only garbage.
        sign_raw(
            "pkcs11:?garbage",
            "pkcs11:?garbage",
            Expect::Provider(NO_EQUALS),
        ),
        sign_raw("pkcs11:?=x", "pkcs11:?=x", Expect::Provider(EMPTY_NAME)),
        sign_raw("pkcs11:?%zz=1", "pkcs11:?%zz=1", Expect::Provider(BAD_NAME)),
        // A URI that names no object is a listing (src/ops/store.rs `resolve`): the provider cannot
        // tell `pkeyutl` from `storeutl -keys`, and `pkeyutl` takes the first of the two keys.
        // Only a URI that names an object (label or id) must match one key (see below).
        sign("token only: two keys, first taken", "", Expect::Success),
        // Only empty query components: the same listing, of every token.
        sign_raw("pkcs11:?&&&", "pkcs11:?&&&", Expect::Success),
        sign(
            "label names two keys",
            "object=twin;type=private",
            Expect::Provider(AMBIGUOUS),
        ),
        sign(
            "label and id disagree",
            "object=ec;id=%04",
            Expect::Provider(NO_OBJECT),
        ),
        // pin-source.
        sign(
            "pin-source: missing file",
            &format!("object=ec;type=private?pin-source={missing_pin_file}"),
            Expect::Provider(PIN_SOURCE_UNUSABLE),
        )
        .avoiding(CONFIG_PIN_KEY),
        sign(
            "pin-source: file: URI, missing",
            &format!("object=ec;type=private?pin-source=file:{missing_pin_file}"),
            Expect::Provider(PIN_SOURCE_UNUSABLE),
        )
        .avoiding(CONFIG_PIN_KEY),
        sign(
            "pin-source: a directory",
            &format!("object=ec;type=private?pin-source={pin_directory}"),
            Expect::Provider(PIN_SOURCE_UNUSABLE),
        )
        .avoiding(CONFIG_PIN_KEY),
        sign(
            "pin-source: chmod 000 file",
            &format!("object=ec;type=private?pin-source={locked_pin_file}"),
            locked_expect,
        ),
        sign(
            "pin-source: https URL",
            "object=ec;type=private?pin-source=https://example.invalid/pin",
            Expect::Provider(PIN_SOURCE_SCHEME),
        ),
        sign(
            "pin-source: remote file host",
            "object=ec;type=private?pin-source=file://otherhost/pin",
            Expect::Provider(PIN_SOURCE_SCHEME),
        ),
        store(
            "storeutl pin-source: missing file",
            &format!("{token}?pin-source={missing_pin_file}"),
            Expect::Provider(PIN_SOURCE_UNUSABLE),
        ),
        // Numbers.
        sign(
            "slot-id=abc",
            "slot-id=abc;object=ec",
            Expect::Provider(NUMBER),
        ),
        sign(
            "slot-id=-1",
            "slot-id=-1;object=ec",
            Expect::Provider(NUMBER),
        ),
        sign(
            "slot-id=20 digits",
            "slot-id=99999999999999999999",
            Expect::Provider(TOO_LARGE),
        ),
        sign(
            "slot-id= (empty)",
            "slot-id=;object=ec",
            Expect::Provider(NUMBER),
        ),
        sign(
            "slot-id=2^64-1 (no slot)",
            "slot-id=18446744073709551615;object=ec",
            Expect::Provider(NO_OBJECT),
        ),
        sign(
            "library-version=x",
            "library-version=x;object=ec",
            Expect::Provider(VERSION),
        ),
        sign(
            "library-version=256",
            "library-version=256;object=ec",
            Expect::Provider(VERSION),
        ),
        // module-path / module-name.
        sign(
            "module-path: another module",
            "object=ec;type=private?module-path=/usr/lib/other-pkcs11.so",
            Expect::Provider(MODULE_PATH),
        ),
        sign(
            "module-path: the configured module",
            &format!("object=ec;type=private?module-path={module}"),
            Expect::Success,
        ),
        // Well-formed URIs that match nothing.
        sign_raw(
            "no such token",
            "pkcs11:token=nope",
            Expect::Provider(NO_OBJECT),
        ),
        sign_raw(
            "no such token, object named",
            "pkcs11:token=nope;object=ec;type=private",
            Expect::Provider(NO_OBJECT),
        ),
        // No token attribute: an absent attribute matches anything (RFC 7512), so the key is
        // found on whichever token holds it. SoftHSM2 always adds a slot with an uninitialised
        // token, which must be skipped, not make the search fail.
        sign_raw(
            "no token attribute",
            "pkcs11:object=ec;type=private",
            Expect::Success,
        ),
        sign(
            "no such object",
            "object=nope;type=private",
            Expect::Provider(NO_OBJECT),
        ),
        sign(
            "type=cert for signing",
            "object=ec;type=cert",
            Expect::Provider(&["certificate"]),
        ),
        sign(
            "type=public for signing",
            "object=ec;type=public",
            Expect::Provider(NOT_PRIVATE),
        ),
    ];
    run_table(&mut fx, "malformed URIs", &cases, |_, _| {});
}

/// `(config key, value, expectation)`; the key `pkcs11-module-path` and `pkcs11-module-token-pin`
/// replace the fixture's own lines.
type ConfigCase = (&'static str, String, Expect);

#[test]
fn bad_config_values() {
    let mut fx = Fixture::new("badinput-config");
    fx.generate_key(KeyType::EcP256, "02", "ec");
    let hash = fx.write_file("hash32.bin", [0x5a; 32]);
    let signature = fx.file("out.sig");
    let uri = fx.private_key_uri("ec");
    let text_module = fx.write_file("not-a-module.so", "this is not a shared library\n");
    let directory = fx.file("a-directory");
    fs::create_dir_all(&directory).expect("create directory");
    let missing = fx.file("does-not-exist");
    let libz = non_pkcs11_library();

    const MODULE: &str = "pkcs11-module-path";
    const INIT_ARGS: &[&str] = &["pkcs11-module-init-args", "CKR_ARGUMENTS_BAD"];
    const PIN: &str = "pkcs11-module-token-pin";
    let key = |name: &'static str| -> &'static [&'static str] {
        // Leaked once per key: the word lists live as long as the test.
        Box::leak(Box::new([name]))
    };
    let config_cases: Vec<ConfigCase> = vec![
        // Baseline.
        ("pkcs11-module-quirks", "no-deinit".into(), Expect::Success),
        // The module.
        (
            MODULE,
            missing.clone(),
            Expect::Provider(&["no such file", "cannot open"]),
        ),
        (
            MODULE,
            (*libz).to_owned(),
            Expect::Provider(NOT_PKCS11_WORDS),
        ),
        (MODULE, text_module, Expect::Provider(NOT_PKCS11_WORDS)),
        (
            MODULE,
            directory.clone(),
            Expect::Provider(&["directory", "cannot load", "not a pkcs#11"]),
        ),
        // `pReserved` is opaque to the provider; SoftHSM2 refuses any non-NULL value, and the
        // error names C_Initialize and its return code.
        (
            "pkcs11-module-init-args",
            "bogus=1;%zz".into(),
            Expect::Provider(INIT_ARGS),
        ),
        (
            "pkcs11-module-init-args",
            "x".repeat(10_000),
            Expect::Provider(INIT_ARGS),
        ),
        // The PIN.
        (PIN, format!("file:{missing}"), Expect::Provider(key(PIN))),
        (PIN, "file:".into(), Expect::Provider(key(PIN))),
        (PIN, format!("file:{directory}"), Expect::Provider(key(PIN))),
        (PIN, "0000".into(), Expect::Provider(&["CKR_PIN_INCORRECT"])),
        // Enumerations and numbers (src/config/mod.rs validates each).
        (
            "pkcs11-module-login-behavior",
            "bogus".into(),
            Expect::Provider(key("pkcs11-module-login-behavior")),
        ),
        (
            "pkcs11-module-login-behavior",
            "AUTO".into(),
            Expect::Provider(key("pkcs11-module-login-behavior")),
        ),
        // Valid, but a private key then cannot be used.
        (
            "pkcs11-module-login-behavior",
            "never".into(),
            Expect::Provider(&["login"]),
        ),
        // An empty value counts as absent (`key =` in openssl.cnf yields ""), see src/config/mod.rs.
        (
            "pkcs11-module-login-behavior",
            String::new(),
            Expect::Success,
        ),
        (
            "pkcs11-module-load-behavior",
            "bogus".into(),
            Expect::Provider(key("pkcs11-module-load-behavior")),
        ),
        (
            "pkcs11-module-cache-pins",
            "bogus".into(),
            Expect::Provider(key("pkcs11-module-cache-pins")),
        ),
        (
            "pkcs11-module-cache-keys",
            "maybe".into(),
            Expect::Provider(key("pkcs11-module-cache-keys")),
        ),
        (
            "pkcs11-module-cache-sessions",
            "-1".into(),
            Expect::Provider(key("pkcs11-module-cache-sessions")),
        ),
        (
            "pkcs11-module-cache-sessions",
            "abc".into(),
            Expect::Provider(key("pkcs11-module-cache-sessions")),
        ),
        (
            "pkcs11-module-cache-sessions",
            "99999999999999999999".into(),
            Expect::Provider(key("pkcs11-module-cache-sessions")),
        ),
        (
            "pkcs11-module-cache-sessions",
            "1025".into(),
            Expect::Provider(key("pkcs11-module-cache-sessions")),
        ),
        (
            "pkcs11-module-quirks",
            "bogus".into(),
            Expect::Provider(key("pkcs11-module-quirks")),
        ),
        (
            "pkcs11-module-quirks",
            "no-deinit bogus".into(),
            Expect::Provider(key("pkcs11-module-quirks")),
        ),
        (
            "pkcs11-module-block-operations",
            "bogus".into(),
            Expect::Provider(key("pkcs11-module-block-operations")),
        ),
        (
            "pkcs11-module-allow-export",
            "2".into(),
            Expect::Provider(key("pkcs11-module-allow-export")),
        ),
        (
            "pkcs11-module-allow-export",
            "true".into(),
            Expect::Provider(key("pkcs11-module-allow-export")),
        ),
        (
            "pkcs11-module-encode-provider-uri-to-pem",
            "perhaps".into(),
            Expect::Provider(key("pkcs11-module-encode-provider-uri-to-pem")),
        ),
    ];
    let cases: Vec<Case> = config_cases
        .iter()
        .map(|(key, value, expect)| {
            let shown: String = value.chars().take(40).collect();
            Case::new(
                format!("{key} = {shown}"),
                &[
                    "pkeyutl", "-sign", "-inkey", &uri, "-in", &hash, "-out", &signature,
                ],
                *expect,
            )
        })
        .collect();
    let original = {
        let config = fx.config_mut();
        (
            config.module_path.clone(),
            config.token_pin.clone(),
            config.settings.clone(),
        )
    };
    let mut index = 0;
    run_table(&mut fx, "bad config values", &cases, |fx, case| {
        let config = fx.config_mut();
        if case.is_none() {
            config.module_path = original.0.clone();
            config.token_pin = original.1.clone();
            config.settings = original.2.clone();
            index += 1;
            return;
        }
        let (key, value, _) = &config_cases[index];
        match *key {
            MODULE => config.module_path = Some(PathBuf::from(value)),
            PIN => config.token_pin = Some(value.clone()),
            _ => config.set(key, value),
        }
    });
}

const PEM_BEGIN: &str = "-----BEGIN PKCS#11 PROVIDER URI-----";
const PEM_END: &str = "-----END PKCS#11 PROVIDER URI-----";

/// A PEM-URI block larger than the decoder reads.
const TOO_BIG_FILE: &[&str] = &["64 kib", "too large", "too long", "longer than"];
/// Words of src/pemuri.rs's messages for a garbled block.
const GARBLED: &[&str] = &["malformed pkcs#11 provider uri pem block"];
/// OpenSSL's words when no decoder could make a key of the file: "Could not read private key
/// from ..." (3.0), "Could not find private key from ..." (3.5), "Could not find or decode
/// private key from ..." (4.0), or a PEM reader's complaint.
fn not_a_key() -> &'static [&'static str] {
    if openssl_at_least(4, 0) {
        &NOT_A_KEY_4_0
    } else if openssl_at_least(3, 5) {
        &NOT_A_KEY_3_5
    } else {
        &NOT_A_KEY_3_0
    }
}

const NOT_A_KEY_3_0: [&str; 7] = not_a_key_words("could not read");
const NOT_A_KEY_3_5: [&str; 7] = not_a_key_words("could not find private key");
const NOT_A_KEY_4_0: [&str; 7] = not_a_key_words("could not find or decode private key");

const fn not_a_key_words(app_message: &'static str) -> [&'static str; 7] {
    [
        app_message,
        "unable to load",
        "no supported data",
        "unsupported",
        "bad base64",
        "bad end line",
        "no start line",
    ]
}

#[test]
fn broken_pem_uri_files() {
    let mut fx = Fixture::new("badinput-pemuri");
    fx.generate_key(KeyType::EcP256, "02", "ec");
    let hash = fx.write_file("hash32.bin", [0x5a; 32]);
    let signature = fx.file("out.sig");
    let uri = fx.private_key_uri("ec");
    let good = pem(PEM_URI_LABEL, &pem_uri_der(PEM_URI_DESCRIPTION, &uri));
    let lines: Vec<&str> = good.lines().collect();
    let body_line = lines[1];
    let huge_uri = format!("pkcs11:object={}", "a".repeat(1024 * 1024));
    let big_uri = format!("pkcs11:object={}", "a".repeat(100 * 1024));
    let mut trailing_element = pem_uri_der(PEM_URI_DESCRIPTION, &uri);
    trailing_element.extend([0x05, 0x00]);
    let mut inner_trailing = {
        let mut body = der_element(0x1a, PEM_URI_DESCRIPTION.as_bytes());
        body.extend(der_element(0x0c, uri.as_bytes()));
        body.extend(der_element(0x02, &[1]));
        body
    };
    inner_trailing = der_element(0x30, &inner_trailing);
    let utf8_description = {
        let mut body = der_element(0x0c, PEM_URI_DESCRIPTION.as_bytes());
        body.extend(der_element(0x0c, uri.as_bytes()));
        der_element(0x30, &body)
    };

    // (name, file contents, expectation).
    let files: Vec<(&str, String, Expect)> = vec![
        ("good file", good.clone(), Expect::Success),
        (
            "truncated (no END line)",
            good[..good.len() / 2].to_owned(),
            Expect::Rejected(not_a_key()),
        ),
        (
            "body cut short",
            format!(
                "{PEM_BEGIN}\n{}\n{PEM_END}\n",
                &body_line[..body_line.len() - 5]
            ),
            Expect::Rejected(not_a_key()),
        ),
        (
            "bad base64",
            good.replacen(&body_line[..4], "!!!!", 1),
            Expect::Rejected(not_a_key()),
        ),
        (
            "empty body",
            format!("{PEM_BEGIN}\n{PEM_END}\n"),
            Expect::Rejected(not_a_key()),
        ),
        (
            "wrong description v9.9",
            pem(
                PEM_URI_LABEL,
                &pem_uri_der("PKCS#11 Provider URI v9.9", &uri),
            ),
            Expect::Provider(GARBLED),
        ),
        (
            "unrelated description",
            pem(PEM_URI_LABEL, &pem_uri_der("Hello", &uri)),
            Expect::Provider(GARBLED),
        ),
        (
            "description as UTF8String",
            pem(PEM_URI_LABEL, &utf8_description),
            Expect::Provider(GARBLED),
        ),
        (
            "file: URI inside",
            pem(
                PEM_URI_LABEL,
                &pem_uri_der(PEM_URI_DESCRIPTION, "file:/etc/passwd"),
            ),
            Expect::Provider(GARBLED),
        ),
        (
            "empty URI",
            pem(PEM_URI_LABEL, &pem_uri_der(PEM_URI_DESCRIPTION, "")),
            Expect::Provider(GARBLED),
        ),
        (
            "URI with a bad escape",
            pem(
                PEM_URI_LABEL,
                &pem_uri_der(PEM_URI_DESCRIPTION, "pkcs11:object=%zz"),
            ),
            Expect::Provider(PERCENT),
        ),
        (
            "URI naming no object",
            pem(
                PEM_URI_LABEL,
                &pem_uri_der(PEM_URI_DESCRIPTION, &fx.private_key_uri("nope")),
            ),
            Expect::Provider(NO_OBJECT),
        ),
        (
            "100 KB URI",
            pem(PEM_URI_LABEL, &pem_uri_der(PEM_URI_DESCRIPTION, &big_uri)),
            // The decoder reads at most 64 KiB (READ_LIMIT in src/edge/decoder.rs).
            Expect::Provider(TOO_BIG_FILE),
        ),
        (
            "element after the SEQUENCE",
            pem(PEM_URI_LABEL, &trailing_element),
            Expect::Provider(GARBLED),
        ),
        (
            "third element in the SEQUENCE",
            pem(PEM_URI_LABEL, &inner_trailing),
            Expect::Provider(GARBLED),
        ),
        // Two blocks: OpenSSL's PEM reader takes the first, as for any key file.
        (
            "two blocks, good first",
            format!(
                "{good}{}",
                pem(
                    PEM_URI_LABEL,
                    &pem_uri_der(PEM_URI_DESCRIPTION, "pkcs11:object=%zz")
                )
            ),
            Expect::Success,
        ),
    ];
    // A 1 MB file takes OpenSSL 3.0's own PEM reader about 10 s (30 s with the provider
    // loaded), so it runs once, through `pkey` only.
    let megabyte_file = fx.write_file(
        "megabyte.pem",
        pem(PEM_URI_LABEL, &pem_uri_der(PEM_URI_DESCRIPTION, &huge_uri)),
    );
    let mut cases = vec![Case::new(
        "pkey: 1 MB URI",
        &["pkey", "-in", &megabyte_file, "-pubout"],
        Expect::Provider(TOO_BIG_FILE),
    )];
    for (index, (name, contents, expect)) in files.iter().enumerate() {
        let file = fx.write_file(&format!("case-{index}.pem"), contents);
        cases.push(Case::new(
            format!("pkey: {name}"),
            &["pkey", "-in", &file, "-pubout"],
            *expect,
        ));
        cases.push(Case::new(
            format!("pkeyutl: {name}"),
            &[
                "pkeyutl", "-sign", "-inkey", &file, "-in", &hash, "-out", &signature,
            ],
            *expect,
        ));
    }
    run_table(&mut fx, "broken PEM-URI files", &cases, |_, _| {});
}

#[test]
fn operations_the_key_cannot_do() {
    let mut fx = three_key_fixture("badinput-operations");
    let hash = fx.write_file("hash32.bin", [0x5a; 32]);
    let hash20 = fx.write_file("hash20.bin", [0x5a; 20]);
    let megabyte = fx.write_file("megabyte.bin", vec![0x41; 1024 * 1024]);
    let bytes64 = fx.write_file("64.bin", [0x42; 64]);
    let over_modulus = fx.write_file("257.bin", [0x01; 257]);
    let message = fx.message("message.txt");
    let signature = fx.file("out.sig");
    let rsa = fx.private_key_uri("rsa");
    let ec = fx.private_key_uri("ec");
    let ed = fx.private_key_uri("ed");
    let rsa_public = fx.uri("object=rsa;type=public");

    let pkeyutl = |name: &str, key: &str, input: &str, extra: &[&str], expect: Expect| {
        let mut args = vec![
            "pkeyutl", "-sign", "-inkey", key, "-in", input, "-out", &signature,
        ];
        args.extend_from_slice(extra);
        Case::new(name, &args, expect)
    };
    // pkeyutl's own refusal of a non-raw input longer than a digest: "looks too long to be a
    // hash" (3.0), "is too long - max supported hashed size is 64" (3.5 and later).
    let not_a_hash: &[&str] = if openssl_at_least(3, 5) {
        &["too long - max supported hashed size"]
    } else {
        &["too long to be a hash"]
    };
    let cases = vec![
        // Baselines.
        pkeyutl(
            "rsa pkcs1 on sha256",
            &rsa,
            &hash,
            &["-pkeyopt", "digest:sha256"],
            Expect::Success,
        ),
        pkeyutl("ec on hash", &ec, &hash, &[], Expect::Success),
        pkeyutl(
            "ed25519 -rawin",
            &ed,
            &message,
            &["-rawin"],
            Expect::Success,
        ),
        // Padding/options that do not fit the key type.
        pkeyutl(
            "ec with rsa_padding_mode:pss",
            &ec,
            &hash,
            &["-pkeyopt", "rsa_padding_mode:pss"],
            Expect::Rejected(&["rsa_padding_mode", "parameter", "error setting"]),
        ),
        pkeyutl(
            "rsa with rsa_padding_mode:oaep",
            &rsa,
            &hash,
            &["-pkeyopt", "rsa_padding_mode:oaep"],
            Expect::Rejected(&["padding", "oaep", "parameter"]),
        ),
        pkeyutl(
            "rsa with digest:nosuch",
            &rsa,
            &hash,
            &["-pkeyopt", "digest:nosuch"],
            Expect::Rejected(&["digest", "nosuch"]),
        ),
        pkeyutl(
            "rsa pss saltlen 9999",
            &rsa,
            &hash,
            &[
                "-pkeyopt",
                "rsa_padding_mode:pss",
                "-pkeyopt",
                "digest:sha256",
                "-pkeyopt",
                "rsa_pss_saltlen:9999",
            ],
            Expect::Provider(&["salt"]),
        ),
        // OpenSSL 3.0's pkeyutl refuses an EdDSA key without -rawin; 3.5 and later take the
        // input as the message (as -rawin does; `ed25519_without_rawin_signs_the_message`).
        pkeyutl(
            "ed25519 without -rawin",
            &ed,
            &hash,
            &[],
            if openssl_at_least(3, 5) {
                Expect::Success
            } else {
                Expect::Rejected(&["rawin", "not supported", "operation"])
            },
        ),
        pkeyutl(
            "ed25519 -rawin -digest sha256",
            &ed,
            &message,
            &["-rawin", "-digest", "sha256"],
            Expect::Rejected(&["digest", "not supported", "invalid"]),
        ),
        Case::new(
            "dgst -sha256 with ed25519",
            &[
                "dgst", "-sha256", "-sign", &ed, "-out", &signature, &message,
            ],
            Expect::Rejected(&["digest", "not supported", "invalid", "error setting"]),
        ),
        pkeyutl(
            "rsa public-key URI",
            &rsa_public,
            &hash,
            &[],
            Expect::Provider(NOT_PRIVATE),
        ),
        // Input sizes. Without -rawin, OpenSSL 3.0's pkeyutl refuses more than 64 bytes ("looks
        // too long to be a hash") before any provider is asked, so a 1 MB input or one longer
        // than the modulus never reaches the token; inputs up to 64 bytes do.
        pkeyutl(
            "rsa pkcs1, 1 MB",
            &rsa,
            &megabyte,
            &[],
            Expect::Rejected(not_a_hash),
        ),
        pkeyutl(
            "rsa no padding, 257 bytes",
            &rsa,
            &over_modulus,
            &["-pkeyopt", "rsa_padding_mode:none"],
            Expect::Rejected(not_a_hash),
        ),
        pkeyutl(
            "ec, 1 MB",
            &ec,
            &megabyte,
            &[],
            Expect::Rejected(not_a_hash),
        ),
        // PKCS#1 v1.5 without a digest signs the bytes as given (up to k - 11 bytes).
        pkeyutl(
            "rsa pkcs1, 64 bytes, no digest",
            &rsa,
            &bytes64,
            &[],
            Expect::Success,
        ),
        // Raw RSA: OpenSSL's default provider wants exactly the modulus size (256 bytes) and
        // refuses shorter input; a provider that zero-pads instead signs something else than
        // the caller meant.
        pkeyutl(
            "rsa no padding, 64 bytes",
            &rsa,
            &bytes64,
            &["-pkeyopt", "rsa_padding_mode:none"],
            Expect::Provider(&["length", "size", "bytes", "CKR_DATA_LEN_RANGE"]),
        ),
        // ECDSA on an input longer than the group order: X9.62 uses its leftmost bits.
        pkeyutl("ec, 64-byte input", &ec, &bytes64, &[], Expect::Success),
        pkeyutl(
            "rsa digest:sha256, 20-byte input",
            &rsa,
            &hash20,
            &["-pkeyopt", "digest:sha256"],
            Expect::Provider(&["length", "size", "20"]),
        ),
        pkeyutl(
            "rsa digest:sha256, 64-byte input",
            &rsa,
            &bytes64,
            &["-pkeyopt", "digest:sha256"],
            Expect::Provider(&["length", "size", "64"]),
        ),
    ];
    run_table(&mut fx, "operations the key cannot do", &cases, |_, _| {});
}

/// `pkeyutl -sign` with an Ed25519 token key and no `-rawin`: OpenSSL 3.0 refuses it (EdDSA signs
/// messages, not digests); 3.5 and later sign the input as the message, and the signature must
/// then verify as an Ed25519 signature of exactly that input (default provider, token's key).
#[test]
fn ed25519_without_rawin_signs_the_message() {
    let fx = Fixture::new("badinput-ed25519-no-rawin");
    fx.generate_key(KeyType::Ed25519, "03", "ed");
    let message = fx.write_file("input.bin", [0x5a; 32]);
    let signature = fx.file("input.sig");
    let uri = fx.private_key_uri("ed");
    let run = fx.openssl(&[
        "pkeyutl", "-sign", "-inkey", &uri, "-in", &message, "-out", &signature,
    ]);
    if !openssl_at_least(3, 5) {
        run.clean_failure()
            .assert_stderr_mentions(&["rawin", "not supported", "operation"]);
        return;
    }
    let signed = run.success();
    let public_key = fx.export_pubkey("03");
    let check = SignatureCheck::new(&public_key, &message, &signature, None);
    fx.assert_valid_signature(&check, &signed);
}
