//! A run's results: the table on stdout, `soak.csv` (one line per
//! operation), `timeline.csv` (a line per second) and `soak.json`
//! (everything).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use super::chaos::ReclaimTally;
use super::timeline::Sample;
use super::workload::{OpStats, Tally};
use crate::bench::report::fmt_duration;

/// Writing into a `String` cannot fail.
macro_rules! w {
    ($out:expr) => {{
        let _ = writeln!($out);
    }};
    ($out:expr, $($arg:tt)*) => {{
        let _ = writeln!($out, $($arg)*);
    }};
}

/// Decimal megabytes, as MB/s is.
const MB: f64 = 1e6;

/// One operation kind's figures.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct OpRow {
    /// `PUT`, `GET`, `DELETE` or `all`.
    pub op: String,
    /// Successful calls.
    pub ops: u64,
    pub errors: u64,
    /// Value bytes written or returned.
    pub bytes: u64,
    pub ops_per_sec: f64,
    pub mb_per_sec: f64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl OpRow {
    /// The row of `stats` over `seconds` of wall time.
    pub fn new(op: &str, stats: &OpStats, seconds: f64) -> OpRow {
        let per_sec = |n: f64| if seconds > 0.0 { n / seconds } else { 0.0 };
        let ms = |micros: u64| micros as f64 / 1e3;
        let empty = stats.latency.is_empty();
        OpRow {
            op: op.to_string(),
            ops: stats.ops,
            errors: stats.errors,
            bytes: stats.bytes,
            ops_per_sec: per_sec(stats.ops as f64),
            mb_per_sec: per_sec(stats.bytes as f64 / MB),
            mean_ms: if empty {
                0.0
            } else {
                stats.latency.mean() / 1e3
            },
            p50_ms: ms(stats.latency.value_at_quantile(0.5)),
            p99_ms: ms(stats.latency.value_at_quantile(0.99)),
            max_ms: ms(stats.latency.max()),
        }
    }
}

/// The final check: every key read once after the clients stopped.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Check {
    pub keys: u64,
    pub seconds: f64,
    pub errors: u64,
    pub errors_by_kind: BTreeMap<String, u64>,
    pub tally: Tally,
}

/// The proxy's memory, from `/proc/<pid>/status`.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct ProxyMemory {
    pub pid: Option<u32>,
    /// The peak resident memory of the proxy's life (the whole run, when
    /// the tool started it): `VmHWM` at the end, or a larger `VmRSS` seen
    /// (the kernel updates `VmHWM` lazily).
    pub peak_bytes: Option<u64>,
    /// The largest `VmRSS` of the once-a-second samples.
    pub peak_sampled_bytes: Option<u64>,
    /// `VmRSS` at the end.
    pub end_bytes: Option<u64>,
}

/// Everything one run measured.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Report {
    /// The run's id (in every key and value).
    pub run_id: String,
    /// What was driven: the proxy's flags, or its address.
    pub cache: String,
    pub clients: usize,
    pub connections: usize,
    pub keys_per_client: usize,
    pub mix: String,
    pub sizes: String,
    pub data_shards: usize,
    pub parity_shards: usize,
    pub planned_seconds: f64,
    /// Wall time of the timed phase: from the first operation to the end
    /// of the last.
    pub seconds: f64,
    /// Whether the run was interrupted (Ctrl-C) before its time.
    pub stopped_early: bool,
    /// `PUT`, `GET`, `DELETE`, then `all`.
    pub ops: Vec<OpRow>,
    /// Failed calls of the timed phase by `"<op> <kind>"`.
    pub errors_by_kind: BTreeMap<String, u64>,
    /// The first few failed calls, word for word.
    pub error_samples: Vec<String>,
    /// What the timed phase's GETs and DELETEs found.
    pub verification: Tally,
    pub final_check: Option<Check>,
    /// The first few wrong answers, word for word.
    pub wrong_samples: Vec<String>,
    /// Whether missing values were tolerated (no object store).
    pub allow_misses: bool,
    pub proxy_memory: ProxyMemory,
    /// The tool's own reclaims, if it made any.
    pub reclaimer: Option<ReclaimTally>,
    /// The platform's cold starts and reclaims by reason, during the run.
    pub platform: BTreeMap<String, u64>,
    /// The proxy's counters (failovers, chunks lost, repaired, recovered,
    /// invocations...), during the run.
    pub counters: BTreeMap<String, u64>,
    pub timeline: Vec<Sample>,
}

