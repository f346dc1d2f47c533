//! The pool of cache nodes and everything the proxy knows about it.
//!
//! [`Cluster`] ties together the per-node state machines ([`node`]), the
//! object metadata ([`metadata`]) and the invoker: it hands out links to
//! nodes (invoking them when needed), sends chunk requests with timeouts,
//! retrying those a leaving or lost environment did not answer on the
//! node's next invocation, accepts nodes dialing in, and runs the periodic
//! maintenance (warm-ups, delta-sync backups, abandoned PUTs).
//!
//! Availability lives in three sibling modules: [`backup`] (delta sync to a
//! second environment of each node), [`reconcile`] (what a new environment
//! holds: nothing, or the backup's copy after a failover) and [`repair`]
//! (rebuilding lost chunks from the survivors).

pub mod backup;
pub mod durable;
pub mod leases;
pub mod ledger;
pub mod manifest;
pub mod metadata;
pub mod node;
pub mod reconcile;
pub mod repair;
pub mod window;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use infinicache::protocol::{
    ErrorCode, ErrorReply, Invocation, InvocationSummary, Key, MuxError, NodeHello, NodeReply,
    NodeRequest, ServeArgs,
};
use infinicache::{CodecParams, ObjectCodec};
use parking_lot::{Mutex, MutexGuard};
use serde::Serialize;

use self::ledger::Ledger;
use self::metadata::{ChunkLoc, Finished, Metadata, NodeId};
use self::node::{
    Acquire, BackupRefused, BadToken, ByeAnswer, Failure, InvocationKind, LinkClaim, NodeError,
    NodeLink, NodeSlot, NodeStatus, TokenRole,
};
use self::window::{Tier, Window};
use crate::config::Config;
use crate::invoker::Invoker;

/// Event counters, for logs, the status API and the experiments.
#[derive(Debug, Default)]
pub struct Counters {
    pub serve_invocations: AtomicU64,
    pub warmup_invocations: AtomicU64,
    pub backup_invocations: AtomicU64,
    pub failed_invocations: AtomicU64,
    /// Nodes that came back as a new environment.
    pub lost_environments: AtomicU64,
    /// ...of which were the backup environment taking over.
    pub failovers: AtomicU64,
    /// Chunks found missing (lost with an environment, or reported missing).
    pub chunks_lost: AtomicU64,
    /// Completed and failed delta syncs.
    pub backups: AtomicU64,
    pub backups_failed: AtomicU64,
    /// Chunks copied to backups, their bytes, and chunks dropped from them.
    pub backup_chunks_sent: AtomicU64,
    pub backup_bytes_sent: AtomicU64,
    pub backup_chunks_dropped: AtomicU64,
    /// Chunks rebuilt from survivors and written back.
    pub chunks_repaired: AtomicU64,
    /// Chunks a primary had lost, copied back from its backup.
    pub chunks_restored: AtomicU64,
    /// Objects with fewer than `k` chunks left: gone.
    pub objects_lost: AtomicU64,
    /// Chunks read back from the object store into function memory (lost
    /// or cold ones), and their bytes: the recovery traffic.
    pub chunks_recovered: AtomicU64,
    pub bytes_recovered: AtomicU64,
    /// Chunks moved forward from a degraded bucket after a read.
    pub chunks_moved: AtomicU64,
    /// Buckets of the elastic window expired (functions released).
    pub buckets_expired: AtomicU64,
}

/// A snapshot of [`Counters`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CounterValues {
    pub serve_invocations: u64,
    pub warmup_invocations: u64,
    pub backup_invocations: u64,
    pub failed_invocations: u64,
    pub lost_environments: u64,
    pub failovers: u64,
    pub chunks_lost: u64,
    pub backups: u64,
    pub backups_failed: u64,
    pub backup_chunks_sent: u64,
    pub backup_bytes_sent: u64,
    pub backup_chunks_dropped: u64,
    pub chunks_repaired: u64,
    pub chunks_restored: u64,
    pub objects_lost: u64,
    pub chunks_recovered: u64,
    pub bytes_recovered: u64,
    pub chunks_moved: u64,
    pub buckets_expired: u64,
}

