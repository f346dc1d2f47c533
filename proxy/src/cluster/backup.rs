//! Delta-sync backup: a second environment of each node holding a copy of
//! its chunks, ready to take over when the provider reclaims the primary.
//!
//! How a backup comes to exist is the trick InfiniCache borrows from
//! Lambda's scaling: invoking a function whose only environment is busy
//! makes the provider start (or reuse) *another* environment of it. So:
//!
//! 1. the proxy makes sure the primary is serving (invoking it if idle) and
//!    keeps it busy for as long as the sync runs: it declines the primary's
//!    `Bye` with `Stay` (pings would race the node's idle timer, and lose
//!    when the timeout is a few milliseconds and the host is busy);
//! 2. it invokes the same function again with a `backup` payload and a
//!    token of its own; that invocation lands on a second environment, which
//!    dials the proxy like any node (functions accept no connections, so the
//!    proxy is the relay between the two);
//! 3. the proxy lists what the backup holds and computes the delta against
//!    what the primary holds: chunks the backup lacks are fetched from the
//!    primary and stored on the backup, chunks it holds that the primary no
//!    longer has are dropped. A chunk the backup already holds never travels
//!    again;
//! 4. it closes the backup's connection and waits for the backup to return
//!    before it lets the primary go: the primary returns last, so it
//!    stays the environment the provider routes the next invocation to, and
//!    the backup is frozen with its copy.
//!
//! A chunk the backup holds that the primary has lost (an environment died
//! and the metadata marked it lost) is copied back the other way: the backup
//! may hold the only copy.
//!
//! When the primary is reclaimed, the next invocation finds only the backup
//! environment: it dials in, the proxy sees the environment it last synced
//! and counts a failover, and reconciliation (see [`super::reconcile`]) keeps
//! every chunk the backup holds. Requests in flight when the primary died are
//! retried by [`Cluster::call`] on that new invocation.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures::stream::{self, StreamExt};
use infinicache::protocol::{ChunkId, NodeReply, NodeRequest};
use serde::Serialize;
use thiserror::Error;

use super::metadata::{ChunkLoc, NodeId};
use super::node::{BackupLink, InvocationKind, NodeError, NodeLink};
use super::{Cluster, Counters};

/// Idle time after which a backup environment gives up on the relay.
pub const BACKUP_IDLE_TIMEOUT: Duration = Duration::from_secs(2);

/// Chunks relayed at once per backup.
const RELAY_CONCURRENCY: usize = 4;

/// Nodes backed up at once in a round.
const ROUND_CONCURRENCY: usize = 4;

/// One node's completed delta sync.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct NodeBackup {
    pub node: NodeId,
    /// The backup environment.
    pub instance_id: u64,
    /// Chunks the backup already held (not sent again).
    pub unchanged: u64,
    /// Chunks copied from the primary, and their bytes.
    pub sent: u64,
    pub bytes_sent: u64,
    /// Chunks dropped from the backup (deleted or overwritten on the primary).
    pub dropped: u64,
    /// Chunks the primary had lost, copied back from the backup.
    pub restored: u64,
}

/// Why a node's backup failed.
#[derive(Debug, Error)]
pub enum BackupError {
    #[error(transparent)]
    Node(#[from] NodeError),
    #[error("node {node}: {reason}")]
    Failed { node: NodeId, reason: String },
}

/// The outcome of a backup round.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BackupRound {
    pub synced: Vec<NodeBackup>,
    /// Nodes skipped because they hold nothing.
    pub skipped: usize,
    /// Nodes whose sync failed, with why.
    pub failed: Vec<(NodeId, String)>,
}

impl Cluster {
    /// Backs `node` up in the background, if backups are on (a failed or
    /// refused attempt is logged; the periodic round tries again).
    pub(crate) fn spawn_backup(self: &Arc<Self>, node: NodeId) {
        if self.config.backup_interval.is_zero() {
            return;
        }
        let cluster = self.clone();
        tokio::spawn(async move {
            if let Err(err) = cluster.backup_node(node).await {
                tracing::debug!(node, error = %err, "backup after a takeover failed");
            }
        });
    }

    /// Backs up every node that holds chunks, a few at a time.
    pub async fn backup_round(self: &Arc<Self>) -> BackupRound {
        let mut round = BackupRound::default();
        let busy: Vec<NodeId> = (0..self.nodes.len() as NodeId)
            .filter(|&node| {
                let holds = self.meta().node_used(node) > 0;
                if !holds {
                    round.skipped += 1;
                }
                holds
            })
            .collect();
        let results: Vec<_> = stream::iter(busy)
            .map(|node| async move { (node, self.backup_node(node).await) })
            .buffer_unordered(ROUND_CONCURRENCY)
            .collect()
            .await;
        for (node, result) in results {
            match result {
                Ok(done) => round.synced.push(done),
                Err(err) => {
                    tracing::warn!(node, error = %err, "backup failed");
                    round.failed.push((node, err.to_string()));
                }
            }
        }
        round.synced.sort_by_key(|done| done.node);
        tracing::debug!(
            synced = round.synced.len(),
            failed = round.failed.len(),
            "backup round"
        );
        round
    }

