//! The load and soak tool (`soak`): hundreds of concurrent clients doing
//! PUT, GET and DELETE of random sizes for a bounded time against a real
//! cache while its function environments are reclaimed, every answer
//! checked; errors (which must be zero), throughput, latency and the
//! proxy's peak memory reported.
//!
//! A run:
//!
//! 1. starts a cache ([`cache`]): the release proxy with its local Lambda
//!    platform as in production (warm-ups, delta-sync backups, the
//!    directory object store) on a compressed clock, so the platform's own
//!    policy reclaims environments (idle lifetime, maximum lifetime, random
//!    reclaims) within minutes; or it is given a running proxy;
//! 2. connects the clients ([`workload`]): each its own
//!    `infinicache::Client` (or a share of fewer connections), each with
//!    keys nobody else touches, so each knows exactly what its keys hold
//!    ([`model`]); values are self-describing, so every GET is checked
//!    byte for byte against what was written without keeping copies
//!    ([`verify`]);
//! 3. runs them for the duration while [`chaos`] reclaims one environment
//!    at an interval through the platform's admin API, serving or not, and
//!    [`timeline`] samples the totals and the proxy's memory every second;
//! 4. reads every key once more (the final check), reads the proxy's and
//!    the platform's counters, and the proxy's peak resident memory
//!    (`VmHWM`);
//! 5. reports ([`report`]): operations, errors by kind, wrong answers by
//!    class (corrupt, stale, missing, resurrected), throughput, latency
//!    percentiles per operation, peak memory, reclaims, failovers and
//!    repairs. A run passes only with no failed call and no wrong answer.

pub mod cache;
pub mod chaos;
pub mod model;
pub mod options;
pub mod report;
pub mod timeline;
pub mod verify;
pub mod workload;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures::stream::{self, StreamExt, TryStreamExt};
use infinicache::Client;

pub use options::Settings;
pub use report::Report;
pub use timeline::Progress;

use cache::{Cache, process_memory};
use chaos::Reclaimer;
use report::{Check, OpRow, ProxyMemory};
use timeline::Sampler;
use workload::{Context, Journal, Live, Stats, Worker};

/// Connections opened at once while connecting the clients.
const CONNECT_PARALLELISM: usize = 32;
/// How long one connection may take to open.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs the soak test of `settings`: starts (or finds) the cache, drives
/// it, stops what it started. `stop` ends the timed phase early (then the
/// final check is skipped). Fails only if the run could not take place;
/// failed operations and wrong answers are in the report.
pub async fn run(
    settings: &Settings,
    progress: Progress,
    stop: Arc<AtomicBool>,
) -> Result<Report, String> {
    settings.validate()?;
    let note = |line: &str| {
        if progress != Progress::Off {
            eprintln!("{line}");
        }
    };
    note("soak: starting the cache");
    let cache = Cache::open(settings).await?;
    let result = drive(settings, &cache, progress, stop, &note).await;
    cache.stop().await;
    result
}

async fn drive(
    settings: &Settings,
    cache: &Cache,
    progress: Progress,
    stop: Arc<AtomicBool>,
    note: &dyn Fn(&str),
) -> Result<Report, String> {
    let run_id: u64 = rand::random();
    let before = cache.snapshot().await;
    note(&format!(
        "soak: {}; connecting {} clients",
        cache.description, settings.clients
    ));
    let clients = connect(settings, &cache.client_addr).await?;
    let workers: Vec<Worker> = (0..settings.clients)
        .map(|i| {
            let client = clients[i % clients.len()].clone();
            Worker::new(i as u32, client, settings.keys_per_client)
        })
        .collect();
    let reclaiming = cache.platform.is_some() && !settings.reclaim_every.is_zero();
    note(&format!(
        "soak: run {run_id:016x}: {} clients for {}, mix {}, sizes {}{}",
        settings.clients,
        humantime::format_duration(settings.duration),
        settings.mix,
        settings.sizes,
        if reclaiming {
            format!(
                ", reclaiming one {} environment every {}",
                settings.reclaim_target,
                humantime::format_duration(settings.reclaim_every)
            )
        } else {
            String::new()
        }
    ));

    let start = Instant::now();
    let ctx = Arc::new(Context {
        run: run_id,
        mix: settings.mix,
        sizes: settings.sizes,
        start,
        deadline: start + settings.duration,
        stop,
        live: Live::default(),
        journal: Journal::default(),
    });
    let timed = timed_phase(settings, cache, &ctx, workers, progress).await?;
    let check = if settings.final_check && !timed.stopped_early {
        note(&format!(
            "soak: final check: reading all {} keys",
            settings.clients * settings.keys_per_client
        ));
        Some(final_check(&ctx, timed.workers).await?)
    } else {
        None
    };
    let delta = cache.snapshot().await.since(&before);
    let memory = cache.pid.and_then(process_memory);
    let seconds = timed.seconds;
    let stats = timed.stats;
    let mut ops: Vec<OpRow> = options::Op::ALL
        .iter()
        .map(|&op| OpRow::new(op.label(), stats.op(op), seconds))
        .collect();
    ops.push(OpRow::new("all", &stats.total(), seconds));
    Ok(Report {
        run_id: format!("{run_id:016x}"),
        cache: cache.description.clone(),
        clients: settings.clients,
        connections: settings.connection_count(),
        keys_per_client: settings.keys_per_client,
        mix: settings.mix.to_string(),
        sizes: settings.sizes.to_string(),
        data_shards: settings.data_shards,
        parity_shards: settings.parity_shards,
        planned_seconds: settings.duration.as_secs_f64(),
        seconds,
        stopped_early: timed.stopped_early,
        ops,
        errors_by_kind: stats.errors_by_kind,
        error_samples: ctx.journal.errors(),
        verification: stats.tally,
        final_check: check,
        wrong_samples: ctx.journal.wrong(),
        allow_misses: settings.allow_misses,
        proxy_memory: ProxyMemory {
            pid: cache.pid,
            // The kernel updates VmHWM lazily (RSS counters are batched per
            // thread), so a sample of VmRSS can exceed it by a few pages.
            peak_bytes: memory
                .map(|m| m.peak.max(m.rss))
                .max(timed.timeline.peak_rss_bytes),
            peak_sampled_bytes: timed.timeline.peak_rss_bytes,
            end_bytes: memory.map(|m| m.rss),
        },
        reclaimer: timed.reclaims,
        platform: delta.platform,
        counters: delta.counters,
        timeline: timed.timeline.samples,
    })
}

