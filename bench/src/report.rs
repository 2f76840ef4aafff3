//! Measurement plumbing shared by every workload: latency histograms, live counters with
//! a once-a-second progress line, resident memory of server processes, and the JSON
//! result record.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;

/// Latencies are recorded in microseconds, from 1 µs to 10 minutes, 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    // The bounds are constants that hdrhistogram accepts; failure would be a programming error.
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds")
}

/// Records a duration, clamped into the histogram's range.
pub fn record(h: &mut Histogram<u64>, d: Duration) {
    let us = (d.as_micros() as u64).clamp(1, 600_000_000);
    h.saturating_record(us);
}

/// Percentiles in microseconds, as written to the JSON result.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Percentiles {
    pub count: u64,
    pub mean: f64,
    pub p50: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
}

impl Percentiles {
    pub fn of(h: &Histogram<u64>) -> Percentiles {
        Percentiles {
            count: h.len(),
            mean: if h.is_empty() { 0.0 } else { h.mean() },
            p50: h.value_at_quantile(0.50),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
        }
    }
}

/// Counters updated by every session task and read by the progress printer.
#[derive(Debug, Default)]
pub struct Counters {
    pub completed: AtomicU64,
    pub errors: AtomicU64,
}

impl Counters {
    pub fn done(&self, ok: bool) {
        self.completed.fetch_add(1, Ordering::Relaxed);
        if !ok {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Prints `label t=..s ops/s=.. total=.. errors=..` to stderr every second until dropped.
pub struct Progress {
    task: tokio::task::JoinHandle<()>,
}

impl Progress {
    pub fn start(label: String, counters: Arc<Counters>) -> Progress {
        let task = tokio::spawn(async move {
            let start = Instant::now();
            let mut last = 0u64;
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.tick().await;
            loop {
                tick.tick().await;
                let total = counters.completed.load(Ordering::Relaxed);
                let errors = counters.errors.load(Ordering::Relaxed);
                eprintln!(
                    "[{label}] t={:>3}s ops/s={:>8} total={:>9} errors={errors}",
                    start.elapsed().as_secs(),
                    total - last,
                    total
                );
                last = total;
            }
        });
        Progress { task }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Resident memory (VmRSS) of each pid in KiB, read from /proc/<pid>/status; pids that
/// cannot be read are reported as absent rather than as zero.
pub fn rss_kib(pids: &[u32]) -> BTreeMap<u32, u64> {
    pids.iter()
        .filter_map(|&pid| {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
            let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
            let kib = line.split_whitespace().nth(1)?.parse().ok()?;
            Some((pid, kib))
        })
        .collect()
}

/// Error replies by ZooKeeper error code, plus connection-level failures under "conn".
pub type ErrorCounts = BTreeMap<String, u64>;

pub fn add_errors(into: &mut ErrorCounts, from: &ErrorCounts) {
    for (k, v) in from {
        *into.entry(k.clone()).or_default() += v;
    }
}

/// One workload's result; `extra` holds the workload-specific numbers.
#[derive(Debug, Serialize)]
pub struct Outcome {
    pub workload: String,
    pub servers: Vec<String>,
    pub sessions: usize,
    pub inflight: usize,
    pub rate: Option<f64>,
    pub elapsed_s: f64,
    pub ops: u64,
    pub throughput: f64,
    pub errors: u64,
    pub error_codes: ErrorCounts,
    pub latency_us: Option<Percentiles>,
    pub rss_kib: BTreeMap<u32, u64>,
    pub rss_total_kib: u64,
    pub extra: serde_json::Map<String, serde_json::Value>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_come_from_recorded_latencies() {
        let mut h = new_histogram();
        for ms in 1..=100u64 {
            record(&mut h, Duration::from_millis(ms));
        }
        let p = Percentiles::of(&h);
        assert_eq!(p.count, 100);
        assert!((49_900..=50_100).contains(&p.p50), "{p:?}");
        assert!((98_900..=99_100).contains(&p.p99), "{p:?}");
        assert!((99_900..=100_100).contains(&p.max), "{p:?}");
    }

    #[test]
    fn own_rss_is_readable_and_missing_pids_are_skipped() {
        let me = std::process::id();
        let rss = rss_kib(&[me, u32::MAX]);
        assert!(rss.get(&me).copied().unwrap_or(0) > 0);
        assert!(!rss.contains_key(&u32::MAX));
    }
}
