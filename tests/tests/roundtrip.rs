//! PUT/GET/DELETE round trips through the real proxy, local platform and
//! node processes.

use infinicache_tests::harness::{TestCache, random_bytes};

const KIB: usize = 1024;
const MIB: usize = 1024 * KIB;
const SIZES: [usize; 6] = [0, 1, KIB, MIB, 10 * MIB, 100 * MIB];

async fn round_trips(k: usize, r: usize) {
    let cache = TestCache::start(&[]).await;
    let client = cache.client(k, r).await;
    for size in SIZES {
        let key = format!("object-{k}+{r}-{size}");
        let data = random_bytes(size);
        let version = client.put(key.as_str(), data.clone()).await.expect("put");
        assert!(version > 0);
        assert!(client.exists(key.as_str()).await.expect("exists"));
        let got = client
            .get(key.as_str())
            .await
            .expect("get")
            .expect("present");
        assert_eq!(got.len(), size);
        assert!(got == data, "{size}-byte object came back different");
        assert!(client.delete(key.as_str()).await.expect("delete"));
        assert_eq!(
            client.get(key.as_str()).await.expect("get after delete"),
            None
        );
        assert!(
            !client
                .exists(key.as_str())
                .await
                .expect("exists after delete")
        );
    }
    cache.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_of_every_size_round_trip_with_10_plus_2() {
    round_trips(10, 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_of_every_size_round_trip_with_4_plus_2() {
    round_trips(4, 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_key_is_not_found_not_an_error() {
    let cache = TestCache::start(&[]).await;
    let client = cache.client(10, 2).await;
    assert_eq!(client.get("never-stored").await.expect("get"), None);
    assert!(!client.exists("never-stored").await.expect("exists"));
    assert!(!client.delete("never-stored").await.expect("delete"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overwrites_return_the_newest_version() {
    let cache = TestCache::start(&[]).await;
    let client = cache.client(4, 2).await;
    let first = random_bytes(100 * KIB);
    let second = random_bytes(3 * KIB);
    let v1 = client.put("key", first).await.expect("put 1");
    let v2 = client.put("key", second.clone()).await.expect("put 2");
    assert!(v2 > v1, "versions must grow: {v1} then {v2}");
    assert_eq!(client.get("key").await.expect("get"), Some(second));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_operations_share_one_connection() {
    let cache = TestCache::start(&[]).await;
    let client = cache.client(4, 2).await;
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let client = client.clone();
            tokio::spawn(async move {
                let key = format!("concurrent-{i}");
                let data = random_bytes(1 + i * 997);
                client.put(key.as_str(), data.clone()).await.expect("put");
                assert_eq!(client.get(key.as_str()).await.expect("get"), Some(data));
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("task");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_written_with_other_parameters_are_readable() {
    let cache = TestCache::start(&[]).await;
    let writer = cache.client(3, 1).await;
    let reader = cache.client(10, 2).await;
    let data = random_bytes(123_457);
    writer.put("mixed", data.clone()).await.expect("put");
    assert_eq!(reader.get("mixed").await.expect("get"), Some(data));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_invocation_is_billed() {
    let cache = TestCache::start(&["--billing-tick", "100ms"]).await;
    let client = cache.client(10, 2).await;
    client
        .put("billed", random_bytes(10 * KIB))
        .await
        .expect("put");
    let records = cache.billing().await;
    // Nodes return when idle; wait for the first invocations to end.
    let mut records = records;
    for _ in 0..100 {
        if records.len() >= 12 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        records = cache.billing().await;
    }
    assert!(
        records.len() >= 12,
        "expected a record per node invocation, got {}",
        records.len()
    );
    for record in &records {
        let billed =
            humantime::parse_duration(record["billed_duration"].as_str().expect("billed_duration"))
                .expect("a duration")
                .as_millis();
        assert!(
            billed >= 100 && billed.is_multiple_of(100),
            "billed {billed} ms is not whole 100 ms ticks: {record}"
        );
        assert_eq!(record["memory_mb"].as_u64(), Some(1024));
    }
}
