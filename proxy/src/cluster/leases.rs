//! Read leases: a version being read keeps its chunks until the read ends.
//!
//! A GET announces one version to the client and then fetches its chunks.
//! If a PUT replaces (or a DELETE removes) that version meanwhile, the old
//! chunks would be dropped from the nodes and the object store under the
//! read's feet, and the GET would fail although it started while the object
//! was perfectly readable. Instead, every GET takes a lease on the version it
//! announced, under the metadata lock (so no commit can slip between looking
//! the object up and taking the lease); dropping a leased version's chunks,
//! or forgetting it in the object store, is deferred until its last reader
//! is done. Linearizability is unaffected: the read returns a version that
//! was current at some point during it.

use std::collections::HashMap;
use std::sync::{Arc, Weak};

use infinicache::protocol::Key;
use parking_lot::Mutex;

use super::Cluster;
use super::metadata::ChunkLoc;

/// Versions being read, and the clean-up waiting for their readers.
#[derive(Debug, Default)]
pub struct Leases {
    versions: Mutex<HashMap<(Key, u64), Lease>>,
}

#[derive(Debug, Default)]
struct Lease {
    readers: usize,
    /// Chunks to drop once the last reader is done.
    chunks: Vec<ChunkLoc>,
    /// Whether to remove the version from the object store then too.
    forget: bool,
}

/// What the last reader of a version must do when it leaves.
#[derive(Debug, Default)]
pub struct Deferred {
    pub chunks: Vec<ChunkLoc>,
    pub forget: Option<(Key, u64)>,
}

impl Leases {
    /// One more reader of `key` at `version`.
    pub fn acquire(&self, key: &Key, version: u64) {
        self.versions
            .lock()
            .entry((key.clone(), version))
            .or_default()
            .readers += 1;
    }

    /// One reader fewer; the deferred clean-up if it was the last.
    pub fn release(&self, key: &Key, version: u64) -> Deferred {
        let mut versions = self.versions.lock();
        let id = (key.clone(), version);
        let Some(lease) = versions.get_mut(&id) else {
            return Deferred::default();
        };
        lease.readers = lease.readers.saturating_sub(1);
        if lease.readers > 0 {
            return Deferred::default();
        }
        let lease = versions.remove(&id).unwrap_or_default();
        Deferred {
            chunks: lease.chunks,
            forget: lease.forget.then_some(id),
        }
    }

    /// Keeps the chunks of leased versions for later; returns the others,
    /// to drop now.
    pub fn defer_chunks(&self, chunks: Vec<ChunkLoc>) -> Vec<ChunkLoc> {
        let mut versions = self.versions.lock();
        if versions.is_empty() {
            return chunks;
        }
        chunks
            .into_iter()
            .filter_map(
                |chunk| match versions.get_mut(&(chunk.key.clone(), chunk.version)) {
                    Some(lease) => {
                        lease.chunks.push(chunk);
                        None
                    }
                    None => Some(chunk),
                },
            )
            .collect()
    }

    /// Whether forgetting `key` at `version` must wait (it does then).
    pub fn defer_forget(&self, key: &Key, version: u64) -> bool {
        match self.versions.lock().get_mut(&(key.clone(), version)) {
            Some(lease) => {
                lease.forget = true;
                true
            }
            None => false,
        }
    }
}

/// A GET's hold on the version it announced; released on drop.
pub struct ReadLease {
    cluster: Weak<Cluster>,
    key: Key,
    version: u64,
}

impl ReadLease {
    pub(super) fn new(cluster: &Arc<Cluster>, key: Key, version: u64) -> Self {
        ReadLease {
            cluster: Arc::downgrade(cluster),
            key,
            version,
        }
    }
}

impl Drop for ReadLease {
    fn drop(&mut self) {
        if let Some(cluster) = self.cluster.upgrade() {
            cluster.end_read(&self.key, self.version);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(key: &str, version: u64, index: u8) -> ChunkLoc {
        ChunkLoc {
            node: 0,
            key: Key::try_from(key).expect("key"),
            version,
            index,
        }
    }

    #[test]
    fn leased_versions_keep_their_chunks_until_the_last_reader_leaves() {
        let leases = Leases::default();
        let key = Key::try_from("k").expect("key");
        leases.acquire(&key, 1);
        leases.acquire(&key, 1);
        let now = leases.defer_chunks(vec![chunk("k", 1, 0), chunk("k", 2, 0), chunk("j", 1, 0)]);
        assert_eq!(now, vec![chunk("k", 2, 0), chunk("j", 1, 0)]);
        assert!(leases.defer_forget(&key, 1));
        assert!(!leases.defer_forget(&key, 2));

        let first = leases.release(&key, 1);
        assert!(
            first.chunks.is_empty() && first.forget.is_none(),
            "one reader left"
        );
        let last = leases.release(&key, 1);
        assert_eq!(last.chunks, vec![chunk("k", 1, 0)]);
        assert_eq!(last.forget, Some((key.clone(), 1)));
        // Nothing leased any more: everything goes at once.
        assert_eq!(
            leases.defer_chunks(vec![chunk("k", 1, 1)]),
            vec![chunk("k", 1, 1)]
        );
        assert!(
            leases.release(&key, 1).chunks.is_empty(),
            "unbalanced release is harmless"
        );
    }
}
