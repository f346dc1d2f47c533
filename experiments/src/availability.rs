//! The availability experiment: how much cached data survives the provider
//! reclaiming function environments, with and without delta-sync backup.
//!
//! One run starts a real cache (the `infinicache-proxy` binary with its local
//! Lambda platform and `infinicache-node` environments), writes a set of
//! objects, then reads every object once every few simulated minutes (a
//! sweep; in between the nodes sit idle, as most of a cache's nodes do most
//! of the time, so warm-ups matter) for a number of *simulated* hours while
//! the platform reclaims environments under a policy (idle lifetime, maximum
//! lifetime, random reclaims) and the proxy warms nodes up and backs them up
//! on its schedule. The platform's time scale compresses an hour into
//! seconds; every interval of the policy and of the proxy is scaled by the
//! same factor, so the sequence of events is the one an hour would see.
//!
//! A read that returns the exact bytes is a hit; one that finds the object
//! gone (too few chunks readable, or already forgotten) is a miss; one that
//! fails otherwise (a timeout, say) is an error. After a miss or an error the
//! object is written again, as a cache-aside application would. Wrong bytes
//! are counted separately and must never happen. The hourly
//! availability is hits / reads in that simulated hour, which is how the
//! InfiniCache paper reports it (95.4% with backup, 81.4% without).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::stream::{self, StreamExt};
use infinicache::Client;
use infinicache_tests::harness::TestCache;
use rand::RngCore;
use serde::Serialize;
use serde_json::Value;

use crate::chart::LineChart;

/// AWS Lambda's x86 price per GB-second (us-east-1), for the cost column.
pub const PRICE_PER_GB_SECOND: f64 = 0.000_016_666_7;
/// AWS Lambda's price per request.
pub const PRICE_PER_REQUEST: f64 = 0.000_000_2;

/// What one run does.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Simulated hours to run.
    pub hours: f64,
    /// Simulated seconds per real second.
    pub time_scale: f64,
    pub pool_size: usize,
    pub data_shards: usize,
    pub parity_shards: usize,
    pub objects: usize,
    pub object_size: usize,
    /// Every object is read once every this many simulated minutes.
    pub sweep_minutes: usize,
    /// Simulated warm-up interval (zero: none).
    pub warmup_interval: Duration,
    /// Simulated backup interval (zero: no backup).
    pub backup_interval: Duration,
    /// Extra reclaim-policy flags for the proxy (`--idle-lifetime`,
    /// `--max-lifetime`, `--random-reclaims-per-hour`, `--no-reclaim`);
    /// empty: the platform's defaults.
    pub reclaim_args: Vec<String>,
    /// Reads in flight at once.
    pub concurrency: usize,
}

impl Default for Settings {
    /// The paper's settings: RS(10+2), warm-up every minute, backup every
    /// five minutes.
    fn default() -> Self {
        Settings {
            hours: 4.0,
            time_scale: 120.0,
            pool_size: 24,
            data_shards: 10,
            parity_shards: 2,
            objects: 200,
            object_size: 100 * 1024,
            sweep_minutes: 10,
            warmup_interval: Duration::from_secs(60),
            backup_interval: Duration::from_secs(300),
            reclaim_args: Vec::new(),
            concurrency: 8,
        }
    }
}

/// Figures for one simulated hour.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Hour {
    pub hour: usize,
    pub reads: u64,
    pub hits: u64,
    /// Reads that found the object gone (it was written again).
    pub misses: u64,
    /// Reads that returned bytes other than those written: must be 0.
    pub corrupt: u64,
    /// Reads that failed for another reason (timeouts...).
    pub errors: u64,
    pub chunks_lost: u64,
    pub chunks_repaired: u64,
    pub objects_lost: u64,
    pub failovers: u64,
    /// Environments reclaimed by the platform, by reason.
    pub reclaims: BTreeMap<String, u64>,
    /// Billed GB-seconds by invocation purpose (serve, warmup, backup).
    pub gb_seconds: BTreeMap<String, f64>,
    /// Invocations by purpose.
    pub invocations: BTreeMap<String, u64>,
}

impl Hour {
    /// Hits over reads, in percent (100 when nothing was read).
    pub fn availability(&self) -> f64 {
        if self.reads == 0 {
            100.0
        } else {
            100.0 * self.hits as f64 / self.reads as f64
        }
    }

