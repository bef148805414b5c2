//! Robustness regressions (issue 15): each test reproduces one way the provider could hang,
//! crash or pick the wrong key, and states what must happen instead.
//!
//! 1. `fork()` while other threads sign: the child must sign (it hung in `C_Finalize`, which the
//!    provider called in the child despite `no-deinit`).
//! 2. A module whose `C_GetFunctionList` returns `CKR_OK` with a NULL list, or a list of NULL
//!    entries (tests/badmod/badmod.c): a clean error naming the module, no crash.
//! 3. SoftHSM2 with no `pkcs11-module-quirks` line: `no-deinit` is applied automatically (and
//!    logged), so the process exits cleanly; `pkcs11-module-quirks = none` is accepted.
//! 4. A FIFO as PIN file, as `pin-source` or as module path: refused as "not a regular file"
//!    instead of blocking in `open()`.
//! 5. A misspelt URI attribute (`objekt=`, `Object=`, `ID=`) is refused, naming it, in a URI
//!    and in a PEM-URI key file; `x-vendor` attributes are accepted;
//!    `pkcs11-module-uri-unknown-attributes = ignore` restores the permissive reading.
//! 6. PINs in key files (robust/keyfile.rs).
//!
//! Every test first shows the provider signing in its fixture (signature verified with the
//! default provider and the public key pkcs11-tool reads), so a missing or broken provider
//! cannot pass as "it failed as expected". Every run has a deadline ([`DEADLINE`]): a run that
//! outlives it is killed with its whole process group and the test fails with "hung".

mod keyfile;

use std::fmt::Write as _;
use std::fs::{self, File};
use std::os::unix::process::{CommandExt as _, ExitStatusExt as _};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::Duration;

use crate::common::pemfile::pem_uri_file;
use crate::common::{Fixture, KeyType, SignatureCheck, provider_error_texts, run_command};

/// How long one run may take before it counts as hung and is killed.
const DEADLINE: Duration = Duration::from_secs(30);

/// Runs of the fork program per key type.
const FORK_RUNS: usize = 20;

/// The `pkcs11.h` the test modules are compiled against.
const PKCS11_INCLUDE: &str = "/usr/include/p11-kit-1";

/// The fixture's default quirk line (tests/common/mod.rs), as written to openssl.cnf.
const NO_DEINIT_LINE: &str = "pkcs11-module-quirks = no-deinit";

// ---------------------------------------------------------------------------------------------
// Running with a deadline
// ---------------------------------------------------------------------------------------------

/// A finished run, or one killed at the deadline.
struct Outcome {
    command: String,
    status: ExitStatus,
    hung: bool,
    stdout: String,
    stderr: String,
    provider_log: PathBuf,
}

