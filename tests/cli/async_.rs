//! Asynchronous signing (issue 11): inside an OpenSSL ASYNC job the provider hands the token
//! call to a worker thread and pauses the job, so a one-thread event loop goes on with other
//! connections while a slow token signs.
//!
//! The slow token is `tests/faultmod/faultmod.c` in front of the fixture's SoftHSM2 token with
//! 20 ms per `C_Sign` (a network HSM). Overlap is proved without a clock: the fault module
//! records the most `C_Sign` calls in progress at once (`C_Sign.peak`), and `FAULT_GATHER` holds
//! each call until N are in progress, so a provider that signs N at a time always reaches N and
//! one that signs one after another never does (it would wait out the gather timeout and show
//! 1). Every handshake is checked by a peer without this provider: the clients inside
//! `tests/programs/async_tls.c` use a library context with only the default provider,
//! `tests/programs/tls_clients.c` and `openssl s_client` run with `OPENSSL_CONF=/dev/null`; they
//! trust only a software CA that certified the public key pkcs11-tool read from the token, so a
//! verified handshake is a verified token signature.
//!
//! - `async_tls.c` (one thread, `SSL_MODE_ASYNC`, socketpairs, poll on
//!   `SSL_get_all_async_fds`, or a wake-up callback): 16 handshakes overlap (peak >= 8);
//!   resumed early, a job pauses again; with `pkcs11-module-async = off` the peak is 1; a token error reaches the caller's
//!   error stack; the most stack an ASYNC job used (stack painting) stays far below OpenSSL's
//!   32 KiB job stack.
//! - 1 000 clients that leave while their signature is in flight, under valgrind memcheck: no
//!   invalid access, nothing lost; the server still serves afterwards. Connections freed while
//!   their job is paused (HAProxy's way): no invalid access, and nothing the provider allocated
//!   for itself is lost (OpenSSL leaks the paused job itself).
//! - HAProxy 2.6 (`nbthread 1`) with and without `ssl-mode-async`, 32 clients at once.
//! - `openssl s_server -async`.
//! - The sign-duration metrics, through `examples/metrics.c` (provider parameters) and the
//!   metrics file, count exactly the signatures made, by status and algorithm.

mod metrics;
mod servers;

use std::collections::HashMap;
use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::faults::{Counts, FaultFixture};
use super::programs::{Ca, Role, TokenCredential};
use crate::common::pemfile::pem_uri_file;
use crate::common::{KeyType, Ran, run_command_for};

/// 20 ms per `C_Sign`: a network HSM.
const SLOW_SIGN: &str = "C_Sign:20000";
/// Each `C_Sign` waits until 8 are in progress (at most 10 s, once).
const GATHER_8: &str = "C_Sign:8:10000000";
/// The job stack of OpenSSL 3.0 (`STACKSIZE`, crypto/async/arch/async_posix.c), allocated
/// without a guard page.
const JOB_STACK: i64 = 32 * 1024;
/// The most a job may use of it in these tests: a quarter stays free for what OpenSSL's own
/// frames need on other paths.
const JOB_STACK_LIMIT: i64 = 24 * 1024;
/// Connections that leave while their signature is in flight.
const DISCONNECTS: usize = 1000;
/// Connections freed with their job paused, under valgrind (each one makes OpenSSL leak the
/// job's 32 KiB stack, which valgrind then has to scan).
const ABANDONED_UNDER_VALGRIND: usize = 200;
/// Upper bound for one program run under valgrind.
const VALGRIND_TIMEOUT: Duration = Duration::from_secs(240);

/// A P-256 key on the fixture's token behind the fault module, a software CA and the key's
/// certificate, and a PEM-URI key file naming the key.
struct AsyncFixture {
    ffx: FaultFixture,
    ca: Ca,
    credential: TokenCredential,
}

impl AsyncFixture {
    fn new(name: &str) -> AsyncFixture {
        let ffx = FaultFixture::new(name);
        let ca = Ca::new(&ffx.fx);
        let public_key = ffx.fx.export_pubkey("01");
        let cert = ca.issue(&ffx.fx, &public_key, "server", Role::Server);
        let key_file = ffx.fx.write_file("key.pem", pem_uri_file(&ffx.uri()));
        AsyncFixture {
            ffx,
            ca,
            credential: TokenCredential {
                key_file,
                cert,
                public_key,
                key_type: KeyType::EcP256,
            },
        }
    }

