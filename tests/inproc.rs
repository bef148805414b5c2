//! In-process robustness tests (issue 5, STYLE.md 8.7 "inproc.rs"): libcrypto driven from this
//! process through the `openssl` crate, with our provider loaded into its own `OSSL_LIB_CTX` from a
//! config file and keys loaded by `pkcs11:` URI through OSSL_STORE (see `inproc/ossl.rs`).
//!
//! * `public keys`: the provider's exported public keys equal what `pkcs11-tool` reads from the
//!   token (so the software verifiers below check against the token's real keys).
//! * `threads`: N threads × M `EVP_DigestSign`s over RSA-2048, P-256 and Ed25519, half of the
//!   threads through ONE shared `EVP_PKEY` per type, half through keys each thread loads itself;
//!   every signature is verified in software and no thread may end with errors queued.
//! * `fork`: the pre-forking server pattern. Keys are loaded (and used) in the parent, then K
//!   children each sign S times with the inherited keys and verify, exiting 0 or 1; the parent
//!   waits for all of them and must still sign afterwards. SoftHSM2 lives inside the process, so
//!   a child inherits a working copy of it and even a provider that ignores fork passes that; a
//!   second round therefore has each child `C_Finalize` its copy first, as a real token's state
//!   (a device or daemon connection) does not survive fork: only a provider that re-initialises
//!   the module in the child (PKCS#11 3.0 §5.1) passes it.
//!
//! A custom harness (`harness = false`) because SoftHSM2 reads `SOFTHSM2_CONF` from the process
//! environment: `main` builds the token and sets it while still single-threaded, before libcrypto
//! or any test thread runs. It prints `N passed, M failed` and exits 1 on any failure.
//!
//! Run: `cargo test --test inproc`. Scale with env `P11RS_STRESS_THREADS` (default 8),
//! `P11RS_STRESS_SIGNS` (per thread, default 2000), `P11RS_FORK_CHILDREN` (default 4),
//! `P11RS_FORK_SIGNS` (per child, default 100); `P11RS_INPROC_CONFIG` adds provider settings
//! (`key = value;key = value`). The provider is `P11RS_PROVIDER_SO` or the cdylib next to this
//! binary, as in the CLI tests.

// The environment, fork/waitpid and the libcrypto calls the `openssl` crate lacks need `unsafe`.
#![allow(unsafe_code)]
// Without the libtest harness `cfg(test)` is off, so clippy's allow-*-in-tests do not apply:
// this whole crate is test code.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

// This binary uses only the token-building part of the CLI tests' fixture.
#[allow(dead_code)]
mod common;
#[path = "inproc/ossl.rs"]
mod ossl;

use std::env;
use std::ffi::CString;
use std::fmt::Write as _;
use std::io::Write as _;
use std::os::unix::ffi::OsStrExt as _;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::thread;
use std::time::{Duration, Instant};

use openssl::hash::MessageDigest;
use openssl::lib_ctx::{LibCtx, LibCtxRef};
use openssl::pkey::{PKey, PKeyRef, Private, Public};
use openssl::sign::{Signer, Verifier};

use common::{Fixture, KeyType};

/// A child that has not exited after this long is killed and counted as hung.
const CHILD_TIMEOUT: Duration = Duration::from_secs(40);

/// How many error messages of one kind a report quotes.
const QUOTED_ERRORS: usize = 5;

/// The mixed key types of the stress and fork tests.
const KEY_SPECS: [(KeyType, &str, &str); 3] = [
    (KeyType::Rsa2048, "01", "rsa2048"),
    (KeyType::EcP256, "02", "p256"),
    (KeyType::Ed25519, "03", "ed25519"),
];

/// One token key: its URI, how it signs, and its public key as `pkcs11-tool` read it.
struct TokenKey {
    label: &'static str,
    uri: String,
    /// `None`: EdDSA signs the raw message.
    digest: Option<MessageDigest>,
    public: PKey<Public>,
}

impl TokenKey {
    fn sign(&self, key: &PKeyRef<Private>, message: &[u8]) -> Result<Vec<u8>, String> {
        let signed = (|| {
            let mut signer = match self.digest {
                Some(md) => Signer::new(md, key)?,
                None => Signer::new_without_digest(key)?,
            };
            signer.sign_oneshot_to_vec(message)
        })();
        signed.map_err(|e| format!("{} sign: {e}", self.label))
    }

    fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), String> {
        let verified = (|| {
            let mut verifier = match self.digest {
                Some(md) => Verifier::new(md, &self.public)?,
                None => Verifier::new_without_digest(&self.public)?,
            };
            verifier.verify_oneshot(signature, message)
        })();
        match verified {
            Ok(true) => Ok(()),
            Ok(false) => Err(format!(
                "{}: signature does not verify with the token's public key",
                self.label
            )),
            Err(e) => Err(format!("{} verify: {e}", self.label)),
        }
    }

    /// Signs `message` with `key` and checks the result in software.
    fn sign_and_verify(&self, key: &PKeyRef<Private>, message: &[u8]) -> Result<(), String> {
        let signature = self.sign(key, message)?;
        self.verify(message, &signature)
    }
}

/// Everything the tests share: the configured library context and the keys.
/// Fields drop in order: the keys before the library context that holds their provider.
struct World {
    /// One `EVP_PKEY` per key, loaded once in the main thread (same order as `keys`).
    shared: Vec<PKey<Private>>,
    keys: Vec<TokenKey>,
    lib_ctx: LibCtx,
    /// The PKCS#11 module (SoftHSM2) the provider uses.
    module: PathBuf,
}

impl World {
    fn load_keys(&self, lib_ctx: &LibCtxRef) -> Result<Vec<PKey<Private>>, String> {
        self.keys
            .iter()
            .map(|key| ossl::load_private_key(lib_ctx, &key.uri))
            .collect()
    }
}

fn env_count(name: &str, default: usize) -> usize {
    match env::var(name) {
        Ok(text) => text
            .parse()
            .unwrap_or_else(|_| panic!("{name}={text} is not a number")),
        Err(_) => default,
    }
}

/// Builds the token, keys and config; must run while the process is single-threaded.
fn set_up() -> World {
    let fx = Fixture::new("inproc");
    for (key_type, id, label) in KEY_SPECS {
        fx.generate_key(key_type, id, label);
    }
    let keys: Vec<TokenKey> = KEY_SPECS
        .iter()
        .map(|&(key_type, id, label)| {
            let pem = std::fs::read(fx.export_pubkey(id)).expect("read exported public key");
            TokenKey {
                label,
                uri: fx.private_key_uri(label),
                digest: (!key_type.is_eddsa()).then(MessageDigest::sha256),
                public: PKey::public_key_from_pem(&pem).expect("parse pkcs11-tool public key"),
            }
        })
        .collect();
    let conf = fx.write_file(
        "inproc.cnf",
        provider_config(
            &fx.token().module().display().to_string(),
            &fx.file("pin.txt"),
        ),
    );
    // SAFETY: `main` calls this before creating any thread and before libcrypto is used, so no
    // other thread can read the environment concurrently (the fixture only ran child processes).
    unsafe { env::set_var("SOFTHSM2_CONF", fx.token().conf()) };
    let lib_ctx = ossl::lib_ctx_from_config(Path::new(&conf)).expect("provider config");
    let shared = keys
        .iter()
        .map(|key| ossl::load_private_key(&lib_ctx, &key.uri).expect("load token key"))
        .collect();
    World {
        shared,
        keys,
        lib_ctx,
        module: fx.token().module().to_path_buf(),
    }
}

/// The `openssl.cnf` for the test's library context: default provider plus ours.
/// `P11RS_INPROC_CONFIG` (`key = value;key = value`) adds provider settings, e.g. to compare
/// `pkcs11-module-cache-keys = false`.
fn provider_config(softhsm: &str, pin_file: &str) -> String {
    let mut text = format!(
        "openssl_conf = openssl_init\n\n[openssl_init]\nproviders = provider_sect\n\n\
         [provider_sect]\ndefault = default_sect\npkcs11 = pkcs11_sect\n\n\
         [default_sect]\nactivate = 1\n\n[pkcs11_sect]\nmodule = {}\n\
         pkcs11-module-path = {softhsm}\npkcs11-module-token-pin = file:{pin_file}\n\
         pkcs11-module-quirks = no-deinit\n",
        common::provider_so().display()
    );
    if let Ok(extra) = env::var("P11RS_INPROC_CONFIG") {
        for line in extra.split(';').filter(|l| !l.trim().is_empty()) {
            let _ = writeln!(text, "{}", line.trim());
        }
    }
    text.push_str("activate = 1\n");
    text
}

/// The provider's public keys (exported to the default provider) equal pkcs11-tool's.
fn public_keys_match(world: &World) -> Result<(), String> {
    for (key, loaded) in world.keys.iter().zip(&world.shared) {
        let from_provider = loaded
            .public_key_to_der()
            .map_err(|e| format!("{}: export public key: {e}", key.label))?;
        let from_tool = key.public.public_key_to_der().map_err(|e| e.to_string())?;
        if from_provider != from_tool {
            return Err(format!(
                "{}: provider public key differs from pkcs11-tool's",
                key.label
            ));
        }
        key.sign_and_verify(loaded, b"public key check")?;
    }
    Ok(())
}

