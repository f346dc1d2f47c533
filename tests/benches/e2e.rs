//! End-to-end benchmark: PUT and GET latency (p50, p99, mean) and throughput
//! through the real `infinicache-proxy`, its embedded local Lambda platform
//! and `infinicache-node` processes, all on loopback.
//!
//! ```text
//! cargo build --release --workspace --bins
//! cargo bench -p infinicache-tests --bench e2e
//! ```
//!
//! `cargo bench` builds this benchmark in the `bench` profile (which
//! inherits `release`) and the harness starts the proxy binary found next to
//! it, so the binaries must be built with `--release` first.
//!
//! Settings (environment variables):
//!
//! | variable           | default            | meaning                                      |
//! |--------------------|--------------------|----------------------------------------------|
//! | `E2E_SIZES`        | `1KiB,1MiB,10MiB`  | object sizes (`B`, `KiB`/`K`, `MiB`/`M`, `GiB`/`G`) |
//! | `E2E_OPS`          | by size            | timed ops per (op, size, concurrency): one number, or one per size |
//! | `E2E_CONCURRENCY`  | `1,8`              | concurrent operations (one pass each)        |
//! | `E2E_K`, `E2E_R`   | `10`, `2`          | data and parity shards                       |
//! | `E2E_COLD_OPS`     | `3`                | cold GETs per size (0: skip the cold pass)   |
//! | `E2E_CSV`          | `target/e2e-bench.csv` | where the CSV copy of the table goes     |
//!
//! Default op counts scale with the object size (10000 below 64 KiB, then a
//! budget of about 4 GiB per phase, at most 1000: 1000 for 1 MiB, 400 for
//! 10 MiB).
//!
//! Every timed operation is measured on its own; a phase's throughput is its
//! operations (or bytes) over the phase's wall time. The nodes run with
//! `--node-idle-timeout 60s`, so they stay connected between operations and
//! the figures describe the steady-state data path. A separate cache with the
//! default idle timeout measures "cold" GETs: nodes have returned from their
//! invocations (and are frozen) and must be invoked again.
//!
//! The `codec-*` rows are the peer measurement: the raw [`ObjectCodec`] work
//! for the same objects in the same run (encode; decode from the `k` data
//! chunks; decode with `r` data chunks lost, i.e. Reed-Solomon
//! reconstruction), so the share of the end-to-end latency that is codec
//! rather than network/proxy/node is visible.
//!
//! Every GET is checked against the bytes last PUT under its key (after its
//! latency was taken); any error or mismatch makes the benchmark exit
//! non-zero. PUTs store one of a few random payloads (never the value the
//! key holds already, so a stale read is caught), shared without copying.
//!
//! A second table shows where the CPU goes per operation: client (this
//! process, minus the result checks), proxy and nodes, from `/proc` (Linux;
//! elsewhere the table is left out). On a small machine the whole cache
//! shares the CPUs, so this explains most of the latency.
//!
//! Results also go to a CSV file (one row per table row, with the CPU
//! columns).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use infinicache::{Client, CodecParams, ObjectCodec};
use infinicache_tests::harness::{TestCache, random_bytes};

const KIB: usize = 1024;
const MIB: usize = 1024 * KIB;

/// Bytes of distinct objects kept per size (the key space): overwrites keep
/// the cache's footprint bounded however many operations run.
const KEYSPACE_BYTES: usize = 200 * MIB;

/// Result type of the benchmark: any error ends the run with a non-zero code.
type Res<T> = Result<T, String>;

#[derive(Debug, Clone)]
struct Settings {
    sizes: Vec<usize>,
    ops: Vec<usize>,
    concurrency: Vec<usize>,
    k: usize,
    r: usize,
    cold_ops: usize,
    csv: PathBuf,
}

