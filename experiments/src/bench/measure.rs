//! The measurement loop.
//!
//! A run is a grid of cells, one per (target, operation, size,
//! concurrency). Sizes form the outer loop and targets the next one, so the
//! same size is measured on every target within minutes, under the same
//! machine load. For each (size, target):
//!
//! 1. *fill*: every key of the key space is PUT once (untimed), so GETs
//!    always find a value;
//! 2. for each concurrency and operation, a cell: a warm-up phase (not
//!    measured: connections, allocator, caches), then the measured phase,
//!    `concurrency` workers issuing operations back to back until the cell's
//!    duration or operation count is reached;
//! 3. *clean-up*: every key is deleted, so the memory of one size's key space
//!    is free before the next (a 100 MiB key space is 1.6 GiB).
//!
//! Worker `w` of `c` only touches keys `i` with `i % c == w` (picked at
//! random among them), so no two operations of a cell ever race on a key
//! and every GET knows which value it must return. Latency is measured
//! around the client call alone; the GET's verification (length and XXH3
//! checksum against what was PUT) happens after the clock stops, for values
//! of 1 MiB and more on the blocking pool beside the worker's next
//! operation (it still takes CPU: about 7% of all CPU samples of a
//! 100 MiB native GET cell). Latencies
//! of successful operations go into an HDR histogram (nanoseconds, three
//! significant digits); throughput is successful operations (and their
//! bytes) over the measured phase's wall time, from the start of the first
//! operation to the end of the last. Failed operations and wrong or missing
//! GET results are counted per cell, warm-up included, never dropped.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};

use super::options::{CellLength, Op, Settings, TargetKind, size_label};
use super::servers::Servers;
use super::target::{Handle, Target};
use super::workload::{Keyspace, Verdict, checksum, payload_pool};

/// GET results at least this large are checksummed on the blocking pool,
/// off the runtime's worker threads.
const BLOCKING_CHECKSUM: usize = 1 << 20;
/// Error messages kept per cell (the rest are only counted).
const KEEP_ERRORS: usize = 5;
/// Largest latency the histograms hold (longer ones are clamped to it).
const MAX_NANOS: u64 = 1 << 42;

/// The results of one cell.
#[derive(Debug, Clone)]
pub struct CellResult {
    pub target: TargetKind,
    pub op: Op,
    pub size: usize,
    pub concurrency: usize,
    /// Successful measured operations.
    pub ops: u64,
    /// Failed operations (errors, timeouts), warm-up included.
    pub errors: u64,
    /// GETs that returned wrong data or nothing, warm-up included.
    pub mismatches: u64,
    /// Wall time of the measured phase.
    pub wall: Duration,
    /// Latencies of the measured operations, in nanoseconds.
    pub latency: Histogram<u64>,
    /// The 1-minute load average when the cell started.
    pub load: Option<f64>,
    /// The first few error and mismatch messages.
    pub messages: Vec<String>,
}

impl CellResult {
    /// The `q`-quantile (0..=1) of latency.
    pub fn quantile(&self, q: f64) -> Duration {
        Duration::from_nanos(self.latency.value_at_quantile(q))
    }

    pub fn mean(&self) -> Duration {
        Duration::from_nanos(self.latency.mean().round() as u64)
    }

    pub fn max(&self) -> Duration {
        Duration::from_nanos(self.latency.max())
    }

    pub fn ops_per_sec(&self) -> f64 {
        let secs = self.wall.as_secs_f64();
        if secs > 0.0 {
            self.ops as f64 / secs
        } else {
            0.0
        }
    }

    /// 10^6 bytes of values per second.
    pub fn mb_per_sec(&self) -> f64 {
        self.ops_per_sec() * self.size as f64 / 1e6
    }
}

/// Everything a run measured.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub cells: Vec<CellResult>,
    /// Keys whose fill PUT or clean-up DELETE failed.
    pub setup_failures: u64,
    /// The first few of those failures.
    pub setup_errors: Vec<String>,
    /// What ran where (servers, flags, machine).
    pub notes: Vec<String>,
}

impl Report {
    /// Failed operations and bad GET results over the whole run.
    pub fn failures(&self) -> u64 {
        self.cells
            .iter()
            .map(|c| c.errors + c.mismatches)
            .sum::<u64>()
            + self.setup_failures
    }

