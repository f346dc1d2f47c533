//! Repair: rebuild an object's lost chunks from the survivors and write
//! them back, so losses do not accumulate until the object is gone.
//!
//! A GET that finds a chunk lost (its node's memory is gone, or the node
//! answers that it does not hold it) requests a repair of that object. The
//! repair reads the surviving chunks, rebuilds the missing ones with the
//! object's codec, and stores each on a node that holds no other chunk of
//! the object. Only a definite loss counts: a node that is slow or
//! unreachable may still hold its chunk, so the repair then waits for the
//! next GET. With fewer than `k` chunks left the object cannot be decoded
//! any more; it is forgotten (its survivors dropped) and counted as lost.

use std::sync::Arc;

use futures::stream::{FuturesUnordered, StreamExt};
use infinicache::codec::Chunk;
use infinicache::protocol::{Key, NodeReply, NodeRequest};
use thiserror::Error;

use super::metadata::{ChunkLoc, NodeId};
use super::{Cluster, Counters};

/// Repairs (and moves) running at once; more wait their turn. Each one
/// reads and writes its chunks in parallel, so recovery from the object
/// store keeps many node environments busy at once, as InfiniStore's
/// parallel recovery does.
pub const MAX_CONCURRENT_REPAIRS: usize = 8;

/// Why a repair did not complete.
#[derive(Debug, Error)]
pub enum RepairError {
    #[error("only {left} of the {needed} chunks needed are left: the object is lost")]
    Lost { left: usize, needed: usize },
    #[error("{available} chunks answered, {needed} needed; retrying on a later read")]
    Incomplete { available: usize, needed: usize },
    #[error("cannot rebuild: {0}")]
    Codec(String),
}

impl Cluster {
    /// `node` answered that it does not hold a chunk it was given: record the
    /// loss (once).
    pub fn chunk_missing(&self, key: &Key, version: u64, index: u8, node: NodeId) {
        if self.meta().chunk_missing(key, version, index, node) {
            Counters::add(&self.counters.chunks_lost, 1);
        }
    }

    /// Repairs `key` at `version` in the background, unless a repair of it
    /// is already running.
    ///
    /// At most [`MAX_CONCURRENT_REPAIRS`] run at once: each holds an
    /// object's chunks in memory and may invoke every node holding one, and
    /// losing a node can damage every object at once.
    pub fn request_repair(self: &Arc<Self>, key: Key, version: u64) {
        if !self.repairing.lock().insert(key.clone()) {
            return;
        }
        let cluster = self.clone();
        tokio::spawn(async move {
            let permit = cluster.repair_permits.clone().acquire_owned().await;
            let outcome = match permit {
                Ok(_permit) => cluster.repair(&key, version).await,
                Err(_) => Ok(0),
            };
            match outcome {
                Ok(0) => {}
                Ok(n) => tracing::debug!(%key, version, chunks = n, "repaired"),
                Err(err) => tracing::warn!(%key, version, error = %err, "repair failed"),
            }
            cluster.repairing.lock().remove(&key);
        });
    }

