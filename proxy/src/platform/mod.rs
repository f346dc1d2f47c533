//! A local Lambda platform: the AWS Lambda Invoke API and Runtime API on
//! loopback, with each execution environment a child process.
//!
//! InfiniCache's storage nodes are Lambda functions, and the system depends
//! on how AWS runs them: one invocation at a time per environment; a warm
//! environment keeps its process memory (the cached chunks) between
//! invocations but is frozen, so nothing runs in between; an invoke of a
//! function whose environments are all busy starts a new environment (how a
//! backup node is started); idle environments are reclaimed, losing their
//! memory; every invocation is billed by duration and memory. This module
//! reproduces those semantics so the proxy can talk to it through
//! aws-sdk-lambda, and node binaries built on `lambda_runtime` run unchanged.
//!
//! Layout: [`config`] (settings), [`invoke_api`] / [`runtime_api`] /
//! [`admin`] (HTTP surfaces), [`dispatch`] (one invocation end to end),
//! [`function`] (environment pool), [`environment`] (per-environment state
//! machine), [`process`] (child processes), [`reclaim`] (when environments
//! are reclaimed), [`billing`].

mod admin;
mod billing;
mod config;
mod dispatch;
mod encoding;
mod environment;
mod error;
mod function;
mod ids;
mod invocation;
mod invoke_api;
pub mod parsers;
mod process;
mod reclaim;
mod runtime_api;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Instant;

use axum::Router;
use axum::response::IntoResponse;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use admin::{FunctionInfo, Reclaimed};
pub use billing::{BillingRecord, InvocationOutcome};
pub use config::{FunctionConfig, PlatformConfig};
pub use environment::{EnvironmentInfo, EnvironmentState};
pub use error::PlatformError;
pub use reclaim::{
    LifetimeRange, ParseLifetimeError, PlatformStats, ReclaimCounts, ReclaimPolicy,
    ReclaimPolicyError,
};

use environment::KillReason;
use function::Function;
use reclaim::Reclaimer;

/// State shared by the HTTP handlers and invocation tasks.
#[derive(Debug)]
pub(crate) struct Shared {
    pub config: PlatformConfig,
    pub functions: HashMap<String, Arc<Function>>,
    pub ledger: billing::Ledger,
    /// The reclaim policy in force, and the counters of `GET /admin/stats`.
    pub reclaimer: Arc<Reclaimer>,
    /// Flips to `true` on shutdown; queued asynchronous invocations give up.
    pub shutdown: watch::Sender<bool>,
}

/// A running local Lambda platform. Dropping it kills every environment
/// process; [`LocalPlatform::shutdown`] does so and also waits for them.
#[derive(Debug)]
pub struct LocalPlatform {
    shared: Arc<Shared>,
    addr: SocketAddr,
    tasks: Vec<JoinHandle<()>>,
}

impl LocalPlatform {
    /// Validates the configuration, binds the Invoke/admin listener and
    /// starts serving. Environments are started lazily, by invocations.
    pub async fn start(
        config: PlatformConfig,
        functions: Vec<FunctionConfig>,
    ) -> Result<LocalPlatform, PlatformError> {
        config::validate(&config, &functions)?;
        let env_ids = Arc::new(AtomicU64::new(1));
        let reclaimer = Arc::new(Reclaimer::new(config.reclaim.clone()));
        let functions = functions
            .into_iter()
            .map(|f| {
                let function = Function::new(
                    f,
                    config.freeze,
                    config.max_environments_per_function,
                    Arc::clone(&env_ids),
                    Arc::clone(&reclaimer),
                );
                (function.config.name.clone(), function)
            })
            .collect();
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|source| PlatformError::Bind {
                addr: config.listen,
                source,
            })?;
        let addr = listener
            .local_addr()
            .map_err(|source| PlatformError::Bind {
                addr: config.listen,
                source,
            })?;
        let shared = Arc::new(Shared {
            config,
            functions,
            ledger: billing::Ledger::default(),
            reclaimer,
            shutdown: watch::channel(false).0,
        });

