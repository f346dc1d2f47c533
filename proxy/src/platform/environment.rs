//! One execution environment: a child process running the function's
//! runtime, and the state machine the Runtime API drives.
//!
//! Life of an environment:
//! `Starting` (spawned, runtime not yet polling) → `Busy` (an invocation is
//! assigned) → `Idle` (response posted; frozen once the runtime polls
//! `/next` again) → `Busy` → … → gone (exited, crashed, timed out, reclaimed).
//!
//! Reclaims (see [`super::reclaim`]) only ever take an idle environment:
//! each time one becomes idle it draws the idle lifetime after which the
//! reaper may take it, and one past its maximum lifetime is recycled as soon
//! as its invocation completes. Deciding and dooming happen in one critical
//! section, so an invocation assigned concurrently is never killed by them.
//!
//! Freezing happens when the runtime's `/next` poll arrives with nothing to
//! deliver, which is when AWS freezes a sandbox too: the response has been
//! acknowledged (202 already on the wire, so no half-written reply is frozen
//! in the socket) and the runtime has nothing left to do. The process is
//! thawed right before the next event is handed to that parked poll.
//!
//! Locking: one short `parking_lot` mutex per environment; never held across
//! an await. The function's pool lock may be taken before an environment's
//! lock, never after it.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant, SystemTime};

use nix::sys::signal::Signal;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, oneshot, watch};

use super::error::ApiError;
use super::function::Function;
use super::ids;
use super::invocation::{Completion, Delivery, Event, Started};
use super::process;
use super::reclaim::{ReclaimReason, Reclaimer};

/// Observable state of an environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "phase")]
pub enum EnvironmentState {
    /// Process spawned; its runtime has not asked for an event yet.
    Starting,
    /// Waiting for an invocation; `frozen` when SIGSTOPped.
    Idle {
        /// Whether the process is currently stopped.
        frozen: bool,
    },
    /// Serving an invocation.
    Busy,
}

/// Snapshot of one environment (admin API, [`super::LocalPlatform::environments`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvironmentInfo {
    /// Platform-wide unique id.
    pub id: u64,
    /// The function it belongs to.
    pub function: String,
    /// OS process id of the runtime process.
    pub pid: u32,
    /// Address of this environment's Runtime API (`AWS_LAMBDA_RUNTIME_API`).
    pub runtime_api: SocketAddr,
    /// Current state.
    pub state: EnvironmentState,
    /// Invocations completed (response or error posted) by this environment.
    pub invocations: u64,
    /// When the process was spawned.
    #[serde(with = "humantime_serde")]
    pub created_at: SystemTime,
}

/// Why the platform kills an environment; decides what a still-pending
/// invocation is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KillReason {
    Timeout,
    /// Reclaimed on request (admin API, [`super::LocalPlatform::reclaim`]).
    Reclaimed,
    IdleExpired,
    MaxLifetime,
    RandomReclaim,
    InitError,
    Shutdown,
}

impl KillReason {
    fn explain(self) -> &'static str {
        match self {
            Self::Timeout => "invocation timed out",
            Self::Reclaimed => "environment reclaimed",
            Self::IdleExpired => "idle environment expired",
            Self::MaxLifetime => "environment reached its maximum lifetime",
            Self::RandomReclaim => "environment reclaimed at random",
            Self::InitError => "runtime init error",
            Self::Shutdown => "platform shutting down",
        }
    }

    /// The reclaim this kill counts as, if any: failures and shutdown are
    /// not reclaims.
    fn reclaim(self) -> Option<ReclaimReason> {
        match self {
            Self::Reclaimed => Some(ReclaimReason::Admin),
            Self::IdleExpired => Some(ReclaimReason::Idle),
            Self::MaxLifetime => Some(ReclaimReason::MaxLifetime),
            Self::RandomReclaim => Some(ReclaimReason::Random),
            Self::Timeout | Self::InitError | Self::Shutdown => None,
        }
    }
}

/// The invocation assigned to an environment, with the channels back to
/// the task waiting for it.
#[derive(Debug)]
pub(crate) struct Current {
    pub event: Arc<Event>,
    delivered: bool,
    started_tx: Option<oneshot::Sender<Started>>,
    done_tx: oneshot::Sender<Completion>,
}

/// The invoker's side of an assignment.
#[derive(Debug)]
pub(crate) struct Ticket {
    pub env: Arc<Environment>,
    pub cold: bool,
    pub started: oneshot::Receiver<Started>,
    pub done: oneshot::Receiver<Completion>,
}

/// Receivers matching a [`Current`], turned into a [`Ticket`] once the
/// environment is known.
#[derive(Debug)]
pub(crate) struct Receivers {
    started: oneshot::Receiver<Started>,
    done: oneshot::Receiver<Completion>,
}

