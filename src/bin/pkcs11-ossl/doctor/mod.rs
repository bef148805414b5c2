//! `pkcs11-ossl doctor [URI]`: checks a set-up in the order things go wrong for a first-time
//! user, one line per check (`ok`, `FAIL` with a `fix:` line, or `skip` when an earlier
//! failure makes the check meaningless), and exits non-zero when a check failed.
//!
//! 1. the configuration file, its pkcs11-ossl provider section, `activate`, the provider
//!    library (the `module =` file or `<modules dir>/<name>.so`), and whether OpenSSL itself
//!    loads the provider from that file (`openssl list -providers`) — in `config`;
//! 2. the section's keys and values (the provider's own parser; misspelt keys are named) —
//!    in `config`;
//! 3. the PKCS#11 module loads and initialises; the tokens (those the URI selects);
//! 4. the PIN source: readable, a regular file, not readable by everyone;
//! 5. one login per token, never retried: after a refused PIN nothing else logs in;
//! 6. with a URI: each private key it selects signs through the provider (the `openssl`
//!    command with this configuration) and the signature verifies with the key's public key,
//!    and each certificate with the key's `CKA_ID` holds that public key — in `keys`.

mod config;
mod keys;

use std::env;
use std::fmt::Display;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use pkcs11_ossl::tool::{self, Settings, Uri};
use zeroize::Zeroizing;

use crate::setup::{self, PinOrigin};
use crate::token::{self, LoginError, Module, Pin, TokenEntry};

/// The printed result of the checks.
pub(crate) struct Report {
    checks: usize,
    failed: usize,
}

impl Report {
    fn new() -> Report {
        Report {
            checks: 0,
            failed: 0,
        }
    }

    pub(crate) fn ok(&mut self, check: &str, detail: impl Display) {
        self.checks += 1;
        crate::say(format!("ok    {check}: {detail}"));
    }

    pub(crate) fn fail(&mut self, check: &str, problem: impl Display, fix: impl Display) {
        self.checks += 1;
        self.failed += 1;
        crate::say(format!("FAIL  {check}: {problem}"));
        crate::say(format!("      fix: {fix}"));
    }

    pub(crate) fn skip(&mut self, check: &str, why: impl Display) {
        crate::say(format!("skip  {check}: {why}"));
    }
}

pub(crate) fn run(config: Option<&Path>, text: Option<&str>) -> Result<bool, String> {
    let mut report = Report::new();
    let findings = config::check_config(&mut report, config);
    let settings = findings.settings.as_ref();
    let uri = match text {
        Some(text) => {
            let ignore = settings.is_some_and(|s| s.ignore_unknown_uri_attributes);
            match Uri::parse(text, ignore) {
                Ok(uri) => {
                    report.ok("URI", &uri);
                    Some(uri)
                }
                Err(problem) => {
                    report.fail(
                        "URI",
                        format!("'{}': {problem}", setup::redact_query(text)),
                        "correct the URI (pkcs11-ossl(7), URIS); `pkcs11-ossl list` prints \
                         the URI of every key",
                    );
                    None
                }
            }
        }
        None => None,
    };
    check_tokens(&mut report, &findings, uri.as_ref(), text);
    if report.failed == 0 {
        crate::say(format!("doctor: {} checks, all ok", report.checks));
    } else {
        crate::say(format!(
            "doctor: {} checks, {} failed",
            report.checks, report.failed
        ));
    }
    Ok(report.failed == 0)
}

/// The first line of OpenSSL error output that says something.
pub(crate) fn first_error_line(stderr: &str) -> Option<&str> {
    stderr
        .lines()
        .map(str::trim)
        .find(|line| line.contains("error") || line.contains("Error"))
        .or_else(|| stderr.lines().map(str::trim).find(|l| !l.is_empty()))
}