/// What the timed phase produced.
struct Timed {
    /// The clients, for the final check.
    workers: Vec<Worker>,
    stats: Stats,
    /// Wall time from the start to the end of the last operation.
    seconds: f64,
    stopped_early: bool,
    timeline: timeline::Timeline,
    reclaims: Option<chaos::ReclaimTally>,
}

/// Runs the clients until the deadline, with the sampler and (when the
/// platform is known and an interval set) the reclaimer beside them.
async fn timed_phase(
    settings: &Settings,
    cache: &Cache,
    ctx: &Arc<Context>,
    workers: Vec<Worker>,
    progress: Progress,
) -> Result<Timed, String> {
    let sampler = Sampler::start(ctx.clone(), cache.pid, settings.duration, progress);
    let reclaimer = cache
        .platform
        .filter(|_| !settings.reclaim_every.is_zero())
        .map(|platform| {
            Reclaimer::start(platform, settings.reclaim_every, settings.reclaim_target)
        });
    let ran = run_phase(ctx, workers, Phase::Timed).await;
    let seconds = ctx.start.elapsed().as_secs_f64();
    // Stopped whatever happened to the clients, so no task outlives the run.
    let timeline = sampler.stop().await;
    let reclaims = match reclaimer {
        Some(reclaimer) => Some(reclaimer.stop().await),
        None => None,
    };
    let (workers, stats) = ran?;
    Ok(Timed {
        workers,
        stats,
        seconds,
        stopped_early: ctx.stop.load(Ordering::Relaxed)
            && seconds < settings.duration.as_secs_f64(),
        timeline,
        reclaims,
    })
}

/// Reads every key once and judges it.
async fn final_check(ctx: &Arc<Context>, workers: Vec<Worker>) -> Result<Check, String> {
    let started = Instant::now();
    let keys = workers.iter().map(Worker::keys).sum::<usize>() as u64;
    let (_, stats) = run_phase(ctx, workers, Phase::Check).await?;
    Ok(Check {
        keys,
        seconds: started.elapsed().as_secs_f64(),
        errors: stats.errors(),
        errors_by_kind: stats.errors_by_kind,
        tally: stats.tally,
    })
}

/// The two phases every client runs.
#[derive(Debug, Clone, Copy)]
enum Phase {
    /// Mixed operations until the deadline.
    Timed,
    /// Every key read once.
    Check,
}

/// Runs `phase` on every worker at once; returns the workers (for the next
/// phase) and their merged figures.
async fn run_phase(
    ctx: &Arc<Context>,
    workers: Vec<Worker>,
    phase: Phase,
) -> Result<(Vec<Worker>, Stats), String> {
    let tasks: Vec<_> = workers
        .into_iter()
        .map(|mut worker| {
            let ctx = ctx.clone();
            tokio::spawn(async move {
                let stats = match phase {
                    Phase::Timed => worker.run(&ctx).await,
                    Phase::Check => worker.check_all(&ctx).await,
                };
                (worker, stats)
            })
        })
        .collect();
    let mut merged = Stats::default();
    let mut back = Vec::with_capacity(tasks.len());
    for task in tasks {
        let (worker, stats) = task
            .await
            .map_err(|err| format!("a client task failed: {err}"))?;
        merged.merge(&stats);
        back.push(worker);
    }
    Ok((back, merged))
}

/// Opens the clients' connections.
async fn connect(settings: &Settings, addr: &str) -> Result<Vec<Client>, String> {
    let n = settings.connection_count();
    stream::iter(0..n)
        .map(|i| async move {
            let mut builder = Client::builder()
                .proxy(addr)
                .data_shards(settings.data_shards)
                .parity_shards(settings.parity_shards)
                .timeout(settings.op_timeout)
                .connect_timeout(CONNECT_TIMEOUT)
                .name(format!("infinicache-soak/{i}"));
            if let Some(secret) = &settings.secret {
                builder = builder.secret(secret.clone());
            }
            builder
                .connect()
                .await
                .map_err(|err| format!("cannot connect client {i} to the proxy at {addr}: {err}"))
        })
        .buffer_unordered(CONNECT_PARALLELISM)
        .try_collect()
        .await
}
