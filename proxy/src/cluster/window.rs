//! The elastic sliding window of function deployments (InfiniStore).
//!
//! With the object store under the memory layer, function memory only needs
//! to hold what is being read. The window groups the pool's deployments into
//! time **buckets**: new objects go to the newest bucket, which grows by
//! `k + r` functions whenever it is nearly full. As buckets age they move
//! down three tiers:
//!
//! * **active** (the newest `active_buckets` bucket lengths): warmed at the
//!   configured interval;
//! * **degraded** (up to `available_buckets` bucket lengths old): warmed
//!   [`DEGRADED_WARMUP_FACTOR`] times less often; an object read from one is
//!   moved forward to the newest bucket;
//! * **expired**: the bucket's functions are released (no more warm-ups, the
//!   provider reclaims them) and go back to the free pool; their objects
//!   stay in the object store and come back on demand.
//!
//! A pool with no free function left recycles its oldest bucket early rather
//! than refusing new data. Without the object store there is no window: the
//! whole pool is one bucket that never expires, and a full pool evicts the
//! least recently used objects, as InfiniCache does.
//!
//! This type only decides *which* nodes are where; the metadata moves the
//! chunks (it makes an expired node's chunks cold) and the cluster invokes.

use std::collections::{BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::metadata::NodeId;

/// Degraded buckets are warmed this many times less often than active ones.
pub const DEGRADED_WARMUP_FACTOR: u32 = 5;

/// The `[window]` settings.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WindowSettings {
    /// Off: the whole pool is one bucket that never expires (InfiniCache).
    pub enabled: bool,
    /// Length of one time bucket.
    #[serde(with = "humantime_serde")]
    pub bucket_length: Duration,
    /// Buckets younger than this many bucket lengths are active.
    pub active_buckets: u32,
    /// Buckets older than this many bucket lengths expire.
    pub available_buckets: u32,
    /// The newest bucket grows by `k + r` functions once this fraction of
    /// its memory is taken.
    pub grow_threshold: f64,
}

impl Default for WindowSettings {
    /// InfiniStore's defaults: 10-minute buckets, 6 active, 18 available,
    /// grow at 90 % occupancy.
    fn default() -> Self {
        WindowSettings {
            enabled: true,
            bucket_length: Duration::from_secs(600),
            active_buckets: 6,
            available_buckets: 18,
            grow_threshold: 0.9,
        }
    }
}

impl WindowSettings {
    /// Checks the settings; says what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        if self.bucket_length.is_zero() {
            return Err("bucket_length must be positive".into());
        }
        if self.active_buckets == 0 {
            return Err("active_buckets must be at least 1".into());
        }
        if self.available_buckets < self.active_buckets {
            return Err(format!(
                "available_buckets ({}) must be at least active_buckets ({})",
                self.available_buckets, self.active_buckets
            ));
        }
        if !(self.grow_threshold > 0.0 && self.grow_threshold <= 1.0) {
            return Err(format!(
                "grow_threshold must be in (0, 1], got {}",
                self.grow_threshold
            ));
        }
        Ok(())
    }
}

/// Where a node stands in the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    /// In a bucket of the active window.
    Active,
    /// In a bucket past the active window, not yet expired.
    Degraded,
    /// In no bucket: not invoked, holds nothing.
    Free,
}

/// One time bucket: the functions that took the objects of its period.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Bucket {
    id: u64,
    opened: Instant,
    nodes: Vec<NodeId>,
}

/// A bucket as the status API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BucketStatus {
    pub id: u64,
    pub age_ms: u64,
    pub tier: Tier,
    pub nodes: Vec<NodeId>,
}

/// What rolling the window forward changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Rolled {
    /// Nodes released by expired (or recycled) buckets: their chunks are
    /// cold now.
    pub released: Vec<NodeId>,
    /// Buckets expired.
    pub expired: usize,
}

/// The buckets, oldest first, and the free functions.
#[derive(Debug)]
pub struct Window {
    /// `None`: no window, one bucket of every node forever.
    settings: Option<WindowSettings>,
    buckets: VecDeque<Bucket>,
    free: BTreeSet<NodeId>,
    /// Functions added per growth step (`k + r` of the default codec).
    step: usize,
    next_id: u64,
}

impl Window {
    /// No window: every node in one bucket that never expires.
    pub fn fixed(pool_size: usize, now: Instant) -> Self {
        Window {
            settings: None,
            buckets: VecDeque::from([Bucket {
                id: 0,
                opened: now,
                nodes: (0..pool_size as NodeId).collect(),
            }]),
            free: BTreeSet::new(),
            step: pool_size,
            next_id: 1,
        }
    }