/// What one stress thread saw.
#[derive(Default)]
struct ThreadReport {
    verified: usize,
    errors: Vec<String>,
}

/// Runs the stress threads; even-numbered threads use the shared keys, odd ones load their own.
fn stress(world: &World, threads: usize, signs: usize) -> (ThreadReport, ThreadReport) {
    let reports: Vec<(bool, ThreadReport)> = thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|index| {
                let shared_keys = index % 2 == 0;
                let handle = scope.spawn(move || stress_thread(world, index, shared_keys, signs));
                (shared_keys, handle)
            })
            .collect();
        handles
            .into_iter()
            .map(|(shared_keys, handle)| {
                let report = handle.join().unwrap_or_else(|_| ThreadReport {
                    verified: 0,
                    errors: vec!["thread panicked".to_owned()],
                });
                (shared_keys, report)
            })
            .collect()
    });
    let mut shared = ThreadReport::default();
    let mut separate = ThreadReport::default();
    for (shared_keys, report) in reports {
        let total = if shared_keys {
            &mut shared
        } else {
            &mut separate
        };
        total.verified += report.verified;
        total.errors.extend(report.errors);
    }
    (shared, separate)
}

fn stress_thread(world: &World, index: usize, shared_keys: bool, signs: usize) -> ThreadReport {
    let mut report = ThreadReport::default();
    let own_keys;
    let keys: &[PKey<Private>] = if shared_keys {
        &world.shared
    } else {
        match world.load_keys(&world.lib_ctx) {
            Ok(loaded) => {
                own_keys = loaded;
                &own_keys
            }
            Err(e) => {
                report.errors.push(format!("thread {index}: load: {e}"));
                return report;
            }
        }
    };
    for round in 0..signs {
        // Each thread starts on a different key type so that all types are hit concurrently.
        let which = (index + round) % keys.len();
        let message = format!("thread {index} signature {round}");
        match world.keys[which].sign_and_verify(&keys[which], message.as_bytes()) {
            Ok(()) => report.verified += 1,
            Err(e) => report.errors.push(format!("thread {index} #{round}: {e}")),
        }
    }
    let leftover = openssl::error::ErrorStack::get();
    if !leftover.errors().is_empty() {
        report.errors.push(format!(
            "thread {index}: errors left on the OpenSSL error queue: {leftover}"
        ));
    }
    report
}

fn check_stress(name: &str, report: &ThreadReport, expected: usize) -> Result<(), String> {
    if report.errors.is_empty() && report.verified == expected {
        println!("    {name}: {} signatures verified", report.verified);
        return Ok(());
    }
    let mut text = format!(
        "{name}: {} of {expected} signatures verified, {} errors",
        report.verified,
        report.errors.len()
    );
    for error in report.errors.iter().take(QUOTED_ERRORS) {
        let _ = write!(text, "\n      {error}");
    }
    Err(text)
}

/// What a forked child does to the PKCS#11 module before it signs.
#[derive(Clone, Copy, PartialEq)]
enum ChildModule {
    /// Nothing: the child uses whatever it inherited (a pre-forking server as it is).
    Inherited,
    /// `C_Finalize` first. SoftHSM2 lives in the process, so a child inherits a working copy of
    /// its sessions and login and a provider that ignores fork still "works" with it; real
    /// tokens (a daemon or device connection, p11-kit remoting) do not survive fork, and PKCS#11
    /// 3.0 §5.1 requires a child to `C_Initialize` afresh. Finalising the child's copy makes
    /// SoftHSM2 behave like them: only a provider that re-initialises after fork passes.
    Finalized,
}

