//! LRU eviction of whole objects when the pool is full.

use infinicache_tests::harness::{TestCache, random_bytes};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn least_recently_used_objects_are_evicted_whole() {
    // 4 nodes with 8 MiB of room each (128 MB functions keeping 120 MB back).
    let cache = TestCache::start(&[
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