    /// An elastic window over `pool_size` functions growing by `step`; the
    /// first bucket opens with the first object.
    pub fn elastic(pool_size: usize, step: usize, settings: WindowSettings) -> Self {
        Window {
            settings: Some(settings),
            buckets: VecDeque::new(),
            free: (0..pool_size as NodeId).collect(),
            step: step.max(1),
            next_id: 0,
        }
    }

    /// Whether the window is elastic (else: one fixed bucket).
    pub fn is_elastic(&self) -> bool {
        self.settings.is_some()
    }

    /// The nodes new data goes to: the newest bucket's.
    pub fn newest(&self) -> &[NodeId] {
        self.buckets.back().map_or(&[], |bucket| &bucket.nodes)
    }

    /// Functions currently in a bucket (deployed and in use).
    pub fn functions(&self) -> usize {
        self.buckets.iter().map(|bucket| bucket.nodes.len()).sum()
    }

    /// Functions in no bucket.
    pub fn free(&self) -> usize {
        self.free.len()
    }

    /// Whether `node` is in a bucket (not free).
    pub fn contains(&self, node: NodeId) -> bool {
        self.buckets
            .iter()
            .any(|bucket| bucket.nodes.contains(&node))
    }

    /// The tier of `node` at `now`.
    pub fn tier(&self, node: NodeId, now: Instant) -> Tier {
        self.buckets
            .iter()
            .find(|bucket| bucket.nodes.contains(&node))
            .map_or(Tier::Free, |bucket| self.bucket_tier(bucket, now))
    }

    fn bucket_tier(&self, bucket: &Bucket, now: Instant) -> Tier {
        let Some(settings) = &self.settings else {
            return Tier::Active;
        };
        // The newest bucket is where data goes: always active.
        if self
            .buckets
            .back()
            .is_some_and(|newest| newest.id == bucket.id)
        {
            return Tier::Active;
        }
        let age = now.saturating_duration_since(bucket.opened);
        if age < settings.bucket_length * settings.active_buckets {
            Tier::Active
        } else {
            Tier::Degraded
        }
    }

    /// Every bucket, oldest first, for the status API.
    pub fn buckets(&self, now: Instant) -> Vec<BucketStatus> {
        self.buckets
            .iter()
            .map(|bucket| BucketStatus {
                id: bucket.id,
                age_ms: u64::try_from(now.saturating_duration_since(bucket.opened).as_millis())
                    .unwrap_or(u64::MAX),
                tier: self.bucket_tier(bucket, now),
                nodes: bucket.nodes.clone(),
            })
            .collect()
    }

    /// Expires the buckets past the available window. The newest bucket
    /// expires too once it is that old (nothing was written for hours): the
    /// next object opens a new one.
    pub fn expire(&mut self, now: Instant) -> Rolled {
        let mut rolled = Rolled::default();
        let Some(settings) = &self.settings else {
            return rolled;
        };
        let limit = settings.bucket_length * settings.available_buckets;
        while let Some(oldest) = self.buckets.front() {
            if now.saturating_duration_since(oldest.opened) < limit {
                break;
            }
            if let Some(bucket) = self.buckets.pop_front() {
                rolled.expired += 1;
                self.free.extend(bucket.nodes.iter().copied());
                rolled.released.extend(bucket.nodes);
            }
        }
        rolled
    }

    /// Makes sure the newest bucket exists and is current before data is
    /// placed at `now`: opens a new bucket when the newest is a bucket
    /// length old (if enough functions are free to fill one).
    pub fn roll(&mut self, now: Instant) -> bool {
        let Some(settings) = &self.settings else {
            return false;
        };
        let stale = self.buckets.back().is_none_or(|newest| {
            now.saturating_duration_since(newest.opened) >= settings.bucket_length
        });
        if !stale {
            return false;
        }
        if self.buckets.is_empty() || self.free.len() >= self.step {
            let nodes = self.take_free(self.step);
            if !nodes.is_empty() {
                self.buckets.push_back(Bucket {
                    id: self.next_id,
                    opened: now,
                    nodes,
                });
                self.next_id += 1;
                return true;
            }
        }
        false
    }

    /// Adds at least `want` free functions to the newest bucket (a growth
    /// step at least). Returns how many were added (0: none free).
    pub fn grow(&mut self, want: usize, now: Instant) -> usize {
        if self.settings.is_none() {
            return 0;
        }
        let nodes = self.take_free(want.max(self.step));
        let added = nodes.len();
        if added == 0 {
            return 0;
        }
        match self.buckets.back_mut() {
            Some(newest) => newest.nodes.extend(nodes),
            None => {
                self.buckets.push_back(Bucket {
                    id: self.next_id,
                    opened: now,
                    nodes,
                });
                self.next_id += 1;
            }
        }
        added
    }

