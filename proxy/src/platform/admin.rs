//! Admin API (JSON, under `/admin/` on the Invoke listener): inspect
//! environments and billing, and reclaim environments the way AWS may at any
//! time — the event InfiniCache's redundancy exists to survive.
//!
//! - `GET  /admin/functions`
//! - `GET  /admin/functions/{name}/environments`
//! - `POST /admin/functions/{name}/reclaim` → `{"reclaimed": n}`
//! - `POST /admin/environments/{id}/reclaim` → `{"reclaimed": 0|1}`
//! - `GET  /admin/billing`
//! - `GET  /admin/stats` → `{"cold_starts": n, "reclaims": {"idle": n,
//!   "max_lifetime": n, "random": n, "admin": n}, "time_scale": f}`
//!   (reclaims through this API count as "admin"; shutdown is no reclaim)

use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::Shared;
use super::environment::{EnvironmentInfo, KillReason};
use super::error::ApiError;
use super::function::wait_reaped;
use super::reclaim::PlatformStats;

/// A function as listed by `GET /admin/functions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionInfo {
    /// Function name.
    pub name: String,
    /// Its (unqualified) ARN.
    pub arn: String,
    /// Configured memory.
    pub memory_mb: u32,
    /// Configured timeout.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Its live environments.
    pub environments: Vec<EnvironmentInfo>,
}

/// Body of the reclaim endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reclaimed {
    /// How many environments were killed.
    pub reclaimed: usize,
}

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/functions", get(functions))
        .route("/functions/{name}/environments", get(environments))
        .route("/functions/{name}/reclaim", post(reclaim_function))
        .route("/environments/{id}/reclaim", post(reclaim_environment))
        .route("/billing", get(billing))
        .route("/stats", get(stats))
}

pub(crate) fn function_infos(shared: &Shared) -> Vec<FunctionInfo> {
    let mut list: Vec<_> = shared
        .functions
        .values()
        .map(|f| FunctionInfo {
            name: f.config.name.clone(),
            arn: f.arn.clone(),
            memory_mb: f.config.memory_mb,
            timeout: f.config.timeout,
            environments: f.environments(),
        })
        .collect();
    list.sort_by(|a, b| a.name.cmp(&b.name));
    list
}

async fn functions(State(shared): State<Arc<Shared>>) -> Json<Vec<FunctionInfo>> {
    Json(function_infos(&shared))
}

fn function_name(path: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    path.map(|Path(name)| name)
        .map_err(|_| ApiError::invalid_parameter("invalid function name"))
}

async fn environments(
    State(shared): State<Arc<Shared>>,
    path: Result<Path<String>, PathRejection>,
) -> Response {
    let result = function_name(path).and_then(|name| {
        shared
            .functions
            .get(&name)
            .map(|f| f.environments())
            .ok_or_else(|| ApiError::function_not_found(&name))
    });
    match result {
        Ok(list) => Json(list).into_response(),
        Err(err) => err.into_response(),
    }
}

async fn reclaim_function(
    State(shared): State<Arc<Shared>>,
    path: Result<Path<String>, PathRejection>,
) -> Response {
    let function = function_name(path).and_then(|name| {
        shared
            .functions
            .get(&name)
            .cloned()
            .ok_or_else(|| ApiError::function_not_found(&name))
    });
    match function {
        Ok(f) => Json(Reclaimed {
            reclaimed: f.reclaim_all(KillReason::Reclaimed).await,
        })
        .into_response(),
        Err(err) => err.into_response(),
    }
}

async fn reclaim_environment(
    State(shared): State<Arc<Shared>>,
    path: Result<Path<u64>, PathRejection>,
) -> Response {
    let Ok(Path(id)) = path else {
        return ApiError::invalid_parameter("environment id must be an integer").into_response();
    };
    let Some(env) = shared.functions.values().find_map(|f| f.find(id)) else {
        return ApiError::not_found(format!("Environment not found: {id}")).into_response();
    };
    let reclaimed = if env.request_kill(KillReason::Reclaimed) {
        wait_reaped(&env).await;
        1
    } else {
        0
    };
    Json(Reclaimed { reclaimed }).into_response()
}

async fn billing(State(shared): State<Arc<Shared>>) -> Response {
    Json(shared.ledger.snapshot()).into_response()
}

async fn stats(State(shared): State<Arc<Shared>>) -> Json<PlatformStats> {
    Json(shared.reclaimer.stats())
}