impl Counters {
    pub fn snapshot(&self) -> CounterValues {
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        CounterValues {
            serve_invocations: get(&self.serve_invocations),
            warmup_invocations: get(&self.warmup_invocations),
            backup_invocations: get(&self.backup_invocations),
            failed_invocations: get(&self.failed_invocations),
            lost_environments: get(&self.lost_environments),
            failovers: get(&self.failovers),
            chunks_lost: get(&self.chunks_lost),
            backups: get(&self.backups),
            backups_failed: get(&self.backups_failed),
            backup_chunks_sent: get(&self.backup_chunks_sent),
            backup_bytes_sent: get(&self.backup_bytes_sent),
            backup_chunks_dropped: get(&self.backup_chunks_dropped),
            chunks_repaired: get(&self.chunks_repaired),
            chunks_restored: get(&self.chunks_restored),
            objects_lost: get(&self.objects_lost),
            chunks_recovered: get(&self.chunks_recovered),
            bytes_recovered: get(&self.bytes_recovered),
            chunks_moved: get(&self.chunks_moved),
            buckets_expired: get(&self.buckets_expired),
        }
    }

    fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// How many links a node request tries before it fails with the last
/// connection error.
const CALL_ATTEMPTS: u32 = 3;

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
    /// What the invocations cost, by purpose.
    pub ledger: Ledger,
    /// Objects being repaired or waiting to be (one repair per object).
    repairing: Mutex<HashSet<Key>>,
    /// Bounds the repairs running at once.
    repair_permits: Arc<tokio::sync::Semaphore>,
    /// One codec per parameter set seen, for repairs.
    codecs: Mutex<HashMap<CodecParams, Arc<ObjectCodec>>>,
    /// The object store under the memory layer, if enabled.
    durable: Option<durable::Durable>,
    /// One lock per key whose manifest record is being written.
    record_locks: Mutex<HashMap<Key, Arc<tokio::sync::Mutex<()>>>>,
    /// Versions being read, whose clean-up waits for their readers.
    leases: leases::Leases,
    /// Set once shutdown begins: invocations failing from then on are
    /// expected (their environments are being killed), not news.
    shutting_down: AtomicBool,
    /// The request bytes all clients may have in the proxy at once.
    buffers: crate::server::limits::BufferBudget,
    /// Client requests in flight (native request tasks, RESP commands): a
    /// shutdown waits for them.
    requests: tokio_util::task::TaskTracker,
    /// Set when a shutdown begins draining: new requests are refused.
    draining: AtomicBool,
}

impl Cluster {
    /// A pool as described by `config`, whose nodes dial `node_addr`.
    pub fn new(
        config: Arc<Config>,
        invoker: Invoker,
        node_addr: String,
        params: CodecParams,
        durable: Option<durable::Durable>,
    ) -> Arc<Self> {
        let nodes = (0..config.pool_size)
            .map(|i| NodeSlot::new(i as NodeId, config.function_name(i)))
            .collect();
        // The window only makes sense over an object store: without one,
        // releasing a bucket's functions would lose its objects.
        let window = if durable.is_some() && config.window.enabled {
            Window::elastic(
                config.pool_size,
                params.total_shards(),
                config.window.clone(),
            )
        } else {
            Window::fixed(config.pool_size, Instant::now())
        };
        let meta = Metadata::with_window(
            config.pool_size,
            config.node_capacity(),
            window,
            durable.is_some(),
            config.window.grow_threshold,
        );
        Arc::new(Cluster {
            meta: Mutex::new(meta),
            nodes,
            invoker,
            node_addr,
            params,
            counters: Counters::default(),
            ledger: Ledger::default(),
            repairing: Mutex::new(HashSet::new()),
            repair_permits: Arc::new(tokio::sync::Semaphore::new(repair::MAX_CONCURRENT_REPAIRS)),
            codecs: Mutex::new(HashMap::new()),
            durable,
            record_locks: Mutex::new(HashMap::new()),
            leases: leases::Leases::default(),
            shutting_down: AtomicBool::new(false),
            buffers: crate::server::limits::BufferBudget::new(&config.limits),
            requests: tokio_util::task::TaskTracker::new(),
            draining: AtomicBool::new(false),
            config,
        })
    }

