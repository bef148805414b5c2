//! Sign-duration metrics, named as gRPC's TLS private-key offloading design names them: the
//! histogram `offloaded_private_key_sign_duration` (seconds, labelled by algorithm and status)
//! and the gauges of signatures in flight and queued for an asynchronous worker.
//!
//! Every signature the chokepoint (`op::run`) makes is counted, whether it ran on the caller's
//! thread or on a worker. The counters are process-wide atomics (a forked child starts from the
//! parent's figures). They are read as Prometheus text: through the provider's gettable
//! parameters, and in a file rewritten every few seconds when `pkcs11-module-metrics-file` is
//! set (node_exporter's textfile-collector convention: write a temporary file, then rename).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use once_cell::sync::Lazy;

/// Upper bounds of the histogram buckets, in microseconds (50 µs to 10 s).
const BUCKETS_US: [u64; 17] = [
    50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000, 2_500_000, 5_000_000, 10_000_000,
];

/// The histogram's name.
pub(crate) const SIGN_DURATION: &str = "offloaded_private_key_sign_duration";

/// One histogram: cumulative counts are computed when printed.
#[derive(Default)]
struct Histogram {
    /// Observations per bucket (the last one: above 10 s).
    buckets: [AtomicU64; BUCKETS_US.len() + 1],
    count: AtomicU64,
    sum_ns: AtomicU64,
}

