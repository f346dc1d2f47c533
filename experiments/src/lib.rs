//! # infinicache-experiments
//!
//! Reproducible experiments for InfiniCache: availability while the platform
//! reclaims function instances, elasticity under changing load, latency and
//! throughput benchmarks against Redis, and cost reports.
//!
//! Each experiment writes its raw results (CSV/JSON) and the charts that
//! summarise them, so a run can be checked by eye and regenerated from the
//! data. Charts are produced by [`chart`], a small dependency-free SVG writer:
//! a plotting crate would pull in font rendering and image codecs for what
//! amounts to a few lines and rectangles.

pub mod availability;
pub mod bench;
pub mod chart;
pub mod cost;
pub mod elasticity;
pub mod replay;
pub mod soak;
pub mod trace;

/// Logs of the experiment binaries: errors only on stderr (their reports go
/// to stdout), more with `INFINICACHE_LOG`, e.g. `INFINICACHE_LOG=debug`.
pub fn init_logging() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("INFINICACHE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error")),
        )
        .with_writer(std::io::stderr)
        .init();
}
