//! `infinicache-proxy`: the InfiniCache proxy.
//!
//! With no arguments it serves clients on 127.0.0.1:6378 (and Redis clients
//! on 127.0.0.1:6380), accepts nodes on 127.0.0.1:6379, and runs the cache
//! nodes on the embedded local Lambda platform. `--platform aws` uses AWS Lambda instead. Settings come from
//! the defaults, then `--config FILE` (TOML), then these flags.
//!
//! `infinicache-proxy deploy --role ARN` packages the node binary and
//! creates (or updates, or with `--delete` removes) the node functions on
//! AWS Lambda; see `infinicache_proxy::deploy`.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use infinicache_proxy::Proxy;
use infinicache_proxy::config::{Config, PlatformKind};
use infinicache_proxy::deploy::DeployArgs;
use infinicache_proxy::platform::LifetimeRange;

/// The command line: serve flags, or a subcommand. Serving takes no
/// subcommand so that `infinicache-proxy [flags]` keeps working as it always
/// has; a subcommand and serve flags cannot be mixed.
#[derive(Debug, Parser)]
#[command(
    name = "infinicache-proxy",
    version,
    about = "InfiniCache proxy (and local Lambda platform)",
    args_override_self = true,
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(flatten)]
    serve: ServeArgs,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Package the node binary and create, update or delete the node
    /// functions on AWS Lambda (idempotent: unchanged functions are left alone).
    Deploy(DeployArgs),
}

