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
//!
//! A caller that gets a link holds a [`LinkClaim`] on it until its request
//! is answered, from the moment it is handed the link (a waiter is handed
//! one when the node dials in, possibly long before its task runs). A node's
//! `Bye` is declined while any claim is held ([`NodeSlot::answer_bye`]):
//! acknowledging it would strand requests that are about to be sent, and on
//! a busy host a woken waiter can easily take longer than the node's idle
//! timeout to run.
//!
//! Beside that, while the node is `Serving`, one *backup* invocation may be
//! in flight: because the primary environment is busy, the provider starts
//! it on a second environment of the same function (see
//! [`super::backup`]). It has its own token and never takes over routing;
//! the slot only remembers which environment was synced last, so that when
//! the primary is reclaimed and the next invocation lands on the backup,
//! the takeover is recognised as a failover.

use crate::auth::constant_time_eq;
use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use infinicache::protocol::{Mux, NodeReply, NodeRequest};
use parking_lot::Mutex;
use thiserror::Error;
use tokio::sync::oneshot;

use super::metadata::NodeId;

/// A connection to a serving node.
pub type NodeLink = Mux<NodeRequest, NodeReply>;

/// Why a leaving node's link refuses new requests (see [`NodeSlot::answer_bye`]).
/// A request refused with it never left the proxy, so it is not a failed
/// attempt: it simply waits for the node's next invocation.
pub const LEAVING: &str = "the node is leaving";

/// A caller's hold on a serving node's link, from the moment it is handed
/// the link until it drops the claim (once its request is answered).
///
/// While any claim on a link is held, the node's `Bye` is declined with
/// `Stay`: the node serves on, so a request that was routed to it is sent
/// to it, however long the caller's task takes to run. Dropping a claim
/// only decrements a counter, so it is safe anywhere (even with the slot
/// locked, when a waiter's receiver has gone away).
pub struct LinkClaim {
    link: NodeLink,
    claims: Arc<AtomicUsize>,
}

impl LinkClaim {
    fn new(link: &NodeLink, claims: &Arc<AtomicUsize>) -> Self {
        claims.fetch_add(1, Ordering::SeqCst);
        LinkClaim {
            link: link.clone(),
            claims: claims.clone(),
        }
    }

    /// The link, for holding beyond the claim (no longer keeps the node).
    pub fn link(&self) -> &NodeLink {
        &self.link
    }
}

impl Deref for LinkClaim {
    type Target = NodeLink;

    fn deref(&self) -> &NodeLink {
        &self.link
    }
}

impl Drop for LinkClaim {
    fn drop(&mut self) {
        self.claims.fetch_sub(1, Ordering::SeqCst);
    }
}

/// What to answer a node's `Bye` with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByeAnswer {
    /// Decline (`Stay`): the node is still needed.
    Stay(StayReason),
    /// Acknowledge (`ByeAck`): routing to the link has stopped and it is
    /// sealed, so nothing more will be sent on it.
    Leave,
}

/// Why a node was asked to stay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StayReason {
    /// A backup is being synced from this primary.
    Backup,
    /// Requests hold the link (see [`LinkClaim`]).
    Claimed,
}

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

/// What an invocation is for (and what its cost is accounted as).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum InvocationKind {
    /// Serve chunk requests.
    Serve,
    /// Keep the environment warm.
    Warmup,
    /// Relay a delta sync: the backup environment's invocation, and the
    /// primary's when it was invoked only to be backed up.
    Backup,
}

/// Why an invocation failed, as the state machine needs to know it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub message: String,
    /// The environment died under it: worth one immediate retry, which the
    /// provider places on another environment (the backup, if there is one).
    pub environment_died: bool,
}

impl From<&crate::invoker::InvokeError> for Failure {
    fn from(err: &crate::invoker::InvokeError) -> Self {
        Failure {
            message: err.to_string(),
            environment_died: err.environment_died(),
        }
    }
}

/// Which invocation a dialing node's token belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenRole {
    /// The serving invocation: the node becomes the routing target.
    Primary,
    /// The backup invocation: the connection is handed to the delta sync.
    Backup,
}

/// A backup environment that dialed in.
pub struct BackupLink {
    pub link: NodeLink,
    pub instance_id: u64,
}

/// A backup invocation in flight.
struct PendingBackup {
    token: String,
    link: Option<oneshot::Sender<Result<BackupLink, BackupRefused>>>,
    /// The backup invocation was placed: from now on a new serving
    /// invocation would land on a third environment, so none is started
    /// until the backup ends.
    placed: bool,
}

