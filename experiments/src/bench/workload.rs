//! The key space of one (target, size) group and the values written to it.
//!
//! Values come from a small pool of random payloads per size (at most
//! [`POOL_BYTES`] of them, at least two), each with its length and XXH3
//! checksum computed once. A key remembers which payload it was last given,
//! so a GET is verified by comparing the length and the checksum of what
//! came back with that payload's: cheap (XXH3 runs at memory speed) and
//! without keeping a copy of every value. A PUT always picks a payload
//! other than the key's current one, so a GET that returned the previous
//! version is caught too.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use rand::RngCore;
use xxhash_rust::xxh3::xxh3_64;

use super::options::size_label;

/// Memory spent on the payload pool of one size (beyond two payloads).
pub const POOL_BYTES: usize = 64 << 20;
/// Most payloads per size.
pub const MAX_PAYLOADS: usize = 64;

/// No known value: never written, or a PUT failed (the key then holds the
/// old value or the new one).
const UNKNOWN: usize = usize::MAX;

/// A payload and its fingerprint.
#[derive(Debug, Clone)]
pub struct Payload {
    pub data: Bytes,
    pub checksum: u64,
}

/// Fingerprint of a value: its XXH3-64 checksum.
pub fn checksum(data: &[u8]) -> u64 {
    xxh3_64(data)
}

/// What a GET returned, judged against what was PUT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Ok,
    /// The key was not found although it was written.
    Missing,
    /// Wrong length or checksum.
    Wrong(String),
}

/// The random payloads of one size, shared by the key spaces of every
/// target.
pub fn payload_pool(size: usize) -> Arc<Vec<Payload>> {
    let count = (POOL_BYTES / size.max(1)).clamp(2, MAX_PAYLOADS);
    let payloads = (0..count)
        .map(|_| {
            let mut data = vec![0u8; size];
            rand::rng().fill_bytes(&mut data);
            Payload {
                checksum: checksum(&data),
                data: data.into(),
            }
        })
        .collect();
    Arc::new(payloads)
}

/// The keys of one (target, size) group.
pub struct Keyspace {
    prefix: String,
    size: usize,
    payloads: Arc<Vec<Payload>>,
    /// Per key: the index of the payload it holds, or [`UNKNOWN`].
    current: Vec<AtomicUsize>,
}

impl Keyspace {
    /// `keys` keys named `<prefix>:<size>:<i>` holding payloads of `pool`
    /// (all of one size, at least one), none written yet.
    pub fn new(prefix: &str, pool: Arc<Vec<Payload>>, keys: usize) -> Keyspace {
        // An empty pool would leave nothing to write: empty values then.
        let pool = if pool.is_empty() {
            payload_pool(0)
        } else {
            pool
        };
        let size = pool.first().map_or(0, |p| p.data.len());
        Keyspace {
            prefix: format!("{prefix}:{}", size_label(size)),
            size,
            payloads: pool,
            current: (0..keys.max(1))
                .map(|_| AtomicUsize::new(UNKNOWN))
                .collect(),
        }
    }

    pub fn len(&self) -> usize {
        self.current.len()
    }

    pub fn is_empty(&self) -> bool {
        self.current.is_empty()
    }

    pub fn size(&self) -> usize {
        self.size
    }

    pub fn key(&self, index: usize) -> String {
        format!("{}:{index}", self.prefix)
    }

    /// The payload the next PUT of key `index` writes: chosen by `pick`
    /// (any number; a random one spreads values), never the one the key
    /// holds now. Returns the payload's index and the payload.
    pub fn next_payload(&self, index: usize, pick: usize) -> (usize, &Payload) {
        let n = self.payloads.len();
        let current = self.current[index].load(Ordering::Acquire);
        let mut choice = pick % n;
        if choice == current {
            choice = (choice + 1) % n;
        }
        (choice, &self.payloads[choice])
    }

    /// Records that key `index` now holds payload `payload` (its PUT was
    /// acknowledged).
    pub fn written(&self, index: usize, payload: usize) {
        self.current[index].store(payload, Ordering::Release);
    }

    /// Records that a PUT of key `index` failed: it may hold either value.
    pub fn unsure(&self, index: usize) {
        self.current[index].store(UNKNOWN, Ordering::Release);
    }

    /// Judges what a GET of key `index` returned (`None`: not found), given
    /// its length and checksum. A key whose last PUT failed accepts any
    /// payload of the pool, and from then on expects that one.
    pub fn verify(&self, index: usize, got: Option<(usize, u64)>) -> Verdict {
        let current = self.current[index].load(Ordering::Acquire);
        let key = self.key(index);
        match (got, self.payloads.get(current)) {
            (None, Some(_)) => Verdict::Missing,
            (None, None) => Verdict::Ok,
            (Some((len, sum)), Some(expected)) => {
                if len == expected.data.len() && sum == expected.checksum {
                    Verdict::Ok
                } else {
                    Verdict::Wrong(format!(
                        "GET {key} returned WRONG DATA: {len} bytes, checksum {sum:016x}; \
                         expected {} bytes, checksum {:016x}",
                        expected.data.len(),
                        expected.checksum
                    ))
                }
            }
            (Some((len, sum)), None) => {
                match self
                    .payloads
                    .iter()
                    .position(|p| p.data.len() == len && p.checksum == sum)
                {
                    Some(found) => {
                        self.written(index, found);
                        Verdict::Ok
                    }
                    None => Verdict::Wrong(format!(
                        "GET {key} returned {len} bytes (checksum {sum:016x}) that no PUT wrote"
                    )),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_pool_is_bounded_and_varied() {
        let small = Keyspace::new("t", payload_pool(1024), 8);
        assert_eq!(small.payloads.len(), MAX_PAYLOADS);
        assert_eq!(small.size(), 1024);
        assert_eq!(payload_pool(40 << 20).len(), 2);
        assert_eq!(small.key(3), "t:1KiB:3");
        assert_eq!(small.len(), 8);
    }

    #[test]
    fn puts_change_the_value_and_gets_are_checked() {
        let keys = Keyspace::new("t", payload_pool(100), 2);
        let (first, payload) = keys.next_payload(0, 5);
        let first_sum = payload.checksum;
        keys.written(0, first);
        // Never the same payload twice in a row.
        let (second, payload) = keys.next_payload(0, first);
        assert_ne!(second, first);
        let second_sum = payload.checksum;
        assert_eq!(keys.verify(0, Some((100, first_sum))), Verdict::Ok);
        keys.written(0, second);
        // The previous version is caught.
        assert!(matches!(
            keys.verify(0, Some((100, first_sum))),
            Verdict::Wrong(_)
        ));
        assert!(matches!(
            keys.verify(0, Some((99, second_sum))),
            Verdict::Wrong(_)
        ));
        assert_eq!(keys.verify(0, None), Verdict::Missing);
        // After a failed PUT either value is fine, and then expected.
        keys.unsure(0);
        assert_eq!(keys.verify(0, Some((100, first_sum))), Verdict::Ok);
        assert!(matches!(
            keys.verify(0, Some((100, second_sum))),
            Verdict::Wrong(_)
        ));
        assert!(matches!(keys.verify(1, Some((100, 42))), Verdict::Wrong(_)));
        assert_eq!(checksum(b"abc"), xxh3_64(b"abc"));
    }
}