impl Outcome {
    /// Command, status, output and the tail of the provider log.
    fn report(&self) -> String {
        let mut text = format!("command: {}\nstatus: {}", self.command, self.status);
        if self.hung {
            let _ = write!(
                text,
                " (HUNG: killed with its process group after {DEADLINE:?})"
            );
        }
        let _ = write!(text, "\nstdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        let log = fs::read_to_string(&self.provider_log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        let tail = &lines[lines.len().saturating_sub(30)..];
        let _ = write!(
            text,
            "\nprovider log {} (last {} lines):\n{}",
            self.provider_log.display(),
            tail.len(),
            tail.join("\n")
        );
        text
    }

    /// Asserts exit status 0 within the deadline.
    #[track_caller]
    fn success(self) -> Outcome {
        assert!(!self.hung, "hung\n{}", self.report());
        assert!(
            self.status.success(),
            "{}\n{}",
            match (self.status.code(), self.status.signal()) {
                (_, Some(signal)) => format!("killed by signal {signal} (crash)"),
                (code, None) => format!("failed with exit code {code:?}"),
            },
            self.report()
        );
        self
    }

    /// Asserts a clean failure: a non-zero exit code within the deadline, no signal, no panic.
    #[track_caller]
    fn clean_failure(self) -> Outcome {
        assert!(!self.hung, "hung\n{}", self.report());
        match self.status.code() {
            Some(0) => panic!("succeeded but must fail\n{}", self.report()),
            Some(_) => {}
            None => panic!("killed by a signal (crash)\n{}", self.report()),
        }
        assert!(
            !self.stderr.contains("panicked at"),
            "the provider panicked\n{}",
            self.report()
        );
        self
    }

    /// The errors this provider raised (see `provider_error_texts`).
    fn provider_errors(&self) -> Vec<String> {
        provider_error_texts(&self.stderr)
    }

    /// Asserts that one provider error mentions all of `words` (case-insensitive).
    #[track_caller]
    fn assert_provider_error(&self, words: &[&str]) {
        let found = self
            .provider_errors()
            .iter()
            .any(|line| words.iter().all(|word| line.contains(&word.to_lowercase())));
        assert!(
            found,
            "no provider error mentions all of {words:?}\n{}",
            self.report()
        );
    }

    /// Asserts that stderr mentions `words` (case-insensitive).
    #[track_caller]
    fn assert_stderr_mentions(&self, words: &str) {
        assert!(
            self.stderr.to_lowercase().contains(&words.to_lowercase()),
            "stderr does not mention {words:?}\n{}",
            self.report()
        );
    }
}

/// Runs `command` (stdin closed, output to `<fixture>/runs-robust/<name>.*`) in its own process
/// group; past [`DEADLINE`] the whole group is killed (a forked child too) and the outcome is
/// marked hung.
fn run_within_deadline(fx: &Fixture, name: &str, mut command: Command) -> Outcome {
    let runs = PathBuf::from(fx.file("runs-robust"));
    fs::create_dir_all(&runs).expect("create runs-robust directory");
    let stdout_path = runs.join(format!("{name}.stdout"));
    let stderr_path = runs.join(format!("{name}.stderr"));
    let description = format!("{command:?}");
    command
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(File::create(&stdout_path).expect("create stdout file"))
        .stderr(File::create(&stderr_path).expect("create stderr file"));
    let mut child = command
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {description}: {e}"));
    let group = format!("-{}", child.id());
    let (sender, receiver) = mpsc::channel();
    let waiter = thread::spawn(move || {
        let status = child.wait().expect("wait for child");
        let _ = sender.send(status);
    });
    let (status, hung) = match receiver.recv_timeout(DEADLINE) {
        Ok(status) => (status, false),
        Err(RecvTimeoutError::Disconnected) => panic!("waiting for {description} failed"),
        Err(RecvTimeoutError::Timeout) => {
            // Not reaped yet, so the group id still names our child's group.
            let _ = Command::new("kill")
                .args(["-KILL", "--", &group])
                .stderr(Stdio::null())
                .status();
            (receiver.recv().expect("status of the killed child"), true)
        }
    };
    waiter.join().expect("waiter thread");
    let read =
        |path: &Path| String::from_utf8_lossy(&fs::read(path).unwrap_or_default()).into_owned();
    Outcome {
        command: description,
        status,
        hung,
        stdout: read(&stdout_path),
        stderr: read(&stderr_path),
        provider_log: fx.provider_log(),
    }
}

/// `openssl <args>` with the fixture's provider config, within the deadline.
fn openssl(fx: &Fixture, name: &str, args: &[&str]) -> Outcome {
    let mut command = fx.provider_command("openssl");
    command.args(args);
    run_within_deadline(fx, name, command)
}

// ---------------------------------------------------------------------------------------------
// Signatures
// ---------------------------------------------------------------------------------------------

/// SHA-256 for RSA and ECDSA; `None` (the message itself) for EdDSA.
fn digest_of(key_type: KeyType) -> Option<&'static str> {
    (!key_type.is_eddsa()).then_some("sha256")
}