    /// Runs `async_tls [options] <key URI> <cert> <CA>` with the provider.
    fn async_tls(&self, program: &str, options: &[&str]) -> Ran {
        let uri = self.ffx.uri();
        let mut args = options.to_vec();
        args.extend([uri.as_str(), &self.credential.cert, &self.ca.cert]);
        self.ffx.fx.run_with_provider(program, &args)
    }
}

/// The `name: value` lines of a program's stdout ("job stack peak: N bytes" gives N).
struct Figures<'a> {
    values: HashMap<String, i64>,
    ran: &'a Ran,
}

impl<'a> Figures<'a> {
    fn of(ran: &'a Ran) -> Figures<'a> {
        let values = ran
            .stdout()
            .lines()
            .filter_map(|line| {
                let (name, value) = line.split_once(": ")?;
                let number = value.split_whitespace().next()?.parse().ok()?;
                Some((name.to_owned(), number))
            })
            .collect();
        Figures { values, ran }
    }

    #[track_caller]
    fn get(&self, name: &str) -> i64 {
        *self
            .values
            .get(name)
            .unwrap_or_else(|| panic!("no '{name}: N' line in the output\n{}", self.ran.report()))
    }

    /// Asserts each `(name, value)`.
    #[track_caller]
    fn assert(&self, expected: &[(&str, i64)], counts: &Counts) {
        let wrong: Vec<String> = expected
            .iter()
            .filter(|(name, value)| self.get(name) != *value)
            .map(|(name, value)| format!("{name}: {} (want {value})", self.get(name)))
            .collect();
        assert!(
            wrong.is_empty(),
            "{}\nfault module counts:\n{}\n{}",
            wrong.join("\n"),
            counts.text(),
            self.ran.report()
        );
    }
}

// ---------------------------------------------------------------------------------------------
// One-thread event loop in C (tests/programs/async_tls.c)
// ---------------------------------------------------------------------------------------------

/// 16 handshakes in one thread with `SSL_MODE_ASYNC` on a 20 ms token: all complete and
/// verify, every signature went through a paused job, the fault module saw at least 8 `C_Sign`
/// in progress at once, one `C_Sign` per handshake, and the provider's counters (read by the
/// program through `OSSL_PROVIDER_get_params`) show the 16 signatures. The most stack any ASYNC
/// job used (stack painting in the program) is reported and must stay below 24 KiB. Resumed
/// before its signature is there (`-S`: every waiting job at every turn of the loop), a job
/// pauses again, and the handshakes still complete with one `C_Sign` each.
#[test]
fn async_tls_overlaps_handshakes_on_a_slow_token() {
    let mut afx = AsyncFixture::new("async-tls-overlap");
    let program = afx.ffx.fx.compile_program("async_tls");
    let counts = afx
        .ffx
        .arm(&[("FAULT_DELAY_US", SLOW_SIGN), ("FAULT_GATHER", GATHER_8)]);
    let ran = afx.async_tls(&program, &[]).success();
    let figures = Figures::of(&ran);
    figures.assert(
        &[
            ("handshakes", 16),
            ("failed", 0),
            ("async_waits", 16),
            ("signatures_counted", 16),
        ],
        &counts,
    );
    let (signs, peak) = (counts.of("C_Sign"), counts.of("C_Sign.peak"));
    assert!(
        signs == 16 && peak >= 8,
        "want 16 C_Sign with at least 8 at once, got {signs} with a peak of {peak}\n\
         counts:\n{}\n{}",
        counts.text(),
        ran.report()
    );
    let (stacks, stack_peak) = (figures.get("job stacks"), figures.get("job stack peak"));
    println!(
        "async_tls: C_Sign.peak {peak}, {stacks} job stacks, job stack peak {stack_peak} bytes"
    );
    assert!(
        stacks >= 1 && stack_peak > 0 && stack_peak < JOB_STACK_LIMIT,
        "job stack use: {stack_peak} bytes of {JOB_STACK} in {stacks} jobs (want 1..{JOB_STACK_LIMIT})\n{}",
        ran.report()
    );

    let counts = afx.ffx.arm(&[("FAULT_DELAY_US", SLOW_SIGN)]);
    let ran = afx.async_tls(&program, &["-S"]).success();
    let figures = Figures::of(&ran);
    figures.assert(
        &[("handshakes", 16), ("failed", 0), ("async_waits", 16)],
        &counts,
    );
    assert!(
        figures.get("spurious_resumes") > 0 && counts.of("C_Sign") == 16,
        "want spurious resumes and 16 C_Sign\ncounts:\n{}\n{}",
        counts.text(),
        ran.report()
    );

    // A program that asks for a wake-up callback instead of polling the wait fds (-C).
    let counts = afx
        .ffx
        .arm(&[("FAULT_DELAY_US", SLOW_SIGN), ("FAULT_GATHER", GATHER_8)]);
    let ran = afx.async_tls(&program, &["-C"]).success();
    Figures::of(&ran).assert(
        &[
            ("handshakes", 16),
            ("failed", 0),
            ("async_waits", 16),
            ("callbacks", 16),
        ],
        &counts,
    );
    assert!(
        counts.of("C_Sign.peak") >= 8,
        "counts:\n{}\n{}",
        counts.text(),
        ran.report()
    );
}

/// `pkcs11-module-async = off`: the same 16 handshakes in ASYNC jobs complete and verify, but
/// every signature is made on the event loop's thread, one at a time (peak 1, no job paused).
#[test]
fn async_off_signs_one_at_a_time() {
    let mut afx = AsyncFixture::new("async-tls-off");
    let program = afx.ffx.fx.compile_program("async_tls");
    afx.ffx.fx.config_mut().set("pkcs11-module-async", "off");
    let counts = afx.ffx.arm(&[("FAULT_DELAY_US", SLOW_SIGN)]);
    let ran = afx.async_tls(&program, &[]).success();
    let figures = Figures::of(&ran);
    figures.assert(
        &[
            ("handshakes", 16),
            ("failed", 0),
            ("async_waits", 0),
            ("signatures_counted", 16),
        ],
        &counts,
    );
    assert!(
        counts.of("C_Sign") == 16 && counts.of("C_Sign.peak") == 1,
        "want 16 C_Sign, one at a time\ncounts:\n{}\n{}",
        counts.text(),
        ran.report()
    );
    println!(
        "async_tls with pkcs11-module-async = off: job stack peak {} bytes (the token call runs \
         on the job's stack)",
        figures.get("job stack peak")
    );
}

/// Every `C_Sign` fails with `CKR_DEVICE_ERROR` while the jobs wait: both handshakes fail
/// cleanly, the program's `ERR_print_errors` on the event loop's thread shows the provider's
/// error with the PKCS#11 code (carried back from the worker), each signature was tried once
/// and counted as an error.
#[test]
fn async_token_error_reaches_the_error_stack() {
    let mut afx = AsyncFixture::new("async-tls-error");
    let program = afx.ffx.fx.compile_program("async_tls");
    let counts = afx.ffx.arm(&[
        ("FAULT_DELAY_US", SLOW_SIGN),
        ("FAULT_RULES", "C_Sign:1-:CKR_DEVICE_ERROR"),
    ]);
    let ran = afx.async_tls(&program, &["-n", "2"]);
    assert!(
        !ran.timed_out && ran.output.status.code() == Some(2),
        "want exit status 2 (handshakes failed)\n{}",
        ran.report()
    );
    ran.assert_provider_error(&["CKR_DEVICE_ERROR"]);
    let figures = Figures::of(&ran);
    figures.assert(
        &[
            ("handshakes", 0),
            ("async_waits", 2),
            ("signatures_counted", 2),
        ],
        &counts,
    );
    assert_eq!(
        counts.of("C_Sign"),
        2,
        "counts:\n{}\n{}",
        counts.text(),
        ran.report()
    );
}

// ---------------------------------------------------------------------------------------------
// Clients that leave while their signature is in flight
// ---------------------------------------------------------------------------------------------

/// valgrind memcheck with the options of scripts/valgrind.sh and its suppressions; `leaks_fail`:
/// definite and indirect leaks make the exit status 99 (else only memory errors do).
fn valgrind(log: &str, leaks_fail: bool) -> Vec<String> {
    let suppressions = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/valgrind.supp");
    let leak_errors = if leaks_fail {
        "definite,indirect"
    } else {
        "none"
    };
    [
        "--tool=memcheck",
        "--leak-check=full",
        &format!("--errors-for-leak-kinds={leak_errors}"),
        "--show-leak-kinds=definite,indirect",
        "--error-exitcode=99",
        &format!("--suppressions={suppressions}"),
        "--track-origins=no",
        "--keep-debuginfo=yes",
        "--num-callers=40",
        &format!("--log-file={log}"),
    ]
    .map(str::to_owned)
    .to_vec()
}

/// Runs async_tls under valgrind; the provider log at level 1 (every signature at level 2
/// would slow valgrind down).
fn async_tls_under_valgrind(
    afx: &AsyncFixture,
    program: &str,
    log: &str,
    leaks_fail: bool,
    options: &[&str],
) -> Ran {
    let fx = &afx.ffx.fx;
    let mut command = fx.provider_command("valgrind");
    command
        .env(
            "PKCS11_PROVIDER_DEBUG",
            format!("file:{},level:1", fx.provider_log().display()),
        )
        .args(valgrind(log, leaks_fail))
        .arg(program)
        // No stack painting: valgrind takes the scan of a job stack for invalid reads.
        .arg("-P")
        .args(["-d", "200"])
        .args(options)
        .args([&afx.ffx.uri(), &afx.credential.cert, &afx.ca.cert]);
    run_command_for(
        &mut command,
        Path::new(&fx.file("")),
        Some(&fx.provider_log()),
        VALGRIND_TIMEOUT,
    )
}

/// One leak record of a valgrind log: its first line and its frames.
struct LossRecord {
    lines: Vec<String>,
}

/// The "definitely lost" and "indirectly lost" records of a valgrind log.
fn loss_records(log: &str) -> Vec<LossRecord> {
    let mut records: Vec<LossRecord> = Vec::new();
    let mut open = false;
    for line in log.lines() {
        // "==PID== text"
        let text = line.split_once("== ").map_or("", |(_, text)| text);
        if text.contains("are definitely lost in loss record")
            || text.contains("are indirectly lost in loss record")
        {
            records.push(LossRecord {
                lines: vec![text.to_owned()],
            });
            open = true;
        } else if open && !text.trim().is_empty() {
            if let Some(record) = records.last_mut() {
                record.lines.push(text.to_owned());
            }
        } else {
            open = false;
        }
    }
    records
}

/// Memory errors (not leaks) valgrind reported.
fn memory_errors(log: &str) -> Vec<&str> {
    const KINDS: &[&str] = &[
        "Invalid read",
        "Invalid write",
        "Invalid free",
        "Mismatched free",
        "uninitialised",
        "overlap",
        "Process terminating",
    ];
    log.lines()
        .filter(|line| KINDS.iter().any(|kind| line.contains(kind)))
        .collect()
}

/// 1 000 clients leave while the server's job waits for their signature (20 ms token); the
/// server (async_tls, one thread) resumes each job when its signature is there, the handshake
/// fails on the closed connection and the server frees it. Under valgrind memcheck: no invalid
/// access and nothing lost (definitely or indirectly, with scripts/valgrind.supp), every
/// signature made and counted, and 4 normal handshakes afterwards still complete and verify.
#[test]
fn clients_leaving_mid_signature_leak_nothing_under_valgrind() {
    require_valgrind();
    let mut afx = AsyncFixture::new("async-disconnect-valgrind");
    let program = afx.ffx.fx.compile_program("async_tls");
    let counts = afx.ffx.arm(&[("FAULT_DELAY_US", SLOW_SIGN)]);
    let log = afx.ffx.fx.file("valgrind-disconnect.log");
    let total = DISCONNECTS.to_string();
    let ran = async_tls_under_valgrind(
        &afx,
        &program,
        &log,
        true,
        &["-m", "disconnect", "-n", &total, "-w", "32", "-r", "4"],
    );
    let report = fs::read_to_string(&log).unwrap_or_default();
    let summary: Vec<&str> = report
        .lines()
        .filter(|line| line.contains("lost:") || line.contains("ERROR SUMMARY"))
        .collect();
    assert!(
        ran.output.status.success() && !ran.timed_out,
        "valgrind or the program failed (99: valgrind found errors or leaks)\n{}\n\
         valgrind log {log}:\n{}",
        ran.report(),
        report
            .lines()
            .filter(|line| !line.ends_with("== "))
            .take(200)
            .collect::<Vec<_>>()
            .join("\n")
    );
    let n = DISCONNECTS as i64;
    Figures::of(&ran).assert(
        &[
            ("disconnected", n),
            ("failed_after_disconnect", n),
            ("async_waits", n + 4),
            ("signatures_counted", n + 4),
            ("survivors", 4),
            ("failed", 0),
        ],
        &counts,
    );
    assert!(
        memory_errors(&report).is_empty()
            && report.contains("definitely lost: 0 bytes")
            && report.contains("indirectly lost: 0 bytes"),
        "valgrind summary: {summary:?}\nlog: {log}"
    );
    assert_eq!(counts.of("C_Sign"), n as u64 + 4, "{}", counts.text());
    println!("{DISCONNECTS} disconnects under valgrind: {summary:?}");
}

/// Connections freed while their job is paused and the signature in flight (what HAProxy does
/// when a client leaves): the worker finishes into a wait context that is gone. Under valgrind:
/// no invalid access; OpenSSL leaks each paused job (its stack and what libssl's frames on it
/// own), but no lost block was allocated by the provider for itself: the only provider
/// allocations in the lost records are the signature contexts OpenSSL had it make
/// (`*_newctx`), which OpenSSL's leaked `EVP_PKEY_CTX` owns. The same with a wake-up callback
/// (`-C`): the worker must not call it for a freed connection (its argument is the freed
/// `SSL`), only for the 4 that follow. Then, without valgrind, 1 000 such connections; in
/// every run the server completes 4 more handshakes.
#[test]
fn connections_freed_mid_signature_are_safe() {
    require_valgrind();
    let mut afx = AsyncFixture::new("async-abandon");
    let program = afx.ffx.fx.compile_program("async_tls");
    let counts = afx.ffx.arm(&[("FAULT_DELAY_US", SLOW_SIGN)]);
    let log = afx.ffx.fx.file("valgrind-abandon.log");
    let total = ABANDONED_UNDER_VALGRIND.to_string();
    let ran = async_tls_under_valgrind(
        &afx,
        &program,
        &log,
        false,
        &["-m", "abandon", "-n", &total, "-w", "32", "-r", "4"],
    );
    let report = fs::read_to_string(&log).unwrap_or_default();
    assert!(
        ran.output.status.success() && !ran.timed_out && memory_errors(&report).is_empty(),
        "valgrind found memory errors (exit 99) or the program failed\n{}\nvalgrind log: {log}",
        ran.report()
    );
    let n = ABANDONED_UNDER_VALGRIND as i64;
    Figures::of(&ran).assert(
        &[
            ("abandoned", n),
            ("survivors", 4),
            ("signatures_counted", n + 4),
            ("failed", 0),
        ],
        &counts,
    );
    let records = loss_records(&report);
    let providers_own: Vec<String> = records
        .iter()
        .filter(|record| {
            record.lines.iter().any(|l| l.contains("pkcs11_ossl"))
                && !record.lines.iter().any(|l| l.contains("_newctx"))
        })
        .map(|record| record.lines.join("\n"))
        .collect();
    assert!(
        !records.is_empty(),
        "no loss records at all: is OpenSSL's leak of paused jobs gone, or the log empty? {log}"
    );
    assert!(
        providers_own.is_empty(),
        "blocks the provider allocated for itself were lost:\n{}",
        providers_own.join("\n\n")
    );

    let counts = afx.ffx.arm(&[("FAULT_DELAY_US", SLOW_SIGN)]);
    let log = afx.ffx.fx.file("valgrind-abandon-callback.log");
    let ran = async_tls_under_valgrind(
        &afx,
        &program,
        &log,
        false,
        &["-C", "-m", "abandon", "-n", "50", "-w", "16", "-r", "4"],
    );
    let report = fs::read_to_string(&log).unwrap_or_default();
    assert!(
        ran.output.status.success() && !ran.timed_out && memory_errors(&report).is_empty(),
        "valgrind found memory errors (exit 99) or the program failed\n{}\nvalgrind log: {log}",
        ran.report()
    );
    Figures::of(&ran).assert(
        &[
            ("abandoned", 50),
            ("survivors", 4),
            ("callbacks", 4),
            ("signatures_counted", 54),
        ],
        &counts,
    );

    let counts = afx.ffx.arm(&[("FAULT_DELAY_US", SLOW_SIGN)]);
    let total = DISCONNECTS.to_string();
    let ran = afx
        .async_tls(
            &program,
            &["-m", "abandon", "-n", &total, "-w", "64", "-r", "4"],
        )
        .success();
    let n = DISCONNECTS as i64;
    Figures::of(&ran).assert(
        &[
            ("abandoned", n),
            ("survivors", 4),
            ("signatures_counted", n + 4),
            ("failed", 0),
        ],
        &counts,
    );
}

fn require_valgrind() {
    assert!(
        Command::new("valgrind")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|status| status.success()),
        "valgrind not found; install it (Debian: apt-get install valgrind)"
    );
}