/// Checks 3 to 6.
fn check_tokens(
    report: &mut Report,
    findings: &config::ConfigFindings,
    uri: Option<&Uri>,
    text: Option<&str>,
) {
    let Some(settings) = findings.settings.as_ref() else {
        report.skip("PKCS#11 module", "no usable settings");
        return;
    };
    let from_env = env::var(tool::MODULE_PATH_ENV)
        .ok()
        .filter(|v| !v.is_empty())
        .is_some();
    let Some(module_path) = settings.module_path.as_deref() else {
        let section = findings
            .entry
            .as_ref()
            .map_or("the provider section".to_owned(), |e| {
                format!("[{}]", e.section)
            });
        report.fail(
            "PKCS#11 module",
            format!("no module: pkcs11-module-path is not set in {section} and {} is unset", tool::MODULE_PATH_ENV),
            format!("add 'pkcs11-module-path = <your token's PKCS#11 library>' to {section} (SoftHSM2: /usr/lib/softhsm/libsofthsm2.so)"),
        );
        return;
    };
    let origin = if from_env {
        tool::MODULE_PATH_ENV
    } else {
        "pkcs11-module-path"
    };
    let module = match Module::load(module_path) {
        Ok(module) => {
            let note = if settings.init_args.is_some() {
                "; pkcs11-module-init-args is not passed by this helper"
            } else {
                ""
            };
            report.ok(
                "PKCS#11 module",
                format!("{module_path} ({origin}): {}{note}", module.description),
            );
            module
        }
        Err(problem) => {
            report.fail(
                "PKCS#11 module",
                format!("{problem} ({origin})"),
                format!("set {origin} to your token's PKCS#11 library (a file such as /usr/lib/softhsm/libsofthsm2.so or opensc-pkcs11.so)"),
            );
            report.skip("tokens", "the module did not load");
            return;
        }
    };
    let tokens = match module.tokens() {
        Ok(tokens) => tokens,
        Err(problem) => {
            report.fail("tokens", problem, "check the token and its driver");
            return;
        }
    };
    let selected: Vec<&TokenEntry> = tokens
        .iter()
        .filter(|t| t.is_initialized() && uri.is_none_or(|u| u.matches_token(&t.facts)))
        .collect();
    let uninitialized = tokens.iter().filter(|t| !t.is_initialized()).count();
    if selected.is_empty() {
        let present: Vec<String> = tokens
            .iter()
            .filter(|t| t.is_initialized())
            .map(TokenEntry::describe)
            .collect();
        let (problem, fix) = match uri {
            Some(uri) if !present.is_empty() => (
                format!("no token matches {uri}; present: {}", present.join(", ")),
                "correct token= (or serial=, slot-id=) in the URI; labels are case-sensitive".to_owned(),
            ),
            _ => (
                format!("no initialised token ({} slots, {uninitialized} with an uninitialised token)", tokens.len()),
                "insert the token, or initialise one (SoftHSM2: softhsm2-util --init-token --free --label NAME; check SOFTHSM2_CONF)".to_owned(),
            ),
        };
        report.fail("tokens", problem, fix);
        return;
    }
    let described: Vec<String> = selected.iter().map(|t| t.describe()).collect();
    report.ok("tokens", described.join(", "));

    let config_pin = findings
        .entry
        .as_ref()
        .and_then(|e| e.value(tool::TOKEN_PIN_KEY));
    let pin = check_pin_source(report, uri, settings, config_pin);
    let mut logged_in = Vec::new();
    for token in selected {
        if let Some(state) = check_login(report, &module, token, pin.as_ref(), settings) {
            logged_in.push(state);
        }
    }
    match (uri, text, findings.path.as_deref()) {
        (Some(uri), Some(text), Some(path)) if findings.provider_loads => {
            keys::check_keys(
                report,
                &keys::KeyCheck {
                    uri,
                    text,
                    config: path,
                },
                &logged_in,
            );
        }
        (Some(_), _, _) => report.skip("keys", "OpenSSL does not load the provider (see above)"),
        (None, _, _) if text.is_some() => report.skip("keys", "the URI is not usable (see above)"),
        (None, _, _) => report.skip("keys", "give a pkcs11: URI to check that its keys sign"),
    }
}

/// Check 4: the PIN source the provider would use. Returns the PIN when it could be read.
fn check_pin_source(
    report: &mut Report,
    uri: Option<&Uri>,
    settings: &Settings,
    config_value: Option<&str>,
) -> Option<Pin> {
    const CHECK: &str = "PIN source";
    let origin = setup::pin_origin(uri, config_value);
    // The provider reads a configured PIN file when it reads its section, whatever the URI
    // says: a bad one stops every token operation, so it is checked even when the URI's PIN
    // comes first.
    if matches!(origin, PinOrigin::UriValue(_) | PinOrigin::UriSource(..)) {
        if let Some(path) = config_value.and_then(|v| v.strip_prefix(tool::PIN_FILE_PREFIX)) {
            check_pin_file(report, path, tool::TOKEN_PIN_KEY);
        }
    }
    match origin {
        PinOrigin::UriValue(value) => {
            report.ok(
                CHECK,
                "pin-value in the URI (a pin-source file readable only by the service is safer)",
            );
            Some(Pin {
                value: Zeroizing::new(value.to_owned()),
                source: "pin-value in the URI".into(),
            })
        }
        PinOrigin::UriSource(source, None) => {
            report.fail(
                CHECK,
                format!("pin-source '{source}' in the URI is not a file the provider can read"),
                "use pin-source=file:/absolute/path",
            );
            None
        }
        PinOrigin::UriSource(_, Some(path)) => {
            check_pin_file(report, path, "pin-source in the URI")
        }
        PinOrigin::ConfigFile(path) => check_pin_file(report, path, tool::TOKEN_PIN_KEY),
        PinOrigin::ConfigLiteral => {
            report.ok(
                CHECK,
                format!(
                    "literal {} (a file readable only by the service is safer)",
                    tool::TOKEN_PIN_KEY
                ),
            );
            settings.token_pin.clone().map(|value| Pin {
                value,
                source: tool::TOKEN_PIN_KEY.to_owned(),
            })
        }
        PinOrigin::Nowhere => {
            report.skip(
                CHECK,
                format!(
                    "no PIN in the URI or {}: the openssl command asks on the terminal, \
                     services cannot; add '{} = file:/etc/ssl/private/token.pin' (chmod 600)",
                    tool::TOKEN_PIN_KEY,
                    tool::TOKEN_PIN_KEY
                ),
            );
            None
        }
    }
}

