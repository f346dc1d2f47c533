//! Trace replay: a registry trace (or a synthetic one) against a real cache,
//! with the hit ratio, latency and what it would cost on AWS.
//!
//! The replayer reads a trace in the IBM format ([`crate::trace`]) and sends
//! each request at its time, compressed by the time scale: a `GET` that
//! finds the object is a hit; one that does not (not found, lost with too
//! few chunks left, a failed read) is a miss, and the object is then `PUT`,
//! as a cache-aside application does after fetching it from the origin. A
//! `PUT` row is a `PUT`; `HEAD` is an `EXISTS`; other methods, failed
//! requests (status 400 and up) and empty objects are skipped. At most
//! `concurrency` requests are in flight; if the cache falls behind, requests
//! go out late and the lag is reported.
//!
//! **Scaling.** Simulated time runs `time_scale` times faster than real
//! time: the proxy's warm-up and backup intervals are divided by it and the
//! platform's reclaim policy runs that much faster (`--time-scale`), as in
//! the availability experiment, so warm-ups, backups and reclaims happen as
//! often per simulated hour as they would per hour. The nodes' idle timeout
//! is divided by it too (down to a floor, 10 ms: shorter, the proxy cannot
//! keep a primary serving through a backup), so a node returns between
//! requests as it would at their real spacing instead of serving a
//! compressed burst of them in one long invocation, and idle nodes are
//! warmed up as they would be; the cost model adds the idle time cut off
//! back to each serving invocation. Object sizes are divided
//! by `size_scale` (at least one byte), so a trace of gigabyte objects fits
//! one machine; functions are given memory for the scaled objects, and the
//! cost model multiplies their GB-seconds by the size scale (see
//! [`crate::cost`]).
//!
//! **Correctness.** Every object's bytes are a deterministic function of its
//! key and (scaled) size, so a hit is checked byte for byte: a GET that
//! returns other bytes is counted as corrupt (never expected) and treated as
//! a miss.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures::stream::{FuturesUnordered, StreamExt};
use infinicache::Client;
use infinicache_tests::harness::TestCache;
use serde::Serialize;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::chart::{BarChart, LineChart, write_svg};
use crate::cost::{
    self, Arch, ClassifyRules, CostReport, Invocation, Prices, Purpose, Scaling, Usage, Workload,
};
use crate::trace::{Method, Request, TraceError};

/// Size classes for latency, by full (unscaled) object size.
pub const SIZE_CLASSES: [(&str, u64); 4] = [
    ("< 1 MB", 1_000_000),
    ("1-10 MB", 10_000_000),
    ("10-100 MB", 100_000_000),
    (">= 100 MB", u64::MAX),
];

/// The size class of a full object size.
pub fn size_class(size: u64) -> usize {
    SIZE_CLASSES
        .iter()
        .position(|(_, below)| size < *below)
        .unwrap_or(SIZE_CLASSES.len() - 1)
}

/// What one replay does.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Simulated seconds per real second.
    pub time_scale: f64,
    /// Object sizes are divided by this.
    pub size_scale: f64,
    /// Requests in flight at once.
    pub concurrency: usize,
    pub pool_size: usize,
    pub data_shards: usize,
    pub parity_shards: usize,
    /// Memory of each function (MB), as billed.
    pub node_memory_mb: u32,
    /// What each node keeps back from its memory (MB).
    pub node_reserved_mb: u32,
    /// A serving node returns after being idle this long, in the deployment
    /// the replay stands for (the proxy's default, 100 ms).
    pub node_idle_timeout: Duration,
    /// The replay gives the proxy the idle timeout divided by the time
    /// scale, but not less than this: shorter, a primary cannot be kept
    /// serving through a backup.
    pub min_replay_idle_timeout: Duration,
    /// Simulated warm-up interval (zero: none).
    pub warmup_interval: Duration,
    /// Simulated backup interval (zero: none).
    pub backup_interval: Duration,
    /// Extra reclaim-policy flags for the proxy; empty: the defaults.
    pub reclaim_args: Vec<String>,
    /// Replay requests of any status (default: below 400 only).
    pub all_statuses: bool,
    /// Skip objects smaller than this (full size; the paper's production
    /// run replayed objects over 10 MB only).
    pub min_object_size: u64,
    /// The trace's length in simulated hours for the cost report; `None`:
    /// from its first to its last request.
    pub hours: Option<f64>,
    pub prices: Prices,
    pub classify: ClassifyRules,
}

impl Default for Settings {
    /// 50 simulated hours in about 8 real minutes (x360), objects / 200,
    /// 24 functions of 128 MB (standing for 24 x 25.6 GB = 614 GB at full
    /// size, about the paper's 600 GB), RS(10+2), warm-up every minute and
    /// backup every five, as in the paper.
    fn default() -> Self {
        Settings {
            time_scale: 360.0,
            size_scale: 200.0,
            concurrency: 16,
            pool_size: 24,
            data_shards: 10,
            parity_shards: 2,
            node_memory_mb: 128,
            node_reserved_mb: 32,
            node_idle_timeout: Duration::from_millis(100),
            min_replay_idle_timeout: Duration::from_millis(10),
            warmup_interval: Duration::from_secs(60),
            backup_interval: Duration::from_secs(300),
            reclaim_args: Vec::new(),
            all_statuses: false,
            min_object_size: 0,
            hours: None,
            prices: Prices::default(),
            // Warm-ups are told from serving invocations by half the replay's
            // idle timeout (set when the replay starts).
            classify: ClassifyRules {
                warmup_below_ms: 0.0,
                ..ClassifyRules::default()
            },
        }
    }
}