impl Receivers {
    pub fn into_ticket(self, env: Arc<Environment>, cold: bool) -> Ticket {
        Ticket {
            env,
            cold,
            started: self.started,
            done: self.done,
        }
    }
}

impl Current {
    pub fn new(event: Arc<Event>) -> (Self, Receivers) {
        let (started_tx, started) = oneshot::channel();
        let (done_tx, done) = oneshot::channel();
        let current = Self {
            event,
            delivered: false,
            started_tx: Some(started_tx),
            done_tx,
        };
        (current, Receivers { started, done })
    }

    fn finish(self, completion: Completion) {
        // The invoker may have given up (timeout); nothing to do then.
        let _ = self.done_tx.send(completion);
    }
}

/// Result of a runtime's `/next` poll.
pub(crate) enum Next {
    /// An event is ready now.
    Deliver(Delivery),
    /// Park until an event is assigned (the sender is dropped if the
    /// environment dies meanwhile).
    Wait(oneshot::Receiver<Delivery>),
    /// The environment is dead or being killed.
    Gone,
    /// Another poll is already waiting (only the environment's own runtime
    /// should poll; a stray client must not steal its events).
    AlreadyPolling,
}

#[derive(Debug)]
struct EnvState {
    /// Set by the runtime's first `/next`: spawn-to-ready time.
    init_duration: Option<Duration>,
    /// Whether the cold-start init time was already reported.
    init_reported: bool,
    current: Option<Current>,
    parked: Option<oneshot::Sender<Delivery>>,
    frozen: bool,
    doomed: Option<KillReason>,
    exited: bool,
    invocations: u64,
    last_used: Instant,
    /// When the idle lifetime drawn on becoming idle runs out (`None`: never,
    /// or not idle yet).
    idle_deadline: Option<Instant>,
}

/// One execution environment (see the module docs).
#[derive(Debug)]
pub(crate) struct Environment {
    pub id: u64,
    pub pid: u32,
    pub runtime_api: SocketAddr,
    pub created_at: SystemTime,
    spawned_at: Instant,
    function: Weak<Function>,
    function_name: String,
    function_arn: String,
    timeout: Duration,
    freeze: bool,
    reclaimer: Arc<Reclaimer>,
    /// Past this instant the environment is recycled at its next idle moment
    /// (its maximum lifetime, drawn at creation; `None`: never).
    retire_at: Option<Instant>,
    /// Last sampled peak memory of the process (MiB; 0: unknown), for the
    /// billing record's "Max Memory Used". Sampled while the process is alive
    /// because a reaped process no longer has it.
    peak_memory_mb: AtomicU64,
    state: Mutex<EnvState>,
    kill: Notify,
    exited: watch::Sender<bool>,
}

impl Environment {
    /// A freshly spawned environment, already holding the invocation that
    /// caused its cold start (delivered on the runtime's first `/next`).
    pub fn new(
        id: u64,
        pid: u32,
        runtime_api: SocketAddr,
        function: &Arc<Function>,
        first: Current,
    ) -> Self {
        let now = Instant::now();
        let reclaimer = Arc::clone(&function.reclaimer);
        Self {
            id,
            pid,
            runtime_api,
            created_at: SystemTime::now(),
            spawned_at: now,
            function: Arc::downgrade(function),
            function_name: function.config.name.clone(),
            function_arn: function.arn.clone(),
            timeout: function.config.timeout,
            freeze: function.freeze,
            retire_at: reclaimer.retire_at(now),
            reclaimer,
            peak_memory_mb: AtomicU64::new(0),
            state: Mutex::new(EnvState {
                init_duration: None,
                init_reported: false,
                current: Some(first),
                parked: None,
                frozen: false,
                doomed: None,
                exited: false,
                invocations: 0,
                last_used: now,
                idle_deadline: None,
            }),
            kill: Notify::new(),
            exited: watch::channel(false).0,
        }
    }

    /// When it became idle, if it can take an invocation now.
    pub fn idle_since(&self) -> Option<Instant> {
        let st = self.state.lock();
        Self::available(&st).then_some(st.last_used)
    }

    fn available(st: &EnvState) -> bool {
        st.doomed.is_none() && !st.exited && st.init_duration.is_some() && st.current.is_none()
    }

    /// Assigns an invocation if the environment is idle (warm start).
    pub fn try_assign(&self, current: Current) -> Result<(), Current> {
        let mut st = self.state.lock();
        if !Self::available(&st) {
            return Err(current);
        }
        st.current = Some(current);
        st.idle_deadline = None;
        self.deliver_if_parked(&mut st);
        Ok(())
    }