    /// Releases the oldest bucket early (no function left free and the
    /// newest bucket is full). Never the newest one. Returns its nodes.
    pub fn recycle_oldest(&mut self) -> Vec<NodeId> {
        if self.settings.is_none() || self.buckets.len() < 2 {
            return Vec::new();
        }
        let Some(bucket) = self.buckets.pop_front() else {
            return Vec::new();
        };
        self.free.extend(bucket.nodes.iter().copied());
        bucket.nodes
    }

    fn take_free(&mut self, n: usize) -> Vec<NodeId> {
        let nodes: Vec<NodeId> = self.free.iter().copied().take(n).collect();
        for node in &nodes {
            self.free.remove(node);
        }
        nodes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> WindowSettings {
        WindowSettings {
            enabled: true,
            bucket_length: Duration::from_secs(10),
            active_buckets: 2,
            available_buckets: 4,
            grow_threshold: 0.9,
        }
    }

    #[test]
    fn defaults_are_infinistores() {
        let defaults = WindowSettings::default();
        assert_eq!(defaults.bucket_length, Duration::from_secs(600));
        assert_eq!(
            (defaults.active_buckets, defaults.available_buckets),
            (6, 18)
        );
        assert!((defaults.grow_threshold - 0.9).abs() < f64::EPSILON);
        defaults.validate().expect("valid");
    }

    #[test]
    fn invalid_settings_are_refused() {
        for bad in [
            WindowSettings {
                bucket_length: Duration::ZERO,
                ..settings()
            },
            WindowSettings {
                active_buckets: 0,
                ..settings()
            },
            WindowSettings {
                available_buckets: 1,
                ..settings()
            },
            WindowSettings {
                grow_threshold: 0.0,
                ..settings()
            },
            WindowSettings {
                grow_threshold: f64::NAN,
                ..settings()
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn fixed_window_is_one_active_bucket_forever() {
        let t0 = Instant::now();
        let mut window = Window::fixed(4, t0);
        assert_eq!(window.newest(), &[0, 1, 2, 3]);
        let later = t0 + Duration::from_secs(1_000_000);
        assert!(!window.roll(later));
        assert_eq!(window.expire(later), Rolled::default());
        assert_eq!(window.grow(4, later), 0);
        assert!(window.recycle_oldest().is_empty());
        assert_eq!(window.tier(3, later), Tier::Active);
    }

    #[test]
    fn buckets_open_age_and_expire() {
        let t0 = Instant::now();
        let mut window = Window::elastic(9, 3, settings());
        assert!(window.newest().is_empty());
        assert!(window.roll(t0));
        assert_eq!(window.newest(), &[0, 1, 2]);
        assert!(!window.roll(t0 + Duration::from_secs(9)), "same bucket");
        assert!(window.roll(t0 + Duration::from_secs(10)));
        assert_eq!(window.newest(), &[3, 4, 5]);
        assert!(window.roll(t0 + Duration::from_secs(20)));
        assert_eq!(window.newest(), &[6, 7, 8]);
        // No function free: the newest bucket carries on.
        assert!(!window.roll(t0 + Duration::from_secs(30)));
        assert_eq!(window.functions(), 9);

        let now = t0 + Duration::from_secs(25);
        assert_eq!(
            window.tier(0, now),
            Tier::Degraded,
            "25 s old, 2 x 10 s active"
        );
        assert_eq!(window.tier(3, now), Tier::Active);
        assert_eq!(window.tier(8, now), Tier::Active);

        let rolled = window.expire(t0 + Duration::from_secs(40));
        assert_eq!(rolled.expired, 1);
        assert_eq!(rolled.released, vec![0, 1, 2]);
        assert_eq!(window.tier(0, t0 + Duration::from_secs(40)), Tier::Free);
        assert_eq!(window.free(), 3);
    }

    #[test]
    fn growth_takes_free_functions_then_recycles_the_oldest_bucket() {
        let t0 = Instant::now();
        let mut window = Window::elastic(8, 3, settings());
        window.roll(t0);
        assert_eq!(window.grow(1, t0), 3, "a whole step");
        assert_eq!(window.newest(), &[0, 1, 2, 3, 4, 5]);
        assert_eq!(window.grow(3, t0), 2, "what is left");
        assert_eq!(window.grow(3, t0), 0);
        assert!(
            window.recycle_oldest().is_empty(),
            "never the newest bucket"
        );

        let mut window = Window::elastic(6, 3, settings());
        window.roll(t0);
        window.roll(t0 + Duration::from_secs(10));
        assert_eq!(window.recycle_oldest(), vec![0, 1, 2]);
        assert_eq!(window.grow(3, t0 + Duration::from_secs(11)), 3);
        assert_eq!(window.newest(), &[3, 4, 5, 0, 1, 2]);
    }
}
