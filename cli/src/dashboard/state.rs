//! What the dashboard shows, as plain data: built from one poll of the
//! proxy's `/status` and `/metrics` (and the poll before it, for rates), and
//! rendered by [`super::view`] without looking anywhere else.

use std::time::Duration;

use super::prometheus::{Histogram, Samples};
use super::status::Status;

/// A node's state, as the proxy reports it (see `/status`'s `state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NodeState {
    Idle,
    Warming,
    Invoking,
    Serving,
    Leaving,
    BackingUp,
    Failing,
    /// A state this dashboard does not know (a newer proxy).
    Unknown,
}

impl NodeState {
    /// Every state, in the legend's order.
    pub const ALL: [NodeState; 8] = [
        NodeState::Serving,
        NodeState::Invoking,
        NodeState::Warming,
        NodeState::BackingUp,
        NodeState::Leaving,
        NodeState::Idle,
        NodeState::Failing,
        NodeState::Unknown,
    ];

    pub fn from_label(label: &str) -> NodeState {
        match label {
            "idle" => NodeState::Idle,
            "warming" => NodeState::Warming,
            "invoking" => NodeState::Invoking,
            "serving" => NodeState::Serving,
            "leaving" => NodeState::Leaving,
            "backing_up" => NodeState::BackingUp,
            "failing" => NodeState::Failing,
            _ => NodeState::Unknown,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            NodeState::Idle => "idle",
            NodeState::Warming => "warming",
            NodeState::Invoking => "invoking",
            NodeState::Serving => "serving",
            NodeState::Leaving => "leaving",
            NodeState::BackingUp => "backing up",
            NodeState::Failing => "failing",
            NodeState::Unknown => "unknown",
        }
    }

    /// A node's state from its `/status` entry: the proxy's `state`, or
    /// (from a proxy that does not report one) its phase.
    fn of(node: &super::status::Node) -> NodeState {
        NodeState::from_label(node.state.as_deref().unwrap_or(&node.phase))
    }
}

/// One bucket of the elastic window.
#[derive(Debug, Clone, PartialEq)]
pub struct BucketRow {
    pub id: u64,
    /// `active` or `degraded`.
    pub tier: String,
    pub age: Duration,
    pub nodes: Vec<u32>,
    pub used_bytes: u64,
    pub capacity_bytes: u64,
}

/// Client traffic over the last poll interval.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Throughput {
    pub requests_per_sec: f64,
    /// Value bytes from clients, and to them.
    pub bytes_in_per_sec: f64,
    pub bytes_out_per_sec: f64,
}

/// One command's latency.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandLatency {
    pub frontend: String,
    pub command: String,
    /// Completed since the proxy started.
    pub total: u64,
    /// Per second over the last interval (0 on the first poll).
    pub per_sec: f64,
    /// Seconds: over the last interval if it had requests, else since the
    /// proxy started.
    pub p50: Option<f64>,
    pub p99: Option<f64>,
}

/// Invocations and what happened to environments.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Invocations {
    pub serve: u64,
    pub warmup: u64,
    pub backup: u64,
    pub failed: u64,
    pub cold_starts: u64,
    pub failovers: u64,
    pub lost_environments: u64,
    /// On the local platform only.
    pub reclaims: Option<u64>,
}

/// Chunk losses and how they were made good.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Availability {
    pub chunks_lost: u64,
    pub chunks_repaired: u64,
    pub chunks_recovered: u64,
    pub objects_lost: u64,
}

/// What the invocations cost so far.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Cost {
    pub gb_seconds: f64,
    pub usd: f64,
}

/// Everything on screen.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DashboardState {
    /// The admin address polled.
    pub source: String,
    /// By node id.
    pub nodes: Vec<NodeState>,
    pub elastic: bool,
    pub buckets: Vec<BucketRow>,
    pub free_functions: u64,
    pub objects: u64,
    pub cold_objects: u64,
    pub memory_used_bytes: u64,
    pub memory_capacity_bytes: u64,
    /// `None` until two polls of `/metrics` gave a rate.
    pub throughput: Option<Throughput>,
    /// Commands that have been used, busiest first.
    pub latency: Vec<CommandLatency>,
    pub invocations: Invocations,
    pub availability: Availability,
    pub cost: Cost,
    /// Why the last poll failed (what is shown is from the one before).
    pub error: Option<String>,
}

