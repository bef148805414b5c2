//! `pkcs11-ossl stats`: the sign-duration metrics the provider writes
//! (`pkcs11-module-metrics-file`, Prometheus text), summed over the processes that wrote them
//! (`%p` in the configured path matches every process id) and shown as one line per algorithm
//! and status: count, mean and the bucket bounds under which half and 99 % of the signatures
//! finished, then the signatures in flight and queued.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::say;
use crate::setup;

/// The histogram the provider writes (src/token/metrics.rs).
const SIGN_DURATION: &str = "offloaded_private_key_sign_duration";
/// The gauges it writes.
const GAUGES: &[(&str, &str)] = &[
    ("offloaded_private_key_sign_in_flight", "in flight"),
    ("offloaded_private_key_sign_queued", "queued"),
];

/// One (algorithm, status) histogram: cumulative bucket counts by upper bound, sum, count.
#[derive(Default)]
struct Histogram {
    buckets: BTreeMap<u64, u64>,
    sum: f64,
    count: u64,
}

#[derive(Default)]
struct Metrics {
    histograms: BTreeMap<(String, String), Histogram>,
    gauges: BTreeMap<String, f64>,
}

/// Runs `stats`: `file` if given, else the metrics file the configuration names.
pub(crate) fn run(config: Option<&Path>, file: Option<&str>) -> Result<bool, String> {
    let pattern = match file {
        Some(file) => file.to_owned(),
        None => {
            let (_, entry) = setup::load_settings(config)?;
            entry
                .as_ref()
                .and_then(|e| e.value("pkcs11-module-metrics-file"))
                .map(str::to_owned)
                .ok_or(
                    "no metrics file: set pkcs11-module-metrics-file in the provider section \
                     (or give one: pkcs11-ossl stats FILE)",
                )?
        }
    };
    let files = matching_files(&pattern)?;
    if files.is_empty() {
        return Err(format!(
            "no metrics file matches '{pattern}' yet (the provider writes it after its first \
             use of a token, then every pkcs11-module-metrics-interval seconds)"
        ));
    }
    let mut metrics = Metrics::default();
    for file in &files {
        let text = std::fs::read_to_string(file)
            .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
        add_text(&mut metrics, &text);
    }
    say(format_args!(
        "{} file(s): {}",
        files.len(),
        files
            .iter()
            .map(|f| f.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    ));
    say(format_args!(
        "{:<16} {:<6} {:>10} {:>12} {:>12} {:>12}",
        "algorithm", "status", "signatures", "mean", "p50 <=", "p99 <="
    ));
    for ((algorithm, status), histogram) in &metrics.histograms {
        if histogram.count == 0 {
            continue;
        }
        let mean = histogram.sum / histogram.count as f64;
        say(format_args!(
            "{algorithm:<16} {status:<6} {:>10} {:>12} {:>12} {:>12}",
            histogram.count,
            seconds(mean),
            quantile_bound(histogram, 0.5),
            quantile_bound(histogram, 0.99),
        ));
    }
    for (name, what) in GAUGES {
        let value = metrics.gauges.get(*name).copied().unwrap_or(0.0);
        say(format_args!("signatures {what}: {value}"));
    }
    Ok(true)
}

/// The files a configured path names: itself, or with `%p` every file whose name has digits
/// there.
fn matching_files(pattern: &str) -> Result<Vec<PathBuf>, String> {
    let Some((before, after)) = pattern.split_once("%p") else {
        let path = PathBuf::from(pattern);
        return Ok(if path.exists() {
            vec![path]
        } else {
            Vec::new()
        });
    };
    let dir_end = before.rfind('/').map_or(0, |i| i + 1);
    let (dir, prefix) = before.split_at(dir_end);
    let dir = if dir.is_empty() { "." } else { dir };
    let mut files = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(|e| format!("cannot read {dir}: {e}"))?;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(middle) = name
            .strip_prefix(prefix)
            .and_then(|rest| rest.strip_suffix(after))
        else {
            continue;
        };
        if !middle.is_empty() && middle.bytes().all(|b| b.is_ascii_digit()) {
            files.push(entry.path());
        }
    }
    files.sort();
    Ok(files)
}