    pub fn cell(
        &self,
        target: TargetKind,
        op: Op,
        size: usize,
        conc: usize,
    ) -> Option<&CellResult> {
        self.cells
            .iter()
            .find(|c| c.target == target && c.op == op && c.size == size && c.concurrency == conc)
    }
}

/// Progress on stderr: a bar over the cells with the current one and its
/// operation count; hidden (and free) when stderr is not a terminal or
/// progress is off. Rows printed through [`Progress::println`] do not
/// tear the bar.
pub struct Progress {
    bar: ProgressBar,
}

impl Progress {
    pub fn new(enabled: bool) -> Progress {
        use std::io::IsTerminal as _;
        let bar = if enabled && std::io::stderr().is_terminal() {
            let bar = ProgressBar::new(0);
            let style = ProgressStyle::with_template(
                "{elapsed_precise} [{bar:30}] {pos}/{len} cells  {msg}",
            )
            .map(|style| style.progress_chars("=> "))
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        } else {
            ProgressBar::hidden()
        };
        Progress { bar }
    }

    /// No progress output at all.
    pub fn hidden() -> Progress {
        Progress {
            bar: ProgressBar::hidden(),
        }
    }

    pub fn plan(&self, cells: u64) {
        self.bar.set_length(cells);
    }

    pub fn message(&self, message: String) {
        self.bar.set_message(message);
    }

    pub fn cell_done(&self) {
        self.bar.inc(1);
    }

