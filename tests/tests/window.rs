//! The elastic sliding window (InfiniStore) over real connections: the
//! newest bucket grows in steps of `k + r` functions as data arrives, old
//! buckets expire (their functions released, their objects cold in the
//! object store) and come back into memory when read, and objects read from
//! a degraded bucket move forward to the newest one.

use infinicache_tests::harness::{TestCache, eventually, random_bytes};
use serde_json::Value;

/// RS(2+1): the window grows three functions at a time.
const STEP: u64 = 3;

fn window(status: &Value) -> &Value {
    &status["window"]
}

fn functions(status: &Value) -> u64 {
    window(status)["functions"].as_u64().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_window_grows_in_steps_of_k_plus_r_as_data_arrives() {
    // 8 MiB of chunk room per function: a 3 MiB object takes 1.5 MiB on
    // each of three.
    let cache = TestCache::start(&[
        "--pool-size",
        "12",
        "--data-shards",
        "2",
        "--parity-shards",
        "1",
        "--node-memory-mb",
        "128",
        "--node-reserved-mb",
        "120",
    ])
    .await;
    let status = cache.status().await;
    assert_eq!(window(&status)["elastic"], true);
    assert_eq!(functions(&status), 0, "no function is used before any data");

    let client = cache.client(2, 1).await;
    let objects: Vec<_> = (0..12)
        .map(|i| (format!("grow-{i}"), random_bytes(3 * 1024 * 1024 + i)))
        .collect();
    let mut seen = Vec::new();
    for (key, value) in &objects {
        client.put(key.as_str(), value.clone()).await.expect("put");
        let now = functions(&cache.status().await);
        assert_eq!(now % STEP, 0, "functions come in steps of k + r: {now}");
        seen.push(now);
    }
    assert_eq!(seen[0], STEP, "the first object opens one step");
    assert!(seen.windows(2).all(|pair| pair[0] <= pair[1]), "{seen:?}");
    let last = *seen.last().unwrap_or(&0);
    assert!(
        last >= 3 * STEP,
        "36 MiB of chunks need more than 24 MiB: {seen:?}"
    );

    // Every object is intact, and none had to leave memory.
    for (key, value) in &objects {
        let got = client.get(key.as_str()).await.expect("get");
        assert!(got.as_ref() == Some(value), "{key} changed");
    }
    let status = cache.status().await;
    assert_eq!(window(&status)["cold_objects"], 0);
    let buckets = window(&status)["buckets"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(buckets.len(), 1, "one bucket length has not passed");
    cache.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_buckets_release_their_functions_and_objects_come_back_on_demand() {
    let cache = TestCache::start(&[
        "--pool-size",
        "6",
        "--data-shards",
        "2",
        "--parity-shards",
        "1",
        "--bucket-length",
        "1s",
        "--active-buckets",
        "1",
        "--available-buckets",
        "3",
    ])
    .await;
    let client = cache.client(2, 1).await;
    let value = random_bytes(200_000);
    client.put("cold", value.clone()).await.expect("put");
    // The write-back finishes in the background; the bucket expires three
    // seconds later, releasing its functions.
    eventually("the bucket expires", || async {
        let status = cache.status().await;
        status["counters"]["buckets_expired"].as_u64().unwrap_or(0) >= 1
            && functions(&status) == 0
            && window(&status)["cold_objects"] == 1
    })
    .await;
    assert_eq!(window(&cache.status().await)["memory_used_bytes"], 0);

    // Still readable: from the object store, then back into memory (a new
    // bucket) in the background.
    let got = client.get("cold").await.expect("get a cold object");
    assert!(got.as_ref() == Some(&value), "cold object changed");
    eventually("the object is warm again", || async {
        let status = cache.status().await;
        window(&status)["cold_objects"] == 0
            && status["counters"]["chunks_recovered"].as_u64().unwrap_or(0) >= STEP
    })
    .await;
    let status = cache.status().await;
    assert!(status["counters"]["bytes_recovered"].as_u64().unwrap_or(0) >= 200_000 / 2);
    let got = client.get("cold").await.expect("get a warm object");
    assert!(got.as_ref() == Some(&value), "object changed once warm");
    cache.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_read_from_a_degraded_bucket_moves_to_the_newest() {
    let cache = TestCache::start(&[
        "--pool-size",
        "6",
        "--data-shards",
        "2",
        "--parity-shards",
        "1",
        "--bucket-length",
        "300ms",
        "--active-buckets",
        "1",
        "--available-buckets",
        "1000",
    ])
    .await;
    let client = cache.client(2, 1).await;
    let old = random_bytes(100_000);
    client.put("old", old.clone()).await.expect("put old");
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    client
        .put("new", random_bytes(1_000))
        .await
        .expect("put new");
    let status = cache.status().await;
    let buckets = window(&status)["buckets"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(buckets.len(), 2, "a bucket length passed: {buckets:?}");
    assert_eq!(buckets[0]["tier"], "degraded");

    let got = client.get("old").await.expect("get old");
    assert!(got.as_ref() == Some(&old));
    eventually("the object's chunks move forward", || async {
        cache.counter("chunks_moved").await == STEP
    })
    .await;
    // The old bucket holds nothing any more; the object is intact.
    let status = cache.status().await;
    let buckets = window(&status)["buckets"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(buckets[0]["used_bytes"], 0, "{buckets:?}");
    let got = client.get("old").await.expect("get old again");
    assert!(got.as_ref() == Some(&old));
    cache.stop().await;
}
