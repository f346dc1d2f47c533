//! The elasticity experiment: how InfiniStore's sliding window of function
//! deployments follows a data set that grows and then shrinks, what that
//! costs, and how fast data comes back from the object store (COS).
//!
//! One run starts a real cache (the `infinicache-proxy` binary with its local
//! Lambda platform, `infinicache-node` environments and the directory object
//! store under them) with the elastic window on, and drives it through
//! simulated time in phases:
//!
//! 1. **grow**: objects are written at a steady rate. New objects go to the
//!    newest time bucket, which grows by `k + r` functions whenever its
//!    memory is nearly full; every bucket length a new bucket opens, and
//!    buckets older than the available window expire (their functions are
//!    released, their objects go cold).
//! 2. **steady**: no more writes; a hot set (the newest objects) is read
//!    every simulated minute, which moves it forward to the newest bucket.
//! 3. **reclaim**: the provider reclaims every environment of the pool at
//!    once; a warm-up round (`POST /warmup`) makes every node of the window
//!    dial in again, so the proxy learns the memory is gone and repairs the
//!    objects from the COS in the background, while the client reads a set
//!    of objects back (their chunks come from the COS).
//! 4. **shrink**: most objects are deleted (memory falls at once) and
//!    nothing is read: bucket after bucket expires, functions are released.
//! 5. **cold**: the objects kept, now cold (only in the COS), are read back.
//!
//! A sampler reads the proxy's `GET /status` every simulated minute: the
//! window's functions, memory used, cold objects, expired buckets and the
//! billed GB-seconds by invocation purpose. Both recovery phases report two
//! throughputs from the COS: the **client-visible** one (bytes of objects
//! read over the time the reads took) and the **background repair** one
//! (bytes written back into function memory, the `bytes_recovered` counter,
//! over the time until `chunks_recovered` stopped changing).
//!
//! Every GET is checked against the bytes written: wrong bytes are counted
//! as corruption (must be 0), a live object not found as missing, a deleted
//! object found again as resurrected.
//!
//! Simulated time: the platform's reclaim policy runs `time_scale` times
//! faster, and every interval the proxy is given (bucket length, warm-up,
//! backup) is divided by the same factor, so a simulated hour passes in
//! `3600 / time_scale` seconds with the same sequence of events. Billed
//! durations are real ones: the GB-seconds are those of the compressed run
//! (warm-ups are as many as in the simulated hours; serve invocations are
//! as long as the work really took).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::stream::{self, StreamExt};
use infinicache::Client;
use infinicache_tests::harness::{TestCache, http};
use rand::RngCore;
use serde::Serialize;
use serde_json::Value;
use tokio::sync::Notify;

pub use crate::availability::PRICE_PER_GB_SECOND;
use crate::chart::{BarChart, LineChart, write_svg};

/// Bytes per MB in every figure of this experiment (decimal, as MB/s is).
pub const MB: f64 = 1e6;

/// The invocation purposes the proxy bills separately.
pub const KINDS: [&str; 3] = ["serve", "warmup", "backup"];

/// What one run does. Durations are simulated time.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Simulated hours of the grow phase (writes).
    pub grow_hours: f64,
    /// Simulated hours of the steady phase (reads of a hot set).
    pub steady_hours: f64,
    /// Simulated hours of the shrink phase (deletes, then idle).
    pub shrink_hours: f64,
    /// Simulated seconds per real second.
    pub time_scale: f64,
    /// Functions deployed (the most the window can use).
    pub pool_size: usize,
    pub data_shards: usize,
    pub parity_shards: usize,
    /// Memory of each function (MB): what it is billed for.
    pub node_memory_mb: u32,
    /// Chunk capacity of each function (MB); the rest of its memory is the
    /// node's reserve. Small, so a small data set fills several buckets.
    pub node_capacity_mb: u32,
    /// Objects written per simulated minute in the grow phase.
    pub objects_per_minute: usize,
    /// Bytes per object.
    pub object_size: usize,
    /// The steady phase reads this many of the newest objects every
    /// simulated minute.
    pub hot_objects: usize,
    /// Objects kept (spread evenly over the data set) when the rest is
    /// deleted; also the set read back in both recovery phases.
    pub keep_objects: usize,
    /// Simulated length of a time bucket.
    pub bucket_length: Duration,
    /// Buckets younger than this many bucket lengths are active.
    pub active_buckets: u32,
    /// Buckets older than this many bucket lengths expire.
    pub available_buckets: u32,
    /// The newest bucket grows once this fraction of its memory is taken.
    pub grow_threshold: f64,
    /// Simulated warm-up interval (zero: none).
    pub warmup_interval: Duration,
    /// Simulated backup interval (zero: no backup).
    pub backup_interval: Duration,
    /// The object store's write mode: `async` or `sync`.
    pub cos_write_mode: String,
    /// Extra reclaim-policy flags for the proxy (`--idle-lifetime`,
    /// `--max-lifetime`, `--no-reclaim`...); empty: the platform's defaults.
    pub reclaim_args: Vec<String>,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Real time without a change of `chunks_recovered` (and with every
    /// read done) after which background repair counts as finished.
    pub settle: Duration,
}

impl Default for Settings {
    /// About two and a half simulated hours at x60 (under three minutes of
    /// real time): 8 objects of 256 KiB a minute for an hour on functions
    /// of 4 MB chunk capacity coding RS(4+2), 10-minute buckets of which 2
    /// are active and 3 available.
    fn default() -> Self {
        Settings {
            grow_hours: 1.0,
            steady_hours: 0.25,
            shrink_hours: 0.75,
            time_scale: 60.0,
            pool_size: 48,
            data_shards: 4,
            parity_shards: 2,
            node_memory_mb: 128,
            node_capacity_mb: 4,
            objects_per_minute: 8,
            object_size: 256 * 1024,
            hot_objects: 32,
            keep_objects: 64,
            bucket_length: Duration::from_secs(600),
            active_buckets: 2,
            available_buckets: 3,
            grow_threshold: 0.9,
            warmup_interval: Duration::from_secs(60),
            backup_interval: Duration::ZERO,
            cos_write_mode: "async".into(),
            reclaim_args: Vec::new(),
            concurrency: 8,
            settle: Duration::from_secs(3),
        }
    }
}

impl Settings {
    /// Functions a growth step adds: `k + r`.
    pub fn step(&self) -> usize {
        self.data_shards + self.parity_shards
    }

    /// One simulated minute in real time.
    pub fn minute(&self) -> Duration {
        Duration::from_secs_f64(60.0 / self.time_scale)
    }