    /// Hands the assigned, undelivered event to a parked `/next` poll,
    /// thawing the process first.
    fn deliver_if_parked(&self, st: &mut EnvState) {
        let Some(parked) = st.parked.take() else {
            return;
        };
        if st.frozen {
            process::signal(self.pid, Signal::SIGCONT);
            st.frozen = false;
        }
        let Some(delivery) = self.take_delivery(st) else {
            return;
        };
        if let Err(delivery) = parked.send(delivery) {
            // The poll went away (connection closed); the event stays pending
            // for the runtime's next poll.
            tracing::debug!(env = self.id, request_id = %delivery.event.request_id, "parked /next vanished");
            if let Some(current) = st.current.as_mut() {
                current.delivered = false;
            }
        }
    }

    /// Marks the current event delivered and builds the `/next` answer; the
    /// invocation's clock starts now.
    fn take_delivery(&self, st: &mut EnvState) -> Option<Delivery> {
        let current = st.current.as_mut().filter(|c| !c.delivered)?;
        current.delivered = true;
        // Only the first delivery of an environment is a cold start.
        let init = if st.init_reported {
            None
        } else {
            st.init_reported = true;
            st.init_duration
        };
        if let Some(tx) = current.started_tx.take() {
            let _ = tx.send(Started {
                at: Instant::now(),
                wall: SystemTime::now(),
                init_duration: init,
            });
        }
        Some(Delivery {
            event: Arc::clone(&current.event),
            deadline_ms: ids::deadline_ms(self.timeout),
            function_arn: self.function_arn.clone(),
        })
    }

    /// Runtime API `GET /runtime/invocation/next`.
    pub fn next_event(&self) -> Next {
        let mut st = self.state.lock();
        if st.exited || st.doomed.is_some() {
            return Next::Gone;
        }
        if st.init_duration.is_none() {
            st.init_duration = Some(self.spawned_at.elapsed());
        }
        if let Some(delivery) = self.take_delivery(&mut st) {
            return Next::Deliver(delivery);
        }
        if st.parked.as_ref().is_some_and(|p| !p.is_closed()) {
            return Next::AlreadyPolling;
        }
        let (tx, rx) = oneshot::channel();
        st.parked = Some(tx);
        if self.freeze && !st.frozen && st.current.is_none() {
            st.frozen = process::signal(self.pid, Signal::SIGSTOP);
        }
        Next::Wait(rx)
    }

    /// Runtime API `/invocation/{id}/response` and `/invocation/{id}/error`:
    /// completes the current invocation; the environment becomes idle, or is
    /// recycled right away if it is past its maximum lifetime (the earliest
    /// moment AWS would, as it never recycles a busy environment).
    pub fn complete(&self, request_id: &str, completion: Completion) -> Result<(), ApiError> {
        // Before anything can kill the process, while its memory is there.
        self.sample_peak_memory();
        let (current, recycled) = {
            let mut st = self.state.lock();
            let matches = st
                .current
                .as_ref()
                .is_some_and(|c| c.delivered && c.event.request_id == request_id);
            if !matches {
                return Err(ApiError::invalid_request_id(request_id));
            }
            let now = Instant::now();
            st.invocations += 1;
            st.last_used = now;
            let current = st.current.take();
            let recycled = self.retire_at.is_some_and(|at| now >= at)
                && self.doom(&mut st, KillReason::MaxLifetime);
            if !recycled {
                st.idle_deadline = self.reclaimer.idle_deadline(now);
            }
            (current, recycled)
        };
        if let Some(current) = current {
            current.finish(completion);
        }
        if recycled {
            tracing::debug!(env = self.id, "maximum lifetime reached: recycled");
            self.wake_supervisor();
        }
        if let Some(function) = self.function.upgrade() {
            function.freed.notify_waiters();
        }
        Ok(())
    }

    /// Runtime API `/init/error`: the pending invocation fails with the
    /// runtime's report, and the environment is discarded (AWS does not
    /// reuse a sandbox whose init failed).
    pub fn fail_init(&self, completion: Completion) {
        let current = self.state.lock().current.take();
        if let Some(current) = current {
            current.finish(completion);
        }
        self.request_kill(KillReason::InitError);
    }

    /// Gives up on `request_id` (the invoker's timer fired) and kills the
    /// environment. `false` if the invocation had already completed.
    pub fn time_out(&self, request_id: &str) -> bool {
        self.sample_peak_memory();
        let taken = {
            let mut st = self.state.lock();
            let matches = st
                .current
                .as_ref()
                .is_some_and(|c| c.event.request_id == request_id);
            if matches { st.current.take() } else { None }
        };
        match taken {
            Some(_) => {
                self.request_kill(KillReason::Timeout);
                true
            }
            None => false,
        }
    }

