//! What the proxy knows about objects: versions, placement, capacity, LRU
//! order, and PUTs in progress.
//!
//! This is plain synchronous state behind one lock, kept free of I/O: every
//! method returns what must be done on the network (chunks to drop, waiters
//! to answer) and the caller does it after releasing the lock.
//!
//! Objects may carry an expiry (set by the RESP frontend's `SET ... EX`): an
//! expired object is invisible to the frontends, and an index ordered by
//! expiry time lets the sweep find expired objects and `DBSIZE` count live
//! ones without scanning every object. PUTs may also carry a condition
//! (`SET NX` / `SET XX`), checked under this lock when the PUT starts and
//! again when it commits, so conditional PUTs are atomic against concurrent
//! PUTs of the same key.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::Instant;

use infinicache::CodecParams;
use infinicache::codec::ChunkHeader;
use infinicache::protocol::{ChunkId, ErrorCode, ErrorReply, Key, stored_chunk_cost};
use lru::LruCache;
use tokio::sync::oneshot;

use super::window::{Rolled, Tier, Window};

/// Index of a node in the pool.
pub type NodeId = u32;

/// A committed, visible object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    pub version: u64,
    pub size: u64,
    pub params: CodecParams,
    /// Capacity one chunk of this object takes on its node.
    pub chunk_cost: u64,
    /// The node holding each chunk; `None` once that node lost its memory.
    pub placement: Vec<Option<NodeId>>,
    /// Commit order: objects committed before a reconciliation started are
    /// the ones its node inventory can speak for.
    pub commit_seq: u64,
    /// When the object expires (milliseconds since the Unix epoch), if ever.
    /// Absolute wall-clock time, like Redis's, so it means the same after a
    /// proxy restart.
    pub expires_at: Option<u64>,
}

impl ObjectMeta {
    /// Whether the object has expired at `now_ms` (milliseconds since the
    /// Unix epoch). As in Redis, an object expiring at `t` is still visible
    /// during millisecond `t` itself.
    pub fn expired(&self, now_ms: u64) -> bool {
        self.expires_at.is_some_and(|at| at < now_ms)
    }

    /// Chunks not in function memory: lost with their node, or cold (only
    /// in the object store).
    pub fn lost(&self) -> usize {
        self.placement.iter().filter(|node| node.is_none()).count()
    }

    /// Whether no chunk is in function memory.
    pub fn is_cold(&self) -> bool {
        self.placement.iter().all(Option::is_none)
    }
}

/// What reconciling a node's inventory with the metadata found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Reconciled {
    /// Chunks the metadata placed there that the node does not hold.
    pub lost: usize,
    /// Chunks the node holds as the metadata says.
    pub kept: usize,
    /// Chunks the node holds that nothing refers to (older versions,
    /// deleted objects): drop them to free the memory.
    pub garbage: Vec<ChunkLoc>,
    /// Objects that lost chunks, to repair.
    pub damaged: Vec<(Key, u64)>,
}

/// Where one chunk lives (or lived), for fetching or dropping it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ChunkLoc {
    pub node: NodeId,
    pub key: Key,
    pub version: u64,
    pub index: u8,
}

/// The outcome a PUT's chunk requests wait for.
pub type PutOutcome = Result<u64, ErrorReply>;

/// The error code of a conditional PUT whose condition did not hold. It is
/// internal to the proxy and never sent on the wire: only the RESP frontend
/// makes conditional PUTs, and it answers such a PUT with a null reply.
pub const CONDITION_NOT_MET: ErrorCode = ErrorCode::Other(0xc0de);

/// The outcome of a conditional PUT whose condition did not hold.
pub fn condition_not_met() -> ErrorReply {
    ErrorReply::new(CONDITION_NOT_MET, "the PUT's condition did not hold")
}

/// When a conditional PUT may commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutCondition {
    /// Only if the key has no visible object (`SET NX`).
    IfAbsent,
    /// Only if the key has a visible object (`SET XX`).
    IfPresent,
}

/// The expiry a PUT gives its object.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Expiry {
    /// None: the object never expires (and a previous expiry is cleared).
    #[default]
    Never,
    /// At this time (milliseconds since the Unix epoch).
    At(u64),
    /// Whatever the object it replaces had when the PUT commits (`SET ...
    /// KEEPTTL`).
    Keep,
}

/// What a PUT asks for beyond storing its object. The native protocol's
/// PUTs use the default: unconditional, never expiring.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PutOptions {
    pub condition: Option<PutCondition>,
    pub expiry: Expiry,
}

/// Milliseconds since the Unix epoch, the clock object expiries use.
pub fn unix_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| {
            u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
        })
}

/// A PUT whose chunks are still arriving or being stored.
#[derive(Debug)]
struct PendingPut {
    version: u64,
    header: ChunkHeader,
    placement: Vec<NodeId>,
    chunk_cost: u64,
    joined: Vec<bool>,
    stored: Vec<bool>,
    /// Per chunk: evicted chunks on that chunk's node, to drop before the
    /// chunk is stored there (or the node would still be full).
    evictions: Vec<Vec<ChunkLoc>>,
    reported: usize,
    error: Option<ErrorReply>,
    waiters: Vec<oneshot::Sender<PutOutcome>>,
    started: Instant,
    /// The condition (checked again at commit) and expiry of the PUT.
    options: PutOptions,
}

/// A chunk's place in a PUT: which version and node it goes to, and where
/// the PUT's outcome will be announced.
#[derive(Debug)]
pub struct Joined {
    pub version: u64,
    pub node: NodeId,
    pub outcome: oneshot::Receiver<PutOutcome>,
    /// Chunks evicted from this chunk's node to make room: drop them (and
    /// wait for the node to confirm) before storing the chunk.
    pub drop_first: Vec<ChunkLoc>,
    /// Chunks evicted from nodes this PUT does not use; drop them whenever.
    pub drop_later: Vec<ChunkLoc>,
}

/// The PUT a chunk belonged to was abandoned before the chunk reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expired;

/// A PUT that has finished, one way or the other.
#[derive(Debug)]
pub struct Finished {
    pub outcome: PutOutcome,
    pub waiters: Vec<oneshot::Sender<PutOutcome>>,
    /// Chunks to drop: the replaced version's after a commit, or the stored
    /// ones of an aborted PUT.
    pub garbage: Vec<ChunkLoc>,
    /// Versions that are gone for good (replaced, superseded or aborted),
    /// whether or not any of their chunks are still in memory: the durable
    /// layer removes them.
    pub retired: Vec<(Key, u64)>,
    /// The object this PUT made visible, for the manifest.
    pub committed: Option<(Key, ObjectMeta)>,
}