/// Adds the samples of one Prometheus text file.
fn add_text(metrics: &mut Metrics, text: &str) {
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((name_labels, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Ok(value) = value.parse::<f64>() else {
            continue;
        };
        let (name, labels) = match name_labels.split_once('{') {
            Some((name, labels)) => (name, labels.trim_end_matches('}')),
            None => (name_labels, ""),
        };
        let label = |key: &str| {
            labels.split(',').find_map(|pair| {
                let (k, v) = pair.split_once('=')?;
                (k == key).then(|| v.trim_matches('"').to_owned())
            })
        };
        if let Some(suffix) = name.strip_prefix(SIGN_DURATION) {
            let (Some(algorithm), Some(status)) = (label("algorithm"), label("status")) else {
                continue;
            };
            let histogram = metrics.histograms.entry((algorithm, status)).or_default();
            match suffix {
                "_bucket" => {
                    // "+Inf" is the count; finite bounds in microseconds for sorting.
                    if let Some(bound) = label("le").and_then(|le| le.parse::<f64>().ok()) {
                        if bound.is_finite() {
                            let micros = (bound * 1e6).round() as u64;
                            *histogram.buckets.entry(micros).or_default() += value as u64;
                        }
                    }
                }
                "_sum" => histogram.sum += value,
                "_count" => histogram.count += value as u64,
                _ => {}
            }
        } else if GAUGES.iter().any(|(gauge, _)| *gauge == name) {
            *metrics.gauges.entry(name.to_owned()).or_default() += value;
        }
    }
}

/// The smallest bucket bound under which at least `q` of the signatures finished.
fn quantile_bound(histogram: &Histogram, q: f64) -> String {
    let wanted = (histogram.count as f64 * q).ceil() as u64;
    histogram
        .buckets
        .iter()
        .find(|(_, cumulative)| **cumulative >= wanted.max(1))
        .map_or_else(
            || "> 10 s".to_owned(),
            |(micros, _)| seconds(*micros as f64 / 1e6),
        )
}

/// A duration in seconds, in a readable unit.
fn seconds(value: f64) -> String {
    if value >= 1.0 {
        format!("{value:.2} s")
    } else if value >= 1e-3 {
        format!("{:.2} ms", value * 1e3)
    } else {
        format!("{:.0} µs", value * 1e6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
# TYPE offloaded_private_key_sign_duration histogram
offloaded_private_key_sign_duration_bucket{algorithm=\"ecdsa-p256\",status=\"ok\",le=\"0.00005\"} 0
offloaded_private_key_sign_duration_bucket{algorithm=\"ecdsa-p256\",status=\"ok\",le=\"0.0001\"} 3
offloaded_private_key_sign_duration_bucket{algorithm=\"ecdsa-p256\",status=\"ok\",le=\"0.00025\"} 10
offloaded_private_key_sign_duration_bucket{algorithm=\"ecdsa-p256\",status=\"ok\",le=\"+Inf\"} 10
offloaded_private_key_sign_duration_sum{algorithm=\"ecdsa-p256\",status=\"ok\"} 0.0012
offloaded_private_key_sign_duration_count{algorithm=\"ecdsa-p256\",status=\"ok\"} 10
offloaded_private_key_sign_in_flight 1
offloaded_private_key_sign_queued 0
";

    #[test]
    fn files_of_several_processes_add_up() {
        let mut metrics = Metrics::default();
        add_text(&mut metrics, SAMPLE);
        add_text(&mut metrics, SAMPLE);
        let histogram = &metrics.histograms[&("ecdsa-p256".to_owned(), "ok".to_owned())];
        assert_eq!(histogram.count, 20);
        assert_eq!(histogram.buckets[&100], 6);
        assert_eq!(quantile_bound(histogram, 0.5), "250 µs");
        assert_eq!(quantile_bound(histogram, 0.1), "100 µs");
        assert_eq!(metrics.gauges["offloaded_private_key_sign_in_flight"], 2.0);
    }
}
