//! `elasticity`: the elastic window following a data set that grows, then
//! shrinks; functions, memory, billed GB-seconds and recovery throughput
//! from the object store. See `infinicache_experiments::elasticity`.
//!
//! ```text
//! cargo build --release -p infinicache-proxy -p infinicache-node -p infinicache-experiments
//! ./target/release/elasticity --out results/elasticity
//! ```

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use infinicache_experiments::elasticity::{self, Settings};

/// A growing then shrinking data set over simulated time on InfiniStore's
/// elastic window: functions, memory used, billed GB-seconds, and how fast
/// data comes back from the object store.
#[derive(Debug, Parser)]
#[command(name = "elasticity")]
struct Args {
    /// Simulated hours of writing (the data set grows).
    #[arg(long, default_value_t = 1.0)]
    grow_hours: f64,
    /// Simulated hours of reading a hot set, without writes.
    #[arg(long, default_value_t = 0.25)]
    steady_hours: f64,
    /// Simulated hours after most objects are deleted (buckets expire).
    #[arg(long, default_value_t = 0.75)]
    shrink_hours: f64,
    /// Simulated seconds per real second.
    #[arg(long, default_value_t = 60.0)]
    time_scale: f64,
    /// Functions deployed: the most the window can use.
    #[arg(long, default_value_t = 48)]
    pool_size: usize,
    #[arg(long, default_value_t = 4)]
    data_shards: usize,
    #[arg(long, default_value_t = 2)]
    parity_shards: usize,
    /// Memory of each function (MB), as billed.
    #[arg(long, default_value_t = 128)]
    node_memory_mb: u32,
    /// Chunk capacity of each function (MB); the rest is the node's reserve.
    #[arg(long, default_value_t = 4)]
    node_capacity_mb: u32,
    /// Objects written per simulated minute while growing.
    #[arg(long, default_value_t = 8)]
    objects_per_minute: usize,
    /// Bytes per object.
    #[arg(long, default_value_t = 256 * 1024)]
    object_size: usize,
    /// Newest objects read every simulated minute in the steady phase.
    #[arg(long, default_value_t = 32)]
    hot_objects: usize,
    /// Objects kept when the rest is deleted; read back in both recoveries.
    #[arg(long, default_value_t = 64)]
    keep_objects: usize,
    /// Simulated length of a time bucket.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10m")]
    bucket_length: Duration,
    /// Buckets younger than this many bucket lengths are active.
    #[arg(long, default_value_t = 2)]
    active_buckets: u32,
    /// Buckets older than this many bucket lengths expire.
    #[arg(long, default_value_t = 3)]
    available_buckets: u32,
    /// Grow the newest bucket once this fraction of its memory is taken.
    #[arg(long, default_value_t = 0.9)]
    grow_threshold: f64,
    /// Simulated warm-up interval ("0s": none).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "1m")]
    warmup: Duration,
    /// Simulated backup interval ("0s": no backup; the COS keeps the data).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "0s")]
    backup: Duration,
    /// Object store write mode: async or sync.
    #[arg(long, default_value = "async")]
    cos_write_mode: String,
    /// Override the idle lifetime (simulated, e.g. "10m..27m").
    #[arg(long)]
    idle_lifetime: Option<String>,
    /// Override the maximum lifetime (simulated, e.g. "1h50m..2h10m").
    #[arg(long)]
    max_lifetime: Option<String>,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Real time without progress after which background repair is over.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "3s")]
    settle: Duration,
    /// Directory for the CSVs, the summary and the SVG charts.
    #[arg(long, default_value = "target/experiments/elasticity")]
    out: PathBuf,
}

#[tokio::main]
async fn main() -> ExitCode {
    infinicache_experiments::init_logging();
    let args = Args::parse();
    let mut reclaim_args = Vec::new();
    if let Some(lifetime) = &args.idle_lifetime {
        reclaim_args.extend(["--idle-lifetime".into(), lifetime.clone()]);
    }
    if let Some(lifetime) = &args.max_lifetime {
        reclaim_args.extend(["--max-lifetime".into(), lifetime.clone()]);
    }
    let settings = Settings {
        grow_hours: args.grow_hours,
        steady_hours: args.steady_hours,
        shrink_hours: args.shrink_hours,
        time_scale: args.time_scale,
        pool_size: args.pool_size,
        data_shards: args.data_shards,
        parity_shards: args.parity_shards,
        node_memory_mb: args.node_memory_mb,
        node_capacity_mb: args.node_capacity_mb,
        objects_per_minute: args.objects_per_minute,
        object_size: args.object_size,
        hot_objects: args.hot_objects,
        keep_objects: args.keep_objects,
        bucket_length: args.bucket_length,
        active_buckets: args.active_buckets,
        available_buckets: args.available_buckets,
        grow_threshold: args.grow_threshold,
        warmup_interval: args.warmup,
        backup_interval: args.backup,
        cos_write_mode: args.cos_write_mode.clone(),
        reclaim_args,
        concurrency: args.concurrency,
        settle: args.settle,
    };
    if let Err(err) = settings.validate() {
        eprintln!("elasticity: {err}");
        return ExitCode::from(2);
    }
    let hours = settings.grow_hours + settings.steady_hours + settings.shrink_hours;
    eprintln!(
        "elasticity: {hours} simulated hours at x{} ({:.0} s plus recoveries), pool of {} functions of {} MB ({} MB for chunks), RS({}+{}), {}-bucket window of {:?} ({} active)",
        settings.time_scale,
        hours * 3600.0 / settings.time_scale,
        settings.pool_size,
        settings.node_memory_mb,
        settings.node_capacity_mb,
        settings.data_shards,
        settings.parity_shards,
        settings.available_buckets,
        settings.bucket_length,
        settings.active_buckets
    );
    let report = match elasticity::run(&settings, |line| eprintln!("{line}")).await {
        Ok(report) => report,
        Err(err) => {
            eprintln!("elasticity: {err}");
            return ExitCode::from(2);
        }
    };

    print!("{}", elasticity::table(&report));
    match elasticity::write_results(&report, &args.out) {
        Ok(files) => {
            for file in files {
                println!("wrote {}", file.display());
            }
        }
        Err(err) => {
            eprintln!(
                "elasticity: cannot write results to {}: {err}",
                args.out.display()
            );
            return ExitCode::FAILURE;
        }
    }
    let t = &report.tally;
    if t.corrupt > 0 || t.missing > 0 || t.resurrected > 0 {
        eprintln!(
            "elasticity: wrong answers: {} corrupt, {} missing, {} resurrected",
            t.corrupt, t.missing, t.resurrected
        );
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