impl Finished {
    /// Tells every chunk request of the PUT how it ended.
    pub fn announce(&mut self) {
        for waiter in self.waiters.drain(..) {
            let _ = waiter.send(self.outcome.clone());
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct NodeUsage {
    used: u64,
    capacity: u64,
}

/// Object metadata, placement and capacity accounting for the whole pool.
#[derive(Debug)]
pub struct Metadata {
    objects: LruCache<Key, ObjectMeta>,
    pending: HashMap<(Key, u64), PendingPut>,
    nodes: Vec<NodeUsage>,
    next_version: u64,
    rotation: usize,
    commits: u64,
    /// Rebuilt chunks being stored (see [`Metadata::place_repair`]) and the
    /// room reserved for each.
    repairs: HashMap<ChunkLoc, u64>,
    /// Which nodes take new data, and which are released.
    window: Window,
    /// Whether the object store keeps every object: then an object evicted
    /// from memory (or whose bucket expired) stays visible, *cold*, and is
    /// read back from the store; without it, eviction forgets the object.
    cold_tier: bool,
    /// The newest bucket grows once this fraction of its memory is taken.
    grow_threshold: f64,
    /// Chunks released nodes may still hold (their bucket expired or was
    /// recycled): dropped before the node stores anything new.
    stale: HashMap<NodeId, Vec<ChunkLoc>>,
    /// Every object with an expiry, ordered by it: what the sweep removes
    /// first, and what live counts leave out, without a scan of every object.
    expiring: BTreeSet<(u64, Key)>,
}

/// Versions start from the clock (milliseconds since the Unix epoch, times
/// 1024) rather than from 1: environments and the object store outlive a
/// proxy restart, and a chunk kept from before must never be taken for a
/// chunk of a new version with the same number. 1024 versions per
/// millisecond of uptime keep them increasing across restarts, and the
/// numbers stay below 2^53 (until the year 2248), so every binding, down to
/// JavaScript's numbers, represents them exactly.
fn first_version() -> u64 {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis());
    u64::try_from(millis << 10).unwrap_or(1 << 52).max(1)
}

impl Metadata {
    /// Empty metadata for `pool_size` nodes of `capacity` bytes each, all
    /// in one fixed bucket, with no object store under them.
    pub fn new(pool_size: usize, capacity: u64) -> Self {
        Metadata::with_window(
            pool_size,
            capacity,
            Window::fixed(pool_size, Instant::now()),
            false,
            1.0,
        )
    }

    /// Empty metadata placing data as `window` says; with `cold_tier`, an
    /// object store keeps every object (see [`Metadata::cold_tier`]).
    pub fn with_window(
        pool_size: usize,
        capacity: u64,
        window: Window,
        cold_tier: bool,
        grow_threshold: f64,
    ) -> Self {
        Metadata {
            window,
            cold_tier,
            grow_threshold,
            stale: HashMap::new(),
            objects: LruCache::unbounded(),
            pending: HashMap::new(),
            nodes: vec![NodeUsage { used: 0, capacity }; pool_size],
            next_version: first_version(),
            rotation: 0,
            commits: 0,
            repairs: HashMap::new(),
            expiring: BTreeSet::new(),
        }
    }

    /// Registers one chunk of a PUT, starting the PUT on its first chunk:
    /// the version is assigned and every chunk's node is chosen (evicting
    /// least recently used objects if the pool is full) at that moment.
    pub fn join_put(
        &mut self,
        key: &Key,
        put_id: u64,
        header: &ChunkHeader,
        now: Instant,
    ) -> Result<Joined, ErrorReply> {
        self.join_put_with(key, put_id, header, now, PutOptions::default())
    }

    /// [`Metadata::join_put`] for a PUT with `options`, which the chunk that
    /// starts the PUT sets (later chunks join the PUT as it is). A condition
    /// is checked here, when the PUT starts, and again when it commits; one
    /// that does not hold fails with [`condition_not_met`].
    pub fn join_put_with(
        &mut self,
        key: &Key,
        put_id: u64,
        header: &ChunkHeader,
        now: Instant,
        options: PutOptions,
    ) -> Result<Joined, ErrorReply> {
        let index = usize::from(header.index);
        let mut drop_later = Vec::new();
        let pending_key = (key.clone(), put_id);
        if !self.pending.contains_key(&pending_key) {
            if let Some(condition) = options.condition
                && !self.condition_holds(key, condition, unix_millis())
            {
                return Err(condition_not_met());
            }
            let total = header.params.total_shards();
            if total > self.nodes.len() {
                return Err(ErrorReply::new(
                    ErrorCode::InvalidArgument,
                    format!(
                        "{total} chunks per object need {total} distinct nodes; the pool has {}",
                        self.nodes.len()
                    ),
                ));
            }
            let chunk_cost = stored_chunk_cost(key.len(), header.body_len());
            let mut evicted = Vec::new();
            let placement = self.place(total, chunk_cost, &mut evicted, now)?;
            let mut evictions = vec![Vec::new(); total];
            for chunk in evicted {
                match placement.iter().position(|&node| node == chunk.node) {
                    Some(i) => evictions[i].push(chunk),
                    None => drop_later.push(chunk),
                }
            }
            let version = self.next_version;
            self.next_version += 1;
            self.pending.insert(
                pending_key.clone(),
                PendingPut {
                    version,
                    header: header.with_version(0),
                    placement,
                    chunk_cost,
                    joined: vec![false; total],
                    stored: vec![false; total],
                    evictions,
                    reported: 0,
                    error: None,
                    waiters: Vec::new(),
                    started: now,
                    options,
                },
            );
        }
        let put = self
            .pending
            .get_mut(&pending_key)
            .ok_or_else(|| ErrorReply::new(ErrorCode::Internal, "pending PUT vanished"))?;
        let same_object = ChunkHeader {
            index: put.header.index,
            body_crc: put.header.body_crc,
            ..header.with_version(0)
        } == put.header;
        if !same_object {
            return Err(ErrorReply::new(
                ErrorCode::InvalidArgument,
                "chunk disagrees with the other chunks of this PUT (k, r or object length)",
            ));
        }
        if put.joined[index] {
            return Err(ErrorReply::new(
                ErrorCode::InvalidArgument,
                format!("chunk {index} was already sent for this PUT"),
            ));
        }
        put.joined[index] = true;
        let (tx, rx) = oneshot::channel();
        put.waiters.push(tx);
        Ok(Joined {
            version: put.version,
            node: put.placement[index],
            outcome: rx,
            drop_first: std::mem::take(&mut put.evictions[index]),
            drop_later,
        })
    }

    /// Records whether a chunk of a PUT was stored. When it was the last
    /// chunk to report, the PUT commits (all stored) or aborts, and the
    /// result says whom to tell and what to clean up.
    ///
    /// Fails with [`Expired`] if the PUT is no longer pending: the caller
    /// should drop the chunk it just stored.
    pub fn chunk_done(
        &mut self,
        key: &Key,
        put_id: u64,
        index: u8,
        result: Result<(), ErrorReply>,
    ) -> Result<Option<Finished>, Expired> {
        let pending_key = (key.clone(), put_id);
        let Some(put) = self.pending.get_mut(&pending_key) else {
            return Err(Expired);
        };
        put.reported += 1;
        match result {
            Ok(()) => put.stored[usize::from(index)] = true,
            Err(err) => {
                put.error.get_or_insert(err);
            }
        }
        if put.reported < put.placement.len() {
            return Ok(None);
        }
        let Some(put) = self.pending.remove(&pending_key) else {
            return Ok(None);
        };
        Ok(Some(match put.error.clone() {
            Some(err) => self.abort(key, put, err),
            None => self.commit(key, put),
        }))
    }

    /// Abandons PUTs that started before `deadline` (a client that never sent
    /// all chunks).
    pub fn expire_puts(&mut self, deadline: Instant) -> Vec<Finished> {
        let expired: Vec<(Key, u64)> = self
            .pending
            .iter()
            .filter(|(_, put)| put.started < deadline)
            .map(|(id, _)| id.clone())
            .collect();
        expired
            .into_iter()
            .filter_map(|id| {
                let put = self.pending.remove(&id)?;
                let err =
                    ErrorReply::new(ErrorCode::Aborted, "PUT timed out waiting for its chunks");
                Some(self.abort(&id.0, put, err))
            })
            .collect()
    }

    fn commit(&mut self, key: &Key, put: PendingPut) -> Finished {
        let now_ms = unix_millis();
        if let Some(condition) = put.options.condition
            && !self.condition_holds(key, condition, now_ms)
        {
            return self.abort(key, put, condition_not_met());
        }
        let expires_at = match put.options.expiry {
            Expiry::Never => None,
            Expiry::At(at) => Some(at),
            Expiry::Keep => self
                .objects
                .peek(key)
                .filter(|current| !current.expired(now_ms))
                .and_then(|current| current.expires_at),
        };
        let object = ObjectMeta {
            version: put.version,
            size: put.header.object_len,
            params: put.header.params,
            chunk_cost: put.chunk_cost,
            placement: put.placement.iter().copied().map(Some).collect(),
            commit_seq: self.commits + 1,
            expires_at,
        };
        self.commits += 1;
        let mut garbage = Vec::new();
        let mut retired = Vec::new();
        let mut committed = None;
        match self.objects.peek(key) {
            // A newer version committed first (the PUTs were concurrent):
            // this one is ordered before it and is simply superseded.
            Some(current) if current.version > put.version => {
                garbage = self.release(key, &object);
                retired.push((key.clone(), put.version));
            }
            _ => {
                committed = Some((key.clone(), object.clone()));
                let old = self.objects.put(key.clone(), object);
                self.track_expiry(key, old.as_ref().and_then(|old| old.expires_at), expires_at);
                if let Some(old) = old {
                    garbage = self.release(key, &old);
                    retired.push((key.clone(), old.version));
                }
            }
        }
        Finished {
            outcome: Ok(put.version),
            waiters: put.waiters,
            garbage,
            retired,
            committed,
        }
    }

    fn abort(&mut self, key: &Key, put: PendingPut, err: ErrorReply) -> Finished {
        // Evictions never carried out (their chunk never arrived) still
        // have to happen: the metadata already forgot those objects.
        let mut garbage: Vec<ChunkLoc> = put.evictions.into_iter().flatten().collect();
        for (index, &node) in put.placement.iter().enumerate() {
            let usage = &mut self.nodes[node as usize];
            usage.used = usage.used.saturating_sub(put.chunk_cost);
            if put.stored[index] {
                garbage.push(ChunkLoc {
                    node,
                    key: key.clone(),
                    version: put.version,
                    index: index as u8,
                });
            }
        }
        Finished {
            outcome: Err(err),
            waiters: put.waiters,
            garbage,
            retired: vec![(key.clone(), put.version)],
            committed: None,
        }
    }

    /// Chooses `total` distinct nodes of the newest bucket with room for a
    /// chunk each and reserves the room. Until they exist, the bucket grows
    /// (free functions first, then the oldest bucket's, recycled early) and,
    /// as a last resort, the least recently used objects leave memory.
    fn place(
        &mut self,
        total: usize,
        chunk_cost: u64,
        evicted: &mut Vec<ChunkLoc>,
        now: Instant,
    ) -> Result<Vec<NodeId>, ErrorReply> {
        let fits = |usage: &NodeUsage| usage.capacity.saturating_sub(usage.used) >= chunk_cost;
        if self
            .nodes
            .iter()
            .filter(|usage| usage.capacity >= chunk_cost)
            .count()
            < total
        {
            return Err(ErrorReply::new(
                ErrorCode::TooLarge,
                format!("a chunk of {chunk_cost} bytes does not fit on {total} nodes of this pool"),
            ));
        }
        self.window.roll(now);
        loop {
            let candidates = self
                .window
                .newest()
                .iter()
                .filter(|&&node| fits(&self.nodes[node as usize]))
                .count();
            if candidates >= total {
                break;
            }
            if self.window.grow(total - candidates, now) > 0 {
                continue;
            }
            let recycled = self.window.recycle_oldest();
            if !recycled.is_empty() {
                tracing::debug!(nodes = ?recycled, "recycling the oldest bucket early");
                self.release_nodes(&recycled);
                continue;
            }
            if !self.evict_one(evicted) {
                return Err(ErrorReply::new(
                    ErrorCode::TooLarge,
                    "the pool has no room for this object even when empty",
                ));
            }
        }
        // Emptiest nodes first; ties rotate so equal nodes share the load.
        let newest = self.window.newest().to_vec();
        let n = self.nodes.len();
        let rotation = self.rotation;
        self.rotation = (self.rotation + 1) % n;
        let mut order: Vec<usize> = newest
            .iter()
            .map(|&node| node as usize)
            .filter(|&i| fits(&self.nodes[i]))
            .collect();
        order.sort_by_key(|&i| {
            let usage = self.nodes[i];
            (
                std::cmp::Reverse(usage.capacity - usage.used),
                (i + n - rotation) % n,
            )
        });
        order.truncate(total);
        for &i in &order {
            self.nodes[i].used += chunk_cost;
            evicted.extend(self.take_stale(i as NodeId));
        }
        self.grow_if_full(now);
        Ok(order.into_iter().map(|i| i as NodeId).collect())
    }

    /// Grows the newest bucket by a step once its occupancy crosses the
    /// threshold, so the next objects find room without evicting.
    fn grow_if_full(&mut self, now: Instant) {
        let (used, capacity) = self
            .window
            .newest()
            .iter()
            .filter_map(|&node| self.nodes.get(node as usize))
            .fold((0u64, 0u64), |(used, capacity), usage| {
                (used + usage.used, capacity + usage.capacity)
            });
        if capacity > 0 && used as f64 >= self.grow_threshold * capacity as f64 {
            let added = self.window.grow(0, now);
            if added > 0 {
                tracing::debug!(added, used, capacity, "the newest bucket grew");
            }
        }
    }

    /// Takes the least recently used object with chunks on the newest
    /// bucket's nodes out of memory: cold (still visible, read from the
    /// object store) with a cold tier, forgotten without one. Returns
    /// whether there was one.
    fn evict_one(&mut self, evicted: &mut Vec<ChunkLoc>) -> bool {
        let newest: HashSet<NodeId> = self.window.newest().iter().copied().collect();
        let victim = self
            .objects
            .iter()
            .rev()
            .find(|(_, object)| {
                object
                    .placement
                    .iter()
                    .any(|node| node.is_some_and(|node| newest.contains(&node)))
            })
            .map(|(key, _)| key.clone());
        let Some(key) = victim else {
            return false;
        };
        if self.cold_tier {
            let Some(object) = self.objects.peek(&key).cloned() else {
                return false;
            };
            tracing::debug!(%key, version = object.version, "least recently used object goes cold");
            evicted.extend(self.release(&key, &object));
            if let Some(object) = self.objects.peek_mut(&key) {
                object.placement.iter_mut().for_each(|slot| *slot = None);
            }
        } else if let Some(object) = self.objects.pop(&key) {
            tracing::debug!(%key, version = object.version, "evicting least recently used object");
            self.track_expiry(&key, object.expires_at, None);
            evicted.extend(self.release(&key, &object));
        }
        true
    }

    /// Chunks on `released` nodes (their bucket expired or was recycled) go
    /// cold; the nodes' usage is recomputed. Returns the chunks, to drop
    /// from the nodes if they are used again.
    fn release_nodes(&mut self, released: &[NodeId]) -> Vec<ChunkLoc> {
        let released_set: HashSet<NodeId> = released.iter().copied().collect();
        let mut chunks = Vec::new();
        for (key, object) in self.objects.iter_mut() {
            for (index, slot) in object.placement.iter_mut().enumerate() {
                if let Some(node) = *slot
                    && released_set.contains(&node)
                {
                    *slot = None;
                    chunks.push(ChunkLoc {
                        node,
                        key: key.clone(),
                        version: object.version,
                        index: index as u8,
                    });
                }
            }
        }
        for &node in released {
            self.recompute_usage(node);
        }
        for chunk in &chunks {
            self.stale
                .entry(chunk.node)
                .or_default()
                .push(chunk.clone());
        }
        chunks
    }

    /// What a node released earlier may still hold: drop it before storing
    /// anything there, or the node (whose room the metadata counts as free)
    /// would run out of memory.
    pub fn take_stale(&mut self, node: NodeId) -> Vec<ChunkLoc> {
        self.stale.remove(&node).unwrap_or_default()
    }

    /// Expires the buckets past the available window: their nodes are
    /// released and their chunks go cold (the object store keeps them).
    pub fn expire_window(&mut self, now: Instant) -> Rolled {
        let rolled = self.window.expire(now);
        if !rolled.released.is_empty() {
            let released = rolled.released.clone();
            self.release_nodes(&released);
        }
        rolled
    }

    /// A read at `now`: if the newest bucket is a bucket length old, a new
    /// one opens (functions permitting), so objects read from the old one
    /// can move forward before it expires instead of going cold while hot.
    pub fn roll_for_read(&mut self, now: Instant) {
        self.window.roll(now);
    }

    /// The window of deployments.
    pub fn window(&self) -> &Window {
        &self.window
    }

    /// The tier of `node` at `now`.
    pub fn tier(&self, node: NodeId, now: Instant) -> Tier {
        self.window.tier(node, now)
    }

    /// Whether evicted objects stay visible, read from the object store.
    pub fn cold_tier(&self) -> bool {
        self.cold_tier
    }

    /// Objects with no chunk in function memory.
    pub fn cold_objects(&self) -> usize {
        self.objects
            .iter()
            .filter(|(_, object)| object.is_cold())
            .count()
    }

    /// Returns an object's room to its nodes; lists its chunks to drop.
    fn release(&mut self, key: &Key, object: &ObjectMeta) -> Vec<ChunkLoc> {
        let mut chunks = Vec::new();
        for (index, node) in object.placement.iter().enumerate() {
            let Some(node) = *node else { continue };
            let usage = &mut self.nodes[node as usize];
            usage.used = usage.used.saturating_sub(object.chunk_cost);
            chunks.push(ChunkLoc {
                node,
                key: key.clone(),
                version: object.version,
                index: index as u8,
            });
        }
        chunks
    }

    /// The object under `key`, marking it most recently used.
    pub fn get(&mut self, key: &Key) -> Option<ObjectMeta> {
        self.objects.get(key).cloned()
    }

    /// Whether `key` exists (without touching the LRU order).
    pub fn contains(&self, key: &Key) -> bool {
        self.objects.contains(key)
    }

    /// Removes `key`; returns its chunks to drop, if it existed.
    pub fn remove(&mut self, key: &Key) -> Option<Vec<ChunkLoc>> {
        let object = self.objects.pop(key)?;
        self.track_expiry(key, object.expires_at, None);
        Some(self.release(key, &object))
    }

    /// A node came back as a new environment with its memory gone: its
    /// chunks are lost and its room is free again.
    pub fn node_lost_memory(&mut self, node: NodeId) -> usize {
        let mut lost = 0;
        for (_, object) in self.objects.iter_mut() {
            for slot in object.placement.iter_mut() {
                if *slot == Some(node) {
                    *slot = None;
                    lost += 1;
                }
            }
        }
        // Chunks of pending PUTs placed there keep their reservation.
        let reserved: u64 = self
            .pending
            .values()
            .map(|put| put.chunk_cost * put.placement.iter().filter(|&&n| n == node).count() as u64)
            .sum();
        if let Some(usage) = self.nodes.get_mut(node as usize) {
            usage.used = reserved;
        }
        lost
    }

    /// The number of commits so far: objects with `commit_seq` up to it were
    /// fully stored before this moment.
    pub fn commit_seq(&self) -> u64 {
        self.commits
    }

    /// Every committed chunk placed on `node`, with its object's size class.
    pub fn chunks_on(&self, node: NodeId) -> Vec<ChunkId> {
        let mut chunks = Vec::new();
        for (key, object) in self.objects.iter() {
            for (index, slot) in object.placement.iter().enumerate() {
                if *slot == Some(node) {
                    chunks.push(ChunkId {
                        key: key.clone(),
                        version: object.version,
                        index: index as u8,
                    });
                }
            }
        }
        chunks
    }

    /// Brings the metadata in line with what `node` actually holds (`held`,
    /// from its inventory): objects committed up to `upto` lose the chunks
    /// it does not hold; what it holds that nothing refers to is garbage.
    /// The node's usage is recomputed from what remains.
    pub fn reconcile_node(
        &mut self,
        node: NodeId,
        held: &HashSet<ChunkId>,
        upto: u64,
    ) -> Reconciled {
        let mut result = Reconciled::default();
        for (key, object) in self.objects.iter_mut() {
            let mut damaged = false;
            for (index, slot) in object.placement.iter_mut().enumerate() {
                if *slot != Some(node) {
                    continue;
                }
                let id = ChunkId {
                    key: key.clone(),
                    version: object.version,
                    index: index as u8,
                };
                if held.contains(&id) {
                    result.kept += 1;
                } else if object.commit_seq <= upto {
                    *slot = None;
                    result.lost += 1;
                    damaged = true;
                }
            }
            if damaged {
                result.damaged.push((key.clone(), object.version));
            }
        }
        let pending: HashSet<(Key, u64)> = self
            .pending
            .iter()
            .map(|((key, _), put)| (key.clone(), put.version))
            .collect();
        for id in held {
            let referenced = self.objects.peek(&id.key).is_some_and(|object| {
                object.version == id.version
                    && object.placement.get(usize::from(id.index)) == Some(&Some(node))
            });
            let repairing = self.repairs.contains_key(&ChunkLoc {
                node,
                key: id.key.clone(),
                version: id.version,
                index: id.index,
            });
            if !referenced && !repairing && self.adopt(node, id) {
                result.kept += 1;
                continue;
            }
            if !referenced && !repairing && !pending.contains(&(id.key.clone(), id.version)) {
                result.garbage.push(ChunkLoc {
                    node,
                    key: id.key.clone(),
                    version: id.version,
                    index: id.index,
                });
            }
        }
        self.recompute_usage(node);
        result
    }

    /// A node holds a chunk of the visible version whose place is empty (an
    /// object recovered after a restart, or one whose loss was recorded
    /// too early): take it, unless the node already holds another chunk of
    /// that object.
    fn adopt(&mut self, node: NodeId, id: &ChunkId) -> bool {
        // Only in a fixed pool (a proxy restarted with `--no-window`). In an
        // elastic window a node's leftovers come from a bucket that expired
        // or was recycled: they are being dropped, and counting on them
        // would place chunks that are about to vanish.
        if self.window.is_elastic() {
            return false;
        }
        let Some(object) = self.objects.peek_mut(&id.key) else {
            return false;
        };
        if object.version != id.version || object.placement.contains(&Some(node)) {
            return false;
        }
        match object.placement.get_mut(usize::from(id.index)) {
            Some(slot) if slot.is_none() => {
                *slot = Some(node);
                true
            }
            _ => false,
        }
    }

    /// Recomputes a node's reserved bytes from the placements and the
    /// pending PUTs.
    fn recompute_usage(&mut self, node: NodeId) {
        let committed: u64 = self
            .objects
            .iter()
            .map(|(_, object)| {
                object.chunk_cost
                    * object
                        .placement
                        .iter()
                        .filter(|slot| **slot == Some(node))
                        .count() as u64
            })
            .sum();
        let reserved: u64 = self
            .pending
            .values()
            .map(|put| put.chunk_cost * put.placement.iter().filter(|&&n| n == node).count() as u64)
            .sum();
        let repairing: u64 = self
            .repairs
            .iter()
            .filter(|(loc, _)| loc.node == node)
            .map(|(_, cost)| cost)
            .sum();
        if let Some(usage) = self.nodes.get_mut(node as usize) {
            usage.used = committed + reserved + repairing;
        }
    }

    /// `node` answered that it does not hold a chunk the metadata placed
    /// there: record the loss. Returns whether anything changed.
    pub fn chunk_missing(&mut self, key: &Key, version: u64, index: u8, node: NodeId) -> bool {
        let Some(object) = self.objects.peek_mut(key) else {
            return false;
        };
        if object.version != version {
            return false;
        }
        let Some(slot) = object.placement.get_mut(usize::from(index)) else {
            return false;
        };
        if *slot != Some(node) {
            return false;
        }
        *slot = None;
        let cost = object.chunk_cost;
        if let Some(usage) = self.nodes.get_mut(node as usize) {
            usage.used = usage.used.saturating_sub(cost);
        }
        true
    }

    /// Restores an object from the manifest after a restart: visible at
    /// `version`, with no chunk placed yet (nodes' chunks are adopted when
    /// they are reconciled; the rest come from the object store).
    pub fn insert_recovered(&mut self, key: Key, version: u64, size: u64, params: CodecParams) {
        let chunk_cost = stored_chunk_cost(key.len(), params.shard_len(size));
        self.next_version = self.next_version.max(version.saturating_add(1));
        let old = self.objects.put(
            key.clone(),
            ObjectMeta {
                version,
                size,
                params,
                chunk_cost,
                placement: vec![None; params.total_shards()],
                commit_seq: 0,
                expires_at: None,
            },
        );
        if let Some(old) = old {
            self.track_expiry(&key, old.expires_at, None);
        }
    }

    /// Whether `version` of `key` is still wanted: the visible version, or
    /// one being PUT. Background work for other versions is moot.
    pub fn is_live(&self, key: &Key, version: u64) -> bool {
        self.objects
            .peek(key)
            .is_some_and(|object| object.version == version)
            || self
                .pending
                .iter()
                .any(|((pending_key, _), put)| pending_key == key && put.version == version)
    }

    /// The object under `key` without touching the LRU order.
    pub fn peek(&self, key: &Key) -> Option<ObjectMeta> {
        self.objects.peek(key).cloned()
    }

    /// Picks and reserves a node for rebuilt chunk `index` of `key` at
    /// `version`: the emptiest one of the newest bucket with room that holds
    /// no other chunk of the object (the bucket grows if none has). Returns
    /// where it goes; the reservation lasts until [`Metadata::repaired`] or
    /// [`Metadata::unreserve`].
    pub fn place_repair(&mut self, key: &Key, version: u64, index: u8) -> Option<ChunkLoc> {
        let object = self.objects.peek(key)?;
        if object.version != version {
            return None;
        }
        let cost = object.chunk_cost;
        let mut taken: HashSet<NodeId> = object.placement.iter().flatten().copied().collect();
        taken.extend(
            self.repairs
                .keys()
                .filter(|loc| loc.key == *key && loc.version == version)
                .map(|loc| loc.node),
        );
        let now = Instant::now();
        self.window.roll(now);
        let pick = |meta: &Self| {
            meta.window
                .newest()
                .iter()
                .copied()
                .filter(|node| {
                    !taken.contains(node)
                        && meta
                            .nodes
                            .get(*node as usize)
                            .is_some_and(|usage| usage.capacity.saturating_sub(usage.used) >= cost)
                })
                .max_by_key(|&node| {
                    let usage = meta.nodes[node as usize];
                    (usage.capacity - usage.used, std::cmp::Reverse(node))
                })
        };
        let node = match pick(self) {
            Some(node) => node,
            None => {
                self.window.grow(1, now);
                pick(self)?
            }
        };
        self.nodes[node as usize].used += cost;
        let loc = ChunkLoc {
            node,
            key: key.clone(),
            version,
            index,
        };
        self.repairs.insert(loc.clone(), cost);
        self.grow_if_full(now);
        Some(loc)
    }

    /// Chunks of `key` at `version` on nodes of degraded buckets, to move
    /// forward to the newest bucket after a read.
    pub fn degraded_chunks(&self, key: &Key, version: u64, now: Instant) -> Vec<ChunkLoc> {
        let Some(object) = self.objects.peek(key) else {
            return Vec::new();
        };
        if object.version != version {
            return Vec::new();
        }
        object
            .placement
            .iter()
            .enumerate()
            .filter_map(|(index, node)| {
                let node = (*node)?;
                (self.window.tier(node, now) == Tier::Degraded).then(|| ChunkLoc {
                    node,
                    key: key.clone(),
                    version,
                    index: index as u8,
                })
            })
            .collect()
    }

    /// A chunk placed by [`Metadata::place_repair`] is stored at `to` as a
    /// copy of the one at `from` (moved forward): `to` holds it from now on
    /// and `from`'s room is released. Returns `false` if the object changed
    /// meanwhile (or the chunk is no longer at `from`): the reservation is
    /// released and the copy must be dropped.
    pub fn moved(&mut self, to: &ChunkLoc, from: NodeId) -> bool {
        let Some(cost) = self.repairs.remove(to) else {
            return false;
        };
        if let Some(object) = self.objects.peek_mut(&to.key)
            && object.version == to.version
            && let Some(slot) = object.placement.get_mut(usize::from(to.index))
            && *slot == Some(from)
        {
            *slot = Some(to.node);
            // An inventory taken before this cannot speak for the object.
            self.commits += 1;
            object.commit_seq = self.commits;
            self.release_room(from, cost);
            return true;
        }
        self.release_room(to.node, cost);
        false
    }

    /// The rebuilt chunk `loc` (placed by [`Metadata::place_repair`]) is
    /// stored. Returns `false` if the object changed meanwhile: the
    /// reservation is released and the chunk must be dropped.
    pub fn repaired(&mut self, loc: &ChunkLoc) -> bool {
        let Some(cost) = self.repairs.remove(loc) else {
            return false;
        };
        // (A node released meanwhile gets no warm-ups: not a home.)
        if self.window.contains(loc.node)
            && let Some(object) = self.objects.peek_mut(&loc.key)
            && object.version == loc.version
            && let Some(slot) = object.placement.get_mut(usize::from(loc.index))
            && slot.is_none()
        {
            *slot = Some(loc.node);
            // An inventory taken before this cannot speak for the object:
            // a reconciliation running now must not call the chunk lost.
            self.commits += 1;
            object.commit_seq = self.commits;
            return true;
        }
        self.release_room(loc.node, cost);
        false
    }

    /// Releases the reservation of a rebuilt chunk that could not be stored.
    pub fn unreserve(&mut self, loc: &ChunkLoc) {
        if let Some(cost) = self.repairs.remove(loc) {
            self.release_room(loc.node, cost);
        }
    }

    /// A chunk the metadata had lost turned up again (on a node's backup)
    /// and was copied back to `loc.node`: record it there. Returns `false`
    /// if the object changed or the chunk is no longer missing.
    pub fn restore(&mut self, loc: &ChunkLoc) -> bool {
        // Not onto a released node, nor past the node's room (a cold
        // chunk's place is empty too, and it may simply stay cold).
        let room = self
            .nodes
            .get(loc.node as usize)
            .map_or(0, |usage| usage.capacity.saturating_sub(usage.used));
        if !self.window.contains(loc.node) || self.stale.contains_key(&loc.node) {
            return false;
        }
        let Some(object) = self.objects.peek_mut(&loc.key) else {
            return false;
        };
        if object.version != loc.version
            || object.placement.contains(&Some(loc.node))
            || object.chunk_cost > room
        {
            return false;
        }
        let cost = object.chunk_cost;
        match object.placement.get_mut(usize::from(loc.index)) {
            Some(slot) if slot.is_none() => *slot = Some(loc.node),
            _ => return false,
        }
        if let Some(usage) = self.nodes.get_mut(loc.node as usize) {
            usage.used += cost;
        }
        true
    }

    /// Whether `id` is a chunk the metadata knows is lost (its object is
    /// current at that version and nobody holds that index).
    pub fn is_lost(&self, id: &ChunkId) -> bool {
        self.objects.peek(&id.key).is_some_and(|object| {
            object.version == id.version
                && object.placement.get(usize::from(id.index)) == Some(&None)
        })
    }

    fn release_room(&mut self, node: NodeId, cost: u64) {
        if let Some(usage) = self.nodes.get_mut(node as usize) {
            usage.used = usage.used.saturating_sub(cost);
        }
    }

    /// Forgets an object that can no longer be decoded (fewer than `k`
    /// chunks left); returns its surviving chunks to drop.
    pub fn remove_lost(&mut self, key: &Key, version: u64) -> Option<Vec<ChunkLoc>> {
        if self.objects.peek(key)?.version != version {
            return None;
        }
        self.remove(key)
    }

    /// Records a node's own figure for its capacity.
    pub fn set_capacity(&mut self, node: NodeId, capacity: u64) {
        if let Some(usage) = self.nodes.get_mut(node as usize) {
            usage.capacity = capacity;
        }
    }

    /// Number of visible objects.
    pub fn len(&self) -> usize {
        self.objects.len()
    }

    /// Whether there are no visible objects.
    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }

    /// Bytes reserved on each node.
    pub fn node_used(&self, node: NodeId) -> u64 {
        self.nodes.get(node as usize).map_or(0, |usage| usage.used)
    }

    /// A node's capacity for chunks.
    pub fn node_capacity(&self, node: NodeId) -> u64 {
        self.nodes
            .get(node as usize)
            .map_or(0, |usage| usage.capacity)
    }

    /// Whether `condition` holds for `key` at `now_ms`: an expired object
    /// counts as absent.
    fn condition_holds(&self, key: &Key, condition: PutCondition, now_ms: u64) -> bool {
        let present = self
            .objects
            .peek(key)
            .is_some_and(|object| !object.expired(now_ms));
        match condition {
            PutCondition::IfAbsent => !present,
            PutCondition::IfPresent => present,
        }
    }

    /// Keeps the expiry index in line with `key`'s object changing its
    /// expiry from `old` to `new` (`None`: none, or no object).
    fn track_expiry(&mut self, key: &Key, old: Option<u64>, new: Option<u64>) {
        if old == new {
            return;
        }
        if let Some(at) = old {
            self.expiring.remove(&(at, key.clone()));
        }
        if let Some(at) = new {
            self.expiring.insert((at, key.clone()));
        }
    }

    /// Removes `key` if its object has expired at `now_ms`: returns the
    /// object and its chunks to drop. `None` if it is missing or live (a
    /// concurrent PUT may have replaced it since it was seen expired).
    pub fn take_expired(&mut self, key: &Key, now_ms: u64) -> Option<(ObjectMeta, Vec<ChunkLoc>)> {
        let object = self.objects.peek(key)?.clone();
        if !object.expired(now_ms) {
            return None;
        }
        let chunks = self.remove(key)?;
        Some((object, chunks))
    }

    /// Up to `limit` keys whose objects have expired at `now_ms`, those
    /// that expired first first.
    pub fn expired_keys(&self, now_ms: u64, limit: usize) -> Vec<Key> {
        self.expiring
            .iter()
            .take_while(|(at, _)| *at < now_ms)
            .take(limit)
            .map(|(_, key)| key.clone())
            .collect()
    }

    /// Objects that have expired at `now_ms` but are still held (the sweep
    /// has not reached them yet).
    fn expired_count(&self, now_ms: u64) -> usize {
        self.expiring
            .iter()
            .take_while(|(at, _)| *at < now_ms)
            .count()
    }

    /// Visible objects at `now_ms`: every object but the expired ones.
    pub fn live_len(&self, now_ms: u64) -> usize {
        self.objects
            .len()
            .saturating_sub(self.expired_count(now_ms))
    }

    /// Visible objects at `now_ms` that have an expiry.
    pub fn expiring_len(&self, now_ms: u64) -> usize {
        self.expiring
            .len()
            .saturating_sub(self.expired_count(now_ms))
    }

    /// Sets the expiry of `key`'s object if it is still at `version` (a
    /// recovered object, whose expiry the object store kept). Returns
    /// whether it was.
    pub fn set_expiry(&mut self, key: &Key, version: u64, expires_at: Option<u64>) -> bool {
        let Some(object) = self.objects.peek_mut(key) else {
            return false;
        };
        if object.version != version {
            return false;
        }
        let old = std::mem::replace(&mut object.expires_at, expires_at);
        self.track_expiry(key, old, expires_at);
        true
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use infinicache::ObjectCodec;

    use super::*;

    fn key(name: &str) -> Key {
        Key::try_from(name).expect("key")
    }

    fn headers(k: usize, r: usize, len: usize) -> Vec<ChunkHeader> {
        let codec = ObjectCodec::new(CodecParams::new(k, r).expect("params"));
        codec
            .encode(&Bytes::from(vec![1u8; len]), 0)
            .expect("encode")
            .into_iter()
            .map(|chunk| chunk.header)
            .collect()
    }

    /// Runs a whole PUT through the metadata, every chunk succeeding.
    fn put(
        meta: &mut Metadata,
        name: &str,
        k: usize,
        r: usize,
        len: usize,
    ) -> (u64, Vec<ChunkLoc>) {
        put_at(meta, name, k, r, len, Instant::now())
    }

    /// [`put`] at `now`.
    fn put_at(
        meta: &mut Metadata,
        name: &str,
        k: usize,
        r: usize,
        len: usize,
        now: Instant,
    ) -> (u64, Vec<ChunkLoc>) {
        let mut version = 0;
        let mut garbage = Vec::new();
        let hs = headers(k, r, len);
        for h in &hs {
            let joined = meta.join_put(&key(name), 7, h, now).expect("join");
            version = joined.version;
            garbage.extend(joined.drop_first);
            garbage.extend(joined.drop_later);
        }
        for h in &hs {
            if let Some(mut finished) = meta
                .chunk_done(&key(name), 7, h.index, Ok(()))
                .expect("pending")
            {
                assert_eq!(finished.outcome, Ok(version));
                finished.announce();
                garbage.extend(finished.garbage);
            }
        }
        (version, garbage)
    }

    #[test]
    fn chunks_go_to_distinct_nodes() {
        let mut meta = Metadata::new(12, 1 << 30);
        put(&mut meta, "a", 10, 2, 1000);
        let object = meta.get(&key("a")).expect("committed");
        let mut nodes: Vec<_> = object.placement.iter().flatten().collect();
        nodes.sort();
        nodes.dedup();
        assert_eq!(nodes.len(), 12);
    }

    #[test]
    fn invisible_until_every_chunk_is_stored() {
        let mut meta = Metadata::new(4, 1 << 30);
        let hs = headers(2, 2, 100);
        for h in &hs {
            meta.join_put(&key("a"), 1, h, Instant::now())
                .expect("join");
        }
        for h in &hs[..3] {
            assert!(
                meta.chunk_done(&key("a"), 1, h.index, Ok(()))
                    .expect("pending")
                    .is_none()
            );
            assert!(!meta.contains(&key("a")));
        }
        let finished = meta
            .chunk_done(&key("a"), 1, 3, Ok(()))
            .expect("pending")
            .expect("finished");
        assert!(finished.outcome.is_ok());
        assert!(meta.contains(&key("a")));
    }

    #[test]
    fn a_failed_chunk_aborts_and_frees_the_room() {
        let mut meta = Metadata::new(4, 1 << 30);
        let hs = headers(2, 2, 100);
        for h in &hs {
            meta.join_put(&key("a"), 1, h, Instant::now())
                .expect("join");
        }
        let mut finished = None;
        for h in &hs {
            let result = if h.index == 2 {
                Err(ErrorReply::new(ErrorCode::Unavailable, "node down"))
            } else {
                Ok(())
            };
            finished = meta
                .chunk_done(&key("a"), 1, h.index, result)
                .expect("pending");
        }
        let finished = finished.expect("finished");
        assert!(finished.outcome.is_err());
        assert_eq!(finished.garbage.len(), 3, "stored chunks must be dropped");
        assert!(!meta.contains(&key("a")));
        assert!((0..4).all(|n| meta.node_used(n) == 0));
    }

    #[test]
    fn overwrite_replaces_and_garbage_collects_the_old_version() {
        let mut meta = Metadata::new(4, 1 << 30);
        let (v1, _) = put(&mut meta, "a", 2, 2, 100);
        let (v2, garbage) = put(&mut meta, "a", 2, 2, 100);
        assert!(v2 > v1);
        assert_eq!(garbage.len(), 4);
        assert!(garbage.iter().all(|loc| loc.version == v1));
        assert_eq!(meta.get(&key("a")).expect("object").version, v2);
    }

    #[test]
    fn lru_eviction_makes_room_and_spares_recent_objects() {
        // Each node holds two chunks of a 2+2 object of 4000 bytes.
        let cost = stored_chunk_cost(1, 2000);
        let mut meta = Metadata::new(4, 2 * cost);
        put(&mut meta, "a", 2, 2, 4000);
        put(&mut meta, "b", 2, 2, 4000);
        meta.get(&key("a")); // a is now more recent than b
        let (_, garbage) = put(&mut meta, "c", 2, 2, 4000);
        assert!(meta.contains(&key("a")) && meta.contains(&key("c")));
        assert!(!meta.contains(&key("b")), "b was least recently used");
        assert_eq!(garbage.len(), 4);
        assert!(garbage.iter().all(|loc| loc.key == key("b")));
    }

    #[test]
    fn objects_larger_than_the_pool_are_refused() {
        let mut meta = Metadata::new(4, 1000);
        let h = headers(2, 2, 10_000);
        let err = meta
            .join_put(&key("a"), 1, &h[0], Instant::now())
            .expect_err("too large");
        assert_eq!(err.code, ErrorCode::TooLarge);
        let err = Metadata::new(3, 1 << 30)
            .join_put(&key("a"), 1, &h[0], Instant::now())
            .expect_err("too few nodes");
        assert_eq!(err.code, ErrorCode::InvalidArgument);
    }

    #[test]
    fn duplicate_and_inconsistent_chunks_are_refused() {
        let mut meta = Metadata::new(4, 1 << 30);
        let h = headers(2, 2, 100);
        meta.join_put(&key("a"), 1, &h[0], Instant::now())
            .expect("join");
        assert!(meta.join_put(&key("a"), 1, &h[0], Instant::now()).is_err());
        let other = headers(2, 2, 300);
        assert!(
            meta.join_put(&key("a"), 1, &other[1], Instant::now())
                .is_err()
        );
    }

    #[test]
    fn expired_puts_are_aborted() {
        let mut meta = Metadata::new(4, 1 << 30);
        let h = headers(2, 2, 100);
        let start = Instant::now();
        meta.join_put(&key("a"), 1, &h[0], start).expect("join");
        let finished = meta.expire_puts(start + std::time::Duration::from_secs(1));
        assert_eq!(finished.len(), 1);
        assert!(finished[0].outcome.is_err());
        assert!(
            meta.chunk_done(&key("a"), 1, 0, Ok(())).is_err(),
            "late chunk must be dropped"
        );
    }

    #[test]
    fn lost_node_memory_marks_chunks_lost() {
        let mut meta = Metadata::new(4, 1 << 30);
        put(&mut meta, "a", 2, 2, 100);
        assert_eq!(meta.node_lost_memory(1), 1);
        let object = meta.get(&key("a")).expect("object");
        assert_eq!(object.placement.iter().filter(|n| n.is_none()).count(), 1);
        assert_eq!(meta.node_used(1), 0);
        let garbage = meta.remove(&key("a")).expect("existed");
        assert_eq!(garbage.len(), 3, "lost chunks are not dropped again");
    }

    fn id(name: &str, version: u64, index: u8) -> ChunkId {
        ChunkId {
            key: key(name),
            version,
            index,
        }
    }

    #[test]
    fn versions_are_exact_in_every_binding() {
        let first = first_version();
        assert!(first > 1 << 40, "numbered from the clock");
        assert!(first < 1 << 53, "JavaScript numbers hold it exactly");
    }

    #[test]
    fn reconciling_keeps_what_the_node_holds_and_drops_the_rest() {
        let mut meta = Metadata::new(4, 1 << 30);
        let (va, _) = put(&mut meta, "a", 2, 2, 100);
        let (vb, _) = put(&mut meta, "b", 2, 2, 100);
        let node = meta.get(&key("a")).expect("a").placement[0].expect("placed");
        let on_node = meta.chunks_on(node);
        assert_eq!(on_node.len(), 2, "4 chunks per object on 4 nodes: one each");
        let a_index = on_node.iter().find(|c| c.key == key("a")).expect("a").index;

        // The node holds a's chunk, not b's, plus a stale leftover.
        let held: HashSet<ChunkId> = [id("a", va, a_index), id("old", 1, 0)].into();
        let result = meta.reconcile_node(node, &held, meta.commit_seq());
        assert_eq!((result.kept, result.lost), (1, 1));
        assert_eq!(result.damaged, vec![(key("b"), vb)]);
        assert_eq!(result.garbage.len(), 1);
        assert_eq!(result.garbage[0].key, key("old"));
        assert_eq!(meta.get(&key("b")).expect("b").lost(), 1);
        assert_eq!(meta.get(&key("a")).expect("a").lost(), 0);
        let cost = meta.get(&key("a")).expect("a").chunk_cost;
        assert_eq!(meta.node_used(node), cost, "usage is what remains");
    }

    #[test]
    fn reconciling_spares_objects_committed_after_the_listing() {
        let mut meta = Metadata::new(4, 1 << 30);
        let upto = meta.commit_seq();
        put(&mut meta, "late", 2, 2, 100);
        let node = meta.get(&key("late")).expect("late").placement[1].expect("placed");
        let result = meta.reconcile_node(node, &HashSet::new(), upto);
        assert_eq!(result.lost, 0, "the inventory predates the commit");
        assert_eq!(meta.get(&key("late")).expect("late").lost(), 0);
    }

    #[test]
    fn repair_places_rebuilt_chunks_off_the_object() {
        let mut meta = Metadata::new(5, 1 << 30);
        let (v, _) = put(&mut meta, "a", 2, 2, 100);
        let cost = meta.get(&key("a")).expect("a").chunk_cost;
        let lost_node = meta.get(&key("a")).expect("a").placement[3].expect("placed");
        assert!(meta.chunk_missing(&key("a"), v, 3, lost_node));
        assert!(
            !meta.chunk_missing(&key("a"), v, 3, lost_node),
            "counted once"
        );
        assert!(meta.is_lost(&id("a", v, 3)));
        let loc = meta.place_repair(&key("a"), v, 3).expect("room");
        let holders: Vec<NodeId> = meta
            .get(&key("a"))
            .expect("a")
            .placement
            .iter()
            .flatten()
            .copied()
            .collect();
        assert!(
            !holders.contains(&loc.node),
            "never two chunks of one object on a node"
        );
        // A reconciliation while the chunk is in flight neither drops it
        // nor forgets its reservation.
        let held: HashSet<ChunkId> = [id("a", v, 3)].into();
        let result = meta.reconcile_node(loc.node, &held, meta.commit_seq());
        assert!(result.garbage.is_empty(), "{result:?}");
        assert_eq!(meta.node_used(loc.node), cost);
        assert!(meta.repaired(&loc));
        assert_eq!(meta.get(&key("a")).expect("a").lost(), 0);
        assert_eq!(meta.node_used(loc.node), cost);

        // A repair that lands after an overwrite is refused and unreserved.
        let gone = meta.get(&key("a")).expect("a").placement[0].expect("placed");
        assert!(meta.chunk_missing(&key("a"), v, 0, gone));
        let late = meta.place_repair(&key("a"), v, 0).expect("room");
        let (v2, _) = put(&mut meta, "a", 2, 2, 100);
        let before = meta.node_used(late.node);
        assert!(!meta.repaired(&late));
        assert_eq!(meta.node_used(late.node), before - cost);
        assert!(meta.place_repair(&key("a"), v, 0).is_none(), "old version");
        assert!(
            meta.remove_lost(&key("a"), v).is_none(),
            "not the current version"
        );
        assert_eq!(meta.remove_lost(&key("a"), v2).map(|g| g.len()), Some(4));
        assert!(!meta.contains(&key("a")));
    }

    #[test]
    fn a_chunk_found_on_a_backup_is_restored_once() {
        let mut meta = Metadata::new(4, 1 << 30);
        let (v, _) = put(&mut meta, "a", 2, 2, 100);
        let node = meta.get(&key("a")).expect("a").placement[2].expect("placed");
        let used = meta.node_used(node);
        meta.node_lost_memory(node);
        let loc = ChunkLoc {
            node,
            key: key("a"),
            version: v,
            index: 2,
        };
        assert!(meta.restore(&loc));
        assert!(!meta.restore(&loc), "only while missing");
        assert_eq!(meta.node_used(node), used);
        assert_eq!(meta.get(&key("a")).expect("a").lost(), 0);
    }

    #[test]
    fn recovered_objects_adopt_the_chunks_nodes_still_hold() {
        let mut meta = Metadata::new(4, 1 << 30);
        let params = CodecParams::new(2, 2).expect("params");
        meta.insert_recovered(key("a"), 42, 100, params);
        assert_eq!(meta.get(&key("a")).expect("a").lost(), 4);
        assert!(
            meta.next_version > 42,
            "new versions come after recovered ones"
        );

        // Node 1 still holds chunk 2; the stale version 41 is garbage.
        let held: HashSet<ChunkId> = [id("a", 42, 2), id("a", 41, 0)].into();
        let result = meta.reconcile_node(1, &held, meta.commit_seq());
        assert_eq!(result.kept, 1);
        assert_eq!(result.garbage.len(), 1);
        assert_eq!(result.garbage[0].version, 41);
        let object = meta.get(&key("a")).expect("a");
        assert_eq!(object.placement[2], Some(1));
        assert_eq!(meta.node_used(1), object.chunk_cost);

        // A node never holds two chunks of one object.
        let both: HashSet<ChunkId> = [id("a", 42, 2), id("a", 42, 3)].into();
        let result = meta.reconcile_node(1, &both, meta.commit_seq());
        assert_eq!((result.kept, result.garbage.len()), (1, 1));
        assert_eq!(result.garbage[0].index, 3);
    }

    fn window_settings() -> crate::cluster::window::WindowSettings {
        crate::cluster::window::WindowSettings {
            enabled: true,
            bucket_length: std::time::Duration::from_secs(10),
            active_buckets: 1,
            available_buckets: 2,
            grow_threshold: 0.9,
        }
    }

    /// An elastic pool of `pool` nodes growing by 2 (k = 1, r = 1), each
    /// node with room for `chunks` chunks of a 100-byte object.
    fn elastic(pool: usize, chunks: u64) -> (Metadata, u64) {
        let cost = stored_chunk_cost(1, headers(1, 1, 100)[0].body_len());
        let window = Window::elastic(pool, 2, window_settings());
        (
            Metadata::with_window(pool, chunks * cost, window, true, 0.9),
            cost,
        )
    }

    fn nodes_of(meta: &Metadata, name: &str) -> Vec<NodeId> {
        let object = meta.peek(&key(name)).expect("object");
        object.placement.iter().flatten().copied().collect()
    }

    #[test]
    fn the_newest_bucket_grows_by_a_step_when_nearly_full() {
        let (mut meta, _) = elastic(6, 2);
        let t0 = Instant::now();
        put_at(&mut meta, "a", 1, 1, 100, t0);
        assert_eq!(meta.window().functions(), 2, "the first bucket: one step");
        assert_eq!(nodes_of(&meta, "a").len(), 2);
        // Two chunks per node: the second object fills the bucket, which
        // grows so the third finds room without evicting.
        let (_, garbage) = put_at(&mut meta, "b", 1, 1, 100, t0);
        assert!(garbage.is_empty());
        assert_eq!(meta.window().functions(), 4);
        let (_, garbage) = put_at(&mut meta, "c", 1, 1, 100, t0);
        assert!(garbage.is_empty());
        let c = nodes_of(&meta, "c");
        assert!(
            c.iter().all(|&node| node >= 2),
            "on the new functions: {c:?}"
        );
        assert_eq!(meta.cold_objects(), 0);
    }

    #[test]
    fn a_full_pool_with_an_object_store_makes_objects_cold_not_gone() {
        let cost = stored_chunk_cost(1, headers(1, 1, 100)[0].body_len());
        let mut meta = Metadata::with_window(2, cost, Window::fixed(2, Instant::now()), true, 1.0);
        put(&mut meta, "a", 1, 1, 100);
        let (_, garbage) = put(&mut meta, "b", 1, 1, 100);
        assert_eq!(garbage.len(), 2, "a's chunks leave memory");
        let a = meta.get(&key("a")).expect("a is still visible");
        assert!(a.is_cold());
        assert_eq!(meta.cold_objects(), 1);
        assert_eq!(meta.node_used(0) + meta.node_used(1), 2 * cost);
        // A repair brings it back (evicting b in turn).
        assert!(
            meta.place_repair(&key("a"), a.version, 0).is_none(),
            "no room yet"
        );
    }

    #[test]
    fn expired_buckets_release_their_functions_and_their_objects_go_cold() {
        let (mut meta, _) = elastic(4, 4);
        let t0 = Instant::now();
        put_at(&mut meta, "old", 1, 1, 100, t0);
        let later = t0 + std::time::Duration::from_secs(10);
        put_at(&mut meta, "new", 1, 1, 100, later);
        let (old, new) = (nodes_of(&meta, "old"), nodes_of(&meta, "new"));
        assert!(
            old.iter().all(|node| !new.contains(node)),
            "one bucket each"
        );
        assert_eq!(meta.tier(old[0], later), Tier::Degraded);
        assert_eq!(meta.tier(new[0], later), Tier::Active);

        let rolled = meta.expire_window(t0 + std::time::Duration::from_secs(20));
        assert_eq!(rolled.expired, 1);
        let mut released = rolled.released.clone();
        released.sort_unstable();
        assert_eq!(released, old);
        assert!(meta.peek(&key("old")).expect("still visible").is_cold());
        assert!(!meta.peek(&key("new")).expect("new").is_cold());
        assert!(old.iter().all(|&node| meta.node_used(node) == 0));
        assert_eq!(meta.tier(old[0], later), Tier::Free);

        // The released functions open the next bucket: what they may still
        // hold of "old" is dropped before anything new is stored there, and
        // never adopted back.
        let (_, garbage) = put_at(
            &mut meta,
            "next",
            1,
            1,
            100,
            t0 + std::time::Duration::from_secs(20),
        );
        let mut dropped: Vec<NodeId> = garbage.iter().map(|chunk| chunk.node).collect();
        dropped.sort_unstable();
        assert_eq!(dropped, old);
        assert!(garbage.iter().all(|chunk| chunk.key == key("old")));
        assert_eq!(nodes_of(&meta, "next").len(), 2);
    }

    #[test]
    fn degraded_chunks_move_forward_and_release_their_room() {
        let (mut meta, cost) = elastic(4, 4);
        let t0 = Instant::now();
        let (version, _) = put_at(&mut meta, "a", 1, 1, 100, t0);
        let later = t0 + std::time::Duration::from_secs(10);
        put_at(&mut meta, "b", 1, 1, 100, later);
        let degraded = meta.degraded_chunks(&key("a"), version, later);
        assert_eq!(degraded.len(), 2);
        let newest = meta.window().newest().to_vec();
        for from in degraded {
            let to = meta
                .place_repair(&key("a"), version, from.index)
                .expect("room in the newest bucket");
            assert!(newest.contains(&to.node));
            assert!(meta.moved(&to, from.node));
            assert_eq!(meta.node_used(from.node), 0);
            assert_eq!(meta.node_used(to.node), 2 * cost);
        }
        assert!(meta.degraded_chunks(&key("a"), version, later).is_empty());
        // A stale move (the chunk is no longer where it was) is refused.
        let to = meta.place_repair(&key("b"), version, 0);
        assert!(to.is_none(), "b's version differs");
    }

    #[test]
    fn a_chunk_rebuilt_onto_a_released_node_is_not_recorded() {
        let (mut meta, _) = elastic(4, 4);
        let t0 = Instant::now();
        let (version, _) = put_at(&mut meta, "a", 1, 1, 100, t0);
        let node = nodes_of(&meta, "a")[0];
        assert!(
            meta.chunk_missing(&key("a"), version, 0, node)
                || meta.chunk_missing(&key("a"), version, 1, node)
        );
        let missing = meta
            .peek(&key("a"))
            .expect("a")
            .placement
            .iter()
            .position(Option::is_none)
            .expect("one lost") as u8;
        let loc = meta
            .place_repair(&key("a"), version, missing)
            .expect("room");
        meta.expire_window(t0 + std::time::Duration::from_secs(60));
        assert!(!meta.repaired(&loc), "its bucket expired meanwhile");
        assert!(meta.peek(&key("a")).expect("a").is_cold());
    }

    /// Runs a whole PUT with `options`; the outcome its chunks were told.
    fn put_with(meta: &mut Metadata, name: &str, put_id: u64, options: PutOptions) -> PutOutcome {
        let hs = headers(2, 2, 100);
        for h in &hs {
            meta.join_put_with(&key(name), put_id, h, Instant::now(), options)?;
        }
        let mut outcome = Err(ErrorReply::new(ErrorCode::Internal, "never finished"));
        for h in &hs {
            if let Some(finished) = meta
                .chunk_done(&key(name), put_id, h.index, Ok(()))
                .expect("pending")
            {
                outcome = finished.outcome;
            }
        }
        outcome
    }

    fn nx() -> PutOptions {
        PutOptions {
            condition: Some(PutCondition::IfAbsent),
            ..PutOptions::default()
        }
    }

    fn xx() -> PutOptions {
        PutOptions {
            condition: Some(PutCondition::IfPresent),
            ..PutOptions::default()
        }
    }

    fn expiring(at: u64) -> PutOptions {
        PutOptions {
            expiry: Expiry::At(at),
            ..PutOptions::default()
        }
    }

    #[test]
    fn conditions_are_checked_when_the_put_starts() {
        let mut meta = Metadata::new(4, 1 << 30);
        let err = put_with(&mut meta, "a", 1, xx()).expect_err("a is absent");
        assert_eq!(err.code, CONDITION_NOT_MET);
        assert!(
            meta.pending.is_empty(),
            "a refused PUT leaves nothing pending"
        );
        assert!(
            (0..4).all(|n| meta.node_used(n) == 0),
            "and reserves nothing"
        );
        let v1 = put_with(&mut meta, "a", 2, nx()).expect("a was absent");
        let err = put_with(&mut meta, "a", 3, nx()).expect_err("a is there now");
        assert_eq!(err.code, CONDITION_NOT_MET);
        let v2 = put_with(&mut meta, "a", 4, xx()).expect("a is there");
        assert!(v2 > v1);
        assert_eq!(meta.get(&key("a")).expect("a").version, v2);
    }

    #[test]
    fn conditions_are_checked_again_at_commit() {
        // Two SET NX of one key start together: both see it absent, only the
        // first to commit wins; the other is aborted and leaves no trace.
        let mut meta = Metadata::new(4, 1 << 30);
        let hs = headers(2, 2, 100);
        for put_id in [1, 2] {
            for h in &hs {
                meta.join_put_with(&key("a"), put_id, h, Instant::now(), nx())
                    .expect("absent when the PUT starts");
            }
        }
        let mut outcomes = Vec::new();
        for put_id in [2, 1] {
            for h in &hs {
                if let Some(finished) = meta
                    .chunk_done(&key("a"), put_id, h.index, Ok(()))
                    .expect("pending")
                {
                    if finished.outcome.is_err() {
                        assert_eq!(finished.garbage.len(), 4, "its chunks are dropped");
                        assert!(finished.committed.is_none());
                    }
                    outcomes.push(finished.outcome);
                }
            }
        }
        assert!(outcomes[0].is_ok(), "{outcomes:?}");
        assert_eq!(
            outcomes[1].as_ref().map_err(|err| err.code),
            Err(CONDITION_NOT_MET)
        );
        let winner = *outcomes[0].as_ref().expect("ok");
        assert_eq!(meta.get(&key("a")).expect("a").version, winner);
        let cost = meta.get(&key("a")).expect("a").chunk_cost;
        assert_eq!((0..4).map(|n| meta.node_used(n)).sum::<u64>(), 4 * cost);
    }

    #[test]
    fn expired_objects_count_as_absent_and_leave_live_counts() {
        let mut meta = Metadata::new(4, 1 << 30);
        let now = unix_millis();
        put_with(&mut meta, "gone", 1, expiring(now - 1)).expect("put");
        put_with(&mut meta, "later", 2, expiring(now + 3_600_000)).expect("put");
        put_with(&mut meta, "forever", 3, PutOptions::default()).expect("put");
        assert_eq!(meta.len(), 3);
        assert_eq!(meta.live_len(now), 2);
        assert_eq!(meta.expiring_len(now), 1);
        assert_eq!(meta.expired_keys(now, 10), vec![key("gone")]);
        assert!(meta.peek(&key("gone")).expect("held").expired(now));

        // NX treats an expired object as absent and replaces it.
        put_with(&mut meta, "gone", 4, nx()).expect("expired counts as absent");
        assert_eq!(meta.live_len(now), 3);
        assert!(meta.expired_keys(now, 10).is_empty());
        assert_eq!(meta.peek(&key("gone")).expect("gone").expires_at, None);

        // Removal takes expired objects only.
        assert!(meta.take_expired(&key("later"), now).is_none(), "live");
        let far = now + 7_200_000;
        let (object, chunks) = meta
            .take_expired(&key("later"), far)
            .expect("expired by then");
        assert_eq!(chunks.len(), 4);
        assert_eq!(object.expires_at, Some(now + 3_600_000));
        assert!(!meta.contains(&key("later")));
        assert_eq!(meta.expiring_len(now), 0);
    }

    #[test]
    fn keepttl_keeps_the_replaced_objects_expiry_and_plain_puts_clear_it() {
        let mut meta = Metadata::new(4, 1 << 30);
        let at = unix_millis() + 60_000;
        put_with(&mut meta, "a", 1, expiring(at)).expect("put");
        let keep = PutOptions {
            expiry: Expiry::Keep,
            ..PutOptions::default()
        };
        put_with(&mut meta, "a", 2, keep).expect("put");
        assert_eq!(meta.peek(&key("a")).expect("a").expires_at, Some(at));
        assert_eq!(meta.expiring.len(), 1);
        put_with(&mut meta, "a", 3, PutOptions::default()).expect("put");
        assert_eq!(meta.peek(&key("a")).expect("a").expires_at, None);
        assert!(meta.expiring.is_empty(), "the index follows");
        put_with(&mut meta, "b", 4, keep).expect("put");
        assert_eq!(
            meta.peek(&key("b")).expect("b").expires_at,
            None,
            "nothing to keep"
        );
    }

    #[test]
    fn recovered_objects_get_their_expiry_back_for_their_version_only() {
        let mut meta = Metadata::new(4, 1 << 30);
        let params = CodecParams::new(2, 2).expect("params");
        meta.insert_recovered(key("a"), 42, 100, params);
        assert!(!meta.set_expiry(&key("a"), 41, Some(5)), "another version");
        assert!(!meta.set_expiry(&key("b"), 42, Some(5)), "no such object");
        assert!(meta.set_expiry(&key("a"), 42, Some(5)));
        assert_eq!(meta.expired_keys(6, 10), vec![key("a")]);
        assert!(meta.remove(&key("a")).is_some());
        assert!(meta.expiring.is_empty());
    }
}
