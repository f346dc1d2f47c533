//! The clients: each runs one operation at a time on keys of its own until
//! the run's deadline, then (optionally) reads every key once more.
//!
//! A client picks an operation by the mix's weights and a key uniformly
//! among its own; a PUT writes a fresh value (see [`super::verify`]) of a
//! size drawn from the distribution. Latency is timed around the client
//! call alone: making a value and checking what a GET returned happen
//! outside it, for large values on the blocking pool so they do not hold up
//! the other clients' I/O on the runtime's threads. Every failed call is
//! counted by operation and error kind, every verdict by its class, and the
//! first few of each are kept word for word for the report.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use infinicache::Client;
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng};
use serde::Serialize;

use super::model::{Expected, KeyModel};
use super::options::{Mix, Op, Sizes};
use super::verify::{self, ValueId, Verdict};

/// Values at least this large are made and checked on the blocking pool.
const BLOCKING_BYTES: usize = 256 * 1024;
/// Messages kept word for word, per list.
pub const KEEP_MESSAGES: usize = 40;
/// Messages kept word for word, per kind of error or wrong answer.
pub const KEEP_PER_KIND: usize = 5;
/// Largest latency the histograms hold, in microseconds (an hour).
const MAX_MICROS: u64 = 3_600_000_000;

/// What every client shares.
pub struct Context {
    /// Random per run: keys and values of other runs never match.
    pub run: u64,
    pub mix: Mix,
    pub sizes: Sizes,
    pub start: Instant,
    pub deadline: Instant,
    /// Set to end the timed phase early (Ctrl-C).
    pub stop: Arc<AtomicBool>,
    pub live: Live,
    pub journal: Journal,
}

impl Context {
    fn running(&self) -> bool {
        !self.stop.load(Ordering::Relaxed) && Instant::now() < self.deadline
    }
}

/// Counters the progress line and the timeline read while clients run.
#[derive(Debug, Default)]
pub struct Live {
    pub ops: [AtomicU64; 3],
    pub errors: AtomicU64,
    /// Wrong answers of every class (corrupt, stale, missing, resurrected).
    pub wrong: AtomicU64,
    /// Value bytes written and read.
    pub bytes: AtomicU64,
}

impl Live {
    pub fn total_ops(&self) -> u64 {
        self.ops.iter().map(|n| n.load(Ordering::Relaxed)).sum()
    }
}

/// The first few errors and wrong answers of each kind, word for word:
/// a burst of one kind (a node going away fails many PUTs at once) does
/// not hide the first occurrence of a rarer one.
#[derive(Debug, Default)]
pub struct Journal {
    errors: Mutex<Kept>,
    wrong: Mutex<Kept>,
}

/// Messages kept, with how many of each kind.
#[derive(Debug, Default)]
struct Kept {
    lines: Vec<String>,
    per_kind: BTreeMap<String, usize>,
}

impl Journal {
    fn keep(list: &Mutex<Kept>, kind: &str, line: String) {
        let mut kept = list
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let seen = kept.per_kind.entry(kind.to_string()).or_default();
        *seen += 1;
        if *seen <= KEEP_PER_KIND && kept.lines.len() < KEEP_MESSAGES {
            kept.lines.push(line);
        }
    }

    fn take(list: &Mutex<Kept>) -> Vec<String> {
        std::mem::take(
            &mut list
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .lines,
        )
    }

    /// The errors kept, in the order they happened.
    pub fn errors(&self) -> Vec<String> {
        Journal::take(&self.errors)
    }

    /// The wrong answers kept, in the order they happened.
    pub fn wrong(&self) -> Vec<String> {
        Journal::take(&self.wrong)
    }
}

/// One operation kind's figures.
#[derive(Debug, Clone)]
pub struct OpStats {
    /// Successful calls.
    pub ops: u64,
    /// Failed calls.
    pub errors: u64,
    /// Value bytes of successful calls (written, or returned).
    pub bytes: u64,
    /// Latency of successful calls, in microseconds.
    pub latency: Histogram<u64>,
}

impl OpStats {
    fn new() -> OpStats {
        OpStats {
            ops: 0,
            errors: 0,
            bytes: 0,
            latency: latency_histogram(),
        }
    }

    fn merge(&mut self, other: &OpStats) {
        self.ops += other.ops;
        self.errors += other.errors;
        self.bytes += other.bytes;
        // Both histograms have the same bounds: adding cannot fail.
        let _ = self.latency.add(&other.latency);
    }
}

