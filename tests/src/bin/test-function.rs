//! A tiny Lambda function used as a fixture to test the local platform.
//!
//! Payload: `{"sleep_ms": u64, "fail": bool, "exit": bool, "hold_mb": u64}`
//! (all optional; `hold_mb` allocates, touches and keeps that much memory
//! for the rest of the process's life, raising its peak memory).
//! A background OS thread increments `TICKS` every 5 ms from process start,
//! so the tick gap between two invocations shows whether the process kept
//! running (not frozen) in between. The response reports the pid and an
//! invocation counter, which tell warm from cold starts, and echoes a few
//! environment variables (`TEST_FUNCTION_PROBE` tests function env vars).

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde::Deserialize;
use serde_json::{Value, json};

static TICKS: AtomicU64 = AtomicU64::new(0);
static INVOCATIONS: AtomicU64 = AtomicU64::new(0);
/// Memory kept alive by `hold_mb`.
static HELD: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Request {
    sleep_ms: u64,
    fail: bool,
    exit: bool,
    hold_mb: u64,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

async fn handler(event: LambdaEvent<Request>) -> Result<Value, Error> {
    let invocations = INVOCATIONS.fetch_add(1, Ordering::SeqCst) + 1;
    let ticks_at_start = TICKS.load(Ordering::SeqCst);
    let request = event.payload;
    if request.exit {
        std::process::exit(3);
    }
    if request.hold_mb > 0 {
        let bytes = usize::try_from(request.hold_mb)? * 1024 * 1024;
        // Non-zero bytes, so every page is really touched (resident).
        let block = vec![1u8; bytes];
        HELD.lock()
            .map_err(|_| "held memory lock poisoned")?
            .push(block);
    }
    if request.sleep_ms > 0 {
        tokio::time::sleep(Duration::from_millis(request.sleep_ms)).await;
    }
    if request.fail {
        return Err("requested failure".into());
    }
    Ok(json!({
        "pid": std::process::id(),
        "invocations": invocations,
        "ticks_at_start": ticks_at_start,
        "ticks_at_end": TICKS.load(Ordering::SeqCst),
        "memory_mb": env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE").and_then(|m| m.parse::<u64>().ok()),
        "function_name": env("AWS_LAMBDA_FUNCTION_NAME"),
        "probe": env("TEST_FUNCTION_PROBE"),
        "deadline_ms": event.context.deadline,
    }))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    std::thread::spawn(|| {
        loop {
            std::thread::sleep(Duration::from_millis(5));
            TICKS.fetch_add(1, Ordering::SeqCst);
        }
    });
    lambda_runtime::run(service_fn(handler)).await
}
