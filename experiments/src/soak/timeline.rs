//! Once a second while the clients run: a sample of the running totals and
//! of the proxy's resident memory (kept for `timeline.csv` and the peak),
//! and the progress line on stderr.

use std::io::{IsTerminal as _, Write as _};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::cache::process_memory;
use super::options::Op;
use super::workload::Context;

/// Running totals at one moment.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Sample {
    /// Seconds since the clients started.
    pub seconds: f64,
    pub puts: u64,
    pub gets: u64,
    pub deletes: u64,
    pub errors: u64,
    /// Wrong answers of every class.
    pub wrong: u64,
    /// Value bytes written and read.
    pub bytes: u64,
    /// The proxy's resident memory, when known.
    pub proxy_rss_bytes: Option<u64>,
}

impl Sample {
    pub fn ops(&self) -> u64 {
        self.puts + self.gets + self.deletes
    }
}

/// How progress is shown on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    Off,
    /// One line, rewritten every second (stderr is a terminal).
    Terminal,
    /// A line every so often (stderr is a file or a pipe: CI logs).
    Lines(Duration),
}

impl Progress {
    /// A live line on a terminal, a line every 30 s otherwise.
    pub fn auto() -> Progress {
        if std::io::stderr().is_terminal() {
            Progress::Terminal
        } else {
            Progress::Lines(Duration::from_secs(30))
        }
    }
}

/// The samples of a run and the peak resident memory among them.
#[derive(Debug, Clone, Default)]
pub struct Timeline {
    pub samples: Vec<Sample>,
    pub peak_rss_bytes: Option<u64>,
}

/// A running sampler; [`Sampler::stop`] ends it.
pub struct Sampler {
    stop: Arc<Notify>,
    task: JoinHandle<Timeline>,
}

/// Time between samples.
const EVERY: Duration = Duration::from_secs(1);

impl Sampler {
    /// Samples `ctx`'s totals and `pid`'s memory until stopped.
    pub fn start(
        ctx: Arc<Context>,
        pid: Option<u32>,
        planned: Duration,
        progress: Progress,
    ) -> Sampler {
        let stop = Arc::new(Notify::new());
        let task = tokio::spawn({
            let stop = stop.clone();
            async move {
                let mut timeline = Timeline::default();
                let mut ticks = tokio::time::interval(EVERY);
                ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                let mut last_line = 0.0_f64;
                loop {
                    tokio::select! {
                        biased;
                        () = stop.notified() => break,
                        _ = ticks.tick() => {}
                    }
                    let sample = take(&ctx, pid);
                    if let Some(rss) = sample.proxy_rss_bytes {
                        timeline.peak_rss_bytes = timeline.peak_rss_bytes.max(Some(rss));
                    }
                    let line = progress_line(&sample, timeline.samples.last(), planned);
                    match progress {
                        Progress::Off => {}
                        Progress::Terminal => {
                            let mut err = std::io::stderr().lock();
                            let _ = write!(err, "\r\x1b[2K{line}");
                            let _ = err.flush();
                        }
                        Progress::Lines(every) => {
                            if sample.seconds - last_line >= every.as_secs_f64() {
                                last_line = sample.seconds;
                                eprintln!("{line}");
                            }
                        }
                    }
                    timeline.samples.push(sample);
                }
                if progress == Progress::Terminal {
                    eprintln!();
                }
                timeline
            }
        });
        Sampler { stop, task }
    }

    /// Stops sampling and returns the timeline.
    pub async fn stop(self) -> Timeline {
        self.stop.notify_one();
        self.task.await.unwrap_or_default()
    }
}

fn take(ctx: &Context, pid: Option<u32>) -> Sample {
    let live = &ctx.live;
    let ops = |op: Op| live.ops[op.index()].load(Ordering::Relaxed);
    Sample {
        seconds: ctx.start.elapsed().as_secs_f64(),
        puts: ops(Op::Put),
        gets: ops(Op::Get),
        deletes: ops(Op::Delete),
        errors: live.errors.load(Ordering::Relaxed),
        wrong: live.wrong.load(Ordering::Relaxed),
        bytes: live.bytes.load(Ordering::Relaxed),
        proxy_rss_bytes: pid.and_then(process_memory).map(|m| m.rss),
    }
}

/// `soak 1:23/5:00  ops 12345 (1234/s)  41.2 MB/s  errors 0  wrong 0  proxy 312 MB`.
fn progress_line(now: &Sample, before: Option<&Sample>, planned: Duration) -> String {
    let (ops_rate, mb_rate) = match before {
        Some(before) if now.seconds > before.seconds => {
            let dt = now.seconds - before.seconds;
            (
                now.ops().saturating_sub(before.ops()) as f64 / dt,
                now.bytes.saturating_sub(before.bytes) as f64 / 1e6 / dt,
            )
        }
        _ => (0.0, 0.0),
    };
    let clock = |secs: f64| {
        let secs = secs.max(0.0) as u64;
        format!("{}:{:02}", secs / 60, secs % 60)
    };
    format!(
        "soak {}/{}  ops {} ({ops_rate:.0}/s)  {mb_rate:.1} MB/s  errors {}  wrong {}  proxy {}",
        clock(now.seconds),
        clock(planned.as_secs_f64()),
        now.ops(),
        now.errors,
        now.wrong,
        now.proxy_rss_bytes
            .map_or("-".into(), |rss| format!("{:.0} MB", rss as f64 / 1e6)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_progress_line_shows_rates_since_the_last_sample() {
        let before = Sample {
            seconds: 10.0,
            puts: 100,
            bytes: 0,
            ..Sample::default()
        };
        let now = Sample {
            seconds: 12.0,
            puts: 300,
            gets: 100,
            bytes: 8_000_000,
            proxy_rss_bytes: Some(250_000_000),
            ..Sample::default()
        };
        let line = progress_line(&now, Some(&before), Duration::from_secs(300));
        assert_eq!(
            line,
            "soak 0:12/5:00  ops 400 (150/s)  4.0 MB/s  errors 0  wrong 0  proxy 250 MB"
        );
    }
}
