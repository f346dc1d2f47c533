//! One cache node as the proxy sees it: a function deployment whose
//! environment comes and goes.
//!
//! The node's *identity* is its index (and function name); the environment
//! serving it changes whenever the provider reclaims one. A node is reachable
//! only while an invocation is running and the node has dialed in, so every
//! request first needs a [`NodeLink`], and asking for one may start an
//! invocation. The state machine makes sure there is never more than one
//! invocation of a node in flight: invoking a busy function would start a
//! second, empty environment instead of reaching the one holding the data.
//!
//! ```text
//!            link() / warm-up                 node dials in with the token
//!   Idle ─────────────────────► Invoking ──────────────────────► Serving
//!    ▲  ▲                          │                                │ Bye / connection lost
//!    │  │ warm-up returns          │ invocation ends                ▼
//!    │  └────── Warming            └──────────────► (fail waiters) Leaving
//!    │                                                              │
//!    └───────────────────── invocation ends (re-invoke if waiters) ─┘
//! ```

use std::time::{Duration, Instant};

use infinicache::protocol::{Mux, NodeReply, NodeRequest};
use parking_lot::Mutex;
use thiserror::Error;
use tokio::sync::oneshot;

use super::metadata::NodeId;

/// A connection to a serving node.
pub type NodeLink = Mux<NodeRequest, NodeReply>;

/// Why a node could not be used.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum NodeError {
    #[error("node {node} is unavailable: {reason}")]
    Unavailable { node: NodeId, reason: String },
    #[error("node {node} did not answer within {timeout:?}")]
    Timeout {
        node: NodeId,
        timeout: std::time::Duration,
    },
}

/// What kind of invocation is in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvocationKind {
    Serve,
    Warmup,
}

enum Phase {
    Idle,
    Warming,
    Invoking { token: String },
    Serving { link: NodeLink },
    Leaving,
}

impl Phase {
    fn name(&self) -> &'static str {
        match self {
            Phase::Idle => "idle",
            Phase::Warming => "warming",
            Phase::Invoking { .. } => "invoking",
            Phase::Serving { .. } => "serving",
            Phase::Leaving => "leaving",
        }
    }
}

struct State {
    phase: Phase,
    waiters: Vec<oneshot::Sender<Result<NodeLink, NodeError>>>,
    instance_id: Option<u64>,
    last_active: Instant,
    invocations: u64,
    /// Serving invocations that failed in a row (reset when the node dials in).
    failures: u32,
    /// While set and in the future, the node is not invoked again: requests
    /// fail at once with `last_error` instead of each paying for a doomed
    /// invocation.
    retry_after: Option<Instant>,
    last_error: String,
}

/// The first pause after a failed invocation; it doubles with every further
/// failure in a row, up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

fn backoff(failures: u32) -> Duration {
    FIRST_BACKOFF
        .saturating_mul(1u32 << failures.saturating_sub(1).min(16))
        .min(MAX_BACKOFF)
}

/// The answer to [`NodeSlot::acquire`].
pub enum Acquire {
    /// The node is serving: use this link.
    Ready(NodeLink),
    /// The node's invocations are failing; it is not retried before the
    /// backoff expires.
    Failing(NodeError),
    /// Wait for the link; if `invoke` holds a token, the caller must start a
    /// serving invocation with it.
    Wait {
        link: oneshot::Receiver<Result<NodeLink, NodeError>>,
        invoke: Option<String>,
    },
}

/// A node dialing in with a token that was not issued for it, or not now.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("node {node} presented an invalid or stale token")]
pub struct BadToken {
    pub node: NodeId,
}

/// The node accepted a connection; what changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attached {
    /// The environment is not the one that served last time: its memory
    /// (and the chunks in it) is gone.
    pub new_environment: bool,
}

/// A node's state; see the module documentation.
pub struct NodeSlot {
    id: NodeId,
    function: String,
    state: Mutex<State>,
}

/// A snapshot for status displays and tests.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct NodeStatus {
    pub id: NodeId,
    pub function: String,
    pub phase: &'static str,
    pub instance_id: Option<u64>,
    pub invocations: u64,
    /// Serving invocations that failed in a row.
    pub failures: u32,
}

