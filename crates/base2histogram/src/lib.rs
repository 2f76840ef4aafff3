//! A small log-linear histogram with the API surface openraft uses from the
//! `base2histogram` crate, patched in for it by the workspace's `[patch.crates-io]`.
//!
//! Why: openraft (0.10.0-alpha.37) records its runtime statistics into
//! `base2histogram::Histogram`s whether or not anyone reads them, and the first
//! histogram built makes that crate precompute bucket tables for all sixteen of its
//! scale widths: about 27 MB written once per process and resident for good. Roost
//! never reads these statistics, and a three-server ensemble on one machine paid
//! 80 MB for them, a tenth of its memory with a million znodes.
//!
//! This histogram keeps eight buckets per power of two (relative error under
//! 12.5%, like the original's default width) and grows its counts on demand, so
//! an idle histogram is empty and a busy one holds at most 4 KiB.

use std::fmt;
use std::marker::PhantomData;

/// Sub-buckets per power of two, as a power of two.
const SUB_BITS: u32 = 3;
const SUBS: u64 = 1 << SUB_BITS;

/// Bucket of a value: values below `SUBS` have one each; above, each power of two
/// is split into `SUBS` equal parts.
fn bucket_of(value: u64) -> usize {
    if value < SUBS {
        return value as usize;
    }
    let exp = 63 - value.leading_zeros();
    let sub = (value >> (exp - SUB_BITS)) & (SUBS - 1);
    ((exp - SUB_BITS + 1) as u64 * SUBS + sub) as usize
}

/// Smallest value that falls in `bucket`.
fn bucket_floor(bucket: usize) -> u64 {
    let bucket = bucket as u64;
    if bucket < SUBS {
        return bucket;
    }
    let exp = (bucket / SUBS) as u32 + SUB_BITS - 1;
    let sub = bucket % SUBS;
    (SUBS + sub) << (exp - SUB_BITS)
}

/// Counts of recorded values by bucket. `T` is accepted for signature
/// compatibility; this histogram keeps no per-slot data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Histogram<T = ()> {
    counts: Vec<u64>,
    total: u64,
    _data: PhantomData<T>,
}

impl<T> Default for Histogram<T> {
    fn default() -> Self {
        Histogram { counts: Vec::new(), total: 0, _data: PhantomData }
    }
}

impl<T> Histogram<T> {
    pub fn new() -> Self {
        Self::default()
    }

    /// The original keeps a ring of time slots; one slot is all openraft uses.
    pub fn with_slots(_slot_limit: usize) -> Self {
        Self::default()
    }

    pub fn record(&mut self, value: u64) {
        self.record_n(value, 1);
    }

    pub fn record_n(&mut self, value: u64, count: u64) {
        if count == 0 {
            return;
        }
        let bucket = bucket_of(value);
        if self.counts.len() <= bucket {
            self.counts.resize(bucket + 1, 0);
        }
        self.counts[bucket] = self.counts[bucket].saturating_add(count);
        self.total = self.total.saturating_add(count);
    }

    /// Number of values recorded.
    pub fn total(&self) -> u64 {
        self.total
    }

    pub fn clear(&mut self) {
        self.counts.clear();
        self.total = 0;
    }

    /// Adds every count of `other`.
    pub fn merge(&mut self, other: &Histogram<T>) {
        if self.counts.len() < other.counts.len() {
            self.counts.resize(other.counts.len(), 0);
        }
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine = mine.saturating_add(*theirs);
        }
        self.total = self.total.saturating_add(other.total);
    }

    /// The lower bound of the bucket holding the value at fraction `p` (0.0 to
    /// 1.0) of the recorded values; 0 when nothing was recorded.
    pub fn percentile(&self, p: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((p.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0u64;
        for (bucket, count) in self.counts.iter().enumerate() {
            seen = seen.saturating_add(*count);
            if seen >= rank {
                return bucket_floor(bucket);
            }
        }
        bucket_floor(self.counts.len().saturating_sub(1))
    }

    pub fn percentile_stats(&self) -> PercentileStats {
        PercentileStats {
            samples: self.total,
            p0_1: self.percentile(0.001),
            p1: self.percentile(0.01),
            p5: self.percentile(0.05),
            p10: self.percentile(0.10),
            p50: self.percentile(0.50),
            p90: self.percentile(0.90),
            p99: self.percentile(0.99),
            p99_9: self.percentile(0.999),
        }
    }
}

/// A histogram's summary, field for field what openraft reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PercentileStats {
    pub samples: u64,
    pub p0_1: u64,
    pub p1: u64,
    pub p5: u64,
    pub p10: u64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p99_9: u64,
}