    /// Client requests in flight: spawn request tasks on it, or hold one of
    /// its tokens while a request runs.
    pub fn requests(&self) -> &tokio_util::task::TaskTracker {
        &self.requests
    }

    /// Whether a shutdown is draining requests (new ones are refused).
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    /// Refuses new client requests from now on and waits for those in
    /// flight to finish.
    pub async fn drain_requests(&self) {
        self.draining.store(true, Ordering::Relaxed);
        self.requests.close();
        self.requests.wait().await;
    }

    /// Tells every serving node to return (closes its connection): at
    /// shutdown, so no invocation stays billed waiting for its idle timeout.
    pub fn dismiss_nodes(&self) {
        for slot in &self.nodes {
            slot.dismiss("the proxy is shutting down");
        }
    }

    /// The proxy-wide budget of buffered client request bytes.
    pub fn buffers(&self) -> &crate::server::limits::BufferBudget {
        &self.buffers
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

    /// A link to a serving node, invoking it first if needed. The node
    /// stays while the claim is held (see [`node::LinkClaim`]).
    pub async fn link(self: &Arc<Self>, node: NodeId) -> Result<LinkClaim, NodeError> {
        self.link_for(node, InvocationKind::Serve).await
    }

    /// Like [`Cluster::link`], accounting an invocation it starts as `kind`.
    pub async fn link_for(
        self: &Arc<Self>,
        node: NodeId,
        kind: InvocationKind,
    ) -> Result<LinkClaim, NodeError> {
        let deadline = Instant::now() + self.config.connect_timeout;
        self.link_until(node, kind, deadline).await
    }

    /// Like [`Cluster::link_for`], giving up at `deadline` rather than a
    /// connect timeout from now.
    async fn link_until(
        self: &Arc<Self>,
        node: NodeId,
        kind: InvocationKind,
        deadline: Instant,
    ) -> Result<LinkClaim, NodeError> {
        let slot = self.slot(node)?;
        match slot.acquire() {
            Acquire::Ready(link) => Ok(link),
            Acquire::Failing(err) => Err(err),
            Acquire::Wait { link, invoke } => {
                if let Some(token) = invoke {
                    self.spawn_invocation(node, kind, Some(token));
                }
                match tokio::time::timeout_at(deadline.into(), link).await {
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
    /// Every node request is idempotent (a chunk store is keyed by its
    /// version), so a request that did not get its answer because the node
    /// went away is sent again on the node's next invocation:
    ///
    /// * refused by a link that was sealed under it (the node was let go
    ///   between routing and sending, which claims should make impossible):
    ///   it never left the proxy, so this is not a failed attempt, and it
    ///   waits for the next invocation within the connect timeout it was
    ///   already waiting under (however many links refused it meanwhile);
    /// * lost in flight (the connection closed under it: the environment
    ///   was reclaimed, or the node left at its deadline): retried on up to
    ///   [`CALL_ATTEMPTS`] links in all, so a request that keeps killing its
    ///   node still fails.
    ///
    /// A node that cannot come back fails the wait for its link (its
    /// invocation fails, or the connect timeout passes), and a node that
    /// does not answer fails the request after the node request timeout.
    pub async fn call(
        self: &Arc<Self>,
        node: NodeId,
        request: &NodeRequest,
    ) -> Result<NodeReply, NodeError> {
        let timeout = self.config.node_request_timeout;
        // The first link, and each after a lost request (a new invocation
        // may have to start), gets a whole connect timeout; a request that
        // was refused unsent waits on within the same one.
        let mut link_deadline = Instant::now() + self.config.connect_timeout;
        let mut attempt = 0;
        loop {
            let claim = self
                .link_until(node, InvocationKind::Serve, link_deadline)
                .await?;
            let result = tokio::time::timeout(timeout, claim.call(request)).await;
            // Release the claim before waiting for another link: the node
            // this one leads to may go.
            let link = claim.link().clone();
            drop(claim);
            match result {
                Ok(Ok(reply)) => {
                    crate::metrics::global().node_call(request, &reply);
                    return Ok(reply);
                }
                Ok(Err(MuxError::Closed(reason))) => {
                    self.slot(node)?.detach(&link);
                    let unsent = reason == node::LEAVING;
                    if !unsent {
                        attempt += 1;
                        link_deadline = Instant::now() + self.config.connect_timeout;
                    }
                    let out_of_time = Instant::now() >= link_deadline;
                    if attempt >= CALL_ATTEMPTS || (unsent && out_of_time) {
                        return Err(NodeError::Unavailable { node, reason });
                    }
                    tracing::debug!(node, attempt, %reason, "node request retried on the next invocation");
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

    /// The invocation payload that makes a node dial in with `token`.
    fn serve_args(&self, node: NodeId, token: String, idle_timeout: Duration) -> ServeArgs {
        ServeArgs {
            node_id: node,
            proxy: self.node_addr.clone(),
            token,
            idle_timeout_ms: millis(idle_timeout),
            billing_tick_ms: millis(self.config.billing_tick),
        }
    }

    /// Invokes `function` and accounts for it; returns the error, if any.
    async fn invoke(
        &self,
        node: NodeId,
        function: &str,
        kind: InvocationKind,
        invocation: &Invocation,
    ) -> Result<InvocationSummary, Failure> {
        let counter = match kind {
            InvocationKind::Serve => &self.counters.serve_invocations,
            InvocationKind::Warmup => &self.counters.warmup_invocations,
            InvocationKind::Backup => &self.counters.backup_invocations,
        };
        Counters::add(counter, 1);
        let started = Instant::now();
        let invoked = self.invoker.invoke(function, invocation).await;
        // An invocation the API refused was not billed.
        if invoked.report.is_some()
            || !matches!(invoked.result, Err(crate::invoker::InvokeError::Api(_)))
        {
            self.ledger.record(
                kind,
                invoked.report.as_ref(),
                started.elapsed(),
                self.config.billing_tick,
                self.config.node_memory_mb,
            );
        }
        match invoked.result {
            Ok(summary) => {
                tracing::debug!(node, ?kind, served = summary.served, reason = %summary.reason,
                    elapsed = ?started.elapsed(), "invocation returned");
                Ok(summary)
            }
            Err(err) if self.shutting_down.load(Ordering::Relaxed) => {
                tracing::debug!(node, error = %err, "invocation ended by shutdown");
                Err(Failure::from(&err))
            }
            Err(err) => {
                Counters::add(&self.counters.failed_invocations, 1);
                tracing::warn!(node, function, ?kind, error = %err, "invocation failed");
                Err(Failure::from(&err))
            }
        }
    }

    /// Runs one invocation of `node` in the background (a serving one when
    /// `token` is given, else a warm-up); when it ends, starts the next one
    /// if requests are waiting.
    fn spawn_invocation(
        self: &Arc<Self>,
        node: NodeId,
        kind: InvocationKind,
        token: Option<String>,
    ) {
        let cluster = self.clone();
        tokio::spawn(async move {
            let Ok(slot) = cluster.slot(node) else { return };
            let invocation = match token {
                Some(token) => Invocation::Serve(cluster.serve_args(
                    node,
                    token,
                    cluster.config.node_idle_timeout,
                )),
                None => Invocation::Warmup { node_id: node },
            };
            let result = cluster
                .invoke(node, slot.function(), kind, &invocation)
                .await;
            if kind == InvocationKind::Warmup
                && let Ok(summary) = &result
                && slot
                    .status()
                    .instance_id
                    .is_some_and(|known| known != summary.instance_id)
            {
                // The warm-up reached another environment than the one
                // serving last: the primary was reclaimed. Fail over (or
                // learn the loss) now rather than at the next request, and
                // give the node a backup again.
                cluster.spawn_backup(node);
            }
            if let Some(token) = slot.invocation_ended(kind, result.err()) {
                cluster.spawn_invocation(node, InvocationKind::Serve, Some(token));
            }
        });
    }

    /// Runs the backup invocation of `node` in the background: the same
    /// function invoked while its primary is busy, so the provider starts
    /// (or reuses) a second environment for it.
    fn spawn_backup_invocation(
        self: &Arc<Self>,
        node: NodeId,
        token: String,
    ) -> tokio::task::JoinHandle<()> {
        let cluster = self.clone();
        tokio::spawn(async move {
            let Ok(slot) = cluster.slot(node) else { return };
            // The relay paces the backup; give it more idle slack than a
            // serving node gets, so a long fetch from the primary does not
            // make it leave halfway.
            let idle = cluster
                .config
                .node_idle_timeout
                .max(backup::BACKUP_IDLE_TIMEOUT);
            let invocation = Invocation::Backup(cluster.serve_args(node, token.clone(), idle));
            // Failures are logged and counted by `invoke`; the sync waiting
            // for this environment learns of them below.
            let _ = cluster
                .invoke(node, slot.function(), InvocationKind::Backup, &invocation)
                .await;
            slot.backup_invocation_ended(&token);
        })
    }

    /// Checks a dialing node's token without changing anything; says which
    /// invocation it belongs to.
    pub fn check_token(&self, hello: &NodeHello) -> Result<TokenRole, BadToken> {
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
        let attached = slot.attach(&hello.token, hello.instance_id, hello.chunks, link)?;
        self.meta().set_capacity(hello.node_id, hello.capacity);
        if attached.new_environment {
            Counters::add(&self.counters.lost_environments, 1);
        }
        if attached.failover {
            Counters::add(&self.counters.failovers, 1);
            tracing::info!(
                node = hello.node_id,
                chunks = hello.chunks,
                "the backup environment took over"
            );
        } else if attached.new_environment {
            tracing::warn!(node = hello.node_id, "node came back as a new environment");
        }
        if attached.reconcile {
            self.spawn_reconcile(hello.node_id, attached.failover);
        }
        Ok(())
    }

    /// A backup environment dialed in: hand its connection to the sync.
    pub fn attach_backup(&self, hello: &NodeHello, link: NodeLink) -> Result<(), BackupRefused> {
        let slot = self.slot(hello.node_id).map_err(|_| BadToken {
            node: hello.node_id,
        })?;
        slot.attach_backup(&hello.token, hello.instance_id, link)
    }

    /// `node` said Bye on `link`: whether it must stay, or may go (routing
    /// to it has stopped, see [`NodeSlot::answer_bye`]).
    pub fn answer_bye(&self, node: NodeId, link: &NodeLink) -> ByeAnswer {
        match self.slot(node) {
            Ok(slot) => slot.answer_bye(link),
            Err(_) => {
                link.seal(node::LEAVING);
                ByeAnswer::Leave
            }
        }
    }

    /// Whether a backup of `node` is being synced (its environment stays).
    pub fn backup_running(&self, node: NodeId) -> bool {
        self.slot(node).is_ok_and(|slot| slot.backup_running())
    }

    /// The node said Bye or its connection closed.
    pub fn detach(&self, node: NodeId, link: &NodeLink) {
        if let Ok(slot) = self.slot(node) {
            slot.detach(link);
        }
    }

    /// The durable layer, if enabled.
    pub fn durable(&self) -> Option<&durable::Durable> {
        self.durable.as_ref()
    }

    /// Answers a finished PUT's waiters and drops its garbage (from the
    /// nodes, and the versions it retired from the COS). With the durable
    /// layer, a committed object is recorded in the manifest: before the
    /// waiters hear of it in `sync` mode, after in `async` mode.
    pub async fn finish_put(self: &Arc<Self>, mut finished: Finished) {
        let committed = finished.committed.take();
        match (&self.durable, committed) {
            (Some(durable), Some((key, _))) => {
                if durable.mode() == crate::cos::settings::WriteMode::Sync {
                    if let Err(err) = self.sync_record(&key).await {
                        finished.outcome = Err(ErrorReply::new(
                            ErrorCode::Unavailable,
                            format!("the object store did not record the object: {err}"),
                        ));
                    }
                    finished.announce();
                } else {
                    finished.announce();
                    let cluster = self.clone();
                    // Tracked: a shutdown waits for the record.
                    durable.background().spawn(async move {
                        let _ = cluster.sync_record(&key).await;
                    });
                }
            }
            _ => finished.announce(),
        }
        for (key, version) in std::mem::take(&mut finished.retired) {
            self.forget_version(key, version);
        }
        // Chunks of evicted objects are in there too: they leave memory only
        // (cold in the object store, or forgotten without one).
        let garbage = std::mem::take(&mut finished.garbage);
        self.drop_chunks(garbage);
    }

    /// Brings `key`'s manifest record in line with the metadata: writes the
    /// visible version's record, or removes it if the key is gone.
    ///
    /// Operations on one key serialise here and each writes the *current*
    /// state, so records written in the background by concurrent PUTs and
    /// DELETEs can never leave a stale one behind.
    pub async fn sync_record(&self, key: &Key) -> Result<(), crate::cos::CosError> {
        let Some(durable) = &self.durable else {
            return Ok(());
        };
        let lock = self
            .record_locks
            .lock()
            .entry(key.clone())
            .or_default()
            .clone();
        let result = {
            let _turn = lock.lock().await;
            let current = self.meta().peek(key);
            match current {
                Some(object) => {
                    let record = manifest::Record {
                        version: object.version,
                        size: object.size,
                        data_shards: object.params.data_shards() as u8,
                        parity_shards: object.params.parity_shards() as u8,
                    };
                    durable.write_record(key, &record).await
                }
                None => durable.delete_record(key).await,
            }
        };
        let mut locks = self.record_locks.lock();
        // Ours and the map's: nobody else is waiting for this key.
        if Arc::strong_count(&lock) <= 2 {
            locks.remove(key);
        }
        if let Err(err) = &result {
            tracing::warn!(%key, error = %err, "cannot update the manifest");
        }
        result
    }

    /// Loads the manifest from the object store (at start-up): every object
    /// recorded there is visible again, its chunks adopted from the nodes as
    /// they dial in or read from the store. Returns how many.
    pub async fn recover(&self) -> Result<usize, crate::cos::CosError> {
        let Some(durable) = &self.durable else {
            return Ok(0);
        };
        let records = durable.load_records().await?;
        let mut meta = self.meta();
        let mut recovered = 0;
        for (key, record) in records {
            match CodecParams::new(
                usize::from(record.data_shards),
                usize::from(record.parity_shards),
            ) {
                Ok(params) => {
                    meta.insert_recovered(key, record.version, record.size, params);
                    recovered += 1;
                }
                Err(err) => tracing::warn!(%key, error = %err, "skipping a manifest record"),
            }
        }
        Ok(recovered)
    }

    /// Removes from the COS every version the chunks in `garbage` belong to.
    pub fn forget_versions(&self, garbage: &[ChunkLoc]) {
        if self.durable.is_none() {
            return;
        }
        let versions: HashSet<(&Key, u64)> = garbage
            .iter()
            .map(|chunk| (&chunk.key, chunk.version))
            .collect();
        for (key, version) in versions {
            self.forget_version(key.clone(), version);
        }
    }

    /// Removes `key` at `version` from the COS (once nobody reads it).
    pub fn forget_version(&self, key: Key, version: u64) {
        let Some(durable) = &self.durable else {
            return;
        };
        if !self.leases.defer_forget(&key, version) {
            durable.forget(key, version);
        }
    }

    /// Looks `key` up for a read (marking it recently used) and leases the
    /// version found: its chunks stay until the lease is dropped, whatever
    /// PUTs and DELETEs commit meanwhile (see [`leases`]).
    pub fn open_read(
        self: &Arc<Self>,
        key: &Key,
    ) -> Option<(metadata::ObjectMeta, leases::ReadLease)> {
        let mut meta = self.meta();
        let object = meta.get(key)?;
        // Under the metadata lock: no commit can drop the version between
        // the lookup and the lease.
        self.leases.acquire(key, object.version);
        drop(meta);
        let lease = leases::ReadLease::new(self, key.clone(), object.version);
        Some((object, lease))
    }

    /// A read of `key` at `version` is over: the clean-up it held back, if
    /// it was the last reader.
    fn end_read(self: &Arc<Self>, key: &Key, version: u64) {
        let deferred = self.leases.release(key, version);
        if let Some((key, version)) = deferred.forget
            && let Some(durable) = &self.durable
        {
            durable.forget(key, version);
        }
        self.drop_now(deferred.chunks);
    }

    /// A handle the durable layer uses to ask whether a version is still
    /// wanted.
    pub fn liveness(self: &Arc<Self>) -> Arc<dyn durable::Liveness> {
        Arc::new(Live(Arc::downgrade(self)))
    }

    /// Drops chunks from their nodes in the background (those of versions
    /// being read once their readers are done).
    pub fn drop_chunks(self: &Arc<Self>, chunks: Vec<ChunkLoc>) {
        let now = self.leases.defer_chunks(chunks);
        self.drop_now(now);
    }

    /// Like [`Cluster::drop_chunks`], returning once the nodes confirmed
    /// (those of versions being read are still deferred).
    pub async fn drop_chunks_and_wait(self: &Arc<Self>, chunks: Vec<ChunkLoc>) {
        let now = self.leases.defer_chunks(chunks);
        futures::future::join_all(now.into_iter().map(|chunk| self.drop_chunk(chunk))).await;
    }

    /// Stores `chunk` of `key` on `node`. A node that answers it is full
    /// although the metadata counts room there holds chunks nothing refers
    /// to any more (a drop that never reached it, say): it is reconciled,
    /// which drops them, and the store is tried once more.
    pub async fn store_chunk(
        self: &Arc<Self>,
        node: NodeId,
        key: &Key,
        chunk: infinicache::codec::Chunk,
    ) -> Result<NodeReply, NodeError> {
        let request = NodeRequest::Store {
            key: key.clone(),
            chunk,
        };
        let reply = self.call(node, &request).await?;
        if let NodeReply::Error(err) = &reply
            && err.code == ErrorCode::CapacityExceeded
        {
            tracing::info!(
                node,
                "a node is fuller than the metadata says: reconciling it"
            );
            if self.reconcile(node).await {
                return self.call(node, &request).await;
            }
        }
        Ok(reply)
    }

    fn drop_now(self: &Arc<Self>, chunks: Vec<ChunkLoc>) {
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
        let interval = self.config.backup_interval;
        if !interval.is_zero() {
            let cluster = Arc::downgrade(self);
            tasks.push(tokio::spawn(async move {
                let mut ticker = tokio::time::interval(interval);
                ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                ticker.tick().await;
                loop {
                    ticker.tick().await;
                    let Some(cluster) = cluster.upgrade() else {
                        return;
                    };
                    cluster.backup_round().await;
                }
            }));
        }
        if self.meta().window().is_elastic() {
            let cluster = Arc::downgrade(self);
            let period = (self.config.window.bucket_length / 10)
                .clamp(Duration::from_millis(50), Duration::from_secs(10));
            tasks.push(tokio::spawn(async move {
                let mut ticker = tokio::time::interval(period);
                loop {
                    ticker.tick().await;
                    let Some(cluster) = cluster.upgrade() else {
                        return;
                    };
                    cluster.expire_buckets();
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
                    cluster.finish_put(finished).await;
                }
            }
        }));
        tasks
    }

    /// Expires the window's buckets that are past the available window:
    /// their functions are released (no more warm-ups) and their chunks go
    /// cold. If a released node is used again, what it may still hold is
    /// dropped before it stores anything (`Metadata::take_stale`) and its
    /// memory is reconciled when it dials in.
    pub fn expire_buckets(&self) -> usize {
        let rolled = self.meta().expire_window(Instant::now());
        for &node in &rolled.released {
            if let Ok(slot) = self.slot(node) {
                slot.set_reconciled(false);
            }
        }
        if rolled.expired > 0 {
            Counters::add(&self.counters.buckets_expired, rolled.expired as u64);
            tracing::info!(
                buckets = rolled.expired,
                functions = rolled.released.len(),
                "buckets expired: functions released, their objects stay in the object store"
            );
        }
        rolled.expired
    }

    /// Invokes every node that has been idle for at least `idle_for`, so the
    /// provider keeps its environment (and the chunks in it) alive. Nodes of
    /// degraded buckets are warmed less often, free ones not at all.
    pub fn warm_up(self: &Arc<Self>, idle_for: Duration) -> usize {
        let mut warmed = 0;
        let now = Instant::now();
        for slot in &self.nodes {
            let tier = self.meta().tier(slot.id(), now);
            let idle_for = match tier {
                Tier::Active => idle_for,
                Tier::Degraded => idle_for * window::DEGRADED_WARMUP_FACTOR,
                Tier::Free => continue,
            };
            if slot.begin_warmup(idle_for) {
                self.spawn_invocation(slot.id(), InvocationKind::Warmup, None);
                warmed += 1;
            }
        }
        tracing::debug!(warmed, "warm-up round");
        warmed
    }
}

/// The elastic window as the status API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct WindowStatus {
    /// Whether the window is elastic (else: the whole pool is one bucket).
    pub elastic: bool,
    /// Oldest first.
    pub buckets: Vec<BucketUsage>,
    /// Functions in a bucket, and in none.
    pub functions: usize,
    pub free_functions: usize,
    /// Chunk bytes reserved in function memory, over all nodes.
    pub memory_used_bytes: u64,
    /// Objects with no chunk in function memory (only in the store).
    pub cold_objects: usize,
}

/// One bucket and its memory.
#[derive(Debug, Clone, Serialize)]
pub struct BucketUsage {
    #[serde(flatten)]
    pub bucket: window::BucketStatus,
    pub used_bytes: u64,
    pub capacity_bytes: u64,
}

impl Cluster {
    /// The window's buckets, functions and memory.
    pub fn window_status(&self) -> WindowStatus {
        let meta = self.meta();
        let window = meta.window();
        let buckets = window
            .buckets(Instant::now())
            .into_iter()
            .map(|bucket| {
                let (used_bytes, capacity_bytes) =
                    bucket.nodes.iter().fold((0, 0), |(used, capacity), &node| {
                        (
                            used + meta.node_used(node),
                            capacity + meta.node_capacity(node),
                        )
                    });
                BucketUsage {
                    bucket,
                    used_bytes,
                    capacity_bytes,
                }
            })
            .collect();
        WindowStatus {
            elastic: window.is_elastic(),
            buckets,
            functions: window.functions(),
            free_functions: window.free(),
            memory_used_bytes: (0..self.nodes.len() as NodeId)
                .map(|node| meta.node_used(node))
                .sum(),
            cold_objects: meta.cold_objects(),
        }
    }

    /// The codec for `params`, built once.
    pub(crate) fn codec(&self, params: CodecParams) -> Arc<ObjectCodec> {
        self.codecs
            .lock()
            .entry(params)
            .or_insert_with(|| Arc::new(ObjectCodec::new(params)))
            .clone()
    }
}

/// [`durable::Liveness`] backed by the metadata (weakly: a background write
/// must not keep a shut-down cluster alive).
struct Live(std::sync::Weak<Cluster>);

impl durable::Liveness for Live {
    fn is_live(&self, key: &Key, version: u64) -> bool {
        self.0
            .upgrade()
            .is_some_and(|cluster| cluster.meta().is_live(key, version))
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
