//! `doctor` check 6: every private key the URI selects signs through the provider and the
//! signature verifies, and every certificate with the key's `CKA_ID` holds the key's public
//! key.
//!
//! Signing goes through the `openssl` command with the checked configuration, so it takes the
//! path programs take (provider loading, URI, PIN, mechanism). The public key is the one the
//! provider hands out (`openssl pkey -pubout`); verification and certificate parsing use
//! OpenSSL's default provider alone (`OPENSSL_CONF=/dev/null`). The certificate check verifies
//! the same signature with the certificate's public key, so a certificate issued for another
//! key is caught whatever the key's public key object says.

use std::fs;
use std::io::Read as _;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use cryptoki::session::Session;
use pkcs11_ossl::tool::{ObjectKind, Uri};

use super::{Report, first_error_line};
use crate::token::{self, ObjectEntry, TokenEntry};

/// An `openssl` child that runs longer is stopped (it may wait for a PIN on the terminal).
const OPENSSL_TIMEOUT: Duration = Duration::from_secs(60);

/// What doctor signs.
const MESSAGE: &[u8] = b"pkcs11-ossl doctor: signature check\n";

/// A token whose objects can be read: logged in, or one that needs no login.
pub(crate) struct LoggedIn<'a> {
    pub(crate) token: &'a TokenEntry,
    pub(crate) session: Session,
}

/// The URI the user gave (parsed and as typed) and the configuration file to sign with.
pub(crate) struct KeyCheck<'a> {
    pub(crate) uri: &'a Uri,
    pub(crate) text: &'a str,
    pub(crate) config: &'a Path,
}

