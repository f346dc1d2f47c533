//! Billing records: one per invocation, failed ones included, as AWS bills
//! every invocation. InfiniCache's cost model (the FAST'20 paper's $ figures)
//! is computed from these records.

use std::time::Duration;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

/// How an invocation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum InvocationOutcome {
    /// The function posted a response.
    Success,
    /// The function reported an error through the Runtime API.
    FunctionError,
    /// The function did not answer within its timeout; its environment was killed.
    Timeout,
    /// The environment died (exited, crashed, failed its init, or was
    /// reclaimed) while the invocation was pending.
    Crashed,
}

/// The billing record of one invocation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BillingRecord {
    /// Function name.
    pub function: String,
    /// The environment that served the invocation (0 if none could be started).
    pub environment_id: u64,
    /// The invocation's request id (`x-amzn-RequestId`).
    pub request_id: String,
    /// When the event was handed to the function (or the invocation gave
    /// up, if it never was), milliseconds since the Unix epoch.
    pub start_unix_ms: u64,
    /// From handing the event to the runtime until its response, error, or
    /// the failure; init time is not included (see `init_duration`).
    #[serde(with = "humantime_serde")]
    pub duration: Duration,
    /// `duration` rounded up to the platform's billing tick (at least one tick).
    #[serde(with = "humantime_serde")]
    pub billed_duration: Duration,
    /// Configured memory of the function.
    pub memory_mb: u32,
    /// Whether a new environment was started for this invocation.
    pub cold_start: bool,
    /// Time from spawning the environment until its runtime first asked for
    /// an event (cold starts only).
    #[serde(with = "humantime_serde")]
    pub init_duration: Option<Duration>,
    /// How the invocation ended.
    pub outcome: InvocationOutcome,
}

/// `duration` rounded up to a whole number of ticks, at least one tick.
pub(crate) fn billed_duration(duration: Duration, tick: Duration) -> Duration {
    let tick_ns = tick.as_nanos().max(1);
    let ticks = duration.as_nanos().div_ceil(tick_ns).max(1);
    let billed_ns = ticks.saturating_mul(tick_ns);
    Duration::from_nanos(u64::try_from(billed_ns).unwrap_or(u64::MAX))
}

/// Append-only store of billing records.
#[derive(Debug, Default)]
pub(crate) struct Ledger {
    records: Mutex<Vec<BillingRecord>>,
}

impl Ledger {
    pub fn push(&self, record: BillingRecord) {
        self.records.lock().push(record);
    }

    pub fn snapshot(&self) -> Vec<BillingRecord> {
        self.records.lock().clone()
    }
}

/// The `REPORT` line AWS writes to the function's log for each invocation;
/// returned (base64) in `X-Amz-Log-Result` when the caller asks for
/// `LogType: Tail`, so callers can read billing the way they would on AWS.
pub(crate) fn report_line(record: &BillingRecord) -> String {
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let mut line = format!(
        "REPORT RequestId: {}\tDuration: {:.2} ms\tBilled Duration: {} ms\tMemory Size: {} MB\tMax Memory Used: {} MB",
        record.request_id,
        ms(record.duration),
        record.billed_duration.as_millis(),
        record.memory_mb,
        record.memory_mb,
    );
    if let Some(init) = record.init_duration {
        line.push_str(&format!("\tInit Duration: {:.2} ms", ms(init)));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_up_to_ticks() {
        let ms = Duration::from_millis;
        assert_eq!(billed_duration(ms(30), ms(100)), ms(100));
        assert_eq!(billed_duration(ms(100), ms(100)), ms(100));
        assert_eq!(billed_duration(ms(101), ms(100)), ms(200));
        assert_eq!(billed_duration(Duration::ZERO, ms(100)), ms(100));
        assert_eq!(
            billed_duration(Duration::from_micros(30_400), ms(1)),
            ms(31)
        );
        assert_eq!(billed_duration(Duration::ZERO, ms(1)), ms(1));
    }
}