/// Asserts that `signature` is the token key's signature of `message` (default provider, public
/// key `public_key` from pkcs11-tool) and that it does not verify for a changed message.
#[track_caller]
fn assert_verifies(
    fx: &Fixture,
    key_type: KeyType,
    public_key: &str,
    message: &str,
    signature: &str,
    signed: &Outcome,
) {
    let check = SignatureCheck::new(public_key, message, signature, digest_of(key_type));
    assert!(
        fx.verify(&check),
        "signature {signature} does not verify with the token's public key\n{}",
        signed.report()
    );
    let tampered = fx.tampered_copy(message);
    let changed = SignatureCheck::new(public_key, &tampered, signature, digest_of(key_type));
    assert!(
        !fx.verify(&changed),
        "signature {signature} also verifies for a changed message\n{}",
        signed.report()
    );
}

/// Signs a message with `key` (a `pkcs11:` URI or a key file) through `openssl` (`dgst
/// -sha256`, EdDSA: `pkeyutl -rawin`) and returns the run; the signature is `<dir>/<name>.sig`.
fn sign_with(fx: &Fixture, key_type: KeyType, key: &str, name: &str) -> Outcome {
    let message = fx.message("message.txt");
    let signature = fx.file(&format!("{name}.sig"));
    let _ = fs::remove_file(&signature);
    if key_type.is_eddsa() {
        openssl(
            fx,
            name,
            &[
                "pkeyutl", "-sign", "-rawin", "-inkey", key, "-in", &message, "-out", &signature,
            ],
        )
    } else {
        openssl(
            fx,
            name,
            &[
                "dgst", "-sha256", "-sign", key, "-out", &signature, &message,
            ],
        )
    }
}

/// Signs with `key` and asserts the signature is the token key `key_id`'s.
#[track_caller]
fn assert_signs(fx: &Fixture, key_type: KeyType, key: &str, key_id: &str, name: &str) {
    let signed = sign_with(fx, key_type, key, name).success();
    let public_key = fx.export_pubkey(key_id);
    let message = fx.file("message.txt");
    let signature = fx.file(&format!("{name}.sig"));
    assert_verifies(fx, key_type, &public_key, &message, &signature, &signed);
}

/// Writes openssl.cnf (as every provider run does) and returns its text.
fn written_config(fx: &Fixture) -> String {
    drop(fx.provider_command("true"));
    fs::read_to_string(fx.file("openssl.cnf")).expect("read openssl.cnf")
}

/// Compiles a test PKCS#11 module (`tests/<dir>/<dir>.c`) into `<fixture>/<dir>.so`.
fn build_module(fx: &Fixture, dir: &str) -> PathBuf {
    assert!(
        Path::new(PKCS11_INCLUDE).join("p11-kit/pkcs11.h").exists(),
        "{PKCS11_INCLUDE}/p11-kit/pkcs11.h not found; install it \
         (Debian: apt-get install libp11-kit-dev; Fedora: dnf install p11-kit-devel)"
    );
    let source = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join(dir)
        .join(format!("{dir}.c"));
    let library = PathBuf::from(fx.file(&format!("{dir}.so")));
    let mut cc = Command::new("cc");
    cc.args(["-shared", "-fPIC", "-O1", "-Wall", "-Wextra", "-Werror"])
        .args(["-fvisibility=hidden", &format!("-I{PKCS11_INCLUDE}")])
        .arg("-o")
        .arg(&library)
        .arg(&source);
    run_command(&mut cc, Path::new(&fx.file("")), None).success();
    library
}

// ---------------------------------------------------------------------------------------------
// 1. fork() while other threads sign
// ---------------------------------------------------------------------------------------------

