//! Token faults (issue 6): the provider talks to SoftHSM2 through `tests/faultmod/faultmod.c`, a
//! PKCS#11 module that forwards every call and, driven by `FAULT_*` environment variables (see the
//! comment at the top of faultmod.c), fails chosen calls with chosen `CKR_*` codes, slows calls
//! down, counts calls into a file, adds token flags (PIN final try / locked / PIN pad), and
//! simulates removing and re-inserting the token.
//!
//! Each test first signs through the fault module with no fault set, so a missing or broken
//! provider, or a fault module that does not forward, cannot pass as "it failed as expected".
//! Every signature made is verified with the default provider and the public key that
//! pkcs11-tool reads from the token (never through our provider).

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::softhsm::USER_PIN;
use crate::common::{Fixture, KeyType, Ran, SignatureCheck, run_command};

/// The `pkcs11.h` the fault module is compiled against.
const PKCS11_INCLUDE: &str = "/usr/include/p11-kit-1";

/// Every variable the fault module reads besides `FAULT_REAL_MODULE`; each run gets all of them
/// (empty means unset), so a later run never inherits an earlier run's faults.
const FAULT_VARS: &[&str] = &[
    "FAULT_RULES",
    "FAULT_DELAY_US",
    "FAULT_GATHER",
    "FAULT_COUNT_FILE",
    "FAULT_TOKEN_FLAGS",
    "FAULT_PROTECTED_PIN",
    "FAULT_REMOVED_FILE",
    "FAULT_REMOVAL_LOGOUT",
    "FAULT_UTC_TIME",
];

/// A wrong user PIN (the token's is [`USER_PIN`]).
const WRONG_PIN: &str = "9999";

/// Provider errors for a token that refuses to log in because of its PIN state.
const PIN_REFUSED_WORDS: &[&str] = &["final try", "one more wrong pin", "locked", "refus"];

/// A fixture whose provider loads the fault module in front of the fixture's SoftHSM2 token,
/// with a P-256 key "key" (id 01).
pub(crate) struct FaultFixture {
    pub(crate) fx: Fixture,
    /// Number of `arm` calls so far (names each count file).
    armed: usize,
}

/// Call counts the fault module wrote (`FAULT_COUNT_FILE`).
pub(crate) struct Counts {
    path: String,
}

impl Counts {
    fn read(&self) -> HashMap<String, u64> {
        let text = fs::read_to_string(&self.path).unwrap_or_default();
        text.lines()
            .filter_map(|line| {
                let (name, count) = line.split_once(' ')?;
                Some((name.to_owned(), count.trim().parse().ok()?))
            })
            .collect()
    }

    /// How often `function` was called (0 if never); `FUNCTION.peak`: the most calls of it in
    /// progress at once.
    pub(crate) fn of(&self, function: &str) -> u64 {
        self.read().get(function).copied().unwrap_or(0)
    }

    /// The whole file, for failure messages.
    pub(crate) fn text(&self) -> String {
        fs::read_to_string(&self.path).unwrap_or_else(|_| "(no count file)".into())
    }

    /// Asserts the fault module was loaded and initialised by the run (so a zero count means
    /// something).
    #[track_caller]
    pub(crate) fn assert_module_used(&self, ran: &Ran) {
        assert!(
            self.of("C_Initialize") >= 1,
            "the fault module was never initialised\ncounts:\n{}\n{}",
            self.text(),
            ran.report()
        );
    }
}

impl FaultFixture {
    pub(crate) fn new(name: &str) -> FaultFixture {
        let mut fx = Fixture::new(name);
        fx.generate_key(KeyType::EcP256, "01", "key");
        let faultmod = build_faultmod(&fx);
        let real = fx.token().module().display().to_string();
        fx.config_mut().module_path = Some(faultmod);
        fx.set_child_env("FAULT_REAL_MODULE", &real);
        FaultFixture { fx, armed: 0 }
    }

    /// Sets the fault variables for the following runs (all others cleared) and a fresh count
    /// file.
    pub(crate) fn arm(&mut self, vars: &[(&str, &str)]) -> Counts {
        self.armed += 1;
        let counts = Counts {
            path: self.fx.file(&format!("counts-{}.txt", self.armed)),
        };
        for name in FAULT_VARS {
            let value = match *name {
                "FAULT_COUNT_FILE" => counts.path.as_str(),
                _ => vars
                    .iter()
                    .find(|(key, _)| key == name)
                    .map_or("", |(_, value)| *value),
            };
            self.fx.set_child_env(name, value);
        }
        for (key, _) in vars {
            assert!(FAULT_VARS.contains(key), "unknown fault variable {key}");
        }
        counts
    }

