//! Integration tests of the local Lambda platform: each test starts its own
//! platform in-process, runs the `test-function` fixture in it, and talks to
//! it through aws-sdk-lambda (plus raw HTTP for the admin API and garbage).
//!
//! Needs the fixture built: `cargo build --workspace --bins`.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_sdk_lambda::Client;
use aws_sdk_lambda::operation::invoke::{InvokeError, InvokeOutput};
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;
use infinicache_proxy::platform::{
    BillingRecord, EnvironmentState, FunctionConfig, InvocationOutcome, LifetimeRange,
    LocalPlatform, PlatformConfig, PlatformError, ReclaimCounts, ReclaimPolicy, ReclaimPolicyError,
};
use infinicache_tests::{lambda_client, target_bin};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const MEMORY_MB: u32 = 256;

fn function(name: &str) -> FunctionConfig {
    FunctionConfig {
        name: name.to_owned(),
        executable: target_bin("test-function"),
        memory_mb: MEMORY_MB,
        timeout: Duration::from_secs(10),
        environment: vec![("TEST_FUNCTION_PROBE".to_owned(), "probe-value".to_owned())],
    }
}

async fn start(config: PlatformConfig, functions: Vec<FunctionConfig>) -> (LocalPlatform, Client) {
    let platform = LocalPlatform::start(config, functions)
        .await
        .expect("platform starts");
    let client = lambda_client(&platform.endpoint_url());
    (platform, client)
}

async fn start_one(config: PlatformConfig, name: &str) -> (LocalPlatform, Client) {
    start(config, vec![function(name)]).await
}

async fn invoke(client: &Client, name: &str, payload: Value) -> InvokeOutput {
    client
        .invoke()
        .function_name(name)
        .payload(Blob::new(payload.to_string()))
        .send()
        .await
        .expect("invoke succeeds at the API level")
}

fn body(output: &InvokeOutput) -> Value {
    let bytes = output.payload().map(|b| b.as_ref()).unwrap_or_default();
    serde_json::from_slice(bytes).expect("payload is JSON")
}

/// Invokes and returns the fixture's JSON, asserting a clean success.
async fn call(client: &Client, name: &str, payload: Value) -> Value {
    let output = invoke(client, name, payload).await;
    assert_eq!(output.status_code(), 200);
    assert_eq!(
        output.function_error(),
        None,
        "unexpected function error: {:?}",
        body(&output)
    );
    body(&output)
}

fn pid_of(v: &Value) -> u32 {
    v["pid"].as_u64().expect("pid") as u32
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// Process state letter from `/proc/<pid>/stat` (`None` if the process is gone).
fn proc_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    after.trim_start().chars().next()
}