impl Histogram {
    fn observe(&self, took: Duration) {
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        let bucket = BUCKETS_US
            .iter()
            .position(|bound| micros <= *bound)
            .unwrap_or(BUCKETS_US.len());
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        self.sum_ns.fetch_add(nanos, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }
}

/// The histograms of one algorithm label.
#[derive(Default)]
pub(crate) struct Series {
    ok: Histogram,
    error: Histogram,
}

impl Series {
    /// Records one signature.
    pub(crate) fn observe(&self, ok: bool, took: Duration) {
        if ok { &self.ok } else { &self.error }.observe(took);
    }
}

/// All series by label, and the gauges.
struct Registry {
    series: RwLock<Vec<(String, Arc<Series>)>>,
    in_flight: AtomicU64,
    queued: AtomicU64,
}

static REGISTRY: Lazy<Registry> = Lazy::new(|| Registry {
    series: RwLock::new(Vec::new()),
    in_flight: AtomicU64::new(0),
    queued: AtomicU64::new(0),
});

/// The series for `label` (e.g. `ecdsa-p256`), made on first use.
pub(crate) fn series(label: &str) -> Arc<Series> {
    if let Ok(all) = REGISTRY.series.read() {
        if let Some((_, series)) = all.iter().find(|(l, _)| l == label) {
            return Arc::clone(series);
        }
    }
    match REGISTRY.series.write() {
        Ok(mut all) => {
            if let Some((_, series)) = all.iter().find(|(l, _)| l == label) {
                return Arc::clone(series);
            }
            let series = Arc::new(Series::default());
            all.push((label.to_owned(), Arc::clone(&series)));
            series
        }
        // A poisoned registry only loses figures, never a signature.
        Err(_) => Arc::new(Series::default()),
    }
}

/// Counts one signature in flight while it exists.
pub(crate) struct InFlight(());

impl InFlight {
    pub(crate) fn start() -> InFlight {
        REGISTRY.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        REGISTRY.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Counts one request waiting for an asynchronous worker while it exists.
pub(crate) struct Queued(());

impl Queued {
    pub(crate) fn start() -> Queued {
        REGISTRY.queued.fetch_add(1, Ordering::Relaxed);
        Queued(())
    }
}

impl Drop for Queued {
    fn drop(&mut self) {
        REGISTRY.queued.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Totals for the provider's numeric parameters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Totals {
    pub(crate) ok: u64,
    pub(crate) error: u64,
    pub(crate) in_flight: u64,
    pub(crate) queued: u64,
}

/// The current totals over all labels.
pub(crate) fn totals() -> Totals {
    let mut totals = Totals {
        in_flight: REGISTRY.in_flight.load(Ordering::Relaxed),
        queued: REGISTRY.queued.load(Ordering::Relaxed),
        ..Totals::default()
    };
    if let Ok(all) = REGISTRY.series.read() {
        for (_, series) in all.iter() {
            totals.ok += series.ok.count.load(Ordering::Relaxed);
            totals.error += series.error.count.load(Ordering::Relaxed);
        }
    }
    totals
}

/// Every metric in the Prometheus text exposition format.
pub(crate) fn prometheus_text() -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# HELP {SIGN_DURATION} Time the PKCS#11 token took to make a signature, in seconds."
    );
    let _ = writeln!(out, "# TYPE {SIGN_DURATION} histogram");
    let series: Vec<(String, Arc<Series>)> = REGISTRY
        .series
        .read()
        .map(|all| all.clone())
        .unwrap_or_default();
    for (label, series) in &series {
        for (status, histogram) in [("ok", &series.ok), ("error", &series.error)] {
            let labels = format!("algorithm=\"{label}\",status=\"{status}\"");
            let mut cumulative = 0;
            for (bound, count) in BUCKETS_US.iter().zip(&histogram.buckets) {
                cumulative += count.load(Ordering::Relaxed);
                let le = *bound as f64 / 1e6;
                let _ = writeln!(
                    out,
                    "{SIGN_DURATION}_bucket{{{labels},le=\"{le}\"}} {cumulative}"
                );
            }
            let count = histogram.count.load(Ordering::Relaxed);
            let sum = histogram.sum_ns.load(Ordering::Relaxed) as f64 / 1e9;
            let _ = writeln!(
                out,
                "{SIGN_DURATION}_bucket{{{labels},le=\"+Inf\"}} {count}"
            );
            let _ = writeln!(out, "{SIGN_DURATION}_sum{{{labels}}} {sum}");
            let _ = writeln!(out, "{SIGN_DURATION}_count{{{labels}}} {count}");
        }
    }
    let totals = totals();
    for (name, help, value) in [
        (
            "offloaded_private_key_sign_in_flight",
            "Signatures the token is making now.",
            totals.in_flight,
        ),
        (
            "offloaded_private_key_sign_queued",
            "Signatures waiting for an asynchronous worker.",
            totals.queued,
        ),
    ] {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} gauge");
        let _ = writeln!(out, "{name} {value}");
    }
    out
}

/// The metrics file writer: one thread per process, started on first use when configured.
static WRITER: Mutex<Option<(u64, String)>> = Mutex::new(None);

/// Starts the thread that rewrites `path` (`%p` → process id) every `interval` seconds, unless
/// this process already has one.
pub(crate) fn write_file_periodically(path: &str, interval: u64) {
    let generation = crate::sys::atfork::generation();
    let path = this_process(path);
    let Ok(mut writer) = WRITER.lock() else {
        return;
    };
    if writer.as_ref().is_some_and(|(g, _)| *g == generation) {
        return;
    }
    *writer = Some((generation, path.clone()));
    let spawned = std::thread::Builder::new()
        .name("pkcs11-ossl-metrics".into())
        .spawn(move || {
            loop {
                if let Err(e) = write_file(&path) {
                    log::debug!("metrics file {path}: {e}");
                }
                std::thread::sleep(Duration::from_secs(interval));
                // A forked child has no such thread; it starts its own on first use.
            }
        });
    if let Err(e) = spawned {
        log::debug!("cannot start the metrics writer: {e}");
    }
}

/// `path` with `%p` replaced by this process's id.
fn this_process(path: &str) -> String {
    path.replace("%p", &std::process::id().to_string())
}

/// Writes the metrics file a last time (provider teardown), so a short-lived process leaves its
/// final figures behind.
pub(crate) fn write_final(path: &str) {
    let path = this_process(path);
    if let Err(e) = write_file(&path) {
        log::debug!("metrics file {path}: {e}");
    }
}

/// Writes the metrics to `path` through a temporary file and a rename, so a reader never sees
/// a half-written file.
pub(crate) fn write_file(path: &str) -> std::io::Result<()> {
    let temporary = format!("{path}.{}.tmp", std::process::id());
    std::fs::write(&temporary, prometheus_text())?;
    std::fs::rename(&temporary, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative_and_count_every_observation() {
        let series = series("test-alg");
        series.observe(true, Duration::from_micros(40));
        series.observe(true, Duration::from_millis(3));
        series.observe(false, Duration::from_secs(20));
        let text = prometheus_text();
        let line = |needle: &str| {
            text.lines()
                .find(|l| l.starts_with(needle))
                .unwrap_or_else(|| panic!("no line {needle} in\n{text}"))
                .rsplit(' ')
                .next()
                .unwrap()
                .to_owned()
        };
        let ok = format!("{SIGN_DURATION}_bucket{{algorithm=\"test-alg\",status=\"ok\"");
        assert_eq!(line(&format!("{ok},le=\"0.00005\"}}")), "1");
        assert_eq!(line(&format!("{ok},le=\"0.0025\"}}")), "1");
        assert_eq!(line(&format!("{ok},le=\"0.005\"}}")), "2");
        assert_eq!(line(&format!("{ok},le=\"+Inf\"}}")), "2");
        let error = format!("{SIGN_DURATION}_bucket{{algorithm=\"test-alg\",status=\"error\"");
        assert_eq!(line(&format!("{error},le=\"10\"}}")), "0");
        assert_eq!(line(&format!("{error},le=\"+Inf\"}}")), "1");
        assert_eq!(
            line(&format!(
                "{SIGN_DURATION}_count{{algorithm=\"test-alg\",status=\"error\"}}"
            )),
            "1"
        );
    }

    #[test]
    fn gauges_follow_their_guards() {
        let before = totals();
        let flying = InFlight::start();
        let waiting = Queued::start();
        let during = totals();
        assert!(during.in_flight > before.in_flight || during.in_flight >= 1);
        assert!(during.queued >= 1);
        drop((flying, waiting));
    }
}