enum Phase {
    Idle,
    Warming,
    Invoking {
        token: String,
    },
    Serving {
        link: NodeLink,
        /// Claims held on `link` (see [`LinkClaim`]).
        claims: Arc<AtomicUsize>,
    },
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
    waiters: Vec<oneshot::Sender<Result<LinkClaim, NodeError>>>,
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
    /// The backup invocation in flight, if any.
    backup: Option<PendingBackup>,
    /// The environment that received the last complete delta sync.
    backup_instance: Option<u64>,
    /// A new environment was detected and what it holds has not been
    /// reconciled with the metadata yet.
    unreconciled: bool,
    /// Completed failovers to the backup environment.
    failovers: u64,
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
    Ready(LinkClaim),
    /// The node's invocations are failing; it is not retried before the
    /// backoff expires.
    Failing(NodeError),
    /// Wait for the link; if `invoke` holds a token, the caller must start a
    /// serving invocation with it.
    Wait {
        link: oneshot::Receiver<Result<LinkClaim, NodeError>>,
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
    /// The environment is not the one that served last time: what it holds
    /// must be reconciled with the metadata (nothing, for a fresh one).
    pub new_environment: bool,
    /// ...and it is the environment the last delta sync went to: the backup
    /// took over the node's identity.
    pub failover: bool,
    /// A reconciliation is due (a new environment now, or one that failed
    /// earlier).
    pub reconcile: bool,
}

/// Why a backup environment was refused.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum BackupRefused {
    #[error(transparent)]
    BadToken(#[from] BadToken),
    /// The primary returned before the backup invocation was placed, so the
    /// provider reused the primary's own environment: nothing to sync into.
    #[error("node {node}: the backup invocation landed on the primary environment")]
    SameEnvironment { node: NodeId },
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
    /// The environment holding the node's backup, if one was synced.
    pub backup_instance: Option<u64>,
    /// Whether a backup is being synced right now.
    pub backing_up: bool,
    /// Times the backup environment took over.
    pub failovers: u64,
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
                backup: None,
                backup_instance: None,
                unreconciled: false,
                failovers: 0,
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
        if let Phase::Serving { link, claims } = &state.phase {
            // A closed link belongs to a node that is gone (its connection
            // dropped and the reader has not reported it yet): its next
            // invocation serves the request.
            if !link.is_sealed() {
                return Acquire::Ready(LinkClaim::new(link, claims));
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
        // While a backup is in flight with the primary gone, the backup
        // environment is busy: an invocation now would land on a third,
        // empty one. Wait; the end of the backup starts the invocation.
        let invoke = match state.phase {
            Phase::Idle if !state.backup.as_ref().is_some_and(|backup| backup.placed) => {
                Some(self.begin_invocation(&mut state))
            }
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
        if matches!(state.phase, Phase::Idle)
            && state.backup.is_none()
            && state.last_active.elapsed() >= idle_for
        {
            state.phase = Phase::Warming;
            state.invocations += 1;
            true
        } else {
            false
        }
    }

    /// Which invocation in flight `token` was issued for.
    pub fn check_token(&self, token: &[u8]) -> Result<TokenRole, BadToken> {
        let state = self.state.lock();
        if Self::valid_token(&state, token) {
            Ok(TokenRole::Primary)
        } else if Self::valid_backup_token(&state, token) {
            Ok(TokenRole::Backup)
        } else {
            Err(BadToken { node: self.id })
        }
    }

    fn valid_token(state: &State, token: &[u8]) -> bool {
        matches!(&state.phase, Phase::Invoking { token: issued } if constant_time_eq(issued.as_bytes(), token))
    }

    fn valid_backup_token(state: &State, token: &[u8]) -> bool {
        state.backup.as_ref().is_some_and(|pending| {
            pending.link.is_some() && constant_time_eq(pending.token.as_bytes(), token)
        })
    }

    /// Reserves a backup, unless another one is in flight. From now until
    /// [`NodeSlot::end_backup`] the serving primary is held (its Bye is
    /// declined), so the caller makes sure the primary serves and only then
    /// places the backup invocation: the provider must put it on another
    /// environment. Returns the backup invocation's token and where its
    /// connection will be delivered.
    pub fn begin_backup(
        &self,
    ) -> Option<(String, oneshot::Receiver<Result<BackupLink, BackupRefused>>)> {
        let mut state = self.state.lock();
        if state.backup.is_some() {
            return None;
        }
        let token = new_token();
        let (tx, rx) = oneshot::channel();
        state.backup = Some(PendingBackup {
            token: token.clone(),
            link: Some(tx),
            placed: false,
        });
        Some((token, rx))
    }

    /// The backup invocation is about to be placed (the primary serves and
    /// is held).
    pub fn backup_placed(&self) {
        if let Some(backup) = self.state.lock().backup.as_mut() {
            backup.placed = true;
        }
    }

    /// The backup environment dialed in with `token`.
    pub fn attach_backup(
        &self,
        token: &[u8],
        instance_id: u64,
        link: NodeLink,
    ) -> Result<(), BackupRefused> {
        let mut state = self.state.lock();
        if !Self::valid_backup_token(&state, token) {
            return Err(BadToken { node: self.id }.into());
        }
        let primary = state.instance_id;
        let pending = state
            .backup
            .as_mut()
            .and_then(|pending| pending.link.take())
            .ok_or(BadToken { node: self.id })?;
        if primary == Some(instance_id) {
            let refused = BackupRefused::SameEnvironment { node: self.id };
            let _ = pending.send(Err(refused.clone()));
            return Err(refused);
        }
        pending
            .send(Ok(BackupLink { link, instance_id }))
            .map_err(|_| BadToken { node: self.id })?;
        Ok(())
    }

    /// The backup is over; `synced` names the environment that now holds a
    /// complete copy (`None` if the sync failed). Returns a token if requests
    /// queued while the primary was gone: the caller starts that serving
    /// invocation, which now finds the backup environment free.
    pub fn end_backup(&self, synced: Option<u64>) -> Option<String> {
        let mut state = self.state.lock();
        state.backup = None;
        if synced.is_some() {
            state.backup_instance = synced;
        }
        (matches!(state.phase, Phase::Idle) && !state.waiters.is_empty())
            .then(|| self.begin_invocation(&mut state))
    }

    /// The backup invocation issued with `token` returned. If its
    /// environment never dialed in, the sync waiting for it learns so now
    /// (its receiver fails). A late return of an older backup's invocation
    /// leaves a newer backup alone.
    pub fn backup_invocation_ended(&self, token: &str) {
        if let Some(pending) = self.state.lock().backup.as_mut()
            && pending.token == token
        {
            pending.link = None;
        }
    }

    /// Whether a reconciliation is due (one failed and was not retried yet).
    pub fn needs_reconcile(&self) -> bool {
        self.state.lock().unreconciled
    }

    /// The node's contents were reconciled with the metadata (or not).
    pub fn set_reconciled(&self, done: bool) {
        self.state.lock().unreconciled = !done;
    }

    /// A node dialed in presenting `token`.
    pub fn attach(
        &self,
        token: &[u8],
        instance_id: u64,
        chunks: u64,
        link: NodeLink,
    ) -> Result<Attached, BadToken> {
        let mut state = self.state.lock();
        if !Self::valid_token(&state, token) {
            return Err(BadToken { node: self.id });
        }
        let new_environment = state
            .instance_id
            .is_some_and(|previous| previous != instance_id);
        let failover = new_environment && state.backup_instance == Some(instance_id);
        if failover {
            // The old primary (if it still exists) holds a superset of the
            // synced data, but nothing is known about it any more: the next
            // sync lists whatever environment it reaches.
            state.backup_instance = None;
            state.failovers += 1;
        }
        // A node seen for the first time that already holds chunks kept
        // them from before this proxy started: reconcile those too.
        if new_environment || (state.instance_id.is_none() && chunks > 0) {
            state.unreconciled = true;
        }
        state.instance_id = Some(instance_id);
        let claims = Arc::new(AtomicUsize::new(0));
        // Each waiter's claim is taken now, before its task runs: the node
        // must not be let go before the requests it was invoked for reach
        // it. (A waiter that gave up drops its claim with the message.)
        for waiter in state.waiters.drain(..) {
            let _ = waiter.send(Ok(LinkClaim::new(&link, &claims)));
        }
        state.phase = Phase::Serving { link, claims };
        state.failures = 0;
        state.retry_after = None;
        state.last_active = Instant::now();
        Ok(Attached {
            new_environment,
            failover,
            reconcile: state.unreconciled,
        })
    }

    /// The node said `Bye` on `link`: decides whether it may go.
    ///
    /// It must stay while it is the serving primary and either a backup is
    /// being synced from it (were it to return, the provider could route
    /// the backup invocation, or the next serving one, to the wrong
    /// environment) or requests hold claims on its link (they were routed
    /// here and would otherwise be refused, or sent after the `ByeAck` and
    /// never answered). Otherwise routing to it stops and the link is
    /// sealed, atomically with the check: no request can be handed the link
    /// any more, and the caller may acknowledge the `Bye`.
    pub fn answer_bye(&self, link: &NodeLink) -> ByeAnswer {
        let mut state = self.state.lock();
        if let Phase::Serving {
            link: current,
            claims,
        } = &state.phase
            && current.same_connection(link)
        {
            if state.backup.is_some() {
                return ByeAnswer::Stay(StayReason::Backup);
            }
            if claims.load(Ordering::SeqCst) > 0 {
                return ByeAnswer::Stay(StayReason::Claimed);
            }
            state.phase = Phase::Leaving;
            state.last_active = Instant::now();
        }
        // Not (or no longer) the routing target: nothing new is sent on it
        // either way.
        link.seal(LEAVING);
        ByeAnswer::Leave
    }

    /// Closes the serving connection, if any (the node returns).
    pub fn dismiss(&self, reason: &'static str) {
        if let Phase::Serving { link, .. } = &self.state.lock().phase {
            link.close(reason);
        }
    }

    /// Whether a backup sync is under way (its environment's Bye is
    /// declined until the sync closes the connection).
    pub fn backup_running(&self) -> bool {
        self.state.lock().backup.is_some()
    }

    /// The node said Bye or its connection closed: stop routing to `link`.
    /// Requests arriving from now on wait for the invocation to end and a
    /// new one to start.
    pub fn detach(&self, link: &NodeLink) {
        let mut state = self.state.lock();
        if let Phase::Serving { link: current, .. } = &state.phase
            && current.same_connection(link)
        {
            state.phase = Phase::Leaving;
            state.last_active = Instant::now();
        }
    }

    /// The invocation in flight has ended. Returns a token if waiters are
    /// queued and a new serving invocation must start for them.
    pub fn invocation_ended(&self, kind: InvocationKind, error: Option<Failure>) -> Option<String> {
        let mut state = self.state.lock();
        state.last_active = Instant::now();
        let previous = std::mem::replace(&mut state.phase, Phase::Idle);
        if let Phase::Serving { link, .. } = &previous {
            link.close("invocation ended");
        }
        if kind != InvocationKind::Warmup && matches!(previous, Phase::Invoking { .. }) {
            // The function returned without ever dialing in. If its
            // environment died, the first time in a row, try again at once
            // for the requests waiting; otherwise back off before invoking
            // it again.
            if error
                .as_ref()
                .is_some_and(|failure| failure.environment_died)
                && state.failures == 0
                && !state.waiters.is_empty()
            {
                state.failures = 1;
                return Some(self.begin_invocation(&mut state));
            }
            let reason = error.map_or_else(
                || "the node returned without connecting".into(),
                |failure| failure.message,
            );
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
        if state.waiters.is_empty() || state.backup.as_ref().is_some_and(|backup| backup.placed) {
            // Nobody waiting, or the backup environment is busy: the end of
            // the backup starts the next invocation (see `end_backup`).
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
            backup_instance: state.backup_instance,
            backing_up: state.backup.is_some(),
            failovers: state.failovers,
        }
    }
}

/// 128 random bits, hex-encoded.
fn new_token() -> String {
    let bytes: [u8; 16] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
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
            slot.invocation_ended(InvocationKind::Serve, Some(failure("boom", false))),
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
        slot.invocation_ended(
            InvocationKind::Serve,
            Some(failure("function error: boom", false)),
        );
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

    fn failure(message: &str, environment_died: bool) -> Failure {
        Failure {
            message: message.into(),
            environment_died,
        }
    }

    #[test]
    fn a_dead_environment_is_retried_once_at_once() {
        let slot = NodeSlot::new(0, "f-0".into());
        let Acquire::Wait { mut link, .. } = slot.acquire() else {
            panic!("must wait");
        };
        assert!(
            slot.invocation_ended(InvocationKind::Serve, Some(failure("SIGKILL", true)))
                .is_some(),
            "the waiter gets a second invocation"
        );
        assert!(link.try_recv().is_err(), "the waiter is still waiting");
        assert_eq!(
            slot.invocation_ended(InvocationKind::Serve, Some(failure("SIGKILL", true))),
            None,
            "but not a third"
        );
        assert!(matches!(link.try_recv(), Ok(Err(_))));
        assert!(matches!(slot.acquire(), Acquire::Failing(_)));
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        assert_eq!(backoff(1), FIRST_BACKOFF);
        assert_eq!(backoff(2), FIRST_BACKOFF * 2);
        assert_eq!(backoff(3), FIRST_BACKOFF * 4);
        assert_eq!(backoff(40), MAX_BACKOFF);
    }

    /// Brings `slot` to serving over a fresh loopback link (the far end is
    /// returned so the connection stays open).
    async fn serving(slot: &NodeSlot) -> (NodeLink, tokio::net::TcpStream) {
        let Acquire::Wait {
            invoke: Some(token),
            ..
        } = slot.acquire()
        else {
            panic!("first acquire must invoke");
        };
        let (link, far) = loopback_link().await;
        slot.attach(token.as_bytes(), 7, 0, link.clone())
            .expect("the token is valid");
        (link, far)
    }

    async fn loopback_link() -> (NodeLink, tokio::net::TcpStream) {
        use infinicache::protocol::{FrameReader, FrameWriter};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("address");
        let (near, far) = tokio::join!(tokio::net::TcpStream::connect(addr), listener.accept());
        let (read, write) = near.expect("connect").into_split();
        let link = Mux::start(
            FrameReader::new(read, 1 << 20),
            FrameWriter::new(write),
            None,
        );
        (link, far.expect("accept").0)
    }

    #[tokio::test]
    async fn a_claimed_link_keeps_its_node() {
        let slot = NodeSlot::new(0, "f-0".into());
        let (link, _far) = serving(&slot).await;
        let claim = match slot.acquire() {
            Acquire::Ready(claim) => claim,
            _ => panic!("the node is serving"),
        };
        assert_eq!(
            slot.answer_bye(&link),
            ByeAnswer::Stay(StayReason::Claimed),
            "a request holds the link"
        );
        assert!(!link.is_sealed());
        drop(claim);
        assert_eq!(slot.answer_bye(&link), ByeAnswer::Leave);
        assert!(link.is_sealed(), "nothing is sent after the ByeAck");
        assert_eq!(slot.status().phase, "leaving");
        assert!(
            matches!(slot.acquire(), Acquire::Wait { invoke: None, .. }),
            "a request now waits for the next invocation"
        );
    }

    #[tokio::test]
    async fn a_waiter_is_handed_a_claim_before_it_runs() {
        let slot = NodeSlot::new(0, "f-0".into());
        let Acquire::Wait {
            link: mut waiting,
            invoke: Some(token),
        } = slot.acquire()
        else {
            panic!("first acquire must invoke");
        };
        let (link, _far) = loopback_link().await;
        slot.attach(token.as_bytes(), 7, 0, link.clone())
            .expect("the token is valid");
        // The waiter has not looked at its link yet: the node stays.
        assert_eq!(slot.answer_bye(&link), ByeAnswer::Stay(StayReason::Claimed));
        let claim = waiting.try_recv().expect("delivered").expect("a link");
        assert!(claim.same_connection(&link));
        drop(claim);
        assert_eq!(slot.answer_bye(&link), ByeAnswer::Leave);
    }

    #[tokio::test]
    async fn a_claim_given_up_with_its_waiter_is_released() {
        let slot = NodeSlot::new(0, "f-0".into());
        let Acquire::Wait {
            link: waiting,
            invoke: Some(token),
        } = slot.acquire()
        else {
            panic!("first acquire must invoke");
        };
        drop(waiting);
        let (link, _far) = loopback_link().await;
        slot.attach(token.as_bytes(), 7, 0, link.clone())
            .expect("the token is valid");
        assert_eq!(slot.answer_bye(&link), ByeAnswer::Leave);
    }

    #[tokio::test]
    async fn a_stale_link_may_always_leave() {
        let slot = NodeSlot::new(0, "f-0".into());
        let (link, _far) = serving(&slot).await;
        let _claim = match slot.acquire() {
            Acquire::Ready(claim) => claim,
            _ => panic!("the node is serving"),
        };
        let (other, _other_far) = loopback_link().await;
        assert_eq!(slot.answer_bye(&other), ByeAnswer::Leave);
        assert!(other.is_sealed());
        assert!(!link.is_sealed(), "the serving link is untouched");
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