impl DashboardState {
    /// The state `status` describes (no traffic figures yet: those come
    /// from the metrics, [`DashboardState::with_metrics`]).
    pub fn from_status(source: impl Into<String>, status: &Status) -> DashboardState {
        let mut nodes: Vec<_> = status.nodes.iter().collect();
        nodes.sort_by_key(|node| node.id);
        let window = &status.window;
        let counters = &status.counters;
        DashboardState {
            source: source.into(),
            nodes: nodes.into_iter().map(NodeState::of).collect(),
            elastic: window.elastic,
            buckets: window
                .buckets
                .iter()
                .map(|bucket| BucketRow {
                    id: bucket.id,
                    tier: bucket.tier.clone(),
                    age: Duration::from_millis(bucket.age_ms),
                    nodes: bucket.nodes.clone(),
                    used_bytes: bucket.used_bytes,
                    capacity_bytes: bucket.capacity_bytes,
                })
                .collect(),
            free_functions: window.free_functions,
            objects: status.objects,
            cold_objects: window.cold_objects,
            memory_used_bytes: window.memory_used_bytes,
            memory_capacity_bytes: status.memory_capacity_bytes,
            throughput: None,
            latency: Vec::new(),
            invocations: Invocations {
                serve: counters.serve_invocations,
                warmup: counters.warmup_invocations,
                backup: counters.backup_invocations,
                failed: counters.failed_invocations,
                cold_starts: status.billing.values().map(|b| b.cold_starts).sum(),
                failovers: counters.failovers,
                lost_environments: counters.lost_environments,
                reclaims: None,
            },
            availability: Availability {
                chunks_lost: counters.chunks_lost,
                chunks_repaired: counters.chunks_repaired,
                chunks_recovered: counters.chunks_recovered,
                objects_lost: counters.objects_lost,
            },
            cost: Cost {
                gb_seconds: status.billing.values().map(|b| b.gb_seconds).sum(),
                usd: status.cost.total_usd,
            },
            error: None,
        }
    }

    /// Adds what the metrics tell: latency by command, reclaims, and, given
    /// the previous poll's metrics and the time since, throughput.
    pub fn with_metrics(mut self, now: &Samples, before: Option<(&Samples, Duration)>) -> Self {
        let rate = |name: &str, labels: &[(&str, &str)]| {
            before.and_then(|(before, elapsed)| {
                let seconds = elapsed.as_secs_f64();
                let delta = now.sum(name, labels) - before.sum(name, labels);
                // A restarted proxy's counters start over: no rate then.
                (seconds > 0.0 && delta >= 0.0).then(|| delta / seconds)
            })
        };
        if let (Some(requests), Some(bytes_in), Some(bytes_out)) = (
            rate(REQUESTS, &[]),
            rate(CLIENT_BYTES, &[("direction", "in")]),
            rate(CLIENT_BYTES, &[("direction", "out")]),
        ) {
            self.throughput = Some(Throughput {
                requests_per_sec: requests,
                bytes_in_per_sec: bytes_in,
                bytes_out_per_sec: bytes_out,
            });
        }
        self.latency = now
            .matching(REQUESTS, &[])
            .filter(|sample| sample.value > 0.0)
            .filter_map(|sample| {
                let frontend = sample.label("frontend")?;
                let command = sample.label("command")?;
                let labels = [("frontend", frontend), ("command", command)];
                let latency = now.histogram(LATENCY, &labels)?;
                let recent = before
                    .and_then(|(before, _)| before.histogram(LATENCY, &labels))
                    .map(|earlier| latency.since(&earlier))
                    .filter(|recent| recent.count() > 0.0);
                let shown: &Histogram = recent.as_ref().unwrap_or(&latency);
                Some(CommandLatency {
                    frontend: frontend.to_string(),
                    command: command.to_string(),
                    total: sample.value as u64,
                    per_sec: rate(REQUESTS, &labels).unwrap_or(0.0),
                    p50: shown.quantile(0.5),
                    p99: shown.quantile(0.99),
                })
            })
            .collect();
        self.latency
            .sort_by(|a, b| b.per_sec.total_cmp(&a.per_sec).then(b.total.cmp(&a.total)));
        if now.matching(RECLAIMS, &[]).next().is_some() {
            self.invocations.reclaims = Some(now.sum(RECLAIMS, &[]) as u64);
        }
        self
    }