impl Report {
    /// The row of all operations together.
    pub fn total(&self) -> Option<&OpRow> {
        self.ops.iter().find(|row| row.op == "all")
    }

    /// The row of one operation (`PUT`, `GET`, `DELETE`).
    pub fn op(&self, op: &str) -> Option<&OpRow> {
        self.ops.iter().find(|row| row.op == op)
    }

    /// Failed calls, final check included: must be 0.
    pub fn errors(&self) -> u64 {
        self.total().map_or(0, |row| row.errors) + self.final_check.as_ref().map_or(0, |c| c.errors)
    }

    /// Wrong answers, final check included: must be 0.
    pub fn wrong(&self) -> u64 {
        self.verification.wrong(self.allow_misses)
            + self
                .final_check
                .as_ref()
                .map_or(0, |c| c.tally.wrong(self.allow_misses))
    }

    /// No failed call, no wrong answer.
    pub fn passed(&self) -> bool {
        self.errors() == 0 && self.wrong() == 0
    }
}

fn counter(map: &BTreeMap<String, u64>, name: &str) -> u64 {
    map.get(name).copied().unwrap_or(0)
}

fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / MB)
}

fn ms(value: f64) -> String {
    fmt_duration(Duration::from_secs_f64(value.max(0.0) / 1e3))
}

fn tally_line(t: &Tally) -> String {
    format!(
        "{} GETs checked: {} values matched ({} compared byte for byte), {} absent as expected; \
         {} DELETEs checked; corrupt {}, stale {}, missing {}, resurrected {}",
        t.gets_checked,
        t.values_matched,
        megabytes(t.bytes_matched),
        t.absent_as_expected,
        t.deletes_checked,
        t.corrupt,
        t.stale,
        t.missing,
        t.resurrected
    )
}

