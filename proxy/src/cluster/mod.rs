//! The pool of cache nodes and everything the proxy knows about it.
//!
//! [`Cluster`] ties together the per-node state machines ([`node`]), the
//! object metadata ([`metadata`]) and the invoker: it hands out links to
//! nodes (invoking them when needed), sends chunk requests with timeouts and
//! one transparent retry, accepts nodes dialing in, and runs the periodic
//! maintenance (warm-ups, abandoned PUTs).

pub mod metadata;
pub mod node;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use infinicache::CodecParams;
use infinicache::protocol::{Invocation, MuxError, NodeHello, NodeReply, NodeRequest, ServeArgs};
use parking_lot::{Mutex, MutexGuard};

use self::metadata::{ChunkLoc, Finished, Metadata, NodeId};
use self::node::{Acquire, BadToken, InvocationKind, NodeError, NodeLink, NodeSlot, NodeStatus};
use crate::config::Config;
use crate::invoker::Invoker;

/// Invocation counters, for logs, status and the cost report.
#[derive(Debug, Default)]
pub struct Counters {
    pub serve_invocations: AtomicU64,
    pub warmup_invocations: AtomicU64,
    pub failed_invocations: AtomicU64,
    /// Nodes that came back as a new environment with their memory gone.
    pub lost_environments: AtomicU64,
}

/// The node pool, object metadata and invoker.
pub struct Cluster {
    config: Arc<Config>,
    nodes: Vec<NodeSlot>,
    meta: Mutex<Metadata>,
    invoker: Invoker,
    /// The node listener address, as nodes should dial it.
    node_addr: String,
    params: CodecParams,
    pub counters: Counters,
    /// Set once shutdown begins: invocations failing from then on are
    /// expected (their environments are being killed), not news.
    shutting_down: AtomicBool,
}