impl Settings {
    fn from_env() -> Res<Settings> {
        let sizes = env_list("E2E_SIZES", "1KiB,1MiB,10MiB", parse_size)?;
        if sizes.is_empty() {
            return Err("E2E_SIZES lists no size".into());
        }
        let ops = match std::env::var("E2E_OPS") {
            Ok(text) => {
                let ops = parse_list(&text, parse_count)
                    .map_err(|err| format!("E2E_OPS={text:?}: {err}"))?;
                match ops.len() {
                    1 => vec![ops[0]; sizes.len()],
                    n if n == sizes.len() => ops,
                    n => {
                        return Err(format!(
                            "E2E_OPS gives {n} counts for {} sizes (give one, or one per size)",
                            sizes.len()
                        ));
                    }
                }
            }
            Err(_) => sizes.iter().map(|&size| default_ops(size)).collect(),
        };
        if ops.contains(&0) {
            return Err("E2E_OPS must be at least 1".into());
        }
        let concurrency = env_list("E2E_CONCURRENCY", "1,8", parse_count)?;
        if concurrency.is_empty() || concurrency.contains(&0) {
            return Err("E2E_CONCURRENCY must list counts of at least 1".into());
        }
        let k = env_one("E2E_K", 10)?;
        let r = env_one("E2E_R", 2)?;
        CodecParams::new(k, r).map_err(|err| format!("E2E_K={k}, E2E_R={r}: {err}"))?;
        let cold_ops = env_one("E2E_COLD_OPS", 3)?;
        let csv = match std::env::var_os("E2E_CSV") {
            Some(path) => PathBuf::from(path),
            None => target_dir()?.join("e2e-bench.csv"),
        };
        Ok(Settings {
            sizes,
            ops,
            concurrency,
            k,
            r,
            cold_ops,
            csv,
        })
    }
}

/// Timed operations per phase when `E2E_OPS` is not set.
fn default_ops(size: usize) -> usize {
    if size < 64 * KIB {
        10_000
    } else {
        (4000 * MIB / size).clamp(20, 1000)
    }
}

fn env_one(name: &str, default: usize) -> Res<usize> {
    match std::env::var(name) {
        Ok(text) => parse_count(&text).map_err(|err| format!("{name}={text:?}: {err}")),
        Err(_) => Ok(default),
    }
}

fn env_list(name: &str, default: &str, parse: fn(&str) -> Res<usize>) -> Res<Vec<usize>> {
    let text = std::env::var(name).unwrap_or_else(|_| default.to_string());
    parse_list(&text, parse).map_err(|err| format!("{name}={text:?}: {err}"))
}

fn parse_list(text: &str, parse: fn(&str) -> Res<usize>) -> Res<Vec<usize>> {
    text.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(parse)
        .collect()
}

fn parse_count(text: &str) -> Res<usize> {
    text.trim()
        .parse()
        .map_err(|err| format!("not a count: {text:?} ({err})"))
}

/// `1024`, `1KiB`, `1K`, `10MiB`, `1GiB` (binary units; case-insensitive).
fn parse_size(text: &str) -> Res<usize> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: usize = number
        .parse()
        .map_err(|err| format!("not a size: {text:?} ({err})"))?;
    let scale = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => KIB,
        "m" | "mb" | "mib" => MIB,
        "g" | "gb" | "gib" => 1024 * MIB,
        other => return Err(format!("unknown size unit {other:?} in {text:?}")),
    };
    number
        .checked_mul(scale)
        .ok_or_else(|| format!("size {text:?} is too large"))
}

fn size_label(size: usize) -> String {
    if size >= MIB && size.is_multiple_of(MIB) {
        format!("{}MiB", size / MIB)
    } else if size >= KIB && size.is_multiple_of(KIB) {
        format!("{}KiB", size / KIB)
    } else {
        format!("{size}B")
    }
}

/// The profile directory this benchmark was built into, where the
/// workspace binaries it starts must be (`<target>/<profile>`; the benchmark
/// itself is `<target>/<profile>/deps/e2e-<hash>`).
fn profile_dir() -> Res<PathBuf> {
    let exe = std::env::current_exe()
        .map_err(|err| format!("cannot locate the benchmark executable: {err}"))?;
    let mut dir = exe
        .parent()
        .ok_or("benchmark executable has no parent directory")?
        .to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    Ok(dir)
}

/// The target directory (`target/`, or wherever `CARGO_TARGET_DIR` points).
fn target_dir() -> Res<PathBuf> {
    let mut dir = profile_dir()?;
    dir.pop();
    Ok(dir)
}