fn latency_histogram() -> Histogram<u64> {
    // Constant, valid bounds (low >= 1, high >= 2 * low, precision <= 5):
    // this cannot fail.
    Histogram::new_with_bounds(1, MAX_MICROS, 3).expect("valid histogram bounds")
}

/// What the GETs and DELETEs found, by verdict.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Tally {
    /// GETs answered (every one judged).
    pub gets_checked: u64,
    /// GETs that returned exactly a value the key may hold.
    pub values_matched: u64,
    /// Their bytes, every one compared.
    pub bytes_matched: u64,
    /// GETs that found nothing where nothing was right.
    pub absent_as_expected: u64,
    /// DELETEs answered whose `existed` was judged.
    pub deletes_checked: u64,
    /// Wrong answers: must all be 0.
    pub corrupt: u64,
    pub stale: u64,
    pub missing: u64,
    pub resurrected: u64,
}

impl Tally {
    fn record(&mut self, verdict: &Verdict, get: bool) {
        if get {
            self.gets_checked += 1;
        } else {
            self.deletes_checked += 1;
        }
        match verdict {
            Verdict::Match { bytes } => {
                self.values_matched += 1;
                self.bytes_matched += bytes;
            }
            Verdict::Absent => {
                if get {
                    self.absent_as_expected += 1;
                }
            }
            Verdict::Missing(_) => self.missing += 1,
            Verdict::Stale(_) => self.stale += 1,
            Verdict::Resurrected(_) => self.resurrected += 1,
            Verdict::Corrupt(_) => self.corrupt += 1,
        }
    }

    /// Adds another tally.
    pub fn merge(&mut self, other: &Tally) {
        self.gets_checked += other.gets_checked;
        self.values_matched += other.values_matched;
        self.bytes_matched += other.bytes_matched;
        self.absent_as_expected += other.absent_as_expected;
        self.deletes_checked += other.deletes_checked;
        self.corrupt += other.corrupt;
        self.stale += other.stale;
        self.missing += other.missing;
        self.resurrected += other.resurrected;
    }

    /// Wrong answers of every class; `allow_misses` leaves out missing
    /// values (a cache without an object store may lose them).
    pub fn wrong(&self, allow_misses: bool) -> u64 {
        self.corrupt + self.stale + self.resurrected + if allow_misses { 0 } else { self.missing }
    }
}

/// One client's (or, merged, every client's) figures for one phase.
#[derive(Debug, Clone)]
pub struct Stats {
    pub ops: [OpStats; 3],
    /// Failed calls by `"<OP> <kind>"`.
    pub errors_by_kind: BTreeMap<String, u64>,
    pub tally: Tally,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            ops: [OpStats::new(), OpStats::new(), OpStats::new()],
            errors_by_kind: BTreeMap::new(),
            tally: Tally::default(),
        }
    }
}

impl Stats {
    pub fn op(&self, op: Op) -> &OpStats {
        &self.ops[op.index()]
    }

    pub fn errors(&self) -> u64 {
        self.ops.iter().map(|s| s.errors).sum()
    }

    /// Every operation kind together.
    pub fn total(&self) -> OpStats {
        let mut total = OpStats::new();
        for stats in &self.ops {
            total.merge(stats);
        }
        total
    }

    pub fn merge(&mut self, other: &Stats) {
        for (mine, theirs) in self.ops.iter_mut().zip(&other.ops) {
            mine.merge(theirs);
        }
        for (kind, n) in &other.errors_by_kind {
            *self.errors_by_kind.entry(kind.clone()).or_default() += n;
        }
        self.tally.merge(&other.tally);
    }