        let app = Router::new()
            .merge(invoke_api::routes())
            .nest("/admin", admin::routes())
            .fallback(|| async { error::ApiError::unknown_operation().into_response() })
            .with_state(Arc::clone(&shared));
        let mut tasks = vec![tokio::spawn(async move {
            if let Err(err) = axum::serve(listener, app).await {
                tracing::error!(%err, "Lambda platform listener failed");
            }
        })];
        if let Some(period) = shared.config.reclaim.reaper_period() {
            tasks.push(tokio::spawn(reap(Arc::clone(&shared), period)));
        }
        tracing::info!(%addr, "local Lambda platform listening");
        Ok(LocalPlatform {
            shared,
            addr,
            tasks,
        })
    }

    /// The bound Invoke/admin address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Endpoint URL for aws-sdk-lambda (`http://127.0.0.1:PORT`).
    pub fn endpoint_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// All billing records so far, in completion order.
    pub fn billing(&self) -> Vec<BillingRecord> {
        self.shared.ledger.snapshot()
    }

    /// Kills all environments of `function` (their memory is lost) and waits
    /// until they are reaped; returns how many were killed (0 for an
    /// unknown function). Counted as "admin" reclaims in [`Self::stats`].
    pub async fn reclaim(&self, function: &str) -> usize {
        match self.shared.functions.get(function) {
            Some(f) => f.reclaim_all(KillReason::Reclaimed).await,
            None => 0,
        }
    }

    /// The live environments of `function` (empty for an unknown function).
    pub fn environments(&self, function: &str) -> Vec<EnvironmentInfo> {
        self.shared
            .functions
            .get(function)
            .map(|f| f.environments())
            .unwrap_or_default()
    }

    /// All functions with their environments.
    pub fn functions(&self) -> Vec<FunctionInfo> {
        admin::function_infos(&self.shared)
    }

    /// Cold starts and reclaims so far (also `GET /admin/stats`).
    pub fn stats(&self) -> PlatformStats {
        self.shared.reclaimer.stats()
    }

    /// A reader of [`Self::stats`] that stays valid wherever the platform
    /// moves (the proxy's `/metrics` keeps one).
    pub fn stats_reader(&self) -> impl Fn() -> PlatformStats + Send + Sync + 'static {
        let reclaimer = Arc::clone(&self.shared.reclaimer);
        move || reclaimer.stats()
    }

    /// Stops the listeners and kills every environment, waiting until all
    /// processes are reaped.
    pub async fn shutdown(mut self) {
        self.shared.shutdown.send_replace(true);
        for task in self.tasks.drain(..) {
            task.abort();
        }
        for function in self.shared.functions.values() {
            function.reclaim_all(KillReason::Shutdown).await;
        }
    }
}

impl Drop for LocalPlatform {
    /// Never leave runtime processes behind: SIGKILL them synchronously
    /// (the supervisors reap them if the runtime is still running; the
    /// children's `kill_on_drop` covers a runtime that is going away).
    fn drop(&mut self) {
        self.shared.shutdown.send_replace(true);
        for task in self.tasks.drain(..) {
            task.abort();
        }
        for function in self.shared.functions.values() {
            function.kill_all_now();
        }
    }
}

/// Applies the reclaim policy every `period`: idle environments past their
/// idle or maximum lifetime are killed, and each idle environment is
/// reclaimed at random with the probability of a Poisson event in the time
/// since the previous pass (measured, since a loaded machine delays ticks).
async fn reap(shared: Arc<Shared>, period: std::time::Duration) {
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last = Instant::now();
    loop {
        ticker.tick().await;
        let now = Instant::now();
        let random = shared.config.reclaim.random_probability(now - last);
        last = now;
        for function in shared.functions.values() {
            let n = function.reap(now, random);
            if n > 0 {
                tracing::debug!(function = %function.config.name, n, "reclaimed environments");
            }
        }
    }
}