impl fmt::Display for PercentileStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "[samples: {}, P0.1: {}, P1: {}, P5: {}, P10: {}, P50: {}, P90: {}, P99: {}, P99.9: {}]",
            self.samples, self.p0_1, self.p1, self.p5, self.p10, self.p50, self.p90, self.p99, self.p99_9
        )
    }
}

/// Named histograms printed one line each: the name, the median and p99.
#[derive(Debug, Clone)]
pub struct AsciiChart<T = ()> {
    series: Vec<(String, Histogram<T>)>,
}

impl<T> Default for AsciiChart<T> {
    fn default() -> Self {
        AsciiChart { series: Vec::new() }
    }
}

impl<T> AsciiChart<T> {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(mut self, name: &str, hist: Histogram<T>) -> Self {
        self.series.push((name.to_string(), hist));
        self
    }
}

impl<T> fmt::Display for AsciiChart<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (name, hist) in &self.series {
            let stats = hist.percentile_stats();
            writeln!(f, "{name}: n={} p50={} p99={}", stats.samples, stats.p50, stats.p99)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_lands_in_a_bucket_whose_floor_is_at_most_an_eighth_below_it() {
        let mut values: Vec<u64> = (0..5000).collect();
        values.extend([1 << 20, (1 << 20) + 12345, u64::MAX / 3, u64::MAX]);
        for v in values {
            let floor = bucket_floor(bucket_of(v));
            assert!(floor <= v, "floor {floor} above {v}");
            assert!(v - floor <= v / 8, "floor {floor} too far below {v}");
            assert_eq!(bucket_of(floor), bucket_of(v), "the floor of {v}'s bucket is in the same bucket");
        }
    }

    #[test]
    fn buckets_are_ordered_like_their_values() {
        let mut last = 0;
        for v in 1..100_000u64 {
            let b = bucket_of(v);
            assert!(b >= last, "bucket of {v} went back");
            last = b;
        }
        assert!(bucket_of(u64::MAX) < 512, "a histogram never needs more than 512 counters");
    }

    #[test]
    fn percentiles_follow_the_recorded_distribution() {
        let mut h: Histogram = Histogram::new();
        assert_eq!(h.percentile_stats(), PercentileStats::default());
        for v in 1..=1000u64 {
            h.record(v);
        }
        h.record_n(100_000, 10);
        let s = h.percentile_stats();
        assert_eq!(s.samples, 1010);
        assert!((448..=500).contains(&s.p50), "p50 {}", s.p50);
        assert!((896..=990).contains(&s.p90), "p90 {}", s.p90);
        assert!(s.p99_9 >= 98_304, "the 10 large values are the top 1%: {}", s.p99_9);
        assert_eq!(s.p0_1, 2, "the 0.1% rank of 1010 values is the second");
    }

    #[test]
    fn merge_adds_counts_and_clear_empties() {
        let mut a: Histogram = Histogram::new();
        let mut b: Histogram = Histogram::new();
        a.record(3);
        b.record_n(70_000, 4);
        a.merge(&b);
        assert_eq!(a.total(), 5);
        assert!(a.percentile(1.0) >= 65_536);
        a.clear();
        assert_eq!(a.total(), 0);
        assert_eq!(a.percentile(0.5), 0);
    }
}
