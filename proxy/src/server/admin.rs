//! The admin/status API: JSON over HTTP on its own listener.
//!
//! - `GET  /status`: node states, counters, objects, what the invocations
//!   cost by purpose (serve, warm-up, backup), in GB-seconds and dollars,
//!   and the elastic window (buckets, functions in use, memory, cold
//!   objects);
//! - `GET  /metrics`: the same and more for Prometheus
//!   ([`crate::metrics`]);
//! - `POST /warmup`: a warm-up round now (nodes idle for any time);
//! - `POST /backup`: a delta-sync round now; answers when it is done.
//!
//! Operators, the dashboard (`infinicache dashboard`) and the experiments
//! read it; it is also how the tests observe failovers, delta sizes and
//! repairs without scraping logs.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;

use crate::cluster::backup::BackupRound;
use crate::cluster::ledger::KindTotals;
use crate::cluster::node::NodeStatus;
use crate::cluster::{Cluster, CounterValues, WindowStatus};
use crate::metrics::{Exporter, NodeState, Pricing, pool};

/// `GET /status`.
#[derive(Debug, Serialize)]
pub struct Status {
    /// Visible objects.
    pub objects: usize,
    pub nodes: Vec<NodeView>,
    pub counters: CounterValues,
    /// By invocation purpose: `serve`, `warmup`, `backup`.
    pub billing: BTreeMap<&'static str, KindTotals>,
    /// What `billing` costs at the configured prices.
    pub cost: Cost,
    /// The elastic window of deployments.
    pub window: WindowStatus,
    /// Chunk bytes the whole pool can hold (`window.memory_used_bytes` is
    /// what it holds).
    pub memory_capacity_bytes: u64,
}

/// One node: its status, and the state operators see
/// ([`NodeState`]: the phase, or `backing_up` / `failing`).
#[derive(Debug, Serialize)]
pub struct NodeView {
    #[serde(flatten)]
    pub status: NodeStatus,
    pub state: &'static str,
}

/// The invocations' cost in dollars.
#[derive(Debug, Serialize)]
pub struct Cost {
    pub pricing: Pricing,
    /// By invocation purpose, as `billing`.
    pub usd: BTreeMap<&'static str, f64>,
    pub total_usd: f64,
}

impl Cost {
    fn of(billing: &BTreeMap<&'static str, KindTotals>, pricing: Pricing) -> Cost {
        let usd: BTreeMap<_, _> = billing
            .iter()
            .map(|(purpose, totals)| (*purpose, pricing.cost(totals)))
            .collect();
        let total_usd = usd.values().sum();
        Cost {
            pricing,
            usd,
            total_usd,
        }
    }
}

/// `POST /warmup`.
#[derive(Debug, Serialize)]
pub struct Warmed {
    pub warmed: usize,
}

/// The admin API's routes; `/metrics` renders with `exporter`.
pub fn routes(cluster: Arc<Cluster>, exporter: Arc<Exporter>) -> Router {
    Router::new()
        .route("/status", get(status))
        .route("/warmup", post(warmup))
        .route("/backup", post(backup))
        .with_state(cluster)
        .merge(crate::metrics::routes(exporter))
}

async fn status(State(cluster): State<Arc<Cluster>>) -> Json<Status> {
    // One metadata lock at a time: a guard taken inside the struct literal
    // below would live until the end of the statement.
    let objects = cluster.meta().len();
    let window = cluster.window_status();
    let memory_capacity_bytes = pool::memory_capacity(&cluster);
    let billing = cluster.ledger.snapshot();
    let nodes = cluster
        .status()
        .into_iter()
        .map(|status| NodeView {
            state: NodeState::of(&status).label(),
            status,
        })
        .collect();
    Json(Status {
        objects,
        nodes,
        counters: cluster.counters.snapshot(),
        cost: Cost::of(&billing, cluster.config().pricing),
        billing,
        window,
        memory_capacity_bytes,
    })
}

async fn warmup(State(cluster): State<Arc<Cluster>>) -> Json<Warmed> {
    Json(Warmed {
        warmed: cluster.warm_up(Duration::ZERO),
    })
}

async fn backup(State(cluster): State<Arc<Cluster>>) -> Json<BackupRound> {
    Json(cluster.backup_round().await)
}