    /// Checks the settings; says what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        let finite_positive = |v: f64| v.is_finite() && v > 0.0;
        if !finite_positive(self.time_scale) {
            return Err(format!(
                "time scale must be positive, got {}",
                self.time_scale
            ));
        }
        if !finite_positive(self.grow_hours) {
            return Err("the grow phase must last some time".into());
        }
        for (name, hours) in [("steady", self.steady_hours), ("shrink", self.shrink_hours)] {
            if !(hours.is_finite() && hours >= 0.0) {
                return Err(format!("{name} hours must be 0 or more, got {hours}"));
            }
        }
        if self.objects_per_minute == 0 || self.object_size == 0 {
            return Err("objects per minute and object size must be positive".into());
        }
        if self.data_shards == 0 || self.step() > self.pool_size {
            return Err(format!(
                "RS({}+{}) needs {} functions; the pool has {}",
                self.data_shards,
                self.parity_shards,
                self.step(),
                self.pool_size
            ));
        }
        if self.node_capacity_mb == 0 || self.node_capacity_mb >= self.node_memory_mb {
            return Err(format!(
                "the chunk capacity ({} MB) must be positive and below the function memory ({} MB)",
                self.node_capacity_mb, self.node_memory_mb
            ));
        }
        if self.bucket_length.is_zero() || self.active_buckets == 0 {
            return Err("bucket length and active buckets must be positive".into());
        }
        if self.available_buckets < self.active_buckets {
            return Err("available buckets must be at least active buckets".into());
        }
        if !(self.grow_threshold > 0.0 && self.grow_threshold <= 1.0) {
            return Err(format!(
                "grow threshold must be in (0, 1], got {}",
                self.grow_threshold
            ));
        }
        if !matches!(self.cos_write_mode.as_str(), "async" | "sync") {
            return Err(format!(
                "COS write mode must be async or sync, not {:?}",
                self.cos_write_mode
            ));
        }
        Ok(())
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

/// The proxy flags for `settings`: the directory COS, the window in real
/// time, function memory and chunk capacity.
pub fn proxy_args(settings: &Settings) -> Vec<String> {
    let scale = settings.time_scale;
    let reserved = settings
        .node_memory_mb
        .saturating_sub(settings.node_capacity_mb);
    let mut args: Vec<String> = [
        ("--pool-size", settings.pool_size.to_string()),
        ("--data-shards", settings.data_shards.to_string()),
        ("--parity-shards", settings.parity_shards.to_string()),
        ("--node-memory-mb", settings.node_memory_mb.to_string()),
        ("--node-reserved-mb", reserved.to_string()),
        ("--time-scale", scale.to_string()),
        ("--cos", "dir".to_string()),
        ("--cos-write-mode", settings.cos_write_mode.clone()),
        ("--bucket-length", real(settings.bucket_length, scale)),
        ("--active-buckets", settings.active_buckets.to_string()),
        (
            "--available-buckets",
            settings.available_buckets.to_string(),
        ),
        ("--grow-threshold", settings.grow_threshold.to_string()),
        ("--warmup-interval", real(settings.warmup_interval, scale)),
        ("--backup-interval", real(settings.backup_interval, scale)),
    ]
    .into_iter()
    .flat_map(|(flag, value)| [flag.to_string(), value])
    .collect();
    args.extend(settings.reclaim_args.iter().cloned());
    args
}

/// The phases of a run, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    Grow,
    Steady,
    Reclaim,
    Shrink,
    Cold,
}

impl Phase {
    pub const ALL: [Phase; 5] = [
        Phase::Grow,
        Phase::Steady,
        Phase::Reclaim,
        Phase::Shrink,
        Phase::Cold,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Phase::Grow => "grow",
            Phase::Steady => "steady",
            Phase::Reclaim => "reclaim",
            Phase::Shrink => "shrink",
            Phase::Cold => "cold",
        }
    }

    fn from_index(index: u8) -> Phase {
        Phase::ALL
            .get(usize::from(index))
            .copied()
            .unwrap_or(Phase::Cold)
    }

    fn index(self) -> u8 {
        Phase::ALL
            .iter()
            .position(|&phase| phase == self)
            .map_or(0, |i| i as u8)
    }
}

/// One reading of `GET /status`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Sample {
    /// Simulated minutes since the workload started.
    pub minute: f64,
    pub phase: Option<Phase>,
    /// Visible objects.
    pub objects: u64,
    /// Functions in a bucket of the window, and in none.
    pub functions: u64,
    pub free_functions: u64,
    pub buckets: u64,
    /// Chunk bytes in function memory.
    pub memory_used_bytes: u64,
    /// Objects only in the COS.
    pub cold_objects: u64,
    /// Cumulative billed GB-seconds and invocations by purpose.
    pub gb_seconds: BTreeMap<String, f64>,
    pub invocations: BTreeMap<String, u64>,
    pub buckets_expired: u64,
    pub chunks_recovered: u64,
    pub bytes_recovered: u64,
    pub chunks_moved: u64,
    pub chunks_lost: u64,
}

impl Sample {
    /// Reads a sample out of a `GET /status` answer.
    pub fn from_status(minute: f64, phase: Phase, status: &Value) -> Sample {
        let window = &status["window"];
        let counter = |name: &str| status["counters"][name].as_u64().unwrap_or(0);
        let mut sample = Sample {
            minute,
            phase: Some(phase),
            objects: status["objects"].as_u64().unwrap_or(0),
            functions: window["functions"].as_u64().unwrap_or(0),
            free_functions: window["free_functions"].as_u64().unwrap_or(0),
            buckets: window["buckets"].as_array().map_or(0, |b| b.len() as u64),
            memory_used_bytes: window["memory_used_bytes"].as_u64().unwrap_or(0),
            cold_objects: window["cold_objects"].as_u64().unwrap_or(0),
            buckets_expired: counter("buckets_expired"),
            chunks_recovered: counter("chunks_recovered"),
            bytes_recovered: counter("bytes_recovered"),
            chunks_moved: counter("chunks_moved"),
            chunks_lost: counter("chunks_lost"),
            ..Sample::default()
        };
        if let Some(billing) = status["billing"].as_object() {
            for (kind, totals) in billing {
                sample
                    .gb_seconds
                    .insert(kind.clone(), totals["gb_seconds"].as_f64().unwrap_or(0.0));
                sample
                    .invocations
                    .insert(kind.clone(), totals["invocations"].as_u64().unwrap_or(0));
            }
        }
        sample
    }

