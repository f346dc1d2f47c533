//! `infinicache-node`: the InfiniCache cache node, an AWS Lambda function.
//!
//! The same binary runs on AWS Lambda (as the `bootstrap` of a
//! `provided.al2023` function) and on the local Lambda platform: both drive
//! it through the Lambda Runtime API via `lambda_runtime`. Chunks live in the
//! process's memory, which the provider keeps between invocations until it
//! reclaims the environment.

mod schedule;
mod session;
mod store;

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use infinicache::protocol::{Invocation, InvocationSummary};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use parking_lot::Mutex;

use crate::store::ChunkStore;

/// Memory kept back for the runtime, buffers and the allocator when the
/// configuration does not say otherwise.
const DEFAULT_RESERVED_MB: u64 = 32;

/// State that survives between invocations of this environment.
pub struct Node {
    /// Random per process: a new environment gets a new id, which is how the
    /// proxy learns that the provider replaced it (and its memory is gone).
    pub instance_id: u64,
    pub store: Mutex<ChunkStore>,
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("INFINICACHE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .with_target(false)
        .without_time()
        .init();

    let node = Arc::new(Node {
        instance_id: rand::random::<u64>() | 1,
        store: Mutex::new(ChunkStore::new(capacity_from_env())),
    });
    lambda_runtime::run(service_fn(move |event| handle(node.clone(), event))).await
}

/// Chunk capacity: the function's memory minus a reserve
/// (`INFINICACHE_RESERVED_MB`, default 32).
fn capacity_from_env() -> u64 {
    let memory_mb: u64 = std::env::var("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(128);
    let reserved_mb: u64 = std::env::var("INFINICACHE_RESERVED_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_RESERVED_MB);
    memory_mb.saturating_sub(reserved_mb) * 1024 * 1024
}

async fn handle(
    node: Arc<Node>,
    event: LambdaEvent<Invocation>,
) -> Result<InvocationSummary, Error> {
    let deadline = UNIX_EPOCH + Duration::from_millis(event.context.deadline);
    let (node_id, served, reason) = match event.payload {
        Invocation::Warmup { node_id } => (node_id, 0, "warmup"),
        Invocation::Serve(args) => {
            let outcome = session::serve(node.clone(), &args, deadline).await?;
            (args.node_id, outcome.served, outcome.reason)
        }
        // A backup serves the proxy's relay exactly like a primary serves
        // chunk requests: the difference is only in what the proxy sends.
        Invocation::Backup(args) => {
            let outcome = session::serve(node.clone(), &args, deadline).await?;
            (args.node_id, outcome.served, "backup")
        }
    };
    let store = node.store.lock();
    Ok(InvocationSummary {
        node_id,
        instance_id: node.instance_id,
        served,
        used: store.used(),
        chunks: store.len(),
        reason: reason.to_string(),
    })
}