    /// Prints a line on stdout without disturbing the bar.
    pub fn println(&self, line: &str) {
        self.bar.suspend(|| println!("{line}"));
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// The 1-minute load average, from `/proc/loadavg`.
pub fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn new_histogram() -> Result<Histogram<u64>, String> {
    Histogram::new_with_bounds(1, MAX_NANOS, 3).map_err(|err| format!("histogram: {err}"))
}

/// When a phase stops starting operations.
#[derive(Debug, Clone, Copy)]
enum Stop {
    At(Instant),
    /// Operations for this worker.
    Count(u64),
}

/// What one worker did in one phase.
struct WorkerOut {
    latency: Histogram<u64>,
    ops: u64,
    errors: u64,
    mismatches: u64,
    messages: Vec<String>,
}

/// Counters a phase's workers share with the progress display.
#[derive(Default)]
struct Live {
    ops: AtomicU64,
    failures: AtomicU64,
}

/// The check of a GET result: done, or running on the blocking pool.
enum Check {
    Done(Verdict),
    /// The checksum of a large value of key `index`, being computed.
    Running {
        index: usize,
        len: usize,
        sum: tokio::task::JoinHandle<u64>,
    },
}

/// Judges a GET result of key `index` by its fingerprint.
fn judge(keys: &Keyspace, index: usize, fingerprint: Option<(usize, u64)>) -> Verdict {
    match keys.verify(index, fingerprint) {
        Verdict::Missing => Verdict::Wrong(format!(
            "GET {}: not found, but a value was PUT",
            keys.key(index)
        )),
        other => other,
    }
}

impl Check {
    async fn finish(self, keys: &Keyspace) -> Verdict {
        match self {
            Check::Done(verdict) => verdict,
            Check::Running { index, len, sum } => match sum.await {
                Ok(sum) => judge(keys, index, Some((len, sum))),
                Err(err) => Verdict::Wrong(format!(
                    "GET {}: checksum task failed: {err}",
                    keys.key(index)
                )),
            },
        }
    }
}

/// Runs one operation on key `index`; returns its latency and the check of
/// its result, or the error. A large GET result is checksummed on the
/// blocking pool while the worker goes on (see [`worker`]).
async fn one_op(
    handle: &mut Handle,
    keys: &Keyspace,
    op: Op,
    index: usize,
    timeout: Duration,
) -> Result<(Duration, Check), String> {
    let key = keys.key(index);
    match op {
        Op::Put => {
            let (choice, payload) = keys.next_payload(index, rand::random::<u32>() as usize);
            let data = payload.data.clone();
            let start = Instant::now();
            let outcome = tokio::time::timeout(timeout, handle.put(&key, &data)).await;
            let latency = start.elapsed();
            match outcome {
                Ok(Ok(())) => {
                    keys.written(index, choice);
                    Ok((latency, Check::Done(Verdict::Ok)))
                }
                Ok(Err(err)) => {
                    keys.unsure(index);
                    Err(err)
                }
                Err(_) => {
                    keys.unsure(index);
                    Err(format!("PUT {key}: no answer within {timeout:?}"))
                }
            }
        }
        Op::Get => {
            let start = Instant::now();
            let outcome = tokio::time::timeout(timeout, handle.get(&key)).await;
            let latency = start.elapsed();
            let got = match outcome {
                Ok(Ok(got)) => got,
                Ok(Err(err)) => return Err(err),
                Err(_) => return Err(format!("GET {key}: no answer within {timeout:?}")),
            };
            let check = match got {
                None => Check::Done(judge(keys, index, None)),
                Some(value) if value.len() >= BLOCKING_CHECKSUM => Check::Running {
                    index,
                    len: value.len(),
                    sum: tokio::task::spawn_blocking(move || checksum(&value)),
                },
                Some(value) => {
                    Check::Done(judge(keys, index, Some((value.len(), checksum(&value)))))
                }
            };
            Ok((latency, check))
        }
    }
}

impl WorkerOut {
    fn failed(&mut self, live: &Live, message: String) {
        live.failures.fetch_add(1, Ordering::Relaxed);
        if self.messages.len() < KEEP_ERRORS {
            self.messages.push(message);
        }
    }

    fn judged(&mut self, live: &Live, verdict: Verdict) {
        if let Verdict::Wrong(message) = verdict {
            self.mismatches += 1;
            self.failed(live, message);
        }
    }
}

/// One worker: operations back to back on its own keys until `stop`. The
/// check of a large GET result (its checksum) runs beside the next
/// operation, so that it does not hold the next request back; a worker has
/// at most one check outstanding (and so at most two values in memory).
async fn worker(
    mut handle: Handle,
    keys: Arc<Keyspace>,
    mine: Vec<usize>,
    op: Op,
    stop: Stop,
    timeout: Duration,
    live: Arc<Live>,
) -> Result<WorkerOut, String> {
    let mut out = WorkerOut {
        latency: new_histogram()?,
        ops: 0,
        errors: 0,
        mismatches: 0,
        messages: Vec::new(),
    };
    if mine.is_empty() {
        return Ok(out);
    }
    let mut started = 0u64;
    let mut pending: Option<Check> = None;
    loop {
        let more = match stop {
            Stop::At(deadline) => Instant::now() < deadline,
            Stop::Count(n) => started < n,
        };
        if !more {
            break;
        }
        started += 1;
        let index = mine[rand::random::<u32>() as usize % mine.len()];
        let outcome = one_op(&mut handle, &keys, op, index, timeout).await;
        if let Some(check) = pending.take() {
            let verdict = check.finish(&keys).await;
            out.judged(&live, verdict);
        }
        match outcome {
            Ok((latency, check)) => {
                let nanos = u64::try_from(latency.as_nanos()).unwrap_or(MAX_NANOS);
                out.latency.saturating_record(nanos.clamp(1, MAX_NANOS));
                out.ops += 1;
                live.ops.fetch_add(1, Ordering::Relaxed);
                match check {
                    Check::Done(verdict) => out.judged(&live, verdict),
                    running => pending = Some(running),
                }
            }
            Err(message) => {
                out.errors += 1;
                out.failed(&live, message);
            }
        }
    }
    if let Some(check) = pending {
        let verdict = check.finish(&keys).await;
        out.judged(&live, verdict);
    }
    Ok(out)
}

/// What a phase did, merged over its workers.
struct PhaseOut {
    latency: Histogram<u64>,
    ops: u64,
    errors: u64,
    mismatches: u64,
    messages: Vec<String>,
    wall: Duration,
}

/// Runs `op` with `concurrency` workers until `length` is reached.
async fn phase(
    target: &Target,
    keys: &Arc<Keyspace>,
    op: Op,
    concurrency: usize,
    length: CellLength,
    timeout: Duration,
    live: &Arc<Live>,
) -> Result<PhaseOut, String> {
    let workers = concurrency.max(1);
    // Connections are opened before the clock starts.
    let mut handles = Vec::with_capacity(workers);
    for _ in 0..workers {
        handles.push(target.handle().await?);
    }
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(workers);
    for (w, handle) in handles.into_iter().enumerate() {
        let mine: Vec<usize> = (w..keys.len()).step_by(workers).collect();
        let stop = match length {
            CellLength::Duration(d) => Stop::At(start + d),
            CellLength::Ops(n) => {
                let per = n / workers as u64 + u64::from((w as u64) < n % workers as u64);
                Stop::Count(per)
            }
        };
        tasks.push(tokio::spawn(worker(
            handle,
            keys.clone(),
            mine,
            op,
            stop,
            timeout,
            live.clone(),
        )));
    }
    let mut out = PhaseOut {
        latency: new_histogram()?,
        ops: 0,
        errors: 0,
        mismatches: 0,
        messages: Vec::new(),
        wall: Duration::ZERO,
    };
    let mut failure = None;
    for task in tasks {
        match task.await {
            Ok(Ok(w)) => {
                out.latency
                    .add(&w.latency)
                    .map_err(|err| format!("merging histograms: {err}"))?;
                out.ops += w.ops;
                out.errors += w.errors;
                out.mismatches += w.mismatches;
                for message in w.messages {
                    if out.messages.len() < KEEP_ERRORS {
                        out.messages.push(message);
                    }
                }
            }
            Ok(Err(err)) => {
                failure.get_or_insert(err);
            }
            Err(err) => {
                failure.get_or_insert(format!("benchmark worker failed: {err}"));
            }
        }
    }
    out.wall = start.elapsed();
    match failure {
        Some(err) => Err(err),
        None => Ok(out),
    }
}

/// Runs one cell: warm-up, then the measured phase.
async fn cell(
    settings: &Settings,
    target: &Target,
    keys: &Arc<Keyspace>,
    op: Op,
    concurrency: usize,
    progress: &Progress,
) -> Result<CellResult, String> {
    let name = format!(
        "{} {} {} c={concurrency}",
        target.kind,
        op.label(),
        size_label(keys.size())
    );
    let load = load_average();
    let live = Arc::new(Live::default());
    let warmup = match settings.length {
        CellLength::Duration(_) => {
            (!settings.warmup.is_zero()).then_some(CellLength::Duration(settings.warmup))
        }
        CellLength::Ops(n) => Some(CellLength::Ops((n / 10).max(concurrency as u64))),
    };
    let ticker = {
        let live = live.clone();
        let bar = progress.bar.clone();
        let name = name.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(250));
            loop {
                tick.tick().await;
                bar.set_message(format!(
                    "{name}: {} ops, {} failed",
                    live.ops.load(Ordering::Relaxed),
                    live.failures.load(Ordering::Relaxed)
                ));
            }
        })
    };
    let result = async {
        let (mut errors, mut mismatches, mut messages) = (0, 0, Vec::new());
        if let Some(length) = warmup {
            let w = phase(
                target,
                keys,
                op,
                concurrency,
                length,
                settings.op_timeout,
                &live,
            )
            .await?;
            errors += w.errors;
            mismatches += w.mismatches;
            messages.extend(w.messages.into_iter().map(|m| format!("warm-up: {m}")));
        }
        let m = phase(
            target,
            keys,
            op,
            concurrency,
            settings.length,
            settings.op_timeout,
            &live,
        )
        .await?;
        messages.extend(m.messages);
        messages.truncate(KEEP_ERRORS);
        Ok::<_, String>(CellResult {
            target: target.kind,
            op,
            size: keys.size(),
            concurrency,
            ops: m.ops,
            errors: errors + m.errors,
            mismatches: mismatches + m.mismatches,
            wall: m.wall,
            latency: m.latency,
            load,
            messages,
        })
    }
    .await;
    ticker.abort();
    result
}

