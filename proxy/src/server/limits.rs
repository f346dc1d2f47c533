//! What one client may make the proxy hold, and for how long (and how long
//! a shutdown waits for clients).
//!
//! The proxy is shared: a client that pipelines without bound, uploads
//! faster than the nodes absorb, stops reading its replies or just sits on a
//! connection must not take memory or time from the others. Each limit
//! refuses the request that would cross it with a clear error (or, for a
//! client that stopped reading, disconnects it) and leaves every other
//! connection alone.

use std::sync::Arc;
use std::time::Duration;

use infinicache::protocol::{ErrorCode, ErrorReply, Key};
use serde::Deserialize;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError};

/// The `[limits]` settings (both frontends).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClientLimits {
    /// Longest key accepted (bytes); the protocol's own limit is 65 535.
    pub max_key_len: usize,
    /// Operations one native connection may have in flight (a PUT counts
    /// once, however many chunks it sends); more are refused with `Busy`
    /// until some finish. (A RESP connection runs its requests one at a
    /// time, as Redis does.)
    pub max_requests_in_flight: usize,
    /// Bytes of request data (PUT chunks, SET values) all clients together
    /// may have in the proxy at once.
    pub max_buffered_bytes: u64,
    /// How long a request may wait for buffer room before it is refused
    /// with `Busy`.
    #[serde(with = "humantime_serde")]
    pub buffer_wait: Duration,
    /// A connection that sends nothing for this long while it has nothing
    /// in flight is closed (0: never).
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// A client that takes no reply bytes for this long is disconnected, so
    /// replies it does not read cannot pile up in the proxy.
    #[serde(with = "humantime_serde")]
    pub write_timeout: Duration,
    /// At shutdown, how long requests in flight may take to finish (and,
    /// after them, the write-back buffer to reach the object store).
    #[serde(with = "humantime_serde")]
    pub drain_timeout: Duration,
}

impl Default for ClientLimits {
    fn default() -> Self {
        ClientLimits {
            max_key_len: usize::from(u16::MAX),
            max_requests_in_flight: 1024,
            max_buffered_bytes: 2 * 1024 * 1024 * 1024,
            buffer_wait: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(600),
            write_timeout: Duration::from_secs(30),
            drain_timeout: Duration::from_secs(30),
        }
    }
}

impl ClientLimits {
    /// Why these settings are unusable, if they are.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_key_len == 0 || self.max_key_len > usize::from(u16::MAX) {
            return Err("max_key_len must be between 1 and 65535".into());
        }
        if self.max_requests_in_flight == 0 {
            return Err("max_requests_in_flight must be at least 1".into());
        }
        if self.max_buffered_bytes < 1024 * 1024 {
            return Err("max_buffered_bytes must be at least 1 MiB".into());
        }
        if self.write_timeout.is_zero() {
            return Err("write_timeout must be greater than zero".into());
        }
        Ok(())
    }

    /// `Ok` if `key` is within the key length limit.
    pub fn check_key(&self, key: &Key) -> Result<(), ErrorReply> {
        let len = key.as_bytes().len();
        if len > self.max_key_len {
            return Err(ErrorReply::new(
                ErrorCode::InvalidArgument,
                format!(
                    "key of {len} bytes exceeds the limit of {} bytes",
                    self.max_key_len
                ),
            ));
        }
        Ok(())
    }

    /// The idle timeout, if connections have one.
    pub fn idle(&self) -> Option<Duration> {
        (!self.idle_timeout.is_zero()).then_some(self.idle_timeout)
    }
}

/// The proxy-wide budget of buffered request bytes.
///
/// A request takes its bytes from the budget when it arrives and gives them
/// back when it is done with them (the permit is dropped), so the proxy's
/// memory for request data stays under `max_buffered_bytes` however many
/// clients upload at once. Permits count KiB so that budgets beyond 4 GiB fit
/// the semaphore's `u32` requests.
#[derive(Debug, Clone)]
pub struct BufferBudget {
    permits: Arc<Semaphore>,
    total_kib: u32,
    wait: Duration,
}