/// Runs tests/programs/fork_sign.c [`FORK_RUNS`] times: four threads sign and verify in a loop
/// while the main thread forks; the child signs once, verifies and writes its signature, which
/// is verified here once more with `openssl` and the pkcs11-tool public key.
fn fork_while_threads_sign(name: &str, key_type: KeyType) {
    let fx = Fixture::new(name);
    assert!(
        written_config(&fx)
            .lines()
            .any(|line| line == NO_DEINIT_LINE),
        "the fixture config must carry `{NO_DEINIT_LINE}` (the bug: C_Finalize despite it)"
    );
    fx.generate_key(key_type, "01", "key");
    let uri = fx.private_key_uri("key");
    assert_signs(&fx, key_type, &uri, "01", "baseline");

    let program = fx.compile_program("fork_sign");
    let public_key = fx.export_pubkey("01");
    let message = fx.message("message.txt");
    for run in 1..=FORK_RUNS {
        let child_signature = fx.file(&format!("child-{run}.sig"));
        let mut command = fx.provider_command(&program);
        command.args([&uri, &public_key, &message, &child_signature, "4"]);
        let ran = run_within_deadline(&fx, &format!("fork-{run}"), command);
        assert!(
            !ran.hung,
            "run {run} of {FORK_RUNS} hung: the forked child never finished (its last \
             \"child:\" line on stdout shows where it stopped)\n{}",
            ran.report()
        );
        assert!(
            ran.status.success(),
            "run {run} of {FORK_RUNS}: {}\n{}",
            fork_sign_failure(ran.status),
            ran.report()
        );
        assert!(
            ran.stdout.contains("child: signature written"),
            "run {run}: the child did not report its signature\n{}",
            ran.report()
        );
        let check =
            SignatureCheck::new(&public_key, &message, &child_signature, digest_of(key_type));
        assert!(
            fx.verify(&check),
            "run {run}: the child's signature does not verify\n{}",
            ran.report()
        );
        if run == 1 {
            assert_verifies(&fx, key_type, &public_key, &message, &child_signature, &ran);
        }
    }
}

/// What a failed exit of tests/programs/fork_sign.c means (see its header comment).
fn fork_sign_failure(status: ExitStatus) -> String {
    match status.code() {
        Some(1) => "the key did not load".to_owned(),
        Some(2) => "the key loaded is not the pkcs11 provider's".to_owned(),
        Some(3) => "usage or I/O problem".to_owned(),
        Some(4) => "a signing thread in the parent failed".to_owned(),
        Some(5) => "the forked child failed (stderr says how: signal or exit code; \
                    21 signing failed, 22 no verify, 23 no file)"
            .to_owned(),
        Some(code) => format!("exit code {code}"),
        None => format!("the parent was killed by signal {:?}", status.signal()),
    }
}

/// Quirk `fork-unsafe` (automatic for tpm2-pkcs11, which cannot be initialised again in a
/// forked child and whose C_Finalize there flushes the parent's TPM objects): the child that
/// uses the token gets a clear error naming the quirk instead of finalising the module under
/// the parent, and the parent's threads keep signing through and after the fork.
#[test]
fn fork_unsafe_quirk_refuses_in_the_child_and_spares_the_parent() {
    let mut fx = Fixture::new("robust-fork-unsafe");
    fx.config_mut()
        .set("pkcs11-module-quirks", "no-deinit fork-unsafe");
    fx.generate_key(KeyType::EcP256, "01", "key");
    let uri = fx.private_key_uri("key");
    let program = fx.compile_program("fork_sign");
    let public_key = fx.export_pubkey("01");
    let message = fx.message("message.txt");
    let child_signature = fx.file("child.sig");
    let mut command = fx.provider_command(&program);
    command.args([&uri, &public_key, &message, &child_signature, "4"]);
    let ran = run_within_deadline(&fx, "fork-unsafe", command);
    assert!(!ran.hung, "the run hung\n{}", ran.report());
    assert_eq!(
        ran.status.code(),
        Some(5),
        "expected only the child to fail (exit 5): {}\n{}",
        fork_sign_failure(ran.status),
        ran.report()
    );
    assert!(
        ran.stderr.contains("quirk fork-unsafe"),
        "the child's error does not name the quirk\n{}",
        ran.report()
    );
}

#[test]
fn fork_while_threads_sign_rsa2048() {
    fork_while_threads_sign("robust-fork-rsa2048", KeyType::Rsa2048);
}

#[test]
fn fork_while_threads_sign_p256() {
    fork_while_threads_sign("robust-fork-p256", KeyType::EcP256);
}