    /// Asks the supervisor to SIGKILL the process (works on stopped ones
    /// too). `false` if already dead or being killed.
    pub fn request_kill(&self, reason: KillReason) -> bool {
        let doomed = self.doom(&mut self.state.lock(), reason);
        if doomed {
            self.wake_supervisor();
        }
        doomed
    }

    /// Marks the environment for death under its lock, so nothing can be
    /// assigned to it from then on, and counts it if it is a reclaim (here,
    /// so that each environment is counted once, for the reason that won).
    fn doom(&self, st: &mut EnvState, reason: KillReason) -> bool {
        if st.exited || st.doomed.is_some() {
            return false;
        }
        st.doomed = Some(reason);
        st.parked = None;
        if let Some(reclaim) = reason.reclaim() {
            self.reclaimer.count(reclaim);
        }
        true
    }

    fn wake_supervisor(&self) {
        // `notify_one` stores a permit, so this cannot be missed even if the
        // supervisor is not waiting yet.
        self.kill.notify_one();
    }

    /// Kills without going through the supervisor, for `Drop` where the
    /// runtime driving the supervisor may already be gone.
    pub fn kill_now(&self) {
        let st = self.state.lock();
        if !st.exited {
            process::signal(self.pid, Signal::SIGKILL);
        }
        drop(st);
        self.request_kill(KillReason::Shutdown);
    }

    /// The reaper's check: kills the environment if it is idle and past its
    /// maximum lifetime or its idle lifetime, or, with probability
    /// `random_probability`, at random. `true` if it was doomed.
    pub fn reap(&self, now: Instant, random_probability: f64) -> bool {
        // Check and doom in one critical section: an invocation assigned in
        // between must not be killed as "idle".
        let doomed = {
            let mut st = self.state.lock();
            if !Self::available(&st) {
                return false;
            }
            let expired = |deadline: Option<Instant>| deadline.is_some_and(|at| now >= at);
            let reason = if expired(self.retire_at) {
                Some(KillReason::MaxLifetime)
            } else if expired(st.idle_deadline) {
                Some(KillReason::IdleExpired)
            } else if random_probability > 0.0 && rand::random::<f64>() < random_probability {
                Some(KillReason::RandomReclaim)
            } else {
                None
            };
            reason.is_some_and(|reason| self.doom(&mut st, reason))
        };
        if doomed {
            self.wake_supervisor();
        }
        doomed
    }

    /// Records the process's current peak memory (it only grows).
    fn sample_peak_memory(&self) {
        if let Some(mb) = process::peak_memory_mb(self.pid) {
            self.peak_memory_mb.fetch_max(mb, Ordering::Relaxed);
        }
    }

    /// The environment's peak memory so far, as last sampled (MiB).
    pub fn peak_memory_mb(&self) -> Option<u64> {
        Some(self.peak_memory_mb.load(Ordering::Relaxed)).filter(|&mb| mb > 0)
    }

    /// Resolves once the supervisor has reaped the process.
    pub async fn wait_exit(&self) {
        let mut rx = self.exited.subscribe();
        let _ = rx.wait_for(|exited| *exited).await;
    }

    /// Resolves when a kill was requested.
    pub async fn kill_requested(&self) {
        self.kill.notified().await;
    }

    /// Called by the supervisor once the process has been reaped: fails the
    /// pending invocation (if any), leaves the pool and wakes waiters.
    pub fn on_exit(&self, status: &str) {
        let (current, reason) = {
            let mut st = self.state.lock();
            st.exited = true;
            st.frozen = false;
            st.parked = None;
            (st.current.take(), st.doomed)
        };
        if let Some(current) = current {
            let id = current.event.request_id.clone();
            current.finish(Completion::exited(
                &id,
                status,
                reason.map(KillReason::explain),
            ));
        }
        if let Some(function) = self.function.upgrade() {
            function.remove(self.id);
            function.freed.notify_waiters();
        }
        self.exited.send_replace(true);
    }

    /// Snapshot for listings; `None` once it is dead or being killed.
    pub fn info(&self) -> Option<EnvironmentInfo> {
        let st = self.state.lock();
        if st.exited || st.doomed.is_some() {
            return None;
        }
        let state = if st.init_duration.is_none() {
            EnvironmentState::Starting
        } else if st.current.is_some() {
            EnvironmentState::Busy
        } else {
            EnvironmentState::Idle { frozen: st.frozen }
        };
        Some(EnvironmentInfo {
            id: self.id,
            function: self.function_name.clone(),
            pid: self.pid,
            runtime_api: self.runtime_api,
            state,
            invocations: st.invocations,
            created_at: self.created_at,
        })
    }
}