impl Settings {
    /// Checks the settings; says what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.time_scale.is_finite() && self.time_scale > 0.0) {
            return Err(format!(
                "time scale must be positive, got {}",
                self.time_scale
            ));
        }
        if !(self.size_scale.is_finite() && self.size_scale >= 1.0) {
            return Err(format!(
                "size scale must be at least 1, got {}",
                self.size_scale
            ));
        }
        if self.concurrency == 0 {
            return Err("concurrency must be positive".into());
        }
        if self.data_shards == 0 || self.data_shards + self.parity_shards > self.pool_size {
            return Err(format!(
                "RS({}+{}) needs {} functions; the pool has {}",
                self.data_shards,
                self.parity_shards,
                self.data_shards + self.parity_shards,
                self.pool_size
            ));
        }
        if self.node_reserved_mb >= self.node_memory_mb {
            return Err(format!(
                "reserved memory ({} MB) must be below the function memory ({} MB)",
                self.node_reserved_mb, self.node_memory_mb
            ));
        }
        Ok(())
    }

    /// An object's replayed size.
    pub fn scaled(&self, size: u64) -> u64 {
        ((size as f64 / self.size_scale).round() as u64).max(1)
    }

    /// The idle timeout the replayed proxy gets: the deployment's divided
    /// by the time scale, at least `min_replay_idle_timeout`, at most the
    /// deployment's.
    pub fn replay_idle_timeout(&self) -> Duration {
        // Whole milliseconds: what nodes are told.
        let scaled_ms = (self.node_idle_timeout.as_secs_f64() * 1000.0 / self.time_scale)
            .ceil()
            .max(1.0);
        Duration::from_millis(scaled_ms as u64)
            .max(self.min_replay_idle_timeout)
            .min(self.node_idle_timeout)
    }

    /// How much longer each serving invocation would last with the
    /// deployment's idle timeout (ms): added back by the cost model.
    pub fn serve_tail_ms(&self) -> f64 {
        (self
            .node_idle_timeout
            .saturating_sub(self.replay_idle_timeout()))
        .as_secs_f64()
            * 1000.0
    }
}

/// `duration` of simulated time as real milliseconds for the proxy.
fn real(duration: Duration, scale: f64) -> String {
    if duration.is_zero() {
        return "0s".into();
    }
    format!(
        "{}ms",
        (duration.as_secs_f64() * 1000.0 / scale).round().max(1.0) as u64
    )
}

/// The proxy flags for `settings`: InfiniCache's pure cache (no object
/// store), the intervals and reclaim policy in real time.
pub fn proxy_args(settings: &Settings) -> Vec<String> {
    let scale = settings.time_scale;
    let mut args: Vec<String> = [
        ("--pool-size", settings.pool_size.to_string()),
        ("--data-shards", settings.data_shards.to_string()),
        ("--parity-shards", settings.parity_shards.to_string()),
        ("--node-memory-mb", settings.node_memory_mb.to_string()),
        ("--node-reserved-mb", settings.node_reserved_mb.to_string()),
        (
            "--node-idle-timeout",
            format!("{}ms", settings.replay_idle_timeout().as_millis().max(1)),
        ),
        ("--time-scale", scale.to_string()),
        ("--cos", "off".to_string()),
        ("--warmup-interval", real(settings.warmup_interval, scale)),
        ("--backup-interval", real(settings.backup_interval, scale)),
    ]
    .into_iter()
    .flat_map(|(flag, value)| [flag.to_string(), value])
    .collect();
    args.extend(settings.reclaim_args.iter().cloned());
    args
}

/// A running proxy the replay talks to.
#[derive(Debug, Clone)]
pub struct ProxyTarget {
    /// The client listener.
    pub client: String,
    /// The admin API (`/status`: the ledger by purpose), if known.
    pub admin: Option<SocketAddr>,
    /// The local platform (`/admin/billing`), if known.
    pub platform: Option<SocketAddr>,
}

/// An object's bytes: a deterministic function of its key and size.
pub fn payload(key: &str, size: u64) -> Bytes {
    let mut rng = SplitMix::new(key, size);
    let len = usize::try_from(size).unwrap_or(usize::MAX);
    let mut data = Vec::with_capacity(len);
    while data.len() + 8 <= len {
        data.extend_from_slice(&rng.next_u64().to_le_bytes());
    }
    let rest = len - data.len();
    data.extend_from_slice(&rng.next_u64().to_le_bytes()[..rest]);
    Bytes::from(data)
}

/// Whether `bytes` are exactly [`payload`]`(key, size)`, without building it.
pub fn is_payload(key: &str, size: u64, bytes: &[u8]) -> bool {
    if bytes.len() as u64 != size {
        return false;
    }
    let mut rng = SplitMix::new(key, size);
    bytes
        .chunks(8)
        .all(|chunk| chunk == &rng.next_u64().to_le_bytes()[..chunk.len()])
}

/// SplitMix64, seeded from the key (FNV-1a) and the size.
struct SplitMix(u64);

impl SplitMix {
    fn new(key: &str, size: u64) -> Self {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in key.bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        SplitMix(hash ^ size.wrapping_mul(0x9e37_79b9_7f4a_7c15))
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// Figures for one simulated hour.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Hour {
    pub hour: u64,
    pub gets: u64,
    pub hits: u64,
    pub misses: u64,
    pub errors: u64,
    pub corrupt: u64,
    pub puts: u64,
    /// Bytes the hits returned, full size.
    pub bytes_served: u64,
    /// Billed GB-seconds in this hour by purpose, from the proxy's ledger
    /// (as replayed, before scaling); empty without an admin address.
    pub gb_seconds: BTreeMap<String, f64>,
}

impl Hour {
    /// Hits over GETs, in percent (none when nothing was read).
    pub fn hit_ratio(&self) -> Option<f64> {
        (self.gets > 0).then(|| 100.0 * self.hits as f64 / self.gets as f64)
    }
}

/// GET latency of one size class.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Latency {
    pub class: String,
    pub hits: u64,
    pub hit_p50_ms: f64,
    pub hit_p99_ms: f64,
    pub misses: u64,
    /// A miss: the GET that missed plus the PUT.
    pub miss_p50_ms: f64,
    pub miss_p99_ms: f64,
}

/// The `q`-quantile (0..1) of sorted values (nearest rank); 0 if empty.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Counts of the trace's rows.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TraceCounts {
    pub rows: u64,
    pub malformed: u64,
    /// The first malformed rows' errors.
    pub first_errors: Vec<String>,
    pub skipped_method: u64,
    pub skipped_status: u64,
    pub skipped_empty: u64,
    pub skipped_small: u64,
}