#[test]
fn fork_while_threads_sign_ed25519() {
    fork_while_threads_sign("robust-fork-ed25519", KeyType::Ed25519);
}

// ---------------------------------------------------------------------------------------------
// 2. C_GetFunctionList returns CKR_OK and no usable list
// ---------------------------------------------------------------------------------------------

/// With tests/badmod/badmod.c in `BADMOD_MODE=<mode>` as the module, `storeutl` and `pkey` fail
/// with a provider error that names the module's path; the module's trace file shows it was
/// loaded and its `C_GetFunctionList` called.
fn broken_function_list(name: &str, mode: &str) {
    let mut fx = Fixture::new(name);
    fx.generate_key(KeyType::EcP256, "01", "key");
    assert_signs(
        &fx,
        KeyType::EcP256,
        &fx.private_key_uri("key"),
        "01",
        "baseline",
    );

    let badmod = build_module(&fx, "badmod");
    let trace = fx.file("badmod-trace.txt");
    fx.config_mut().module_path = Some(badmod.clone());
    fx.set_child_env("BADMOD_MODE", mode);
    fx.set_child_env("BADMOD_TRACE", &trace);
    let badmod = badmod.display().to_string();
    let commands: [&[&str]; 2] = [
        &["storeutl", "-noout", "pkcs11:"],
        &["pkey", "-in", "pkcs11:object=x;type=private"],
    ];
    for (index, args) in commands.into_iter().enumerate() {
        let _ = fs::remove_file(&trace);
        let ran = openssl(&fx, &format!("{mode}-{index}"), args).clean_failure();
        let traced = fs::read_to_string(&trace).unwrap_or_default();
        assert!(
            traced.contains(&format!("C_GetFunctionList {mode}")),
            "the provider never called badmod's C_GetFunctionList (trace {trace})\n{}",
            ran.report()
        );
        ran.assert_provider_error(&[&badmod]);
    }
}

#[test]
fn function_list_null() {
    broken_function_list("robust-badmod-null-list", "null-list");
}

#[test]
fn function_list_of_null_entries() {
    broken_function_list("robust-badmod-null-entries", "null-entries");
}

// ---------------------------------------------------------------------------------------------
// 3. SoftHSM2 without `pkcs11-module-quirks`
// ---------------------------------------------------------------------------------------------

/// Removes the fixture's `pkcs11-module-quirks` line.
fn without_quirks_line(fx: &mut Fixture) {
    fx.config_mut()
        .settings
        .retain(|(key, _)| key != "pkcs11-module-quirks");
    assert!(
        !written_config(fx).contains("pkcs11-module-quirks"),
        "openssl.cnf still sets pkcs11-module-quirks"
    );
}

/// No quirks configured: signing works and the process exits 0 (SoftHSM2 crashed at exit when
/// finalised); the debug log says `no-deinit` was applied automatically.
#[test]
fn softhsm_without_quirks_exits_cleanly() {
    let mut fx = Fixture::new("robust-softhsm-no-quirks");
    fx.generate_key(KeyType::EcP256, "01", "key");
    without_quirks_line(&mut fx);
    let log = fx.provider_log();
    // Level 3 (trace) so the message counts at whatever level it is logged.
    fx.set_child_env(
        "PKCS11_PROVIDER_DEBUG",
        &format!("file:{},level:3", log.display()),
    );
    let _ = fs::remove_file(&log);
    let uri = fx.private_key_uri("key");
    assert_signs(&fx, KeyType::EcP256, &uri, "01", "no-quirks");

    let text = fs::read_to_string(&log).unwrap_or_default();
    assert!(
        text.lines().any(|line| {
            let line = line.to_lowercase();
            line.contains("no-deinit") && line.contains("automatic")
        }),
        "the debug log {} has no line saying no-deinit was applied automatically:\n{text}",
        log.display()
    );
}