impl NodeSlot {
    pub fn new(id: NodeId, function: String) -> Self {
        NodeSlot {
            id,
            function,
            state: Mutex::new(State {
                phase: Phase::Idle,
                waiters: Vec::new(),
                instance_id: None,
                last_active: Instant::now(),
                invocations: 0,
                failures: 0,
                retry_after: None,
                last_error: String::new(),
            }),
        }
    }

    pub fn id(&self) -> NodeId {
        self.id
    }

    pub fn function(&self) -> &str {
        &self.function
    }

    /// A link to the node, or a place in line for one.
    pub fn acquire(&self) -> Acquire {
        let mut state = self.state.lock();
        if let Phase::Serving { link } = &state.phase {
            if !link.is_closed() {
                return Acquire::Ready(link.clone());
            }
            state.phase = Phase::Leaving;
        }
        if matches!(state.phase, Phase::Idle)
            && let Some(retry_after) = state.retry_after
        {
            let now = Instant::now();
            if now < retry_after {
                return Acquire::Failing(NodeError::Unavailable {
                    node: self.id,
                    reason: format!(
                        "{} (failed {} times in a row; next try in {:?})",
                        state.last_error,
                        state.failures,
                        retry_after - now
                    ),
                });
            }
        }
        let (tx, rx) = oneshot::channel();
        state.waiters.push(tx);
        let invoke = match state.phase {
            Phase::Idle => Some(self.begin_invocation(&mut state)),
            _ => None,
        };
        Acquire::Wait { link: rx, invoke }
    }

    fn begin_invocation(&self, state: &mut State) -> String {
        let token = new_token();
        state.phase = Phase::Invoking {
            token: token.clone(),
        };
        state.invocations += 1;
        token
    }

    /// Starts a warm-up invocation if the node is idle and has been for at
    /// least `idle_for`.
    pub fn begin_warmup(&self, idle_for: std::time::Duration) -> bool {
        let mut state = self.state.lock();
        if matches!(state.phase, Phase::Idle) && state.last_active.elapsed() >= idle_for {
            state.phase = Phase::Warming;
            state.invocations += 1;
            true
        } else {
            false
        }
    }

    /// Whether `token` is the one issued for the invocation in flight.
    pub fn check_token(&self, token: &[u8]) -> Result<(), BadToken> {
        let state = self.state.lock();
        Self::valid_token(&state, token)
            .then_some(())
            .ok_or(BadToken { node: self.id })
    }

    fn valid_token(state: &State, token: &[u8]) -> bool {
        matches!(&state.phase, Phase::Invoking { token: issued } if constant_time_eq(issued.as_bytes(), token))
    }

    /// A node dialed in presenting `token`.
    pub fn attach(
        &self,
        token: &[u8],
        instance_id: u64,
        link: NodeLink,
    ) -> Result<Attached, BadToken> {
        let mut state = self.state.lock();
        if !Self::valid_token(&state, token) {
            return Err(BadToken { node: self.id });
        }
        let new_environment = state
            .instance_id
            .is_some_and(|previous| previous != instance_id);
        state.instance_id = Some(instance_id);
        state.phase = Phase::Serving { link: link.clone() };
        state.failures = 0;
        state.retry_after = None;
        state.last_active = Instant::now();
        for waiter in state.waiters.drain(..) {
            let _ = waiter.send(Ok(link.clone()));
        }
        Ok(Attached { new_environment })
    }

    /// The node said Bye or its connection closed: stop routing to `link`.
    /// Requests arriving from now on wait for the invocation to end and a
    /// new one to start.
    pub fn detach(&self, link: &NodeLink) {
        let mut state = self.state.lock();
        if let Phase::Serving { link: current } = &state.phase
            && current.same_connection(link)
        {
            state.phase = Phase::Leaving;
            state.last_active = Instant::now();
        }
    }

