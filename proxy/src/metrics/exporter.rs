//! `GET /metrics`: the request path's series plus the pool's state, read
//! from the cluster at scrape time.
//!
//! Everything that already has a home (the cluster's counters, the billing
//! ledger, the node state machines, the local platform's reclaim counts) is
//! read when Prometheus asks rather than mirrored into a second set of
//! counters, so the numbers here are exactly those of `/status`.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;

use super::Metrics;
use super::pool;
use super::text::{self, MetricType, TextEncoder};
use crate::cluster::Cluster;
use crate::cluster::window::Tier;
use crate::platform::PlatformStats;

/// Reads the local platform's counters (cold starts, reclaims).
pub type PlatformStatsReader = Arc<dyn Fn() -> PlatformStats + Send + Sync>;

/// Renders the exposition of one proxy.
pub struct Exporter {
    cluster: Arc<Cluster>,
    /// With the local platform only: AWS does not tell when it reclaims.
    platform: Option<PlatformStatsReader>,
    requests: &'static Metrics,
}

impl std::fmt::Debug for Exporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exporter")
            .field("platform", &self.platform.is_some())
            .finish_non_exhaustive()
    }
}

impl Exporter {
    /// An exporter of `cluster` and, on the local platform, its counters.
    pub fn new(cluster: Arc<Cluster>, platform: Option<PlatformStatsReader>) -> Arc<Exporter> {
        Arc::new(Exporter {
            cluster,
            platform,
            requests: super::global(),
        })
    }

    /// The exposition text (format 0.0.4).
    pub fn render(&self) -> String {
        let mut encoder = TextEncoder::new();
        self.requests.encode(&mut encoder);
        self.encode_pool(&mut encoder);
        self.encode_events(&mut encoder);
        self.encode_billing(&mut encoder);
        if let Some(platform) = &self.platform {
            encode_platform(&mut encoder, &platform());
        }
        encoder.finish()
    }

    fn encode_pool(&self, encoder: &mut TextEncoder) {
        let cluster = &self.cluster;
        let nodes = cluster.status();
        let mut family = encoder.family(
            "infinicache_nodes",
            "Cache nodes by state.",
            MetricType::Gauge,
        );
        for (state, count) in pool::count_states(&nodes) {
            family.sample(&[("state", state.label())], count);
        }
        // One metadata lock at a time.
        let objects = cluster.meta().len();
        let window = cluster.window_status();
        let capacity = pool::memory_capacity(cluster);
        encoder.single(
            "infinicache_objects",
            "Visible objects.",
            MetricType::Gauge,
            objects,
        );
        encoder.single(
            "infinicache_cold_objects",
            "Objects with no chunk in function memory (only in the object store).",
            MetricType::Gauge,
            window.cold_objects,
        );
        encoder.single(
            "infinicache_memory_used_bytes",
            "Chunk bytes held in function memory.",
            MetricType::Gauge,
            window.memory_used_bytes,
        );
        encoder.single(
            "infinicache_memory_capacity_bytes",
            "Chunk bytes the whole pool can hold.",
            MetricType::Gauge,
            capacity,
        );
        let mut tiers = [(Tier::Active, 0usize), (Tier::Degraded, 0), (Tier::Free, 0)];
        for bucket in &window.buckets {
            if let Some((_, count)) = tiers
                .iter_mut()
                .find(|(tier, _)| *tier == bucket.bucket.tier)
            {
                *count += bucket.bucket.nodes.len();
            }
        }
        tiers[2].1 += window.free_functions;
        let mut family = encoder.family(
            "infinicache_functions",
            "Functions by tier of the elastic window (free: in no bucket).",
            MetricType::Gauge,
        );
        for (tier, count) in tiers {
            family.sample(&[("tier", tier_label(tier))], count);
        }
        encoder.single(
            "infinicache_window_buckets",
            "Buckets of the elastic window.",
            MetricType::Gauge,
            window.buckets.len(),
        );
        if let Some(durable) = cluster.durable() {
            encoder.single(
                "infinicache_write_back_buffered_bytes",
                "Chunk bytes waiting for their write to the object store.",
                MetricType::Gauge,
                durable.buffered_bytes(),
            );
        }
    }