    /// Cumulative GB-seconds of one purpose.
    pub fn gb(&self, kind: &str) -> f64 {
        self.gb_seconds.get(kind).copied().unwrap_or(0.0)
    }

    /// Cumulative GB-seconds of every purpose.
    pub fn gb_total(&self) -> f64 {
        self.gb_seconds.values().sum()
    }

    pub fn memory_mb(&self) -> f64 {
        self.memory_used_bytes as f64 / MB
    }
}

/// One recovery measurement.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Recovery {
    pub phase: Option<Phase>,
    /// Environments the platform reclaimed for it (0: cold objects).
    pub environments_reclaimed: u64,
    /// Objects only in the COS when it started.
    pub cold_before: u64,
    /// Objects read back, and the bytes of those returned intact.
    pub objects_read: u64,
    pub bytes_read: u64,
    /// Real seconds from the first read to the last answer.
    pub client_seconds: f64,
    /// Chunks and bytes background repair read from the COS into memory.
    pub chunks_recovered: u64,
    pub bytes_recovered: u64,
    /// Real seconds from the start until `chunks_recovered` last changed.
    pub repair_seconds: f64,
    /// Memory used before and once repair settled.
    pub memory_before_bytes: u64,
    pub memory_after_bytes: u64,
    /// Whether repair was still going when the measurement gave up.
    pub timed_out: bool,
}

impl Recovery {
    /// Client-visible throughput from the COS, MB/s.
    pub fn client_mb_s(&self) -> f64 {
        rate(self.bytes_read, self.client_seconds)
    }

    /// Background repair throughput from the COS into memory, MB/s.
    pub fn repair_mb_s(&self) -> f64 {
        rate(self.bytes_recovered, self.repair_seconds)
    }

    pub fn label(&self) -> &'static str {
        match self.phase {
            Some(Phase::Reclaim) => "after reclaiming every environment",
            Some(Phase::Cold) => "cold objects after expiry",
            _ => "recovery",
        }
    }
}

fn rate(bytes: u64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        bytes as f64 / MB / seconds
    } else {
        0.0
    }
}

/// What the client saw.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Tally {
    pub puts: u64,
    pub put_errors: u64,
    pub gets: u64,
    /// GETs that returned exactly the bytes written.
    pub hits: u64,
    /// GETs that returned other bytes: must be 0.
    pub corrupt: u64,
    /// GETs of a live object that found nothing.
    pub missing: u64,
    /// GETs that failed (unavailable, timeout...).
    pub get_errors: u64,
    pub deletes: u64,
    pub delete_errors: u64,
    /// GETs of a deleted object that found it again.
    pub resurrected: u64,
    /// Simulated minutes whose work overran the minute.
    pub late_minutes: u64,
    /// The first few failures, as the client reported them.
    pub failures: Vec<String>,
}

impl Tally {
    /// Keeps the first [`MAX_FAILURES`] failure messages.
    fn failed(&mut self, what: String) {
        if self.failures.len() < MAX_FAILURES {
            self.failures.push(what);
        }
    }
}

/// Failure messages kept for the summary.
pub const MAX_FAILURES: usize = 5;

/// One run's results.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Functions per growth step (`k + r`).
    pub step: usize,
    pub time_scale: f64,
    /// Where each phase started and ended, in simulated minutes.
    pub phases: Vec<(Phase, f64, f64)>,
    pub samples: Vec<Sample>,
    pub recoveries: Vec<Recovery>,
    pub tally: Tally,
    /// Objects written in all, and their bytes.
    pub objects_written: u64,
    pub bytes_written: u64,
    /// Objects kept past the shrink (the recovery set).
    pub objects_kept: u64,
}

impl Report {
    fn max_by(&self, f: impl Fn(&Sample) -> u64) -> u64 {
        self.samples.iter().map(f).max().unwrap_or(0)
    }

    pub fn peak_functions(&self) -> u64 {
        self.max_by(|s| s.functions)
    }

    pub fn final_functions(&self) -> u64 {
        self.samples.last().map_or(0, |s| s.functions)
    }

    pub fn peak_memory_bytes(&self) -> u64 {
        self.max_by(|s| s.memory_used_bytes)
    }

    pub fn final_memory_bytes(&self) -> u64 {
        self.samples.last().map_or(0, |s| s.memory_used_bytes)
    }

    /// The last sample taken in `phase`.
    pub fn phase_end(&self, phase: Phase) -> Option<&Sample> {
        self.samples.iter().rev().find(|s| s.phase == Some(phase))
    }

    /// The samples taken in `phase`.
    pub fn phase_samples(&self, phase: Phase) -> impl Iterator<Item = &Sample> {
        self.samples.iter().filter(move |s| s.phase == Some(phase))
    }

    /// Distinct function counts seen while growing, ascending: the window's
    /// growth steps.
    pub fn growth_levels(&self) -> Vec<u64> {
        self.phase_samples(Phase::Grow)
            .map(|s| s.functions)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect()
    }

    /// The last cumulative totals.
    pub fn final_sample(&self) -> Option<&Sample> {
        self.samples.last()
    }

    /// Cumulative GB-seconds of `kind` at the end.
    pub fn gb_seconds(&self, kind: &str) -> f64 {
        self.final_sample().map_or(0.0, |s| s.gb(kind))
    }

    pub fn gb_seconds_total(&self) -> f64 {
        self.final_sample().map_or(0.0, Sample::gb_total)
    }

    pub fn buckets_expired(&self) -> u64 {
        self.final_sample().map_or(0, |s| s.buckets_expired)
    }

    pub fn corrupt(&self) -> u64 {
        self.tally.corrupt
    }

    /// The recovery measured in `phase`.
    pub fn recovery(&self, phase: Phase) -> Option<&Recovery> {
        self.recoveries.iter().find(|r| r.phase == Some(phase))
    }
}

