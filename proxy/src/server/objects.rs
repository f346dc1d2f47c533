//! The object operations both frontends share: PUT, GET, DELETE, EXISTS.
//!
//! The native protocol's clients erasure-code their objects themselves and
//! send chunks; the RESP frontend receives whole values, so the proxy codes
//! them with the same codec ([`infinicache::ObjectCodec`], the proxy's
//! default `k` and `r`) and then takes exactly the same path: one chunk
//! request per chunk sharing a random `put_id`, joined in the metadata,
//! stored on the nodes and the object store, committed when the last one
//! reports. GETs likewise announce one version, fetch every chunk of it from
//! the nodes (or the object store) and decode from the first `k` that
//! verify. An object written through either frontend is therefore an
//! ordinary object to the other, and every guarantee (visibility after the
//! reply, no mixed versions, repair, durability) holds for both.
//!
//! Objects may expire (`SET ... EX` on the RESP frontend). An expired object
//! is invisible to both frontends; it is removed like a DELETE (memory,
//! manifest, object store) when it is next looked up, and by a periodic
//! sweep ([`spawn_expiry_sweep`]) for keys nobody reads.

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::future::BoxFuture;
use infinicache::CodecParams;
use infinicache::codec::{Chunk, CodecError};
use infinicache::protocol::{
    ClientReply, ErrorCode, ErrorReply, Key, NodeReply, NodeRequest, PutChunk,
};
use tokio::task::{self, JoinSet};

use crate::cluster::Cluster;
use crate::cluster::leases::ReadLease;
use crate::cluster::metadata::{
    CONDITION_NOT_MET, ChunkLoc, Expiry, Joined, ObjectMeta, PutOptions, unix_millis,
};
use crate::cos::settings::WriteMode;

/// Objects at least this large are encoded and decoded on the blocking pool,
/// so one large value does not stall every other connection on the worker.
const OFFLOAD_THRESHOLD: usize = 1 << 20;

/// The longest a GET that already holds `k` chunks waits for a missing data
/// chunk before rebuilding it from parity (as the native client does).
const MAX_DATA_GRACE: Duration = Duration::from_millis(1);

/// How often the sweep looks for expired objects, and how many it removes
/// in one go before looking again at once.
const SWEEP_INTERVAL: Duration = Duration::from_secs(1);
const SWEEP_BATCH: usize = 1000;

// ---------------------------------------------------------------- PUT

/// One chunk of a native PUT: joins the PUT (starting it if this is its
/// first chunk), stores the chunk and waits for the whole PUT to commit or
/// fail. Every chunk request of the PUT gets the same outcome.
pub async fn put_chunk(cluster: &Arc<Cluster>, put: PutChunk) -> Result<u64, ErrorReply> {
    let PutChunk { key, put_id, chunk } = put;
    validate(cluster, &chunk)?;
    let joined = cluster
        .meta()
        .join_put(&key, put_id, &chunk.header, Instant::now())?;
    store_joined(cluster, key, put_id, chunk, joined, None).await
}