    fn succeeded(&mut self, live: &Live, op: Op, bytes: usize, took: Duration) {
        let stats = &mut self.ops[op.index()];
        stats.ops += 1;
        stats.bytes += bytes as u64;
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        stats.latency.saturating_record(micros.max(1));
        live.ops[op.index()].fetch_add(1, Ordering::Relaxed);
        live.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    fn failed(&mut self, ctx: &Context, op: Op, what: String, err: &infinicache::Error) {
        self.ops[op.index()].errors += 1;
        let kind = format!("{op} {:?}", err.kind()).to_ascii_lowercase();
        ctx.live.errors.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(%err, "{what} failed");
        Journal::keep(
            &ctx.journal.errors,
            &kind,
            format!("{} {what}: {err}", elapsed(ctx)),
        );
        *self.errors_by_kind.entry(kind).or_default() += 1;
    }

    fn judged(&mut self, ctx: &Context, verdict: &Verdict, get: bool) {
        self.tally.record(verdict, get);
        let (class, what) = match verdict {
            Verdict::Match { .. } | Verdict::Absent => return,
            Verdict::Missing(what) => ("missing", what),
            Verdict::Stale(what) => ("stale", what),
            Verdict::Resurrected(what) => ("resurrected", what),
            Verdict::Corrupt(what) => ("corrupt", what),
        };
        ctx.live.wrong.fetch_add(1, Ordering::Relaxed);
        tracing::error!("wrong answer ({class}): {what}");
        Journal::keep(
            &ctx.journal.wrong,
            class,
            format!("{} {class}: {what}", elapsed(ctx)),
        );
    }
}

/// `[12.345s]`: time since the run started, for messages.
fn elapsed(ctx: &Context) -> String {
    format!("[{:.3}s]", ctx.start.elapsed().as_secs_f64())
}

/// One client: its connection, its keys and their models.
pub struct Worker {
    index: u32,
    client: Client,
    keys: Vec<KeyModel>,
    rng: StdRng,
}

impl Worker {
    /// Client number `index` with `keys` keys, none written yet.
    pub fn new(index: u32, client: Client, keys: usize) -> Worker {
        Worker {
            index,
            client,
            keys: vec![KeyModel::new(); keys],
            rng: StdRng::from_rng(&mut rand::rng()),
        }
    }

    /// How many keys this client owns.
    pub fn keys(&self) -> usize {
        self.keys.len()
    }

    fn key_name(&self, run: u64, key: usize) -> String {
        format!("soak-{run:016x}-{}-{key}", self.index)
    }

    fn key_id(&self, key: usize) -> u64 {
        (u64::from(self.index) << 32) | key as u64
    }

    /// Runs operations until the deadline (or a stop); returns the figures.
    pub async fn run(&mut self, ctx: &Context) -> Stats {
        let mut stats = Stats::default();
        while ctx.running() {
            let op = ctx.mix.pick(&mut self.rng);
            let key = self.rng.random_range(0..self.keys.len());
            match op {
                Op::Put => {
                    let len = ctx.sizes.pick(&mut self.rng);
                    self.put(ctx, &mut stats, key, len).await;
                }
                Op::Get => self.get(ctx, &mut stats, key).await,
                Op::Delete => self.delete(ctx, &mut stats, key).await,
            }
        }
        stats
    }

    /// Reads every key once and judges it (the final check).
    pub async fn check_all(&mut self, ctx: &Context) -> Stats {
        let mut stats = Stats::default();
        for key in 0..self.keys.len() {
            self.get(ctx, &mut stats, key).await;
        }
        stats
    }

    async fn put(&mut self, ctx: &Context, stats: &mut Stats, key: usize, len: usize) {
        let name = self.key_name(ctx.run, key);
        let written = self.keys[key].begin_put(len);
        let id = ValueId {
            run: ctx.run,
            key: self.key_id(key),
            seq: written.seq,
        };
        let value = make_value(id, len).await;
        let started = Instant::now();
        let result = self.client.put(name.as_str(), value).await;
        let took = started.elapsed();
        match result {
            Ok(_) => {
                self.keys[key].put_acked(written);
                stats.succeeded(&ctx.live, Op::Put, len, took);
            }
            Err(err) => {
                // The PUT may still commit: the key may hold either value.
                self.keys[key].put_failed(written);
                let what = format!("PUT {name} (write #{}, {len} bytes)", written.seq);
                stats.failed(ctx, Op::Put, what, &err);
            }
        }
    }

    async fn get(&mut self, ctx: &Context, stats: &mut Stats, key: usize) {
        let name = self.key_name(ctx.run, key);
        let expected = self.keys[key].expected().clone();
        let started = Instant::now();
        let result = self.client.get(name.as_str()).await;
        let took = started.elapsed();
        match result {
            Ok(got) => {
                let len = got.as_ref().map_or(0, Bytes::len);
                stats.succeeded(&ctx.live, Op::Get, len, took);
                let verdict = judge(ctx.run, name, self.key_id(key), expected, got).await;
                stats.judged(ctx, &verdict, true);
            }
            Err(err) => {
                let what = format!("GET {name} (expected {})", expected.describe());
                stats.failed(ctx, Op::Get, what, &err);
            }
        }
    }