/// Checks that the proxy and node binaries exist in this benchmark's profile
/// directory (and warns if their sources look newer than they are).
fn check_binaries() -> Res<()> {
    let hint = "build them in the benchmark's profile first: `cargo build --release --workspace --bins` \
                (`cargo bench` uses the release profile; a plain `cargo build` puts them in target/debug)";
    for name in ["infinicache-proxy", "infinicache-node"] {
        // `target_bin` panics when the binary is missing, with a hint meant
        // for `cargo test` (debug profile): replace it with ours.
        let default_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let found = std::panic::catch_unwind(|| infinicache_tests::target_bin(name));
        std::panic::set_hook(default_hook);
        let path = found.map_err(|_| {
            let dir = profile_dir()
                .map(|dir| dir.display().to_string())
                .unwrap_or_default();
            format!("binary `{name}` not found in {dir}: {hint}")
        })?;
        let built = std::fs::metadata(&path)
            .and_then(|meta| meta.modified())
            .map_err(|err| format!("cannot stat {}: {err}", path.display()))?;
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .ok_or("tests crate has no parent directory")?;
        let newest = ["core/src", "proxy/src", "lambda/src"]
            .iter()
            .filter_map(|dir| newest_mtime(&workspace.join(dir)))
            .max();
        if newest.is_some_and(|newest| newest > built) {
            eprintln!(
                "warning: {} is older than the workspace sources; the figures may describe stale code ({hint})",
                path.display()
            );
        }
    }
    Ok(())
}

fn newest_mtime(dir: &Path) -> Option<SystemTime> {
    let mut newest = None;
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        let time = if path.is_dir() {
            newest_mtime(&path)
        } else {
            entry.metadata().and_then(|meta| meta.modified()).ok()
        };
        newest = newest.max(time);
    }
    newest
}

/// One row of the result table.
#[derive(Debug, Clone)]
struct Row {
    op: String,
    size: usize,
    concurrency: usize,
    ops: usize,
    p50: Duration,
    p99: Duration,
    mean: Duration,
    mb_per_s: f64,
    ops_per_s: f64,
    /// CPU time and minor page faults per operation of the client (this
    /// process), the proxy and the nodes, when measured (Linux).
    usage: Option<Usage3>,
}

impl Row {
    /// Summarises per-operation latencies and the phase's wall time.
    fn new(
        op: &str,
        size: usize,
        concurrency: usize,
        mut lat: Vec<Duration>,
        wall: Duration,
    ) -> Row {
        lat.sort_unstable();
        let ops = lat.len();
        let total: Duration = lat.iter().sum();
        let secs = wall.as_secs_f64().max(f64::MIN_POSITIVE);
        Row {
            op: op.to_string(),
            size,
            concurrency,
            ops,
            p50: percentile(&lat, 50.0),
            p99: percentile(&lat, 99.0),
            mean: total / u32::try_from(ops.max(1)).unwrap_or(u32::MAX),
            mb_per_s: (ops * size) as f64 / secs / 1e6,
            ops_per_s: ops as f64 / secs,
            usage: None,
        }
    }

    fn with_usage(mut self, usage: Option<Usage3>) -> Row {
        self.usage = usage;
        self
    }

    fn print_usage(&self) {
        let Some(Usage3 {
            client,
            proxy,
            nodes,
            bench_ms,
        }) = self.usage
        else {
            return;
        };
        println!(
            "{:<20} {:>8} {:>5} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.0} {:>9.0} {:>9.0}",
            self.op,
            size_label(self.size),
            self.concurrency,
            bench_ms,
            client.cpu_ms,
            proxy.cpu_ms,
            nodes.cpu_ms,
            client.cpu_ms + proxy.cpu_ms + nodes.cpu_ms,
            client.faults,
            proxy.faults,
            nodes.faults,
        );
    }

    fn print(&self) {
        println!(
            "{:<20} {:>8} {:>5} {:>6} {:>10} {:>10} {:>10} {:>10.1} {:>10.1}",
            self.op,
            size_label(self.size),
            self.concurrency,
            self.ops,
            fmt_duration(self.p50),
            fmt_duration(self.p99),
            fmt_duration(self.mean),
            self.mb_per_s,
            self.ops_per_s,
        );
    }

