//! Test fixture for the CLI integration tests (STYLE.md 8.7): one private directory, SoftHSM2 token
//! and `openssl.cnf` per test, and runners for the stock `openssl` binary with our provider loaded
//! (`Fixture::openssl`) or with the default provider only (`Fixture::software_openssl`, used for
//! every reference result: public key export, hashing, signature verification).
//!
//! Children get `OPENSSL_CONF`, `SOFTHSM2_CONF` and `PKCS11_PROVIDER_DEBUG` on their own `Command`,
//! never through the test process's environment, so tests run in parallel. Every run is recorded
//! (`Ran`); a failed check prints the command line, its stderr and the provider debug log.

pub(crate) mod pemfile;
pub(crate) mod softhsm;
pub(crate) mod version;

use std::env;
use std::fmt::Write as _;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

pub(crate) use softhsm::KeyType;
use softhsm::{Token, software_openssl};

/// Label of each test's token; every URI selects the token by it (SoftHSM renumbers slots).
pub(crate) const TOKEN_LABEL: &str = "p11rs-test";

/// A child that runs longer is killed: an `openssl` waiting for a PIN on /dev/tty must not hang CI.
const RUN_TIMEOUT: Duration = Duration::from_secs(60);

/// How much of the provider debug log a failure report shows.
const LOG_TAIL_LINES: usize = 40;

/// Shared libraries that exist on any Linux system and export no `C_GetFunctionList`.
const NON_PKCS11_LIBRARIES: &[&str] = &[
    "/lib/x86_64-linux-gnu/libz.so.1",
    "/usr/lib/x86_64-linux-gnu/libz.so.1",
    "/lib/aarch64-linux-gnu/libz.so.1",
    "/usr/lib64/libz.so.1",
    "/lib64/libz.so.1",
    "/lib/x86_64-linux-gnu/libc.so.6",
    "/usr/lib64/libc.so.6",
];

/// A shared library on this machine that is not a PKCS#11 module (libz or libc).
pub(crate) fn non_pkcs11_library() -> &'static str {
    NON_PKCS11_LIBRARIES
        .iter()
        .find(|path| Path::new(path).is_file())
        .expect("no libz.so.1 or libc.so.6 found in the usual places")
}

/// Error words when `pkcs11-module-path` names a file that is not a PKCS#11 library.
pub(crate) const NOT_PKCS11_WORDS: &[&str] = &[
    "C_GetFunctionList",
    "not a PKCS#11",
    "not a pkcs11",
    "invalid ELF",
    "too short",
    "cannot load",
    "failed to load",
    "dlopen",
];

/// The provider under test: env `P11RS_PROVIDER_SO`, else next to the test binary (`cargo test`
/// leaves the cdylib in `target/<profile>/deps/`), else `target/<profile>/` (`cargo build`).
pub(crate) fn provider_so() -> PathBuf {
    if let Some(path) = env::var_os("P11RS_PROVIDER_SO") {
        return path.into();
    }
    let exe = env::current_exe().expect("test executable path");
    let deps = exe.parent().expect("test executable directory");
    [Some(deps), deps.parent()]
        .into_iter()
        .flatten()
        .map(|dir| dir.join("libpkcs11_ossl.so"))
        .find(|path| path.exists())
        .expect("libpkcs11_ossl.so not built; run `cargo build` or set P11RS_PROVIDER_SO")
}

/// The `[pkcs11_sect]` keys a test can vary; `None` omits the line.
pub(crate) struct ProviderConfig {
    pub(crate) module_path: Option<PathBuf>,
    pub(crate) token_pin: Option<String>,
    /// Further `key = value` lines, in order (initially `pkcs11-module-quirks = no-deinit`).
    pub(crate) settings: Vec<(String, String)>,
}

impl ProviderConfig {
    /// Adds `key = value`, replacing an earlier line with the same key.
    pub(crate) fn set(&mut self, key: &str, value: &str) {
        self.settings.retain(|(existing, _)| existing != key);
        self.settings.push((key.to_owned(), value.to_owned()));
    }

