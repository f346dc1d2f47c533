//! The InfiniCache proxy.
//!
//! * [`server`] — the client and node listeners, and start-up;
//! * [`server::commands`] — how PUT, GET, DELETE and EXISTS are applied
//!   ([`server::objects`]: the object operations both frontends share);
//! * [`resp`] — the Redis-protocol (RESP) frontend;
//! * [`cluster`] — the node pool, per-node state machines, object metadata,
//!   placement and LRU eviction, warm-ups;
//! * [`invoker`] — invoking nodes through the Lambda Invoke API;
//! * [`metrics`] — Prometheus metrics (`GET /metrics`);
//! * [`platform`] — the embedded local Lambda platform;
//! * [`config`] — settings.

pub mod auth;
pub mod cluster;
pub mod config;
pub mod cos;
pub mod deploy;
pub mod invoker;
pub mod metrics;
pub mod platform;
pub mod resp;
pub mod server;

pub use config::Config;
pub use server::Proxy;
