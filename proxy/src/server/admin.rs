//! The admin/status API: JSON over HTTP on its own listener.
//!
//! - `GET  /status`: node states, counters, objects, what the invocations
//!   cost by purpose (serve, warm-up, backup), and the elastic window
//!   (buckets, functions in use, memory, cold objects);
//! - `POST /warmup`: a warm-up round now (nodes idle for any time);
//! - `POST /backup`: a delta-sync round now; answers when it is done.
//!
//! Operators and the experiments read it; it is also how the tests observe
//! failovers, delta sizes and repairs without scraping logs.

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

/// `GET /status`.
#[derive(Debug, Serialize)]
pub struct Status {
    /// Visible objects.
    pub objects: usize,
    pub nodes: Vec<NodeStatus>,
    pub counters: CounterValues,
    /// By invocation purpose: `serve`, `warmup`, `backup`.
    pub billing: BTreeMap<&'static str, KindTotals>,
    /// The elastic window of deployments.
    pub window: WindowStatus,
}

/// `POST /warmup`.
#[derive(Debug, Serialize)]
pub struct Warmed {
    pub warmed: usize,
}

pub fn routes(cluster: Arc<Cluster>) -> Router {
    Router::new()
        .route("/status", get(status))
        .route("/warmup", post(warmup))
        .route("/backup", post(backup))
        .with_state(cluster)
}

async fn status(State(cluster): State<Arc<Cluster>>) -> Json<Status> {
    // One metadata lock at a time: a guard taken inside the struct literal
    // below would live until the end of the statement.
    let objects = cluster.meta().len();
    let window = cluster.window_status();
    Json(Status {
        objects,
        nodes: cluster.status(),
        counters: cluster.counters.snapshot(),
        billing: cluster.ledger.snapshot(),
        window,
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