    fn render(&self, provider: &Path) -> String {
        let mut text = String::from(
            "openssl_conf = openssl_init\n\n[openssl_init]\nproviders = provider_sect\n\n\
             [provider_sect]\ndefault = default_sect\npkcs11 = pkcs11_sect\n\n\
             [default_sect]\nactivate = 1\n\n[pkcs11_sect]\n",
        );
        let _ = writeln!(text, "module = {}", provider.display());
        if let Some(path) = &self.module_path {
            let _ = writeln!(text, "pkcs11-module-path = {}", path.display());
        }
        if let Some(pin) = &self.token_pin {
            let _ = writeln!(text, "pkcs11-module-token-pin = {pin}");
        }
        for (key, value) in &self.settings {
            let _ = writeln!(text, "{key} = {value}");
        }
        text.push_str("activate = 1\n");
        text
    }
}

/// A public key and certificate made in software whose private key was written to the token.
pub(crate) struct ImportedKey {
    /// Self-signed certificate (PEM), also on the token.
    pub(crate) cert: String,
    /// The certificate's public key (PEM), as the default provider reads it.
    pub(crate) public_key: String,
}

/// What a signature check needs; `digest: None` means a raw-input (EdDSA) signature.
pub(crate) struct SignatureCheck<'a> {
    pub(crate) public_key: &'a str,
    pub(crate) message: &'a str,
    pub(crate) signature: &'a str,
    pub(crate) digest: Option<&'a str>,
    /// Extra `-sigopt` (dgst) or `-pkeyopt` (pkeyutl) arguments for the verifier.
    pub(crate) verify_options: &'a [&'a str],
}

impl<'a> SignatureCheck<'a> {
    /// A check without extra verifier options.
    pub(crate) fn new(
        public_key: &'a str,
        message: &'a str,
        signature: &'a str,
        digest: Option<&'a str>,
    ) -> Self {
        SignatureCheck {
            public_key,
            message,
            signature,
            digest,
            verify_options: &[],
        }
    }
}

/// One test's world: directory, token, provider configuration.
pub(crate) struct Fixture {
    dir: PathBuf,
    token: Token,
    config: ProviderConfig,
    child_env: Vec<(String, String)>,
}

impl Fixture {
    /// A fresh fixture in `$CARGO_TARGET_TMPDIR/<name>` (removed first if present) with an empty
    /// token labelled [`TOKEN_LABEL`], PIN file `pin.txt` and the default provider config.
    pub(crate) fn new(name: &str) -> Fixture {
        softhsm::require_tools();
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
        if dir.exists() {
            fs::remove_dir_all(&dir).expect("remove old fixture directory");
        }
        fs::create_dir_all(&dir).expect("create fixture directory");
        assert!(
            dir.to_str().is_some(),
            "fixture path {} is not UTF-8",
            dir.display()
        );
        let pin_file = dir.join("pin.txt");
        fs::write(&pin_file, format!("{}\n", softhsm::USER_PIN)).expect("write pin.txt");
        let token = Token::create(&dir, TOKEN_LABEL);
        let config = ProviderConfig {
            module_path: Some(token.module().to_path_buf()),
            token_pin: Some(format!("file:{}", pin_file.display())),
            settings: vec![("pkcs11-module-quirks".to_owned(), "no-deinit".to_owned())],
        };
        Fixture {
            dir,
            token,
            config,
            child_env: Vec::new(),
        }
    }

    pub(crate) fn token(&self) -> &Token {
        &self.token
    }

    pub(crate) fn config_mut(&mut self) -> &mut ProviderConfig {
        &mut self.config
    }

    /// Sets a variable on every later provider run (e.g. for pkcs11-spy).
    pub(crate) fn set_child_env(&mut self, key: &str, value: &str) {
        self.child_env.push((key.to_owned(), value.to_owned()));
    }

