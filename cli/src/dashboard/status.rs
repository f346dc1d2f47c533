//! The proxy's `GET /status`, as far as the dashboard reads it.
//!
//! The CLI does not depend on the proxy crate, so the shape is mirrored
//! here. Every field has a default: a proxy that adds fields, or an older
//! one missing some, still shows what it can.

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Status {
    pub objects: u64,
    pub nodes: Vec<Node>,
    pub counters: Counters,
    /// By invocation purpose (`serve`, `warmup`, `backup`).
    pub billing: BTreeMap<String, Billing>,
    pub cost: Cost,
    pub window: Window,
    pub memory_capacity_bytes: u64,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Node {
    pub id: u32,
    pub function: String,
    /// The state machine's phase (`idle`, `invoking`, `serving`, ...).
    pub phase: String,
    /// What the proxy makes of it (`backing_up`, `failing`, or the phase).
    pub state: Option<String>,
    pub failures: u32,
    pub backing_up: bool,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Counters {
    pub serve_invocations: u64,
    pub warmup_invocations: u64,
    pub backup_invocations: u64,
    pub failed_invocations: u64,
    pub lost_environments: u64,
    pub failovers: u64,
    pub chunks_lost: u64,
    pub chunks_repaired: u64,
    pub chunks_recovered: u64,
    pub objects_lost: u64,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Billing {
    pub invocations: u64,
    pub gb_seconds: f64,
    pub cold_starts: u64,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Cost {
    pub total_usd: f64,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Window {
    pub elastic: bool,
    /// Oldest first.
    pub buckets: Vec<Bucket>,
    pub functions: u64,
    pub free_functions: u64,
    pub memory_used_bytes: u64,
    pub cold_objects: u64,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Bucket {
    pub id: u64,
    pub age_ms: u64,
    /// `active` or `degraded`.
    pub tier: String,
    pub nodes: Vec<u32>,
    pub used_bytes: u64,
    pub capacity_bytes: u64,
}