    /// How many nodes are in `state`.
    pub fn count(&self, state: NodeState) -> usize {
        self.nodes.iter().filter(|node| **node == state).count()
    }
}

const REQUESTS: &str = "infinicache_requests_total";
const LATENCY: &str = "infinicache_request_duration_seconds";
const CLIENT_BYTES: &str = "infinicache_client_bytes_total";
const RECLAIMS: &str = "infinicache_reclaims_total";

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = r#"{
        "objects": 3,
        "nodes": [
            {"id": 1, "function": "f-1", "phase": "idle", "state": "failing", "failures": 2, "backing_up": false},
            {"id": 0, "function": "f-0", "phase": "serving", "state": "serving", "failures": 0, "backing_up": false},
            {"id": 2, "function": "f-2", "phase": "invoking", "failures": 0, "backing_up": false}
        ],
        "counters": {"serve_invocations": 7, "failovers": 1, "some_new_counter": 5},
        "billing": {"serve": {"invocations": 7, "gb_seconds": 1.5, "cold_starts": 3},
                    "warmup": {"invocations": 2, "gb_seconds": 0.25, "cold_starts": 0}},
        "cost": {"total_usd": 0.0000312},
        "window": {"elastic": true, "buckets": [{"id": 4, "age_ms": 61000, "tier": "active", "nodes": [0, 1, 2], "used_bytes": 10, "capacity_bytes": 100}],
                   "functions": 3, "free_functions": 0, "memory_used_bytes": 10, "cold_objects": 1},
        "memory_capacity_bytes": 100
    }"#;

    fn metrics(get_count: u64, bytes_out: u64) -> Samples {
        Samples::parse(&format!(
            "infinicache_requests_total{{frontend=\"native\",command=\"get\"}} {get_count}\n\
             infinicache_requests_total{{frontend=\"native\",command=\"delete\"}} 0\n\
             infinicache_request_duration_seconds_bucket{{frontend=\"native\",command=\"get\",le=\"0.001\"}} {get_count}\n\
             infinicache_request_duration_seconds_bucket{{frontend=\"native\",command=\"get\",le=\"+Inf\"}} {get_count}\n\
             infinicache_client_bytes_total{{frontend=\"native\",direction=\"in\"}} 0\n\
             infinicache_client_bytes_total{{frontend=\"native\",direction=\"out\"}} {bytes_out}\n\
             infinicache_reclaims_total{{reason=\"idle\"}} 2\n\
             infinicache_reclaims_total{{reason=\"admin\"}} 1\n"
        ))
        .expect("metrics parse")
    }

    #[test]
    fn state_comes_from_status_and_metrics() {
        let status: Status = serde_json::from_str(STATUS).expect("status parses");
        let state = DashboardState::from_status("admin:1", &status);
        assert_eq!(
            state.nodes,
            [NodeState::Serving, NodeState::Failing, NodeState::Invoking]
        );
        assert_eq!(state.invocations.serve, 7);
        assert_eq!(state.invocations.cold_starts, 3);
        assert_eq!(state.cost.gb_seconds, 1.75);
        assert_eq!(state.buckets[0].age, Duration::from_secs(61));
        assert!(state.throughput.is_none());

        let first = metrics(10, 1000);
        let second = metrics(30, 5000);
        let state = state.with_metrics(&second, Some((&first, Duration::from_secs(2))));
        let throughput = state.throughput.expect("a rate after two polls");
        assert_eq!(throughput.requests_per_sec, 10.0);
        assert_eq!(throughput.bytes_out_per_sec, 2000.0);
        assert_eq!(state.latency.len(), 1, "unused commands are left out");
        let get = &state.latency[0];
        assert_eq!((get.total, get.per_sec), (30, 10.0));
        assert!(get.p99.is_some_and(|p99| p99 <= 0.001));
        assert_eq!(state.invocations.reclaims, Some(3));
    }
}
