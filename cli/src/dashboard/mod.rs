//! `infinicache dashboard`: a live view of a proxy in the terminal.
//!
//! It polls the proxy's admin API every `--interval` and redraws: the
//! function pool as a grid of cells coloured by node state (and the elastic
//! window's buckets with their tier), throughput (requests and bytes per
//! second from counter deltas), latency percentiles per command (from the
//! histograms), memory used against capacity, invocations, and what they
//! cost so far.
//!
//! * [`client`]: `GET /status` and `/metrics` over HTTP;
//! * [`status`] and [`prometheus`]: reading the two answers;
//! * [`state`]: what is shown, as plain data ([`DashboardState`]);
//! * [`view`]: drawing a state, a pure function onto a ratatui frame, so
//!   tests render it to a test backend.
//!
//! Polling runs in its own task: a slow or unreachable proxy never keeps a
//! key press waiting. The terminal is restored on every way out: quitting
//! (`q`, Esc, Ctrl-C), an error, or a panic.

pub mod client;
pub mod prometheus;
pub mod state;
pub mod status;
pub mod view;

use std::time::{Duration, Instant};

use crossterm::event::{Event, EventStream, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use futures::StreamExt;
use ratatui::DefaultTerminal;
use thiserror::Error;
use tokio::sync::watch;

pub use client::{AdminClient, FetchError};
pub use state::DashboardState;

use prometheus::Samples;

/// `infinicache dashboard` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct DashboardArgs {
    /// The proxy's admin API (its `admin=` address).
    #[arg(long, env = "INFINICACHE_ADMIN", default_value = "127.0.0.1:6377")]
    pub admin: String,
    /// How often to poll, e.g. 500ms or 2s.
    #[arg(long, default_value = "1s", value_parser = positive_duration)]
    pub interval: Duration,
}

fn positive_duration(text: &str) -> Result<Duration, String> {
    match humantime::parse_duration(text) {
        Ok(duration) if !duration.is_zero() => Ok(duration),
        Ok(_) => Err("must be positive".into()),
        Err(err) => Err(err.to_string()),
    }
}

/// The dashboard could not run.
#[derive(Debug, Error)]
pub enum DashboardError {
    #[error("terminal: {0}")]
    Terminal(#[from] std::io::Error),
}

/// Runs the dashboard until the user quits.
pub async fn run(args: DashboardArgs) -> Result<(), DashboardError> {
    // A poll may take up to an interval (at least two seconds) before it
    // counts as failed.
    let timeout = args.interval.max(Duration::from_secs(2));
    let mut poller = Poller::new(AdminClient::new(args.admin.clone(), timeout));
    let waiting = DashboardState {
        source: args.admin,
        ..DashboardState::default()
    };
    let (states, updates) = watch::channel(waiting);
    let polling = tokio::spawn(async move {
        let mut ticks = tokio::time::interval(args.interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let next = match poller.poll().await {
                Ok(state) => state,
                // Keep showing the last state, with the reason it is stale.
                Err(err) => DashboardState {
                    error: Some(err.to_string()),
                    ..states.borrow().clone()
                },
            };
            if states.send(next).is_err() {
                return;
            }
        }
    });
    // (`try_init` also restores the terminal on a panic.)
    let result = match ratatui::try_init() {
        Ok(mut terminal) => event_loop(&mut terminal, updates).await,
        Err(err) => Err(err.into()),
    };
    // Also after a failed start, which may have left raw mode on.
    ratatui::restore();
    polling.abort();
    result
}

/// Redraws on every new state and every terminal event (a resize) until a
/// quit key.
async fn event_loop(
    terminal: &mut DefaultTerminal,
    mut updates: watch::Receiver<DashboardState>,
) -> Result<(), DashboardError> {
    let mut events = EventStream::new();
    loop {
        let state = updates.borrow_and_update().clone();
        terminal.draw(|frame| view::render(frame, &state))?;
        tokio::select! {
            changed = updates.changed() => {
                if changed.is_err() {
                    return Ok(());
                }
            }
            event = events.next() => match event {
                Some(Ok(Event::Key(key))) if is_quit(&key) => return Ok(()),
                Some(Ok(_)) => {}
                Some(Err(err)) => return Err(err.into()),
                None => return Ok(()),
            },
        }
    }
}

/// `q`, Esc, or Ctrl-C (a key like any other in raw mode).
fn is_quit(key: &KeyEvent) -> bool {
    key.kind == KeyEventKind::Press
        && match key.code {
            KeyCode::Char('q') | KeyCode::Esc => true,
            KeyCode::Char('c') => key.modifiers.contains(KeyModifiers::CONTROL),
            _ => false,
        }
}

/// Polls one proxy, keeping the previous metrics for rates.
#[derive(Debug)]
pub struct Poller {
    client: AdminClient,
    previous: Option<(Instant, Samples)>,
}

impl Poller {
    pub fn new(client: AdminClient) -> Self {
        Poller {
            client,
            previous: None,
        }
    }

    /// Fetches `/status` and `/metrics` and builds the state they describe,
    /// with rates since the previous successful poll.
    pub async fn poll(&mut self) -> Result<DashboardState, FetchError> {
        let status = self.client.status().await?;
        let metrics = self.client.metrics().await?;
        let now = Instant::now();
        let before = self
            .previous
            .as_ref()
            .map(|(at, samples)| (samples, now.duration_since(*at)));
        let state =
            DashboardState::from_status(self.client.addr(), &status).with_metrics(&metrics, before);
        self.previous = Some((now, metrics));
        Ok(state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quit_keys() {
        let key = |code, modifiers| KeyEvent::new(code, modifiers);
        assert!(is_quit(&key(KeyCode::Char('q'), KeyModifiers::NONE)));
        assert!(is_quit(&key(KeyCode::Esc, KeyModifiers::NONE)));
        assert!(is_quit(&key(KeyCode::Char('c'), KeyModifiers::CONTROL)));
        assert!(!is_quit(&key(KeyCode::Char('c'), KeyModifiers::NONE)));
        assert!(!is_quit(&key(KeyCode::Char('x'), KeyModifiers::NONE)));
    }

    #[test]
    fn intervals_must_be_positive() {
        assert_eq!(positive_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(positive_duration("0s").is_err());
        assert!(positive_duration("soon").is_err());
    }
}