    fn encode_events(&self, encoder: &mut TextEncoder) {
        let counters = self.cluster.counters.snapshot();
        encoder
            .family(
                "infinicache_invocations_total",
                "Invocations started, by purpose.",
                MetricType::Counter,
            )
            .sample(&[("purpose", "serve")], counters.serve_invocations)
            .sample(&[("purpose", "warmup")], counters.warmup_invocations)
            .sample(&[("purpose", "backup")], counters.backup_invocations);
        let counter = |encoder: &mut TextEncoder, name, help, value: u64| {
            encoder.single(name, help, MetricType::Counter, value);
        };
        counter(
            encoder,
            "infinicache_invocation_failures_total",
            "Invocations that failed.",
            counters.failed_invocations,
        );
        counter(
            encoder,
            "infinicache_lost_environments_total",
            "Nodes that came back in a new environment (their memory was reclaimed).",
            counters.lost_environments,
        );
        counter(
            encoder,
            "infinicache_failovers_total",
            "Nodes whose backup environment took over.",
            counters.failovers,
        );
        encoder
            .family(
                "infinicache_backups_total",
                "Delta syncs to backup environments, by outcome.",
                MetricType::Counter,
            )
            .sample(&[("outcome", "completed")], counters.backups)
            .sample(&[("outcome", "failed")], counters.backups_failed);
        counter(
            encoder,
            "infinicache_backup_bytes_total",
            "Chunk bytes relayed to backup environments.",
            counters.backup_bytes_sent,
        );
        encoder
            .family(
                "infinicache_chunks_total",
                "Chunk events: lost (with an environment), repaired (rebuilt from survivors), recovered (read back from the object store), restored (copied back from a backup), moved (out of a degraded bucket).",
                MetricType::Counter,
            )
            .sample(&[("event", "lost")], counters.chunks_lost)
            .sample(&[("event", "repaired")], counters.chunks_repaired)
            .sample(&[("event", "recovered")], counters.chunks_recovered)
            .sample(&[("event", "restored")], counters.chunks_restored)
            .sample(&[("event", "moved")], counters.chunks_moved);
        counter(
            encoder,
            "infinicache_recovered_bytes_total",
            "Chunk bytes read back from the object store into function memory.",
            counters.bytes_recovered,
        );
        counter(
            encoder,
            "infinicache_objects_lost_total",
            "Objects left with fewer than k chunks and no durable copy: gone.",
            counters.objects_lost,
        );
        counter(
            encoder,
            "infinicache_buckets_expired_total",
            "Buckets of the elastic window expired (their functions released).",
            counters.buckets_expired,
        );
    }

    fn encode_billing(&self, encoder: &mut TextEncoder) {
        let billing = self.cluster.ledger.snapshot();
        let pricing = self.cluster.config().pricing;
        let mut family = encoder.family(
            "infinicache_cold_starts_total",
            "Invocations that started a new environment, by purpose.",
            MetricType::Counter,
        );
        for (purpose, totals) in &billing {
            family.sample(&[("purpose", purpose)], totals.cold_starts);
        }
        let mut family = encoder.family(
            "infinicache_billed_invocations_total",
            "Finished invocations, by purpose.",
            MetricType::Counter,
        );
        for (purpose, totals) in &billing {
            family.sample(&[("purpose", purpose)], totals.invocations);
        }
        let mut family = encoder.family(
            "infinicache_billed_gb_seconds_total",
            "Billed duration times memory, by purpose.",
            MetricType::Counter,
        );
        for (purpose, totals) in &billing {
            family.sample(&[("purpose", purpose)], totals.gb_seconds);
        }
        let mut family = encoder.family(
            "infinicache_estimated_cost_usd_total",
            "What the invocations cost at the configured prices ([pricing]), by purpose.",
            MetricType::Counter,
        );
        for (purpose, totals) in &billing {
            family.sample(&[("purpose", purpose)], pricing.cost(totals));
        }
    }
}

fn encode_platform(encoder: &mut TextEncoder, stats: &PlatformStats) {
    let reclaims = &stats.reclaims;
    encoder
        .family(
            "infinicache_reclaims_total",
            "Environments the local platform reclaimed, by reason.",
            MetricType::Counter,
        )
        .sample(&[("reason", "idle")], reclaims.idle)
        .sample(&[("reason", "max_lifetime")], reclaims.max_lifetime)
        .sample(&[("reason", "random")], reclaims.random)
        .sample(&[("reason", "admin")], reclaims.admin);
    encoder.single(
        "infinicache_platform_environments_started_total",
        "Environments the local platform started.",
        MetricType::Counter,
        stats.cold_starts,
    );
}

fn tier_label(tier: Tier) -> &'static str {
    match tier {
        Tier::Active => "active",
        Tier::Degraded => "degraded",
        Tier::Free => "free",
    }
}

/// Serves `GET /metrics` (on the admin listener, or one of its own).
pub fn routes(exporter: Arc<Exporter>) -> Router {
    Router::new()
        .route("/metrics", get(scrape))
        .with_state(exporter)
}

async fn scrape(State(exporter): State<Arc<Exporter>>) -> impl IntoResponse {
    ([(CONTENT_TYPE, text::CONTENT_TYPE)], exporter.render())
}