/// Forks `children` children that each sign `signs` times with the parent's keys.
fn fork_children(
    world: &World,
    children: usize,
    signs: usize,
    module: ChildModule,
) -> Result<(), String> {
    // Buffered output would be written again by every child that flushes it.
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    let mut pids = Vec::new();
    for child in 0..children {
        let (ready_read, ready_write) = pipe()?;
        // SAFETY: this process is single-threaded here (the stress threads were joined), so the
        // child gets consistent copies of every lock; it then uses OpenSSL on purpose, as a
        // pre-forking server does, and leaves with `_exit`.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(format!("fork: {}", std::io::Error::last_os_error()));
        }
        if pid == 0 {
            close_fd(ready_read);
            let code = panic::catch_unwind(AssertUnwindSafe(|| {
                if module == ChildModule::Finalized {
                    if let Err(e) = finalize_module(&world.module) {
                        eprintln!("    [child {child}] {e}");
                        write_byte(ready_write);
                        return 3;
                    }
                }
                child_signs(world, child, signs, ready_write)
            }))
            .unwrap_or(2);
            // SAFETY: ends the child without running the parent's atexit handlers (OpenSSL and
            // SoftHSM2 cleanup belong to the parent).
            unsafe { libc::_exit(code) };
        }
        close_fd(ready_write);
        // SoftHSM2's file store rewrites the token on every login, and a process reading the
        // token at that moment can miss it (DESIGN.md, quirks): let each child get through its
        // first signature (re-initialisation and login) before the next one starts. The
        // remaining signatures of all children still overlap.
        wait_readable(ready_read, CHILD_TIMEOUT);
        close_fd(ready_read);
        pids.push(pid);
    }
    let mut failures = Vec::new();
    for (child, pid) in pids.into_iter().enumerate() {
        match wait_child(pid, CHILD_TIMEOUT) {
            ChildEnd::Exited(0) => {}
            ChildEnd::Exited(code) => failures.push(format!("child {child} exited with {code}")),
            ChildEnd::Signalled(signal) => {
                failures.push(format!("child {child} killed by signal {signal}"))
            }
            ChildEnd::Hung => failures.push(format!(
                "child {child} still running after {CHILD_TIMEOUT:?}; killed"
            )),
        }
    }
    if failures.is_empty() {
        println!("    {children} children × {signs} signatures verified");
        Ok(())
    } else {
        Err(failures.join("; "))
    }
}

/// Calls `C_Finalize(NULL)` of the already loaded module at `path`.
fn finalize_module(path: &Path) -> Result<(), String> {
    let c_path = CString::new(path.as_os_str().as_bytes()).map_err(|e| e.to_string())?;
    // SAFETY: RTLD_NOLOAD only looks up a library that is already loaded (the provider loaded
    // it); the handle is never closed, so the module stays mapped.
    let handle = unsafe { libc::dlopen(c_path.as_ptr(), libc::RTLD_NOW | libc::RTLD_NOLOAD) };
    if handle.is_null() {
        return Err(format!("{} is not loaded in this process", path.display()));
    }
    // SAFETY: `handle` is live and the name NUL-terminated.
    let symbol = unsafe { libc::dlsym(handle, c"C_Finalize".as_ptr()) };
    if symbol.is_null() {
        return Err(format!("{} has no C_Finalize", path.display()));
    }
    // SAFETY: PKCS#11 defines `CK_RV C_Finalize(CK_VOID_PTR pReserved)`; the symbol is that
    // function, and NULL is the required argument.
    let rv = unsafe {
        let finalize: unsafe extern "C" fn(*mut libc::c_void) -> libc::c_ulong =
            std::mem::transmute(symbol);
        finalize(std::ptr::null_mut())
    };
    if rv == 0 {
        Ok(())
    } else {
        Err(format!("C_Finalize in the child returned {rv:#x}"))
    }
}

/// The child's work: returns its exit code. Failures go to stderr with the child's pid.
fn child_signs(world: &World, child: usize, signs: usize, ready: libc::c_int) -> i32 {
    // SAFETY: getpid has no preconditions.
    let pid = unsafe { libc::getpid() };
    let mut failed = 0;
    let mut ready = Some(ready);
    for round in 0..signs {
        let which = (child + round) % world.keys.len();
        let message = format!("child {child} signature {round}");
        let outcome = world.keys[which].sign_and_verify(&world.shared[which], message.as_bytes());
        if let Err(e) = outcome {
            failed += 1;
            if failed <= QUOTED_ERRORS {
                eprintln!("    [child {child}, pid {pid}] signature {round}: {e}");
            }
        }
        if let Some(fd) = ready.take() {
            write_byte(fd);
            close_fd(fd);
        }
    }
    if failed > 0 {
        eprintln!("    [child {child}, pid {pid}] {failed} of {signs} signatures failed");
        1
    } else {
        0
    }
}

/// After the children are done, the parent's keys still sign.
fn parent_signs_after_fork(world: &World) -> Result<(), String> {
    for (key, loaded) in world.keys.iter().zip(&world.shared) {
        key.sign_and_verify(loaded, b"parent after fork")?;
    }
    // And a freshly loaded key works too.
    let fresh = world.load_keys(&world.lib_ctx)?;
    for (key, loaded) in world.keys.iter().zip(&fresh) {
        key.sign_and_verify(loaded, b"parent after fork, new key")?;
    }
    Ok(())
}

enum ChildEnd {
    Exited(i32),
    Signalled(i32),
    Hung,
}