    fn csv(&self, out: &mut String, settings: &Settings) {
        let usage = match self.usage {
            Some(u) => {
                let all = [u.client, u.proxy, u.nodes];
                std::iter::once(format!("{:.3}", u.bench_ms))
                    .chain(all.iter().map(|p| format!("{:.3}", p.cpu_ms)))
                    .chain(all.iter().map(|p| format!("{:.0}", p.faults)))
                    .collect::<Vec<_>>()
                    .join(",")
            }
            None => ",,,,,,".to_string(),
        };
        let _ = writeln!(
            out,
            "{},{},{},{},{},{:.1},{:.1},{:.1},{:.3},{:.3},{},{},{usage}",
            self.op,
            self.size,
            size_label(self.size),
            self.concurrency,
            self.ops,
            micros(self.p50),
            micros(self.p99),
            micros(self.mean),
            self.mb_per_s,
            self.ops_per_s,
            settings.k,
            settings.r,
        );
    }
}

fn print_header() {
    println!(
        "{:<20} {:>8} {:>5} {:>6} {:>10} {:>10} {:>10} {:>10} {:>10}",
        "op", "size", "conc", "ops", "p50", "p99", "mean", "MB/s", "ops/s"
    );
}

fn print_usage_header() {
    println!(
        "{:<20} {:>8} {:>5} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "op",
        "size",
        "conc",
        "check",
        "cli-cpu",
        "prx-cpu",
        "node-cpu",
        "all-cpu",
        "cli-flt",
        "prx-flt",
        "node-flt"
    );
}

/// Per-operation resource use of one process group over a phase.
#[derive(Debug, Clone, Copy, Default)]
struct PerOp {
    /// User + system CPU time, milliseconds per operation.
    cpu_ms: f64,
    /// Minor page faults per operation.
    faults: f64,
}

/// Cumulative CPU ticks and minor faults of a process (from
/// `/proc/<pid>/stat`; they include exited threads).
#[derive(Debug, Clone, Copy, Default)]
struct Usage {
    ticks: u64,
    minflt: u64,
}

impl std::ops::Add for Usage {
    type Output = Usage;
    fn add(self, other: Usage) -> Usage {
        Usage {
            ticks: self.ticks + other.ticks,
            minflt: self.minflt + other.minflt,
        }
    }
}

/// `/proc/<pid>/stat` clock ticks per second (`USER_HZ`, 100 on Linux).
const USER_HZ: f64 = 100.0;

/// Parent pid, command name and usage of a process (Linux only).
fn proc_stat(pid: u32) -> Option<(u32, String, Usage)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text.get(open + 1..close)?.to_string();
    // Fields after the command, from field 3 (state) on.
    let fields: Vec<&str> = text.get(close + 1..)?.split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<u64>().ok());
    let ppid = u32::try_from(field(4)?).ok()?;
    let usage = Usage {
        minflt: field(10)?,
        ticks: field(14)? + field(15)?,
    };
    Some((ppid, comm, usage))
}

/// Usage of the client (this process), the proxy and its node processes.
///
/// The proxy is the child of this process running `infinicache-proxy`; the
/// nodes are the proxy's children (the local platform's environments).
struct Probe {
    proxy: Option<u32>,
}

impl Probe {
    fn new() -> Probe {
        let me = std::process::id();
        let proxy = all_pids().into_iter().find(|&pid| {
            proc_stat(pid).is_some_and(|(ppid, comm, _)| {
                ppid == me && "infinicache-proxy".starts_with(comm.as_str()) && !comm.is_empty()
            })
        });
        Probe { proxy }
    }

    fn sample(&self) -> Option<[Usage; 3]> {
        let proxy_pid = self.proxy?;
        let (_, _, client) = proc_stat(std::process::id())?;
        let (_, _, proxy) = proc_stat(proxy_pid)?;
        let nodes = all_pids()
            .into_iter()
            .filter_map(proc_stat)
            .filter(|(ppid, _, _)| *ppid == proxy_pid)
            .map(|(_, _, usage)| usage)
            .fold(Usage::default(), |a, b| a + b);
        Some([client, proxy, nodes])
    }