/// A whole replay's results.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub time_scale: f64,
    pub size_scale: f64,
    pub pool_size: usize,
    pub data_shards: usize,
    pub parity_shards: usize,
    pub node_memory_mb: u32,
    pub trace: TraceCounts,
    pub hours: Vec<Hour>,
    pub latency: Vec<Latency>,
    pub gets: u64,
    pub hits: u64,
    pub misses: u64,
    pub errors: u64,
    pub corrupt: u64,
    /// Misses that found the object with another size.
    pub stale: u64,
    /// PUTs: after misses and from PUT rows.
    pub puts: u64,
    pub put_failures: u64,
    pub heads: u64,
    /// Bytes the hits returned: full size, and as replayed.
    pub bytes_served: u64,
    pub bytes_served_replayed: u64,
    /// Distinct objects and their bytes (full size).
    pub objects: u64,
    pub working_set_bytes: u64,
    /// How late requests went out (real seconds).
    pub max_lag_s: f64,
    pub mean_lag_s: f64,
    /// Real seconds the replay took.
    pub real_seconds: f64,
    /// Simulated hours the cost covers.
    pub simulated_hours: f64,
    /// Where the Lambda usage came from: billing records or the ledger.
    pub usage_source: String,
    /// (purpose, classified count, ledger count, classified raw s, ledger
    /// raw s) when both are known.
    pub ledger_check: Vec<(Purpose, u64, u64, f64, f64)>,
    /// Chunk requests the nodes served (hits and PUTs times k + r).
    pub chunk_requests: u64,
    pub cost: CostReport,
    /// GB-seconds (scaled) serving would bill at each tick if no two chunk
    /// requests shared an invocation.
    pub uncoalesced_serve_gb_seconds: [f64; 2],
    /// The same at the x86 price.
    pub uncoalesced_serve_usd_x86: [f64; 2],
    pub node_idle_timeout_ms: f64,
    /// The idle timeout the replayed proxy ran with.
    pub replay_idle_timeout_ms: f64,
}

impl Report {
    /// Hits over GETs, in percent.
    pub fn hit_ratio(&self) -> f64 {
        if self.gets == 0 {
            0.0
        } else {
            100.0 * self.hits as f64 / self.gets as f64
        }
    }
}

/// One request's outcome.
#[derive(Debug, Default)]
struct Outcome {
    hour: u64,
    class: usize,
    full_size: u64,
    replayed_size: u64,
    get: Option<GetResult>,
    /// Milliseconds of the GET (and of the PUT after a miss).
    latency_ms: f64,
    puts: u64,
    put_failures: u64,
    head: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GetResult {
    Hit,
    Miss,
    Stale,
    Corrupt,
    Error,
}

async fn do_get(client: Client, key: String, size: u64) -> (GetResult, u64, u64, f64) {
    let start = Instant::now();
    let result = match client.get(key.as_str()).await {
        Ok(Some(bytes)) if is_payload(&key, size, &bytes) => {
            return (GetResult::Hit, 0, 0, start.elapsed().as_secs_f64() * 1000.0);
        }
        Ok(Some(bytes)) if is_payload(&key, bytes.len() as u64, &bytes) => GetResult::Stale,
        Ok(Some(_)) => {
            tracing::error!(%key, "a GET returned bytes that were never written");
            GetResult::Corrupt
        }
        Ok(None) | Err(infinicache::Error::Unavailable(_)) => GetResult::Miss,
        Err(err) => {
            tracing::warn!(%key, %err, "GET failed");
            GetResult::Error
        }
    };
    // Cache-aside: the object comes from the origin and is written back.
    let failed = match client.put(key.as_str(), payload(&key, size)).await {
        Ok(_) => 0,
        Err(err) => {
            tracing::warn!(%key, %err, "PUT after a miss failed");
            1
        }
    };
    (result, 1, failed, start.elapsed().as_secs_f64() * 1000.0)
}

/// A minimal HTTP/1.1 GET returning the JSON body.
pub async fn http_json(addr: SocketAddr, path: &str) -> Result<Value, String> {
    let exchange = async {
        let mut stream = TcpStream::connect(addr)
            .await
            .map_err(|err| format!("connect {addr}: {err}"))?;
        let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|err| format!("send to {addr}: {err}"))?;
        let mut response = Vec::new();
        stream
            .read_to_end(&mut response)
            .await
            .map_err(|err| format!("read from {addr}: {err}"))?;
        Ok::<Vec<u8>, String>(response)
    };
    let response = tokio::time::timeout(Duration::from_secs(120), exchange)
        .await
        .map_err(|_| format!("GET http://{addr}{path}: no answer within 120 s"))??;
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| format!("GET {path}: not an HTTP response"))?;
    let head = String::from_utf8_lossy(&response[..split]).to_ascii_lowercase();
    let status = head.split_whitespace().nth(1).unwrap_or("");
    if status != "200" {
        return Err(format!("GET {path}: status {status}"));
    }
    let mut body = response[split + 4..].to_vec();
    if head.contains("transfer-encoding: chunked") {
        body = dechunk(&body).ok_or_else(|| format!("GET {path}: bad chunked body"))?;
    }
    serde_json::from_slice(&body).map_err(|err| format!("GET {path}: not JSON: {err}"))
}

