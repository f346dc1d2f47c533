//! The Redis-protocol (RESP) frontend: any Redis client can use the cache.
//!
//! It listens on its own port (`resp_listen`, default 127.0.0.1:6380) and
//! speaks RESP2, and RESP3 after `HELLO 3`. The commands are those of a
//! string cache: `GET`, `SET` (with `EX`/`PX`/`EXAT`/`PXAT`/`KEEPTTL`,
//! `NX`/`XX`), `DEL`, `EXISTS`, `MGET`, `MSET`, `STRLEN`, `DBSIZE`, and
//! what clients and `redis-cli` need around them (`PING`, `ECHO`, `AUTH`,
//! `HELLO`, `INFO`, `COMMAND`, `CLIENT`, `SELECT 0`, `QUIT`). Anything else
//! is answered with Redis's "unknown command" error.
//!
//! Values are whole objects here, but the proxy stores them exactly as the
//! native frontend does: erasure-coded with the proxy's default `k` and `r`
//! into chunks on the cache nodes and the object store
//! ([`crate::server::objects`]). So a value SET here is read by native
//! clients and a native PUT is read here, byte for byte.
//!
//! * [`frame`]: RESP values, their encoding, and the request parser;
//! * [`connection`]: reading requests and writing replies on a socket;
//! * [`commands`]: one file per command (or small family): parsing a
//!   request into a typed command with Redis's error messages, and applying
//!   it;
//! * [`server`]: the listener and the per-connection loop.

pub mod commands;
pub mod connection;
pub mod frame;
pub mod server;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use crate::cluster::Cluster;
use frame::Limits;

/// The Redis version the frontend presents to clients (what its commands and
/// replies follow); clients use it to decide which features to use.
pub const REDIS_VERSION: &str = "7.2.0";

/// The RESP frontend's shared state: the cluster it serves, its settings
/// and its statistics.
pub struct Frontend {
    cluster: Arc<Cluster>,
    password: Option<String>,
    limits: Limits,
    started: Instant,
    port: u16,
    next_client_id: AtomicU64,
    pub stats: Stats,
}

/// Counters shown by `INFO`.
#[derive(Debug, Default)]
pub struct Stats {
    pub connections_received: AtomicU64,
    pub connected_clients: AtomicU64,
    pub commands_processed: AtomicU64,
    pub keyspace_hits: AtomicU64,
    pub keyspace_misses: AtomicU64,
}

impl Stats {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

impl Frontend {
    /// The frontend of `cluster`, listening on `port`, requiring `password`
    /// if one is set.
    pub fn new(cluster: Arc<Cluster>, password: Option<String>, port: u16) -> Arc<Frontend> {
        let limits = Limits::for_objects(cluster.config().max_object_size);
        Arc::new(Frontend {
            cluster,
            password,
            limits,
            started: Instant::now(),
            port,
            next_client_id: AtomicU64::new(1),
            stats: Stats::default(),
        })
    }

    pub fn cluster(&self) -> &Arc<Cluster> {
        &self.cluster
    }

    /// The limits requests are read with.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Whether clients must authenticate.
    pub fn requires_password(&self) -> bool {
        self.password.is_some()
    }

    /// Whether `given` is the password, compared in constant time: both
    /// sides are hashed first, so neither the position of the first
    /// difference nor the password's length shows in the timing.
    pub fn password_matches(&self, given: &[u8]) -> bool {
        let Some(password) = &self.password else {
            return false;
        };
        crate::auth::secret_matches(password.as_bytes(), given)
    }

    /// The port the frontend listens on (for `INFO`).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Seconds since the frontend started.
    pub fn uptime_secs(&self) -> u64 {
        self.started.elapsed().as_secs()
    }

    /// A fresh client id (`CLIENT ID`, `HELLO`).
    pub fn next_client_id(&self) -> u64 {
        self.next_client_id.fetch_add(1, Ordering::Relaxed)
    }
}
