//! Explicit reclaims: one environment killed through the local platform's
//! admin API at a fixed interval, on top of the platform's own policy.
//!
//! The platform's random reclaims only take idle environments, which a
//! loaded cache rarely has; this takes any live environment by default (a
//! node in the middle of storing or serving chunks, a backup being
//! synced), so the run proves that the proxy's retries, failovers and
//! repairs hide reclaims from clients even at the worst moment.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rand::seq::IndexedRandom;
use serde::Serialize;
use serde_json::Value;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::cache::{get_json, post_json};
use super::options::ReclaimTarget;

/// What the reclaimer did.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct ReclaimTally {
    /// Rounds in which an environment was picked and a reclaim requested.
    pub requested: u64,
    /// Environments the platform killed for them.
    pub reclaimed: u64,
    /// Rounds without a candidate environment.
    pub skipped: u64,
    /// Admin requests that failed.
    pub failed: u64,
}

/// A running reclaimer; [`Reclaimer::stop`] ends it and returns its tally.
pub struct Reclaimer {
    stop: Arc<Notify>,
    task: JoinHandle<ReclaimTally>,
}

impl Reclaimer {
    /// Reclaims one `target` environment every `every` through `platform`.
    pub fn start(platform: SocketAddr, every: Duration, target: ReclaimTarget) -> Reclaimer {
        let stop = Arc::new(Notify::new());
        let task = tokio::spawn({
            let stop = stop.clone();
            async move {
                let mut tally = ReclaimTally::default();
                let mut ticks =
                    tokio::time::interval_at(tokio::time::Instant::now() + every, every);
                ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    // `notify_one` leaves a permit, so a stop asked for
                    // during a reclaim is seen here, ahead of a due tick.
                    tokio::select! {
                        biased;
                        () = stop.notified() => break,
                        _ = ticks.tick() => reclaim_one(platform, target, &mut tally).await,
                    }
                }
                tally
            }
        });
        Reclaimer { stop, task }
    }

    /// Stops reclaiming (after a request in progress) and returns the tally.
    pub async fn stop(self) -> ReclaimTally {
        self.stop.notify_one();
        self.task.await.unwrap_or_default()
    }
}

async fn reclaim_one(platform: SocketAddr, target: ReclaimTarget, tally: &mut ReclaimTally) {
    let functions = match get_json(platform, "/admin/functions").await {
        Ok(functions) => functions,
        Err(err) => {
            tracing::warn!(%err, "cannot list the platform's environments");
            tally.failed += 1;
            return;
        }
    };
    let candidates = candidates(&functions, target);
    let Some(&id) = candidates.choose(&mut rand::rng()) else {
        tally.skipped += 1;
        return;
    };
    tally.requested += 1;
    match post_json(platform, &format!("/admin/environments/{id}/reclaim")).await {
        Ok(reply) => tally.reclaimed += reply["reclaimed"].as_u64().unwrap_or(0),
        Err(err) => {
            tracing::warn!(%err, id, "reclaim request failed");
            tally.failed += 1;
        }
    }
}

/// The ids of the environments `target` allows, from `GET /admin/functions`.
fn candidates(functions: &Value, target: ReclaimTarget) -> Vec<u64> {
    functions
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|function| function["environments"].as_array().into_iter().flatten())
        .filter(|env| match target {
            ReclaimTarget::Any => true,
            ReclaimTarget::Idle => env["state"]["phase"] == "idle",
        })
        .filter_map(|env| env["id"].as_u64())
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn candidates_follow_the_target() {
        let functions = json!([
            {"name": "f-0", "environments": [
                {"id": 1, "state": {"phase": "busy"}},
                {"id": 2, "state": {"phase": "idle", "frozen": true}},
            ]},
            {"name": "f-1", "environments": [
                {"id": 3, "state": {"phase": "starting"}},
            ]},
            {"name": "f-2", "environments": []},
        ]);
        assert_eq!(candidates(&functions, ReclaimTarget::Any), [1, 2, 3]);
        assert_eq!(candidates(&functions, ReclaimTarget::Idle), [2]);
        assert!(candidates(&json!({}), ReclaimTarget::Any).is_empty());
    }
}