    /// Delta-syncs `node` to its backup environment (see the module docs).
    ///
    /// The work runs in a task of its own: a caller that gives up (an admin
    /// request whose client went away) must not leave the sync half-done,
    /// with the node's slot marked as backing up and its primary held.
    pub async fn backup_node(self: &Arc<Self>, node: NodeId) -> Result<NodeBackup, BackupError> {
        let cluster = self.clone();
        tokio::spawn(async move { cluster.run_backup(node).await })
            .await
            .unwrap_or_else(|err| {
                Err(BackupError::Failed {
                    node,
                    reason: format!("the backup task failed: {err}"),
                })
            })
    }

    async fn run_backup(self: &Arc<Self>, node: NodeId) -> Result<NodeBackup, BackupError> {
        let slot = self.slot(node)?;
        // What the primary holds must be known before it is copied: retry a
        // reconciliation that failed when the environment came up.
        if slot.needs_reconcile() && !self.reconcile(node).await {
            return Err(BackupError::Failed {
                node,
                reason: "the primary's chunks could not be listed".into(),
            });
        }
        // Reserve the backup before reaching the primary: from then on the
        // primary's Bye is declined, so once it serves it stays serving
        // until the backup has returned, however short its idle timeout.
        let Some((token, backup)) = slot.begin_backup() else {
            return Err(BackupError::Failed {
                node,
                reason: "a backup is already running".into(),
            });
        };
        let mut invocation = None;
        let result = async {
            let primary = self.link_for(node, InvocationKind::Backup).await?;
            // Proves the primary is there before the backup invocation is
            // placed (a link to an environment that just died would let the
            // invocation land on a fresh environment with nothing to copy).
            expect_pong(node, primary.call(&NodeRequest::Ping).await)?;
            slot.backup_placed();
            invocation = Some(self.spawn_backup_invocation(node, token));
            let backup = match tokio::time::timeout(self.config.connect_timeout, backup).await {
                Ok(Ok(Ok(backup))) => backup,
                Ok(Ok(Err(refused))) => {
                    return Err(BackupError::Failed {
                        node,
                        reason: refused.to_string(),
                    });
                }
                Ok(Err(_)) => {
                    return Err(BackupError::Failed {
                        node,
                        reason: "the backup invocation ended without dialing in".into(),
                    });
                }
                Err(_) => {
                    return Err(BackupError::Failed {
                        node,
                        reason: "the backup environment did not dial in".into(),
                    });
                }
            };
            let outcome = self.sync(node, &primary, &backup).await;
            // Closing the connection lets the backup return (and be frozen
            // with its copy).
            backup.link.close("backup done");
            outcome
        }
        .await;
        // Hold the primary until the backup has returned: the environment
        // that returns last is where the provider sends the next invocation,
        // and the next round must find the backup idle to reach it again.
        if let Some(invocation) = invocation
            && tokio::time::timeout(self.config.connect_timeout, invocation)
                .await
                .is_err()
        {
            tracing::warn!(node, "the backup invocation did not return");
        }
        if let Some(token) = slot.end_backup(result.as_ref().ok().map(|done| done.instance_id)) {
            // Requests queued while the primary was gone: the backup
            // environment is free now, and the invocation will find it.
            self.spawn_invocation(node, InvocationKind::Serve, Some(token));
        }
        match &result {
            Ok(done) => {
                Counters::add(&self.counters.backups, 1);
                Counters::add(&self.counters.backup_chunks_sent, done.sent);
                Counters::add(&self.counters.backup_bytes_sent, done.bytes_sent);
                Counters::add(&self.counters.backup_chunks_dropped, done.dropped);
                Counters::add(&self.counters.chunks_restored, done.restored);
            }
            Err(_) => Counters::add(&self.counters.backups_failed, 1),
        }
        result
    }