/// Runs the experiment; `progress` is told what happens, a line at a time.
pub async fn run(settings: &Settings, mut progress: impl FnMut(&str)) -> Result<Report, String> {
    settings.validate()?;
    let args = proxy_args(settings);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    // Expiries, reclaims and repairs are the point here, not news.
    let log = std::env::var("INFINICACHE_LOG").unwrap_or_else(|_| "error".into());
    let node_log = std::env::var("INFINICACHE_NODE_LOG").unwrap_or_else(|_| "error".into());
    let cache = TestCache::start_with_env(
        &args,
        &[
            ("INFINICACHE_LOG", log.as_str()),
            ("INFINICACHE_NODE_LOG", node_log.as_str()),
        ],
    )
    .await;
    let client = cache
        .client(settings.data_shards, settings.parity_shards)
        .await;

    let minute = settings.minute();
    let start = Instant::now();
    let phase = Arc::new(AtomicU8::new(Phase::Grow.index()));
    let stop = Arc::new(Notify::new());
    let sampler = spawn_sampler(
        cache.admin_addr,
        start,
        minute,
        settings.time_scale,
        phase.clone(),
        stop.clone(),
    );
    let sim_minutes =
        |at: Instant| at.duration_since(start).as_secs_f64() * settings.time_scale / 60.0;

    let mut workload = Workload {
        settings,
        client: &client,
        live: BTreeMap::new(),
        deleted: Vec::new(),
        tally: Tally::default(),
        next_index: 0,
        bytes_written: 0,
    };
    let mut phases = Vec::new();
    let mut recoveries = Vec::new();
    let enter = |p: Phase, phases: &mut Vec<(Phase, f64, f64)>| {
        let now = sim_minutes(Instant::now());
        if let Some(last) = phases.last_mut() {
            last.2 = now;
        }
        phases.push((p, now, now));
        phase.store(p.index(), Ordering::Relaxed);
    };
    let whole_minutes = |hours: f64| (hours * 60.0).round() as usize;

    // Grow.
    enter(Phase::Grow, &mut phases);
    let grow = whole_minutes(settings.grow_hours).max(1);
    progress(&format!(
        "grow: {grow} simulated minutes, {} objects of {} bytes a minute",
        settings.objects_per_minute, settings.object_size
    ));
    let phase_start = Instant::now();
    for m in 0..grow {
        workload.write_minute().await;
        if (m + 1) % 10 == 0 || m + 1 == grow {
            report_status(&cache, &format!("  grow minute {}", m + 1), &mut progress).await;
        }
        workload.wait(phase_start, minute, m + 1).await;
    }

    // Steady: the newest objects are read every minute.
    enter(Phase::Steady, &mut phases);
    let steady = whole_minutes(settings.steady_hours);
    progress(&format!(
        "steady: {steady} simulated minutes reading the {} newest objects",
        settings.hot_objects
    ));
    let hot: Vec<usize> = workload
        .live
        .keys()
        .rev()
        .take(settings.hot_objects)
        .copied()
        .collect();
    let phase_start = Instant::now();
    for m in 0..steady {
        workload.read_all(&hot).await;
        workload.wait(phase_start, minute, m + 1).await;
    }
    report_status(&cache, "  steady end", &mut progress).await;

    // Reclaim every environment, then read the recovery set back.
    enter(Phase::Reclaim, &mut phases);
    let live: Vec<usize> = workload.live.keys().copied().collect();
    let kept = spread(&live, settings.keep_objects);
    progress(&format!(
        "reclaim: every environment reclaimed, {} objects read back",
        kept.len()
    ));
    let recovery = workload
        .recover(&cache, &kept, Phase::Reclaim, settings.settle)
        .await;
    progress(&recovery_line(&recovery));
    recoveries.push(recovery);

    // Shrink: everything but the kept set is deleted; nothing is read.
    enter(Phase::Shrink, &mut phases);
    let shrink = whole_minutes(settings.shrink_hours);
    let doomed: Vec<usize> = live
        .iter()
        .copied()
        .filter(|i| kept.binary_search(i).is_err())
        .collect();
    progress(&format!(
        "shrink: {} objects deleted, {} kept, {shrink} simulated minutes idle",
        doomed.len(),
        kept.len()
    ));
    let phase_start = Instant::now();
    workload.delete_all(&doomed).await;
    workload.check_deleted(8).await;
    for m in 0..shrink {
        if (m + 1) % 10 == 0 || m + 1 == shrink {
            report_status(&cache, &format!("  shrink minute {}", m + 1), &mut progress).await;
        }
        workload.wait(phase_start, minute, m + 1).await;
    }

    // Cold: the kept objects, expired out of memory, are read back.
    enter(Phase::Cold, &mut phases);
    progress(&format!("cold: {} objects read back", kept.len()));
    let recovery = workload
        .recover(&cache, &kept, Phase::Cold, settings.settle)
        .await;
    progress(&recovery_line(&recovery));
    recoveries.push(recovery);

    // One last sample once everything settled, then stop.
    stop.notify_one();
    let mut samples = match sampler.await {
        Ok(samples) => samples,
        Err(err) => {
            tracing::warn!(%err, "the sampler failed");
            Vec::new()
        }
    };
    let end = Instant::now();
    samples.push(Sample::from_status(
        sim_minutes(end),
        Phase::Cold,
        &cache.status().await,
    ));
    if let Some(last) = phases.last_mut() {
        last.2 = sim_minutes(end);
    }
    cache.stop().await;

    Ok(Report {
        step: settings.step(),
        time_scale: settings.time_scale,
        phases,
        samples,
        recoveries,
        objects_written: workload.next_index as u64,
        bytes_written: workload.bytes_written,
        objects_kept: kept.len() as u64,
        tally: workload.tally,
    })
}

fn recovery_line(r: &Recovery) -> String {
    format!(
        "  {}: {} objects, {:.1} MB in {:.2} s = {:.2} MB/s client-visible; {} chunks, {:.1} MB repaired in {:.2} s = {:.2} MB/s{}",
        r.label(),
        r.objects_read,
        r.bytes_read as f64 / MB,
        r.client_seconds,
        r.client_mb_s(),
        r.chunks_recovered,
        r.bytes_recovered as f64 / MB,
        r.repair_seconds,
        r.repair_mb_s(),
        if r.timed_out {
            " (still repairing)"
        } else {
            ""
        }
    )
}

async fn report_status(cache: &TestCache, what: &str, progress: &mut impl FnMut(&str)) {
    let s = Sample::from_status(0.0, Phase::Grow, &cache.status().await);
    progress(&format!(
        "{what}: {} objects ({} cold), {} functions in {} buckets ({} free), {:.1} MB in memory, {} buckets expired",
        s.objects,
        s.cold_objects,
        s.functions,
        s.buckets,
        s.free_functions,
        s.memory_mb(),
        s.buckets_expired
    ));
}

/// `n` of `indices` spread evenly (all of them if there are no more).
pub fn spread(indices: &[usize], n: usize) -> Vec<usize> {
    if n >= indices.len() {
        return indices.to_vec();
    }
    (0..n)
        .filter_map(|j| indices.get(j * indices.len() / n).copied())
        .collect()
}

