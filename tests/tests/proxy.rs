//! Proxy behaviour beyond single requests: configuration, several proxies,
//! warm-ups, and nodes returning on billing-tick boundaries.

use std::time::Duration;

use infinicache::Client;
use infinicache_tests::harness::{SMALL_POOL, TestCache, random_bytes};

fn millis(record: &serde_json::Value, field: &str) -> u128 {
    let text = record[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} missing in {record}"));
    humantime::parse_duration(text)
        .expect("a duration")
        .as_millis()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_file_sets_the_pool_and_suggested_coding() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("proxy.toml");
    std::fs::write(
        &path,
        "pool_size = 6\ndata_shards = 4\nparity_shards = 2\nnode_memory_mb = 256\n[local]\nfreeze = true\n",
    )
    .expect("write config");
    let cache = TestCache::start(&["--config", path.to_str().expect("utf-8 path")]).await;
    // A client that sets no coding uses the proxy's suggestion.
    let client = Client::builder()
        .proxy(&cache.client_addr)
        .connect()
        .await
        .expect("connect");
    assert_eq!(
        (
            client.params().data_shards(),
            client.params().parity_shards()
        ),
        (4, 2)
    );
    let data = random_bytes(10_000);
    client.put("configured", data.clone()).await.expect("put");
    assert_eq!(client.get("configured").await.expect("get"), Some(data));
    let functions = cache.admin_get("/admin/functions").await;
    let functions = functions.as_array().expect("function list");
    assert_eq!(functions.len(), 6, "pool_size from the file");
    assert!(
        functions
            .iter()
            .all(|f| f["memory_mb"].as_u64() == Some(256))
    );
    cache.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_spread_over_several_proxies() {
    let first = TestCache::small(&[]).await;
    let second = TestCache::small(&[]).await;
    let both = Client::builder()
        .proxies([first.client_addr.clone(), second.client_addr.clone()])
        .connect()
        .await
        .expect("connect to both");
    let keys: Vec<String> = (0..40).map(|i| format!("spread-{i}")).collect();
    for key in &keys {
        both.put(key.as_str(), key.clone().into_bytes())
            .await
            .expect("put");
    }
    let only_first = first.client(4, 2).await;
    let mut on_first = 0;
    for key in &keys {
        assert_eq!(
            both.get(key.as_str()).await.expect("get").as_deref(),
            Some(key.as_bytes())
        );
        on_first += usize::from(only_first.exists(key.as_str()).await.expect("exists"));
    }
    assert!(
        (5..=35).contains(&on_first),
        "{on_first} of 40 keys on the first proxy"
    );
    first.stop().await;
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_nodes_are_warmed_up_periodically() {
    // The whole pool in use (no elastic window, which keeps functions free
    // until data needs them, and does not warm free ones).
    let cache = TestCache::start(&[
        "--no-window",
        "--pool-size",
        "12",
        "--warmup-interval",
        "300ms",
    ])
    .await;
    // No client traffic at all: every invocation is a warm-up.
    let mut warmed = std::collections::HashSet::new();
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        warmed = cache
            .billing()
            .await
            .iter()
            .filter_map(|record| record["function"].as_str().map(str::to_owned))
            .collect();
        if warmed.len() == 12 {
            break;
        }
    }
    assert_eq!(
        warmed.len(),
        12,
        "every idle node gets a warm-up: {warmed:?}"
    );
    // The environments survive between warm-ups: later warm-ups are warm.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let records = cache.billing().await;
    assert!(
        records.iter().any(|record| record["cold_start"] == false),
        "repeated warm-ups should reuse their environments"
    );
    cache.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_nodes_return_just_before_a_billing_tick_ends() {
    let cache = TestCache::start(&["--billing-tick", "100ms", "--node-idle-timeout", "50ms"]).await;
    let client = cache.client(10, 2).await;
    client.put("tick", random_bytes(1000)).await.expect("put");
    let mut records = Vec::new();
    for _ in 0..100 {
        records = cache.billing().await;
        if records.len() >= 12 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        records.len() >= 12,
        "every node's invocation ends: {}",
        records.len()
    );
    // Without alignment a node would return 50 ms after its last request,
    // some 40 ms into a tick that is billed in full. Aligned, it returns in
    // the last few ms of the tick. A loaded host may make one late, so the
    // check is on the clear majority.
    let aligned = records
        .iter()
        .filter(|record| {
            let (duration, billed) = (
                millis(record, "duration"),
                millis(record, "billed_duration"),
            );
            assert!(billed.is_multiple_of(100), "{record}");
            billed - duration <= 20
        })
        .count();
    assert!(
        aligned * 3 >= records.len() * 2,
        "only {aligned} of {} invocations ended near a tick boundary: {records:?}",
        records.len()
    );
    cache.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_put_that_cannot_finish_in_time_times_out() {
    let cache = TestCache::small(&["--node-idle-timeout", "60s"]).await;
    let client = Client::builder()
        .proxy(&cache.client_addr)
        .timeout(Duration::from_millis(1500))
        .connect()
        .await
        .expect("connect");
    client
        .put("warm", random_bytes(100))
        .await
        .expect("first put invokes every node");
    let pid = cache.pids("infinicache-node-0").await[0];
    let pid = nix::unistd::Pid::from_raw(pid as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGSTOP).expect("freeze node 0");
    let result = client.put("stuck", random_bytes(100)).await;
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGCONT).expect("thaw node 0");
    assert!(
        matches!(result, Err(infinicache::Error::Timeout(_))),
        "{result:?}"
    );
    cache.stop().await;
}

/// `--platform aws` goes through the AWS configuration chain (credentials
/// and region from the environment, an endpoint override) to a Lambda API:
/// here the embedded platform of another proxy, whose functions then dial
/// the second proxy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_aws_platform_path_invokes_functions_through_a_lambda_endpoint() {
    let host = TestCache::small(&[]).await;
    let endpoint = format!("http://{}", host.platform_addr);
    let args: Vec<&str> = ["--platform", "aws", "--endpoint-url", &endpoint]
        .into_iter()
        .chain(SMALL_POOL.iter().copied())
        .collect();
    let via_aws = TestCache::start_with_env(
        &args,
        &[
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
            ("AWS_REGION", "us-east-1"),
        ],
    )
    .await;
    let client = via_aws.client(4, 2).await;
    let data = random_bytes(200_000);
    client
        .put("through-aws-api", data.clone())
        .await
        .expect("put");
    assert_eq!(
        client.get("through-aws-api").await.expect("get"),
        Some(data)
    );
    // Nobody used the host proxy itself: its environments exist because the
    // second proxy invoked them through the Lambda API.
    for node in 0..6 {
        let pids = host.pids(&format!("infinicache-node-{node}")).await;
        assert_eq!(pids.len(), 1, "node {node} runs in the host platform");
    }
    via_aws.stop().await;
    host.stop().await;
}
