//! `bench`: latency and throughput of the cache's native protocol, its RESP
//! frontend and a plain redis-server, in one run. See
//! `infinicache_experiments::bench`.
//!
//! ```text
//! make bench-redis                                   # the defaults below
//! make bench-redis ARGS="--sizes 1KiB,1MiB --duration 5s --targets native,redis"
//! make bench-redis ARGS="--redis-benchmark"          # redis-benchmark: RESP vs redis-server
//! make bench-redis ARGS="--targets native,native-tls" # what TLS costs the native client
//! ./target/release/bench --native 10.0.0.5:6378 --redis 10.0.0.6:6379 --targets native,redis
//! ```
//!
//! Exit status: 0 when every operation succeeded and every GET returned
//! what was PUT, 1 otherwise (after writing all results), 2 on bad options.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use infinicache_experiments::bench::options::{parse_list, parse_size};
use infinicache_experiments::bench::redis_benchmark::{self, RbSettings};
use infinicache_experiments::bench::{
    self, CellLength, Connections, Op, Progress, Settings, TargetKind, report,
};

/// Benchmarks GET and PUT on the native protocol, the RESP frontend and
/// redis-server: latency percentiles and throughput per object size and
/// concurrency, as a table, CSV and SVG/PNG charts.
#[derive(Debug, Parser)]
#[command(name = "bench")]
struct Args {
    /// Targets, comma-separated: native, resp, redis, and (not by default)
    /// native-tls: the native client over TLS, against a second cache
    /// started with a test certificate.
    #[arg(long, default_value = "native,resp,redis")]
    targets: String,
    /// Operations, comma-separated: get, put.
    #[arg(long, default_value = "get,put")]
    ops: String,
    /// Object sizes, comma-separated (1KiB, 64KiB, 1MiB, 1.5MB, 4096...).
    #[arg(long, default_value = "1KiB,1MiB,10MiB,100MiB")]
    sizes: String,
    /// Concurrent operations (workers), comma-separated.
    #[arg(long, default_value = "1,16")]
    concurrency: String,
    /// Most keys per key space (one per target and size).
    #[arg(long, default_value_t = 1000)]
    keys: usize,
    /// Memory budget of one key space: sizes get min(keys, this / size)
    /// keys, and at least one per worker.
    #[arg(long, default_value = "1GiB")]
    keyspace_bytes: String,
    /// Measured time per cell.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10s", conflicts_with = "ops_per_cell")]
    duration: Duration,
    /// Measured operations per cell instead of a duration (the warm-up is
    /// then a tenth of this).
    #[arg(long)]
    ops_per_cell: Option<u64>,
    /// Unmeasured warm-up before each cell.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "2s")]
    warmup: Duration,
    /// Data shards of the native client (and of the proxy started).
    #[arg(short = 'k', long, default_value_t = 10)]
    data_shards: usize,
    /// Parity shards of the native client (and of the proxy started).
    #[arg(short = 'r', long, default_value_t = 2)]
    parity_shards: usize,
    /// Cache nodes of the proxy started (0: max(12, k + r)).
    #[arg(long, default_value_t = 0)]
    pool_size: usize,
    /// Extra flags for the proxies started (the native-tls one too),
    /// whitespace-separated; they override the tool's (e.g. "--cos dir").
    #[arg(long, allow_hyphen_values = true, default_value = "")]
    proxy_args: String,
    /// Measure this proxy client address instead of starting a cache.
    #[arg(long)]
    native: Option<String>,
    /// Measure this TLS client listener (native-tls) instead of starting a
    /// second cache; see --tls-ca.
    #[arg(long)]
    native_tls: Option<String>,
    /// The CA certificates (PEM) to trust for --native-tls (default: the
    /// system's trust store).
    #[arg(long, requires = "native_tls")]
    tls_ca: Option<PathBuf>,
    /// Measure this RESP frontend address instead of starting a cache.
    #[arg(long)]
    resp: Option<String>,
    /// Measure this redis-server address instead of starting one.
    #[arg(long)]
    redis: Option<String>,
    /// The redis-server to start.
    #[arg(long, default_value = "redis-server")]
    redis_server: PathBuf,
    /// One pipelined connection for all workers (resp, redis) instead of
    /// one per worker.
    #[arg(long)]
    shared_connection: bool,
    /// Time limit of one operation.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "2m")]
    op_timeout: Duration,
    /// Run redis-benchmark (`-t set,get -d SIZE -c CONC -n N --csv`) against
    /// the RESP frontend and redis-server instead, and print both side by
    /// side.
    #[arg(long)]
    redis_benchmark: bool,
    /// The redis-benchmark to run.
    #[arg(long, default_value = "redis-benchmark")]
    redis_benchmark_bin: PathBuf,
    /// Requests per redis-benchmark test (default: about 2 GiB of values,
    /// 30 to 20000).
    #[arg(long)]
    rb_requests: Option<u64>,
    /// Output directory (bench.csv, bench.txt, charts; redis-benchmark.csv).
    #[arg(long, default_value = "target/experiments/bench")]
    out: PathBuf,
    /// No progress bar (it is also off when stderr is not a terminal).
    #[arg(long)]
    no_progress: bool,
}

