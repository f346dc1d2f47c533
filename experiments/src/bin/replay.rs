//! `replay`: replays an object-access trace (the IBM Docker registry format,
//! or a synthetic trace with its published properties) against a real
//! cache, and reports the hit ratio, latency and what it would cost on AWS
//! next to ElastiCache and S3. See `infinicache_experiments::replay`.
//!
//! ```text
//! cargo build --release -p infinicache-proxy -p infinicache-node -p infinicache-experiments
//! ./target/release/replay --synthetic-hours 50 --seed 1            # 50 h in about 8 minutes
//! ./target/release/replay --trace dal09.csv --time-scale 600 --size-scale 1000
//! ./target/release/replay --write-synthetic trace.csv --synthetic-hours 50   # just write the trace
//! ```

use std::fs::File;
use std::io::BufWriter;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use infinicache_experiments::cost::{NodeClass, Prices};
use infinicache_experiments::replay::{self, ProxyTarget, Settings};
use infinicache_experiments::trace::synthetic::{self, SyntheticSpec};
use infinicache_experiments::trace::{Properties, Request, TraceError, TraceReader};

/// Replay a trace against InfiniCache and report hit ratio, latency and cost.
#[derive(Debug, Parser)]
#[command(name = "replay")]
struct Args {
    /// Trace file (CSV, IBM registry columns). Without it, a synthetic
    /// trace is generated.
    #[arg(long, conflicts_with = "synthetic_hours")]
    trace: Option<PathBuf>,
    /// Stop at the first malformed row instead of skipping and counting.
    #[arg(long)]
    strict: bool,
    /// Simulated hours of the synthetic trace.
    #[arg(long)]
    synthetic_hours: Option<f64>,
    /// Distinct objects of the synthetic trace.
    #[arg(long, default_value_t = 4_000)]
    synthetic_objects: usize,
    /// Seed of the synthetic trace.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Write the synthetic trace to this file and exit.
    #[arg(long)]
    write_synthetic: Option<PathBuf>,
    /// Simulated seconds per real second.
    #[arg(long, default_value_t = 360.0)]
    time_scale: f64,
    /// Divide object sizes by this (function memory is sized for the
    /// scaled objects; the cost model scales GB-seconds back up).
    #[arg(long, default_value_t = 200.0)]
    size_scale: f64,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Replay objects of at least this many bytes only (full size; e.g.
    /// 10000001 for the paper's large-object-only run).
    #[arg(long, default_value_t = 0)]
    min_object_size: u64,
    /// Replay requests of any status (default: below 400).
    #[arg(long)]
    all_statuses: bool,
    /// Cache nodes (functions).
    #[arg(long, default_value_t = 24)]
    pool_size: usize,
    #[arg(long, default_value_t = 10)]
    data_shards: usize,
    #[arg(long, default_value_t = 2)]
    parity_shards: usize,
    /// Memory of each function (MB, for the scaled objects).
    #[arg(long, default_value_t = 128)]
    node_memory_mb: u32,
    /// Memory each node keeps back (MB).
    #[arg(long, default_value_t = 32)]
    node_reserved_mb: u32,
    /// A serving node returns after being idle this long, in the deployment
    /// the replay stands for; the replayed proxy gets it divided by the
    /// time scale (and the cost model adds the difference back).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "100ms")]
    node_idle_timeout: Duration,
    /// The shortest idle timeout the replayed proxy is given.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10ms")]
    min_replay_idle_timeout: Duration,
    /// Simulated warm-up interval ("0s": none).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "1m")]
    warmup: Duration,
    /// Simulated backup interval ("0s": none).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "5m")]
    backup: Duration,
    /// Random reclaims per environment per simulated hour.
    #[arg(long)]
    random_reclaims_per_hour: Option<f64>,
    /// Never reclaim environments for idleness or age.
    #[arg(long)]
    no_reclaim: bool,
    /// Replay against a running proxy (its client address) instead of
    /// starting one; time and size scaling of the proxy are then its own.
    #[arg(long)]
    proxy: Option<String>,
    /// With --proxy: its admin API (for the ledger by purpose).
    #[arg(long, requires = "proxy")]
    admin: Option<SocketAddr>,
    /// With --proxy: its local platform (for the billing records).
    #[arg(long, requires = "proxy")]
    platform: Option<SocketAddr>,
    /// Lambda price per GB-second, x86.
    #[arg(long, default_value_t = 0.000_016_666_7)]
    price_gb_second_x86: f64,
    /// Lambda price per GB-second, arm64.
    #[arg(long, default_value_t = 0.000_013_333_4)]
    price_gb_second_arm64: f64,
    /// Lambda price per million requests.
    #[arg(long, default_value_t = 0.20)]
    price_per_million_requests: f64,
    /// ElastiCache node to compare with: NAME:GiB:USD_PER_HOUR.
    #[arg(long, default_value = "cache.r5.24xlarge:635.61:10.368")]
    elasticache_node: String,
    /// S3 price per 1,000 GETs.
    #[arg(long, default_value_t = 0.0004)]
    s3_get_per_1000: f64,
    /// S3 price per 1,000 PUTs.
    #[arg(long, default_value_t = 0.005)]
    s3_put_per_1000: f64,
    /// S3 transfer out per GB (0: within a region).
    #[arg(long, default_value_t = 0.09)]
    s3_transfer_per_gb: f64,
    /// Directory for report.txt, the CSVs and the SVG charts.
    #[arg(long, default_value = "target/experiments/replay")]
    out: PathBuf,
}

fn node_class(text: &str) -> Result<NodeClass, String> {
    let parts: Vec<&str> = text.split(':').collect();
    let [name, gib, hourly] = parts.as_slice() else {
        return Err(format!(
            "--elasticache-node wants NAME:GiB:USD_PER_HOUR, not {text:?}"
        ));
    };
    let number = |v: &str| {
        v.parse::<f64>()
            .map_err(|_| format!("--elasticache-node: bad number {v:?}"))
    };
    Ok(NodeClass::new(name, number(gib)?, number(hourly)?))
}

#[tokio::main]
async fn main() -> ExitCode {
    infinicache_experiments::init_logging();
    match run(Args::parse()).await {
        Ok(code) => code,
        Err(err) => {
            eprintln!("replay: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<ExitCode, String> {
    let prices = Prices {
        lambda_gb_second_x86: args.price_gb_second_x86,
        lambda_gb_second_arm64: args.price_gb_second_arm64,
        lambda_request: args.price_per_million_requests / 1e6,
        elasticache_node: node_class(&args.elasticache_node)?,
        s3_get_per_1000: args.s3_get_per_1000,
        s3_put_per_1000: args.s3_put_per_1000,
        s3_transfer_per_gb: args.s3_transfer_per_gb,
        ..Prices::default()
    };
    let mut reclaim_args = Vec::new();
    if let Some(rate) = args.random_reclaims_per_hour {
        reclaim_args.extend(["--random-reclaims-per-hour".to_string(), rate.to_string()]);
    }
    if args.no_reclaim {
        reclaim_args.push("--no-reclaim".into());
    }
    let mut settings = Settings {
        time_scale: args.time_scale,
        size_scale: args.size_scale,
        concurrency: args.concurrency,
        pool_size: args.pool_size,
        data_shards: args.data_shards,
        parity_shards: args.parity_shards,
        node_memory_mb: args.node_memory_mb,
        node_reserved_mb: args.node_reserved_mb,
        node_idle_timeout: args.node_idle_timeout,
        min_replay_idle_timeout: args.min_replay_idle_timeout,
        warmup_interval: args.warmup,
        backup_interval: args.backup,
        reclaim_args,
        all_statuses: args.all_statuses,
        min_object_size: args.min_object_size,
        hours: None,
        prices,
        ..Settings::default()
    };
    settings.validate()?;

    // The requests: a file read row by row, or a synthetic trace.
    let rows: Box<dyn Iterator<Item = Result<Request, TraceError>> + Send> = match &args.trace {
        Some(path) => {
            let reader =
                TraceReader::open(path).map_err(|err| format!("{}: {err}", path.display()))?;
            eprintln!("replaying {}", path.display());
            if args.strict {
                Box::new(reader.take_while(|row| match row {
                    Ok(_) => true,
                    Err(err) => {
                        eprintln!("replay: stopping at the malformed row: {err}");
                        false
                    }
                }))
            } else {
                Box::new(reader)
            }
        }
        None => {
            let hours = args.synthetic_hours.unwrap_or(50.0);
            let spec = SyntheticSpec {
                hours,
                objects: args.synthetic_objects,
                seed: args.seed,
                ..SyntheticSpec::default()
            };
            let requests = synthetic::generate(&spec)?;
            eprintln!(
                "synthetic trace (seed {}): {}",
                args.seed,
                Properties::measure(&requests).describe()
            );
            if let Some(path) = &args.write_synthetic {
                let file =
                    File::create(path).map_err(|err| format!("{}: {err}", path.display()))?;
                synthetic::write_trace(&mut BufWriter::new(file), &requests)
                    .map_err(|err| format!("{}: {err}", path.display()))?;
                println!("wrote {} requests to {}", requests.len(), path.display());
                return Ok(ExitCode::SUCCESS);
            }
            settings.hours = Some(hours);
            Box::new(requests.into_iter().map(Ok))
        }
    };

    eprintln!(
        "replay at x{} (a simulated hour every {:.1} s), sizes / {}, {} functions of {} MB ({:.0} GB at full size), RS({}+{})",
        settings.time_scale,
        3600.0 / settings.time_scale,
        settings.size_scale,
        settings.pool_size,
        settings.node_memory_mb,
        settings.pool_size as f64 * f64::from(settings.node_memory_mb) * settings.size_scale
            / 1024.0,
        settings.data_shards,
        settings.parity_shards
    );
    let progress = |hour: &replay::Hour| {
        eprintln!(
            "  hour {:>3}: {:>5} GETs, hit ratio {}",
            hour.hour + 1,
            hour.gets,
            hour.hit_ratio()
                .map_or("-".to_string(), |r| format!("{r:.1}%"))
        );
    };
    let report = match &args.proxy {
        Some(client) => {
            // The running proxy has its own idle timeout: nothing to add back.
            settings.min_replay_idle_timeout = settings.node_idle_timeout;
            let target = ProxyTarget {
                client: client.clone(),
                admin: args.admin,
                platform: args.platform,
            };
            replay::run_against(&settings, &target, rows, progress).await?
        }
        None => replay::run(&settings, rows, progress).await?,
    };

    print!("{}", replay::table(&report));
    let files = replay::write_results(&report, &args.out)
        .map_err(|err| format!("cannot write results to {}: {err}", args.out.display()))?;
    println!("results: {}", args.out.display());
    for file in files {
        println!("  {}", file.display());
    }
    if report.corrupt > 0 {
        eprintln!(
            "replay: {} GETs returned bytes that were never written",
            report.corrupt
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}