/// `pkcs11-module-quirks = none` ("no quirks, none added automatically") is an accepted value:
/// the token is listed and no error names the setting; an unknown value is refused (control).
/// Nothing is signed: without no-deinit SoftHSM2 may crash at exit, so the exit status of the
/// `none` run is not checked.
#[test]
fn quirks_none_is_accepted() {
    let mut fx = Fixture::new("robust-quirks-none");
    fx.generate_key(KeyType::EcP256, "01", "key");
    assert_signs(
        &fx,
        KeyType::EcP256,
        &fx.private_key_uri("key"),
        "01",
        "baseline",
    );
    let token = fx.uri("");

    // `-out`: a file BIO is flushed before exit; stdout would be lost in a crash at exit.
    let listing = fx.file("storeutl.txt");
    let storeutl = ["storeutl", "-noout", "-out", &listing, &token];
    fx.config_mut().set("pkcs11-module-quirks", "bogus-quirk");
    let refused = openssl(&fx, "quirks-bogus", &storeutl).clean_failure();
    refused.assert_provider_error(&["pkcs11-module-quirks"]);

    fx.config_mut().set("pkcs11-module-quirks", "none");
    let _ = fs::remove_file(&listing);
    let ran = openssl(&fx, "quirks-none", &storeutl);
    assert!(!ran.hung, "hung\n{}", ran.report());
    let errors = ran.provider_errors();
    assert!(
        errors.iter().all(|line| !line.contains("quirk")),
        "pkcs11-module-quirks = none was refused\n{}",
        ran.report()
    );
    let listed = fs::read_to_string(&listing).unwrap_or_default();
    assert!(
        listed.contains("Total found: 2"),
        "storeutl did not list the key pair with pkcs11-module-quirks = none \
         ({listing}: {listed:?})\n{}",
        ran.report()
    );
}

// ---------------------------------------------------------------------------------------------
// 4. A FIFO where a regular file belongs
// ---------------------------------------------------------------------------------------------

/// A fixture with a P-256 key (id 01, "key") that signs, and a FIFO `<dir>/<name>`.
fn fixture_with_fifo(fixture: &str, name: &str) -> (Fixture, String) {
    let fx = Fixture::new(fixture);
    fx.generate_key(KeyType::EcP256, "01", "key");
    assert_signs(
        &fx,
        KeyType::EcP256,
        &fx.private_key_uri("key"),
        "01",
        "baseline",
    );
    let fifo = fx.file(name);
    let made = Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("run mkfifo");
    assert!(made.success(), "mkfifo {fifo} failed");
    (fx, fifo)
}

/// Signs with the fixture key; the run must end within the deadline, non-zero, saying the FIFO
/// is not a regular file (nobody ever writes to it, so opening it for reading blocks).
#[track_caller]
fn assert_fifo_refused(fx: &Fixture, uri: &str, name: &str) {
    let ran = sign_with(fx, KeyType::EcP256, uri, name);
    assert!(
        !ran.hung,
        "hung: the provider blocked opening the FIFO\n{}",
        ran.report()
    );
    ran.clean_failure().assert_stderr_mentions("regular file");
}

#[test]
fn fifo_as_config_pin_file() {
    let (mut fx, fifo) = fixture_with_fifo("robust-fifo-config-pin", "pin.fifo");
    fx.config_mut().token_pin = Some(format!("file:{fifo}"));
    let uri = fx.private_key_uri("key");
    assert_fifo_refused(&fx, &uri, "fifo-config-pin");
}

#[test]
fn fifo_as_uri_pin_source() {
    let (mut fx, fifo) = fixture_with_fifo("robust-fifo-pin-source", "pin.fifo");
    fx.config_mut().token_pin = None;
    let uri = format!("{}?pin-source=file:{fifo}", fx.private_key_uri("key"));
    assert_fifo_refused(&fx, &uri, "fifo-pin-source");
}

#[test]
fn fifo_as_module_path() {
    let (mut fx, fifo) = fixture_with_fifo("robust-fifo-module", "module.fifo");
    fx.config_mut().module_path = Some(PathBuf::from(&fifo));
    let uri = fx.private_key_uri("key");
    assert_fifo_refused(&fx, &uri, "fifo-module");
}

