//! The benchmark tool (`bench`): latency and throughput of the cache's
//! native protocol, of its RESP (Redis protocol) frontend and of a plain
//! redis-server, in one run on one machine, so that ratios compare like with
//! like. On request (`--targets native,native-tls`), also the native
//! protocol over TLS, against a second cache started with a test
//! certificate, to measure what TLS costs.
//!
//! A run measures a grid of cells, (target × operation × object size ×
//! concurrency), each a warm-up then a measured phase of a fixed duration
//! or operation count (see [`measure`] for the loop and what is timed).
//! Every GET is verified against what was PUT (length and XXH3 checksum per
//! key, see [`workload`]); failed operations and bad results are counted
//! and reported, never dropped. Results: a table on stdout, `bench.csv`,
//! and SVG (and PNG) charts of latency percentiles by size and throughput by
//! concurrency ([`report`]).
//!
//! By default the tool starts what it measures ([`servers`]): a cache from
//! the release binaries, configured for benchmarking (nodes kept warm, no
//! durable store), and a redis-server without persistence on a free
//! loopback port. Or it measures servers given by address.
//!
//! ## Memory
//!
//! A (target, size) key space holds `min(keys, keyspace_bytes / size)` keys,
//! but at least one per worker of the highest concurrency; with the
//! defaults (1000 keys, 1 GiB) that is 1000 keys of 1 KiB or 1 MiB, 102 of
//! 10 MiB and 16 of 100 MiB. Only one key space exists at a time: it is
//! deleted before the next (size, target) starts. Values come from a pool of
//! at most 64 MiB of random payloads per size (two for 100 MiB). At
//! 100 MiB × concurrency 16, the peak is about: the cache's nodes 1.6 GiB ×
//! 12/10 (3.8 GiB while every key is being overwritten), the proxy and the
//! client a value or two per operation in flight (16 × 100 MiB each), and
//! for redis-server its 1.6 GiB plus a query or reply buffer per connection
//! and the `redis` client's copies (the command it builds for a SET, the
//! reply it parses for a GET): well under 12 GiB in all on a 24 GB box.
//!
//! [`redis_benchmark`] runs Redis's own `redis-benchmark` against the RESP
//! frontend and redis-server and puts their tables side by side.

pub mod measure;
pub mod options;
pub mod redis_benchmark;
pub mod report;
pub mod servers;
pub mod target;
pub mod workload;

pub use measure::{CellResult, Progress, Report};
pub use options::{CellLength, Connections, Op, Settings, TargetKind};

use options::size_label;
use redis_benchmark::{RbRow, RbSettings};
use servers::Servers;

/// A line describing the machine and its load now.
pub fn machine_note() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| {
            let parts: Vec<&str> = l.split_whitespace().take(3).collect();
            (parts.len() == 3).then(|| parts.join(" "))
        })
        .unwrap_or_else(|| "unknown".into());
    format!("machine: {cpus} CPUs, load average {load}")
}

/// Runs the benchmark of `settings`: starts the servers it needs, measures
/// every cell (printing rows as they complete), stops the servers.
pub async fn run(settings: &Settings, progress: &Progress) -> Result<Report, String> {
    settings.validate()?;
    let before = machine_note();
    let servers = Servers::start(settings, &settings.targets).await?;
    let result = measure::run_cells(settings, &servers, progress).await;
    servers.stop().await;
    let mut report = result?;
    report.notes.push(format!(
        "cells: {}, warm-up {}; k={} r={}; at start: {before}; at end: {}",
        match settings.length {
            CellLength::Duration(d) => format!("{} each", humantime::format_duration(d)),
            CellLength::Ops(n) => format!("{n} operations each"),
        },
        match settings.length {
            CellLength::Duration(_) => humantime::format_duration(settings.warmup).to_string(),
            CellLength::Ops(n) => format!("{} operations", n / 10),
        },
        settings.data_shards,
        settings.parity_shards,
        machine_note()
    ));
    Ok(report)
}

/// Runs `redis-benchmark` for every size and concurrency of `settings`
/// against the RESP frontend and redis-server (those of `settings.targets`),
/// starting them as [`run`] does.
pub async fn run_redis_benchmark(
    settings: &Settings,
    rb: &RbSettings,
    progress: &Progress,
) -> Result<Vec<RbRow>, String> {
    if servers::find_executable(&rb.program).is_none() {
        return Err(format!(
            "{} is not installed (or not on PATH): install redis-tools (`make redis`)",
            rb.program.display()
        ));
    }
    let targets: Vec<TargetKind> = settings
        .targets
        .iter()
        .copied()
        .filter(|t| !matches!(t, TargetKind::Native | TargetKind::NativeTls))
        .collect();
    if targets.is_empty() {
        return Err("redis-benchmark measures the resp and redis targets: none selected".into());
    }
    let servers = Servers::start(settings, &targets).await?;
    let result = async {
        let mut rows = Vec::new();
        for note in &servers.notes {
            progress.println(&format!("# {note}"));
        }
        for &size in &rb.sizes {
            for &conc in &rb.concurrency {
                for &target in &targets {
                    let addr = servers
                        .addr(target)
                        .ok_or_else(|| format!("no address for the {target} target"))?;
                    progress.message(format!(
                        "redis-benchmark {target} {} c={conc}",
                        size_label(size)
                    ));
                    let mut got =
                        redis_benchmark::run_one(rb, target.name(), addr, size, conc).await?;
                    for row in &got {
                        progress.println(&format!(
                            "{:<6} {:<4} {:>7} c={:<3} n={:<6} {:>9.0} req/s {:>8.1} MB/s p50 {} p99 {}  (load {})",
                            row.server,
                            row.test,
                            size_label(row.size),
                            row.concurrency,
                            row.requests,
                            row.rps,
                            row.mb_per_sec(),
                            report::fmt_duration(std::time::Duration::from_secs_f64(row.p50_ms / 1e3)),
                            report::fmt_duration(std::time::Duration::from_secs_f64(row.p99_ms / 1e3)),
                            measure::load_average().map_or("-".into(), |l| format!("{l:.2}")),
                        ));
                    }
                    rows.append(&mut got);
                    progress.cell_done();
                }
            }
            for &target in &targets {
                if let Some(addr) = servers.addr(target) {
                    redis_benchmark::clean_up(addr).await?;
                }
            }
        }
        Ok::<_, String>(rows)
    };
    progress.plan((rb.sizes.len() * rb.concurrency.len() * targets.len()) as u64);
    let result = result.await;
    progress.finish();
    servers.stop().await;
    result
}