    /// Per-operation use between two samples; `overhead` (the benchmark's
    /// own result checks, wall time) is taken out of the client's CPU.
    fn per_op(
        before: Option<[Usage; 3]>,
        after: Option<[Usage; 3]>,
        ops: usize,
        overhead: Duration,
    ) -> Option<Usage3> {
        let (before, after) = (before?, after?);
        let ops = ops.max(1) as f64;
        let mut out = [PerOp::default(); 3];
        for ((out, b), a) in out.iter_mut().zip(before).zip(after) {
            // Saturating: a node replaced between samples restarts its counts.
            out.cpu_ms = a.ticks.saturating_sub(b.ticks) as f64 / USER_HZ * 1e3 / ops;
            out.faults = a.minflt.saturating_sub(b.minflt) as f64 / ops;
        }
        let bench_ms = overhead.as_secs_f64() * 1e3 / ops;
        out[0].cpu_ms = (out[0].cpu_ms - bench_ms).max(0.0);
        Some(Usage3 {
            client: out[0],
            proxy: out[1],
            nodes: out[2],
            bench_ms,
        })
    }
}

/// Per-operation resource use of a phase.
#[derive(Debug, Clone, Copy)]
struct Usage3 {
    client: PerOp,
    proxy: PerOp,
    nodes: PerOp,
    /// The benchmark's own work per operation (checking GET results), ms.
    bench_ms: f64,
}

