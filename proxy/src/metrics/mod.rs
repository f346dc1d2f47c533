//! Observability: Prometheus metrics (`GET /metrics`).
//!
//! Two halves with different costs:
//!
//! * the **request path** ([`requests`]) records every client request
//!   (count and latency by frontend and command), error replies by kind,
//!   payload bytes to and from clients and chunk bytes to and from nodes.
//!   It runs on every request, so it is fixed slots of relaxed atomics
//!   (see [`histogram`]); the hooks are one line at each site: the native
//!   commands (`server/commands/`), the RESP dispatch
//!   (`resp/commands/mod.rs`) and `Cluster::call`;
//! * the **pool's state** ([`exporter`]): node states, objects, memory,
//!   invocations, cold starts, failovers, reclaims, chunk losses and
//!   repairs, billed GB-seconds and their cost ([`cost`]). It already lives
//!   in the cluster (counters, billing ledger, node state machines), and is
//!   read at scrape time.
//!
//! The request path's metrics are process-wide ([`global`]), as the
//! process's own CPU and memory are: a proxy is one process, and the hooks
//! sit in places (a reply queue, `Cluster::call`) that have no handle to a
//! per-proxy registry. Two proxies in one process (some tests) share them.
//!
//! The text format is written by [`text`] (format 0.0.4).

pub mod cost;
pub mod exporter;
pub mod histogram;
pub mod pool;
pub mod requests;
pub mod text;

use std::sync::LazyLock;

pub use cost::Pricing;
pub use exporter::{Exporter, PlatformStatsReader, routes};
pub use pool::NodeState;
pub use requests::{Direction, Frontend, Metrics, NativeCommand, RequestTimer};

static GLOBAL: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// The process's request-path metrics.
pub fn global() -> &'static Metrics {
    &GLOBAL
}