/// Serve flags.
#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// TOML config file; flags override its settings.
    #[arg(short, long, env = "INFINICACHE_CONFIG")]
    config: Option<PathBuf>,
    /// Client listener address.
    #[arg(long)]
    client_listen: Option<SocketAddr>,
    /// Node listener address.
    #[arg(long)]
    node_listen: Option<SocketAddr>,
    /// Admin/status HTTP API address.
    #[arg(long)]
    admin_listen: Option<SocketAddr>,
    /// Turn the admin/status API off.
    #[arg(long, conflicts_with = "admin_listen")]
    no_admin: bool,
    /// A listener of its own for Prometheus (GET /metrics; the admin API
    /// serves it too).
    #[arg(long, value_name = "ADDR")]
    metrics_listen: Option<SocketAddr>,
    /// RESP (Redis protocol) listener address [default: 127.0.0.1:6380].
    #[arg(long, value_name = "ADDR")]
    resp_listen: Option<SocketAddr>,
    /// Turn the RESP frontend off (wins over --resp-listen).
    #[arg(long)]
    no_resp: bool,
    /// Shared secret clients must present (native handshake; RESP AUTH unless
    /// --resp-password is given).
    #[arg(long, env = "INFINICACHE_SECRET", hide_env_values = true)]
    secret: Option<String>,
    /// TLS on the client listeners (native and RESP): the certificate chain
    /// (PEM). Needs --tls-key.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Password RESP clients must give (AUTH) before anything else.
    #[arg(long, env = "INFINICACHE_RESP_PASSWORD", hide_env_values = true)]
    resp_password: Option<String>,
    /// Node listener address as the nodes should dial it.
    #[arg(long)]
    advertise_addr: Option<String>,
    /// Where cache nodes run.
    #[arg(long, value_enum)]
    platform: Option<PlatformKind>,
    /// Number of cache nodes (function deployments), up to 1000.
    #[arg(long)]
    pool_size: Option<usize>,
    /// Functions are named PREFIX-0 .. PREFIX-(N-1).
    #[arg(long)]
    function_prefix: Option<String>,
    /// Memory of each function (MB).
    #[arg(long)]
    node_memory_mb: Option<u32>,
    /// Memory each node keeps back for itself (MB).
    #[arg(long)]
    node_reserved_mb: Option<u32>,
    /// Data shards suggested to clients.
    #[arg(long)]
    data_shards: Option<usize>,
    /// Parity shards suggested to clients.
    #[arg(long)]
    parity_shards: Option<usize>,
    /// Interval of warm-up invocations, e.g. 1m (0s: off).
    #[arg(long, value_parser = humantime::parse_duration)]
    warmup_interval: Option<Duration>,
    /// Interval of delta-sync backups, e.g. 5m (0s: off).
    #[arg(long, value_parser = humantime::parse_duration)]
    backup_interval: Option<Duration>,
    /// Billing granularity, e.g. 1ms (AWS today) or 100ms (legacy).
    #[arg(long, value_parser = humantime::parse_duration)]
    billing_tick: Option<Duration>,
    /// A node returns from its invocation after being idle this long.
    #[arg(long, value_parser = humantime::parse_duration)]
    node_idle_timeout: Option<Duration>,
    /// Function timeout.
    #[arg(long, value_parser = humantime::parse_duration)]
    function_timeout: Option<Duration>,
    /// Time limit for one chunk request to a node.
    #[arg(long, value_parser = humantime::parse_duration)]
    node_request_timeout: Option<Duration>,
    /// Longest key accepted from clients (bytes, at most 65535).
    #[arg(long)]
    max_key_len: Option<usize>,
    /// Requests one native client connection may have in flight.
    #[arg(long)]
    max_requests_in_flight: Option<usize>,
    /// Bytes of request data all clients together may have in the proxy.
    #[arg(long)]
    max_buffered_bytes: Option<u64>,
    /// How long a request may wait for buffer room before it is refused.
    #[arg(long, value_parser = humantime::parse_duration)]
    buffer_wait: Option<Duration>,
    /// Close client connections idle this long (0s: never).
    #[arg(long, value_parser = humantime::parse_duration)]
    client_idle_timeout: Option<Duration>,
    /// Disconnect a client that takes no reply bytes for this long.
    #[arg(long, value_parser = humantime::parse_duration)]
    client_write_timeout: Option<Duration>,
    /// At shutdown, wait this long for requests in flight (and as long
    /// again for the write-back buffer).
    #[arg(long, value_parser = humantime::parse_duration)]
    drain_timeout: Option<Duration>,
    /// AWS region.
    #[arg(long)]
    region: Option<String>,
    /// Lambda API endpoint override (AWS platform).
    #[arg(long)]
    endpoint_url: Option<String>,
    /// Directory for the proxy's files (the directory object store).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Durable object store under the function memory: off, dir or s3.
    #[arg(long, value_enum)]
    cos: Option<infinicache_proxy::cos::settings::CosBackend>,
    /// Object store write mode: async (write-back) or sync (write-through).
    #[arg(long, value_enum)]
    cos_write_mode: Option<infinicache_proxy::cos::settings::WriteMode>,
    /// S3 bucket of the object store.
    #[arg(long)]
    cos_bucket: Option<String>,
    /// S3 endpoint override (S3-compatible services); implies path-style.
    #[arg(long)]
    cos_endpoint_url: Option<String>,
    /// Elastic window: length of a time bucket, e.g. 10m.
    #[arg(long, value_parser = humantime::parse_duration)]
    bucket_length: Option<Duration>,
    /// Elastic window: buckets younger than this many bucket lengths are
    /// active (warmed as configured).
    #[arg(long)]
    active_buckets: Option<u32>,
    /// Elastic window: buckets older than this many bucket lengths expire
    /// (their functions are released; their objects stay in the store).
    #[arg(long)]
    available_buckets: Option<u32>,
    /// Elastic window: grow the newest bucket by k + r functions once this
    /// fraction of its memory is taken, e.g. 0.9.
    #[arg(long)]
    grow_threshold: Option<f64>,
    /// No elastic window: the whole pool is one bucket.
    #[arg(long)]
    no_window: bool,
    /// Local platform: Invoke/admin API address.
    #[arg(long)]
    platform_listen: Option<SocketAddr>,
    /// Local platform: the node binary.
    #[arg(long)]
    node_binary: Option<PathBuf>,
    /// Local platform: do not freeze environments between invocations.
    #[arg(long)]
    no_freeze: bool,
    /// Local platform: reclaim an environment idle this long (simulated
    /// time), e.g. 15m; or a range MIN..MAX, e.g. 10m..27m, drawn anew each
    /// time an environment becomes idle [default: 10m..27m, as on AWS].
    #[arg(long, value_name = "DURATION")]
    idle_lifetime: Option<LifetimeRange>,
    /// Local platform: recycle an environment older than this (simulated
    /// time) at its next idle moment, e.g. 2h; or a range MIN..MAX drawn per
    /// environment [default: 1h50m..2h10m].
    #[arg(long, value_name = "DURATION")]
    max_lifetime: Option<LifetimeRange>,
    /// Local platform: reclaim idle environments at random, this many times
    /// per environment per simulated hour (Poisson) [default: 0].
    #[arg(long, value_name = "F", allow_negative_numbers = true)]
    random_reclaims_per_hour: Option<f64>,
    /// Local platform: simulated time runs F times faster than real time
    /// (reclaim lifetimes are divided by F, the random rate multiplied)
    /// [default: 1].
    #[arg(long, value_name = "F", allow_negative_numbers = true)]
    time_scale: Option<f64>,
    /// Local platform: never reclaim environments for idleness or age.
    #[arg(long, conflicts_with_all = ["idle_lifetime", "max_lifetime"])]
    no_reclaim: bool,
}