    /// What AWS would charge for this hour's warm-ups and backups.
    pub fn availability_cost(&self) -> f64 {
        ["warmup", "backup"]
            .iter()
            .map(|kind| {
                self.gb_seconds.get(*kind).copied().unwrap_or(0.0) * PRICE_PER_GB_SECOND
                    + self.invocations.get(*kind).copied().unwrap_or(0) as f64 * PRICE_PER_REQUEST
            })
            .sum()
    }
}

/// One run's results.
#[derive(Debug, Clone, Serialize)]
pub struct Run {
    pub label: String,
    pub hours: Vec<Hour>,
}

impl Run {
    /// Availability over the whole run, in percent.
    pub fn overall(&self) -> f64 {
        let reads: u64 = self.hours.iter().map(|h| h.reads).sum();
        let hits: u64 = self.hours.iter().map(|h| h.hits).sum();
        if reads == 0 {
            100.0
        } else {
            100.0 * hits as f64 / reads as f64
        }
    }

    /// The worst hour's availability.
    pub fn worst_hour(&self) -> f64 {
        self.hours
            .iter()
            .map(Hour::availability)
            .fold(100.0, f64::min)
    }

    pub fn corrupt(&self) -> u64 {
        self.hours.iter().map(|h| h.corrupt).sum()
    }
}

/// Cumulative counters read from the proxy and the platform.
#[derive(Debug, Clone, Default)]
struct Snapshot {
    counters: BTreeMap<String, u64>,
    reclaims: BTreeMap<String, u64>,
    gb_seconds: BTreeMap<String, f64>,
    invocations: BTreeMap<String, u64>,
}

