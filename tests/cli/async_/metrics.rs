//! The sign-duration metrics, read as a program and a scraper read them: the provider's
//! parameters through `examples/metrics.c`, and the Prometheus text file.

use std::collections::HashMap;
use std::fs::{self, File};
use std::process::{Child, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::AsyncFixture;

/// `_count` of `offloaded_private_key_sign_duration` by (algorithm, status), and the `+Inf`
/// bucket of each, from Prometheus text.
fn sign_counts(text: &str) -> HashMap<(String, String, &'static str), u64> {
    let mut counts = HashMap::new();
    for line in text.lines() {
        let kind = if line.starts_with("offloaded_private_key_sign_duration_count{") {
            "count"
        } else if line.starts_with("offloaded_private_key_sign_duration_bucket{")
            && line.contains("le=\"+Inf\"")
        {
            "inf"
        } else {
            continue;
        };
        let label = |name: &str| -> String {
            let start = format!("{name}=\"");
            line.split_once(&start)
                .and_then(|(_, rest)| rest.split_once('"'))
                .map_or(String::new(), |(value, _)| value.to_owned())
        };
        let value = line
            .rsplit(' ')
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or(u64::MAX);
        counts.insert((label("algorithm"), label("status"), kind), value);
    }
    counts
}

/// What 4 good and 2 refused P-256 signatures must show.
fn expected_sign_counts() -> HashMap<(String, String, &'static str), u64> {
    let mut expected = HashMap::new();
    for (status, n) in [("ok", 4), ("error", 2)] {
        for kind in ["count", "inf"] {
            expected.insert(("ecdsa-p256".to_owned(), status.to_owned(), kind), n);
        }
    }
    expected
}

/// `examples/metrics.c` signs 6 times with the token key while the fault module refuses the
/// third and fourth `C_Sign` (`CKR_DEVICE_ERROR`): the program's own tally, the provider's
/// numeric parameters, its Prometheus text (parameter `pkcs11-metrics`) and the metrics file
/// (`pkcs11-module-metrics-file` with `%p`, polled until the writer has caught up) all say 4
/// ok and 2 errors for `ecdsa-p256`, and nothing else; nothing in flight or queued.
#[test]
fn metrics_count_the_signatures_made() {
    let mut afx = AsyncFixture::new("async-metrics");
    let example = afx.ffx.fx.compile_example("metrics");
    let metrics_file = afx.ffx.fx.file("metrics-%p.prom");
    afx.ffx
        .fx
        .config_mut()
        .set("pkcs11-module-metrics-file", &metrics_file);
    afx.ffx
        .fx
        .config_mut()
        .set("pkcs11-module-metrics-interval", "1");
    let counts = afx
        .ffx
        .arm(&[("FAULT_RULES", "C_Sign:3-4:CKR_DEVICE_ERROR")]);
    let fx = &afx.ffx.fx;
    let stdout_path = fx.file("metrics.stdout");
    let stderr_path = fx.file("metrics.stderr");
    let mut command = fx.provider_command(&example);
    command
        .args(["-s", &afx.ffx.uri(), "-n", "6", "-w"])
        .stdin(Stdio::piped())
        .stdout(File::create(&stdout_path).expect("create stdout"))
        .stderr(File::create(&stderr_path).expect("create stderr"));
    let mut child = KillOnDrop(command.spawn().expect("start examples/metrics"));
    let read = |path: &str| fs::read_to_string(path).unwrap_or_default();
    let describe = || {
        format!(
            "stdout:\n{}\nstderr:\n{}\ncounts:\n{}",
            read(&stdout_path),
            read(&stderr_path),
            counts.text()
        )
    };

    // The program prints everything, then waits for its standard input to close.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !read(&stdout_path).contains("pkcs11-sign-queued:") {
        let exited = child.0.try_wait().expect("poll metrics example");
        assert!(
            exited.is_none() && Instant::now() < deadline,
            "examples/metrics did not print its figures ({exited:?})\n{}",
            describe()
        );
        thread::sleep(Duration::from_millis(20));
    }
    let stdout = read(&stdout_path);
    let line = |name: &str| -> String {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(str::trim)
            .unwrap_or_default()
            .to_owned()
    };
    let params = [
        ("signed:", "4 ok, 2 failed"),
        ("pkcs11-sign-ok:", "4"),
        ("pkcs11-sign-error:", "2"),
        ("pkcs11-sign-in-flight:", "0"),
        ("pkcs11-sign-queued:", "0"),
    ];
    for (name, want) in params {
        assert_eq!(line(name), want, "{name}\n{}", describe());
    }
    assert_eq!(
        sign_counts(&stdout),
        expected_sign_counts(),
        "pkcs11-metrics\n{}",
        describe()
    );
    assert!(
        stdout.contains("offloaded_private_key_sign_in_flight 0")
            && stdout.contains("offloaded_private_key_sign_queued 0"),
        "{}",
        describe()
    );
    assert_eq!(counts.of("C_Sign"), 6, "{}", describe());

    // The file named with the process id, rewritten every second.
    let path = metrics_file.replace("%p", &child.0.id().to_string());
    let deadline = Instant::now() + Duration::from_secs(20);
    while sign_counts(&read(&path)) != expected_sign_counts() {
        assert!(
            Instant::now() < deadline,
            "the metrics file {path} does not show the signatures:\n{}\n{}",
            read(&path),
            describe()
        );
        thread::sleep(Duration::from_millis(100));
    }
    let file = read(&path);
    assert!(
        file.contains("# TYPE offloaded_private_key_sign_duration histogram")
            && file.contains("offloaded_private_key_sign_in_flight 0"),
        "{file}"
    );

    // Closing its standard input ends the program.
    drop(child.0.stdin.take());
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.0.try_wait().expect("poll metrics example") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "examples/metrics did not exit\n{}",
            describe()
        );
        thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "exit {status}\n{}", describe());
}

/// A child killed when the test ends early.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