/// Stores a whole value under `key`: encodes it with the proxy's default
/// codec and PUTs every chunk, as a native client would. Returns the new
/// version, or `None` if the PUT's condition (`SET NX` / `XX`) did not hold,
/// in which case nothing changed.
pub async fn put_object(
    cluster: &Arc<Cluster>,
    key: Key,
    value: Bytes,
    options: PutOptions,
) -> Result<Option<u64>, ErrorReply> {
    let max = cluster.config().max_object_size;
    let len = value.len();
    if u64::try_from(len).map_or(true, |len| len > max) {
        return Err(ErrorReply::new(
            ErrorCode::TooLarge,
            format!("object of {len} bytes exceeds the limit of {max} bytes"),
        ));
    }
    let codec = cluster.codec(cluster.default_params());
    let chunks = offload(len, move || codec.encode(&value, 0))
        .await?
        .map_err(|err| ErrorReply::new(ErrorCode::Internal, format!("encoding failed: {err}")))?;
    let put_id = rand::random::<u64>();

    // Every chunk joins at once, under one lock: the first starts the PUT
    // (checking its condition), and the PUT is complete in the metadata
    // before anyone else looks.
    let now = Instant::now();
    let (joined, replaced) = {
        let mut meta = cluster.meta();
        // An expiring object this PUT replaces leaves an expiry entry behind.
        let replaced = meta
            .peek(&key)
            .filter(|object| object.expires_at.is_some())
            .map(|object| object.version);
        let mut joined = Vec::with_capacity(chunks.len());
        for (i, chunk) in chunks.iter().enumerate() {
            match meta.join_put_with(&key, put_id, &chunk.header, now, options) {
                Ok(place) => joined.push(place),
                // Nothing started (the condition did not hold, or no room).
                Err(err) if i == 0 => {
                    return if err.code == CONDITION_NOT_MET {
                        Ok(None)
                    } else {
                        Err(err)
                    };
                }
                Err(err) => {
                    // Cannot happen for chunks of one encoding; should it,
                    // the chunks that never joined report failure so the
                    // PUT aborts at once instead of at its timeout.
                    for chunk in &chunks[i..] {
                        if let Ok(Some(finished)) =
                            meta.chunk_done(&key, put_id, chunk.header.index, Err(err.clone()))
                        {
                            let cluster = cluster.clone();
                            tokio::spawn(async move { cluster.finish_put(finished).await });
                        }
                    }
                    break;
                }
            }
        }
        (joined, replaced)
    };
    let Some(version) = joined.first().map(|place| place.version) else {
        return Err(ErrorReply::new(
            ErrorCode::Internal,
            "no chunk joined the PUT",
        ));
    };

    // The expiry entry (see `cluster::manifest`) goes with chunk 0: in sync
    // mode the PUT commits only once it is durable too.
    let mut expiry_entry = None;
    if let (Expiry::At(at), Some(durable)) = (options.expiry, cluster.durable()) {
        let (durable, key) = (durable.clone(), key.clone());
        let write = async move {
            durable
                .write_expiry(&key, version, at)
                .await
                .map_err(|err| ErrorReply::new(ErrorCode::Unavailable, format!("COS: {err}")))
        };
        if durable_is_sync(cluster) {
            expiry_entry = Some(Box::pin(write) as BoxFuture<'static, _>);
        } else {
            tokio::spawn(async move {
                if let Err(err) = write.await {
                    tracing::warn!(error = %err, "cannot record an object's expiry");
                }
            });
        }
    }

    let tasks: Vec<_> = chunks
        .into_iter()
        .zip(joined)
        .map(|(chunk, place)| {
            let also = if chunk.header.index == 0 {
                expiry_entry.take()
            } else {
                None
            };
            // Each chunk in its own task, as native chunk requests are: a
            // client that goes away does not leave a PUT half-stored.
            let (cluster, key) = (cluster.clone(), key.clone());
            tokio::spawn(
                async move { store_joined(&cluster, key, put_id, chunk, place, also).await },
            )
        })
        .collect();
    let mut outcome = None;
    for task in tasks {
        let result = task.await.unwrap_or_else(|err| {
            Err(ErrorReply::new(
                ErrorCode::Internal,
                format!("chunk task failed: {err}"),
            ))
        });
        outcome.get_or_insert(result);
    }
    let outcome = outcome.unwrap_or_else(|| {
        Err(ErrorReply::new(
            ErrorCode::Internal,
            "the PUT had no chunks",
        ))
    });

    if let Some(durable) = cluster.durable() {
        let (durable, cluster_ref) = (durable.clone(), cluster.clone());
        let committed = outcome.is_ok();
        let ours_has_entry = matches!(options.expiry, Expiry::At(_));
        let key = key.clone();
        let keep_ttl = options.expiry == Expiry::Keep;
        let tidy = async move {
            if committed {
                if let Some(old) = replaced.filter(|&old| old != version) {
                    let _ = durable.delete_expiry(&key, old).await;
                }
                // Superseded by a concurrent PUT that committed first: this
                // version never became visible.
                let current = cluster_ref.meta().peek(&key).map(|object| object.version);
                if ours_has_entry && current != Some(version) {
                    let _ = durable.delete_expiry(&key, version).await;
                }
                // KEEPTTL: the expiry is known only now that it committed.
                if keep_ttl {
                    let kept = cluster_ref
                        .meta()
                        .peek(&key)
                        .filter(|object| object.version == version)
                        .and_then(|object| object.expires_at);
                    if let Some(at) = kept
                        && let Err(err) = durable.write_expiry(&key, version, at).await
                    {
                        tracing::warn!(%key, error = %err, "cannot record an object's expiry");
                    }
                }
            } else if ours_has_entry {
                let _ = durable.delete_expiry(&key, version).await;
            }
        };
        if keep_ttl && committed && durable_is_sync(cluster) {
            tidy.await;
        } else {
            tokio::spawn(tidy);
        }
    }

    match outcome {
        Ok(version) => Ok(Some(version)),
        Err(err) if err.code == CONDITION_NOT_MET => Ok(None),
        Err(err) => Err(err),
    }
}

/// Stores one joined chunk on its node (and the object store), reports it to
/// the metadata and waits for the PUT's outcome. `also` is more work the
/// chunk's success depends on (the expiry entry).
async fn store_joined(
    cluster: &Arc<Cluster>,
    key: Key,
    put_id: u64,
    chunk: Chunk,
    joined: Joined,
    also: Option<BoxFuture<'static, Result<(), ErrorReply>>>,
) -> Result<u64, ErrorReply> {
    let header = chunk.header;
    // Evicted objects leave function memory only: with the object store
    // they stay visible, cold, and are read back from it.
    cluster.drop_chunks(joined.drop_later);
    for evicted in joined.drop_first {
        cluster.drop_chunk(evicted).await;
    }

    let chunk = Chunk {
        header: header.with_version(joined.version),
        body: chunk.body,
    };
    // The chunk goes to its node and, when the durable layer is on, to the
    // COS at the same time (sync mode waits for both).
    let persisted = async {
        match cluster.durable() {
            Some(durable) => durable
                .persist(&key, &chunk, cluster.liveness())
                .await
                .map_err(|err| ErrorReply::new(ErrorCode::Unavailable, format!("COS: {err}"))),
            None => Ok(()),
        }
    };
    let stored = async {
        match cluster.store_chunk(joined.node, &key, chunk.clone()).await {
            Ok(NodeReply::Stored { .. }) => Ok(()),
            Ok(NodeReply::Error(err)) => Err(err),
            Ok(other) => Err(ErrorReply::new(
                ErrorCode::Internal,
                format!("node {} answered a store with {other:?}", joined.node),
            )),
            Err(err) => Err(ErrorReply::new(ErrorCode::Unavailable, err.to_string())),
        }
    };
    let also = async {
        match also {
            Some(work) => work.await,
            None => Ok(()),
        }
    };
    let (stored_result, persisted_result, also_result) = tokio::join!(stored, persisted, also);
    let stored = stored_result.is_ok();
    let result = stored_result.and(persisted_result).and(also_result);
    let done = cluster
        .meta()
        .chunk_done(&key, put_id, header.index, result);
    match done {
        Ok(Some(finished)) => cluster.finish_put(finished).await,
        Ok(None) => {}
        Err(_expired) => {
            // The PUT was abandoned while this chunk was in flight.
            if stored {
                cluster.drop_chunks(vec![ChunkLoc {
                    node: joined.node,
                    key,
                    version: joined.version,
                    index: header.index,
                }]);
            }
        }
    }
    joined
        .outcome
        .await
        .unwrap_or_else(|_| Err(ErrorReply::new(ErrorCode::Aborted, "PUT abandoned")))
}

/// Checks what can be checked without the other chunks: the body length
/// matches the header, and the object fits the configured limits.
fn validate(cluster: &Cluster, chunk: &Chunk) -> Result<(), ErrorReply> {
    let header = &chunk.header;
    if chunk.body.len() != header.body_len() {
        return Err(ErrorReply::new(
            ErrorCode::InvalidArgument,
            format!(
                "chunk body is {} bytes, its header says {}",
                chunk.body.len(),
                header.body_len()
            ),
        ));
    }
    let max = cluster.config().max_object_size;
    if header.object_len > max {
        return Err(ErrorReply::new(
            ErrorCode::TooLarge,
            format!(
                "object of {} bytes exceeds the limit of {max} bytes",
                header.object_len
            ),
        ));
    }
    Ok(())
}

fn durable_is_sync(cluster: &Cluster) -> bool {
    cluster
        .durable()
        .is_some_and(|durable| durable.mode() == WriteMode::Sync)
}

// ---------------------------------------------------------------- GET

/// The chunks of one version of an object, being fetched.
///
/// Every chunk is fetched by a task of its own, so the node requests run to
/// the end whether or not the caller is polling: a client that reads its
/// GET slowly must not keep a node's connection claimed (and the node
/// billed, since it may not leave while a request is out) for as long as
/// it pleases. The price is that finished chunks wait here, at most one
/// object's `k + r` chunks per GET, until [`ObjectFetch::next`] takes them.
/// Dropping the fetch aborts the requests still outstanding (a cancelled
/// GET).
pub struct ObjectFetch {
    pub version: u64,
    pub object_len: u64,
    pub params: CodecParams,
    fetches: JoinSet<ClientReply>,
    /// Which chunk each task fetches, to answer for a task that panicked.
    indices: HashMap<task::Id, u8>,
    /// Keeps the version's chunks (in memory and the object store) until
    /// the fetch is over, whatever PUTs and DELETEs commit meanwhile.
    _lease: ReadLease,
}

impl ObjectFetch {
    /// The next chunk (or chunk failure) of the version, in the order the
    /// nodes answer; `None` once every chunk has been answered.
    pub async fn next(&mut self) -> Option<ClientReply> {
        match self.fetches.join_next_with_id().await? {
            Ok((_, reply)) => Some(reply),
            // Not cancelled (only dropping the fetch aborts its tasks), so
            // the task panicked: a bug, but only this chunk's failure.
            Err(err) => Some(failed(
                self.indices.get(&err.id()).copied().unwrap_or(u8::MAX),
                ErrorCode::Internal,
                format!("fetching the chunk failed: {err}"),
            )),
        }
    }
}

/// Looks `key` up and prepares to fetch every chunk of its visible version
/// at once (`None`: no such object, or it has expired). Marks the object
/// recently used and leases its version for the fetch (`cluster::leases`:
/// a PUT or DELETE committing meanwhile does not pull its chunks away), and
/// asks for lost chunks to be repaired, or for an object in a degraded
/// bucket to move forward.
pub fn fetch_object(cluster: &Arc<Cluster>, key: &Key) -> Option<ObjectFetch> {
    let (object, lease) = cluster.open_read(key)?;
    let now = unix_millis();
    if object.expired(now) {
        drop(lease);
        expire(cluster, key, now);
        return None;
    }
    let version = object.version;
    if object.lost() > 0 {
        // Lost chunks, or a cold object: bring them back into memory.
        cluster.request_repair(key.clone(), version);
    } else {
        // Read from a degraded bucket: move it forward (if it is in one).
        cluster.request_move(key.clone(), version);
    }
    let mut fetches = JoinSet::new();
    let mut indices = HashMap::with_capacity(object.placement.len());
    for (index, node) in object.placement.iter().copied().enumerate() {
        let index = index as u8;
        let (cluster, key) = (cluster.clone(), key.clone());
        let task = fetches.spawn(async move {
            match node {
                Some(node) => from_node(&cluster, &key, version, index, node).await,
                None => {
                    from_cos(
                        &cluster,
                        &key,
                        version,
                        index,
                        "chunk lost with its node's memory",
                    )
                    .await
                }
            }
        });
        indices.insert(task.id(), index);
    }
    Some(ObjectFetch {
        version,
        object_len: object.size,
        params: object.params,
        fetches,
        indices,
        _lease: lease,
    })
}

/// Reads a whole object: fetches its chunks as [`fetch_object`] does and
/// decodes it from the first `k` of the announced version that verify.
/// `Ok(None)` if there is no such object.
pub async fn get_object(cluster: &Arc<Cluster>, key: &Key) -> Result<Option<Bytes>, ErrorReply> {
    let Some(mut fetch) = fetch_object(cluster, key) else {
        return Ok(None);
    };
    let codec = cluster.codec(fetch.params);
    let mut chunks = Collector::new(&fetch);
    loop {
        if chunks.enough() {
            // Chunks come in the order nodes answer, so the first `k` almost
            // always include parity, and rebuilding a data chunk costs about
            // a second decode: wait a little for a missing data chunk.
            let deadline = tokio::time::Instant::now() + chunks.data_grace();
            while chunks.missing_data() {
                match tokio::time::timeout_at(deadline, fetch.next()).await {
                    Ok(Some(reply)) => chunks.absorb(reply),
                    Ok(None) | Err(_) => break,
                }
            }
            let attempt = chunks.chunks.clone();
            let codec = codec.clone();
            let len = usize::try_from(fetch.object_len).unwrap_or(usize::MAX);
            match offload(len, move || codec.decode(&attempt)).await? {
                Ok(object) => return Ok(Some(object)),
                Err(err) => chunks.discard_corrupt(&err)?,
            }
        }
        if chunks.exhausted() {
            return Err(chunks.unavailable());
        }
        match fetch.next().await {
            Some(reply) => chunks.absorb(reply),
            None => return Err(chunks.unavailable()),
        }
    }
}

/// The size of `key`'s visible object, from the metadata alone.
pub fn object_size(cluster: &Arc<Cluster>, key: &Key) -> Option<u64> {
    lookup(cluster, key).map(|object| object.size)
}

/// Asks `node` for its chunk; falls back to the COS if it no longer has it.
async fn from_node(
    cluster: &Arc<Cluster>,
    key: &Key,
    version: u64,
    index: u8,
    node: u32,
) -> ClientReply {
    let request = NodeRequest::Fetch {
        key: key.clone(),
        version,
        index,
    };
    match cluster.call(node, &request).await {
        Ok(NodeReply::Chunk(chunk))
            if chunk.header.version == version && chunk.header.index == index =>
        {
            ClientReply::Chunk(chunk)
        }
        Ok(NodeReply::Chunk(_)) => failed(
            index,
            ErrorCode::Internal,
            format!("node {node} returned the wrong chunk"),
        ),
        Ok(NodeReply::Missing) => {
            cluster.chunk_missing(key, version, index, node);
            cluster.request_repair(key.clone(), version);
            from_cos(
                cluster,
                key,
                version,
                index,
                &format!("node {node} no longer holds the chunk"),
            )
            .await
        }
        Ok(NodeReply::Error(err)) => ClientReply::ChunkFailed { index, error: err },
        Ok(other) => failed(
            index,
            ErrorCode::Internal,
            format!("node {node} answered a fetch with {other:?}"),
        ),
        Err(err) => failed(index, ErrorCode::Unavailable, err.to_string()),
    }
}

/// Reads a chunk missing from memory back from the durable layer; without
/// one (or if it is not there), reports why it is missing.
async fn from_cos(
    cluster: &Arc<Cluster>,
    key: &Key,
    version: u64,
    index: u8,
    why_missing: &str,
) -> ClientReply {
    let Some(durable) = cluster.durable() else {
        return failed(index, ErrorCode::Unavailable, why_missing.to_string());
    };
    match durable.fetch(key, version, index).await {
        Ok(Some(chunk)) => ClientReply::Chunk(chunk),
        Ok(None) => failed(
            index,
            ErrorCode::Unavailable,
            format!("{why_missing}, and it is not in the object store"),
        ),
        Err(err) => failed(
            index,
            ErrorCode::Unavailable,
            format!("{why_missing}; object store: {err}"),
        ),
    }
}

fn failed(index: u8, code: ErrorCode, message: String) -> ClientReply {
    ClientReply::ChunkFailed {
        index,
        error: ErrorReply::new(code, message),
    }
}

/// The chunks of one GET gathered so far (the native client's logic): only
/// chunks of the announced version count, one per index.
struct Collector {
    version: u64,
    object_len: u64,
    params: CodecParams,
    chunks: Vec<Chunk>,
    /// Per index: a chunk or a failure for it has arrived.
    seen: Vec<bool>,
    failed: usize,
    last_failure: String,
}

impl Collector {
    fn new(fetch: &ObjectFetch) -> Self {
        let total = fetch.params.total_shards();
        Collector {
            version: fetch.version,
            object_len: fetch.object_len,
            params: fetch.params,
            chunks: Vec::with_capacity(total),
            seen: vec![false; total],
            failed: 0,
            last_failure: String::new(),
        }
    }

    fn absorb(&mut self, reply: ClientReply) {
        match reply {
            ClientReply::Chunk(chunk) => {
                let header = chunk.header;
                let index = usize::from(header.index);
                let belongs = header.version == self.version
                    && header.object_len == self.object_len
                    && header.params == self.params
                    && index < self.seen.len();
                if !belongs || self.seen[index] {
                    self.fail(format!(
                        "chunk {index} does not belong to version {}",
                        self.version
                    ));
                } else {
                    self.seen[index] = true;
                    self.chunks.push(chunk);
                }
            }
            ClientReply::ChunkFailed { index, error } => {
                if let Some(seen) = self.seen.get_mut(usize::from(index)) {
                    *seen = true;
                }
                self.fail(format!("chunk {index}: {error}"));
            }
            other => self.fail(format!("unexpected {other:?}")),
        }
    }

    fn fail(&mut self, reason: String) {
        self.failed += 1;
        self.last_failure = reason;
    }

    fn enough(&self) -> bool {
        self.chunks.len() >= self.params.data_shards()
    }

    fn exhausted(&self) -> bool {
        self.chunks.len() + self.failed >= self.params.total_shards()
    }

    fn missing_data(&self) -> bool {
        self.seen[..self.params.data_shards()]
            .iter()
            .any(|seen| !seen)
    }

    /// About what rebuilding a data chunk would cost (some 40 µs per MiB),
    /// capped.
    fn data_grace(&self) -> Duration {
        Duration::from_nanos(self.object_len / 25).min(MAX_DATA_GRACE)
    }

    /// After a failed decode: drops the chunks that fail their checksums.
    fn discard_corrupt(&mut self, err: &CodecError) -> Result<(), ErrorReply> {
        let before = self.chunks.len();
        self.chunks.retain(|chunk| chunk.verify().is_ok());
        if before == self.chunks.len() {
            return Err(ErrorReply::new(
                ErrorCode::Internal,
                format!("chunks of version {} do not decode: {err}", self.version),
            ));
        }
        self.failed += before - self.chunks.len();
        self.last_failure = err.to_string();
        Ok(())
    }

    fn unavailable(&self) -> ErrorReply {
        ErrorReply::new(
            ErrorCode::Unavailable,
            format!(
                "only {} of the {} chunks needed could be read ({} failed; last: {})",
                self.chunks.len(),
                self.params.data_shards(),
                self.failed,
                self.last_failure
            ),
        )
    }
}

// ---------------------------------------------------------------- DELETE, EXISTS

/// Removes `key`: the object disappears from the metadata at once (no later
/// GET can see it); its chunks are dropped from the nodes and the COS in the
/// background. Returns whether a visible object was removed (an expired one
/// is removed too, but did not exist any more).
pub async fn delete_object(cluster: &Arc<Cluster>, key: &Key) -> bool {
    let now = unix_millis();
    let removed = {
        let mut meta = cluster.meta();
        let object = meta.peek(key);
        object.zip(meta.remove(key))
    };
    let Some((object, chunks)) = removed else {
        return false;
    };
    let existed = !object.expired(now);
    forget(cluster, key, object, chunks).await;
    existed
}

/// Whether `key` has a visible object (from the metadata alone, without
/// touching the LRU order).
pub fn exists(cluster: &Arc<Cluster>, key: &Key) -> bool {
    lookup(cluster, key).is_some()
}

/// `key`'s visible object, without touching the LRU order. An expired
/// one is removed in the background and reported missing.
fn lookup(cluster: &Arc<Cluster>, key: &Key) -> Option<ObjectMeta> {
    let now = unix_millis();
    let object = cluster.meta().peek(key)?;
    if !object.expired(now) {
        return Some(object);
    }
    expire(cluster, key, now);
    None
}

/// Removes `key` if its object has expired at `now` (a PUT may have
/// replaced it meanwhile), cleaning up in the background like a DELETE.
fn expire(cluster: &Arc<Cluster>, key: &Key, now: u64) {
    let removed = cluster.meta().take_expired(key, now);
    if let Some((object, chunks)) = removed {
        let (cluster, key) = (cluster.clone(), key.clone());
        tokio::spawn(async move { forget(&cluster, &key, object, chunks).await });
    }
}

/// Cleans up after an object left the metadata (deleted or expired): its
/// manifest record, chunks and expiry entry in the COS, and its chunks in
/// function memory. In `sync` mode the manifest is updated before this
/// returns.
async fn forget(cluster: &Arc<Cluster>, key: &Key, object: ObjectMeta, chunks: Vec<ChunkLoc>) {
    if let Some(durable) = cluster.durable() {
        // The record goes first: once it is gone a restarted proxy no
        // longer knows the object, whatever is left of its chunks.
        let sync = durable.mode() == WriteMode::Sync;
        let (cluster, durable, key) = (cluster.clone(), durable.clone(), key.clone());
        let version = object.version;
        let had_expiry = object.expires_at.is_some();
        let forget = async move {
            let _ = cluster.sync_record(&key).await;
            if had_expiry {
                let _ = durable.delete_expiry(&key, version).await;
            }
            // Deferred while a GET still reads the version.
            cluster.forget_version(key, version);
        };
        if sync {
            forget.await;
        } else {
            tokio::spawn(forget);
        }
    }
    cluster.drop_chunks(chunks);
}

// ---------------------------------------------------------------- expiry

/// Removes expired objects nobody reads, every `SWEEP_INTERVAL`. Holds the
/// cluster weakly: the task ends with it.
pub fn spawn_expiry_sweep(cluster: &Arc<Cluster>) -> tokio::task::JoinHandle<()> {
    let cluster: Weak<Cluster> = Arc::downgrade(cluster);
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(SWEEP_INTERVAL);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            let Some(cluster) = cluster.upgrade() else {
                return;
            };
            // A full batch means there may be more: go on at once.
            while sweep(&cluster).await == SWEEP_BATCH {}
        }
    })
}