async fn snapshot(cache: &TestCache) -> Snapshot {
    let status = cache.status().await;
    let stats = cache.admin_get("/admin/stats").await;
    let numbers = |value: &Value| -> BTreeMap<String, u64> {
        value
            .as_object()
            .map(|map| {
                map.iter()
                    .filter_map(|(k, v)| v.as_u64().map(|v| (k.clone(), v)))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut snapshot = Snapshot {
        counters: numbers(&status["counters"]),
        reclaims: numbers(&stats["reclaims"]),
        ..Snapshot::default()
    };
    if let Some(billing) = status["billing"].as_object() {
        for (kind, totals) in billing {
            snapshot
                .gb_seconds
                .insert(kind.clone(), totals["gb_seconds"].as_f64().unwrap_or(0.0));
            snapshot
                .invocations
                .insert(kind.clone(), totals["invocations"].as_u64().unwrap_or(0));
        }
    }
    snapshot
}

fn delta<V: Copy + Default + std::ops::Sub<Output = V>>(
    now: &BTreeMap<String, V>,
    before: &BTreeMap<String, V>,
) -> BTreeMap<String, V> {
    now.iter()
        .map(|(k, v)| (k.clone(), *v - before.get(k).copied().unwrap_or_default()))
        .collect()
}

fn scaled(duration: Duration, scale: f64) -> String {
    format!(
        "{}ms",
        (duration.as_secs_f64() * 1000.0 / scale).round().max(1.0) as u64
    )
}

/// The proxy flags for `settings`.
pub fn proxy_args(settings: &Settings) -> Vec<String> {
    let mut args: Vec<String> = vec![
        "--pool-size".into(),
        settings.pool_size.to_string(),
        "--data-shards".into(),
        settings.data_shards.to_string(),
        "--parity-shards".into(),
        settings.parity_shards.to_string(),
        "--node-memory-mb".into(),
        "256".into(),
        "--time-scale".into(),
        settings.time_scale.to_string(),
        // What the memory layer alone keeps available (InfiniCache's
        // question): with the object store under it, every read would hit.
        "--cos".into(),
        "off".into(),
    ];
    for (flag, interval) in [
        ("--warmup-interval", settings.warmup_interval),
        ("--backup-interval", settings.backup_interval),
    ] {
        args.push(flag.into());
        args.push(if interval.is_zero() {
            "0s".into()
        } else {
            scaled(interval, settings.time_scale)
        });
    }
    args.extend(settings.reclaim_args.iter().cloned());
    args
}

/// Runs one experiment; `progress` is told about each finished hour.
pub async fn run(settings: &Settings, label: &str, mut progress: impl FnMut(&Hour)) -> Run {
    let args = proxy_args(settings);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    // Reclaims and lost objects are the point here, not news: keep the
    // proxy's log to errors unless asked otherwise.
    let log = std::env::var("INFINICACHE_LOG").unwrap_or_else(|_| "error".into());
    let cache = TestCache::start_with_env(&args, &[("INFINICACHE_LOG", log.as_str())]).await;
    let client = cache
        .client(settings.data_shards, settings.parity_shards)
        .await;

    let objects: Vec<(String, Bytes)> = (0..settings.objects)
        .map(|i| {
            let mut data = vec![0u8; settings.object_size];
            rand::rng().fill_bytes(&mut data);
            (format!("object-{i}"), Bytes::from(data))
        })
        .collect();
    for (key, data) in &objects {
        if let Err(err) = client.put(key.as_str(), data.clone()).await {
            tracing::warn!(%key, %err, "initial PUT failed");
        }
    }

    let minute = Duration::from_secs_f64(60.0 / settings.time_scale);
    let hours = settings.hours.ceil() as usize;
    let minutes_total = (settings.hours * 60.0).round() as usize;
    let start = Instant::now();
    let mut before = snapshot(&cache).await;
    let mut current = Hour::default();
    let mut result = Run {
        label: label.to_string(),
        hours: Vec::with_capacity(hours),
    };
    let sweep_minutes = settings.sweep_minutes.max(1);
    for minute_index in 0..minutes_total {
        let outcomes: Vec<Outcome> = if (minute_index + 1) % sweep_minutes == 0 {
            stream::iter(&objects)
                .map(|object| read(&client, object))
                .buffer_unordered(settings.concurrency.max(1))
                .collect()
                .await
        } else {
            Vec::new()
        };
        for outcome in outcomes {
            current.reads += 1;
            match outcome {
                Outcome::Hit => current.hits += 1,
                Outcome::Miss => current.misses += 1,
                Outcome::Corrupt => current.corrupt += 1,
                Outcome::Error => current.errors += 1,
            }
        }
        // Keep simulated time in step with the platform's clock.
        let next = start + minute.mul_f64((minute_index + 1) as f64);
        tokio::time::sleep_until(next.into()).await;
        if (minute_index + 1) % 60 == 0 || minute_index + 1 == minutes_total {
            let now = snapshot(&cache).await;
            let counters = delta(&now.counters, &before.counters);
            let counter = |name: &str| counters.get(name).copied().unwrap_or(0);
            current.hour = result.hours.len() + 1;
            current.chunks_lost = counter("chunks_lost");
            current.chunks_repaired = counter("chunks_repaired");
            current.objects_lost = counter("objects_lost");
            current.failovers = counter("failovers");
            current.reclaims = delta(&now.reclaims, &before.reclaims);
            current.gb_seconds = delta(&now.gb_seconds, &before.gb_seconds);
            current.invocations = delta(&now.invocations, &before.invocations);
            progress(&current);
            result.hours.push(std::mem::take(&mut current));
            before = now;
        }
    }
    cache.stop().await;
    result
}

enum Outcome {
    Hit,
    Miss,
    Corrupt,
    Error,
}

async fn read(client: &Client, (key, data): &(String, Bytes)) -> Outcome {
    let outcome = match client.get(key.as_str()).await {
        Ok(Some(got)) if got == *data => return Outcome::Hit,
        Ok(Some(_)) => return Outcome::Corrupt,
        Ok(None) => Outcome::Miss,
        // Too few chunks left: the object is lost.
        Err(infinicache::Error::Unavailable(_)) => Outcome::Miss,
        Err(err) => {
            tracing::warn!(%key, %err, "read failed");
            Outcome::Error
        }
    };
    // Cache-aside: the application writes a missed object again.
    if let Err(err) = client.put(key.as_str(), data.clone()).await {
        tracing::warn!(%key, %err, "re-PUT after a miss failed");
    }
    outcome
}

/// The per-hour table of several runs, as text.
pub fn table(runs: &[Run]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<12} {:>4} {:>6} {:>6} {:>9} {:>5} {:>6} {:>8} {:>9} {:>8} {:>9} {:>10} {:>10} {:>9}",
        "run",
        "hour",
        "reads",
        "hits",
        "avail %",
        "lost",
        "corr.",
        "repaired",
        "failovers",
        "reclaims",
        "obj lost",
        "warm GB-s",
        "bkup GB-s",
        "cost $"
    );
    for run in runs {
        for hour in &run.hours {
            let gb = |kind: &str| hour.gb_seconds.get(kind).copied().unwrap_or(0.0);
            let _ = writeln!(
                out,
                "{:<12} {:>4} {:>6} {:>6} {:>9.3} {:>5} {:>6} {:>8} {:>9} {:>8} {:>9} {:>10.3} {:>10.3} {:>9.5}",
                run.label,
                hour.hour,
                hour.reads,
                hour.hits,
                hour.availability(),
                hour.chunks_lost,
                hour.corrupt,
                hour.chunks_repaired,
                hour.failovers,
                hour.reclaims.values().sum::<u64>(),
                hour.objects_lost,
                gb("warmup"),
                gb("backup"),
                hour.availability_cost(),
            );
        }
        let _ = writeln!(
            out,
            "{:<12} overall availability {:.3}%, worst hour {:.3}%, corrupt reads {}",
            run.label,
            run.overall(),
            run.worst_hour(),
            run.corrupt()
        );
    }
    out
}

/// The per-hour results as CSV.
pub fn csv(runs: &[Run]) -> String {
    let mut out = String::from(
        "run,hour,reads,hits,misses,corrupt,errors,availability_pct,chunks_lost,chunks_repaired,objects_lost,failovers,reclaims,warmup_gb_s,backup_gb_s,serve_gb_s,warmup_invocations,backup_invocations,availability_cost_usd\n",
    );
    for run in runs {
        for h in &run.hours {
            let gb = |kind: &str| h.gb_seconds.get(kind).copied().unwrap_or(0.0);
            let inv = |kind: &str| h.invocations.get(kind).copied().unwrap_or(0);
            let _ = writeln!(
                out,
                "{},{},{},{},{},{},{},{:.4},{},{},{},{},{},{:.4},{:.4},{:.4},{},{},{:.6}",
                run.label,
                h.hour,
                h.reads,
                h.hits,
                h.misses,
                h.corrupt,
                h.errors,
                h.availability(),
                h.chunks_lost,
                h.chunks_repaired,
                h.objects_lost,
                h.failovers,
                h.reclaims.values().sum::<u64>(),
                gb("warmup"),
                gb("backup"),
                gb("serve"),
                inv("warmup"),
                inv("backup"),
                h.availability_cost()
            );
        }
    }
    out
}

/// Availability per hour, one line per run.
pub fn chart(runs: &[Run]) -> LineChart {
    let lowest = runs.iter().map(Run::worst_hour).fold(100.0, f64::min);
    let floor = if lowest >= 99.0 {
        99.0
    } else if lowest >= 90.0 {
        90.0
    } else {
        (lowest / 10.0).floor() * 10.0
    };
    let mut chart = LineChart::new(
        "Hourly availability under reclaim",
        "simulated hour",
        "objects readable (%)",
    )
    .y_range(floor, 100.0)
    .markers(true);
    for run in runs {
        chart = chart.series(
            run.label.clone(),
            run.hours.iter().map(|h| (h.hour as f64, h.availability())),
        );
    }
    chart
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hour(reads: u64, hits: u64) -> Hour {
        Hour {
            hour: 1,
            reads,
            hits,
            misses: reads - hits,
            ..Hour::default()
        }
    }

    #[test]
    fn availability_is_hits_over_reads() {
        assert_eq!(hour(200, 199).availability(), 99.5);
        assert_eq!(hour(0, 0).availability(), 100.0);
        let run = Run {
            label: "x".into(),
            hours: vec![hour(100, 100), hour(100, 90)],
        };
        assert_eq!(run.overall(), 95.0);
        assert_eq!(run.worst_hour(), 90.0);
        assert!(csv(std::slice::from_ref(&run)).lines().count() == 3);
        assert!(table(&[run]).contains("overall availability 95.000%"));
    }

    #[test]
    fn intervals_are_scaled_for_the_proxy() {
        let settings = Settings {
            time_scale: 60.0,
            backup_interval: Duration::ZERO,
            ..Settings::default()
        };
        let args = proxy_args(&settings);
        let after = |flag: &str| {
            args.iter()
                .position(|a| a == flag)
                .and_then(|i| args.get(i + 1))
                .cloned()
        };
        assert_eq!(after("--warmup-interval").as_deref(), Some("1000ms"));
        assert_eq!(after("--backup-interval").as_deref(), Some("0s"));
        assert_eq!(after("--time-scale").as_deref(), Some("60"));
    }

    #[test]
    fn cost_counts_warmups_and_backups_only() {
        let mut h = hour(1, 1);
        h.gb_seconds.insert("serve".into(), 1000.0);
        h.gb_seconds.insert("warmup".into(), 1.0);
        h.invocations.insert("warmup".into(), 10);
        let expected = PRICE_PER_GB_SECOND + 10.0 * PRICE_PER_REQUEST;
        assert!((h.availability_cost() - expected).abs() < 1e-12);
    }
}