/// `GET /status` without panicking the caller if the proxy is gone.
async fn status_of(admin: SocketAddr) -> Option<Value> {
    let reply = tokio::spawn(async move { http(admin, "GET", "/status", "").await })
        .await
        .ok()?;
    match reply {
        (200, body) => serde_json::from_str(&body).ok(),
        _ => None,
    }
}

/// Reads `/status` every simulated minute until told to stop.
fn spawn_sampler(
    admin: SocketAddr,
    start: Instant,
    minute: Duration,
    time_scale: f64,
    phase: Arc<AtomicU8>,
    stop: Arc<Notify>,
) -> tokio::task::JoinHandle<Vec<Sample>> {
    tokio::spawn(async move {
        let mut samples = Vec::new();
        loop {
            let now = Instant::now();
            let elapsed = now.duration_since(start);
            let current = Phase::from_index(phase.load(Ordering::Relaxed));
            match status_of(admin).await {
                Some(status) => samples.push(Sample::from_status(
                    elapsed.as_secs_f64() * time_scale / 60.0,
                    current,
                    &status,
                )),
                None => tracing::warn!("cannot read the proxy's status"),
            }
            // The next whole simulated minute (skipping any missed).
            let done =
                (Instant::now().duration_since(start).as_secs_f64() / minute.as_secs_f64()).floor();
            let next = start + minute.mul_f64(done + 1.0);
            tokio::select! {
                () = tokio::time::sleep_until(next.into()) => {}
                () = stop.notified() => break,
            }
        }
        samples
    })
}

enum Read {
    Hit(u64),
    Corrupt(String),
    Missing(String),
    Error(String),
}

/// The client side: what is written, live and deleted.
struct Workload<'a> {
    settings: &'a Settings,
    client: &'a Client,
    /// Live objects by index, with their bytes.
    live: BTreeMap<usize, Bytes>,
    /// Indices of deleted objects.
    deleted: Vec<usize>,
    tally: Tally,
    next_index: usize,
    bytes_written: u64,
}

fn key(index: usize) -> String {
    format!("elastic-{index:07}")
}

fn random_bytes(len: usize) -> Bytes {
    let mut data = vec![0u8; len];
    rand::rng().fill_bytes(&mut data);
    Bytes::from(data)
}

async fn read(client: &Client, index: usize, data: Bytes) -> Read {
    let name = key(index);
    match client.get(name.as_str()).await {
        Ok(Some(got)) if got == data => Read::Hit(got.len() as u64),
        Ok(Some(got)) => {
            tracing::error!(key = %name, expected = data.len(), got = got.len(), "wrong bytes");
            Read::Corrupt(format!(
                "GET {name}: wrong bytes ({} returned, {} written)",
                got.len(),
                data.len()
            ))
        }
        Ok(None) => {
            tracing::warn!(key = %name, "a live object was not found");
            Read::Missing(format!("GET {name}: not found"))
        }
        Err(err) => {
            tracing::warn!(key = %name, %err, "read failed");
            Read::Error(format!("GET {name}: {err}"))
        }
    }
}

