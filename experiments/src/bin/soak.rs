//! `soak`: hundreds of concurrent clients doing mixed PUT/GET/DELETE of
//! random sizes against a real cache whose environments are being
//! reclaimed; every answer checked byte for byte; errors (which must be
//! zero), throughput, latency and the proxy's peak memory reported. See
//! `infinicache_experiments::soak`.
//!
//! ```text
//! cargo build --release -p infinicache-proxy -p infinicache-node -p infinicache-experiments
//! ./target/release/soak --duration 3m
//! ```
//!
//! Exit status: 0 when every call succeeded and every answer was right, 1
//! otherwise (and when the results cannot be written), 2 when the run could
//! not take place.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use clap::Parser;
use infinicache_experiments::soak::options::{
    CacheSettings, ExistingCache, Mix, ReclaimTarget, SizeDistribution, Sizes, Target, parse_size,
};
use infinicache_experiments::soak::{self, Progress, Settings, report};

/// Load and soak test: concurrent clients with mixed PUT/GET/DELETE on
/// random sizes for a bounded time, with reclaims happening; every GET
/// verified byte for byte.
#[derive(Debug, Parser)]
#[command(name = "soak")]
struct Args {
    /// Concurrent clients (each one operation at a time, on its own keys).
    #[arg(long, default_value_t = 200)]
    clients: usize,
    /// Client connections the clients share (0: one each).
    #[arg(long, default_value_t = 0)]
    connections: usize,
    /// Keys per client.
    #[arg(long, default_value_t = 8)]
    keys_per_client: usize,
    /// How long the clients run (then every key is read once more).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "5m")]
    duration: Duration,
    /// Weights of the operations.
    #[arg(long, default_value = "put=30,get=60,delete=10")]
    mix: Mix,
    /// Smallest value (e.g. 1KiB, 4096).
    #[arg(long, value_parser = parse_size, default_value = "1KiB")]
    min_size: usize,
    /// Largest value.
    #[arg(long, value_parser = parse_size, default_value = "4MiB")]
    max_size: usize,
    /// How sizes are drawn: log-uniform or uniform.
    #[arg(long, default_value = "log-uniform")]
    size_distribution: SizeDistribution,
    /// Data shards (k).
    #[arg(long, default_value_t = 10)]
    data_shards: usize,
    /// Parity shards (r).
    #[arg(long, default_value_t = 2)]
    parity_shards: usize,
    /// Time limit of one operation.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "60s")]
    op_timeout: Duration,
    /// Reclaim one environment through the platform's admin API this often
    /// ("0s": only the platform's own reclaims).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10s")]
    reclaim_every: Duration,
    /// Which environments the tool reclaims: any (serving or not) or idle.
    #[arg(long, default_value = "any")]
    reclaim_target: ReclaimTarget,
    /// Skip reading every key once more at the end.
    #[arg(long)]
    no_final_check: bool,
    /// Do not fail on values that went missing (a cache without an object
    /// store may lose data by design).
    #[arg(long)]
    allow_misses: bool,
    /// The proxy's client secret, if it requires one (a started cache is
    /// given it too).
    #[arg(long, env = "INFINICACHE_SECRET", hide_env_values = true)]
    secret: Option<String>,

    /// Functions of the started cache.
    #[arg(long, default_value_t = 24)]
    pool_size: usize,
    /// Memory of each function (MB).
    #[arg(long, default_value_t = 1024)]
    node_memory_mb: u32,
    /// Simulated seconds per real second on the started cache's platform
    /// (reclaim lifetimes, warm-up and backup intervals are scaled).
    #[arg(long, default_value_t = 30.0)]
    time_scale: f64,
    /// Random reclaims per idle environment per simulated hour.
    #[arg(long, default_value_t = 2.0)]
    random_reclaims_per_hour: f64,
    /// Simulated warm-up interval ("0s": none).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "1m")]
    warmup: Duration,
    /// Simulated backup interval ("0s": none).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "5m")]
    backup: Duration,
    /// The object store under the function memory: dir or off.
    #[arg(long, default_value = "dir")]
    cos: String,
    /// More flags for the started proxy, e.g. "--node-memory-mb 256".
    #[arg(long, allow_hyphen_values = true)]
    proxy_args: Option<String>,

    /// Drive this running proxy (client address) instead of starting one.
    #[arg(long)]
    proxy: Option<String>,
    /// The running proxy's admin API (for its counters).
    #[arg(long, requires = "proxy")]
    admin: Option<SocketAddr>,
    /// The running proxy's local platform API (for explicit reclaims).
    #[arg(long, requires = "proxy")]
    platform: Option<SocketAddr>,
    /// The running proxy's process id (for its peak memory).
    #[arg(long, requires = "proxy")]
    proxy_pid: Option<u32>,

    /// Directory for soak.csv, timeline.csv and soak.json.
    #[arg(long, default_value = "target/experiments/soak")]
    out: PathBuf,
    /// No progress on stderr.
    #[arg(long)]
    quiet: bool,
}

impl Args {
    fn settings(&self) -> Settings {
        let target = match &self.proxy {
            Some(proxy) => Target::Existing(ExistingCache {
                proxy: proxy.clone(),
                admin: self.admin,
                platform: self.platform,
                pid: self.proxy_pid,
            }),
            None => Target::Start(CacheSettings {
                pool_size: self.pool_size,
                node_memory_mb: self.node_memory_mb,
                time_scale: self.time_scale,
                random_reclaims_per_hour: self.random_reclaims_per_hour,
                warmup_interval: self.warmup,
                backup_interval: self.backup,
                cos: self.cos.clone(),
                extra_args: self
                    .proxy_args
                    .as_deref()
                    .unwrap_or_default()
                    .split_whitespace()
                    .map(str::to_string)
                    .collect(),
            }),
        };
        Settings {
            clients: self.clients,
            connections: self.connections,
            keys_per_client: self.keys_per_client,
            duration: self.duration,
            mix: self.mix,
            sizes: Sizes {
                min: self.min_size,
                max: self.max_size,
                distribution: self.size_distribution,
            },
            data_shards: self.data_shards,
            parity_shards: self.parity_shards,
            op_timeout: self.op_timeout,
            reclaim_every: self.reclaim_every,
            reclaim_target: self.reclaim_target,
            final_check: !self.no_final_check,
            allow_misses: self.allow_misses,
            secret: self.secret.clone(),
            target,
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    infinicache_experiments::init_logging();
    let args = Args::parse();
    let settings = args.settings();
    if let Err(err) = settings.validate() {
        eprintln!("soak: {err}");
        return ExitCode::from(2);
    }
    let progress = if args.quiet {
        Progress::Off
    } else {
        Progress::auto()
    };

    // Ctrl-C ends the timed phase early; the report is still written.
    let stop = Arc::new(AtomicBool::new(false));
    tokio::spawn({
        let stop = stop.clone();
        async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("soak: interrupted; finishing the operations in flight");
                stop.store(true, Ordering::Relaxed);
            }
        }
    });

    let report = match soak::run(&settings, progress, stop).await {
        Ok(report) => report,
        Err(err) => {
            eprintln!("soak: {err}");
            return ExitCode::from(2);
        }
    };
    print!("{}", report::table(&report));
    match report::write_results(&report, &args.out) {
        Ok(files) => {
            for file in files {
                println!("wrote {}", file.display());
            }
        }
        Err(err) => {
            eprintln!("soak: cannot write the results: {err}");
            return ExitCode::FAILURE;
        }
    }
    if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