fn kinds_line(kinds: &BTreeMap<String, u64>) -> String {
    if kinds.is_empty() {
        return "none".into();
    }
    kinds
        .iter()
        .map(|(kind, n)| format!("{kind} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The report for people.
pub fn table(report: &Report) -> String {
    let mut out = String::new();
    w!(
        out,
        "soak {}: {} clients on {} connections, {} keys each; mix {}; sizes {}; RS({}+{})",
        report.run_id,
        report.clients,
        report.connections,
        report.keys_per_client,
        report.mix,
        report.sizes,
        report.data_shards,
        report.parity_shards
    );
    w!(out, "cache: {}", report.cache);
    w!(
        out,
        "ran {:.1} s (planned {:.0} s){}",
        report.seconds,
        report.planned_seconds,
        if report.stopped_early {
            ", stopped early"
        } else {
            ""
        }
    );
    w!(out);
    w!(
        out,
        "{:<7} {:>10} {:>7} {:>9} {:>8} {:>9} {:>9} {:>9} {:>9}",
        "op",
        "ops",
        "errors",
        "ops/s",
        "MB/s",
        "mean",
        "p50",
        "p99",
        "max"
    );
    for row in &report.ops {
        w!(
            out,
            "{:<7} {:>10} {:>7} {:>9.1} {:>8.1} {:>9} {:>9} {:>9} {:>9}",
            row.op,
            row.ops,
            row.errors,
            row.ops_per_sec,
            row.mb_per_sec,
            ms(row.mean_ms),
            ms(row.p50_ms),
            ms(row.p99_ms),
            ms(row.max_ms)
        );
    }
    w!(out);
    w!(
        out,
        "errors: {} ({})",
        report.total().map_or(0, |row| row.errors),
        kinds_line(&report.errors_by_kind)
    );
    for line in &report.error_samples {
        w!(out, "  {line}");
    }
    w!(out, "verification: {}", tally_line(&report.verification));
    if let Some(check) = &report.final_check {
        w!(
            out,
            "final check ({} keys, {:.1} s): {} errors ({}); {}",
            check.keys,
            check.seconds,
            check.errors,
            kinds_line(&check.errors_by_kind),
            tally_line(&check.tally)
        );
    }
    for line in &report.wrong_samples {
        w!(out, "  {line}");
    }
    let memory = &report.proxy_memory;
    match memory.peak_bytes {
        Some(peak) => w!(
            out,
            "proxy memory: peak {} (VmHWM, pid {}); largest sampled RSS {}; {} at the end",
            megabytes(peak),
            memory.pid.map_or("?".into(), |pid| pid.to_string()),
            memory.peak_sampled_bytes.map_or("-".into(), megabytes),
            memory.end_bytes.map_or("-".into(), megabytes)
        ),
        None => w!(out, "proxy memory: unknown (no pid; pass --proxy-pid)"),
    }
    let p = &report.platform;
    let mut reclaims = format!(
        "reclaims: platform idle {}, max-lifetime {}, random {}, admin {}; cold starts {}",
        counter(p, "reclaims_idle"),
        counter(p, "reclaims_max_lifetime"),
        counter(p, "reclaims_random"),
        counter(p, "reclaims_admin"),
        counter(p, "cold_starts")
    );
    if let Some(tool) = &report.reclaimer {
        let _ = write!(
            reclaims,
            "; the tool requested {} ({} reclaimed, {} rounds without a candidate, {} failed requests)",
            tool.requested, tool.reclaimed, tool.skipped, tool.failed
        );
    }
    w!(out, "{reclaims}");
    let c = &report.counters;
    w!(
        out,
        "proxy: failovers {}, lost environments {}, chunks lost {}, repaired {}, restored {}, \
         recovered from the COS {} ({}), objects lost {}; invocations serve {}, warm-up {}, backup {}, \
         failed {} (any kind); backups {} ({} failed)",
        counter(c, "failovers"),
        counter(c, "lost_environments"),
        counter(c, "chunks_lost"),
        counter(c, "chunks_repaired"),
        counter(c, "chunks_restored"),
        counter(c, "chunks_recovered"),
        megabytes(counter(c, "bytes_recovered")),
        counter(c, "objects_lost"),
        counter(c, "serve_invocations"),
        counter(c, "warmup_invocations"),
        counter(c, "backup_invocations"),
        counter(c, "failed_invocations"),
        counter(c, "backups"),
        counter(c, "backups_failed")
    );
    w!(
        out,
        "result: {}",
        if report.passed() {
            "PASS (no errors, every answer right)".to_string()
        } else {
            format!(
                "FAIL ({} errors, {} wrong answers)",
                report.errors(),
                report.wrong()
            )
        }
    );
    out
}

/// `soak.csv`: one line per operation kind and one for all.
pub fn ops_csv(report: &Report) -> String {
    let mut out =
        String::from("op,ops,errors,bytes,ops_per_sec,mb_per_sec,mean_ms,p50_ms,p99_ms,max_ms\n");
    for r in &report.ops {
        w!(
            out,
            "{},{},{},{},{:.3},{:.3},{:.3},{:.3},{:.3},{:.3}",
            r.op,
            r.ops,
            r.errors,
            r.bytes,
            r.ops_per_sec,
            r.mb_per_sec,
            r.mean_ms,
            r.p50_ms,
            r.p99_ms,
            r.max_ms
        );
    }
    out
}

/// `timeline.csv`: the running totals once a second.
pub fn timeline_csv(report: &Report) -> String {
    let mut out = String::from("seconds,puts,gets,deletes,errors,wrong,bytes,proxy_rss_bytes\n");
    for s in &report.timeline {
        w!(
            out,
            "{:.3},{},{},{},{},{},{},{}",
            s.seconds,
            s.puts,
            s.gets,
            s.deletes,
            s.errors,
            s.wrong,
            s.bytes,
            s.proxy_rss_bytes.map_or(String::new(), |b| b.to_string())
        );
    }
    out
}

/// Writes `soak.csv`, `timeline.csv` and `soak.json` into `dir`.
pub fn write_results(report: &Report, dir: &Path) -> Result<Vec<PathBuf>, String> {
    std::fs::create_dir_all(dir).map_err(|err| format!("{}: {err}", dir.display()))?;
    let json = serde_json::to_string_pretty(report)
        .map_err(|err| format!("cannot encode the report: {err}"))?;
    let files = [
        ("soak.csv", ops_csv(report)),
        ("timeline.csv", timeline_csv(report)),
        ("soak.json", json),
    ];
    let mut written = Vec::new();
    for (name, text) in files {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|err| format!("{}: {err}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}
