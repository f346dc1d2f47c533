//! Consistency under concurrency: several clients PUT, GET and DELETE the
//! same few keys at once, and the history they record must be linearizable
//! for a register per key — checked by `infinicache_tests::linearizability`
//! — while no GET ever returns torn, mixed or corrupted bytes.
//!
//! Every written value describes itself: a header naming the key, the
//! writer and the writer's sequence number, and the length, followed by
//! bytes from a generator seeded by those. A reader can therefore tell
//! exactly which PUT a value came from, and that every byte is the one that
//! PUT wrote: chunks of two versions decoded together, or a value read from
//! the wrong key, cannot go unnoticed.
//!
//! The runs are a fixed number of operations, not a duration, and the seed
//! is printed (set `INFINICACHE_CONSISTENCY_SEED` to replay a run's choice
//! of operations; the interleaving is up to the scheduler).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use infinicache::Client;
use infinicache_tests::harness::TestCache;
use infinicache_tests::linearizability::{Action, History, Operation, ValueId, check};
use tokio::sync::watch;

/// Shared keys: few, so that clients collide on them all the time.
const KEYS: usize = 3;
/// Concurrent clients, each with its own connection.
const CLIENTS: usize = 5;
/// Operations per client: 400 in all, about 133 per key, which keeps the
/// search of the checker small (an inconclusive check fails the test).
const OPS_PER_CLIENT: usize = 80;

/// Header: magic, key index, writer, sequence number (u32 each), length (u64).
const HEADER: usize = 24;
const MAGIC: u32 = 0x1CAC_4E00;
/// The largest value: several chunks of RS(4+2) at any size above a few KiB.
const MAX_VALUE: u64 = 400 * 1024;

/// SplitMix64: a small, fast, seedable generator, enough for test data and
/// for choosing operations reproducibly.
struct Prng(u64);

