//! A deployed function and its pool of execution environments: which
//! environment serves an invocation, and when a new one is started.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::Notify;

use super::config::FunctionConfig;
use super::environment::{Current, Environment, EnvironmentInfo, KillReason, Ticket};
use super::ids;
use super::invocation::Event;
use super::reclaim::Reclaimer;
use super::{process, runtime_api};

/// Outcome of trying to place an invocation.
#[derive(Debug)]
pub(crate) enum Acquired {
    /// Assigned to an environment (warm, or a new one for a cold start).
    Ready(Ticket),
    /// Every environment is busy and the cap is reached.
    AtCapacity,
    /// A new environment was needed but its process could not be started.
    SpawnFailed(std::io::Error),
}

#[derive(Debug, Default)]
struct Pool {
    live: Vec<Arc<Environment>>,
    /// Environments being spawned; they count against the cap.
    starting: usize,
}

/// A function and its environments.
#[derive(Debug)]
pub(crate) struct Function {
    pub config: FunctionConfig,
    pub arn: String,
    pub freeze: bool,
    /// The platform's reclaim policy and counters.
    pub reclaimer: Arc<Reclaimer>,
    max_environments: usize,
    /// Shared by all functions so environment ids are platform-unique.
    env_ids: Arc<AtomicU64>,
    pool: Mutex<Pool>,
    /// Signalled whenever an environment becomes idle or goes away, for
    /// asynchronous invocations queued at the cap.
    pub freed: Notify,
    me: Weak<Function>,
}

impl Function {
    pub fn new(
        config: FunctionConfig,
        freeze: bool,
        max_environments: usize,
        env_ids: Arc<AtomicU64>,
        reclaimer: Arc<Reclaimer>,
    ) -> Arc<Self> {
        Arc::new_cyclic(|me| Self {
            arn: ids::function_arn(&config.name),
            config,
            freeze,
            reclaimer,
            max_environments,
            env_ids,
            pool: Mutex::new(Pool::default()),
            freed: Notify::new(),
            me: me.clone(),
        })
    }

    /// Places an invocation: on the most recently used idle environment
    /// (warmest caches, and it lets the others age out), else on a new
    /// environment if under the cap. A busy environment is never shared —
    /// which is what lets a second invoke of a busy function start a backup
    /// instance.
    pub fn acquire(&self, event: &Arc<Event>) -> Acquired {
        {
            let mut pool = self.pool.lock();
            let mut idle: Vec<_> = pool
                .live
                .iter()
                .filter_map(|env| env.idle_since().map(|t| (t, env)))
                .collect();
            idle.sort_by_key(|(t, _)| std::cmp::Reverse(*t));
            for (_, env) in idle {
                let (current, receivers) = Current::new(Arc::clone(event));
                if env.try_assign(current).is_ok() {
                    return Acquired::Ready(receivers.into_ticket(Arc::clone(env), false));
                }
            }
            if pool.live.len() + pool.starting >= self.max_environments {
                return Acquired::AtCapacity;
            }
            pool.starting += 1;
        }
        let launched = self.launch(event);
        let mut pool = self.pool.lock();
        pool.starting -= 1;
        match launched {
            Ok((ticket, child, listener)) => {
                pool.live.push(Arc::clone(&ticket.env));
                drop(pool);
                self.reclaimer.count_cold_start();
                let env = Arc::clone(&ticket.env);
                let server = tokio::spawn(runtime_api::serve(listener, Arc::clone(&env)));
                tokio::spawn(process::supervise(env, child, server));
                Acquired::Ready(ticket)
            }
            Err(err) => Acquired::SpawnFailed(err),
        }
    }

    /// Binds a Runtime API listener and spawns a process for a new
    /// environment that starts out holding `event`.
    fn launch(
        &self,
        event: &Arc<Event>,
    ) -> std::io::Result<(Ticket, tokio::process::Child, tokio::net::TcpListener)> {
        let me = self
            .me
            .upgrade()
            .ok_or_else(|| std::io::Error::other("function is being torn down"))?;
        let listener = process::bind_runtime_listener()?;
        let id = self.env_ids.fetch_add(1, Ordering::Relaxed);
        let runtime_api = listener.local_addr()?;
        let child = process::spawn(&self.config, id, runtime_api)?;
        let pid = child
            .id()
            .ok_or_else(|| std::io::Error::other("child exited before it got a pid"))?;
        let (current, receivers) = Current::new(Arc::clone(event));
        let env = Arc::new(Environment::new(id, pid, runtime_api, &me, current));
        tracing::debug!(function = %self.config.name, env = id, pid, "cold start");
        Ok((receivers.into_ticket(env, true), child, listener))
    }

    /// Drops a dead environment from the pool.
    pub fn remove(&self, id: u64) {
        self.pool.lock().live.retain(|env| env.id != id);
    }

    fn live(&self) -> Vec<Arc<Environment>> {
        self.pool.lock().live.clone()
    }

    pub fn find(&self, id: u64) -> Option<Arc<Environment>> {
        self.pool.lock().live.iter().find(|e| e.id == id).cloned()
    }

    pub fn environments(&self) -> Vec<EnvironmentInfo> {
        self.live().iter().filter_map(|env| env.info()).collect()
    }

    /// Kills every environment and waits until they are reaped; returns how
    /// many were killed by this call.
    pub async fn reclaim_all(&self, reason: KillReason) -> usize {
        let envs = self.live();
        let killed: Vec<_> = envs
            .into_iter()
            .filter(|env| env.request_kill(reason))
            .collect();
        for env in &killed {
            wait_reaped(env).await;
        }
        killed.len()
    }

    /// One reaper pass over the environments (see [`Environment::reap`]);
    /// returns how many were reclaimed.
    pub fn reap(&self, now: Instant, random_probability: f64) -> usize {
        self.live()
            .iter()
            .filter(|env| env.reap(now, random_probability))
            .count()
    }

    /// Synchronous best-effort kill of every process (for `Drop`).
    pub fn kill_all_now(&self) {
        for env in self.live() {
            env.kill_now();
        }
    }
}

/// Waits for an environment's process to be reaped, bounded so a wedged
/// supervisor cannot hang an admin call forever.
pub(crate) async fn wait_reaped(env: &Environment) {
    if tokio::time::timeout(Duration::from_secs(10), env.wait_exit())
        .await
        .is_err()
    {
        tracing::warn!(
            env = env.id,
            pid = env.pid,
            "environment not reaped within 10 s"
        );
    }
}