    /// `<dir>/<name>` as a string, ready for an `openssl` argument list.
    pub(crate) fn file(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    pub(crate) fn write_file(&self, name: &str, contents: impl AsRef<[u8]>) -> String {
        let path = self.file(name);
        fs::write(&path, contents).unwrap_or_else(|e| panic!("write {path}: {e}"));
        path
    }

    /// The provider debug log (`PKCS11_PROVIDER_DEBUG`) of this fixture's runs.
    pub(crate) fn provider_log(&self) -> PathBuf {
        self.dir.join("provider.log")
    }

    /// Signs a fresh message with `openssl dgst -sha256 -sign <uri> <extra>` and asserts the
    /// signature verifies with the token key `key_id` (read by pkcs11-tool) and fails on a
    /// changed message.
    pub(crate) fn assert_dgst_signs(&self, uri: &str, key_id: &str, extra: &[&str]) {
        let public_key = self.export_pubkey(key_id);
        let message = self.message("message.txt");
        let signature = self.file("message.sig");
        let mut args = vec!["dgst", "-sha256", "-sign", uri, "-out", &signature];
        args.extend_from_slice(extra);
        args.push(&message);
        let signed = self.openssl(&args).success();
        let check = SignatureCheck::new(&public_key, &message, &signature, Some("sha256"));
        self.assert_valid_signature(&check, &signed);
    }

    /// `pkcs11:token=<label>;<attributes>` (just the token when `attributes` is empty).
    pub(crate) fn uri(&self, attributes: &str) -> String {
        let token = format!("pkcs11:token={}", percent_encode(self.token.label()));
        if attributes.is_empty() {
            token
        } else {
            format!("{token};{attributes}")
        }
    }

    /// The URI of the private key labelled `label`.
    pub(crate) fn private_key_uri(&self, label: &str) -> String {
        self.uri(&format!("object={};type=private", percent_encode(label)))
    }

    /// A key pair on the token (see `Token::generate_key_pair`); `id` is hex.
    pub(crate) fn generate_key(&self, key_type: KeyType, id: &str, label: &str) {
        self.token.generate_key_pair(key_type, id, label);
    }

    /// A software key and self-signed certificate; the private key and the certificate go to the
    /// token under `id`/`label`, no public key object (pkcs11-tool can only do this for RSA and EC).
    pub(crate) fn import_key_with_cert(
        &self,
        key_type: KeyType,
        id: &str,
        label: &str,
    ) -> ImportedKey {
        assert!(
            !key_type.is_eddsa(),
            "pkcs11-tool cannot write EdDSA private keys"
        );
        let key = self.file(&format!("soft-{id}.key.pem"));
        let cert = self.file(&format!("soft-{id}.cert.pem"));
        let public_key = self.file(&format!("soft-{id}.pub.pem"));
        let subject = format!("/CN={label}");
        let mut args = vec!["req", "-x509", "-nodes", "-days", "30", "-subj", &subject];
        args.extend(key_type.openssl_newkey_args());
        args.extend(["-keyout", &key, "-out", &cert]);
        self.software_openssl(&args).success();
        self.software_openssl(&[
            "x509",
            "-in",
            &cert,
            "-pubkey",
            "-noout",
            "-out",
            &public_key,
        ])
        .success();
        self.token
            .write_object(Path::new(&key), "privkey", id, label);
        self.token.write_object(Path::new(&cert), "cert", id, label);
        ImportedKey { cert, public_key }
    }

    /// The token's public key with CKA_ID `id` as a PEM file, read by pkcs11-tool and converted by
    /// the default provider (never through our provider).
    pub(crate) fn export_pubkey(&self, id: &str) -> String {
        let bytes = self.token.read_public_key(id);
        let format = if bytes.starts_with(b"-----BEGIN") {
            "PEM"
        } else {
            "DER"
        };
        let raw = self.write_file(&format!("token-pubkey-{id}.raw"), bytes);
        let pem = self.file(&format!("token-pubkey-{id}.pem"));
        self.software_openssl(&[
            "pkey", "-pubin", "-inform", format, "-in", &raw, "-out", &pem,
        ])
        .success();
        pem
    }

    /// Canonical DER SubjectPublicKeyInfo of a PEM public key file (default provider).
    pub(crate) fn public_key_der(&self, pem: &str) -> Vec<u8> {
        let der = format!("{pem}.der");
        self.software_openssl(&[
            "pkey", "-pubin", "-in", pem, "-outform", "DER", "-out", &der,
        ])
        .success();
        fs::read(&der).unwrap_or_else(|e| panic!("read {der}: {e}"))
    }

    /// A 1 KiB test message (written once per name).
    pub(crate) fn message(&self, name: &str) -> String {
        let text: String = (0..32)
            .map(|i| format!("pkcs11-ossl test message, line {i:02}\n"))
            .collect();
        self.write_file(name, text)
    }

    /// A copy of `path` with its last byte changed.
    pub(crate) fn tampered_copy(&self, path: &str) -> String {
        let mut bytes = fs::read(path).unwrap_or_else(|e| panic!("read {path}: {e}"));
        if let Some(last) = bytes.last_mut() {
            *last ^= 0x01;
        }
        let copy = format!("{path}.tampered");
        fs::write(&copy, bytes).unwrap_or_else(|e| panic!("write {copy}: {e}"));
        copy
    }

    /// The binary digest of `path` (default provider), for `pkeyutl -sign` on a hash.
    pub(crate) fn hash_file(&self, path: &str, digest: &str) -> String {
        let out = format!("{path}.{digest}");
        self.software_openssl(&["dgst", &format!("-{digest}"), "-binary", "-out", &out, path])
            .success();
        out
    }

    /// Runs `openssl` with this fixture's `openssl.cnf` (default + our provider).
    pub(crate) fn openssl(&self, args: &[&str]) -> Ran {
        self.run_with_provider("openssl", args)
    }

    /// Compiles `tests/programs/<name>.c` against libssl/libcrypto into the fixture directory
    /// and returns the executable's path.
    pub(crate) fn compile_program(&self, name: &str) -> String {
        self.compile_c("tests/programs", name)
    }

    /// Compiles `examples/<name>.c` (an example program of the README) like
    /// [`Fixture::compile_program`].
    pub(crate) fn compile_example(&self, name: &str) -> String {
        self.compile_c("examples", name)
    }

    fn compile_c(&self, folder: &str, name: &str) -> String {
        let source = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(folder)
            .join(format!("{name}.c"));
        let binary = self.file(name);
        let mut cc = Command::new("cc");
        cc.arg("-Wall")
            .arg("-o")
            .arg(&binary)
            .arg(&source)
            .args(["-lssl", "-lcrypto"]);
        run_command(&mut cc, &self.dir, None).success();
        binary
    }

    /// Runs `program` with this fixture's provider environment (what `openssl` gets):
    /// `OPENSSL_CONF`, `SOFTHSM2_CONF`, the debug log and any `set_child_env` variables.
    pub(crate) fn run_with_provider(&self, program: &str, args: &[&str]) -> Ran {
        let mut command = self.provider_command(program);
        command.args(args);
        run_command(&mut command, &self.dir, Some(&self.provider_log()))
    }

    /// `program` with this fixture's provider environment, not started yet (for long-running
    /// children such as `openssl s_server`); writes `openssl.cnf`.
    pub(crate) fn provider_command(&self, program: &str) -> Command {
        let conf = self.dir.join("openssl.cnf");
        fs::write(&conf, self.config.render(&provider_so())).expect("write openssl.cnf");
        let log = self.provider_log();
        let mut command = Command::new(program);
        command
            .env("OPENSSL_CONF", &conf)
            .env("SOFTHSM2_CONF", self.token.conf())
            .env(
                "PKCS11_PROVIDER_DEBUG",
                format!("file:{},level:2", log.display()),
            )
            // A module path from the caller's environment would override the config under test.
            .env_remove("PKCS11_PROVIDER_MODULE");
        for (key, value) in &self.child_env {
            command.env(key, value);
        }
        command
    }

    /// A self-signed certificate for the token key `key_uri`, made through the provider with
    /// `openssl req -new -x509 -subj <subject> <extra>` into `<dir>/<name>`; asserts that it
    /// carries the token's public key `key_id` (read by pkcs11-tool) and that its signature
    /// verifies with the default provider.
    pub(crate) fn token_certificate(
        &self,
        key_uri: &str,
        key_id: &str,
        name: &str,
        subject: &str,
        extra: &[&str],
    ) -> String {
        let cert = self.file(name);
        let mut args = vec![
            "req", "-new", "-x509", "-key", key_uri, "-subj", subject, "-days", "30",
        ];
        args.extend_from_slice(extra);
        args.extend(["-out", &cert]);
        let made = self.openssl(&args).success();
        self.assert_cert_key_is_token_key(&cert, key_id);
        let verified = self.software_openssl(&["verify", "-check_ss_sig", "-CAfile", &cert, &cert]);
        assert!(
            verified.output.status.success(),
            "self-signed certificate does not verify\n--- signing run ---\n{}\n\
             --- verification run ---\n{}",
            made.report(),
            verified.report()
        );
        cert
    }

    /// Asserts that the PEM certificate `cert` holds the token's public key `key_id`.
    #[track_caller]
    pub(crate) fn assert_cert_key_is_token_key(&self, cert: &str, key_id: &str) {
        let public_key = format!("{cert}.pub.pem");
        self.software_openssl(&[
            "x509",
            "-in",
            cert,
            "-pubkey",
            "-noout",
            "-out",
            &public_key,
        ])
        .success();
        assert!(
            self.public_key_der(&public_key) == self.public_key_der(&self.export_pubkey(key_id)),
            "the public key in {cert} is not the token key with id {key_id}"
        );
    }

    /// Runs `openssl` with the default provider only.
    pub(crate) fn software_openssl(&self, args: &[&str]) -> Ran {
        software_openssl(&self.dir).args(args).run()
    }

    /// Verifies a signature with the default provider; the run succeeds only if it verified.
    pub(crate) fn verify(&self, check: &SignatureCheck<'_>) -> bool {
        let verified = self.verify_run(check, check.message);
        verified.output.status.success() && verified.stdout().contains("Verified")
    }

    /// Asserts that `check` verifies and that the same signature fails on a tampered message;
    /// `signed` is the run that made the signature, shown on failure.
    #[track_caller]
    pub(crate) fn assert_valid_signature(&self, check: &SignatureCheck<'_>, signed: &Ran) {
        let verified = self.verify_run(check, check.message);
        assert!(
            verified.output.status.success() && verified.stdout().contains("Verified"),
            "signature does not verify with the token's public key\n\
             --- signing run ---\n{}\n--- verification run ---\n{}",
            signed.report(),
            verified.report()
        );
        let tampered = self.tampered_copy(check.message);
        let rejected = self.verify_run(check, &tampered);
        assert!(
            !rejected.output.status.success(),
            "signature verifies on a tampered message\n--- signing run ---\n{}\n\
             --- verification run ---\n{}",
            signed.report(),
            rejected.report()
        );
    }

    fn verify_run(&self, check: &SignatureCheck<'_>, message: &str) -> Ran {
        let mut args: Vec<&str> = Vec::new();
        let digest_flag;
        match check.digest {
            Some(digest) => {
                digest_flag = format!("-{digest}");
                args.extend(["dgst", &digest_flag, "-verify", check.public_key]);
                args.extend(["-signature", check.signature]);
                for option in check.verify_options {
                    args.extend(["-sigopt", option]);
                }
                args.push(message);
            }
            None => {
                args.extend([
                    "pkeyutl",
                    "-verify",
                    "-pubin",
                    "-inkey",
                    check.public_key,
                    "-rawin",
                ]);
                args.extend(["-in", message, "-sigfile", check.signature]);
                for option in check.verify_options {
                    args.extend(["-pkeyopt", option]);
                }
            }
        }
        self.software_openssl(&args)
    }
}

/// Percent-encodes everything outside RFC 3986 unreserved characters and `/` (RFC 7512 pchar).
pub(crate) fn percent_encode(value: &str) -> String {
    let mut out = String::new();
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~/".contains(&byte) {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

/// A finished child process and how it was started.
pub(crate) struct Ran {
    /// The command line with the environment it was given, for reproducing by hand.
    pub(crate) command: String,
    pub(crate) output: Output,
    pub(crate) timed_out: bool,
    provider_log: Option<PathBuf>,
}

impl Ran {
    pub(crate) fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }

    pub(crate) fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    /// Command, status, stdout/stderr and the tail of the provider log.
    pub(crate) fn report(&self) -> String {
        let mut text = format!("command: {}\nstatus: {}", self.command, self.output.status);
        if self.timed_out {
            let _ = write!(
                text,
                " (killed at its time limit, {RUN_TIMEOUT:?} unless the test chose another; \
                 waiting for a PIN prompt?)"
            );
        }
        let stdout = self.stdout();
        let shown_stdout = if stdout.len() > 4000 {
            &stdout[..4000]
        } else {
            &stdout[..]
        };
        let _ = write!(
            text,
            "\nstdout:\n{shown_stdout}\nstderr:\n{}",
            self.stderr()
        );
        if let Some(log) = &self.provider_log {
            let _ = write!(text, "\nprovider log: {}", log.display());
            if let Ok(contents) = fs::read_to_string(log) {
                let lines: Vec<&str> = contents.lines().collect();
                let tail = &lines[lines.len().saturating_sub(LOG_TAIL_LINES)..];
                let _ = write!(text, " (last {} lines)\n{}", tail.len(), tail.join("\n"));
            }
        }
        text
    }

    /// Asserts exit status 0.
    #[track_caller]
    pub(crate) fn success(self) -> Ran {
        assert!(
            self.output.status.success() && !self.timed_out,
            "command failed\n{}",
            self.report()
        );
        self
    }

    /// Asserts a clean failure: a non-zero exit code (not a signal, not a timeout, no Rust panic).
    #[track_caller]
    pub(crate) fn clean_failure(self) -> Ran {
        assert!(!self.timed_out, "command hung\n{}", self.report());
        match self.output.status.code() {
            Some(0) => panic!(
                "command succeeded but should have failed\n{}",
                self.report()
            ),
            Some(_) => {}
            None => panic!("command was killed by a signal (crash)\n{}", self.report()),
        }
        assert!(
            !self.stderr().contains("panicked at"),
            "the provider panicked\n{}",
            self.report()
        );
        self
    }

    /// Asserts that stderr contains at least one of `words` (case-insensitive).
    #[track_caller]
    pub(crate) fn assert_stderr_mentions(&self, words: &[&str]) {
        let stderr = self.stderr().to_lowercase();
        assert!(
            words
                .iter()
                .any(|word| stderr.contains(&word.to_lowercase())),
            "stderr mentions none of {words:?}\n{}",
            self.report()
        );
    }

    /// Asserts that stderr holds an error this provider raised (an OpenSSL error line whose
    /// library field is the provider's name, `pkcs11` in the fixture config) whose text, without
    /// the URIs quoted in it, mentions one of `words` (case-insensitive). Stderr as a whole is not
    /// searched: the `openssl` tools echo the URI, which may itself contain the words.
    #[track_caller]
    pub(crate) fn assert_provider_error(&self, words: &[&str]) {
        let provider_errors = provider_error_texts(&self.stderr());
        assert!(
            provider_errors
                .iter()
                .any(|line| words.iter().any(|word| line.contains(&word.to_lowercase()))),
            "no provider error mentioning any of {words:?}\n{}",
            self.report()
        );
    }
}

/// The texts of the errors this provider raised in `stderr` (OpenSSL error lines whose library
/// field is `pkcs11`, the provider's name in the fixture config): the part after the library
/// field, lower case, without any word that holds a `pkcs11:` URI (the tools echo URIs, which
/// may contain the words a test looks for).
pub(crate) fn provider_error_texts(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter_map(|line| {
            // `<thread>:error:<code>:<library>:<function>:<reason>:<file>:<line>:<data>`
            match line.splitn(5, ':').collect::<Vec<_>>()[..] {
                [_, "error", _, "pkcs11", text] => Some(text),
                _ => None,
            }
        })
        .map(|text| {
            text.split_whitespace()
                .filter(|word| !word.contains("pkcs11:"))
                .collect::<Vec<_>>()
                .join(" ")
                .to_lowercase()
        })
        .collect()
}

static RUN_NUMBER: AtomicUsize = AtomicUsize::new(0);

/// Runs `command` with stdin closed and stdout/stderr in `<dir>/runs/N.*`, killing it after
/// [`RUN_TIMEOUT`].
pub(crate) fn run_command(command: &mut Command, dir: &Path, provider_log: Option<&Path>) -> Ran {
    run_command_for(command, dir, provider_log, RUN_TIMEOUT)
}

/// [`run_command`] with another time limit (a run under valgrind).
pub(crate) fn run_command_for(
    command: &mut Command,
    dir: &Path,
    provider_log: Option<&Path>,
    timeout: Duration,
) -> Ran {
    let number = RUN_NUMBER.fetch_add(1, Ordering::Relaxed);
    let runs = dir.join("runs");
    fs::create_dir_all(&runs).expect("create runs directory");
    let stdout_path = runs.join(format!("{number}.stdout"));
    let stderr_path = runs.join(format!("{number}.stderr"));
    let description = describe(command);
    command
        .stdin(Stdio::null())
        .stdout(File::create(&stdout_path).expect("create stdout file"))
        .stderr(File::create(&stderr_path).expect("create stderr file"));
    let mut child = command
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {description}: {e}"));
    let deadline = Instant::now() + timeout;
    let mut timed_out = false;
    let status: ExitStatus = loop {
        if let Some(status) = child.try_wait().expect("wait for child") {
            break status;
        }
        if Instant::now() > deadline {
            timed_out = true;
            let _ = child.kill();
            break child.wait().expect("wait for killed child");
        }
        thread::sleep(Duration::from_millis(5));
    };
    let output = Output {
        status,
        stdout: fs::read(&stdout_path).unwrap_or_default(),
        stderr: fs::read(&stderr_path).unwrap_or_default(),
    };
    Ran {
        command: description,
        output,
        timed_out,
        provider_log: provider_log.map(Path::to_path_buf),
    }
}

/// `env [-u NAME] KEY=value ... program 'arg' ...`, quoted enough to paste into a shell.
fn describe(command: &Command) -> String {
    let mut text = String::from("env");
    // `env` takes its `-u` options before the assignments.
    for (key, value) in command.get_envs() {
        if value.is_none() {
            let _ = write!(text, " -u {}", key.to_string_lossy());
        }
    }
    for (key, value) in command.get_envs() {
        if let Some(value) = value {
            let _ = write!(
                text,
                " {}={}",
                key.to_string_lossy(),
                quote(&value.to_string_lossy())
            );
        }
    }
    text.push(' ');
    text.push_str(&command.get_program().to_string_lossy());
    for arg in command.get_args() {
        text.push(' ');
        text.push_str(&quote(&arg.to_string_lossy()));
    }
    text
}

fn quote(text: &str) -> String {
    let plain = text
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-_./:=,@%+".contains(&b));
    if plain && !text.is_empty() {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

#[test]
fn fixture_builds_tokens_verifies_signatures_and_loads_the_provider() {
    let fx = Fixture::new("fixture-selftest");
    let message = fx.message("message.txt");
    let all = [
        KeyType::Rsa2048,
        KeyType::EcP256,
        KeyType::EcP384,
        KeyType::EcP521,
        KeyType::Ed25519,
        KeyType::Ed448,
    ];
    for (index, key_type) in all.into_iter().enumerate() {
        let id = format!("{:02x}", index + 1);
        fx.generate_key(key_type, &id, &format!("key-{id}"));
        let public_key = fx.export_pubkey(&id);
        assert!(!fx.public_key_der(&public_key).is_empty());
    }
    // The verifier itself must accept a good software signature and reject a tampered message.
    let imported = fx.import_key_with_cert(KeyType::EcP256, "10", "soft");
    let key = fx.file("soft-10.key.pem");
    let signature = fx.file("soft.sig");
    let signed = fx.software_openssl(&[
        "dgst", "-sha384", "-sign", &key, "-out", &signature, &message,
    ]);
    let check = SignatureCheck {
        public_key: &imported.public_key,
        message: &message,
        signature: &signature,
        digest: Some("sha384"),
        verify_options: &[],
    };
    fx.assert_valid_signature(&check, &signed.success());
    let wrong_digest = SignatureCheck {
        digest: Some("sha256"),
        ..check
    };
    assert!(!fx.verify(&wrong_digest));
    // And the fixture's openssl.cnf really loads the provider under test.
    let listed = fx.openssl(&["list", "-providers"]).success();
    let stdout = listed.stdout();
    assert!(
        stdout.contains("pkcs11-ossl") && stdout.contains("status: active"),
        "provider not listed as active\n{}",
        listed.report()
    );
}