impl Prng {
    fn new(seed: u64) -> Prng {
        Prng(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform enough in `0..n` for a test (`n > 0`).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn fill(&mut self, out: &mut [u8]) {
        for chunk in out.chunks_mut(8) {
            let word = self.next().to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
    }
}

/// The id of the `seq`-th value written by `writer` (unique in a run).
fn value_id(writer: u32, seq: u32) -> ValueId {
    (u64::from(writer) << 32) | u64::from(seq)
}

fn body_seed(key: u32, writer: u32, seq: u32) -> u64 {
    (u64::from(key) << 48) ^ (u64::from(writer) << 32) ^ u64::from(seq) ^ 0x5EED
}

/// The value `writer` writes as its `seq`-th PUT, to key number `key`.
fn encode(key: u32, writer: u32, seq: u32, len: usize) -> Bytes {
    let len = len.max(HEADER);
    let mut data = vec![0u8; len];
    data[0..4].copy_from_slice(&MAGIC.to_le_bytes());
    data[4..8].copy_from_slice(&key.to_le_bytes());
    data[8..12].copy_from_slice(&writer.to_le_bytes());
    data[12..16].copy_from_slice(&seq.to_le_bytes());
    data[16..24].copy_from_slice(&(len as u64).to_le_bytes());
    Prng::new(body_seed(key, writer, seq)).fill(&mut data[HEADER..]);
    data.into()
}

/// Checks that `data`, read from key number `key`, is exactly a value some
/// writer wrote to that key; returns its id.
fn verify(key: u32, data: &[u8]) -> Result<ValueId, String> {
    let field = |at: usize| -> u32 {
        let mut word = [0u8; 4];
        word.copy_from_slice(&data[at..at + 4]);
        u32::from_le_bytes(word)
    };
    if data.len() < HEADER {
        return Err(format!(
            "{} bytes, shorter than the {HEADER}-byte header",
            data.len()
        ));
    }
    if field(0) != MAGIC {
        return Err(format!(
            "bad magic {:#x}: not a value of this test",
            field(0)
        ));
    }
    let (from_key, writer, seq) = (field(4), field(8), field(12));
    let mut len = [0u8; 8];
    len.copy_from_slice(&data[16..24]);
    let len = u64::from_le_bytes(len);
    if from_key != key {
        return Err(format!(
            "value #{seq} of writer {writer} for key {from_key} returned by key {key}"
        ));
    }
    if len != data.len() as u64 {
        return Err(format!(
            "value #{seq} of writer {writer} should have {len} bytes, got {}",
            data.len()
        ));
    }
    let expected = encode(key, writer, seq, data.len());
    if let Some(at) = expected.iter().zip(data).position(|(a, b)| a != b) {
        let differing = expected.iter().zip(data).filter(|(a, b)| a != b).count();
        return Err(format!(
            "value #{seq} of writer {writer} ({len} bytes) differs from what was written \
             from byte {at} on ({differing} bytes differ): torn, mixed or corrupted"
        ));
    }
    Ok(value_id(writer, seq))
}

/// A value size: from a few bytes to a few hundred KiB, so that objects have
/// from one to many chunks of every size.
fn value_size(rng: &mut Prng) -> usize {
    let size = match rng.below(4) {
        0 => HEADER as u64 + rng.below(40),
        1 => 64 + rng.below(4 * 1024),
        2 => 4 * 1024 + rng.below(60 * 1024),
        _ => 64 * 1024 + rng.below(MAX_VALUE - 64 * 1024),
    };
    size as usize
}

fn key_name(key: usize) -> String {
    format!("shared-{key}")
}

/// What the clients of a run share.
struct Run {
    seed: u64,
    history: History,
    /// Reads that returned bytes no PUT wrote.
    corrupt: Mutex<Vec<String>>,
    /// Failed operations (reads are dropped, writes get an unknown outcome).
    errors: Mutex<Vec<String>>,
    /// Operations completed so far, by all clients.
    progress: watch::Sender<usize>,
    /// Reads that returned another client's value.
    foreign_reads: AtomicUsize,
}

impl Run {
    fn new() -> Arc<Run> {
        let seed = match std::env::var("INFINICACHE_CONSISTENCY_SEED") {
            Ok(seed) => seed
                .parse()
                .expect("INFINICACHE_CONSISTENCY_SEED is a number"),
            Err(_) => rand::random(),
        };
        println!("seed {seed} (INFINICACHE_CONSISTENCY_SEED={seed} replays the choices)");
        Arc::new(Run {
            seed,
            history: History::new(),
            corrupt: Mutex::new(Vec::new()),
            errors: Mutex::new(Vec::new()),
            progress: watch::channel(0).0,
            foreign_reads: AtomicUsize::new(0),
        })
    }

    fn note(list: &Mutex<Vec<String>>, what: String) {
        list.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(what);
    }

    fn errors(&self) -> Vec<String> {
        self.errors
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// One client's share of the run: `OPS_PER_CLIENT` random operations. Before
/// operation number `pause.0` it waits until `pause.1` says go.
async fn client_task(
    run: Arc<Run>,
    client: Client,
    writer: usize,
    mut pause: Option<(usize, watch::Receiver<bool>)>,
) {
    let mut rng = Prng::new(run.seed ^ (writer as u64).wrapping_mul(0xA24B_AED4_963E_E407));
    let mut seq: u32 = 0;
    for i in 0..OPS_PER_CLIENT {
        if let Some((at, go)) = pause.as_mut()
            && *at == i
        {
            go.wait_for(|go| *go).await.expect("the disruptor is gone");
        }
        let key = rng.below(KEYS as u64) as usize;
        let name = key_name(key);
        let roll = rng.below(100);
        let call = run.history.now();
        let record = |action: Action, ret: Option<u64>| {
            run.history
                .record(Operation::new(name.clone(), writer, action, call, ret));
        };
        if roll < 40 {
            seq += 1;
            let value = encode(key as u32, writer as u32, seq, value_size(&mut rng));
            let len = value.len();
            let result = client.put(name.as_str(), value).await;
            let ret = run.history.now();
            let id = value_id(writer as u32, seq);
            match result {
                Ok(_version) => record(Action::Write(id), Some(ret)),
                Err(err) => {
                    // It may or may not have taken effect, now or later.
                    record(Action::Write(id), None);
                    Run::note(
                        &run.errors,
                        format!("client {writer}: PUT {name} ({len} bytes): {err}"),
                    );
                }
            }
        } else if roll < 90 {
            let result = client.get(name.as_str()).await;
            let ret = run.history.now();
            match result {
                Ok(None) => record(Action::Read(None), Some(ret)),
                Ok(Some(data)) => match verify(key as u32, &data) {
                    Ok(id) => {
                        if id >> 32 != writer as u64 {
                            run.foreign_reads.fetch_add(1, Ordering::Relaxed);
                        }
                        record(Action::Read(Some(id)), Some(ret));
                    }
                    Err(why) => Run::note(
                        &run.corrupt,
                        format!("client {writer}: GET {name} at {call} ns: {why}"),
                    ),
                },
                // A failed read observed nothing: it is left out.
                Err(err) => Run::note(&run.errors, format!("client {writer}: GET {name}: {err}")),
            }
        } else {
            let result = client.delete(name.as_str()).await;
            let ret = run.history.now();
            match result {
                Ok(existed) => record(
                    Action::Delete {
                        existed: Some(existed),
                    },
                    Some(ret),
                ),
                Err(err) => {
                    record(Action::Delete { existed: None }, None);
                    Run::note(
                        &run.errors,
                        format!("client {writer}: DELETE {name}: {err}"),
                    );
                }
            }
        }
        run.progress.send_modify(|done| *done += 1);
    }
}

/// Runs every client to completion; `pause` as for [`client_task`].
async fn run_clients(
    cache: &TestCache,
    run: &Arc<Run>,
    pause: Option<(usize, watch::Receiver<bool>)>,
) {
    let mut tasks = Vec::new();
    for writer in 0..CLIENTS {
        let client = cache.client(4, 2).await;
        let pause = pause.clone();
        tasks.push(tokio::spawn(client_task(
            run.clone(),
            client,
            writer,
            pause,
        )));
    }
    for task in tasks {
        task.await.expect("a client task panicked");
    }
}

/// Fails on any torn read or non-linearizable key; prints what was checked.
fn assert_consistent(run: &Run) {
    let corrupt = run
        .corrupt
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    assert!(
        corrupt.is_empty(),
        "seed {}: {} GETs returned data no PUT wrote:\n{}",
        run.seed,
        corrupt.len(),
        corrupt.join("\n")
    );
    let operations = run.history.operations();
    assert_eq!(
        operations.len() + run.errors().iter().filter(|e| e.contains(": GET ")).count(),
        CLIENTS * OPS_PER_CLIENT,
        "every operation is recorded, or is a failed read"
    );
    let summary = match check(&operations) {
        Ok(summary) => summary,
        Err(err) => panic!("seed {}: {err}", run.seed),
    };
    assert_eq!(summary.keys.len(), KEYS, "every key was used: {summary:?}");
    for (key, figures) in &summary.keys {
        let values_read = operations
            .iter()
            .filter(|op| &op.key == key && matches!(op.action, Action::Read(Some(_))))
            .count();
        println!(
            "{key}: {} operations ({} of unknown outcome, {values_read} reads of a value), \
             linearizable, {} search steps",
            figures.operations, figures.unknown, figures.steps
        );
        assert!(
            values_read > 0,
            "seed {}: no GET of {key} found a value: the run checked little",
            run.seed
        );
    }
    println!(
        "{} reads returned another client's value",
        run.foreign_reads.load(Ordering::Relaxed)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_clients_see_one_linearizable_register_per_key() {
    let cache = TestCache::small(&[]).await;
    let run = Run::new();
    run_clients(&cache, &run, None).await;
    let errors = run.errors();
    for error in &errors {
        println!("    {error}");
    }
    // Every node is up: nothing fails. In particular a GET racing a PUT or
    // DELETE of its key keeps the version it announced readable (its read
    // lease holds back the clean-up of that version until it is done).
    assert!(
        errors.is_empty(),
        "seed {}: {} operations failed with every node up:\n{}",
        run.seed,
        errors.len(),
        errors.join("\n")
    );
    assert_consistent(&run);
    cache.stop().await;
}

/// Runs the clients on `cache` while `reclaims` happen: each step reclaims
/// the environments of the given nodes once that many operations are done.
/// Clients wait at three quarters of their operations until every step is
/// done, so the reclaims always fall in the middle of the run, however fast
/// or slow it is; then the history is checked.
async fn run_with_reclaims(cache: TestCache, reclaims: &[(usize, &[usize])]) {
    let cache = Arc::new(cache);
    let run = Run::new();
    let total = CLIENTS * OPS_PER_CLIENT;
    let (go, wait) = watch::channel(false);
    let disruptor = {
        let cache = cache.clone();
        let mut progress = run.progress.subscribe();
        let reclaims: Vec<(usize, Vec<usize>)> = reclaims
            .iter()
            .map(|(after, nodes)| (*after, nodes.to_vec()))
            .collect();
        tokio::spawn(async move {
            for (after, nodes) in reclaims {
                progress
                    .wait_for(|done| *done >= after)
                    .await
                    .expect("progress channel");
                for &node in &nodes {
                    let reclaimed = cache.reclaim(&format!("infinicache-node-{node}")).await;
                    assert!(reclaimed >= 1, "node {node} had no environment to reclaim");
                }
                println!(
                    "reclaimed nodes {nodes:?} after {} operations",
                    *progress.borrow()
                );
            }
            go.send_replace(true);
        })
    };
    run_clients(&cache, &run, Some((OPS_PER_CLIENT * 3 / 4, wait))).await;
    disruptor.await.expect("the disruptor panicked");

    // Operations may fail while a loss is being noticed (reads are then
    // dropped from the history, writes get an unknown outcome); what matters
    // is that none returns wrong or stale data. Failures stay rare, or the
    // history would check little.
    let errors = run.errors();
    println!("{} operations failed", errors.len());
    for error in &errors {
        println!("    {error}");
    }
    assert!(
        errors.len() <= total / 10,
        "seed {}: {} of {total} operations failed",
        run.seed,
        errors.len()
    );
    assert_consistent(&run);
    // (Bounded: the harness's HTTP helper has no timeout of its own, and a
    // wedged proxy should fail the test, not hang it.)
    let status = tokio::time::timeout(Duration::from_secs(60), cache.status())
        .await
        .expect("the proxy did not answer GET /status within a minute");
    let counters = &status["counters"];
    println!(
        "chunks lost {}, repaired {}; objects lost {}",
        counters["chunks_lost"], counters["chunks_repaired"], counters["objects_lost"]
    );
    match Arc::try_unwrap(cache) {
        Ok(cache) => cache.stop().await,
        Err(_) => panic!("the cache is still shared"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_history_stays_linearizable_while_nodes_are_reclaimed() {
    // Two nodes (r = 2) lose their environment, one after a quarter of the
    // operations and one after half, while the clients go on: objects stay
    // decodable from memory, with chunks being lost and repaired meanwhile.
    let total = CLIENTS * OPS_PER_CLIENT;
    let cache = TestCache::small(&[]).await;
    run_with_reclaims(cache, &[(total / 4, &[1]), (total / 2, &[4])]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_history_stays_linearizable_when_every_node_is_reclaimed() {
    // Every environment is reclaimed in the middle of the run: memory holds
    // nothing, and objects survive only in the object store (synchronous
    // write-through, so an acknowledged PUT is durable) and come back from
    // it while the clients keep writing and deleting.
    let total = CLIENTS * OPS_PER_CLIENT;
    let cache = TestCache::small(&["--cos", "dir", "--cos-write-mode", "sync"]).await;
    run_with_reclaims(cache, &[(total / 2, &[0, 1, 2, 3, 4, 5])]).await;
}

#[test]
fn torn_mixed_and_misplaced_values_are_detected() {
    let a = encode(1, 2, 3, 50_000);
    let b = encode(1, 4, 5, 50_000);
    assert_eq!(verify(1, &a), Ok(value_id(2, 3)));
    assert_eq!(verify(1, &b), Ok(value_id(4, 5)));
    assert_eq!(
        verify(1, &encode(1, 2, 3, 3)),
        Ok(value_id(2, 3)),
        "header only"
    );

    // Half of one version, half of another (chunks of two PUTs decoded
    // together), either way round.
    let mut mixed = a.to_vec();
    mixed[25_000..].copy_from_slice(&b[25_000..]);
    let err = verify(1, &mixed).expect_err("mixed");
    assert!(err.contains("from byte 25000"), "{err}");
    let mut mixed = b.to_vec();
    mixed[..HEADER].copy_from_slice(&a[..HEADER]);
    verify(1, &mixed).expect_err("foreign header");
    // One flipped bit.
    let mut flipped = a.to_vec();
    flipped[40_000] ^= 1;
    verify(1, &flipped).expect_err("flipped bit");
    // Truncated, padded, empty, or another key's value.
    verify(1, &a[..30_000]).expect_err("truncated");
    let mut padded = a.to_vec();
    padded.push(0);
    verify(1, &padded).expect_err("padded");
    verify(1, &[]).expect_err("empty");
    let err = verify(0, &a).expect_err("another key's value");
    assert!(err.contains("for key 1 returned by key 0"), "{err}");
}
