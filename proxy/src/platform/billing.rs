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
///
/// Durations appear twice in JSON: as humantime strings (`duration`,
/// `billed_duration`, readable) and as numbers in milliseconds
/// (`duration_ms`, `billed_duration_ms`, what cost computations and AWS's
/// `REPORT` line use).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    /// `duration` in milliseconds (the `REPORT` line's `Duration`).
    #[serde(default)]
    pub duration_ms: f64,
    /// `duration` rounded up to the platform's billing tick (at least one tick).
    #[serde(with = "humantime_serde")]
    pub billed_duration: Duration,
    /// `billed_duration` in whole milliseconds, rounded up (the `REPORT`
    /// line's `Billed Duration`; equal to `billed_duration` for any tick that
    /// is a whole number of milliseconds, as AWS's are).
    #[serde(default)]
    pub billed_duration_ms: u64,
    /// Configured memory of the function.
    pub memory_mb: u32,
    /// Peak memory of the environment's process so far (MiB; Linux `VmHWM`),
    /// AWS's "Max Memory Used"; `None` if it could not be read (no procfs,
    /// or the environment died before it was sampled).
    #[serde(default)]
    pub max_memory_used_mb: Option<u64>,
    /// Whether a new environment was started for this invocation.
    pub cold_start: bool,
    /// Time from spawning the environment until its runtime first asked for
    /// an event (cold starts only).
    #[serde(with = "humantime_serde")]
    pub init_duration: Option<Duration>,
    /// How the invocation ended.
    pub outcome: InvocationOutcome,
}

/// A duration in milliseconds, with sub-millisecond precision.
pub(crate) fn millis_f64(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// A duration in whole milliseconds, rounded up (AWS bills whole ms).
pub(crate) fn millis_ceil(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos().div_ceil(1_000_000)).unwrap_or(u64::MAX)
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
///
/// AWS's format: `key: value` fields, each followed by a tab (the last one
/// too), `Init Duration` only on cold starts:
/// `REPORT RequestId: <id>\tDuration: 12.34 ms\tBilled Duration: 13 ms\tMemory Size: 1024 MB\tMax Memory Used: 45 MB\tInit Duration: 5.67 ms\t`.
/// Built from the billing record alone, so the two always agree. `Max Memory
/// Used` is left out when it is unknown rather than reported as a made-up
/// number.
pub(crate) fn report_line(record: &BillingRecord) -> String {
    use std::fmt::Write;
    let mut line = format!(
        "REPORT RequestId: {}\tDuration: {:.2} ms\tBilled Duration: {} ms\tMemory Size: {} MB\t",
        record.request_id, record.duration_ms, record.billed_duration_ms, record.memory_mb,
    );
    if let Some(used) = record.max_memory_used_mb {
        let _ = write!(line, "Max Memory Used: {used} MB\t");
    }
    if let Some(init) = record.init_duration {
        let _ = write!(line, "Init Duration: {:.2} ms\t", millis_f64(init));
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

    fn record(init: Option<Duration>, used: Option<u64>) -> BillingRecord {
        let duration = Duration::from_micros(12_345);
        let billed = billed_duration(duration, Duration::from_millis(1));
        BillingRecord {
            function: "f".into(),
            environment_id: 1,
            request_id: "8f507cfc-0000-4697-b07a-ac58fc914c95".into(),
            start_unix_ms: 1,
            duration,
            duration_ms: millis_f64(duration),
            billed_duration: billed,
            billed_duration_ms: millis_ceil(billed),
            memory_mb: 1024,
            max_memory_used_mb: used,
            cold_start: init.is_some(),
            init_duration: init,
            outcome: InvocationOutcome::Success,
        }
    }

    #[test]
    fn report_line_has_aws_format() {
        let warm = record(None, Some(45));
        assert_eq!(
            report_line(&warm),
            "REPORT RequestId: 8f507cfc-0000-4697-b07a-ac58fc914c95\tDuration: 12.35 ms\tBilled Duration: 13 ms\tMemory Size: 1024 MB\tMax Memory Used: 45 MB\t"
        );
        let cold = record(Some(Duration::from_micros(5_674)), Some(45));
        assert!(
            report_line(&cold).ends_with("Max Memory Used: 45 MB\tInit Duration: 5.67 ms\t"),
            "{}",
            report_line(&cold)
        );
        let unknown = record(None, None);
        assert!(!report_line(&unknown).contains("Max Memory Used"));
        assert!(report_line(&unknown).ends_with("Memory Size: 1024 MB\t"));
    }

    #[test]
    fn millisecond_fields() {
        assert_eq!(millis_ceil(Duration::from_micros(12_001)), 13);
        assert_eq!(millis_ceil(Duration::from_millis(13)), 13);
        assert_eq!(millis_ceil(Duration::MAX), u64::MAX);
        assert!((millis_f64(Duration::from_micros(1_500)) - 1.5).abs() < 1e-12);
        let json = serde_json::to_value(record(None, Some(45))).expect("json");
        assert_eq!(json["billed_duration_ms"], serde_json::json!(13));
        assert!(
            json["duration_ms"]
                .as_f64()
                .is_some_and(|ms| (ms - 12.345).abs() < 1e-9)
        );
        assert_eq!(json["billed_duration"], serde_json::json!("13ms"));
        assert_eq!(json["max_memory_used_mb"], serde_json::json!(45));
    }
}
