//! A latency histogram that costs two relaxed atomic additions per
//! observation.
//!
//! Request latencies are recorded on every request of both frontends, so
//! recording must never wait: the buckets are fixed (100 µs to 10 s, which
//! spans a GET from warm nodes to one waiting out an invocation timeout),
//! each is a plain counter, and everything Prometheus wants (cumulative
//! buckets, `_count`) is derived when a scrape reads them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the buckets, in seconds (Prometheus's `le`).
pub const LATENCY_BUCKETS: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// [`LATENCY_BUCKETS`] in nanoseconds, so an observation is placed with
/// integer comparisons.
const BOUNDS_NANOS: [u64; 16] = [
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
    10_000_000_000,
];

/// Observations per bucket (not cumulative; the last one is above every
/// bound) and their sum.
#[derive(Debug)]
pub struct Histogram {
    buckets: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    sum_nanos: AtomicU64,
}

/// A histogram as Prometheus shows it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HistogramSnapshot {
    /// Observations at or below each bound of [`LATENCY_BUCKETS`].
    pub cumulative: [u64; LATENCY_BUCKETS.len()],
    /// Every observation (the `+Inf` bucket).
    pub count: u64,
    /// Their sum, in seconds.
    pub sum_seconds: f64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

impl Histogram {
    pub const fn new() -> Self {
        Histogram {
            buckets: [const { AtomicU64::new(0) }; LATENCY_BUCKETS.len() + 1],
            sum_nanos: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, elapsed: Duration) {
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        // The first bucket whose bound is at least the observation (`le`).
        let index = BOUNDS_NANOS.partition_point(|&bound| bound < nanos);
        self.buckets[index].fetch_add(1, Ordering::Relaxed);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// Observations so far. The count is the sum of the buckets read, so a
    /// snapshot's buckets and count always agree even while requests are
    /// being recorded; the sum may be a request ahead or behind.
    pub fn snapshot(&self) -> HistogramSnapshot {
        let mut cumulative = [0; LATENCY_BUCKETS.len()];
        let mut count = 0u64;
        for (i, bucket) in self.buckets.iter().enumerate() {
            count = count.saturating_add(bucket.load(Ordering::Relaxed));
            if let Some(slot) = cumulative.get_mut(i) {
                *slot = count;
            }
        }
        HistogramSnapshot {
            cumulative,
            count,
            sum_seconds: self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_match_the_published_buckets() {
        for (seconds, nanos) in LATENCY_BUCKETS.iter().zip(BOUNDS_NANOS) {
            assert_eq!((seconds * 1e9).round() as u64, nanos);
        }
    }

    #[test]
    fn observations_land_in_the_first_bucket_at_or_above_them() {
        let histogram = Histogram::new();
        histogram.observe(Duration::from_micros(50)); // <= 100 µs
        histogram.observe(Duration::from_micros(100)); // exactly on a bound: le
        histogram.observe(Duration::from_micros(101)); // <= 250 µs
        histogram.observe(Duration::from_millis(3)); // <= 5 ms
        histogram.observe(Duration::from_secs(60)); // above every bound
        let snapshot = histogram.snapshot();
        assert_eq!(snapshot.count, 5);
        assert_eq!(&snapshot.cumulative[..6], &[2, 3, 3, 3, 3, 4]);
        assert_eq!(snapshot.cumulative[LATENCY_BUCKETS.len() - 1], 4);
        let expected = 0.000_05 + 0.000_1 + 0.000_101 + 0.003 + 60.0;
        assert!((snapshot.sum_seconds - expected).abs() < 1e-9);
    }
}