impl Workload<'_> {
    /// Writes one simulated minute's objects.
    async fn write_minute(&mut self) {
        let first = self.next_index;
        self.next_index += self.settings.objects_per_minute;
        let client = self.client;
        let size = self.settings.object_size;
        let written: Vec<(usize, Bytes, Result<(), String>)> = stream::iter(first..self.next_index)
            .map(|index| async move {
                let data = random_bytes(size);
                let name = key(index);
                let outcome = match client.put(name.as_str(), data.clone()).await {
                    Ok(_) => Ok(()),
                    Err(err) => {
                        tracing::warn!(key = %name, %err, "PUT failed");
                        Err(format!("PUT {name}: {err}"))
                    }
                };
                (index, data, outcome)
            })
            .buffer_unordered(self.settings.concurrency.max(1))
            .collect()
            .await;
        for (index, data, outcome) in written {
            self.tally.puts += 1;
            match outcome {
                Ok(()) => {
                    self.bytes_written += data.len() as u64;
                    self.live.insert(index, data);
                }
                Err(failure) => {
                    self.tally.put_errors += 1;
                    self.tally.failed(failure);
                }
            }
        }
    }

    /// Reads `indices` (the live ones) once each; returns the bytes read
    /// intact.
    async fn read_all(&mut self, indices: &[usize]) -> u64 {
        let targets: Vec<(usize, Bytes)> = indices
            .iter()
            .filter_map(|&i| self.live.get(&i).map(|data| (i, data.clone())))
            .collect();
        let client = self.client;
        let outcomes: Vec<Read> = stream::iter(targets)
            .map(|(index, data)| read(client, index, data))
            .buffer_unordered(self.settings.concurrency.max(1))
            .collect()
            .await;
        let mut bytes = 0;
        for outcome in outcomes {
            self.tally.gets += 1;
            match outcome {
                Read::Hit(n) => {
                    self.tally.hits += 1;
                    bytes += n;
                }
                Read::Corrupt(failure) => {
                    self.tally.corrupt += 1;
                    self.tally.failed(failure);
                }
                Read::Missing(failure) => {
                    self.tally.missing += 1;
                    self.tally.failed(failure);
                }
                Read::Error(failure) => {
                    self.tally.get_errors += 1;
                    self.tally.failed(failure);
                }
            }
        }
        bytes
    }

    async fn delete_all(&mut self, indices: &[usize]) {
        let client = self.client;
        let outcomes: Vec<(usize, Result<(), String>)> = stream::iter(indices.iter().copied())
            .map(|index| async move {
                let name = key(index);
                match client.delete(name.as_str()).await {
                    Ok(_) => (index, Ok(())),
                    Err(err) => {
                        tracing::warn!(key = %name, %err, "DELETE failed");
                        (index, Err(format!("DELETE {name}: {err}")))
                    }
                }
            })
            .buffer_unordered(self.settings.concurrency.max(1))
            .collect()
            .await;
        for (index, outcome) in outcomes {
            self.tally.deletes += 1;
            match outcome {
                Ok(()) => {
                    self.live.remove(&index);
                    self.deleted.push(index);
                }
                Err(failure) => {
                    self.tally.delete_errors += 1;
                    self.tally.failed(failure);
                }
            }
        }
        self.deleted.sort_unstable();
    }

    /// Reads up to `n` deleted objects (spread over them): none may be
    /// found.
    async fn check_deleted(&mut self, n: usize) {
        for index in spread(&self.deleted, n) {
            let name = key(index);
            self.tally.gets += 1;
            match self.client.get(name.as_str()).await {
                Ok(None) => self.tally.hits += 1,
                Ok(Some(_)) => {
                    tracing::error!(key = %name, "a deleted object was found again");
                    self.tally.resurrected += 1;
                    self.tally
                        .failed(format!("GET {name}: deleted, found again"));
                }
                Err(err) => {
                    tracing::warn!(key = %name, %err, "read of a deleted object failed");
                    self.tally.get_errors += 1;
                    self.tally.failed(format!("GET {name} (deleted): {err}"));
                }
            }
        }
    }

    /// Waits for the end of simulated minute `n` of a phase that started
    /// at `phase_start`; counts a late minute if it is already over.
    async fn wait(&mut self, phase_start: Instant, minute: Duration, n: usize) {
        let next = phase_start + minute.mul_f64(n as f64);
        if Instant::now() > next {
            self.tally.late_minutes += 1;
        }
        tokio::time::sleep_until(next.into()).await;
    }

    /// A recovery measurement: in the reclaim phase every environment of
    /// the pool is reclaimed first and a warm-up round makes every node of
    /// the window dial in again (so the proxy reconciles and repairs it);
    /// then `indices` are read back while the repair counters are watched.
    async fn recover(
        &mut self,
        cache: &TestCache,
        indices: &[usize],
        phase: Phase,
        settle: Duration,
    ) -> Recovery {
        let before = Sample::from_status(0.0, phase, &cache.status().await);
        let mut recovery = Recovery {
            phase: Some(phase),
            cold_before: before.cold_objects,
            memory_before_bytes: before.memory_used_bytes,
            ..Recovery::default()
        };
        let start = Instant::now();
        if phase == Phase::Reclaim {
            recovery.environments_reclaimed = reclaim_everything(cache).await;
            let (status, body) = http(cache.admin_addr, "POST", "/warmup", "").await;
            if status != 200 {
                tracing::warn!(status, %body, "POST /warmup failed");
            }
        }

        let reads_done = AtomicBool::new(false);
        let reads = async {
            let t0 = Instant::now();
            let before = self.tally.clone();
            let bytes = self.read_all(indices).await;
            let seconds = t0.elapsed().as_secs_f64();
            reads_done.store(true, Ordering::Relaxed);
            (bytes, seconds, self.tally.gets - before.gets)
        };
        let watch = async {
            // Repair is over once every read is done and chunks_recovered
            // has not changed for `settle` since (bounded, in case it never
            // settles).
            let limit = (settle * 20).max(Duration::from_secs(120));
            let mut last = (before.chunks_recovered, before.bytes_recovered);
            let mut last_change: Option<Instant> = None;
            let mut reads_done_at: Option<Instant> = None;
            loop {
                tokio::time::sleep(Duration::from_millis(25)).await;
                let status = status_of(cache.admin_addr).await;
                let now = Instant::now();
                if let Some(status) = status {
                    let s = Sample::from_status(0.0, phase, &status);
                    if (s.chunks_recovered, s.bytes_recovered) != last {
                        last = (s.chunks_recovered, s.bytes_recovered);
                        last_change = Some(now);
                    }
                }
                if reads_done_at.is_none() && reads_done.load(Ordering::Relaxed) {
                    reads_done_at = Some(now);
                }
                if let Some(done) = reads_done_at {
                    let quiet_since = last_change.map_or(done, |change| change.max(done));
                    if now.duration_since(quiet_since) >= settle {
                        return (last, last_change, false);
                    }
                }
                if now.duration_since(start) >= limit {
                    return (last, last_change, true);
                }
            }
        };
        let ((bytes, seconds, reads), (last, last_change, timed_out)) = tokio::join!(reads, watch);
        recovery.objects_read = reads;
        recovery.bytes_read = bytes;
        recovery.client_seconds = seconds;
        recovery.chunks_recovered = last.0.saturating_sub(before.chunks_recovered);
        recovery.bytes_recovered = last.1.saturating_sub(before.bytes_recovered);
        recovery.repair_seconds =
            last_change.map_or(0.0, |at| at.duration_since(start).as_secs_f64());
        recovery.timed_out = timed_out;
        recovery.memory_after_bytes = cache.status().await["window"]["memory_used_bytes"]
            .as_u64()
            .unwrap_or(0);
        recovery
    }
}

/// Reclaims every environment of every function; returns how many.
async fn reclaim_everything(cache: &TestCache) -> u64 {
    let functions = cache.admin_get("/admin/functions").await;
    let mut reclaimed = 0;
    for function in functions.as_array().map(Vec::as_slice).unwrap_or_default() {
        let has_environments = function["environments"]
            .as_array()
            .is_some_and(|envs| !envs.is_empty());
        if let (true, Some(name)) = (has_environments, function["name"].as_str()) {
            reclaimed += cache.reclaim(name).await;
        }
    }
    reclaimed
}

/// The per-sample results as CSV.
pub fn csv(report: &Report) -> String {
    let mut out = String::from(
        "sim_minute,phase,objects,functions,free_functions,buckets,memory_used_mb,cold_objects,serve_gb_s,warmup_gb_s,backup_gb_s,total_gb_s,serve_invocations,warmup_invocations,backup_invocations,buckets_expired,chunks_recovered,bytes_recovered,chunks_moved,chunks_lost\n",
    );
    for s in &report.samples {
        let inv = |kind: &str| s.invocations.get(kind).copied().unwrap_or(0);
        let _ = writeln!(
            out,
            "{:.2},{},{},{},{},{},{:.3},{},{:.4},{:.4},{:.4},{:.4},{},{},{},{},{},{},{},{}",
            s.minute,
            s.phase.map_or("", Phase::name),
            s.objects,
            s.functions,
            s.free_functions,
            s.buckets,
            s.memory_mb(),
            s.cold_objects,
            s.gb("serve"),
            s.gb("warmup"),
            s.gb("backup"),
            s.gb_total(),
            inv("serve"),
            inv("warmup"),
            inv("backup"),
            s.buckets_expired,
            s.chunks_recovered,
            s.bytes_recovered,
            s.chunks_moved,
            s.chunks_lost
        );
    }
    out
}

/// The recovery measurements as CSV.
pub fn recovery_csv(report: &Report) -> String {
    let mut out = String::from(
        "phase,environments_reclaimed,cold_before,objects_read,mb_read,client_seconds,client_mb_s,chunks_recovered,mb_recovered,repair_seconds,repair_mb_s,memory_before_mb,memory_after_mb,timed_out\n",
    );
    for r in &report.recoveries {
        let _ = writeln!(
            out,
            "{},{},{},{},{:.3},{:.3},{:.3},{},{:.3},{:.3},{:.3},{:.3},{:.3},{}",
            r.phase.map_or("", Phase::name),
            r.environments_reclaimed,
            r.cold_before,
            r.objects_read,
            r.bytes_read as f64 / MB,
            r.client_seconds,
            r.client_mb_s(),
            r.chunks_recovered,
            r.bytes_recovered as f64 / MB,
            r.repair_seconds,
            r.repair_mb_s(),
            r.memory_before_bytes as f64 / MB,
            r.memory_after_bytes as f64 / MB,
            r.timed_out
        );
    }
    out
}