/// Removes up to `SWEEP_BATCH` expired objects; returns how many.
pub async fn sweep(cluster: &Arc<Cluster>) -> usize {
    let now = unix_millis();
    let keys = cluster.meta().expired_keys(now, SWEEP_BATCH);
    let mut removed = 0;
    for key in keys {
        let taken = cluster.meta().take_expired(&key, now);
        if let Some((object, chunks)) = taken {
            forget(cluster, &key, object, chunks).await;
            removed += 1;
        }
    }
    if removed > 0 {
        tracing::debug!(removed, "expired objects removed");
    }
    removed
}

/// Gives the objects recovered from the manifest their expiries back (see
/// `cluster::manifest`), and removes the expiry entries of versions that
/// are gone. Returns how many objects got one.
pub async fn recover_expiries(cluster: &Arc<Cluster>) -> Result<usize, crate::cos::CosError> {
    let Some(durable) = cluster.durable() else {
        return Ok(0);
    };
    let entries = durable.load_expiries().await?;
    let mut applied = 0;
    let mut stale = Vec::new();
    {
        let mut meta = cluster.meta();
        for entry in entries {
            if meta.set_expiry(&entry.key, entry.version, Some(entry.expires_at_ms)) {
                applied += 1;
            } else {
                stale.push(entry);
            }
        }
    }
    if !stale.is_empty() {
        let durable = durable.clone();
        tokio::spawn(async move {
            for entry in stale {
                if let Err(err) = durable.delete_expiry(&entry.key, entry.version).await {
                    tracing::debug!(object = %entry.object, error = %err, "cannot remove a stale expiry entry");
                }
            }
        });
    }
    Ok(applied)
}

/// Runs CPU-heavy codec work for an object of `size` bytes off the async
/// workers when it is large.
async fn offload<T: Send + 'static>(
    size: usize,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ErrorReply> {
    if size < OFFLOAD_THRESHOLD {
        return Ok(work());
    }
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|err| ErrorReply::new(ErrorCode::Internal, format!("codec task failed: {err}")))
}