/// Undoes `Transfer-Encoding: chunked`.
fn dechunk(mut body: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = body.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&body[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        body = &body[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(body.get(..size)?);
        body = body.get(size + 2..)?;
    }
}

/// Cumulative GB-seconds by purpose from `GET /status`.
fn ledger_gb(status: &Value) -> BTreeMap<String, f64> {
    status["billing"]
        .as_object()
        .map(|billing| {
            billing
                .iter()
                .map(|(k, v)| (k.clone(), v["gb_seconds"].as_f64().unwrap_or(0.0)))
                .collect()
        })
        .unwrap_or_default()
}

fn now_unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Replays `requests` against a cache started for it.
pub async fn run(
    settings: &Settings,
    requests: impl IntoIterator<Item = Result<Request, TraceError>>,
    progress: impl FnMut(&Hour),
) -> Result<Report, String> {
    settings.validate()?;
    let args = proxy_args(settings);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let log = std::env::var("INFINICACHE_LOG").unwrap_or_else(|_| "error".into());
    let cache = TestCache::start_with_env(&args, &[("INFINICACHE_LOG", log.as_str())]).await;
    let target = ProxyTarget {
        client: cache.client_addr.clone(),
        admin: Some(cache.admin_addr),
        platform: Some(cache.platform_addr),
    };
    let report = run_against(settings, &target, requests, progress).await;
    cache.stop().await;
    report
}

/// Replays `requests` against a running proxy.
pub async fn run_against(
    settings: &Settings,
    target: &ProxyTarget,
    requests: impl IntoIterator<Item = Result<Request, TraceError>>,
    mut progress: impl FnMut(&Hour),
) -> Result<Report, String> {
    settings.validate()?;
    let mut settings = settings.clone();
    if settings.classify.warmup_below_ms <= 0.0 {
        settings.classify.warmup_below_ms =
            settings.replay_idle_timeout().as_secs_f64() * 1000.0 / 2.0;
    }
    let settings = &settings;
    let client = Client::builder()
        .proxy(&target.client)
        .data_shards(settings.data_shards)
        .parity_shards(settings.parity_shards)
        .timeout(Duration::from_secs(60))
        .connect()
        .await
        .map_err(|err| format!("cannot connect to the proxy at {}: {err}", target.client))?;

    let status = |admin: Option<SocketAddr>| async move {
        match admin {
            Some(addr) => http_json(addr, "/status").await.ok(),
            None => None,
        }
    };

    let mut counts = TraceCounts::default();
    let mut objects: HashMap<String, u64> = HashMap::new();
    let mut hours: BTreeMap<u64, Hour> = BTreeMap::new();
    let mut in_flight = FuturesUnordered::new();
    let width = (settings.data_shards + settings.parity_shards) as u64;
    let mut tally = Tally::new(width);
    let mut origin: Option<i64> = None;
    let mut last_ms = 0i64;
    let mut lag_max = 0.0f64;
    let mut lag_sum = 0.0f64;
    let mut dispatched = 0u64;
    let mut next_boundary = 1u64;
    let before = status(target.admin).await;
    let mut ledger_prev = before.as_ref().map(ledger_gb).unwrap_or_default();
    let mut ledger_by_hour: BTreeMap<u64, BTreeMap<String, f64>> = BTreeMap::new();
    let start_unix_ms = now_unix_ms();
    let start = Instant::now();

    for row in requests {
        counts.rows += 1;
        let request = match row {
            Ok(request) => request,
            Err(err) => {
                counts.malformed += 1;
                if counts.first_errors.len() < 10 {
                    counts.first_errors.push(err.to_string());
                }
                continue;
            }
        };
        let is_write = match request.method {
            Method::Get => false,
            Method::Put => true,
            Method::Head => false,
            Method::Other(_) => {
                counts.skipped_method += 1;
                continue;
            }
        };
        if request.status >= 400 && !settings.all_statuses {
            counts.skipped_status += 1;
            continue;
        }
        if request.size == 0 && request.method != Method::Head {
            counts.skipped_empty += 1;
            continue;
        }
        if request.size < settings.min_object_size && request.method != Method::Head {
            counts.skipped_small += 1;
            continue;
        }
        let origin_ms = *origin.get_or_insert(request.timestamp_ms);
        let offset_ms = (request.timestamp_ms - origin_ms).max(0);
        last_ms = last_ms.max(offset_ms);
        let hour = (offset_ms / 3_600_000) as u64;

        // Pace: this request is due at its simulated time over the scale.
        let due = start + Duration::from_secs_f64(offset_ms as f64 / 1000.0 / settings.time_scale);
        tokio::time::sleep_until(due.into()).await;
        // Hour boundaries passed: read the ledger.
        while next_boundary <= hour {
            if let Some(now) = status(target.admin).await {
                let now = ledger_gb(&now);
                let delta = now
                    .iter()
                    .map(|(k, v)| (k.clone(), v - ledger_prev.get(k).copied().unwrap_or(0.0)))
                    .collect();
                ledger_by_hour.insert(next_boundary - 1, delta);
                ledger_prev = now;
            }
            if let Some(done) = hours.get(&(next_boundary - 1)) {
                progress(done);
            }
            next_boundary += 1;
        }
        // Bounded concurrency: wait for a slot.
        while in_flight.len() >= settings.concurrency {
            if let Some(done) = in_flight.next().await {
                collect(done, &mut tally, &mut hours);
            }
        }
        let lag = Instant::now().saturating_duration_since(due).as_secs_f64();
        lag_max = lag_max.max(lag);
        lag_sum += lag;
        dispatched += 1;

        let entry = objects.entry(request.uri.clone()).or_insert(0);
        *entry = (*entry).max(request.size);
        let scaled = settings.scaled(request.size);
        let mut outcome = Outcome {
            hour,
            class: size_class(request.size),
            full_size: request.size,
            replayed_size: scaled,
            ..Outcome::default()
        };
        let client = client.clone();
        let key = request.uri;
        let task = tokio::spawn(async move {
            let started = Instant::now();
            if request.method == Method::Head {
                let _ = client.exists(key.as_str()).await;
                outcome.head = true;
            } else if is_write {
                outcome.puts = 1;
                if let Err(err) = client.put(key.as_str(), payload(&key, scaled)).await {
                    tracing::warn!(%key, %err, "PUT failed");
                    outcome.put_failures = 1;
                }
                outcome.latency_ms = started.elapsed().as_secs_f64() * 1000.0;
            } else {
                let (result, puts, failures, ms) = do_get(client, key, scaled).await;
                outcome.get = Some(result);
                outcome.puts = puts;
                outcome.put_failures = failures;
                outcome.latency_ms = ms;
            }
            outcome
        });
        in_flight.push(task);
        // Keep the outcome list drained while pacing.
        while let Some(Some(done)) = futures::FutureExt::now_or_never(in_flight.next()) {
            collect(done, &mut tally, &mut hours);
        }
    }
    while let Some(done) = in_flight.next().await {
        collect(done, &mut tally, &mut hours);
    }
    let real_seconds = start.elapsed().as_secs_f64();
    let end_unix_ms = now_unix_ms();
    let after = status(target.admin).await;
    if let Some(now) = &after {
        let now = ledger_gb(now);
        let delta = now
            .iter()
            .map(|(k, v)| (k.clone(), v - ledger_prev.get(k).copied().unwrap_or(0.0)))
            .collect();
        ledger_by_hour.insert(next_boundary - 1, delta);
    }
    for (hour, gb) in ledger_by_hour {
        hours
            .entry(hour)
            .or_insert_with(|| Hour {
                hour,
                ..Hour::default()
            })
            .gb_seconds = gb;
    }
    if let Some(last) = hours.values().next_back() {
        progress(last);
    }

    // Lambda usage: billing records in the replay's window, by purpose.
    let ledger_delta = match (&before, &after) {
        (Some(b), Some(a)) => Some(ledger_difference(&b["billing"], &a["billing"])),
        _ => None,
    };
    let (usage, usage_source, ledger_check) = match target.platform {
        Some(platform) => {
            let records = match http_json(platform, "/admin/billing").await? {
                Value::Array(records) => records,
                _ => return Err("the platform's billing is not a list".into()),
            };
            let invocations: Vec<Invocation> = records
                .iter()
                .filter_map(Invocation::from_record)
                .filter(|inv| inv.start_ms >= start_unix_ms && inv.start_ms <= end_unix_ms)
                .collect();
            let purposes = cost::classify(&invocations, settings.classify);
            let classified = cost::usage(&invocations, &purposes);
            let (mut usage, source, check) = match ledger_delta.as_ref() {
                Some(ledger) => (
                    cost::calibrate(&classified, &cost::ledger_totals(ledger)),
                    "the platform's billing records (every invocation's raw duration rounded up to each tick), \
                     split by purpose with the proxy's ledger (exact counts and raw time; each purpose's rounding \
                     from the records classified by timing)",
                    cost::ledger_check(&classified, ledger),
                ),
                None => (
                    classified,
                    "the platform's billing records, split by purpose by timing (no ledger)",
                    Vec::new(),
                ),
            };
            cost::add_serve_tail(
                &mut usage,
                &invocations,
                &purposes,
                settings.serve_tail_ms(),
            );
            (usage, source.to_string(), check)
        }
        None => match &ledger_delta {
            Some(ledger) => (
                {
                    let mut usage = usage_from_ledger(ledger);
                    cost::add_serve_tail(&mut usage, &[], &[], settings.serve_tail_ms());
                    usage
                },
                "the proxy's ledger (100 ms tick estimated: half a tick more per invocation)"
                    .to_string(),
                Vec::new(),
            ),
            None => (
                BTreeMap::new(),
                "none (no admin or platform address)".to_string(),
                Vec::new(),
            ),
        },
    };

    let mut report = summarize(settings, counts, hours, tally, objects);
    report.max_lag_s = lag_max;
    report.mean_lag_s = if dispatched == 0 {
        0.0
    } else {
        lag_sum / dispatched as f64
    };
    report.real_seconds = real_seconds;
    report.simulated_hours = settings.hours.unwrap_or(last_ms as f64 / 3_600_000.0);
    report.usage_source = usage_source;
    report.ledger_check = ledger_check;
    let workload = Workload {
        hours: report.simulated_hours,
        gets: report.gets,
        puts: report.puts,
        bytes_served: report.bytes_served,
        working_set_bytes: report.working_set_bytes,
    };
    let scaling = Scaling {
        size_scale: settings.size_scale,
        time_scale: settings.time_scale,
        serve_tail_ms: settings.serve_tail_ms(),
    };
    report.cost = cost::report(usage, &workload, scaling, &settings.prices);
    for (t, tick) in cost::TICKS_MS.iter().enumerate() {
        report.uncoalesced_serve_gb_seconds[t] = cost::uncoalesced_serve_gb_seconds(
            report.chunk_requests,
            // The idle timeout plus at least a millisecond of work.
            settings.node_idle_timeout.as_secs_f64() * 1000.0 + 1.0,
            *tick,
            settings.node_memory_mb,
            settings.size_scale,
        );
        report.uncoalesced_serve_usd_x86[t] =
            report.uncoalesced_serve_gb_seconds[t] * settings.prices.lambda_gb_second_x86;
    }
    Ok(report)
}

/// `after - before` of the ledger's per-purpose totals.
fn ledger_difference(before: &Value, after: &Value) -> Value {
    let mut out = serde_json::Map::new();
    if let Some(after) = after.as_object() {
        for (purpose, totals) in after {
            let mut entry = serde_json::Map::new();
            if let Some(fields) = totals.as_object() {
                for (field, value) in fields {
                    let was = &before[purpose][field];
                    let diff = if let (Some(a), Some(b)) = (value.as_u64(), was.as_u64()) {
                        Value::from(a.saturating_sub(b))
                    } else {
                        Value::from(value.as_f64().unwrap_or(0.0) - was.as_f64().unwrap_or(0.0))
                    };
                    entry.insert(field.clone(), diff);
                }
            }
            out.insert(purpose.clone(), Value::Object(entry));
        }
    }
    Value::Object(out)
}

/// Usage from the ledger's per-purpose totals (count, raw and billed ms,
/// GB-seconds): exact at the tick the proxy ran with (1 ms by default); at
/// 100 ms each invocation is taken to add half a tick.
pub fn usage_from_ledger(ledger: &Value) -> BTreeMap<Purpose, Usage> {
    Purpose::ALL
        .iter()
        .map(|&purpose| {
            let entry = &ledger[purpose.name()];
            let invocations = entry["invocations"].as_u64().unwrap_or(0);
            let raw_ms = entry["duration_ms"].as_f64().unwrap_or(0.0);
            let billed = entry["billed_ms"].as_f64().unwrap_or(0.0);
            let gb = entry["gb_seconds"].as_f64().unwrap_or(0.0);
            // Memory in GB per billed second.
            let gb_per_s = if billed > 0.0 {
                gb / (billed / 1000.0)
            } else {
                0.0
            };
            let n = invocations as f64;
            let billed_100 = (raw_ms + n * 50.0).max(n * 100.0);
            (
                purpose,
                Usage {
                    invocations,
                    raw_ms,
                    billed_ms: [billed, billed_100],
                    gb_seconds: [gb, billed_100 / 1000.0 * gb_per_s],
                },
            )
        })
        .collect()
}

fn collect(
    done: Result<Outcome, tokio::task::JoinError>,
    tally: &mut Tally,
    hours: &mut BTreeMap<u64, Hour>,
) {
    let outcome = match done {
        Ok(outcome) => outcome,
        Err(err) => {
            tracing::error!(%err, "a replay task failed");
            return;
        }
    };
    let hour = hours.entry(outcome.hour).or_insert_with(|| Hour {
        hour: outcome.hour,
        ..Hour::default()
    });
    hour.puts += outcome.puts;
    if let Some(result) = outcome.get {
        hour.gets += 1;
        match result {
            GetResult::Hit => {
                hour.hits += 1;
                hour.bytes_served += outcome.full_size;
            }
            GetResult::Error => {
                hour.misses += 1;
                hour.errors += 1;
            }
            GetResult::Corrupt => {
                hour.misses += 1;
                hour.corrupt += 1;
            }
            GetResult::Miss | GetResult::Stale => hour.misses += 1,
        }
    }
    tally.add(&outcome);
}

/// Totals of the outcomes so far (one latency per GET is all that is kept,
/// so a long trace streams through).
#[derive(Debug, Default)]
struct Tally {
    /// Chunks per object: k + r.
    width: u64,
    gets: u64,
    hits: u64,
    misses: u64,
    errors: u64,
    corrupt: u64,
    stale: u64,
    puts: u64,
    put_failures: u64,
    heads: u64,
    bytes_served: u64,
    bytes_served_replayed: u64,
    chunk_requests: u64,
    hit_ms: Vec<Vec<f64>>,
    miss_ms: Vec<Vec<f64>>,
}

impl Tally {
    fn new(width: u64) -> Self {
        Tally {
            width,
            hit_ms: vec![Vec::new(); SIZE_CLASSES.len()],
            miss_ms: vec![Vec::new(); SIZE_CLASSES.len()],
            ..Tally::default()
        }
    }

    fn add(&mut self, outcome: &Outcome) {
        self.puts += outcome.puts;
        self.put_failures += outcome.put_failures;
        self.heads += u64::from(outcome.head);
        self.chunk_requests += outcome.puts * self.width;
        let Some(result) = outcome.get else { return };
        self.gets += 1;
        let class = outcome.class.min(SIZE_CLASSES.len() - 1);
        match result {
            GetResult::Hit => {
                self.hits += 1;
                self.bytes_served += outcome.full_size;
                self.bytes_served_replayed += outcome.replayed_size;
                self.chunk_requests += self.width;
                if let Some(v) = self.hit_ms.get_mut(class) {
                    v.push(outcome.latency_ms);
                }
            }
            other => {
                self.misses += 1;
                self.errors += u64::from(other == GetResult::Error);
                self.corrupt += u64::from(other == GetResult::Corrupt);
                self.stale += u64::from(other == GetResult::Stale);
                // A GET that found the object asked its nodes too.
                if other != GetResult::Miss {
                    self.chunk_requests += self.width;
                }
                if let Some(v) = self.miss_ms.get_mut(class) {
                    v.push(outcome.latency_ms);
                }
            }
        }
    }
}

/// Totals and latency from the outcomes.
fn summarize(
    settings: &Settings,
    trace: TraceCounts,
    hours: BTreeMap<u64, Hour>,
    mut tally: Tally,
    objects: HashMap<String, u64>,
) -> Report {
    let mut latency = Vec::new();
    for (c, (name, _)) in SIZE_CLASSES.iter().enumerate() {
        let (Some(hit_ms), Some(miss_ms)) = (tally.hit_ms.get_mut(c), tally.miss_ms.get_mut(c))
        else {
            continue;
        };
        hit_ms.sort_by(f64::total_cmp);
        miss_ms.sort_by(f64::total_cmp);
        latency.push(Latency {
            class: (*name).to_string(),
            hits: hit_ms.len() as u64,
            hit_p50_ms: quantile(hit_ms, 0.50),
            hit_p99_ms: quantile(hit_ms, 0.99),
            misses: miss_ms.len() as u64,
            miss_p50_ms: quantile(miss_ms, 0.50),
            miss_p99_ms: quantile(miss_ms, 0.99),
        });
    }
    Report {
        time_scale: settings.time_scale,
        size_scale: settings.size_scale,
        pool_size: settings.pool_size,
        data_shards: settings.data_shards,
        parity_shards: settings.parity_shards,
        node_memory_mb: settings.node_memory_mb,
        trace,
        hours: hours.into_values().collect(),
        latency,
        gets: tally.gets,
        hits: tally.hits,
        misses: tally.misses,
        errors: tally.errors,
        corrupt: tally.corrupt,
        stale: tally.stale,
        puts: tally.puts,
        put_failures: tally.put_failures,
        heads: tally.heads,
        bytes_served: tally.bytes_served,
        bytes_served_replayed: tally.bytes_served_replayed,
        objects: objects.len() as u64,
        working_set_bytes: objects.values().sum(),
        max_lag_s: 0.0,
        mean_lag_s: 0.0,
        real_seconds: 0.0,
        simulated_hours: 0.0,
        usage_source: String::new(),
        ledger_check: Vec::new(),
        chunk_requests: tally.chunk_requests,
        cost: cost::report(
            BTreeMap::new(),
            &Workload::default(),
            Scaling::default(),
            &settings.prices,
        ),
        uncoalesced_serve_gb_seconds: [0.0; 2],
        uncoalesced_serve_usd_x86: [0.0; 2],
        node_idle_timeout_ms: settings.node_idle_timeout.as_secs_f64() * 1000.0,
        replay_idle_timeout_ms: settings.replay_idle_timeout().as_secs_f64() * 1000.0,
    }
}

/// The report as text: the replay's figures, then the cost table.
pub fn table(report: &Report) -> String {
    let mut out = String::new();
    let t = &report.trace;
    let _ = writeln!(
        out,
        "replay: {:.1} simulated h in {:.0} real s (x{}), sizes / {}, {} functions of {} MB, RS({}+{})",
        report.simulated_hours,
        report.real_seconds,
        report.time_scale,
        report.size_scale,
        report.pool_size,
        report.node_memory_mb,
        report.data_shards,
        report.parity_shards
    );
    let _ = writeln!(
        out,
        "trace: {} rows, {} malformed, skipped {} (method) {} (status) {} (empty) {} (small)",
        t.rows, t.malformed, t.skipped_method, t.skipped_status, t.skipped_empty, t.skipped_small
    );
    for err in &t.first_errors {
        let _ = writeln!(out, "  malformed: {err}");
    }
    let _ = writeln!(
        out,
        "GETs {}: hits {} ({:.2}%), misses {} (of which errors {}, stale {}, corrupt {}); PUTs {} ({} failed); HEADs {}",
        report.gets,
        report.hits,
        report.hit_ratio(),
        report.misses,
        report.errors,
        report.stale,
        report.corrupt,
        report.puts,
        report.put_failures,
        report.heads
    );
    let _ = writeln!(
        out,
        "bytes served by hits: {:.2} GB full size ({:.3} GB replayed); {} objects, working set {:.2} GB; lag max {:.2} s, mean {:.3} s",
        report.bytes_served as f64 / 1e9,
        report.bytes_served_replayed as f64 / 1e9,
        report.objects,
        report.working_set_bytes as f64 / 1e9,
        report.max_lag_s,
        report.mean_lag_s
    );
    let _ = writeln!(out, "\nhit ratio per simulated hour:");
    let mut line = String::new();
    for hour in &report.hours {
        if let Some(ratio) = hour.hit_ratio() {
            let _ = write!(line, " {}:{:.1}", hour.hour + 1, ratio);
        }
    }
    let _ = writeln!(out, "{}", line.trim_start());
    let _ = writeln!(
        out,
        "\nGET latency (ms, replayed sizes) by full object size:\n{:<10} {:>7} {:>9} {:>9} {:>7} {:>10} {:>10}",
        "class", "hits", "hit p50", "hit p99", "misses", "miss p50", "miss p99"
    );
    for l in &report.latency {
        let _ = writeln!(
            out,
            "{:<10} {:>7} {:>9.2} {:>9.2} {:>7} {:>10.2} {:>10.2}",
            l.class, l.hits, l.hit_p50_ms, l.hit_p99_ms, l.misses, l.miss_p50_ms, l.miss_p99_ms
        );
    }
    let _ = writeln!(out, "\nLambda usage from {}", report.usage_source);
    if !report.ledger_check.is_empty() {
        let _ = writeln!(
            out,
            "classification vs the proxy's ledger (invocations, raw s):"
        );
        for (purpose, ours, ledger, ours_s, ledger_s) in &report.ledger_check {
            let _ = writeln!(
                out,
                "  {:<7} {:>8} vs {:>8}   {:>10.2} vs {:>10.2}",
                purpose.name(),
                ours,
                ledger,
                ours_s,
                ledger_s
            );
        }
    }
    out.push('\n');
    out.push_str(&report.cost.table());
    let gb = report.uncoalesced_serve_gb_seconds;
    let usd = report.uncoalesced_serve_usd_x86;
    let _ = writeln!(
        out,
        "\nnote: chunk requests to a node closer together than the replay's idle timeout ({:.0} ms, {:.1} simulated s) \
         share a serving invocation; if none shared one ({} chunk requests, each billed at least the {:.0} ms idle \
         timeout and 1 ms of work), serving would bill at least {:.0} GB-s (${:.2} x86) at 1 ms and {:.0} GB-s \
         (${:.2}) at 100 ms",
        report.replay_idle_timeout_ms,
        report.replay_idle_timeout_ms * report.time_scale / 1000.0,
        report.chunk_requests,
        report.node_idle_timeout_ms,
        gb[0],
        usd[0],
        gb[1],
        usd[1]
    );
    out
}

/// Hourly figures as CSV.
pub fn hourly_csv(report: &Report) -> String {
    let mut out = String::from(
        "hour,gets,hits,misses,errors,corrupt,puts,hit_ratio_pct,bytes_served,serve_gb_s,warmup_gb_s,backup_gb_s\n",
    );
    for h in &report.hours {
        let gb = |k: &str| h.gb_seconds.get(k).copied().unwrap_or(0.0);
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{},{},{},{:.4},{:.4},{:.4}",
            h.hour + 1,
            h.gets,
            h.hits,
            h.misses,
            h.errors,
            h.corrupt,
            h.puts,
            h.hit_ratio().map_or(String::new(), |r| format!("{r:.3}")),
            h.bytes_served,
            gb("serve"),
            gb("warmup"),
            gb("backup")
        );
    }
    out
}