    async fn delete(&mut self, ctx: &Context, stats: &mut Stats, key: usize) {
        let name = self.key_name(ctx.run, key);
        let started = Instant::now();
        let result = self.client.delete(name.as_str()).await;
        let took = started.elapsed();
        match result {
            Ok(existed) => {
                stats.succeeded(&ctx.live, Op::Delete, 0, took);
                let verdict = verify::judge_delete(&name, self.keys[key].expected(), existed);
                stats.judged(ctx, &verdict, false);
                self.keys[key].delete_acked();
            }
            Err(err) => {
                self.keys[key].delete_failed();
                let what = format!("DELETE {name}");
                stats.failed(ctx, Op::Delete, what, &err);
            }
        }
    }
}

/// The value `id` writes, made on the blocking pool when large.
async fn make_value(id: ValueId, len: usize) -> Bytes {
    if len < BLOCKING_BYTES {
        return verify::generate(id, len);
    }
    match tokio::task::spawn_blocking(move || verify::generate(id, len)).await {
        Ok(value) => value,
        // The pool is gone (runtime shutting down): make it here.
        Err(_) => verify::generate(id, len),
    }
}

/// Judges a GET, on the blocking pool when the value is large.
async fn judge(
    run: u64,
    name: String,
    key_id: u64,
    expected: Expected,
    got: Option<Bytes>,
) -> Verdict {
    let large = got.as_ref().is_some_and(|got| got.len() >= BLOCKING_BYTES);
    let work = move || verify::judge_get(run, &name, key_id, &expected, got.as_deref());
    if !large {
        return work();
    }
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|err| Verdict::Corrupt(format!("the tool could not check a GET: {err}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_journal_keeps_the_first_few_of_every_kind() {
        let journal = Journal::default();
        for i in 0..100 {
            Journal::keep(&journal.errors, "put unavailable", format!("put {i}"));
        }
        Journal::keep(&journal.errors, "get timeout", "get 0".into());
        let kept = journal.errors();
        assert_eq!(kept.len(), KEEP_PER_KIND + 1);
        assert_eq!(kept.first().map(String::as_str), Some("put 0"));
        assert_eq!(kept.last().map(String::as_str), Some("get 0"));
        assert!(journal.wrong().is_empty());
    }

    #[test]
    fn tallies_count_every_verdict_once() {
        let mut tally = Tally::default();
        tally.record(&Verdict::Match { bytes: 10 }, true);
        tally.record(&Verdict::Absent, true);
        tally.record(&Verdict::Absent, false);
        tally.record(&Verdict::Missing("m".into()), true);
        tally.record(&Verdict::Stale("s".into()), true);
        tally.record(&Verdict::Resurrected("r".into()), false);
        tally.record(&Verdict::Corrupt("c".into()), true);
        assert_eq!(tally.gets_checked, 5);
        assert_eq!(tally.deletes_checked, 2);
        assert_eq!((tally.values_matched, tally.bytes_matched), (1, 10));
        assert_eq!(tally.absent_as_expected, 1);
        assert_eq!(tally.wrong(false), 4);
        assert_eq!(tally.wrong(true), 3);
        let mut twice = tally.clone();
        twice.merge(&tally);
        assert_eq!(twice.gets_checked, 10);
        assert_eq!(twice.wrong(false), 8);
    }

    #[test]
    fn stats_merge_latencies_and_error_kinds() {
        let live = Live::default();
        let mut one = Stats::default();
        one.succeeded(&live, Op::Put, 100, Duration::from_millis(2));
        one.succeeded(&live, Op::Get, 50, Duration::from_millis(1));
        one.errors_by_kind.insert("put timeout".into(), 2);
        let mut all = Stats::default();
        all.merge(&one);
        all.merge(&one);
        assert_eq!(all.op(Op::Put).ops, 2);
        assert_eq!(all.op(Op::Put).bytes, 200);
        assert_eq!(all.errors_by_kind["put timeout"], 4);
        let total = all.total();
        assert_eq!((total.ops, total.bytes), (4, 300));
        assert_eq!(total.latency.len(), 4);
        assert_eq!(live.total_ops(), 2);
        assert_eq!(live.bytes.load(Ordering::Relaxed), 150);
    }
}