impl ServeArgs {
    fn into_config(self) -> Result<Config, String> {
        let mut config = match &self.config {
            Some(path) => Config::from_file(path).map_err(|err| err.to_string())?,
            None => Config::default(),
        };
        macro_rules! set {
            ($($field:ident),*) => { $( if let Some(value) = self.$field { config.$field = value.into(); } )* };
        }
        set!(
            client_listen,
            node_listen,
            platform,
            pool_size,
            function_prefix,
            node_memory_mb,
            node_reserved_mb,
            data_shards,
            parity_shards,
            warmup_interval,
            backup_interval,
            billing_tick,
            node_idle_timeout,
            function_timeout,
            node_request_timeout,
            region
        );
        let limits = &mut config.limits;
        if let Some(len) = self.max_key_len {
            limits.max_key_len = len;
        }
        if let Some(max) = self.max_requests_in_flight {
            limits.max_requests_in_flight = max;
        }
        if let Some(bytes) = self.max_buffered_bytes {
            limits.max_buffered_bytes = bytes;
        }
        if let Some(wait) = self.buffer_wait {
            limits.buffer_wait = wait;
        }
        if let Some(timeout) = self.client_idle_timeout {
            limits.idle_timeout = timeout;
        }
        if let Some(timeout) = self.client_write_timeout {
            limits.write_timeout = timeout;
        }
        if let Some(timeout) = self.drain_timeout {
            limits.drain_timeout = timeout;
        }
        if let Some(addr) = self.admin_listen {
            config.admin_listen = Some(addr);
        }
        if self.no_admin {
            config.admin_listen = None;
        }
        if let Some(addr) = self.metrics_listen {
            config.metrics_listen = Some(addr);
        }
        if let Some(addr) = self.resp_listen {
            config.resp_listen = Some(addr);
        }
        if self.no_resp {
            config.resp_listen = None;
        }
        if let Some(secret) = self.secret {
            config.secret = Some(infinicache_proxy::config::Secret::new(secret));
        }
        if let (Some(cert), Some(key)) = (self.tls_cert, self.tls_key) {
            config.tls = Some(infinicache_proxy::config::TlsSettings { cert, key });
        }
        if let Some(password) = self.resp_password {
            config.resp_password = Some(infinicache_proxy::config::Secret::new(password));
        }
        if let Some(addr) = self.advertise_addr {
            config.advertise_addr = Some(addr);
        }
        if let Some(url) = self.endpoint_url {
            config.endpoint_url = Some(url);
        }
        if let Some(dir) = self.data_dir {
            config.data_dir = dir;
        }
        if let Some(backend) = self.cos {
            config.cos.backend = backend;
        }
        if let Some(mode) = self.cos_write_mode {
            config.cos.write_mode = mode;
        }
        if let Some(bucket) = self.cos_bucket {
            config.cos.bucket = Some(bucket);
        }
        if let Some(url) = self.cos_endpoint_url {
            config.cos.endpoint_url = Some(url);
            config.cos.path_style = true;
        }
        if let Some(length) = self.bucket_length {
            config.window.bucket_length = length;
        }
        if let Some(buckets) = self.active_buckets {
            config.window.active_buckets = buckets;
        }
        if let Some(buckets) = self.available_buckets {
            config.window.available_buckets = buckets;
        }
        if let Some(threshold) = self.grow_threshold {
            config.window.grow_threshold = threshold;
        }
        if self.no_window {
            config.window.enabled = false;
        }
        if let Some(addr) = self.platform_listen {
            config.local.listen = addr;
        }
        if let Some(path) = self.node_binary {
            config.local.node_binary = Some(path);
        }
        if self.no_freeze {
            config.local.freeze = false;
        }
        let reclaim = &mut config.local.reclaim;
        if self.no_reclaim {
            reclaim.idle_lifetime = None;
            reclaim.max_lifetime = None;
        }
        if let Some(lifetime) = self.idle_lifetime {
            reclaim.idle_lifetime = Some(lifetime);
        }
        if let Some(lifetime) = self.max_lifetime {
            reclaim.max_lifetime = Some(lifetime);
        }
        if let Some(rate) = self.random_reclaims_per_hour {
            reclaim.random_per_hour = rate;
        }
        if let Some(scale) = self.time_scale {
            reclaim.time_scale = scale;
        }
        config.validate().map_err(|err| err.to_string())?;
        Ok(config)
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        None => serve(cli.serve).await,
        Some(Command::Deploy(args)) => deploy(args).await,
    }
}

