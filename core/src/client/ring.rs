//! Consistent hashing of keys onto proxies.
//!
//! Each proxy owns many points on a 64-bit ring; a key belongs to the first
//! point at or after its hash. Adding or removing one proxy moves only the
//! keys of that proxy's arcs, so a client fleet can grow its proxy list
//! without reshuffling the whole cache. The hash is XXH3, which is stable
//! across processes, platforms and language bindings.

use xxhash_rust::xxh3::xxh3_64;

/// Points per proxy: enough to keep the load within a few percent of even.
const VIRTUAL_NODES: usize = 160;

/// A consistent-hash ring over proxy indexes.
#[derive(Debug, Clone)]
pub struct Ring {
    points: Vec<(u64, usize)>,
}

impl Ring {
    /// Builds the ring for proxies named by their addresses (the names, not
    /// the list order, decide placement).
    pub fn new<S: AsRef<str>>(proxies: &[S]) -> Self {
        let mut points = Vec::with_capacity(proxies.len() * VIRTUAL_NODES);
        for (index, name) in proxies.iter().enumerate() {
            for vnode in 0..VIRTUAL_NODES {
                let point = xxh3_64(format!("{}#{vnode}", name.as_ref()).as_bytes());
                points.push((point, index));
            }
        }
        points.sort_unstable();
        Ring { points }
    }

    /// The proxy responsible for `key`, or `None` for an empty ring.
    pub fn route(&self, key: &[u8]) -> Option<usize> {
        let hash = xxh3_64(key);
        let at = self.points.partition_point(|&(point, _)| point < hash);
        self.points
            .get(at)
            .or_else(|| self.points.first())
            .map(|&(_, index)| index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_ring_routes_nowhere() {
        assert_eq!(Ring::new::<&str>(&[]).route(b"k"), None);
    }

    #[test]
    fn keys_spread_over_all_proxies() {
        let ring = Ring::new(&["a:1", "b:1", "c:1"]);
        let mut counts = [0usize; 3];
        for i in 0..30_000 {
            counts[ring.route(format!("key-{i}").as_bytes()).unwrap_or(99)] += 1;
        }
        for count in counts {
            assert!(
                (7_000..13_000).contains(&count),
                "uneven spread: {counts:?}"
            );
        }
    }

    #[test]
    fn adding_a_proxy_moves_only_its_share() {
        let before = Ring::new(&["a:1", "b:1", "c:1"]);
        let after = Ring::new(&["a:1", "b:1", "c:1", "d:1"]);
        let moved = (0..20_000)
            .filter(|i| {
                let key = format!("key-{i}");
                let (old, new) = (before.route(key.as_bytes()), after.route(key.as_bytes()));
                old != new && new != Some(3)
            })
            .count();
        assert_eq!(moved, 0, "keys moved between surviving proxies");
    }
}