/// Latency by size class as CSV.
pub fn latency_csv(report: &Report) -> String {
    let mut out = String::from("class,hits,hit_p50_ms,hit_p99_ms,misses,miss_p50_ms,miss_p99_ms\n");
    for l in &report.latency {
        let _ = writeln!(
            out,
            "{},{},{:.3},{:.3},{},{:.3},{:.3}",
            l.class, l.hits, l.hit_p50_ms, l.hit_p99_ms, l.misses, l.miss_p50_ms, l.miss_p99_ms
        );
    }
    out
}

/// Hit ratio per simulated hour.
pub fn hit_ratio_chart(report: &Report) -> LineChart {
    LineChart::new(
        "Hit ratio per simulated hour",
        "simulated hour",
        "GETs that hit (%)",
    )
    .y_range(0.0, 100.0)
    .markers(true)
    .series(
        "hit ratio",
        report
            .hours
            .iter()
            .filter_map(|h| h.hit_ratio().map(|r| ((h.hour + 1) as f64, r))),
    )
}

/// The cost breakdown: InfiniCache's parts per architecture and tick next to
/// ElastiCache, S3 and the paper's figures (log axis: they span orders of
/// magnitude).
pub fn cost_chart(report: &Report) -> BarChart {
    let c = &report.cost;
    let mut categories: Vec<String> = c
        .lambda
        .iter()
        .map(|l| {
            let arch = match l.arch {
                Some(Arch::Arm64) => "arm",
                _ => "x86",
            };
            format!("{arch} {}ms", l.tick_ms)
        })
        .collect();
    categories.extend([
        "ElastiCache".to_string(),
        "S3 only".to_string(),
        "paper IC".to_string(),
        "paper EC".to_string(),
    ]);
    let none = f64::NAN;
    let extra = |values: &mut Vec<f64>, with_totals: bool| {
        if with_totals {
            values.extend([
                c.elasticache_paper.total,
                c.s3.total,
                cost::PAPER_INFINICACHE.1,
                cost::PAPER_ELASTICACHE,
            ]);
        } else {
            values.extend([none; 4]);
        }
    };
    let part = |f: fn(&cost::LambdaCost) -> f64, with_totals: bool| {
        let mut values: Vec<f64> = c.lambda.iter().map(f).collect();
        extra(&mut values, with_totals);
        values
    };
    BarChart::new(
        format!(
            "Cost of {:.0} simulated hours (USD)",
            report.simulated_hours
        ),
        "system (InfiniCache: architecture and billing tick)",
        "USD",
    )
    .y_log(true)
    .categories(categories)
    .series("serve", part(|l| l.serve, false))
    .series("warm-up", part(|l| l.warmup, false))
    .series("backup", part(|l| l.backup, false))
    .series("requests", part(|l| l.requests, false))
    .series("total", part(|l| l.total, true))
}

