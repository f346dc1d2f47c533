//! The pool as operators see it: a state per node, and the memory of the
//! whole pool. Shared by `/metrics` and `/status`, so both always agree.

use crate::cluster::Cluster;
use crate::cluster::node::NodeStatus;

/// What a node is doing: its phase in the proxy's state machine, except
/// for two conditions the phase alone does not show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NodeState {
    /// Not invoked (its environment, if any, is frozen).
    Idle,
    /// A warm-up invocation is running.
    Warming,
    /// Invoked; waiting for the node to dial in.
    Invoking,
    /// Connected and serving requests.
    Serving,
    /// Said `Bye`; its invocation is returning.
    Leaving,
    /// A delta sync to its backup environment is running.
    BackingUp,
    /// Idle after failed invocations: backed off, requests needing it fail
    /// at once until the back-off ends.
    Failing,
}

impl NodeState {
    pub const ALL: [NodeState; 7] = [
        NodeState::Idle,
        NodeState::Warming,
        NodeState::Invoking,
        NodeState::Serving,
        NodeState::Leaving,
        NodeState::BackingUp,
        NodeState::Failing,
    ];

    pub fn label(self) -> &'static str {
        match self {
            NodeState::Idle => "idle",
            NodeState::Warming => "warming",
            NodeState::Invoking => "invoking",
            NodeState::Serving => "serving",
            NodeState::Leaving => "leaving",
            NodeState::BackingUp => "backing_up",
            NodeState::Failing => "failing",
        }
    }

    /// The state of a node from its status. A backup in progress wins (the
    /// primary is held serving for it); a failure streak shows while the
    /// node sits idle in its back-off.
    pub fn of(status: &NodeStatus) -> NodeState {
        if status.backing_up {
            return NodeState::BackingUp;
        }
        match status.phase {
            "idle" if status.failures > 0 => NodeState::Failing,
            "warming" => NodeState::Warming,
            "invoking" => NodeState::Invoking,
            "serving" => NodeState::Serving,
            "leaving" => NodeState::Leaving,
            _ => NodeState::Idle,
        }
    }
}

/// How many nodes are in each state, in the order of [`NodeState::ALL`].
pub fn count_states(nodes: &[NodeStatus]) -> [(NodeState, usize); NodeState::ALL.len()] {
    NodeState::ALL.map(|state| {
        let count = nodes
            .iter()
            .filter(|node| NodeState::of(node) == state)
            .count();
        (state, count)
    })
}

/// Chunk bytes the whole pool can hold (every node, whether in use or not).
pub fn memory_capacity(cluster: &Cluster) -> u64 {
    let meta = cluster.meta();
    (0..cluster.config().pool_size)
        .filter_map(|node| u32::try_from(node).ok())
        .map(|node| meta.node_capacity(node))
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(phase: &'static str, failures: u32, backing_up: bool) -> NodeStatus {
        NodeStatus {
            id: 0,
            function: "f-0".into(),
            phase,
            instance_id: None,
            invocations: 0,
            failures,
            backup_instance: None,
            backing_up,
            failovers: 0,
        }
    }

    #[test]
    fn states_follow_phase_backup_and_failures() {
        assert_eq!(NodeState::of(&node("idle", 0, false)), NodeState::Idle);
        assert_eq!(NodeState::of(&node("idle", 2, false)), NodeState::Failing);
        assert_eq!(
            NodeState::of(&node("invoking", 2, false)),
            NodeState::Invoking
        );
        assert_eq!(
            NodeState::of(&node("serving", 0, true)),
            NodeState::BackingUp
        );
        assert_eq!(
            NodeState::of(&node("warming", 0, false)),
            NodeState::Warming
        );
        assert_eq!(
            NodeState::of(&node("leaving", 0, false)),
            NodeState::Leaving
        );
        let nodes = [
            node("serving", 0, false),
            node("serving", 0, false),
            node("idle", 1, false),
        ];
        let counts = count_states(&nodes);
        assert_eq!(counts.iter().map(|(_, n)| n).sum::<usize>(), 3);
        assert!(counts.contains(&(NodeState::Serving, 2)));
        assert!(counts.contains(&(NodeState::Failing, 1)));
    }
}