/// The summary: one row per phase, then the run's figures.
pub fn table(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<8} {:>13} {:>9} {:>9} {:>10} {:>10} {:>8} {:>6} {:>9} {:>8}",
        "phase",
        "sim minutes",
        "functions",
        "peak fn",
        "memory MB",
        "peak MB",
        "objects",
        "cold",
        "GB-s",
        "expired"
    );
    let mut gb_before = 0.0;
    for &(phase, from, to) in &report.phases {
        let Some(end) = report.phase_end(phase) else {
            continue;
        };
        let peak_fn = report
            .phase_samples(phase)
            .map(|s| s.functions)
            .max()
            .unwrap_or(0);
        let peak_mb = report
            .phase_samples(phase)
            .map(Sample::memory_mb)
            .fold(0.0, f64::max);
        let _ = writeln!(
            out,
            "{:<8} {:>6.1}-{:<6.1} {:>9} {:>9} {:>10.1} {:>10.1} {:>8} {:>6} {:>9.3} {:>8}",
            phase.name(),
            from,
            to,
            end.functions,
            peak_fn,
            end.memory_mb(),
            peak_mb,
            end.objects,
            end.cold_objects,
            end.gb_total() - gb_before,
            end.buckets_expired
        );
        gb_before = end.gb_total();
    }
    let levels: Vec<String> = report.growth_levels().iter().map(u64::to_string).collect();
    let _ = writeln!(
        out,
        "functions: peak {}, final {} (step k+r = {}; levels while growing: {})",
        report.peak_functions(),
        report.final_functions(),
        report.step,
        levels.join(" ")
    );
    let _ = writeln!(
        out,
        "memory used: peak {:.1} MB, final {:.1} MB; buckets expired {}",
        report.peak_memory_bytes() as f64 / MB,
        report.final_memory_bytes() as f64 / MB,
        report.buckets_expired()
    );
    for kind in KINDS {
        let gb = report.gb_seconds(kind);
        let _ = writeln!(
            out,
            "billed {kind:<6} {gb:>10.3} GB-s  ${:.6}",
            gb * PRICE_PER_GB_SECOND
        );
    }
    let total = report.gb_seconds_total();
    let _ = writeln!(
        out,
        "billed total  {total:>10.3} GB-s  ${:.6} (at ${PRICE_PER_GB_SECOND}/GB-s)",
        total * PRICE_PER_GB_SECOND
    );
    let _ = writeln!(
        out,
        "{:<36} {:>7} {:>8} {:>9} {:>11} {:>8} {:>9} {:>9} {:>11}",
        "recovery from the COS",
        "objects",
        "MB read",
        "client s",
        "client MB/s",
        "chunks",
        "MB rec.",
        "repair s",
        "repair MB/s"
    );
    for r in &report.recoveries {
        let _ = writeln!(
            out,
            "{:<36} {:>7} {:>8.1} {:>9.2} {:>11.2} {:>8} {:>9.1} {:>9.2} {:>11.2}{}",
            r.label(),
            r.objects_read,
            r.bytes_read as f64 / MB,
            r.client_seconds,
            r.client_mb_s(),
            r.chunks_recovered,
            r.bytes_recovered as f64 / MB,
            r.repair_seconds,
            r.repair_mb_s(),
            if r.timed_out {
                " (still repairing)"
            } else {
                ""
            }
        );
    }
    let chunks: u64 = report.recoveries.iter().map(|r| r.chunks_recovered).sum();
    let t = &report.tally;
    let _ = writeln!(
        out,
        "chunks recovered {chunks}; objects written {} ({:.1} MB), kept {}",
        report.objects_written,
        report.bytes_written as f64 / MB,
        report.objects_kept
    );
    let _ = writeln!(
        out,
        "requests: {} PUTs ({} failed), {} GETs ({} intact), {} DELETEs ({} failed); corrupt {}, missing {}, failed GETs {}, resurrected {}, late minutes {}",
        t.puts,
        t.put_errors,
        t.gets,
        t.hits,
        t.deletes,
        t.delete_errors,
        t.corrupt,
        t.missing,
        t.get_errors,
        t.resurrected,
        t.late_minutes
    );
    for failure in &t.failures {
        let _ = writeln!(out, "  failure: {failure}");
    }
    out
}

/// One series per phase of `value` over simulated minutes; each phase
/// starts at the previous one's last point so the line is unbroken.
fn by_phase(mut chart: LineChart, report: &Report, value: impl Fn(&Sample) -> f64) -> LineChart {
    let mut previous: Option<(f64, f64)> = None;
    for phase in Phase::ALL {
        let mut points: Vec<(f64, f64)> = previous.into_iter().collect();
        points.extend(report.phase_samples(phase).map(|s| (s.minute, value(s))));
        if points.len() > usize::from(previous.is_some()) {
            previous = points.last().copied();
            chart = chart.series(phase.name(), points);
        }
    }
    chart
}

/// Functions in the window over simulated time, coloured by phase.
pub fn functions_chart(report: &Report) -> LineChart {
    let chart = LineChart::new(
        "Functions in the elastic window",
        "simulated minute",
        "functions",
    )
    .step(true);
    by_phase(chart, report, |s| s.functions as f64)
}

/// Chunk bytes in function memory over simulated time.
pub fn memory_chart(report: &Report) -> LineChart {
    let chart = LineChart::new(
        "Function memory used by chunks",
        "simulated minute",
        "memory used (MB)",
    )
    .step(true);
    by_phase(chart, report, Sample::memory_mb)
}

/// Cumulative billed GB-seconds by purpose over simulated time.
pub fn gb_seconds_chart(report: &Report) -> LineChart {
    let mut chart = LineChart::new(
        "Billed GB-seconds (cumulative)",
        "simulated minute",
        "GB-seconds",
    );
    for kind in KINDS {
        chart = chart.series(kind, report.samples.iter().map(|s| (s.minute, s.gb(kind))));
    }
    chart.series(
        "total",
        report.samples.iter().map(|s| (s.minute, s.gb_total())),
    )
}