/// GET latency of hits by size class.
pub fn latency_chart(report: &Report) -> BarChart {
    BarChart::new(
        "GET latency of hits by object size",
        "full object size",
        "ms (replayed sizes)",
    )
    .categories(report.latency.iter().map(|l| l.class.clone()))
    .series("p50", report.latency.iter().map(|l| l.hit_p50_ms))
    .series("p99", report.latency.iter().map(|l| l.hit_p99_ms))
}

/// Writes the report, CSVs and charts into `dir`; returns the files.
pub fn write_results(report: &Report, dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut files = Vec::new();
    let json = serde_json::to_string_pretty(report)
        .unwrap_or_else(|err| format!("{{\"error\": \"{err}\"}}"));
    for (name, text) in [
        ("report.txt", table(report)),
        ("hourly.csv", hourly_csv(report)),
        ("latency.csv", latency_csv(report)),
        ("cost.csv", report.cost.csv()),
        ("report.json", json),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, text)?;
        files.push(path);
    }
    let path = dir.join("hit-ratio.svg");
    write_svg(&path, &hit_ratio_chart(report))?;
    files.push(path);
    for (name, chart) in [
        ("cost.svg", cost_chart(report)),
        ("latency.svg", latency_chart(report)),
    ] {
        let path = dir.join(name);
        write_svg(&path, &chart)?;
        files.push(path);
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chart::Chart;

    #[test]
    fn payloads_are_deterministic_and_checked() {
        let a = payload("/v2/x", 13);
        assert_eq!(a.len(), 13);
        assert_eq!(a, payload("/v2/x", 13));
        assert_ne!(a, payload("/v2/y", 13));
        assert!(is_payload("/v2/x", 13, &a));
        assert!(!is_payload("/v2/x", 12, &a[..12]));
        let mut bad = a.to_vec();
        bad[12] ^= 1;
        assert!(!is_payload("/v2/x", 13, &bad));
        assert_eq!(payload("k", 1).len(), 1);
    }

    #[test]
    fn sizes_scale_down_to_at_least_a_byte() {
        let settings = Settings {
            size_scale: 1000.0,
            ..Settings::default()
        };
        assert_eq!(settings.scaled(1_000_000_000), 1_000_000);
        assert_eq!(settings.scaled(10), 1);
        assert_eq!(size_class(999_999), 0);
        assert_eq!(size_class(10_000_000), 2);
        assert_eq!(size_class(5_000_000_000), 3);
    }

    #[test]
    fn proxy_intervals_follow_the_time_scale() {
        let settings = Settings::default();
        let args = proxy_args(&settings);
        let after = |flag: &str| {
            args.iter()
                .position(|a| a == flag)
                .and_then(|i| args.get(i + 1))
                .cloned()
        };
        // One minute at x360 is 167 ms; five minutes 833 ms.
        assert_eq!(after("--warmup-interval").as_deref(), Some("167ms"));
        assert_eq!(after("--backup-interval").as_deref(), Some("833ms"));
        assert_eq!(after("--time-scale").as_deref(), Some("360"));
        assert_eq!(after("--cos").as_deref(), Some("off"));
        // 100 ms / 360 is under the 10 ms floor: 90 ms are added back.
        assert_eq!(after("--node-idle-timeout").as_deref(), Some("10ms"));
        assert_eq!(settings.serve_tail_ms(), 90.0);
        let slow = Settings {
            time_scale: 2.0,
            ..Settings::default()
        };
        assert_eq!(slow.replay_idle_timeout(), Duration::from_millis(50));
        assert_eq!(slow.serve_tail_ms(), 50.0);
        let slower = Settings {
            time_scale: 0.5,
            ..Settings::default()
        };
        assert_eq!(slower.replay_idle_timeout(), Duration::from_millis(100));
        assert_eq!(slower.serve_tail_ms(), 0.0);
        settings.validate().expect("defaults are valid");
        assert!(
            Settings {
                size_scale: 0.5,
                ..Settings::default()
            }
            .validate()
            .is_err()
        );
        assert!(
            Settings {
                pool_size: 4,
                ..Settings::default()
            }
            .validate()
            .is_err()
        );
    }

    #[test]
    fn quantiles_use_the_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&v, 0.5), 50.0);
        assert_eq!(quantile(&v, 0.99), 99.0);
        assert_eq!(quantile(&[], 0.5), 0.0);
        assert_eq!(quantile(&[7.0], 0.99), 7.0);
    }

    #[test]
    fn chunked_bodies_are_undone() {
        assert_eq!(
            dechunk(b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n").as_deref(),
            Some(&b"abcde"[..])
        );
        assert!(dechunk(b"zz\r\n").is_none());
    }

    #[test]
    fn ledger_totals_become_usage() {
        let ledger = serde_json::json!({
            "serve": {"invocations": 2, "duration_ms": 150.0, "billed_ms": 151, "gb_seconds": 0.151},
            "warmup": {"invocations": 10, "duration_ms": 10.0, "billed_ms": 10, "gb_seconds": 0.01}
        });
        let usage = usage_from_ledger(&ledger);
        let serve = &usage[&Purpose::Serve];
        assert_eq!(serve.billed_ms, [151.0, 250.0]);
        assert!((serve.gb_seconds[1] - 0.25).abs() < 1e-9);
        // Ten 1 ms warm-ups bill at least ten ticks.
        assert_eq!(usage[&Purpose::Warmup].billed_ms[1], 1000.0);
        assert_eq!(usage[&Purpose::Backup].invocations, 0);
        let diff = ledger_difference(
            &serde_json::json!({"serve": {"invocations": 1, "gb_seconds": 0.5}}),
            &serde_json::json!({"serve": {"invocations": 3, "gb_seconds": 2.0}}),
        );
        assert_eq!(diff["serve"]["invocations"], 2);
        assert!((diff["serve"]["gb_seconds"].as_f64().unwrap() - 1.5).abs() < 1e-12);
    }

    #[test]
    fn outputs_have_a_row_per_hour_and_class() {
        let settings = Settings::default();
        let mut hours = BTreeMap::new();
        hours.insert(
            0,
            Hour {
                hour: 0,
                gets: 4,
                hits: 3,
                misses: 1,
                ..Hour::default()
            },
        );
        hours.insert(
            2,
            Hour {
                hour: 2,
                gets: 2,
                hits: 2,
                ..Hour::default()
            },
        );
        let outcomes = vec![
            Outcome {
                get: Some(GetResult::Hit),
                full_size: 2_000_000,
                replayed_size: 10_000,
                class: 1,
                latency_ms: 5.0,
                ..Outcome::default()
            },
            Outcome {
                get: Some(GetResult::Miss),
                puts: 1,
                class: 0,
                latency_ms: 9.0,
                ..Outcome::default()
            },
        ];
        let objects: HashMap<String, u64> =
            [("a".to_string(), 2_000_000), ("b".to_string(), 5)].into();
        let mut tally = Tally::new(12);
        for outcome in &outcomes {
            tally.add(outcome);
        }
        let mut report = summarize(&settings, TraceCounts::default(), hours, tally, objects);
        report.simulated_hours = 3.0;
        assert_eq!(
            (report.gets, report.hits, report.misses, report.puts),
            (2, 1, 1, 1)
        );
        assert_eq!(report.working_set_bytes, 2_000_005);
        // A hit and a PUT: two times k + r chunk requests.
        assert_eq!(report.chunk_requests, 24);
        assert_eq!(report.latency[1].hits, 1);
        assert_eq!(report.latency[1].hit_p99_ms, 5.0);
        assert_eq!(hourly_csv(&report).lines().count(), 3);
        assert_eq!(latency_csv(&report).lines().count(), 5);
        assert!(hit_ratio_chart(&report).to_svg().contains("hit ratio"));
        assert!(cost_chart(&report).to_svg().contains("warm-up"));
        assert!(table(&report).contains("hits 1 (50.00%)"));
    }
}