/// PUTs (or, with `delete`, deletes) every key once with `concurrency`
/// workers; returns one message per failed key (at most a few kept).
async fn sweep(
    target: &Target,
    keys: &Arc<Keyspace>,
    concurrency: usize,
    delete: bool,
    timeout: Duration,
) -> Result<Vec<String>, String> {
    let workers = concurrency.clamp(1, keys.len().max(1));
    let mut tasks = Vec::with_capacity(workers);
    for w in 0..workers {
        let mut handle = target.handle().await?;
        let keys = keys.clone();
        tasks.push(tokio::spawn(async move {
            let mut failed = Vec::new();
            for index in (w..keys.len()).step_by(workers) {
                let key = keys.key(index);
                let outcome = if delete {
                    tokio::time::timeout(timeout, handle.delete(&key)).await
                } else {
                    let (choice, payload) = keys.next_payload(index, index);
                    let data = payload.data.clone();
                    let outcome = tokio::time::timeout(timeout, handle.put(&key, &data)).await;
                    if matches!(outcome, Ok(Ok(()))) {
                        keys.written(index, choice);
                    }
                    outcome
                };
                match outcome {
                    Ok(Ok(())) => {}
                    Ok(Err(err)) => failed.push(err),
                    Err(_) => failed.push(format!("{key}: no answer within {timeout:?}")),
                }
            }
            failed
        }));
    }
    let mut failed = Vec::new();
    for task in tasks {
        failed.extend(
            task.await
                .map_err(|err| format!("benchmark worker failed: {err}"))?,
        );
    }
    Ok(failed)
}