fn process_gone(pid: u32) -> bool {
    // A zombie would still have a /proc entry: "gone" means reaped too.
    !std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// Minimal HTTP/1.1 request over a fresh connection: (status, body).
async fn http(addr: SocketAddr, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.expect("read");
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// Polls `cond` every 20 ms until it holds or `limit` passes.
async fn eventually(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn round_trip_delivers_payload_env_and_deadline() {
    let (platform, client) = start_one(PlatformConfig::default(), "roundtrip").await;
    let before = now_ms();
    let output = invoke(&client, "roundtrip", json!({})).await;
    assert_eq!(output.status_code(), 200);
    assert_eq!(output.function_error(), None);
    assert_eq!(output.executed_version(), Some("$LATEST"));
    let v = body(&output);
    assert_eq!(v["memory_mb"], json!(MEMORY_MB));
    assert_eq!(v["function_name"], json!("roundtrip"));
    assert_eq!(v["probe"], json!("probe-value"));
    assert_eq!(v["invocations"], json!(1));
    let deadline = v["deadline_ms"].as_u64().expect("deadline");
    assert!(
        deadline > before,
        "deadline {deadline} not in the future of {before}"
    );
    assert!(
        deadline <= now_ms() + 10_000 + 1_000,
        "deadline too far: {deadline}"
    );

    // `LogType: Tail` returns the (base64) log tail with AWS's REPORT line.
    let output = client
        .invoke()
        .function_name("roundtrip")
        .log_type(aws_sdk_lambda::types::LogType::Tail)
        .send()
        .await
        .expect("invoke with log tail");
    assert!(
        output.log_result().is_some_and(|l| l.len() > 40),
        "{output:?}"
    );

    // No payload at all, and a qualified ARN, work too (AWS hands `{}`).
    let arn = "arn:aws:lambda:us-east-1:123456789012:function:roundtrip:$LATEST";
    let output = client
        .invoke()
        .function_name(arn)
        .send()
        .await
        .expect("invoke by ARN");
    assert_eq!(output.function_error(), None, "{:?}", body(&output));
    assert_eq!(body(&output)["invocations"], json!(3));
    platform.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn busy_function_gets_new_environment_and_idle_one_is_reused() {
    let (platform, client) = start_one(PlatformConfig::default(), "conc").await;
    let (a, b) = tokio::join!(
        call(&client, "conc", json!({ "sleep_ms": 500 })),
        call(&client, "conc", json!({ "sleep_ms": 800 })),
    );
    let pids: HashSet<u32> = [pid_of(&a), pid_of(&b)].into();
    assert_eq!(
        pids.len(),
        2,
        "two concurrent invokes must run in two environments"
    );
    assert_eq!(platform.environments("conc").len(), 2);

    // Both are idle now; the most recently used one (b's) is preferred.
    let c = call(&client, "conc", json!({})).await;
    assert_eq!(
        pid_of(&c),
        pid_of(&b),
        "third invoke must reuse the most recently used environment"
    );
    assert_eq!(c["invocations"], json!(2));
    assert_eq!(platform.environments("conc").len(), 2);
    platform.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn many_concurrent_invocations_are_all_served_and_billed() {
    let (platform, client) = start_one(PlatformConfig::default(), "many").await;
    let workers = (0..8u64).map(|w| {
        let client = client.clone();
        tokio::spawn(async move {
            let mut pids = Vec::new();
            for i in 0..5u64 {
                let v = call(&client, "many", json!({ "sleep_ms": (w * 7 + i * 3) % 20 })).await;
                pids.push(pid_of(&v));
            }
            pids
        })
    });
    let mut pids = HashSet::new();
    for worker in workers.collect::<Vec<_>>() {
        pids.extend(worker.await.expect("worker"));
    }
    let envs = platform.environments("many");
    assert!(
        pids.len() <= 8 && envs.len() == pids.len(),
        "{pids:?} vs {envs:?}"
    );
    assert_eq!(envs.iter().map(|e| e.invocations).sum::<u64>(), 40);
    let records = platform.billing();
    assert_eq!(records.len(), 40);
    assert!(
        records
            .iter()
            .all(|r| r.outcome == InvocationOutcome::Success)
    );
    assert_eq!(records.iter().filter(|r| r.cold_start).count(), pids.len());
    platform.shutdown().await;
}

/// Returns (tick gap between two invocations 300 ms apart, pid, process
/// state in between).
async fn tick_gap(freeze: bool) -> (u64, Option<char>, EnvironmentState) {
    let config = PlatformConfig {
        freeze,
        ..PlatformConfig::default()
    };
    let (platform, client) = start_one(config, "ticks").await;
    let first = call(&client, "ticks", json!({})).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let pid = pid_of(&first);
    let state_between = proc_state(pid);
    let env_state = platform.environments("ticks")[0].state;
    let second = call(&client, "ticks", json!({})).await;
    assert_eq!(pid_of(&second), pid, "second invoke must be warm");
    let gap = second["ticks_at_start"].as_u64().unwrap() - first["ticks_at_end"].as_u64().unwrap();
    platform.shutdown().await;
    (gap, state_between, env_state)
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_environments_are_frozen_between_invocations() {
    let (gap, state, env_state) = tick_gap(true).await;
    assert!(gap < 10, "frozen process kept ticking: gap {gap}");
    assert_eq!(
        state,
        Some('T'),
        "process should be stopped between invocations"
    );
    assert_eq!(env_state, EnvironmentState::Idle { frozen: true });
}

#[tokio::test(flavor = "multi_thread")]
async fn without_freeze_environments_keep_running() {
    let (gap, state, env_state) = tick_gap(false).await;
    assert!(
        gap > 30,
        "unfrozen process should tick ~60 times in 300 ms: gap {gap}"
    );
    assert_ne!(state, Some('T'));
    assert_eq!(env_state, EnvironmentState::Idle { frozen: false });
}

#[tokio::test(flavor = "multi_thread")]
async fn billing_rounds_up_to_the_tick() {
    let config = PlatformConfig {
        billing_tick: Duration::from_millis(100),
        ..PlatformConfig::default()
    };
    let (platform, client) = start_one(config, "bill100").await;
    call(&client, "bill100", json!({ "sleep_ms": 30 })).await;
    call(&client, "bill100", json!({ "sleep_ms": 30 })).await;
    let records = platform.billing();
    assert_eq!(records.len(), 2);
    for r in &records {
        assert_eq!(r.function, "bill100");
        assert_eq!(r.billed_duration, Duration::from_millis(100), "{r:?}");
        assert!(r.duration >= Duration::from_millis(30), "{r:?}");
        assert_eq!(r.memory_mb, MEMORY_MB);
        assert_eq!(r.outcome, InvocationOutcome::Success);
        assert!(r.start_unix_ms > 0 && r.start_unix_ms <= now_ms());
    }
    assert!(records[0].cold_start && records[0].init_duration.is_some());
    assert!(!records[1].cold_start && records[1].init_duration.is_none());
    assert_eq!(records[0].environment_id, records[1].environment_id);

    // The admin API serves the same records.
    let (status, json_text) = http(platform.addr(), "GET", "/admin/billing", "").await;
    assert_eq!(status, 200);
    let listed: Vec<Value> = serde_json::from_str(&json_text).expect("billing JSON");
    assert_eq!(listed.len(), 2);
    platform.shutdown().await;

    let (platform, client) = start_one(PlatformConfig::default(), "bill1").await;
    call(&client, "bill1", json!({ "sleep_ms": 30 })).await;
    let r = &platform.billing()[0];
    let ms = Duration::from_millis(1);
    assert!(
        r.billed_duration >= r.duration && r.billed_duration < r.duration + ms,
        "{r:?}"
    );
    assert_eq!(r.billed_duration.as_nanos() % ms.as_nanos(), 0, "{r:?}");
    assert!(r.billed_duration >= Duration::from_millis(30));
    platform.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn reclaim_kills_environments_and_next_invoke_is_cold() {
    let (platform, client) = start_one(PlatformConfig::default(), "reclaim").await;
    let pid1 = pid_of(&call(&client, "reclaim", json!({})).await);
    let (status, text) = http(
        platform.addr(),
        "POST",
        "/admin/functions/reclaim/reclaim",
        "",
    )
    .await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap(),
        json!({ "reclaimed": 1 })
    );
    assert!(process_gone(pid1), "reclaimed process {pid1} still exists");
    assert!(platform.environments("reclaim").is_empty());

    let v = call(&client, "reclaim", json!({})).await;
    assert_ne!(pid_of(&v), pid1);
    assert_eq!(
        v["invocations"],
        json!(1),
        "memory must be lost after a reclaim"
    );
    assert!(platform.billing()[1].cold_start);

    // Reclaiming one environment by id.
    let (status, text) = http(platform.addr(), "GET", "/admin/functions", "").await;
    assert_eq!(status, 200);
    let listed: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(listed[0]["name"], json!("reclaim"));
    let id = listed[0]["environments"][0]["id"]
        .as_u64()
        .expect("environment id");
    let path = format!("/admin/environments/{id}/reclaim");
    let (status, text) = http(platform.addr(), "POST", &path, "").await;
    assert_eq!((status, text.as_str()), (200, r#"{"reclaimed":1}"#));
    assert!(process_gone(pid_of(&v)));
    assert!(platform.environments("reclaim").is_empty());
    let (status, _) = http(platform.addr(), "POST", &path, "").await;
    assert_eq!(status, 404, "reclaiming a gone environment");

    // And through the Rust API.
    let pid3 = pid_of(&call(&client, "reclaim", json!({})).await);
    assert_eq!(platform.reclaim("reclaim").await, 1);
    assert!(process_gone(pid3));
    let stats = platform.stats();
    assert_eq!(
        stats.reclaims,
        ReclaimCounts {
            admin: 3,
            ..ReclaimCounts::default()
        }
    );
    assert_eq!(stats.cold_starts, 3);
    platform.shutdown().await;
}

/// A platform whose only reclaim mechanism is `policy` (the others off).
fn reclaiming(policy: ReclaimPolicy) -> PlatformConfig {
    PlatformConfig {
        reclaim: policy,
        ..PlatformConfig::default()
    }
}

/// Generous bound for anything the reaper should do within about a second:
/// the machine running the tests may be loaded.
const REAPED_WITHIN: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread")]
async fn idle_lifetime_reclaims_idle_environments() {
    let config = reclaiming(ReclaimPolicy {
        idle_lifetime: Some(LifetimeRange::fixed(Duration::from_millis(200))),
        ..ReclaimPolicy::never()
    });
    let (platform, client) = start_one(config, "idle").await;
    let pid = pid_of(&call(&client, "idle", json!({})).await);
    assert_eq!(platform.environments("idle").len(), 1);
    assert!(
        eventually(Duration::from_secs(3), || platform
            .environments("idle")
            .is_empty())
        .await,
        "idle environment not reclaimed"
    );
    assert!(eventually(Duration::from_secs(1), || process_gone(pid)).await);
    let v = call(&client, "idle", json!({})).await;
    assert_ne!(pid_of(&v), pid);
    assert_eq!(v["invocations"], json!(1));
    assert_eq!(platform.stats().reclaims.idle, 1);
    platform.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn scaled_idle_lifetime_reclaims_and_is_counted_as_idle() {
    // One simulated minute at 60x: about a second of real time.
    let config = reclaiming(ReclaimPolicy {
        idle_lifetime: Some(LifetimeRange::fixed(Duration::from_secs(60))),
        time_scale: 60.0,
        ..ReclaimPolicy::never()
    });
    let (platform, client) = start_one(config, "scaled").await;
    // Busy for longer than the idle lifetime: not idle, so not reclaimed.
    let first = call(&client, "scaled", json!({ "sleep_ms": 1500 })).await;
    let pid = pid_of(&first);
    assert!(
        eventually(REAPED_WITHIN, || platform.environments("scaled").is_empty()).await,
        "idle environment not reclaimed"
    );
    assert!(eventually(Duration::from_secs(5), || process_gone(pid)).await);
    let stats = platform.stats();
    assert_eq!(stats.cold_starts, 1);
    assert_eq!(
        stats.reclaims,
        ReclaimCounts {
            idle: 1,
            ..ReclaimCounts::default()
        }
    );
    assert_eq!(stats.time_scale, 60.0);

    // The same through the admin API.
    let (status, text) = http(platform.addr(), "GET", "/admin/stats", "").await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(
        serde_json::from_str::<Value>(&text).expect("stats JSON"),
        json!({
            "cold_starts": 1,
            "reclaims": { "idle": 1, "max_lifetime": 0, "random": 0, "admin": 0 },
            "time_scale": 60.0,
        })
    );

    // Memory is gone: the next invoke is a cold start.
    let v = call(&client, "scaled", json!({})).await;
    assert_ne!(pid_of(&v), pid);
    assert_eq!(v["invocations"], json!(1));
    assert_eq!(platform.stats().cold_starts, 2);
    let records = platform.billing();
    assert_eq!(records[0].outcome, InvocationOutcome::Success);
    assert!(records[1].cold_start);
    platform.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn max_lifetime_recycles_at_the_next_idle_moment_not_mid_invocation() {
    // Maximum lifetime one simulated minute at 60x: about a second.
    let config = reclaiming(ReclaimPolicy {
        max_lifetime: Some(LifetimeRange::fixed(Duration::from_secs(60))),
        time_scale: 60.0,
        ..ReclaimPolicy::never()
    });
    let (platform, client) = start_one(config, "aged").await;
    // The environment comes of age while this runs: it must finish anyway.
    let long = call(&client, "aged", json!({ "sleep_ms": 2500 })).await;
    let pid = pid_of(&long);
    let record = &platform.billing()[0];
    assert_eq!(record.outcome, InvocationOutcome::Success);
    assert!(record.duration > Duration::from_secs(1), "{record:?}");
    // ... and is recycled once idle.
    assert!(
        eventually(REAPED_WITHIN, || process_gone(pid)).await,
        "environment past its maximum lifetime not recycled"
    );
    assert!(platform.environments("aged").is_empty());
    assert_eq!(
        platform.stats().reclaims,
        ReclaimCounts {
            max_lifetime: 1,
            ..ReclaimCounts::default()
        }
    );

    // A fresh environment, idle when it comes of age: the reaper recycles it.
    let v = call(&client, "aged", json!({})).await;
    assert_ne!(pid_of(&v), pid);
    assert_eq!(
        v["invocations"],
        json!(1),
        "memory lost with the old environment"
    );
    assert!(
        eventually(REAPED_WITHIN, || process_gone(pid_of(&v))).await,
        "idle environment past its maximum lifetime not recycled"
    );
    let stats = platform.stats();
    assert_eq!(stats.reclaims.max_lifetime, 2);
    assert_eq!(stats.reclaims.idle, 0);
    assert_eq!(stats.cold_starts, 2);
    platform.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn random_reclaims_take_idle_environments_only() {
    // About 100 per second: an idle environment survives only a few ticks.
    let config = reclaiming(ReclaimPolicy {
        random_per_hour: 360_000.0,
        ..ReclaimPolicy::never()
    });
    let (platform, client) = start_one(config, "random").await;
    let (a, b) = tokio::join!(
        call(&client, "random", json!({ "sleep_ms": 1000 })),
        call(&client, "random", json!({ "sleep_ms": 1000 })),
    );
    assert_ne!(pid_of(&a), pid_of(&b));
    assert!(
        platform
            .billing()
            .iter()
            .all(|r| r.outcome == InvocationOutcome::Success),
        "a busy environment was reclaimed: {:?}",
        platform.billing()
    );
    assert!(
        eventually(REAPED_WITHIN, || process_gone(pid_of(&a))
            && process_gone(pid_of(&b)))
        .await,
        "idle environments not reclaimed at random"
    );
    assert_eq!(
        platform.stats().reclaims,
        ReclaimCounts {
            random: 2,
            ..ReclaimCounts::default()
        }
    );
    platform.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_reclaim_policies_are_rejected() {
    let start =
        |policy: ReclaimPolicy| LocalPlatform::start(reclaiming(policy), vec![function("f")]);
    for scale in [0.0, -2.0, f64::NAN, f64::INFINITY] {
        let result = start(ReclaimPolicy {
            time_scale: scale,
            ..ReclaimPolicy::default()
        })
        .await;
        assert!(
            matches!(
                result,
                Err(PlatformError::Reclaim(ReclaimPolicyError::TimeScale(_)))
            ),
            "time_scale {scale}: {result:?}"
        );
    }
    let result = start(ReclaimPolicy {
        random_per_hour: -1.0,
        ..ReclaimPolicy::default()
    })
    .await;
    assert!(matches!(
        result,
        Err(PlatformError::Reclaim(ReclaimPolicyError::RandomRate(_)))
    ));
    let result = start(ReclaimPolicy {
        idle_lifetime: Some(LifetimeRange::new(
            Duration::from_secs(60),
            Duration::from_secs(30),
        )),
        ..ReclaimPolicy::default()
    })
    .await;
    assert!(matches!(
        result,
        Err(PlatformError::Reclaim(
            ReclaimPolicyError::InvertedRange { .. }
        ))
    ));

    // The proxy refuses them too, before starting anything.
    for args in [
        &["--time-scale", "0"][..],
        &["--time-scale", "-1"],
        &["--idle-lifetime", "2m..1m"],
        &["--random-reclaims-per-hour", "NaN"],
    ] {
        let output = tokio::process::Command::new(target_bin("infinicache-proxy"))
            .args([
                "--client-listen",
                "127.0.0.1:0",
                "--node-listen",
                "127.0.0.1:0",
                "--admin-listen",
                "127.0.0.1:0",
            ])
            .args(args)
            .output()
            .await
            .expect("run infinicache-proxy");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains("local.reclaim"), "{args:?}: {stderr}");
    }
}

/// Standard base64 (the test crate has no base64 dependency).
fn base64_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in text.trim_end_matches('=').bytes() {
        let v = ALPHABET
            .iter()
            .position(|&a| a == c)
            .expect("base64 character") as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

/// The fields of a `REPORT` line (`"Billed Duration" -> "13 ms"`), checking
/// AWS's layout: tab after every field, the last one included.
fn report_fields(line: &str) -> Vec<(String, String)> {
    let rest = line.strip_prefix("REPORT ").expect("REPORT line");
    let rest = rest.strip_suffix('\t').expect("tab after the last field");
    rest.split('\t')
        .map(|field| {
            let (key, value) = field.split_once(": ").expect("key: value");
            (key.to_owned(), value.to_owned())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn log_tail_report_line_agrees_with_billing() {
    let config = PlatformConfig {
        billing_tick: Duration::from_millis(100),
        ..PlatformConfig::default()
    };
    let (platform, client) = start_one(config, "tail").await;
    let mut seen: Vec<BillingRecord> = Vec::new();
    for (payload, cold) in [(json!({ "hold_mb": 64 }), true), (json!({}), false)] {
        let output = client
            .invoke()
            .function_name("tail")
            .log_type(aws_sdk_lambda::types::LogType::Tail)
            .payload(Blob::new(payload.to_string()))
            .send()
            .await
            .expect("invoke with log tail");
        assert_eq!(output.function_error(), None, "{:?}", body(&output));
        let log = String::from_utf8(base64_decode(output.log_result().expect("log result")))
            .expect("UTF-8 log");
        let lines: Vec<&str> = log.lines().collect();
        assert!(lines[0].starts_with("START RequestId: "), "{log}");
        let report = lines
            .iter()
            .find(|l| l.starts_with("REPORT "))
            .expect("REPORT line");
        assert_eq!(
            lines.last(),
            Some(report),
            "the tail ends with REPORT: {log}"
        );
        let fields = report_fields(report);
        let keys: Vec<&str> = fields.iter().map(|(k, _)| k.as_str()).collect();
        let mut expected = vec![
            "RequestId",
            "Duration",
            "Billed Duration",
            "Memory Size",
            "Max Memory Used",
        ];
        if cold {
            expected.push("Init Duration");
        }
        assert_eq!(keys, expected, "{report}");
        let get = |key: &str| {
            fields
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
                .unwrap_or_default()
        };

        let record = platform
            .billing()
            .into_iter()
            .find(|r| r.request_id == get("RequestId"))
            .expect("billing record of the invocation");
        assert_eq!(record.cold_start, cold);
        assert_eq!(record.billed_duration, Duration::from_millis(100));
        assert_eq!(record.billed_duration_ms, 100);
        assert_eq!(get("Billed Duration"), "100 ms");
        assert_eq!(get("Duration"), format!("{:.2} ms", record.duration_ms));
        assert!((record.duration_ms - record.duration.as_secs_f64() * 1000.0).abs() < 1e-6);
        assert_eq!(get("Memory Size"), format!("{MEMORY_MB} MB"));
        let used = record
            .max_memory_used_mb
            .expect("peak memory readable on Linux");
        assert_eq!(get("Max Memory Used"), format!("{used} MB"));
        assert!(used >= 64, "held 64 MiB but peak is {used} MB");
        if let Some(init) = record.init_duration {
            assert_eq!(
                get("Init Duration"),
                format!("{:.2} ms", init.as_secs_f64() * 1000.0)
            );
        }
        seen.push(record);
    }

    // The admin API has the numeric fields too.
    let (status, text) = http(platform.addr(), "GET", "/admin/billing", "").await;
    assert_eq!(status, 200);
    let listed: Vec<Value> = serde_json::from_str(&text).expect("billing JSON");
    for (json, record) in listed.iter().zip(&seen) {
        assert_eq!(json["request_id"], json!(record.request_id));
        assert_eq!(json["billed_duration_ms"], json!(100));
        // serde_json's default float parsing may differ in the last bit.
        let ms = json["duration_ms"].as_f64().expect("numeric duration_ms");
        assert!((ms - record.duration_ms).abs() < 1e-9, "{json}");
        assert_eq!(json["billed_duration"], json!("100ms"));
    }

    // As on AWS, only synchronous invocations return a log tail.
    let output = client
        .invoke()
        .function_name("tail")
        .invocation_type(InvocationType::Event)
        .log_type(aws_sdk_lambda::types::LogType::Tail)
        .send()
        .await
        .expect("event invoke");
    assert_eq!(output.status_code(), 202);
    assert_eq!(output.log_result(), None);
    platform.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_function_is_resource_not_found() {
    let (platform, client) = start_one(PlatformConfig::default(), "known").await;
    let err = client
        .invoke()
        .function_name("unknown")
        .send()
        .await
        .expect_err("unknown function");
    let err = err.into_service_error();
    assert!(
        matches!(err, InvokeError::ResourceNotFoundException(_)),
        "got {err:?}"
    );
    let err = client
        .invoke()
        .function_name("known")
        .qualifier("7")
        .send()
        .await
        .expect_err("unknown version");
    assert!(err.into_service_error().is_resource_not_found_exception());
    platform.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn handler_error_is_unhandled_function_error() {
    let (platform, client) = start_one(PlatformConfig::default(), "fail").await;
    let output = invoke(&client, "fail", json!({ "fail": true })).await;
    assert_eq!(output.status_code(), 200);
    assert_eq!(output.function_error(), Some("Unhandled"));
    let v = body(&output);
    assert!(
        v["errorMessage"]
            .as_str()
            .unwrap()
            .contains("requested failure"),
        "{v}"
    );
    // The environment survives a handled error and is reused.
    assert_eq!(
        call(&client, "fail", json!({})).await["invocations"],
        json!(2)
    );
    let outcomes: Vec<_> = platform.billing().iter().map(|r| r.outcome).collect();
    assert_eq!(
        outcomes,
        [InvocationOutcome::FunctionError, InvocationOutcome::Success]
    );
    platform.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn process_exit_fails_invocation_and_drops_environment() {
    let (platform, client) = start_one(PlatformConfig::default(), "exit").await;
    let pid = pid_of(&call(&client, "exit", json!({})).await);
    let output = invoke(&client, "exit", json!({ "exit": true })).await;
    assert_eq!(output.function_error(), Some("Unhandled"));
    let v = body(&output);
    assert_eq!(v["errorType"], json!("Runtime.ExitError"), "{v}");
    assert!(
        v["errorMessage"]
            .as_str()
            .unwrap()
            .contains("exit status 3"),
        "{v}"
    );
    assert!(platform.environments("exit").is_empty());
    assert!(process_gone(pid));
    assert_eq!(platform.billing()[1].outcome, InvocationOutcome::Crashed);
    // The next invoke gets a fresh environment.
    let v = call(&client, "exit", json!({})).await;
    assert_eq!(v["invocations"], json!(1));
    platform.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn timeout_kills_environment_and_reports_timed_out() {
    let mut f = function("slow");
    f.timeout = Duration::from_secs(1);
    let (platform, client) = start(PlatformConfig::default(), vec![f]).await;
    let pid = pid_of(&call(&client, "slow", json!({})).await);
    let begun = Instant::now();
    let output = invoke(&client, "slow", json!({ "sleep_ms": 3000 })).await;
    let took = begun.elapsed();
    assert_eq!(output.function_error(), Some("Unhandled"));
    let v = body(&output);
    let message = v["errorMessage"].as_str().unwrap();
    assert!(message.contains("Task timed out after 1.00 seconds"), "{v}");
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_millis(2500),
        "{took:?}"
    );
    assert!(eventually(Duration::from_secs(2), || process_gone(pid)).await);
    assert!(platform.environments("slow").is_empty());
    let record = &platform.billing()[1];
    assert_eq!(record.outcome, InvocationOutcome::Timeout);
    assert!(record.duration >= Duration::from_secs(1));
    assert_eq!(
        platform.stats().reclaims,
        ReclaimCounts::default(),
        "a timeout is not a reclaim"
    );
    platform.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn event_and_dry_run_invocations() {
    let (platform, client) = start_one(PlatformConfig::default(), "async").await;
    let output = client
        .invoke()
        .function_name("async")
        .invocation_type(InvocationType::Event)
        .payload(Blob::new(r#"{"sleep_ms": 50}"#))
        .send()
        .await
        .expect("event invoke");
    assert_eq!(output.status_code(), 202);
    assert!(output.payload().is_none_or(|p| p.as_ref().is_empty()));
    assert!(
        eventually(Duration::from_secs(5), || platform.billing().len() == 1).await,
        "asynchronous invocation never ran"
    );
    assert_eq!(platform.billing()[0].outcome, InvocationOutcome::Success);

    let output = client
        .invoke()
        .function_name("async")
        .invocation_type(InvocationType::DryRun)
        .send()
        .await
        .expect("dry run");
    assert_eq!(output.status_code(), 204);
    assert_eq!(platform.billing().len(), 1, "a dry run does not execute");
    platform.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_payloads_are_rejected() {
    let (platform, client) = start_one(PlatformConfig::default(), "payload").await;
    let err = client
        .invoke()
        .function_name("payload")
        .payload(Blob::new("not json"))
        .send()
        .await
        .expect_err("invalid JSON");
    let err = err.into_service_error();
    assert!(
        matches!(err, InvokeError::InvalidRequestContentException(_)),
        "got {err:?}"
    );

    let huge = format!("\"{}\"", "x".repeat(7 * 1024 * 1024));
    let err = client
        .invoke()
        .function_name("payload")
        .payload(Blob::new(huge))
        .send()
        .await
        .expect_err("payload too large");
    let err = err.into_service_error();
    assert!(
        matches!(err, InvokeError::RequestTooLargeException(_)),
        "got {err:?}"
    );
    assert!(platform.billing().is_empty());
    platform.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn environment_cap_throttles() {
    let config = PlatformConfig {
        max_environments_per_function: 1,
        ..PlatformConfig::default()
    };
    let (platform, client) = start_one(config, "capped").await;
    // No SDK retries: the throttle itself is under test.
    let conf = client
        .config()
        .to_builder()
        .retry_config(aws_sdk_lambda::config::retry::RetryConfig::disabled())
        .build();
    let client = Client::from_conf(conf);
    let busy = tokio::spawn({
        let client = client.clone();
        async move { call(&client, "capped", json!({ "sleep_ms": 1000 })).await }
    });
    assert!(
        eventually(Duration::from_secs(5), || {
            platform
                .environments("capped")
                .iter()
                .any(|e| e.state == EnvironmentState::Busy)
        })
        .await
    );
    let err = client
        .invoke()
        .function_name("capped")
        .send()
        .await
        .expect_err("throttled");
    let err = err.into_service_error();
    assert!(
        matches!(err, InvokeError::TooManyRequestsException(_)),
        "got {err:?}"
    );
    // An asynchronous invocation is queued instead, and runs once the
    // environment is free.
    let output = client
        .invoke()
        .function_name("capped")
        .invocation_type(InvocationType::Event)
        .send()
        .await
        .expect("event invoke is accepted at the cap");
    assert_eq!(output.status_code(), 202);
    busy.await.expect("busy invoke");
    assert!(eventually(Duration::from_secs(5), || platform.billing().len() == 2).await);
    assert_eq!(platform.environments("capped").len(), 1);
    call(&client, "capped", json!({})).await;
    platform.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn garbage_does_not_break_the_platform() {
    let (platform, client) = start_one(PlatformConfig::default(), "garbage").await;
    let pid = pid_of(&call(&client, "garbage", json!({})).await);
    let runtime_api = platform.environments("garbage")[0].runtime_api;

    for addr in [platform.addr(), runtime_api] {
        // Random bytes, a truncated request, and a hang-up.
        for len in [1usize, 17, 4096, 70_000] {
            let mut stream = TcpStream::connect(addr).await.expect("connect");
            let junk: Vec<u8> = (0..len).map(|_| rand::random::<u8>()).collect();
            let _ = stream.write_all(&junk).await;
            let _ = stream.shutdown().await;
            let mut sink = Vec::new();
            let _ =
                tokio::time::timeout(Duration::from_secs(2), stream.read_to_end(&mut sink)).await;
        }
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        let _ = stream
            .write_all(b"POST /2015-03-31/functions/garbage/invocations HTTP/1.1\r\nContent-Length: 100\r\n\r\n{\"a")
            .await;
        drop(stream);

        for (method, path) in [
            ("GET", "/"),
            ("GET", "/nope/../../etc/passwd"),
            ("DELETE", "/2015-03-31/functions/garbage/invocations"),
            ("POST", "/2015-03-31/functions/%ff%fe/invocations"),
            ("POST", "/admin/environments/not-a-number/reclaim"),
            ("POST", "/2018-06-01/runtime/invocation/bogus-id/response"),
            ("POST", "/2018-06-01/runtime/invocation/bogus-id/error"),
        ] {
            let (status, _) = http(addr, method, path, "{}").await;
            assert!(
                (400..500).contains(&status),
                "{method} {path} on {addr}: {status}"
            );
        }
    }
    // A stray poll must not steal the real runtime's events.
    let (status, _) = http(
        runtime_api,
        "GET",
        "/2018-06-01/runtime/invocation/next",
        "",
    )
    .await;
    assert!((400..500).contains(&status), "stray /next got {status}");

    let v = call(&client, "garbage", json!({})).await;
    assert_eq!(pid_of(&v), pid, "the environment survived the garbage");
    assert_eq!(v["invocations"], json!(2));
    platform.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn drop_kills_environment_processes() {
    let (platform, client) = start_one(PlatformConfig::default(), "dropped").await;
    let pid = pid_of(&call(&client, "dropped", json!({})).await);
    assert!(eventually(Duration::from_secs(2), || proc_state(pid) == Some('T')).await);
    drop(platform);
    assert!(
        eventually(Duration::from_secs(3), || process_gone(pid)).await,
        "process {pid} outlived the platform"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn shutdown_kills_environments_and_refuses_new_invocations() {
    let (platform, client) = start_one(PlatformConfig::default(), "shut").await;
    let conf = client
        .config()
        .to_builder()
        .retry_config(aws_sdk_lambda::config::retry::RetryConfig::disabled())
        .build();
    let client = Client::from_conf(conf);
    let (a, b) = tokio::join!(
        call(&client, "shut", json!({ "sleep_ms": 100 })),
        call(&client, "shut", json!({ "sleep_ms": 100 })),
    );
    platform.shutdown().await;
    assert!(process_gone(pid_of(&a)) && process_gone(pid_of(&b)));
    // The SDK's pooled keep-alive connection may outlive the listener; the
    // platform must still refuse to start anything.
    let result = client.invoke().function_name("shut").send().await;
    assert!(result.is_err(), "invoke after shutdown: {result:?}");
}