impl Cluster {
    /// A pool as described by `config`, whose nodes dial `node_addr`.
    pub fn new(
        config: Arc<Config>,
        invoker: Invoker,
        node_addr: String,
        params: CodecParams,
    ) -> Arc<Self> {
        let nodes = (0..config.pool_size)
            .map(|i| NodeSlot::new(i as NodeId, config.function_name(i)))
            .collect();
        Arc::new(Cluster {
            meta: Mutex::new(Metadata::new(config.pool_size, config.node_capacity())),
            nodes,
            invoker,
            node_addr,
            params,
            counters: Counters::default(),
            shutting_down: AtomicBool::new(false),
            config,
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The erasure-coding parameters suggested to clients.
    pub fn default_params(&self) -> CodecParams {
        self.params
    }

    /// The object metadata (a short critical section: never hold it across
    /// an `.await`).
    pub fn meta(&self) -> MutexGuard<'_, Metadata> {
        self.meta.lock()
    }

    /// Every node's state.
    pub fn status(&self) -> Vec<NodeStatus> {
        self.nodes.iter().map(NodeSlot::status).collect()
    }

    /// A link to a serving node, invoking it first if needed.
    pub async fn link(self: &Arc<Self>, node: NodeId) -> Result<NodeLink, NodeError> {
        let slot = self.slot(node)?;
        match slot.acquire() {
            Acquire::Ready(link) => Ok(link),
            Acquire::Failing(err) => Err(err),
            Acquire::Wait { link, invoke } => {
                if let Some(token) = invoke {
                    self.spawn_invocation(node, InvocationKind::Serve, Some(token));
                }
                match tokio::time::timeout(self.config.connect_timeout, link).await {
                    Ok(Ok(result)) => result,
                    Ok(Err(_)) => Err(NodeError::Unavailable {
                        node,
                        reason: "gave up waiting for the node".into(),
                    }),
                    Err(_) => Err(NodeError::Timeout {
                        node,
                        timeout: self.config.connect_timeout,
                    }),
                }
            }
        }
    }

    /// Sends one request to a node and waits for the reply.
    ///
    /// If the connection closes under the request (the node said Bye just
    /// as the request went out, or its environment died), the request is
    /// retried once on a fresh invocation; every node request is idempotent.
    pub async fn call(
        self: &Arc<Self>,
        node: NodeId,
        request: &NodeRequest,
    ) -> Result<NodeReply, NodeError> {
        let timeout = self.config.node_request_timeout;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let link = self.link(node).await?;
            match tokio::time::timeout(timeout, link.call(request)).await {
                Ok(Ok(reply)) => return Ok(reply),
                Ok(Err(MuxError::Closed(reason))) => {
                    self.slot(node)?.detach(&link);
                    if attempt >= 2 {
                        return Err(NodeError::Unavailable { node, reason });
                    }
                }
                Ok(Err(err)) => {
                    return Err(NodeError::Unavailable {
                        node,
                        reason: err.to_string(),
                    });
                }
                Err(_) => return Err(NodeError::Timeout { node, timeout }),
            }
        }
    }

    fn slot(&self, node: NodeId) -> Result<&NodeSlot, NodeError> {
        self.nodes.get(node as usize).ok_or(NodeError::Unavailable {
            node,
            reason: "no such node".into(),
        })
    }

    /// Runs one invocation of `node` in the background; when it ends, starts
    /// the next one if requests are waiting.
    fn spawn_invocation(
        self: &Arc<Self>,
        node: NodeId,
        kind: InvocationKind,
        token: Option<String>,
    ) {
        let cluster = self.clone();
        tokio::spawn(async move {
            let Ok(slot) = cluster.slot(node) else { return };
            let invocation = match (kind, token) {
                (InvocationKind::Serve, Some(token)) => {
                    cluster
                        .counters
                        .serve_invocations
                        .fetch_add(1, Ordering::Relaxed);
                    Invocation::Serve(ServeArgs {
                        node_id: node,
                        proxy: cluster.node_addr.clone(),
                        token,
                        idle_timeout_ms: millis(cluster.config.node_idle_timeout),
                        billing_tick_ms: millis(cluster.config.billing_tick),
                    })
                }
                _ => {
                    cluster
                        .counters
                        .warmup_invocations
                        .fetch_add(1, Ordering::Relaxed);
                    Invocation::Warmup { node_id: node }
                }
            };
            let started = Instant::now();
            let result = cluster.invoker.invoke(slot.function(), &invocation).await;
            let error = match &result {
                Ok(summary) => {
                    tracing::debug!(node, ?kind, served = summary.served, reason = %summary.reason,
                        elapsed = ?started.elapsed(), "invocation returned");
                    None
                }
                Err(err) if cluster.shutting_down.load(Ordering::Relaxed) => {
                    tracing::debug!(node, error = %err, "invocation ended by shutdown");
                    Some(err.to_string())
                }
                Err(err) => {
                    cluster
                        .counters
                        .failed_invocations
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(node, function = slot.function(), ?kind, error = %err, "invocation failed");
                    Some(err.to_string())
                }
            };
            if let Some(token) = slot.invocation_ended(kind, error) {
                cluster.spawn_invocation(node, InvocationKind::Serve, Some(token));
            }
        });
    }

    /// Checks a dialing node's token without changing anything.
    pub fn check_token(&self, hello: &NodeHello) -> Result<(), BadToken> {
        let slot = self.slot(hello.node_id).map_err(|_| BadToken {
            node: hello.node_id,
        })?;
        slot.check_token(&hello.token)
    }

    /// Marks the start of shutdown.
    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::Relaxed);
    }

    /// A node dialed in: check its token and start routing to it.
    pub fn attach(self: &Arc<Self>, hello: &NodeHello, link: NodeLink) -> Result<(), BadToken> {
        let slot = self.slot(hello.node_id).map_err(|_| BadToken {
            node: hello.node_id,
        })?;
        let attached = slot.attach(&hello.token, hello.instance_id, link)?;
        let mut meta = self.meta();
        meta.set_capacity(hello.node_id, hello.capacity);
        if attached.new_environment {
            let lost = meta.node_lost_memory(hello.node_id);
            self.counters
                .lost_environments
                .fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                node = hello.node_id,
                lost_chunks = lost,
                "node came back as a new environment"
            );
        }
        Ok(())
    }

    /// The node said Bye or its connection closed.
    pub fn detach(&self, node: NodeId, link: &NodeLink) {
        if let Ok(slot) = self.slot(node) {
            slot.detach(link);
        }
    }

    /// Answers a finished PUT's waiters and drops its garbage.
    pub fn finish_put(self: &Arc<Self>, mut finished: Finished) {
        finished.announce();
        self.drop_chunks(std::mem::take(&mut finished.garbage));
    }

    /// Drops chunks from their nodes in the background.
    pub fn drop_chunks(self: &Arc<Self>, chunks: Vec<ChunkLoc>) {
        for chunk in chunks {
            let cluster = self.clone();
            tokio::spawn(async move { cluster.drop_chunk(chunk).await });
        }
    }

    /// Drops one chunk from its node and waits for the node to confirm. A
    /// node that cannot be reached is logged and skipped: its memory, chunk
    /// included, is lost or unreachable anyway.
    pub async fn drop_chunk(self: &Arc<Self>, chunk: ChunkLoc) {
        let request = NodeRequest::Drop {
            key: chunk.key,
            version: chunk.version,
            index: chunk.index,
        };
        if let Err(err) = self.call(chunk.node, &request).await {
            tracing::debug!(node = chunk.node, error = %err, "could not drop a chunk");
        }
    }

    /// Starts the periodic warm-ups and the reaper of abandoned PUTs.
    pub fn spawn_maintenance(self: &Arc<Self>) -> Vec<tokio::task::JoinHandle<()>> {
        let mut tasks = Vec::new();
        let interval = self.config.warmup_interval;
        if !interval.is_zero() {
            let cluster = Arc::downgrade(self);
            tasks.push(tokio::spawn(async move {
                let mut ticker = tokio::time::interval(interval);
                ticker.tick().await;
                loop {
                    ticker.tick().await;
                    let Some(cluster) = cluster.upgrade() else {
                        return;
                    };
                    cluster.warm_up(interval);
                }
            }));
        }
        let cluster = Arc::downgrade(self);
        let put_timeout = self.config.put_timeout;
        tasks.push(tokio::spawn(async move {
            let mut ticker =
                tokio::time::interval((put_timeout / 4).max(Duration::from_millis(100)));
            loop {
                ticker.tick().await;
                let Some(cluster) = cluster.upgrade() else {
                    return;
                };
                let Some(deadline) = Instant::now().checked_sub(put_timeout) else {
                    continue;
                };
                let expired = cluster.meta().expire_puts(deadline);
                for finished in expired {
                    tracing::warn!("abandoning a PUT whose chunks did not all arrive");
                    cluster.finish_put(finished);
                }
            }
        }));
        tasks
    }

    /// Invokes every node that has been idle for at least `idle_for`, so the
    /// provider keeps its environment (and the chunks in it) alive.
    pub fn warm_up(self: &Arc<Self>, idle_for: Duration) -> usize {
        let mut warmed = 0;
        for slot in &self.nodes {
            if slot.begin_warmup(idle_for) {
                self.spawn_invocation(slot.id(), InvocationKind::Warmup, None);
                warmed += 1;
            }
        }
        tracing::debug!(warmed, "warm-up round");
        warmed
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