/// Recovery throughput from the COS, client-visible and background.
pub fn recovery_chart(report: &Report) -> BarChart {
    BarChart::new("Recovery throughput from the COS", "recovery", "MB/s")
        .categories(report.recoveries.iter().map(Recovery::label))
        .series(
            "client-visible reads",
            report.recoveries.iter().map(Recovery::client_mb_s),
        )
        .series(
            "background repair",
            report.recoveries.iter().map(Recovery::repair_mb_s),
        )
}

/// Writes the CSVs, the summary and the charts into `dir`; returns the
/// files written.
pub fn write_results(report: &Report, dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut files = Vec::new();
    for (name, text) in [
        ("elasticity.csv", csv(report)),
        ("recovery.csv", recovery_csv(report)),
        ("summary.txt", table(report)),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, text)?;
        files.push(path);
    }
    for (name, chart) in [
        ("functions.svg", functions_chart(report)),
        ("memory.svg", memory_chart(report)),
        ("gb-seconds.svg", gb_seconds_chart(report)),
    ] {
        let path = dir.join(name);
        write_svg(&path, &chart)?;
        files.push(path);
    }
    let path = dir.join("recovery.svg");
    write_svg(&path, &recovery_chart(report))?;
    files.push(path);
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chart::Chart;

    fn sample(minute: f64, phase: Phase, functions: u64, memory_mb: u64, gb: f64) -> Sample {
        Sample {
            minute,
            phase: Some(phase),
            functions,
            memory_used_bytes: memory_mb * 1_000_000,
            gb_seconds: [("serve".to_string(), gb), ("warmup".to_string(), gb / 2.0)].into(),
            ..Sample::default()
        }
    }

    fn report() -> Report {
        Report {
            step: 6,
            time_scale: 60.0,
            phases: vec![
                (Phase::Grow, 0.0, 2.0),
                (Phase::Steady, 2.0, 3.0),
                (Phase::Shrink, 3.0, 5.0),
            ],
            samples: vec![
                sample(0.0, Phase::Grow, 6, 1, 0.0),
                sample(1.0, Phase::Grow, 12, 30, 1.0),
                sample(2.0, Phase::Steady, 18, 40, 2.0),
                sample(3.0, Phase::Shrink, 12, 5, 3.0),
                sample(4.0, Phase::Shrink, 0, 0, 4.0),
            ],
            recoveries: vec![Recovery {
                phase: Some(Phase::Reclaim),
                bytes_read: 4_000_000,
                client_seconds: 2.0,
                bytes_recovered: 3_000_000,
                repair_seconds: 1.5,
                ..Recovery::default()
            }],
            tally: Tally::default(),
            objects_written: 10,
            bytes_written: 10_000_000,
            objects_kept: 2,
        }
    }

    #[test]
    fn figures_come_from_the_samples() {
        let report = report();
        assert_eq!(report.peak_functions(), 18);
        assert_eq!(report.final_functions(), 0);
        assert_eq!(report.peak_memory_bytes(), 40_000_000);
        assert_eq!(report.growth_levels(), vec![6, 12]);
        assert!((report.gb_seconds_total() - 6.0).abs() < 1e-9);
        let recovery = &report.recoveries[0];
        assert!((recovery.client_mb_s() - 2.0).abs() < 1e-9);
        assert!((recovery.repair_mb_s() - 2.0).abs() < 1e-9);
        assert_eq!(Recovery::default().repair_mb_s(), 0.0);
    }

    #[test]
    fn outputs_have_a_row_per_sample_and_phase() {
        let report = report();
        assert_eq!(csv(&report).lines().count(), 6);
        assert!(
            csv(&report)
                .lines()
                .nth(2)
                .is_some_and(|l| l.starts_with("1.00,grow,"))
        );
        assert_eq!(recovery_csv(&report).lines().count(), 2);
        let table = table(&report);
        assert!(table.contains("functions: peak 18, final 0"), "{table}");
        assert!(table.contains("levels while growing: 6 12"), "{table}");
        // Phases join up: the steady series starts at the grow series' end.
        let chart = functions_chart(&report);
        assert_eq!(chart.series.len(), 3);
        assert_eq!(chart.series[1].points.first(), Some(&(1.0, 12.0)));
        assert!(chart.to_svg().contains("shrink"));
        assert!(
            recovery_chart(&report)
                .to_svg()
                .contains("background repair")
        );
    }

    #[test]
    fn intervals_are_scaled_for_the_proxy() {
        let settings = Settings::default();
        let args = proxy_args(&settings);
        let after = |flag: &str| {
            args.iter()
                .position(|a| a == flag)
                .and_then(|i| args.get(i + 1))
                .cloned()
        };
        assert_eq!(after("--bucket-length").as_deref(), Some("10000ms"));
        assert_eq!(after("--warmup-interval").as_deref(), Some("1000ms"));
        assert_eq!(after("--backup-interval").as_deref(), Some("0s"));
        assert_eq!(after("--node-reserved-mb").as_deref(), Some("124"));
        assert_eq!(after("--cos").as_deref(), Some("dir"));
        settings.validate().expect("defaults are valid");
        let bad = Settings {
            node_capacity_mb: 128,
            ..Settings::default()
        };
        assert!(bad.validate().is_err());
    }

    #[test]
    fn spread_picks_evenly() {
        let all: Vec<usize> = (0..10).collect();
        assert_eq!(spread(&all, 5), vec![0, 2, 4, 6, 8]);
        assert_eq!(spread(&all, 20), all);
        assert!(spread(&all, 0).is_empty());
    }

    #[test]
    fn samples_read_the_status_json() {
        let status = serde_json::json!({
            "objects": 7,
            "counters": {"buckets_expired": 2, "chunks_recovered": 5, "bytes_recovered": 500},
            "billing": {"serve": {"gb_seconds": 1.5, "invocations": 3}},
            "window": {"functions": 12, "free_functions": 4, "memory_used_bytes": 2_000_000,
                       "cold_objects": 1, "buckets": [{}, {}]}
        });
        let s = Sample::from_status(3.0, Phase::Steady, &status);
        assert_eq!(
            (s.objects, s.functions, s.free_functions, s.buckets),
            (7, 12, 4, 2)
        );
        assert_eq!(
            (s.buckets_expired, s.chunks_recovered, s.bytes_recovered),
            (2, 5, 500)
        );
        assert_eq!(s.cold_objects, 1);
        assert!((s.memory_mb() - 2.0).abs() < 1e-9);
        assert!((s.gb("serve") - 1.5).abs() < 1e-9);
    }
}