fn wait_child(pid: libc::pid_t, timeout: Duration) -> ChildEnd {
    let deadline = Instant::now() + timeout;
    loop {
        let mut status = 0;
        // SAFETY: `pid` is our child and `status` a valid out-pointer.
        let done = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if done == pid {
            if libc::WIFEXITED(status) {
                return ChildEnd::Exited(libc::WEXITSTATUS(status));
            }
            if libc::WIFSIGNALED(status) {
                return ChildEnd::Signalled(libc::WTERMSIG(status));
            }
        }
        if done < 0 {
            return ChildEnd::Exited(-1);
        }
        if Instant::now() > deadline {
            // SAFETY: `pid` is our own child, not yet reaped.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, &mut status, 0);
            }
            return ChildEnd::Hung;
        }
        thread::sleep(Duration::from_millis(10));
    }
}

fn pipe() -> Result<(libc::c_int, libc::c_int), String> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe(2) writes.
    if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
        return Err(format!("pipe: {}", std::io::Error::last_os_error()));
    }
    Ok((fds[0], fds[1]))
}

fn close_fd(fd: libc::c_int) {
    // SAFETY: `fd` is a pipe end this process owns and closes once.
    unsafe { libc::close(fd) };
}

fn write_byte(fd: libc::c_int) {
    // SAFETY: writes one byte from a live local to a pipe end we own.
    unsafe { libc::write(fd, [1u8].as_ptr().cast(), 1) };
}

/// Waits until `fd` is readable or closed by the writer (a crashed child), at most `timeout`.
fn wait_readable(fd: libc::c_int, timeout: Duration) {
    let mut poll = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    let millis = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
    // SAFETY: one valid pollfd; poll only writes its `revents`.
    unsafe { libc::poll(&mut poll, 1, millis) };
}

/// Runs one test, catching panics; prints its outcome.
fn run(name: &str, results: &mut Vec<bool>, test: impl FnOnce() -> Result<(), String>) {
    println!("test {name} ...");
    let started = Instant::now();
    let outcome = match panic::catch_unwind(AssertUnwindSafe(test)) {
        Ok(outcome) => outcome,
        Err(payload) => Err(payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_else(|| "panicked".to_owned())),
    };
    let elapsed = started.elapsed().as_secs_f64();
    match &outcome {
        Ok(()) => println!("test {name} ... ok ({elapsed:.1} s)"),
        Err(e) => println!("test {name} ... FAILED ({elapsed:.1} s)\n    {e}"),
    }
    results.push(outcome.is_ok());
}

fn main() -> ExitCode {
    let threads = env_count("P11RS_STRESS_THREADS", 8);
    let signs = env_count("P11RS_STRESS_SIGNS", 2000);
    let children = env_count("P11RS_FORK_CHILDREN", 4);
    let child_signs = env_count("P11RS_FORK_SIGNS", 100);

    let started = Instant::now();
    let world = set_up();
    println!(
        "inproc: token and provider ready in {:.1} s ({})",
        started.elapsed().as_secs_f64(),
        common::provider_so().display()
    );

    let mut results = Vec::new();
    run("public_keys_match_pkcs11_tool", &mut results, || {
        public_keys_match(&world)
    });
    let half = threads / 2;
    let stress_started = Instant::now();
    let (shared, separate) = stress(&world, threads, signs);
    println!(
        "stress: {threads} threads x {signs} signatures in {:.1} s",
        stress_started.elapsed().as_secs_f64()
    );
    run(
        &format!("threads_{}x{signs}_one_shared_pkey", threads - half),
        &mut results,
        || check_stress("shared EVP_PKEYs", &shared, (threads - half) * signs),
    );
    run(
        &format!("threads_{half}x{signs}_own_pkeys"),
        &mut results,
        || check_stress("separately loaded EVP_PKEYs", &separate, half * signs),
    );
    run(
        &format!("fork_{children}_children_sign_{child_signs}"),
        &mut results,
        || fork_children(&world, children, child_signs, ChildModule::Inherited),
    );
    run(
        &format!("fork_{children}_children_token_state_lost_sign_{child_signs}"),
        &mut results,
        || fork_children(&world, children, child_signs, ChildModule::Finalized),
    );
    run("parent_signs_after_fork", &mut results, || {
        parent_signs_after_fork(&world)
    });

    let failed = results.iter().filter(|ok| !**ok).count();
    println!("\ninproc: {:.1} s", started.elapsed().as_secs_f64());
    // Alone on its line: CI reads this closing line.
    println!("{} passed, {failed} failed", results.len() - failed);
    let _ = std::io::stdout().flush();
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
