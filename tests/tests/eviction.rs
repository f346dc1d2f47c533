//! A full pool: least recently used objects leave memory whole. Without the
//! object store (InfiniCache) they are gone; with it they go cold and are
//! still read, from the store.

use infinicache_tests::harness::{TestCache, random_bytes};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn least_recently_used_objects_are_evicted_whole() {
    // 4 nodes with 8 MiB of room each (128 MB functions keeping 120 MB back).
    let cache = TestCache::start(&[
        "--cos",
        "off",
        "--pool-size",
        "4",
        "--data-shards",
        "2",
        "--parity-shards",
        "2",
        "--node-memory-mb",
        "128",
        "--node-reserved-mb",
        "120",
    ])
    .await;
    let client = cache.client(2, 2).await;
    // 6 MiB objects: a 3 MiB chunk on every node, so two objects fit.
    let a = random_bytes(6 * 1024 * 1024);
    let b = random_bytes(6 * 1024 * 1024);
    let c = random_bytes(6 * 1024 * 1024);
    client.put("a", a.clone()).await.expect("put a");
    client.put("b", b.clone()).await.expect("put b");
    assert_eq!(
        client.get("a").await.expect("get a"),
        Some(a.clone()),
        "a is now the most recent"
    );

    client.put("c", c.clone()).await.expect("put c evicts b");
    assert_eq!(
        client.get("b").await.expect("get b"),
        None,
        "b was least recently used"
    );
    assert_eq!(
        client.get("a").await.expect("get a"),
        Some(a),
        "a must be untouched"
    );
    assert_eq!(
        client.get("c").await.expect("get c"),
        Some(c),
        "c must be stored"
    );

    // An object that cannot fit even in an empty pool is refused cleanly.
    let err = client
        .put("huge", random_bytes(40 * 1024 * 1024))
        .await
        .expect_err("larger than the pool");
    assert!(
        err.to_string().contains("too large") || err.to_string().contains("room"),
        "{err}"
    );
    assert!(
        client.exists("c").await.expect("exists"),
        "a refused PUT must not evict"
    );
    cache.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_object_store_evicted_objects_go_cold_and_stay_readable() {
    let cache = TestCache::start(&[
        "--cos-write-mode",
        "sync",
        "--pool-size",
        "4",
        "--data-shards",
        "2",
        "--parity-shards",
        "2",
        "--node-memory-mb",
        "128",
        "--node-reserved-mb",
        "120",
    ])
    .await;
    let client = cache.client(2, 2).await;
    let objects: Vec<_> = (0..3)
        .map(|i| (format!("o{i}"), random_bytes(6 * 1024 * 1024 + i)))
        .collect();
    for (key, value) in &objects {
        client.put(key.as_str(), value.clone()).await.expect("put");
    }
    let status = cache.status().await;
    assert_eq!(status["window"]["cold_objects"], 1, "o0 left memory");
    assert_eq!(status["objects"], 3, "but not the cache");
    for (key, value) in &objects {
        let got = client.get(key.as_str()).await.expect("get");
        assert!(got.as_ref() == Some(value), "{key} changed");
    }
    cache.stop().await;
}