    pub(crate) fn uri(&self) -> String {
        self.fx.private_key_uri("key")
    }

    /// `openssl dgst -sha256 -sign` of a fresh message into `<name>`; returns the run.
    fn dgst_sign(&self, name: &str) -> Ran {
        let message = self.fx.message("message.txt");
        let signature = self.fx.file(name);
        self.fx.openssl(&[
            "dgst",
            "-sha256",
            "-sign",
            &self.uri(),
            "-out",
            &signature,
            &message,
        ])
    }

    /// Asserts that `signature` (a file in the fixture) is a valid SHA-256 signature of
    /// `message.txt` by the token key.
    #[track_caller]
    fn assert_verifies(&self, signature: &str, signed: &Ran) {
        let public_key = self.fx.export_pubkey("01");
        let message = self.fx.file("message.txt");
        let check = SignatureCheck::new(&public_key, &message, signature, Some("sha256"));
        self.fx.assert_valid_signature(&check, signed);
    }

    /// Signs with no fault set and verifies; returns the counts of that run.
    fn assert_signs_without_faults(&mut self) -> Counts {
        let counts = self.arm(&[]);
        let signed = self.dgst_sign("baseline.sig").success();
        self.assert_verifies(&self.fx.file("baseline.sig"), &signed);
        counts.assert_module_used(&signed);
        assert!(
            counts.of("C_Sign") >= 1,
            "the signature did not go through the fault module\ncounts:\n{}\n{}",
            counts.text(),
            signed.report()
        );
        counts
    }
}

/// Compiles tests/faultmod/faultmod.c into `<fixture>/faultmod.so`.
pub(crate) fn build_faultmod(fx: &Fixture) -> PathBuf {
    assert!(
        Path::new(PKCS11_INCLUDE).join("p11-kit/pkcs11.h").exists(),
        "{PKCS11_INCLUDE}/p11-kit/pkcs11.h not found; install it \
         (Debian: apt-get install libp11-kit-dev; Fedora: dnf install p11-kit-devel)"
    );
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/faultmod/faultmod.c");
    let library = PathBuf::from(fx.file("faultmod.so"));
    let mut cc = Command::new("cc");
    cc.args(["-shared", "-fPIC", "-O1", "-Wall", "-Wextra", "-Werror"])
        .args(["-fvisibility=hidden", &format!("-I{PKCS11_INCLUDE}")])
        .arg("-o")
        .arg(&library)
        .arg(&source)
        .args(["-ldl", "-lpthread"]);
    run_command(&mut cc, Path::new(&fx.file("")), None).success();
    library
}

// ---------------------------------------------------------------------------------------------
// Errors from C_Sign
// ---------------------------------------------------------------------------------------------

/// A token error on every `C_Sign` makes `openssl dgst -sign` fail cleanly (no signal, no
/// panic, no hang) with the PKCS#11 code in the provider's error. A code that does not mean
/// "session lost" is not retried; `CKR_DEVICE_REMOVED` is retried once, on a fresh session.
#[test]
fn persistent_sign_errors_fail_cleanly() {
    let mut ffx = FaultFixture::new("faults-sign-errors");
    let baseline = ffx.assert_signs_without_faults().of("C_Sign");
    for (code, retried) in [
        ("CKR_DEVICE_ERROR", false),
        ("CKR_FUNCTION_FAILED", false),
        ("CKR_DEVICE_REMOVED", true),
    ] {
        let counts = ffx.arm(&[("FAULT_RULES", &format!("C_Sign:1-:{code}"))]);
        let ran = ffx.dgst_sign(&format!("{code}.sig")).clean_failure();
        ran.assert_provider_error(&[code]);
        let signs = counts.of("C_Sign");
        let expected = if retried { 2 } else { 1 };
        assert_eq!(
            signs,
            expected,
            "{code}: C_Sign calls (a signature without faults makes {baseline})\ncounts:\n{}\n{}",
            counts.text(),
            ran.report()
        );
    }
}