fn settings(args: &Args) -> Result<Settings, String> {
    let mut targets = parse_list(&args.targets, str::parse::<TargetKind>)?;
    let mut seen = Vec::new();
    targets.retain(|t| {
        let first = !seen.contains(t);
        seen.push(*t);
        first
    });
    let settings = Settings {
        targets,
        ops: parse_list(&args.ops, str::parse::<Op>)?,
        sizes: parse_list(&args.sizes, parse_size)?,
        concurrency: parse_list(&args.concurrency, |c| {
            c.trim()
                .parse::<usize>()
                .map_err(|_| format!("bad concurrency {c:?}"))
        })?,
        keys: args.keys,
        keyspace_bytes: parse_size(&args.keyspace_bytes)?,
        length: match args.ops_per_cell {
            Some(n) => CellLength::Ops(n),
            None => CellLength::Duration(args.duration),
        },
        warmup: args.warmup,
        data_shards: args.data_shards,
        parity_shards: args.parity_shards,
        pool_size: args.pool_size,
        proxy_args: args
            .proxy_args
            .split_whitespace()
            .map(str::to_string)
            .collect(),
        native_addr: args.native.clone(),
        native_tls_addr: args.native_tls.clone(),
        tls_ca: args.tls_ca.clone(),
        resp_addr: args.resp.clone(),
        redis_addr: args.redis.clone(),
        redis_server: args.redis_server.clone(),
        connections: if args.shared_connection {
            Connections::Shared
        } else {
            Connections::PerWorker
        },
        op_timeout: args.op_timeout,
        out: args.out.clone(),
    };
    settings.validate()?;
    Ok(settings)
}

async fn redis_benchmark_mode(args: &Args, settings: &Settings, progress: &Progress) -> ExitCode {
    let rb = RbSettings {
        program: args.redis_benchmark_bin.clone(),
        sizes: settings.sizes.clone(),
        concurrency: settings.concurrency.clone(),
        requests: args.rb_requests,
        timeout: Duration::from_secs(1800),
    };
    let rows = match bench::run_redis_benchmark(settings, &rb, progress).await {
        Ok(rows) => rows,
        Err(err) => {
            eprintln!("bench: FAILED: {err}");
            return ExitCode::FAILURE;
        }
    };
    println!();
    print!("{}", redis_benchmark::table(&rows));
    match redis_benchmark::write_all(&rows, &settings.out) {
        Ok(files) => {
            for file in files {
                println!("wrote {}", file.display());
            }
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("bench: {err}");
            ExitCode::FAILURE
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    infinicache_experiments::init_logging();
    let args = Args::parse();
    let settings = match settings(&args) {
        Ok(settings) => settings,
        Err(err) => {
            eprintln!("bench: {err}");
            return ExitCode::from(2);
        }
    };
    let progress = Progress::new(!args.no_progress);
    if args.redis_benchmark {
        return redis_benchmark_mode(&args, &settings, &progress).await;
    }
    let report = match bench::run(&settings, &progress).await {
        Ok(report) => report,
        Err(err) => {
            eprintln!("bench: FAILED: {err}");
            return ExitCode::FAILURE;
        }
    };
    println!();
    print!("{}", report::table(&report));
    let comparison = report::comparison(&report);
    if !comparison.is_empty() {
        println!();
        print!("{comparison}");
    }
    let mut status = ExitCode::SUCCESS;
    match report::write_all(&report, &settings.out) {
        Ok(files) => {
            for file in files {
                println!("wrote {}", file.display());
            }
        }
        Err(err) => {
            eprintln!("bench: {err}");
            status = ExitCode::FAILURE;
        }
    }
    let failures = report.failures();
    if failures > 0 {
        eprintln!(
            "bench: {failures} failed operation(s) or wrong GET result(s): see the err and bad \
             columns and the messages above"
        );
        status = ExitCode::FAILURE;
    }
    status
}
