//! What the proxy's invocations cost, split by purpose.
//!
//! Every invocation is billed, and InfiniCache's whole case rests on that
//! bill: serving is paid per use, while warm-ups and backups are the price of
//! availability. The provider reports each invocation's billed duration in
//! its log tail ([`Report`]); when it does not (some emulators), the proxy's
//! own measurement rounded up to the billing tick stands in and the entry is
//! counted as estimated.

use std::collections::BTreeMap;
use std::time::Duration;

use parking_lot::Mutex;
use serde::Serialize;

use super::node::InvocationKind;
use crate::invoker::Report;

/// Totals for one kind of invocation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct KindTotals {
    pub invocations: u64,
    /// Invocations whose billed duration was estimated, not reported.
    pub estimated: u64,
    pub duration_ms: f64,
    pub billed_ms: u64,
    /// Billed duration times memory: the unit AWS charges by.
    pub gb_seconds: f64,
    pub cold_starts: u64,
}

/// Per-kind totals since the proxy started.
#[derive(Debug, Default)]
pub struct Ledger {
    totals: Mutex<BTreeMap<&'static str, KindTotals>>,
}

impl Ledger {
    /// Records one finished invocation. `report` is the provider's; without
    /// it, `elapsed` rounded up to `tick` at `memory_mb` is used.
    pub fn record(
        &self,
        kind: InvocationKind,
        report: Option<&Report>,
        elapsed: Duration,
        tick: Duration,
        memory_mb: u32,
    ) {
        let (report, estimated) = match report {
            Some(report) => (*report, false),
            None => (estimate(elapsed, tick, memory_mb), true),
        };
        let mut totals = self.totals.lock();
        let entry = totals.entry(kind_name(kind)).or_default();
        entry.invocations += 1;
        entry.duration_ms += report.duration_ms;
        entry.billed_ms += report.billed_ms;
        entry.gb_seconds += report.gb_seconds();
        entry.cold_starts += u64::from(report.init_ms.is_some());
        entry.estimated += u64::from(estimated);
    }

    /// Totals by kind (`serve`, `warmup`, `backup`), every kind present.
    pub fn snapshot(&self) -> BTreeMap<&'static str, KindTotals> {
        let mut totals = self.totals.lock().clone();
        for kind in [
            InvocationKind::Serve,
            InvocationKind::Warmup,
            InvocationKind::Backup,
        ] {
            totals.entry(kind_name(kind)).or_default();
        }
        totals
    }
}

fn kind_name(kind: InvocationKind) -> &'static str {
    match kind {
        InvocationKind::Serve => "serve",
        InvocationKind::Warmup => "warmup",
        InvocationKind::Backup => "backup",
    }
}

/// A stand-in report: the proxy's wall-clock measurement (which includes
/// the API round trip, so it errs on the expensive side) rounded up to whole
/// ticks.
fn estimate(elapsed: Duration, tick: Duration, memory_mb: u32) -> Report {
    let tick_ms = tick.as_secs_f64() * 1000.0;
    let elapsed_ms = elapsed.as_secs_f64() * 1000.0;
    let ticks = (elapsed_ms / tick_ms).ceil().max(1.0);
    Report {
        duration_ms: elapsed_ms,
        billed_ms: (ticks * tick_ms).ceil() as u64,
        memory_mb,
        init_ms: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_split_by_kind() {
        let ledger = Ledger::default();
        let report = Report {
            duration_ms: 1.5,
            billed_ms: 2,
            memory_mb: 1024,
            init_ms: Some(3.0),
        };
        ledger.record(
            InvocationKind::Warmup,
            Some(&report),
            Duration::from_millis(5),
            Duration::from_millis(1),
            1024,
        );
        ledger.record(
            InvocationKind::Backup,
            None,
            Duration::from_millis(250),
            Duration::from_millis(100),
            2048,
        );
        let totals = ledger.snapshot();
        assert_eq!(totals["serve"], KindTotals::default());
        let warmup = totals["warmup"];
        assert_eq!(
            (warmup.invocations, warmup.billed_ms, warmup.cold_starts),
            (1, 2, 1)
        );
        assert_eq!(warmup.estimated, 0);
        let backup = totals["backup"];
        assert_eq!((backup.billed_ms, backup.estimated), (300, 1));
        assert!((backup.gb_seconds - 0.6).abs() < 1e-9);
    }
}