/// A session the token lost (`CKR_SESSION_HANDLE_INVALID`, or `CKR_DEVICE_REMOVED` for a
/// moment) on the first `C_Sign` only: the provider retries on a fresh session and the
/// signature is made and verifies.
#[test]
fn lost_session_on_first_sign_is_retried() {
    let mut ffx = FaultFixture::new("faults-sign-retry");
    let baseline = ffx.assert_signs_without_faults();
    let (base_signs, base_opens) = (baseline.of("C_Sign"), baseline.of("C_OpenSession"));
    for code in ["CKR_SESSION_HANDLE_INVALID", "CKR_DEVICE_REMOVED"] {
        let counts = ffx.arm(&[("FAULT_RULES", &format!("C_Sign:1:{code}"))]);
        let name = format!("{code}.sig");
        let signed = ffx.dgst_sign(&name).success();
        ffx.assert_verifies(&ffx.fx.file(&name), &signed);
        // The fault was hit (one more C_Sign than without it) and a new session was opened.
        assert_eq!(
            counts.of("C_Sign"),
            base_signs + 1,
            "{code}\ncounts:\n{}\n{}",
            counts.text(),
            signed.report()
        );
        assert!(
            counts.of("C_OpenSession") > base_opens,
            "{code}: no fresh session for the retry\ncounts:\n{}\n{}",
            counts.text(),
            signed.report()
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Session limits
// ---------------------------------------------------------------------------------------------

/// The token refuses every session beyond those a first signature needed
/// (`CKR_SESSION_COUNT`): further signatures in the same process reuse the idle pooled session.
#[test]
fn session_limit_reached_reuses_idle_session() {
    let mut ffx = FaultFixture::new("faults-session-limit");
    let program = ffx.fx.compile_program("sign_steps");
    let message = ffx.fx.message("message.txt");
    let uri = ffx.uri();
    // How many sessions one load and one signature open.
    let counts = ffx.arm(&[]);
    let first = ffx.fx.file("first.sig");
    let ran = ffx
        .fx
        .run_with_provider(&program, &[&uri, &message, &format!("sign={first}")])
        .success();
    ffx.assert_verifies(&first, &ran);
    let opened = counts.of("C_OpenSession");
    assert!(opened >= 1, "counts:\n{}\n{}", counts.text(), ran.report());

    let rule = format!("C_OpenSession:{}-:CKR_SESSION_COUNT", opened + 1);
    let counts = ffx.arm(&[("FAULT_RULES", &rule)]);
    let signatures: Vec<String> = (1..=5).map(|i| ffx.fx.file(&format!("{i}.sig"))).collect();
    let mut args = vec![uri.clone(), message.clone()];
    args.extend(signatures.iter().map(|sig| format!("sign={sig}")));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let ran = ffx.fx.run_with_provider(&program, &args).success();
    for signature in &signatures {
        ffx.assert_verifies(signature, &ran);
    }
    assert_eq!(
        counts.of("C_OpenSession"),
        opened,
        "sessions opened beyond the limit\ncounts:\n{}\n{}",
        counts.text(),
        ran.report()
    );
}

/// A token that allows a single session (every `C_OpenSession` after the first fails with
/// `CKR_SESSION_COUNT`, as on some smart cards): the key loads and signs within that one session.
#[test]
fn single_session_token_signs() {
    let mut ffx = FaultFixture::new("faults-single-session");
    ffx.assert_signs_without_faults();
    let counts = ffx.arm(&[("FAULT_RULES", "C_OpenSession:2-:CKR_SESSION_COUNT")]);
    let signed = ffx.dgst_sign("single.sig");
    assert!(
        signed.output.status.success() && !signed.timed_out,
        "signing failed on a one-session token\ncounts:\n{}\n{}",
        counts.text(),
        signed.report()
    );
    ffx.assert_verifies(&ffx.fx.file("single.sig"), &signed);
}

/// A token that refuses every session: a clear error, within the run timeout (no hang).
#[test]
fn no_session_at_all_fails_clearly() {
    let mut ffx = FaultFixture::new("faults-no-session");
    ffx.assert_signs_without_faults();
    let counts = ffx.arm(&[("FAULT_RULES", "C_OpenSession:1-:CKR_SESSION_COUNT")]);
    let ran = ffx.dgst_sign("none.sig").clean_failure();
    ran.assert_provider_error(&["CKR_SESSION_COUNT"]);
    counts.assert_module_used(&ran);
}

// ---------------------------------------------------------------------------------------------
// A slow token
// ---------------------------------------------------------------------------------------------

/// 20 ms per `C_Sign`/`C_SignInit` and 5 ms per object search (a network HSM): the signature is
/// still made and verifies. No timing is asserted.
#[test]
fn slow_token_still_signs() {
    let mut ffx = FaultFixture::new("faults-latency");
    ffx.assert_signs_without_faults();
    let counts = ffx.arm(&[(
        "FAULT_DELAY_US",
        "C_Sign:20000,C_SignInit:20000,C_FindObjectsInit:5000,C_Login:20000",
    )]);
    let signed = ffx.dgst_sign("slow.sig").success();
    ffx.assert_verifies(&ffx.fx.file("slow.sig"), &signed);
    counts.assert_module_used(&signed);
    // One thread signs once: the fault module saw one C_Sign in progress at a time.
    assert_eq!(
        counts.of("C_Sign.peak"),
        1,
        "counts:\n{}\n{}",
        counts.text(),
        signed.report()
    );
}

// ---------------------------------------------------------------------------------------------
// Token removal
// ---------------------------------------------------------------------------------------------

/// In one process: load the key, sign, remove the token (signing fails with a clear error),
/// re-insert it, and sign again with the same key. Both signatures verify. With `logout`, the
/// re-inserted token has also forgotten the login, as a token that was really unplugged has.
fn removal_and_reinsertion(name: &str, logout: bool) {
    let mut ffx = FaultFixture::new(name);
    ffx.assert_signs_without_faults();
    let program = ffx.fx.compile_program("sign_steps");
    let message = ffx.fx.message("message.txt");
    let removed = ffx.fx.file("token-removed");
    let mut vars = vec![("FAULT_REMOVED_FILE", removed.as_str())];
    if logout {
        vars.push(("FAULT_REMOVAL_LOGOUT", "1"));
    }
    let counts = ffx.arm(&vars);
    let before = ffx.fx.file("before.sig");
    let after = ffx.fx.file("after.sig");
    let steps = [
        ffx.uri(),
        message,
        format!("sign={before}"),
        format!("touch={removed}"),
        "nosign".to_owned(),
        format!("rm={removed}"),
        format!("sign={after}"),
    ];
    let steps: Vec<&str> = steps.iter().map(String::as_str).collect();
    let ran = ffx.fx.run_with_provider(&program, &steps);
    assert!(
        ran.output.status.success() && !ran.timed_out,
        "removal script failed (exit 12: signing while removed succeeded; 14: no recovery \
         after re-insertion)\ncounts:\n{}\n{}",
        counts.text(),
        ran.report()
    );
    ran.assert_provider_error(&["CKR_DEVICE_REMOVED", "CKR_TOKEN_NOT_PRESENT", "removed"]);
    ffx.assert_verifies(&before, &ran);
    ffx.assert_verifies(&after, &ran);
}

#[test]
fn token_removal_and_reinsertion() {
    removal_and_reinsertion("faults-removal", false);
}

#[test]
fn token_removal_and_reinsertion_forgets_login() {
    removal_and_reinsertion("faults-removal-logout", true);
}

// ---------------------------------------------------------------------------------------------
// PIN safety, counted
// ---------------------------------------------------------------------------------------------

/// A wrong PIN in the config.
fn wrong_pin_fixture(name: &str) -> FaultFixture {
    let mut ffx = FaultFixture::new(name);
    ffx.assert_signs_without_faults();
    ffx.fx.config_mut().token_pin = Some(WRONG_PIN.to_owned());
    ffx
}

/// Runs `args` with a fresh count file; describes what is wrong unless the run failed cleanly
/// with `CKR_PIN_INCORRECT` after exactly one `C_Login`.
fn wrong_pin_problem(ffx: &mut FaultFixture, name: &str, args: &[&str]) -> Option<String> {
    let counts = ffx.arm(&[]);
    let ran = ffx.fx.openssl(args);
    let logins = counts.of("C_Login");
    let code = ran.output.status.code();
    let mentions = ran.stderr().contains("CKR_PIN_INCORRECT");
    let clean =
        !ran.timed_out && code.is_some_and(|c| c != 0) && !ran.stderr().contains("panicked");
    (!clean || !mentions || logins != 1).then(|| {
        format!(
            "{name}: exit {code:?}, C_Login called {logins} times (want 1), stderr names \
             CKR_PIN_INCORRECT: {mentions}\ncounts:\n{}\n{}",
            counts.text(),
            ran.report()
        )
    })
}

/// A wrong PIN in the config: signing and key loading fail with the token's
/// `CKR_PIN_INCORRECT` after exactly one `C_Login` per process, however often the command
/// loads the key.
#[test]
fn wrong_pin_logs_in_once_per_process() {
    let mut ffx = wrong_pin_fixture("faults-wrong-pin");
    let message = ffx.fx.message("message.txt");
    let digest = ffx.fx.hash_file(&message, "sha256");
    let uri = ffx.uri();
    let out = ffx.fx.file("wrong.out");
    let commands: [(&str, Vec<&str>); 3] = [
        (
            "dgst",
            vec!["dgst", "-sha256", "-sign", &uri, "-out", &out, &message],
        ),
        (
            "pkeyutl",
            vec![
                "pkeyutl", "-sign", "-inkey", &uri, "-in", &digest, "-out", &out,
            ],
        ),
        ("pkey", vec!["pkey", "-in", &uri, "-out", &out]),
    ];
    let problems: Vec<String> = commands
        .iter()
        .filter_map(|(name, args)| wrong_pin_problem(&mut ffx, name, args))
        .collect();
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}

/// `openssl storeutl` listing the whole token with a wrong PIN in the config: one `C_Login`,
/// the error, and a non-zero exit (a listing that silently shows nothing is a failure).
#[test]
fn wrong_pin_storeutl_fails() {
    let mut ffx = wrong_pin_fixture("faults-wrong-pin-storeutl");
    let token_uri = ffx.fx.uri("");
    if let Some(problem) = wrong_pin_problem(&mut ffx, "storeutl", &["storeutl", &token_uri]) {
        panic!("{problem}");
    }
}

/// A token that reports "one more wrong PIN locks the user PIN" or "the user PIN is locked":
/// the provider never calls `C_Login` and says why.
#[test]
fn pin_final_try_and_locked_never_log_in() {
    let mut ffx = FaultFixture::new("faults-pin-flags");
    ffx.assert_signs_without_faults();
    for flag in ["+CKF_USER_PIN_FINAL_TRY", "+CKF_USER_PIN_LOCKED"] {
        let counts = ffx.arm(&[("FAULT_TOKEN_FLAGS", flag)]);
        let ran = ffx.dgst_sign("refused.sig").clean_failure();
        counts.assert_module_used(&ran);
        assert_eq!(
            counts.of("C_Login"),
            0,
            "{flag}: C_Login was called\ncounts:\n{}\n{}",
            counts.text(),
            ran.report()
        );
        ran.assert_provider_error(PIN_REFUSED_WORDS);
    }
}

/// A token with a PIN pad (`CKF_PROTECTED_AUTHENTICATION_PATH`): the provider logs in with a
/// NULL PIN even though the config has one (the fault module rejects any PIN sent and logs in
/// with the "pad" PIN), and the signature verifies.
#[test]
fn protected_authentication_path_logs_in_with_null_pin() {
    let mut ffx = FaultFixture::new("faults-pin-pad");
    ffx.assert_signs_without_faults();
    let counts = ffx.arm(&[
        ("FAULT_TOKEN_FLAGS", "+CKF_PROTECTED_AUTHENTICATION_PATH"),
        ("FAULT_PROTECTED_PIN", USER_PIN),
    ]);
    let signed = ffx.dgst_sign("pad.sig").success();
    ffx.assert_verifies(&ffx.fx.file("pad.sig"), &signed);
    assert_eq!(
        counts.of("C_Login"),
        1,
        "counts:\n{}\n{}",
        counts.text(),
        signed.report()
    );
}

/// The fault module itself: a malformed rule fails `C_Initialize` loudly instead of silently
/// injecting nothing, so a typo cannot make a fault test pass.
#[test]
fn malformed_fault_rule_is_rejected() {
    let mut ffx = FaultFixture::new("faults-bad-rule");
    ffx.assert_signs_without_faults();
    ffx.arm(&[("FAULT_RULES", "C_Sign:first:CKR_DEVICE_ERROR")]);
    let ran = ffx.dgst_sign("bad-rule.sig").clean_failure();
    ran.assert_stderr_mentions(&["faultmod: cannot parse FAULT_RULES"]);
}

/// A token that sets `CKF_CLOCK_ON_TOKEN` but writes `utcTime` as `hh:mm:ss` (opencryptoki 3.8,
/// Debian 12's, found by scripts/matrix.sh): cryptoki cannot parse that `C_GetTokenInfo`, and
/// the provider skipped the token ("no token matches"). It now reads the structure directly,
/// without `utcTime`: listing, signing and login work, and the debug log says why.
#[test]
fn malformed_token_clock_is_ignored() {
    let mut ffx = FaultFixture::new("fault-utc-time");
    ffx.assert_signs_without_faults();
    let counts = ffx.arm(&[("FAULT_UTC_TIME", "00:53:13")]);
    let listed = ffx
        .fx
        .openssl(&["storeutl", "-keys", &ffx.fx.uri("")])
        .success();
    assert!(
        listed.stdout().contains("Total found: 1"),
        "the key is not listed\n{}",
        listed.report()
    );
    let signed = ffx.dgst_sign("clock.sig").success();
    ffx.assert_verifies(&ffx.fx.file("clock.sig"), &signed);
    counts.assert_module_used(&signed);
    let log = fs::read_to_string(ffx.fx.provider_log()).unwrap_or_default();
    assert!(
        log.contains("cryptoki cannot parse C_GetTokenInfo"),
        "the debug log does not say the token info was read directly\n{}",
        signed.report()
    );
}