pub(crate) fn check_keys(report: &mut Report, check: &KeyCheck<'_>, tokens: &[LoggedIn<'_>]) {
    if tokens.is_empty() {
        report.skip("keys", "no token to look on (see above)");
        return;
    }
    if let Some(kind) = check.uri.kind().filter(|k| *k != ObjectKind::Private) {
        report.skip(
            "keys",
            format!(
                "the URI names type={}; doctor checks private keys (type=private)",
                kind.as_str()
            ),
        );
        return;
    }
    let mut keys: Vec<(&LoggedIn<'_>, ObjectEntry)> = Vec::new();
    for logged_in in tokens {
        match token::find_with(
            &logged_in.session,
            check.uri.object(),
            check.uri.id(),
            Some(ObjectKind::Private),
        ) {
            Ok(found) => keys.extend(found.into_iter().map(|key| (logged_in, key))),
            Err(problem) => report.fail(
                "keys",
                format!(
                    "cannot search token '{}': {problem}",
                    logged_in.token.facts.label
                ),
                "check the token",
            ),
        }
    }
    if keys.is_empty() {
        report.fail(
            "keys",
            format!("no private key matches {}", check.uri),
            "correct object=/id= in the URI; `pkcs11-ossl list` prints every key with its URI",
        );
        return;
    }
    report.ok(
        "keys",
        format!("{} private key(s) match {}", keys.len(), check.uri),
    );
    let scratch = match Scratch::create() {
        Ok(scratch) => scratch,
        Err(problem) => {
            report.fail(
                "keys",
                problem,
                "make the temporary directory writable (TMPDIR)",
            );
            return;
        }
    };
    for (logged_in, key) in &keys {
        check_key(report, check, &scratch, logged_in, key);
    }
}

/// Signs with one key, verifies, and compares the certificates with its id.
fn check_key(
    report: &mut Report,
    check: &KeyCheck<'_>,
    scratch: &Scratch,
    logged_in: &LoggedIn<'_>,
    key: &ObjectEntry,
) {
    let token = logged_in.token;
    let name = format!(
        "key '{}' (id {}, {}) on '{}'",
        key.label.as_deref().unwrap_or(""),
        key.id_hex(),
        key.key_type,
        token.facts.label
    );
    // The user's query (pin-value/pin-source) goes with the key's own URI, so the provider
    // takes the PIN from where the user's URI says.
    let query = check
        .text
        .split_once('?')
        .map(|(_, q)| format!("?{q}"))
        .unwrap_or_default();
    let key_uri = format!("{}{query}", key.uri(token));
    // openssl echoes the URI it was given ("Could not read key from ..."): never print the
    // query, which may hold a pin-value.
    let redact = |problem: String| {
        if query.is_empty() {
            problem
        } else {
            problem.replace(&query, "?...")
        }
    };
    let message = scratch.file("message.txt");
    let public_key = scratch.file("key.pub.pem");
    let signature = scratch.file("message.sig");
    if let Err(problem) = fs::write(&message, MESSAGE) {
        report.fail(
            &name,
            format!("cannot write {}: {problem}", message.display()),
            "check TMPDIR",
        );
        return;
    }
    let _ = fs::remove_file(&signature);
    let exported = run_openssl(
        Some(check.config),
        &[
            "pkey",
            "-in",
            &key_uri,
            "-pubout",
            "-out",
            path_str(&public_key),
        ],
    );
    if let Err(problem) = exported {
        report.fail(
            &name,
            format!(
                "OpenSSL cannot load the key through the provider: {}",
                redact(problem)
            ),
            "run with PKCS11_PROVIDER_DEBUG=file:/dev/stderr,level:2 to see why",
        );
        return;
    }
    let signed = if key.is_eddsa {
        run_openssl(
            Some(check.config),
            &[
                "pkeyutl",
                "-sign",
                "-rawin",
                "-inkey",
                &key_uri,
                "-in",
                path_str(&message),
                "-out",
                path_str(&signature),
            ],
        )
    } else {
        run_openssl(
            Some(check.config),
            &[
                "dgst",
                "-sha256",
                "-sign",
                &key_uri,
                "-out",
                path_str(&signature),
                path_str(&message),
            ],
        )
    };
    if let Err(problem) = signed {
        report.fail(
            &name,
            format!("signing through the provider fails: {}", redact(problem)),
            "check that the key may sign (CKA_SIGN, its allowed mechanisms) and the error above; \
             PKCS11_PROVIDER_DEBUG=file:/dev/stderr,level:2 shows the token calls",
        );
        return;
    }
    let algorithm = if key.is_eddsa { "EdDSA" } else { "SHA-256" };
    match verify(&public_key, &message, &signature, key.is_eddsa) {
        Ok(()) => report.ok(
            &name,
            format!("signs through the provider ({algorithm}) and the signature verifies with its public key"),
        ),
        Err(problem) => {
            report.fail(
                &name,
                format!("the signature does not verify with the key's public key as the provider reads it ({problem})"),
                "the public key object with this id belongs to another key: delete it or give it \
                 the right id (pkcs11-tool --list-objects shows both)",
            );
            return;
        }
    }
    check_certificates(report, scratch, logged_in, key, (&message, &signature));
}

/// Each certificate with the key's id must hold the key's public key: the signature made
/// with the key must verify with it.
fn check_certificates(
    report: &mut Report,
    scratch: &Scratch,
    logged_in: &LoggedIn<'_>,
    key: &ObjectEntry,
    (message, signature): (&Path, &Path),
) {
    let check = format!(
        "certificate of '{}' (id {})",
        key.label.as_deref().unwrap_or(""),
        key.id_hex()
    );
    let Some(id) = key.id.as_deref().filter(|id| !id.is_empty()) else {
        report.skip(&check, "the key has no CKA_ID to pair a certificate with");
        return;
    };
    let certificates =
        match token::find_with(&logged_in.session, None, Some(id), Some(ObjectKind::Cert)) {
            Ok(found) => found,
            Err(problem) => {
                report.fail(
                    &check,
                    format!("cannot search for certificates: {problem}"),
                    "check the token",
                );
                return;
            }
        };
    if certificates.is_empty() {
        report.skip(&check, "no certificate with this id on the token");
        return;
    }
    for (index, certificate) in certificates.iter().enumerate() {
        let der = scratch.file(&format!("cert-{index}.der"));
        let public_key = scratch.file(&format!("cert-{index}.pub.pem"));
        let label = certificate.label.as_deref().unwrap_or("");
        let Some(value) = certificate.certificate.as_deref() else {
            report.fail(
                &check,
                format!("certificate '{label}' has no readable value"),
                "check the certificate object",
            );
            continue;
        };
        if let Err(problem) = fs::write(&der, value) {
            report.fail(
                &check,
                format!("cannot write {}: {problem}", der.display()),
                "check TMPDIR",
            );
            continue;
        }
        let parsed = run_openssl(
            None,
            &[
                "x509",
                "-inform",
                "DER",
                "-in",
                path_str(&der),
                "-pubkey",
                "-noout",
                "-out",
                path_str(&public_key),
            ],
        );
        if let Err(problem) = parsed {
            report.fail(
                &check,
                format!("certificate '{label}' is not a readable X.509 certificate: {problem}"),
                "replace it with the certificate issued for this key",
            );
            continue;
        }
        match verify(&public_key, message, signature, key.is_eddsa) {
            Ok(()) => report.ok(
                &check,
                format!("certificate '{label}' holds the key's public key"),
            ),
            Err(_) => report.fail(
                &check,
                format!(
                    "certificate '{label}' does not belong to this key: its public key differs"
                ),
                "store the certificate issued for this key under its id, or give this \
                 certificate the id of its own key",
            ),
        }
    }
}

/// Verifies with OpenSSL's default provider alone.
fn verify(public_key: &Path, message: &Path, signature: &Path, eddsa: bool) -> Result<(), String> {
    let (public_key, message, signature) =
        (path_str(public_key), path_str(message), path_str(signature));
    let output = if eddsa {
        run_openssl(
            None,
            &[
                "pkeyutl", "-verify", "-pubin", "-inkey", public_key, "-rawin", "-in", message,
                "-sigfile", signature,
            ],
        )
    } else {
        run_openssl(
            None,
            &[
                "dgst",
                "-sha256",
                "-verify",
                public_key,
                "-signature",
                signature,
                message,
            ],
        )
    }?;
    if output.contains("Verified") || output.contains("Signature Verified Successfully") {
        Ok(())
    } else {
        Err(format!("openssl says: {}", output.trim()))
    }
}

fn path_str(path: &Path) -> &str {
    path.to_str().unwrap_or("")
}

/// Runs `openssl` with `config` (the provider loaded) or with `/dev/null` (default provider
/// only), stdin closed, and a time limit. Returns stdout, or the first error line.
fn run_openssl(config: Option<&Path>, args: &[&str]) -> Result<String, String> {
    let mut command = Command::new("openssl");
    command
        .args(args)
        .env("OPENSSL_CONF", config.unwrap_or(Path::new("/dev/null")))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = command
        .spawn()
        .map_err(|e| format!("cannot run openssl: {e}"))?;
    let (status, stdout, stderr) = wait_with_timeout(child)?;
    if status {
        Ok(stdout)
    } else {
        // `dgst -verify` says "Verification failure" on standard output.
        Err(first_error_line(&stderr)
            .or_else(|| first_error_line(&stdout))
            .unwrap_or("failed without a message")
            .to_owned())
    }
}

fn wait_with_timeout(mut child: Child) -> Result<(bool, String, String), String> {
    // The outputs are small; read them on threads so a full pipe cannot stall the child.
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let out = thread::spawn(move || {
        let mut text = String::new();
        if let Some(pipe) = stdout.as_mut() {
            let _ = pipe.read_to_string(&mut text);
        }
        text
    });
    let err = thread::spawn(move || {
        let mut text = String::new();
        if let Some(pipe) = stderr.as_mut() {
            let _ = pipe.read_to_string(&mut text);
        }
        text
    });
    let deadline = Instant::now() + OPENSSL_TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "openssl did not finish within {}s (waiting for a PIN on the terminal?)",
                    OPENSSL_TIMEOUT.as_secs()
                ));
            }
            Ok(None) => thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(format!("cannot wait for openssl: {e}")),
        }
    };
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    Ok((status.success(), stdout, stderr))
}

/// A private temporary directory (mode 0700), removed on drop.
struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    fn create() -> Result<Scratch, String> {
        let base = std::env::temp_dir();
        for attempt in 0..100u32 {
            let dir = base.join(format!(
                "pkcs11-ossl-doctor-{}-{attempt}",
                std::process::id()
            ));
            match fs::DirBuilder::new().mode(0o700).create(&dir) {
                Ok(()) => return Ok(Scratch { dir }),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(format!("cannot create {}: {e}", dir.display())),
            }
        }
        Err(format!("cannot create a directory in {}", base.display()))
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}