    /// Rebuilds and stores the lost chunks of `key` at `version`; returns
    /// how many were written back.
    pub async fn repair(self: &Arc<Self>, key: &Key, version: u64) -> Result<usize, RepairError> {
        let Some(object) = self.meta().peek(key) else {
            return Ok(0);
        };
        if object.version != version {
            return Ok(0);
        }
        let (k, r) = (object.params.data_shards(), object.params.parity_shards());

        let mut fetches = FuturesUnordered::new();
        for (index, node) in object.placement.iter().enumerate() {
            let Some(node) = *node else { continue };
            let request = NodeRequest::Fetch {
                key: key.clone(),
                version,
                index: index as u8,
            };
            let cluster = self.clone();
            fetches.push(async move { (index as u8, node, cluster.call(node, &request).await) });
        }
        let mut survivors: Vec<Chunk> = Vec::with_capacity(k + r);
        let mut lost: Vec<u8> = object
            .placement
            .iter()
            .enumerate()
            .filter(|(_, node)| node.is_none())
            .map(|(index, _)| index as u8)
            .collect();
        while let Some((index, node, reply)) = fetches.next().await {
            match reply {
                Ok(NodeReply::Chunk(chunk))
                    if chunk.header.version == version
                        && chunk.header.index == index
                        && chunk.verify().is_ok() =>
                {
                    survivors.push(chunk);
                }
                Ok(NodeReply::Missing) => {
                    self.chunk_missing(key, version, index, node);
                    lost.push(index);
                }
                // Unreachable, slow or odd: maybe not lost. Not rebuilt now.
                other => {
                    tracing::debug!(%key, index, node, reply = ?other.map(|_| ()), "repair could not read a chunk");
                }
            }
        }

        // With a durable layer, a lost (or cold) chunk is simply read back
        // from it: one read instead of k, and no decoding. All at once.
        let mut rebuilt: Vec<Chunk> = Vec::new();
        let mut recovered: Vec<u8> = Vec::new();
        if let Some(durable) = self.durable() {
            let mut still_lost = Vec::new();
            let mut reads: FuturesUnordered<_> = lost
                .iter()
                .map(|&index| async move { (index, durable.fetch(key, version, index).await) })
                .collect();
            while let Some((index, read)) = reads.next().await {
                match read {
                    Ok(Some(chunk)) => {
                        recovered.push(index);
                        survivors.push(chunk.clone());
                        rebuilt.push(chunk);
                    }
                    Ok(None) => still_lost.push(index),
                    Err(err) => {
                        tracing::warn!(%key, index, error = %err, "cannot read a chunk back from the COS");
                        still_lost.push(index);
                    }
                }
            }
            lost = still_lost;
        }

        if survivors.len() < k {
            if lost.len() > r {
                if let Some(garbage) = self.meta().remove_lost(key, version) {
                    Counters::add(&self.counters.objects_lost, 1);
                    self.forget_versions(&garbage);
                    self.drop_chunks(garbage);
                }
                return Err(RepairError::Lost {
                    left: k + r - lost.len(),
                    needed: k,
                });
            }
            return Err(RepairError::Incomplete {
                available: survivors.len(),
                needed: k,
            });
        }
        if !lost.is_empty() {
            lost.sort_unstable();
            let codec = self.codec(object.params);
            let missing = lost.clone();
            let decoded =
                tokio::task::spawn_blocking(move || codec.reconstruct(&survivors, &missing))
                    .await
                    .map_err(|err| RepairError::Codec(err.to_string()))?
                    .map_err(|err| RepairError::Codec(err.to_string()))?;
            rebuilt.extend(decoded);
        }
        if rebuilt.is_empty() {
            return Ok(0);
        }

        // Every chunk gets its node first (one reservation each), then all
        // are stored at once.
        let mut stores = FuturesUnordered::new();
        for chunk in rebuilt {
            let Some(loc) = self.meta().place_repair(key, version, chunk.header.index) else {
                tracing::debug!(%key, "no node has room for a rebuilt chunk");
                break;
            };
            let from_cos = recovered.contains(&chunk.header.index);
            stores.push(self.store_placed(loc, chunk, from_cos));
        }
        let mut repaired = 0;
        while let Some(stored) = stores.next().await {
            if let Some(loc) = stored {
                if self.meta().repaired(&loc) {
                    repaired += 1;
                } else {
                    // Overwritten or deleted meanwhile.
                    self.drop_chunks(vec![loc]);
                }
            }
        }
        Counters::add(&self.counters.chunks_repaired, repaired as u64);
        Ok(repaired)
    }

