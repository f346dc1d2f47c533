//! When an idle node returns from its invocation.
//!
//! A Lambda invocation is billed per tick (1 ms today, 100 ms before
//! December 2020) from start to return. A node that sits idle wastes money,
//! but a node that returns too eagerly pays a new invocation (and the
//! connection set-up) for the next request. So the node returns once it has
//! been idle for `idle`, and not at any moment but just before the end of the
//! billing tick it is in: the rest of that tick is paid for anyway.

use std::time::{Duration, Instant};

/// Decides when an idle node should return.
#[derive(Debug, Clone, Copy)]
pub struct ReturnPolicy {
    start: Instant,
    tick: Duration,
    idle: Duration,
    margin: Duration,
}

impl ReturnPolicy {
    /// `start` is when the invocation began (billing starts there).
    pub fn new(start: Instant, tick: Duration, idle: Duration) -> Self {
        let tick = tick.max(Duration::from_millis(1));
        // Leave time to say goodbye and return before the boundary: the
        // platform's clock started a little before ours, and Bye, ByeAck and
        // the response take a moment, more so on a loaded host.
        let margin = (tick / 10).min(Duration::from_millis(10));
        ReturnPolicy {
            start,
            tick,
            idle,
            margin,
        }
    }

    /// The instant at which the node should return if nothing happens after
    /// `last_activity`.
    pub fn return_at(&self, last_activity: Instant) -> Instant {
        let earliest = (last_activity + self.idle).max(self.start);
        let since_start = (earliest + self.margin).duration_since(self.start);
        let tick_ns = self.tick.as_nanos();
        let ticks = since_start.as_nanos().div_ceil(tick_ns).max(1);
        let boundary =
            self.start + Duration::from_nanos(u64::try_from(ticks * tick_ns).unwrap_or(u64::MAX));
        boundary - self.margin
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn legacy_ticks_return_just_before_a_boundary() {
        let start = Instant::now();
        let policy = ReturnPolicy::new(start, 100 * MS, 100 * MS);
        // Last request at 30 ms: idle from 130 ms; the tick ends at 200 ms.
        let at = policy.return_at(start + 30 * MS);
        assert_eq!(at.duration_since(start), 200 * MS - 10 * MS);
    }

    #[test]
    fn never_returns_before_the_idle_time() {
        let start = Instant::now();
        for tick in [1, 10, 100, 1000] {
            for last in [0, 1, 7, 99, 100, 101, 555] {
                let policy = ReturnPolicy::new(start, tick * MS, 50 * MS);
                let last = start + last * MS;
                let at = policy.return_at(last);
                assert!(at >= last + 50 * MS, "tick {tick}: returned before idle");
                assert!(
                    at < last + 50 * MS + tick * MS,
                    "tick {tick}: waited a whole extra tick"
                );
            }
        }
    }

    #[test]
    fn millisecond_ticks_return_after_the_idle_time() {
        let start = Instant::now();
        let policy = ReturnPolicy::new(start, MS, 100 * MS);
        let at = policy.return_at(start + 10 * MS);
        let after = at.duration_since(start);
        assert!(after >= 110 * MS && after <= 111 * MS, "{after:?}");
    }
}