/// A share of the [`BufferBudget`], given back when dropped.
#[derive(Debug)]
pub struct BufferPermit(#[allow(dead_code)] Option<OwnedSemaphorePermit>);

impl BufferBudget {
    pub fn new(limits: &ClientLimits) -> Self {
        let total_kib = u32::try_from(limits.max_buffered_bytes / 1024).unwrap_or(u32::MAX);
        BufferBudget {
            permits: Arc::new(Semaphore::new(total_kib as usize)),
            total_kib,
            wait: limits.buffer_wait,
        }
    }

    /// Takes room for `bytes`, waiting up to the configured time for other
    /// requests to give some back; `Busy` if none comes. A request larger
    /// than the whole budget can never fit and is refused at once.
    pub async fn reserve(&self, bytes: usize) -> Result<BufferPermit, ErrorReply> {
        let kib = u32::try_from(bytes.div_ceil(1024)).unwrap_or(u32::MAX);
        if kib == 0 {
            return Ok(BufferPermit(None));
        }
        if kib > self.total_kib {
            return Err(self.busy(bytes));
        }
        match self.permits.clone().try_acquire_many_owned(kib) {
            Ok(permit) => return Ok(BufferPermit(Some(permit))),
            Err(TryAcquireError::Closed) => return Err(self.busy(bytes)),
            Err(TryAcquireError::NoPermits) => {}
        }
        match tokio::time::timeout(self.wait, self.permits.clone().acquire_many_owned(kib)).await {
            Ok(Ok(permit)) => Ok(BufferPermit(Some(permit))),
            _ => Err(self.busy(bytes)),
        }
    }

    /// Bytes of the budget in use now.
    pub fn in_use(&self) -> u64 {
        u64::from(self.total_kib).saturating_sub(self.permits.available_permits() as u64) * 1024
    }

    fn busy(&self, bytes: usize) -> ErrorReply {
        ErrorReply::new(
            ErrorCode::Busy,
            format!(
                "the proxy's buffer memory is full ({} KiB for client data): {bytes} bytes refused, retry later",
                self.total_kib
            ),
        )
    }
}

/// The requests one native connection has in flight.
#[derive(Debug, Clone)]
pub struct InFlight {
    permits: Arc<Semaphore>,
    max: usize,
}

/// One request in flight; ends when dropped.
#[derive(Debug)]
pub struct InFlightPermit(#[allow(dead_code)] OwnedSemaphorePermit);

impl InFlight {
    pub fn new(max: usize) -> Self {
        InFlight {
            permits: Arc::new(Semaphore::new(max)),
            max,
        }
    }

    /// Counts one more request, or `Busy` if the connection is at its limit.
    pub fn begin(&self) -> Result<InFlightPermit, ErrorReply> {
        self.permits
            .clone()
            .try_acquire_owned()
            .map(InFlightPermit)
            .map_err(|_| {
                ErrorReply::new(
                    ErrorCode::Busy,
                    format!(
                        "too many requests in flight on this connection (limit {}): wait for replies before sending more",
                        self.max
                    ),
                )
            })
    }

    /// Whether nothing is in flight.
    pub fn is_idle(&self) -> bool {
        self.permits.available_permits() == self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> ClientLimits {
        ClientLimits {
            max_buffered_bytes: 4 * 1024 * 1024,
            buffer_wait: Duration::from_millis(20),
            ..ClientLimits::default()
        }
    }

    #[test]
    fn keys_over_the_limit_are_refused() {
        let limits = ClientLimits {
            max_key_len: 4,
            ..ClientLimits::default()
        };
        assert!(limits.check_key(&Key::new("abcd").expect("key")).is_ok());
        let err = limits
            .check_key(&Key::new("abcde").expect("key"))
            .expect_err("too long");
        assert_eq!(err.code, ErrorCode::InvalidArgument);
        assert!(err.message.contains("5 bytes exceeds the limit of 4"));
    }

    #[test]
    fn settings_are_validated() {
        assert!(ClientLimits::default().validate().is_ok());
        for bad in [
            ClientLimits {
                max_key_len: 70_000,
                ..ClientLimits::default()
            },
            ClientLimits {
                max_requests_in_flight: 0,
                ..ClientLimits::default()
            },
            ClientLimits {
                max_buffered_bytes: 10,
                ..ClientLimits::default()
            },
            ClientLimits {
                write_timeout: Duration::ZERO,
                ..ClientLimits::default()
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }

    #[tokio::test]
    async fn the_budget_refuses_what_does_not_fit_and_recovers() {
        let budget = BufferBudget::new(&limits());
        let a = budget.reserve(3 * 1024 * 1024).await.expect("fits");
        assert_eq!(budget.in_use(), 3 * 1024 * 1024);
        let err = budget.reserve(2 * 1024 * 1024).await.expect_err("full");
        assert_eq!(err.code, ErrorCode::Busy);
        assert!(budget.reserve(8 * 1024 * 1024).await.is_err(), "never fits");
        drop(a);
        assert_eq!(budget.in_use(), 0);
        let _b = budget.reserve(2 * 1024 * 1024).await.expect("room again");
        assert!(budget.reserve(0).await.is_ok());
    }

    #[tokio::test]
    async fn a_waiting_request_gets_room_given_back_in_time() {
        let budget = BufferBudget::new(&ClientLimits {
            buffer_wait: Duration::from_secs(30),
            ..limits()
        });
        let held = budget.reserve(4 * 1024 * 1024).await.expect("all of it");
        let waiter = {
            let budget = budget.clone();
            tokio::spawn(async move { budget.reserve(1024 * 1024).await.is_ok() })
        };
        tokio::task::yield_now().await;
        drop(held);
        assert!(waiter.await.expect("waiter"));
    }

    #[test]
    fn in_flight_requests_are_counted_per_connection() {
        let in_flight = InFlight::new(2);
        assert!(in_flight.is_idle());
        let a = in_flight.begin().expect("first");
        let _b = in_flight.begin().expect("second");
        assert_eq!(in_flight.begin().expect_err("third").code, ErrorCode::Busy);
        drop(a);
        assert!(in_flight.begin().is_ok());
        assert!(!in_flight.is_idle());
    }
}