    /// Sends the delta between what the primary holds (per the metadata)
    /// and what the backup holds (per its own inventory).
    async fn sync(
        self: &Arc<Self>,
        node: NodeId,
        primary: &NodeLink,
        backup: &BackupLink,
    ) -> Result<NodeBackup, BackupError> {
        let failed = |reason: String| BackupError::Failed { node, reason };
        let timeout = self.config.node_request_timeout;
        let held: HashSet<ChunkId> =
            match tokio::time::timeout(timeout, backup.link.call(&NodeRequest::List)).await {
                Ok(Ok(NodeReply::Inventory(held))) => held.into_iter().collect(),
                Ok(Ok(other)) => {
                    return Err(failed(format!("backup answered List with {other:?}")));
                }
                Ok(Err(err)) => return Err(failed(format!("backup: {err}"))),
                Err(_) => return Err(failed("backup did not list its chunks".into())),
            };
        let wanted: HashSet<ChunkId> = self.meta().chunks_on(node).into_iter().collect();
        let mut done = NodeBackup {
            node,
            instance_id: backup.instance_id,
            unchanged: held.intersection(&wanted).count() as u64,
            ..NodeBackup::default()
        };

        // What the backup holds beyond the primary is either a chunk the
        // primary lost (the backup may hold the only copy: bring it back) or
        // stale (deleted or overwritten since: drop it).
        let (lost, stale): (Vec<ChunkId>, Vec<ChunkId>) = {
            let meta = self.meta();
            held.difference(&wanted)
                .cloned()
                .partition(|id| meta.is_lost(id))
        };
        let restores = stream::iter(lost)
            .map(|id| async move { self.restore(node, primary, backup, id).await })
            .buffer_unordered(RELAY_CONCURRENCY)
            .collect::<Vec<_>>()
            .await;
        for restored in restores {
            if restored? {
                done.restored += 1;
            }
        }

        let drops = stream::iter(stale)
            .map(|id| async move {
                let request = NodeRequest::Drop {
                    key: id.key,
                    version: id.version,
                    index: id.index,
                };
                tokio::time::timeout(timeout, backup.link.call(&request)).await
            })
            .buffer_unordered(RELAY_CONCURRENCY * 4)
            .collect::<Vec<_>>()
            .await;
        for reply in drops {
            match reply {
                Ok(Ok(NodeReply::Dropped { .. })) => done.dropped += 1,
                other => return Err(failed(format!("dropping from the backup: {other:?}"))),
            }
        }

        let missing: Vec<ChunkId> = wanted.difference(&held).cloned().collect();
        let copies = stream::iter(missing)
            .map(|id| async move { self.relay(node, primary, backup, id).await })
            .buffer_unordered(RELAY_CONCURRENCY)
            .collect::<Vec<_>>()
            .await;
        for copy in copies {
            if let Some(bytes) = copy? {
                done.sent += 1;
                done.bytes_sent += bytes;
            }
        }
        Ok(done)
    }

    /// Copies a chunk the primary lost back from the backup; `false` if it
    /// was not needed any more by the time it arrived.
    async fn restore(
        self: &Arc<Self>,
        node: NodeId,
        primary: &NodeLink,
        backup: &BackupLink,
        id: ChunkId,
    ) -> Result<bool, BackupError> {
        let failed = |reason: String| BackupError::Failed { node, reason };
        let timeout = self.config.node_request_timeout;
        let fetch = NodeRequest::Fetch {
            key: id.key.clone(),
            version: id.version,
            index: id.index,
        };
        let chunk = match tokio::time::timeout(timeout, backup.link.call(&fetch)).await {
            Ok(Ok(NodeReply::Chunk(chunk))) if chunk.verify().is_ok() => chunk,
            Ok(Ok(NodeReply::Missing)) => return Ok(false),
            other => return Err(failed(format!("fetching from the backup: {other:?}"))),
        };
        let loc = ChunkLoc {
            node,
            key: id.key.clone(),
            version: id.version,
            index: id.index,
        };
        let store = NodeRequest::Store { key: id.key, chunk };
        match tokio::time::timeout(timeout, primary.call(&store)).await {
            Ok(Ok(NodeReply::Stored { .. })) => {}
            other => return Err(failed(format!("restoring to the primary: {other:?}"))),
        }
        if self.meta().restore(&loc) {
            Ok(true)
        } else {
            // Repaired elsewhere or overwritten meanwhile.
            self.drop_chunks(vec![loc]);
            Ok(false)
        }
    }

    /// Copies one chunk from the primary to the backup; `None` if the
    /// primary no longer holds it (deleted meanwhile, or lost).
    async fn relay(
        self: &Arc<Self>,
        node: NodeId,
        primary: &NodeLink,
        backup: &BackupLink,
        id: ChunkId,
    ) -> Result<Option<u64>, BackupError> {
        let failed = |reason: String| BackupError::Failed { node, reason };
        let timeout = self.config.node_request_timeout;
        let fetch = NodeRequest::Fetch {
            key: id.key.clone(),
            version: id.version,
            index: id.index,
        };
        let chunk = match tokio::time::timeout(timeout, primary.call(&fetch)).await {
            Ok(Ok(NodeReply::Chunk(chunk))) => chunk,
            Ok(Ok(NodeReply::Missing)) => {
                self.chunk_missing(&id.key, id.version, id.index, node);
                return Ok(None);
            }
            other => return Err(failed(format!("fetching from the primary: {other:?}"))),
        };
        let bytes = chunk.body.len() as u64;
        let store = NodeRequest::Store { key: id.key, chunk };
        match tokio::time::timeout(timeout, backup.link.call(&store)).await {
            Ok(Ok(NodeReply::Stored { .. })) => Ok(Some(bytes)),
            other => Err(failed(format!("storing on the backup: {other:?}"))),
        }
    }
}

fn expect_pong(
    node: NodeId,
    reply: Result<NodeReply, infinicache::protocol::MuxError>,
) -> Result<(), BackupError> {
    match reply {
        Ok(NodeReply::Pong { .. }) => Ok(()),
        other => Err(BackupError::Failed {
            node,
            reason: format!("the primary did not answer a ping: {other:?}"),
        }),
    }
}