    /// Stores `chunk` where `loc` (a reservation) says; gives the
    /// reservation back if it cannot. Counts chunks recovered from the
    /// object store.
    async fn store_placed(
        self: &Arc<Self>,
        loc: ChunkLoc,
        chunk: Chunk,
        from_cos: bool,
    ) -> Option<ChunkLoc> {
        let bytes = chunk.body.len() as u64;
        // A node released earlier may still hold chunks of its old bucket.
        let stale = self.meta().take_stale(loc.node);
        for chunk in stale {
            self.drop_chunk(chunk).await;
        }
        match self.store_chunk(loc.node, &loc.key, chunk).await {
            Ok(NodeReply::Stored { .. }) => {
                if from_cos {
                    Counters::add(&self.counters.chunks_recovered, 1);
                    Counters::add(&self.counters.bytes_recovered, bytes);
                }
                Some(loc)
            }
            other => {
                tracing::debug!(key = %loc.key, node = loc.node, reply = ?other.map(|_| ()),
                    "could not store a chunk");
                self.meta().unreserve(&loc);
                None
            }
        }
    }

    /// Moves the chunks of `key` at `version` that sit in degraded buckets
    /// forward to the newest one, in the background (an object read is
    /// likely to be read again: it should stay warm). Shares the repairs'
    /// bound and their one-job-per-object rule.
    pub fn request_move(self: &Arc<Self>, key: Key, version: u64) {
        let degraded = {
            let mut meta = self.meta();
            let now = std::time::Instant::now();
            meta.roll_for_read(now);
            !meta.degraded_chunks(&key, version, now).is_empty()
        };
        if !degraded || !self.repairing.lock().insert(key.clone()) {
            return;
        }
        let cluster = self.clone();
        tokio::spawn(async move {
            if let Ok(_permit) = cluster.repair_permits.clone().acquire_owned().await {
                let moved = cluster.move_forward(&key, version).await;
                if moved > 0 {
                    tracing::debug!(%key, version, chunks = moved, "moved forward");
                }
                // A chunk found lost on the way (or a repair requested while
                // this job held the key) is repaired now, in the same job.
                let lost = cluster
                    .meta()
                    .peek(&key)
                    .is_some_and(|object| object.version == version && object.lost() > 0);
                if lost && let Err(err) = cluster.repair(&key, version).await {
                    tracing::warn!(%key, version, error = %err, "repair after a move failed");
                }
            }
            cluster.repairing.lock().remove(&key);
        });
    }

    /// Copies each degraded chunk of the object to a node of the newest
    /// bucket, then drops the original. Returns how many moved.
    async fn move_forward(self: &Arc<Self>, key: &Key, version: u64) -> usize {
        let degraded = self
            .meta()
            .degraded_chunks(key, version, std::time::Instant::now());
        let mut moves = FuturesUnordered::new();
        for from in degraded {
            let Some(to) = self.meta().place_repair(key, version, from.index) else {
                break;
            };
            let cluster = self.clone();
            moves.push(async move {
                let request = NodeRequest::Fetch {
                    key: from.key.clone(),
                    version,
                    index: from.index,
                };
                let chunk = match cluster.call(from.node, &request).await {
                    Ok(NodeReply::Chunk(chunk))
                        if chunk.header.version == version
                            && chunk.header.index == from.index
                            && chunk.verify().is_ok() =>
                    {
                        chunk
                    }
                    Ok(NodeReply::Missing) => {
                        cluster.chunk_missing(&from.key, version, from.index, from.node);
                        cluster.meta().unreserve(&to);
                        return false;
                    }
                    other => {
                        tracing::debug!(key = %from.key, node = from.node, reply = ?other.map(|_| ()),
                            "could not read a chunk to move");
                        cluster.meta().unreserve(&to);
                        return false;
                    }
                };
                let Some(to) = cluster.store_placed(to, chunk, false).await else {
                    return false;
                };
                if cluster.meta().moved(&to, from.node) {
                    cluster.drop_chunks(vec![from]);
                    true
                } else {
                    cluster.drop_chunks(vec![to]);
                    false
                }
            });
        }
        let mut moved = 0;
        while let Some(done) = moves.next().await {
            moved += usize::from(done);
        }
        Counters::add(&self.counters.chunks_moved, moved as u64);
        moved
    }
}
