//! Runs one invocation end to end: place it on an environment, wait for the
//! runtime to pick it up and answer, enforce the timeout, and bill it.
//!
//! This always runs in its own task, detached from the HTTP request that
//! caused it, so that a caller hanging up cannot cancel the timeout or skip
//! the billing record.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use super::Shared;
use super::billing::{BillingRecord, InvocationOutcome, billed_duration, millis_ceil, millis_f64};
use super::environment::{Environment, Ticket};
use super::function::{Acquired, Function};
use super::ids;
use super::invocation::{Completion, Event, Started};

/// How long a runtime may take to pick up its event (AWS's init-phase limit).
const INIT_TIMEOUT: Duration = Duration::from_secs(10);
/// Re-check interval for asynchronous invocations queued at the cap, in case
/// a wake-up was missed.
const QUEUE_RECHECK: Duration = Duration::from_millis(100);

/// Why an invocation was not run at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rejected {
    /// The function is at its environment cap (synchronous invokes only).
    Throttled,
    /// The platform is shut down (or dropped). Checked here because
    /// keep-alive connections can outlive the listener task.
    ShutDown,
}

/// A finished invocation.
#[derive(Debug, Clone)]
pub(crate) struct Finished {
    pub completion: Completion,
    pub record: BillingRecord,
}

/// Runs `event` on `function`. With `queue` (asynchronous invocations) it
/// waits for capacity instead of failing with [`Rejected::Throttled`]; it
/// then gives up only if the platform shuts down.
pub(crate) async fn run(
    shared: Arc<Shared>,
    function: Arc<Function>,
    event: Arc<Event>,
    queue: bool,
) -> Result<Finished, Rejected> {
    let dispatched = Instant::now();
    let mut shutdown = shared.shutdown.subscribe();
    let ticket = loop {
        if *shutdown.borrow_and_update() {
            return Err(Rejected::ShutDown);
        }
        let freed = function.freed.notified();
        tokio::pin!(freed);
        freed.as_mut().enable();
        match function.acquire(&event) {
            Acquired::Ready(ticket) => break ticket,
            Acquired::SpawnFailed(err) => {
                let completion = Completion::failure(
                    InvocationOutcome::Crashed,
                    "Runtime.InvalidEntrypoint",
                    &format!(
                        "RequestId: {} Error: cannot start runtime: {err}",
                        event.request_id
                    ),
                );
                return Ok(finish(
                    &shared, &function, &event, None, None, false, dispatched, completion,
                ));
            }
            Acquired::AtCapacity if !queue => return Err(Rejected::Throttled),
            Acquired::AtCapacity => {
                tokio::select! {
                    () = &mut freed => {}
                    () = tokio::time::sleep(QUEUE_RECHECK) => {}
                    _ = shutdown.changed() => {}
                }
            }
        }
    };
    Ok(wait(shared, function, event, ticket, dispatched).await)
}

/// Waits for the runtime to take the event, then for its answer.
async fn wait(
    shared: Arc<Shared>,
    function: Arc<Function>,
    event: Arc<Event>,
    mut ticket: Ticket,
    dispatched: Instant,
) -> Finished {
    let env_id = ticket.env.id;
    let env = Arc::clone(&ticket.env);
    let cold = ticket.cold;
    let fin = |started: Option<Started>, completion: Completion| {
        let since = started.map_or(dispatched, |s| s.at);
        finish(
            &shared,
            &function,
            &event,
            started,
            Some(&env),
            cold,
            since,
            completion,
        )
    };

    let started = match tokio::time::timeout(INIT_TIMEOUT, &mut ticket.started).await {
        Ok(Ok(started)) => started,
        // The environment died before the runtime took the event; it has
        // already sent the reason.
        Ok(Err(_)) => {
            let completion = ticket.done.await.unwrap_or_else(|_| {
                Completion::exited(&event.request_id, "unknown", Some("environment lost"))
            });
            return fin(None, completion);
        }
        Err(_) => {
            if ticket.env.time_out(&event.request_id) {
                return fin(None, Completion::timed_out(&event.request_id, INIT_TIMEOUT));
            }
            // Raced with the delivery or a failure: carry on below.
            match ticket.started.await {
                Ok(started) => started,
                Err(_) => {
                    let completion = ticket
                        .done
                        .await
                        .unwrap_or_else(|_| Completion::timed_out(&event.request_id, INIT_TIMEOUT));
                    return fin(None, completion);
                }
            }
        }
    };

    let timeout = function.config.timeout;
    let remaining = timeout.saturating_sub(started.at.elapsed());
    let completion = match tokio::time::timeout(remaining, &mut ticket.done).await {
        Ok(Ok(completion)) => completion,
        Ok(Err(_)) => Completion::exited(&event.request_id, "unknown", Some("environment lost")),
        Err(_) => {
            if ticket.env.time_out(&event.request_id) {
                tracing::debug!(env = env_id, request_id = %event.request_id, "invocation timed out");
                Completion::timed_out(&event.request_id, timeout)
            } else {
                // The answer arrived just as the timer fired.
                ticket.done.await.unwrap_or_else(|_| {
                    Completion::exited(&event.request_id, "unknown", Some("environment lost"))
                })
            }
        }
    };
    fin(Some(started), completion)
}

/// Bills the invocation and packages the result. `env` is the environment
/// that served it (`None` if none could be started).
#[allow(clippy::too_many_arguments)]
fn finish(
    shared: &Shared,
    function: &Function,
    event: &Event,
    started: Option<Started>,
    env: Option<&Environment>,
    cold_start: bool,
    since: Instant,
    completion: Completion,
) -> Finished {
    let duration = since.elapsed();
    let start_wall = started.map_or_else(
        || {
            SystemTime::now()
                .checked_sub(duration)
                .unwrap_or(SystemTime::UNIX_EPOCH)
        },
        |s| s.wall,
    );
    let billed = billed_duration(duration, shared.config.billing_tick);
    let record = BillingRecord {
        function: function.config.name.clone(),
        environment_id: env.map_or(0, |e| e.id),
        request_id: event.request_id.clone(),
        start_unix_ms: ids::unix_ms(start_wall),
        duration,
        duration_ms: millis_f64(duration),
        billed_duration: billed,
        billed_duration_ms: millis_ceil(billed),
        memory_mb: function.config.memory_mb,
        max_memory_used_mb: env.and_then(Environment::peak_memory_mb),
        cold_start,
        init_duration: started.and_then(|s| s.init_duration),
        outcome: completion.outcome,
    };
    shared.ledger.push(record.clone());
    Finished { completion, record }
}