/// Runs every cell of `settings` against the servers' targets (in the
/// order of `settings.targets`), printing each row as it completes.
pub async fn run_cells(
    settings: &Settings,
    servers: &Servers,
    progress: &Progress,
) -> Result<Report, String> {
    let mut targets = Vec::new();
    for &kind in &settings.targets {
        let addr = servers
            .addr(kind)
            .ok_or_else(|| format!("no address for the {kind} target"))?;
        targets.push(Target::connect(kind, addr, servers.tls_ca(), settings).await?);
    }
    let mut report = Report {
        notes: servers.notes.clone(),
        ..Report::default()
    };
    let cells =
        targets.len() * settings.sizes.len() * settings.concurrency.len() * settings.ops.len();
    progress.plan(cells as u64);
    let width = super::report::target_width(settings.targets.iter().copied());
    progress.println(&super::report::header(width));
    let max_conc = settings.max_concurrency();
    for &size in &settings.sizes {
        progress.message(format!("generating {} payloads", size_label(size)));
        let pool = payload_pool(size);
        for target in &targets {
            let keys = Arc::new(Keyspace::new(
                &format!("bench:{}", target.kind),
                pool.clone(),
                settings.keys_for(size),
            ));
            progress.message(format!(
                "{}: writing {} keys of {}",
                target.kind,
                keys.len(),
                size_label(size)
            ));
            let failed = sweep(target, &keys, max_conc, false, settings.op_timeout).await?;
            note_failures(&mut report, target, size, "PUT (fill)", failed);
            for &concurrency in &settings.concurrency {
                for &op in &settings.ops {
                    let result = cell(settings, target, &keys, op, concurrency, progress).await?;
                    progress.println(&super::report::row(&result, width));
                    for message in &result.messages {
                        progress.println(&format!("    ! {message}"));
                    }
                    report.cells.push(result);
                    progress.cell_done();
                }
            }
            progress.message(format!(
                "{}: deleting {} keys of {}",
                target.kind,
                keys.len(),
                size_label(size)
            ));
            let failed = sweep(target, &keys, max_conc, true, settings.op_timeout).await?;
            note_failures(&mut report, target, size, "DELETE (clean-up)", failed);
        }
    }
    progress.finish();
    Ok(report)
}

fn note_failures(
    report: &mut Report,
    target: &Target,
    size: usize,
    what: &str,
    failed: Vec<String>,
) {
    if failed.is_empty() {
        return;
    }
    let n = failed.len();
    report.setup_failures += n as u64;
    for message in failed.into_iter().take(KEEP_ERRORS) {
        report.setup_errors.push(format!(
            "{} {} {what}: {message}",
            target.kind,
            size_label(size)
        ));
    }
    if n > KEEP_ERRORS {
        report.setup_errors.push(format!(
            "{} {} {what}: {} more failures",
            target.kind,
            size_label(size),
            n - KEEP_ERRORS
        ));
    }
}