/// Logs go to stderr; `INFINICACHE_LOG` overrides `default`.
fn init_logging(default: &str) {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("INFINICACHE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default)),
        )
        .with_writer(std::io::stderr)
        .init();
}

async fn serve(args: ServeArgs) -> ExitCode {
    init_logging("info");
    let config = match args.into_config() {
        Ok(config) => config,
        Err(err) => {
            eprintln!("infinicache-proxy: {err}");
            return ExitCode::from(2);
        }
    };
    let drain = config.limits.drain_timeout;
    let proxy = match Proxy::start(config).await {
        Ok(proxy) => proxy,
        Err(err) => {
            eprintln!("infinicache-proxy: {err}");
            return ExitCode::FAILURE;
        }
    };
    let platform = proxy
        .platform()
        .map_or_else(|| "aws".to_string(), |platform| platform.endpoint_url());
    // One machine-readable line on stdout: scripts and tests wait for it.
    // New fields go at the end: parsers rely on the order of the others.
    let admin = proxy
        .admin_addr()
        .map_or_else(|| "off".to_string(), |addr| addr.to_string());
    let resp = proxy
        .resp_addr()
        .map_or_else(|| "off".to_string(), |addr| addr.to_string());
    // Only announced when there is one: the line is unchanged otherwise.
    let metrics = proxy
        .metrics_addr()
        .map_or_else(String::new, |addr| format!(" metrics={addr}"));
    println!(
        "infinicache-proxy ready client={} nodes={} platform={} admin={} resp={}{}",
        proxy.client_addr(),
        proxy.node_addr(),
        platform,
        admin,
        resp,
        metrics
    );
    let _ = std::io::stdout().flush();
    tracing::info!(client = %proxy.client_addr(), nodes = %proxy.node_addr(), %platform, resp = %resp, "serving");

    wait_for_shutdown().await;
    tracing::info!("shutting down: draining requests, flushing the write-back buffer");
    proxy.shutdown(drain).await;
    tracing::info!("shut down");
    ExitCode::SUCCESS
}

/// `deploy`: exit 0 when every function is as desired, 2 for bad flags or
/// settings (nothing was called), 1 for any other failure.
async fn deploy(args: DeployArgs) -> ExitCode {
    // The report lines are the output; the SDK's info logs would be noise.
    init_logging("warn");
    let result = match args.into_settings() {
        Ok(settings) => infinicache_proxy::deploy::run(&settings).await,
        Err(err) => Err(err),
    };
    match result {
        Ok(_) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("infinicache-proxy deploy: {err}");
            if err.is_usage() {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

async fn wait_for_shutdown() {
    let mut terminate =
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(err) => {
                tracing::warn!(error = %err, "cannot watch SIGTERM");
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
}