    /// The invocation in flight has ended. Returns a token if waiters are
    /// queued and a new serving invocation must start for them.
    pub fn invocation_ended(&self, kind: InvocationKind, error: Option<String>) -> Option<String> {
        let mut state = self.state.lock();
        state.last_active = Instant::now();
        let previous = std::mem::replace(&mut state.phase, Phase::Idle);
        if let Phase::Serving { link } = &previous {
            link.close("invocation ended");
        }
        if kind == InvocationKind::Serve && matches!(previous, Phase::Invoking { .. }) {
            // The function returned without ever dialing in: back off before
            // invoking it again.
            let reason = error.unwrap_or_else(|| "the node returned without connecting".into());
            state.failures = state.failures.saturating_add(1);
            state.retry_after = Some(Instant::now() + backoff(state.failures));
            state.last_error = reason.clone();
            for waiter in state.waiters.drain(..) {
                let _ = waiter.send(Err(NodeError::Unavailable {
                    node: self.id,
                    reason: reason.clone(),
                }));
            }
            return None;
        }
        if state.waiters.is_empty() {
            None
        } else {
            Some(self.begin_invocation(&mut state))
        }
    }

    pub fn status(&self) -> NodeStatus {
        let state = self.state.lock();
        NodeStatus {
            id: self.id,
            function: self.function.clone(),
            phase: state.phase.name(),
            instance_id: state.instance_id,
            invocations: state.invocations,
            failures: state.failures,
        }
    }
}

/// 128 random bits, hex-encoded.
fn new_token() -> String {
    let bytes: [u8; 16] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Compares secrets without leaking where they differ through timing.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_unique_and_compared_exactly() {
        let (a, b) = (new_token(), new_token());
        assert_ne!(a, b);
        assert_eq!(a.len(), 32);
        assert!(constant_time_eq(a.as_bytes(), a.as_bytes()));
        assert!(!constant_time_eq(a.as_bytes(), b.as_bytes()));
        assert!(!constant_time_eq(a.as_bytes(), &a.as_bytes()[1..]));
    }

    #[test]
    fn only_one_invocation_at_a_time() {
        let slot = NodeSlot::new(0, "f-0".into());
        let Acquire::Wait {
            invoke: Some(_), ..
        } = slot.acquire()
        else {
            panic!("first acquire must invoke");
        };
        let Acquire::Wait { invoke: None, .. } = slot.acquire() else {
            panic!("second acquire must wait for the same invocation");
        };
        assert!(
            !slot.begin_warmup(std::time::Duration::ZERO),
            "no warm-up while invoking"
        );
    }

    #[test]
    fn waiters_fail_when_the_node_never_dials_in() {
        let slot = NodeSlot::new(0, "f-0".into());
        let Acquire::Wait { mut link, .. } = slot.acquire() else {
            panic!("must wait");
        };
        assert_eq!(
            slot.invocation_ended(InvocationKind::Serve, Some("boom".into())),
            None
        );
        assert!(matches!(
            link.try_recv(),
            Ok(Err(NodeError::Unavailable { .. }))
        ));
        assert_eq!(slot.status().phase, "idle");
    }

    #[test]
    fn failing_nodes_back_off_then_retry() {
        let slot = NodeSlot::new(0, "f-0".into());
        let Acquire::Wait {
            invoke: Some(_), ..
        } = slot.acquire()
        else {
            panic!("first acquire must invoke");
        };
        slot.invocation_ended(InvocationKind::Serve, Some("function error: boom".into()));
        match slot.acquire() {
            Acquire::Failing(NodeError::Unavailable { reason, .. }) => {
                assert!(reason.contains("boom"), "{reason}");
            }
            _ => panic!("a node that just failed must not be invoked again at once"),
        }
        std::thread::sleep(backoff(1));
        assert!(
            matches!(
                slot.acquire(),
                Acquire::Wait {
                    invoke: Some(_),
                    ..
                }
            ),
            "after the backoff the node is tried again"
        );
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        assert_eq!(backoff(1), FIRST_BACKOFF);
        assert_eq!(backoff(2), FIRST_BACKOFF * 2);
        assert_eq!(backoff(3), FIRST_BACKOFF * 4);
        assert_eq!(backoff(40), MAX_BACKOFF);
    }

    #[test]
    fn warmup_requests_queue_and_reinvoke() {
        let slot = NodeSlot::new(0, "f-0".into());
        assert!(slot.begin_warmup(std::time::Duration::ZERO));
        let Acquire::Wait { invoke: None, .. } = slot.acquire() else {
            panic!("must wait for the warm-up");
        };
        assert!(
            slot.invocation_ended(InvocationKind::Warmup, None)
                .is_some()
        );
        assert_eq!(slot.status().phase, "invoking");
    }
}