fn check_pin_file(report: &mut Report, path: &str, named_by: &str) -> Option<Pin> {
    const CHECK: &str = "PIN source";
    let fix_create = format!(
        "write the user PIN on the first line of {path}, then: chmod 600 {path}; chown <service user> {path}"
    );
    let metadata = match std::fs::metadata(path) {
        Ok(metadata) => metadata,
        Err(e) => {
            report.fail(
                CHECK,
                format!("PIN file {path} ({named_by}) cannot be read: {e}"),
                fix_create,
            );
            return None;
        }
    };
    let mode = metadata.permissions().mode() & 0o7777;
    if !metadata.is_file() {
        report.fail(
            CHECK,
            format!("PIN file {path} ({named_by}) is not a regular file"),
            fix_create,
        );
        return None;
    }
    if mode & 0o004 != 0 {
        report.fail(
            CHECK,
            format!("PIN file {path} ({named_by}) is readable by everyone (mode {mode:04o})"),
            format!("chmod 600 {path} (and chown it to the user the service runs as)"),
        );
        return None;
    }
    match tool::read_pin_file(path) {
        Ok(value) => {
            report.ok(CHECK, format!("file {path} ({named_by}, mode {mode:04o})"));
            Some(Pin {
                value,
                source: format!("{path} ({named_by})"),
            })
        }
        Err(problem) => {
            report.fail(CHECK, problem, fix_create);
            None
        }
    }
}

/// Check 5 for one token: one login, never retried. Returns the token when its keys can be
/// checked (logged in, or no login needed).
fn check_login<'a>(
    report: &mut Report,
    module: &'a Module,
    token: &'a TokenEntry,
    pin: Option<&Pin>,
    settings: &Settings,
) -> Option<keys::LoggedIn<'a>> {
    let check = format!("login '{}'", token.facts.label);
    let session = match module.open_session(token) {
        Ok(session) => session,
        Err(problem) => {
            report.fail(
                &check,
                format!("cannot open a session: {problem}"),
                "check the token",
            );
            return None;
        }
    };
    if !token.info.login_required() {
        report.ok(&check, "the token needs no login");
        return Some(keys::LoggedIn { token, session });
    }
    if settings.never_login {
        report.skip(
            &check,
            "pkcs11-module-login-behavior = never: only public objects are used",
        );
        return Some(keys::LoggedIn { token, session });
    }
    let Some(pin) = pin else {
        report.skip(&check, "no usable PIN (see above)");
        return None;
    };
    match token::login(&session, token, pin) {
        Ok(()) => {
            report.ok(
                &check,
                format!("logged in once with the PIN from {}", pin.source),
            );
            Some(keys::LoggedIn { token, session })
        }
        Err(LoginError::WrongPin) => {
            report.fail(
                &check,
                format!(
                    "the token refused the PIN from {} (CKR_PIN_INCORRECT); it was tried once and \
                     nothing else is tried with it",
                    pin.source
                ),
                format!(
                    "put the right user PIN in {}; every wrong try brings the token closer to \
                     locking the PIN",
                    pin.source
                ),
            );
            None
        }
        Err(LoginError::Refused(why)) => {
            report.fail(
                &check,
                why,
                "have the security officer unblock or reset the user PIN (e.g. pkcs11-tool \
                 --login --login-type so --init-pin)",
            );
            None
        }
        Err(LoginError::Failed(why)) => {
            report.fail(&check, why, "check the PIN and the token");
            None
        }
    }
}