fn all_pids() -> Vec<u32> {
    std::fs::read_dir("/proc")
        .map(|dir| {
            dir.flatten()
                .filter_map(|entry| entry.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Nearest-rank percentile of sorted samples.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn fmt_duration(d: Duration) -> String {
    let us = micros(d);
    if us < 1000.0 {
        format!("{us:.0}µs")
    } else if us < 1e6 {
        format!("{:.2}ms", us / 1e3)
    } else {
        format!("{:.2}s", us / 1e6)
    }
}

/// Distinct random objects per size the PUT payloads are drawn from.
const PAYLOADS: usize = 3;

/// What the cache should hold: the bytes last PUT under each key.
struct Keyspace {
    prefix: String,
    expected: Mutex<Vec<Bytes>>,
    /// Random objects the PUTs store (shared, never copied).
    payloads: Vec<Bytes>,
}

impl Keyspace {
    fn new(prefix: String, keys: usize, size: usize) -> Keyspace {
        Keyspace {
            prefix,
            expected: Mutex::new(vec![Bytes::new(); keys]),
            payloads: (0..PAYLOADS).map(|_| random_bytes(size)).collect(),
        }
    }

    fn key(&self, index: usize) -> String {
        format!("{}-{index}", self.prefix)
    }

    fn len(&self) -> usize {
        self.expected.lock().map_or(0, |expected| expected.len())
    }

    /// The value of the `serial`-th PUT to key `index`: one of the random
    /// payloads, never the one the key holds now, so a GET that returned
    /// the previous version is caught. Payloads are shared `Bytes`: building
    /// a PUT costs no copy.
    fn payload(&self, index: usize, serial: u64) -> Res<Bytes> {
        let current = self.expected(index)?;
        let first = (serial % PAYLOADS as u64) as usize;
        let pick = (0..PAYLOADS)
            .map(|i| &self.payloads[(first + i) % PAYLOADS])
            .find(|p| p.is_empty() || p.as_ptr() != current.as_ptr())
            .unwrap_or(&self.payloads[first]);
        Ok(pick.clone())
    }

    fn expected(&self, index: usize) -> Res<Bytes> {
        self.expected
            .lock()
            .map_err(|_| "keyspace lock poisoned".to_string())
            .map(|expected| expected[index].clone())
    }

    fn set(&self, index: usize, value: Bytes) -> Res<()> {
        let mut expected = self
            .expected
            .lock()
            .map_err(|_| "keyspace lock poisoned".to_string())?;
        expected[index] = value;
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Put,
    Get,
}

/// What one operation cost: its latency, and the benchmark's own work
/// around it (checking the bytes a GET returned), which is not part of the
/// latency but does take client CPU.
struct Timed {
    latency: Duration,
    overhead: Duration,
}

/// PUTs `value` under key `index` and records it as expected.
async fn put_one(client: &Client, keys: &Keyspace, index: usize, value: Bytes) -> Res<Timed> {
    let key = keys.key(index);
    let start = Instant::now();
    let version = client
        .put(key.as_str(), value.clone())
        .await
        .map_err(|err| format!("PUT {key} ({} bytes) failed: {err}", value.len()))?;
    let latency = start.elapsed();
    if version == 0 {
        return Err(format!("PUT {key} returned version 0"));
    }
    keys.set(index, value)?;
    Ok(Timed {
        latency,
        overhead: Duration::ZERO,
    })
}

/// GETs key `index` and checks the bytes against what was PUT.
async fn get_one(client: &Client, keys: &Keyspace, index: usize) -> Res<Timed> {
    let key = keys.key(index);
    let start = Instant::now();
    let got = client
        .get(key.as_str())
        .await
        .map_err(|err| format!("GET {key} failed: {err}"))?;
    let latency = start.elapsed();
    let check = Instant::now();
    let expected = keys.expected(index)?;
    match got {
        None => Err(format!(
            "GET {key}: not found, but {} bytes were PUT",
            expected.len()
        )),
        Some(got) if got != expected => {
            let first_diff = got
                .iter()
                .zip(expected.iter())
                .position(|(a, b)| a != b)
                .unwrap_or(got.len().min(expected.len()));
            Err(format!(
                "GET {key} returned WRONG DATA: {} bytes, expected {} (first difference at byte {first_diff})",
                got.len(),
                expected.len()
            ))
        }
        Some(got) => {
            drop(got);
            Ok(Timed {
                latency,
                overhead: check.elapsed(),
            })
        }
    }
}

/// The outcome of one phase.
struct PhaseResult {
    latencies: Vec<Duration>,
    wall: Duration,
    /// Total time the benchmark spent checking results.
    overhead: Duration,
}

/// Runs `ops` operations with `concurrency` workers; worker `w` owns the keys
/// `j` with `j % concurrency == w`, so no key sees two operations at once.
async fn phase(
    client: &Client,
    keys: &Arc<Keyspace>,
    op: Op,
    ops: usize,
    concurrency: usize,
    serial: &mut u64,
) -> Res<PhaseResult> {
    let nkeys = keys.len();
    let workers = concurrency.min(nkeys).max(1);
    // Disjoint ranges of serial numbers per worker.
    let stride = (ops / workers + 1) as u64;
    let mut tasks = Vec::with_capacity(workers);
    let start = Instant::now();
    for w in 0..workers {
        let my_keys: Vec<usize> = (w..nkeys).step_by(workers).collect();
        let my_ops = ops / workers + usize::from(w < ops % workers);
        let client = client.clone();
        let keys = keys.clone();
        let first_serial = *serial + (w as u64) * stride;
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(my_ops);
            let mut overhead = Duration::ZERO;
            for i in 0..my_ops {
                let index = my_keys[i % my_keys.len()];
                let timed = match op {
                    Op::Put => {
                        let value = keys.payload(index, first_serial + i as u64)?;
                        put_one(&client, &keys, index, value).await?
                    }
                    Op::Get => get_one(&client, &keys, index).await?,
                };
                lat.push(timed.latency);
                overhead += timed.overhead;
            }
            Ok::<_, String>((lat, overhead))
        }));
    }
    *serial += (workers as u64) * stride;
    let mut result = PhaseResult {
        latencies: Vec::with_capacity(ops),
        wall: Duration::ZERO,
        overhead: Duration::ZERO,
    };
    let mut first_error = None;
    for task in tasks {
        match task.await {
            Ok(Ok((mut lat, overhead))) => {
                result.latencies.append(&mut lat);
                result.overhead += overhead;
            }
            Ok(Err(err)) => {
                first_error.get_or_insert(err);
            }
            Err(err) => {
                first_error.get_or_insert(format!("benchmark task failed: {err}"));
            }
        }
    }
    result.wall = start.elapsed();
    match first_error {
        Some(err) => Err(err),
        None => Ok(result),
    }
}

/// Times `work` once.
fn timed<T>(work: impl FnOnce() -> T) -> (T, Duration) {
    let start = Instant::now();
    let out = work();
    (out, start.elapsed())
}

/// Raw codec cost of the same objects, measured in this process: encode,
/// decode from the `k` data chunks, and decode with `r` data chunks lost.
///
/// Every output is dropped right after it was checked, so that the
/// allocator hands the same memory back next time, as it does in the
/// client's steady state (if several outputs are freed together, glibc
/// trims its heap and every later decode pays page faults for a fresh
/// buffer, which would make the codec look several times slower).
fn codec_rows(settings: &Settings, size: usize, iterations: usize) -> Res<Vec<Row>> {
    let params = CodecParams::new(settings.k, settings.r).map_err(|err| err.to_string())?;
    let codec = ObjectCodec::new(params);
    let object = random_bytes(size);
    let (k, r) = (settings.k, settings.r);
    let lost = r.min(k);
    let mut encode = Vec::with_capacity(iterations);
    let mut decode = Vec::with_capacity(iterations);
    let mut degraded = Vec::with_capacity(iterations);
    // The first iterations warm up (page faults, matrix caches).
    let warmup = iterations.div_ceil(10).clamp(1, 20);
    for i in 0..warmup + iterations {
        let (chunks, took) = timed(|| codec.encode(&object, 1));
        let chunks = chunks.map_err(|err| format!("codec encode of {size} bytes failed: {err}"))?;
        if i >= warmup {
            encode.push(took);
        }

        let (out, took) = timed(|| codec.decode(&chunks[..k]));
        let out = out.map_err(|err| format!("codec decode of {size} bytes failed: {err}"))?;
        if out != object {
            return Err(format!("codec decode of {size} bytes returned WRONG DATA"));
        }
        drop(out);
        if i >= warmup {
            decode.push(took);
        }

        if lost > 0 {
            let (out, took) = timed(|| codec.decode(&chunks[lost..lost + k]));
            let out =
                out.map_err(|err| format!("codec degraded decode of {size} bytes failed: {err}"))?;
            if out != object {
                return Err(format!(
                    "codec degraded decode of {size} bytes returned WRONG DATA"
                ));
            }
            drop(out);
            if i >= warmup {
                degraded.push(took);
            }
        }
    }
    let row = |name: &str, lat: Vec<Duration>| {
        let wall = lat.iter().sum();
        Row::new(name, size, 1, lat, wall)
    };
    let mut rows = vec![row("codec-encode", encode), row("codec-decode", decode)];
    if lost > 0 {
        rows.push(row(&format!("codec-decode-{lost}lost"), degraded));
    }
    Ok(rows)
}

/// Steady state: nodes stay connected for the whole measurement.
async fn warm_rows(settings: &Settings, rows: &mut Vec<Row>) -> Res<()> {
    let pool = (settings.k + settings.r).max(12).to_string();
    let cache = TestCache::start(&["--node-idle-timeout", "60s", "--pool-size", &pool]).await;
    let client = cache.client(settings.k, settings.r).await;
    let probe = Probe::new();
    let max_conc = settings.concurrency.iter().copied().max().unwrap_or(1);
    let mut serial = 1u64;

    for (&size, &ops) in settings.sizes.iter().zip(&settings.ops) {
        let nkeys = (KEYSPACE_BYTES / size.max(1))
            .clamp(max_conc, 1000)
            .min(ops.max(max_conc));
        let keys = Arc::new(Keyspace::new(
            format!("e2e-{}", size_label(size)),
            nkeys,
            size,
        ));

        // Warm-up (untimed): fill the key space, then read part of it back.
        let warm = nkeys.max(ops / 10).max(max_conc);
        phase(&client, &keys, Op::Put, warm, max_conc, &mut serial).await?;
        phase(&client, &keys, Op::Get, warm, max_conc, &mut serial).await?;

        for &conc in &settings.concurrency {
            for (op, name) in [(Op::Put, "put"), (Op::Get, "get")] {
                let before = probe.sample();
                let result = phase(&client, &keys, op, ops, conc, &mut serial).await?;
                let usage = Probe::per_op(before, probe.sample(), ops, result.overhead);
                let row =
                    Row::new(name, size, conc, result.latencies, result.wall).with_usage(usage);
                row.print();
                rows.push(row);
            }
        }

        let iterations = ops.min(500);
        let codec = tokio::task::spawn_blocking({
            let settings = settings.clone();
            move || codec_rows(&settings, size, iterations)
        })
        .await
        .map_err(|err| format!("codec task failed: {err}"))??;
        for row in codec {
            row.print();
            rows.push(row);
        }
    }
    cache.stop().await;
    Ok(())
}

/// Cold GETs: default node idle timeout, so nodes return from their
/// invocation (and are frozen) between operations and each GET must invoke
/// them again.
async fn cold_rows(settings: &Settings, rows: &mut Vec<Row>) -> Res<()> {
    let pool = (settings.k + settings.r).max(12).to_string();
    let cache = TestCache::start(&["--pool-size", &pool]).await;
    let client = cache.client(settings.k, settings.r).await;
    for &size in &settings.sizes {
        let keys = Keyspace::new(format!("cold-{}", size_label(size)), 1, size);
        put_one(&client, &keys, 0, keys.payload(0, 0)?).await?;
        let mut lat = Vec::with_capacity(settings.cold_ops);
        for _ in 0..settings.cold_ops {
            // Well past the default idle timeout (100 ms): every node has
            // returned and been frozen.
            tokio::time::sleep(Duration::from_millis(600)).await;
            lat.push(get_one(&client, &keys, 0).await?.latency);
        }
        let wall = lat.iter().sum();
        let row = Row::new("get-cold", size, 1, lat, wall);
        row.print();
        rows.push(row);
    }
    cache.stop().await;
    Ok(())
}

async fn run(settings: &Settings) -> Res<Vec<Row>> {
    check_binaries()?;
    println!(
        "infinicache e2e benchmark: k={} r={} sizes={} ops={:?} concurrency={:?} ({} CPUs)",
        settings.k,
        settings.r,
        settings
            .sizes
            .iter()
            .map(|&s| size_label(s))
            .collect::<Vec<_>>()
            .join(","),
        settings.ops,
        settings.concurrency,
        std::thread::available_parallelism().map_or(0, usize::from),
    );
    println!(
        "latency per operation; MB/s = 10^6 bytes of object per second of phase wall time; \
         codec-* rows: raw ObjectCodec in this process (wall = sum of latencies)"
    );
    print_header();
    let mut rows = Vec::new();
    warm_rows(settings, &mut rows).await?;
    if settings.cold_ops > 0 {
        cold_rows(settings, &mut rows).await?;
    }
    if rows.iter().any(|row| row.usage.is_some()) {
        println!();
        println!(
            "where the CPU goes, per operation: check = this benchmark comparing GET results \
             (ms, not in the latency); cli/prx/node-cpu = user+system CPU ms of the client \
             (minus check), proxy, all nodes; all-cpu = their sum; *-flt = minor page faults \
             (from /proc, 10 ms tick resolution)"
        );
        print_usage_header();
        for row in &rows {
            row.print_usage();
        }
    }
    Ok(rows)
}

fn write_csv(settings: &Settings, rows: &[Row]) -> Res<()> {
    let mut out = String::from(
        "op,size_bytes,size,concurrency,ops,p50_us,p99_us,mean_us,mb_per_s,ops_per_s,k,r,\
         bench_check_ms_per_op,client_cpu_ms_per_op,proxy_cpu_ms_per_op,nodes_cpu_ms_per_op,\
         client_minflt_per_op,proxy_minflt_per_op,nodes_minflt_per_op\n",
    );
    for row in rows {
        row.csv(&mut out, settings);
    }
    if let Some(dir) = settings
        .csv
        .parent()
        .filter(|dir| !dir.as_os_str().is_empty())
    {
        std::fs::create_dir_all(dir)
            .map_err(|err| format!("cannot create {}: {err}", dir.display()))?;
    }
    std::fs::write(&settings.csv, out)
        .map_err(|err| format!("cannot write {}: {err}", settings.csv.display()))
}

#[tokio::main]
async fn main() -> ExitCode {
    // `cargo bench` passes `--bench` (and any filter); there is nothing to
    // filter here, so arguments are ignored.
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(err) => {
            eprintln!("e2e: bad settings: {err}");
            return ExitCode::from(2);
        }
    };
    let rows = match run(&settings).await {
        Ok(rows) => rows,
        Err(err) => {
            eprintln!("e2e: FAILED: {err}");
            return ExitCode::FAILURE;
        }
    };
    match write_csv(&settings, &rows) {
        Ok(()) => {
            println!("wrote {}", settings.csv.display());
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("e2e: {err}");
            ExitCode::FAILURE
        }
    }
}