// ---------------------------------------------------------------------------------------------
// 5. A misspelt URI attribute
// ---------------------------------------------------------------------------------------------

/// A token with an Ed25519 key (id 02) made first and an RSA key "rsa2048" (id 01): a URI that
/// lost its `object` attribute names both, and a tool would take the first.
fn two_key_fixture(name: &str) -> Fixture {
    let fx = Fixture::new(name);
    fx.generate_key(KeyType::Ed25519, "02", "ed25519");
    fx.generate_key(KeyType::Rsa2048, "01", "rsa2048");
    assert_signs(
        &fx,
        KeyType::Rsa2048,
        &fx.private_key_uri("rsa2048"),
        "01",
        "baseline",
    );
    fx
}

/// Which token key (by id) the public key in `pem` is, for failure messages.
fn which_token_key(fx: &Fixture, pem: &str) -> String {
    let der = fx.public_key_der(pem);
    [("01", "the RSA key"), ("02", "the Ed25519 key")]
        .iter()
        .find(|(id, _)| fx.public_key_der(&fx.export_pubkey(id)) == der)
        .map_or_else(|| "no token key".to_owned(), |(_, what)| (*what).to_owned())
}

/// `openssl pkey -in <key> -pubout`: must fail, naming all of `words` in a provider error.
#[track_caller]
fn assert_misspelling_refused(fx: &Fixture, key: &str, name: &str, words: &[&str]) {
    let public_key = fx.file(&format!("{name}.pub.pem"));
    let _ = fs::remove_file(&public_key);
    let ran = openssl(
        fx,
        name,
        &["pkey", "-in", key, "-pubout", "-out", &public_key],
    );
    assert!(
        ran.status.code() != Some(0),
        "{key} loaded {} instead of being refused\n{}",
        which_token_key(fx, &public_key),
        ran.report()
    );
    ran.clean_failure().assert_provider_error(words);
}

#[test]
fn misspelt_attribute_in_uri_is_refused() {
    let fx = two_key_fixture("robust-uri-misspelt");
    let cases: [(&str, &[&str]); 3] = [
        ("objekt=rsa2048", &["'objekt'"]),
        ("Object=rsa2048", &["'object'", "case-sensitive"]),
        ("ID=01", &["'id'", "case-sensitive"]),
    ];
    for (index, (attribute, words)) in cases.into_iter().enumerate() {
        let uri = fx.uri(&format!("{attribute};type=private"));
        assert_misspelling_refused(&fx, &uri, &format!("misspelt-{index}"), words);
    }
}

#[test]
fn misspelt_attribute_in_key_file_is_refused() {
    let fx = two_key_fixture("robust-keyfile-misspelt");
    let key_file = fx.write_file(
        "objekt.pem",
        pem_uri_file(&fx.uri("objekt=rsa2048;type=private")),
    );
    assert_misspelling_refused(&fx, &key_file, "keyfile-objekt", &["'objekt'"]);
}

#[test]
fn vendor_attribute_is_accepted() {
    let fx = two_key_fixture("robust-uri-vendor");
    let uri = fx.uri("object=rsa2048;type=private;x-vendor=1");
    assert_signs(&fx, KeyType::Rsa2048, &uri, "01", "vendor");
}

/// `pkcs11-module-uri-unknown-attributes = ignore`: the misspelt attribute is skipped and the
/// URI loads a token key, as before the check.
#[test]
fn unknown_attributes_ignore_restores_permissive_reading() {
    let mut fx = two_key_fixture("robust-uri-ignore");
    fx.config_mut()
        .set("pkcs11-module-uri-unknown-attributes", "ignore");
    let public_key = fx.file("ignored.pub.pem");
    let uri = fx.uri("objekt=rsa2048;type=private");
    let ran = openssl(
        &fx,
        "ignore",
        &["pkey", "-in", &uri, "-pubout", "-out", &public_key],
    )
    .success();
    let loaded = which_token_key(&fx, &public_key);
    assert!(
        loaded != "no token key",
        "the key loaded is no token key\n{}",
        ran.report()
    );
}
