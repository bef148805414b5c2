//! Unit tests of `crate::config`: every key, its values and its error messages, and that no
//! PIN reaches `Debug` output or an error.

use super::*;
use std::cell::RefCell;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let pairs: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |key| {
        assert!(Config::KEYS.contains(&key), "asked for unlisted key {key}");
        pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
    }
}

fn no_env(_: &str) -> Option<String> {
    None
}

fn parse(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
    Config::from_lookup(lookup(pairs), no_env)
}

fn parse_err(key: &str, value: &str) -> String {
    let err = parse(&[(key, value)]).unwrap_err();
    assert_eq!(err.key(), key);
    err.to_string()
}

/// A file in the temp dir, removed on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn with(content: &[u8]) -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "pkcs11-ossl-config-test-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let path = std::env::temp_dir().join(name);
        std::fs::write(&path, content).unwrap();
        TempFile(path)
    }

    fn pin_value(&self) -> String {
        format!("file:{}", self.0.display())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn pin_from_file(content: &[u8]) -> Result<Config, ConfigError> {
    let file = TempFile::with(content);
    parse(&[(TOKEN_PIN, &file.pin_value())])
}

#[test]
fn defaults() {
    let c = parse(&[]).unwrap();
    assert_eq!(c.module_path, None);
    assert_eq!(c.init_args, None);
    assert!(c.token_pin.is_none());
    assert_eq!(c.login_behavior, LoginBehavior::Auto);
    assert_eq!(c.load_behavior, LoadBehavior::Lazy);
    assert_eq!(c.quirks, Quirks::default());
    assert_eq!(c.cache_pins, CachePins::Never);
    assert!(c.cache_keys);
    assert_eq!(c.cache_sessions, 5);
    assert!(c.block_operations.is_empty());
    assert!(c.allow_export);
    assert!(!c.encode_provider_uri_to_pem);
    assert_eq!(c.uri_unknown_attributes, UnknownAttributes::Reject);
    assert_eq!(format!("{c:?}"), format!("{:?}", Config::default()));
}

#[test]
fn asks_for_every_key_and_only_listed_ones() {
    let asked = RefCell::new(Vec::new());
    Config::from_lookup(
        |key| {
            asked.borrow_mut().push(key.to_owned());
            None
        },
        no_env,
    )
    .unwrap();
    let mut asked = asked.into_inner();
    asked.sort();
    let mut keys: Vec<String> = Config::KEYS.iter().map(|k| k.to_string()).collect();
    keys.sort();
    assert_eq!(asked, keys);
}

#[test]
fn empty_values_count_as_absent() {
    let pairs: Vec<(&str, &str)> = Config::KEYS.iter().map(|k| (*k, "")).collect();
    let c = parse(&pairs).unwrap();
    assert_eq!(format!("{c:?}"), format!("{:?}", Config::default()));
}

#[test]
fn module_path_and_env_override() {
    let c = parse(&[(MODULE_PATH, "/usr/lib/softhsm/libsofthsm2.so")]).unwrap();
    assert_eq!(
        c.module_path.as_deref(),
        Some("/usr/lib/softhsm/libsofthsm2.so")
    );

    let env = |name: &str| (name == MODULE_PATH_ENV).then(|| "/opt/other.so".to_owned());
    let c = Config::from_lookup(lookup(&[(MODULE_PATH, "/cnf.so")]), env).unwrap();
    assert_eq!(c.module_path.as_deref(), Some("/opt/other.so"));
    let c = Config::from_lookup(lookup(&[]), env).unwrap();
    assert_eq!(c.module_path.as_deref(), Some("/opt/other.so"));

    // An empty variable does not hide the configured path.
    let empty_env = |_: &str| Some(String::new());
    let c = Config::from_lookup(lookup(&[(MODULE_PATH, "/cnf.so")]), empty_env).unwrap();
    assert_eq!(c.module_path.as_deref(), Some("/cnf.so"));
}

#[test]
fn init_args() {
    let c = parse(&[(INIT_ARGS, "configdir='sql:/etc/pki/nssdb'")]).unwrap();
    assert_eq!(
        c.init_args.as_deref(),
        Some("configdir='sql:/etc/pki/nssdb'")
    );
}

#[test]
fn literal_pin() {
    let c = parse(&[(TOKEN_PIN, "1234")]).unwrap();
    assert_eq!(c.token_pin.as_deref().map(String::as_str), Some("1234"));
}

#[test]
fn pin_file_first_line() {
    let c = pin_from_file(b"secret\nsecond line\n").unwrap();
    assert_eq!(c.token_pin.as_deref().map(String::as_str), Some("secret"));
    let c = pin_from_file(b"no newline").unwrap();
    assert_eq!(
        c.token_pin.as_deref().map(String::as_str),
        Some("no newline")
    );
}

#[test]
fn pin_file_crlf() {
    let c = pin_from_file(b"s3cret\r\nmore\r\n").unwrap();
    assert_eq!(c.token_pin.as_deref().map(String::as_str), Some("s3cret"));
}

#[test]
fn pin_file_utf8() {
    let c = pin_from_file("pässwörd\n".as_bytes()).unwrap();
    assert_eq!(c.token_pin.as_deref().map(String::as_str), Some("pässwörd"));
}

#[test]
fn pin_file_missing() {
    let path = std::env::temp_dir().join("pkcs11-ossl-config-test-does-not-exist");
    let value = format!("file:{}", path.display());
    let msg = parse_err(TOKEN_PIN, &value);
    assert!(msg.starts_with("pkcs11-module-token-pin: cannot open PIN file"));
    assert!(msg.contains(&path.display().to_string()));
    assert!(msg.contains("No such file"), "{msg}");
}

#[test]
fn pin_file_that_is_a_fifo_is_refused_without_blocking() {
    let dir = std::env::temp_dir().join(format!("pkcs11-ossl-fifo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let fifo = dir.join("pin.fifo");
    let _ = std::fs::remove_file(&fifo);
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    // Nobody ever writes to the FIFO: a blocking open would never return.
    let msg = parse_err(TOKEN_PIN, &format!("file:{}", fifo.display()));
    assert!(msg.contains("not a regular file"), "{msg}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn quirks_none_is_accepted_and_marks_the_list_as_configured() {
    let c = parse(&[(QUIRKS, "none")]).unwrap();
    assert_eq!(c.quirks, Quirks::default());
    assert!(c.quirks_configured);
    assert!(!parse(&[]).unwrap().quirks_configured);
}

#[test]
fn key_file_pins_values() {
    assert_eq!(parse(&[]).unwrap().key_file_pins, KeyFilePins::Ignore);
    assert_eq!(
        parse(&[(KEY_FILE_PINS, "use")]).unwrap().key_file_pins,
        KeyFilePins::Use
    );
    assert_eq!(
        parse(&[(KEY_FILE_PINS, "ignore")]).unwrap().key_file_pins,
        KeyFilePins::Ignore
    );
    assert!(parse_err(KEY_FILE_PINS, "yes").contains("ignore or use"));
}

#[test]
fn pin_file_is_a_directory() {
    let dir = std::env::temp_dir();
    let msg = parse_err(TOKEN_PIN, &format!("file:{}", dir.display()));
    assert!(msg.contains("PIN file"), "{msg}");
}

#[test]
fn pin_file_empty() {
    let msg = pin_from_file(b"").unwrap_err().to_string();
    assert!(msg.contains("has no PIN on its first line"), "{msg}");
    let msg = pin_from_file(b"\nsecret\n").unwrap_err().to_string();
    assert!(msg.contains("has no PIN on its first line"), "{msg}");
    assert!(!msg.contains("secret"));
    let msg = pin_from_file(b"\r\n").unwrap_err().to_string();
    assert!(msg.contains("has no PIN on its first line"), "{msg}");
}

#[test]
fn pin_file_not_utf8() {
    let err = pin_from_file(b"ab\xff\xfecd\n").unwrap_err();
    let msg = err.to_string();
    assert!(msg.ends_with("is not valid UTF-8"), "{msg}");
    assert!(!msg.contains("ab"));
    // Only the first line is read, so invalid bytes after it do not matter.
    let c = pin_from_file(b"good\n\xff\xfe\n").unwrap();
    assert_eq!(c.token_pin.as_deref().map(String::as_str), Some("good"));
}

#[test]
fn pin_file_line_too_long() {
    let mut content = vec![b'x'; PIN_FILE_MAX_LINE];
    assert!(
        pin_from_file(&content)
            .unwrap_err()
            .to_string()
            .contains("longer than")
    );
    // One byte less still fits, with or without its newline.
    content.truncate(PIN_FILE_MAX_LINE - 1);
    assert_eq!(
        pin_from_file(&content).unwrap().token_pin.unwrap().len(),
        PIN_FILE_MAX_LINE - 1
    );
    content.push(b'\n');
    assert_eq!(
        pin_from_file(&content).unwrap().token_pin.unwrap().len(),
        PIN_FILE_MAX_LINE - 1
    );
}

#[test]
fn pin_file_without_path() {
    let msg = parse_err(TOKEN_PIN, "file:");
    assert_eq!(
        msg,
        "pkcs11-module-token-pin: 'file:' must be followed by a path"
    );
}

#[test]
fn debug_redacts_pin() {
    let c = parse(&[(TOKEN_PIN, "topsecret1234")]).unwrap();
    let debug = format!("{c:?}");
    assert!(!debug.contains("topsecret1234"), "{debug}");
    assert!(debug.contains("token_pin: Some(\"<redacted>\")"), "{debug}");
    let debug = format!("{c:#?}");
    assert!(!debug.contains("topsecret1234"), "{debug}");

    let c = pin_from_file(b"filesecret\n").unwrap();
    assert!(!format!("{c:?}").contains("filesecret"));
    assert!(format!("{:?}", parse(&[]).unwrap()).contains("token_pin: None"));
}

#[test]
fn login_behavior_values() {
    for (value, expected) in [
        ("auto", LoginBehavior::Auto),
        ("always", LoginBehavior::Always),
        ("never", LoginBehavior::Never),
    ] {
        let c = parse(&[(LOGIN_BEHAVIOR, value)]).unwrap();
        assert_eq!(c.login_behavior, expected);
    }
    assert_eq!(
        parse_err(LOGIN_BEHAVIOR, "sometimes"),
        "pkcs11-module-login-behavior: unknown value 'sometimes' \
         (expected auto, always or never)"
    );
}

#[test]
fn load_behavior_values() {
    let c = parse(&[(LOAD_BEHAVIOR, "early")]).unwrap();
    assert_eq!(c.load_behavior, LoadBehavior::Early);
    assert_eq!(
        parse_err(LOAD_BEHAVIOR, "late"),
        "pkcs11-module-load-behavior: unknown value 'late' (expected early)"
    );
}

#[test]
fn cache_pins_values() {
    let c = parse(&[(CACHE_PINS, "cache")]).unwrap();
    assert_eq!(c.cache_pins, CachePins::Cache);
    assert_eq!(
        parse_err(CACHE_PINS, "always"),
        "pkcs11-module-cache-pins: unknown value 'always' (expected cache)"
    );
}

#[test]
fn boolean_keys() {
    for key in [CACHE_KEYS, ENCODE_PROVIDER_URI_TO_PEM] {
        for (value, expected) in [
            ("true", true),
            ("TRUE", true),
            ("1", true),
            ("yes", true),
            ("false", false),
            ("False", false),
            ("0", false),
            ("no", false),
        ] {
            let c = parse(&[(key, value)]).unwrap();
            let got = if key == CACHE_KEYS {
                c.cache_keys
            } else {
                c.encode_provider_uri_to_pem
            };
            assert_eq!(got, expected, "{key} = {value}");
        }
        assert_eq!(
            parse_err(key, "maybe"),
            format!("{key}: unknown value 'maybe' (expected true or false)")
        );
    }
}

#[test]
fn cache_sessions_values() {
    for (value, expected) in [("0", 0), ("7", 7), ("1024", 1024)] {
        let c = parse(&[(CACHE_SESSIONS, value)]).unwrap();
        assert_eq!(c.cache_sessions, expected);
    }
    for bad in ["1025", "-1", "five", "1e3", " 5"] {
        assert_eq!(
            parse_err(CACHE_SESSIONS, bad),
            format!(
                "pkcs11-module-cache-sessions: invalid value '{bad}' \
                 (expected a number from 0 to 1024)"
            )
        );
    }
}

#[test]
fn quirks_values() {
    let c = parse(&[(QUIRKS, "no-deinit")]).unwrap();
    assert_eq!(
        c.quirks,
        Quirks {
            no_deinit: true,
            ..Quirks::default()
        }
    );
    let c = parse(&[(
        QUIRKS,
        "  no-deinit no-operation-state\tno-allowed-mechanisms no-session-callbacks no-deinit \
         ec-point-short-length fork-unsafe",
    )])
    .unwrap();
    assert_eq!(
        c.quirks,
        Quirks {
            no_deinit: true,
            no_operation_state: true,
            no_allowed_mechanisms: true,
            no_session_callbacks: true,
            ec_point_short_length: true,
            fork_unsafe: true,
        }
    );
    let msg = parse_err(QUIRKS, "no-deinit no-such-quirk");
    assert!(
        msg.starts_with("pkcs11-module-quirks: unknown quirk 'no-such-quirk' (expected"),
        "{msg}"
    );
}

#[test]
fn block_operations_values() {
    let c = parse(&[(BLOCK_OPERATIONS, "digest signature digest")]).unwrap();
    assert_eq!(c.block_operations, ["digest", "signature"]);
    let all = BLOCKABLE_OPERATIONS.join(" ");
    let c = parse(&[(BLOCK_OPERATIONS, &all)]).unwrap();
    assert_eq!(c.block_operations, BLOCKABLE_OPERATIONS);
    let msg = parse_err(BLOCK_OPERATIONS, "digest sign");
    assert!(
        msg.starts_with("pkcs11-module-block-operations: unknown operation 'sign'"),
        "{msg}"
    );
}

#[test]
fn allow_export_values() {
    assert!(parse(&[(ALLOW_EXPORT, "0")]).unwrap().allow_export);
    assert!(!parse(&[(ALLOW_EXPORT, "1")]).unwrap().allow_export);
    assert_eq!(
        parse_err(ALLOW_EXPORT, "true"),
        "pkcs11-module-allow-export: unknown value 'true' (expected 0 or 1)"
    );
}

#[test]
fn uri_unknown_attributes_values() {
    let c = parse(&[(URI_UNKNOWN_ATTRIBUTES, "reject")]).unwrap();
    assert_eq!(c.uri_unknown_attributes, UnknownAttributes::Reject);
    let c = parse(&[(URI_UNKNOWN_ATTRIBUTES, "ignore")]).unwrap();
    assert_eq!(c.uri_unknown_attributes, UnknownAttributes::Ignore);
    for bad in ["Ignore", "accept", "true", "0"] {
        assert_eq!(
            parse_err(URI_UNKNOWN_ATTRIBUTES, bad),
            format!(
                "pkcs11-module-uri-unknown-attributes: unknown value '{bad}' \
                 (expected reject or ignore)"
            )
        );
    }
}

#[test]
fn uri_unknown_attributes_gives_the_uri_parser_options() {
    let reject = UriOptions::from(UnknownAttributes::Reject);
    assert_eq!(reject, UriOptions::default());
    assert!(!reject.ignore_unknown_path_attributes);
    let ignore = UriOptions::from(UnknownAttributes::Ignore);
    assert!(ignore.ignore_unknown_path_attributes);

    // The issue 15 URI: refused by default, parsed without the object with `ignore`.
    let uri = b"pkcs11:token=t;objekt=rsa2048;type=private";
    let c = parse(&[]).unwrap();
    assert!(crate::uri::Pkcs11Uri::parse_with(uri, c.uri_unknown_attributes.into()).is_err());
    let c = parse(&[(URI_UNKNOWN_ATTRIBUTES, "ignore")]).unwrap();
    let parsed = crate::uri::Pkcs11Uri::parse_with(uri, c.uri_unknown_attributes.into()).unwrap();
    assert_eq!(parsed.object, None);
}

#[test]
fn bad_values_are_escaped_in_messages() {
    let msg = parse_err(LOGIN_BEHAVIOR, "a\nb");
    assert!(msg.contains("'a\\nb'"), "{msg}");
}

#[test]
fn async_and_metrics_keys() {
    let c = parse(&[]).unwrap();
    assert!(c.async_offload);
    assert_eq!(c.async_workers, None);
    assert_eq!(c.async_queue, ASYNC_QUEUE_DEFAULT);
    assert_eq!(c.metrics_file, None);
    assert_eq!(c.metrics_interval, METRICS_INTERVAL_DEFAULT);
    let c = parse(&[
        (ASYNC, "off"),
        (ASYNC_WORKERS, "4"),
        (ASYNC_QUEUE, "64"),
        (METRICS_FILE, "/run/p11-%p.prom"),
        (METRICS_INTERVAL, "2"),
    ])
    .unwrap();
    assert!(!c.async_offload);
    assert_eq!(c.async_workers, Some(4));
    assert_eq!(c.async_queue, 64);
    assert_eq!(c.metrics_file.as_deref(), Some("/run/p11-%p.prom"));
    assert_eq!(c.metrics_interval, 2);
    assert!(parse_err(ASYNC, "on").contains("auto or off"));
    for (key, bad) in [
        (ASYNC_WORKERS, "0"),
        (ASYNC_WORKERS, "257"),
        (ASYNC_QUEUE, "0"),
        (ASYNC_QUEUE, "-1"),
        (METRICS_INTERVAL, "0"),
        (METRICS_INTERVAL, "soon"),
    ] {
        assert!(
            parse_err(key, bad).contains("expected a number"),
            "{key}={bad}"
        );
    }
}
