//! What a new environment of a node holds.
//!
//! When a node dials in from an environment the proxy has not seen serve it
//! before, the provider either started a fresh one (its memory is empty) or
//! routed the invocation to the node's backup environment, which holds the
//! data of the last delta sync (a failover). Rather than guessing, the proxy
//! asks for the node's inventory and brings the metadata in line with it:
//! chunks the environment does not hold are marked lost (and the objects
//! that lost them repaired), chunks it holds that nothing refers to any more
//! are dropped.

use std::collections::HashSet;
use std::sync::Arc;

use infinicache::protocol::{NodeReply, NodeRequest};

use super::metadata::NodeId;
use super::{Cluster, Counters};

impl Cluster {
    /// Reconciles `node` in the background. After a failover the node has no
    /// backup any more (its backup *is* the primary now, and it is as old as
    /// the one just reclaimed): a new backup is made right away instead of at
    /// the next round.
    pub(crate) fn spawn_reconcile(self: &Arc<Self>, node: NodeId, failover: bool) {
        let cluster = self.clone();
        tokio::spawn(async move {
            if cluster.reconcile(node).await && failover {
                cluster.spawn_backup(node);
            }
        });
    }

    /// Lists what `node` holds and reconciles the metadata with it. On
    /// failure the node stays marked for reconciliation, retried the next
    /// time it dials in. Returns whether it succeeded.
    pub async fn reconcile(self: &Arc<Self>, node: NodeId) -> bool {
        let Ok(slot) = self.slot(node) else {
            return false;
        };
        // Objects committed from here on may have been stored after the
        // node answered: the inventory cannot speak for them.
        let upto = self.meta().commit_seq();
        let held = match self.call(node, &NodeRequest::List).await {
            Ok(NodeReply::Inventory(held)) => held,
            Ok(other) => {
                tracing::warn!(node, reply = ?other, "unexpected answer to List");
                slot.set_reconciled(false);
                return false;
            }
            Err(err) => {
                tracing::warn!(node, error = %err, "cannot list a new environment's chunks");
                slot.set_reconciled(false);
                return false;
            }
        };
        let held: HashSet<_> = held.into_iter().collect();
        let result = self.meta().reconcile_node(node, &held, upto);
        slot.set_reconciled(true);
        Counters::add(&self.counters.chunks_lost, result.lost as u64);
        tracing::info!(
            node,
            kept = result.kept,
            lost = result.lost,
            garbage = result.garbage.len(),
            damaged_objects = result.damaged.len(),
            "reconciled a new environment"
        );
        // Awaited: a caller reconciling to free memory retries right after.
        self.drop_chunks_and_wait(result.garbage).await;
        // Objects that lost a chunk here are repaired now rather than on
        // their next read: one that is never read would otherwise collect
        // losses from one reclaim to the next until it is gone.
        for (key, version) in result.damaged {
            self.request_repair(key, version);
        }
        true
    }
}
