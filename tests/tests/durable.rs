//! The durable layer (InfiniStore's COS) with the directory backend: objects
//! outlive the environments holding them, in both write modes, and deleted
//! or overwritten versions leave the store.

use std::path::Path;

use infinicache_tests::harness::{TestCache, eventually, random_bytes};

const NODES: usize = 6;

/// Chunk objects in the directory store.
fn stored_chunks(data_dir: &Path) -> Vec<String> {
    fn walk(dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else if !entry.file_name().to_string_lossy().starts_with('.') {
                // Hidden files are the backend's writes in progress.
                out.push(path.to_string_lossy().into_owned());
            }
        }
    }
    let mut out = Vec::new();
    walk(&data_dir.join("cos").join("chunks"), &mut out);
    out.sort();
    out
}

async fn cache(data_dir: &Path, mode: &str) -> TestCache {
    let dir = data_dir.to_string_lossy().into_owned();
    TestCache::small(&["--cos", "dir", "--cos-write-mode", mode, "--data-dir", &dir]).await
}

async fn reclaim_all(cache: &TestCache) {
    for node in 0..NODES {
        cache.reclaim(&format!("infinicache-node-{node}")).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_outlive_every_node_that_held_them() {
    let data = tempfile::tempdir().expect("temp dir");
    let cache = cache(data.path(), "async").await;
    let client = cache.client(4, 2).await;
    let objects: Vec<_> = (0..3)
        .map(|i| (format!("durable-{i}"), random_bytes(150_000 + i)))
        .collect();
    for (key, value) in &objects {
        client.put(key.as_str(), value.clone()).await.expect("put");
    }
    // Async mode: the write-back finishes in the background.
    eventually("every chunk is in the store", || async {
        stored_chunks(data.path()).len() == 3 * NODES
    })
    .await;

    // Every environment is gone: memory holds nothing any more.
    reclaim_all(&cache).await;
    for (key, value) in &objects {
        let got = client.get(key.as_str()).await.expect("get from the store");
        assert!(got.as_ref() == Some(value), "{key} changed");
    }
    // The chunks are put back into memory in the background.
    eventually("the lost chunks are restored to the nodes", || async {
        let counters = cache.status().await["counters"].clone();
        let lost = counters["chunks_lost"].as_u64().unwrap_or(0);
        lost >= 3 * NODES as u64 && counters["chunks_repaired"] == lost
    })
    .await;
    assert_eq!(cache.counter("objects_lost").await, 0);
    cache.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_mode_survives_a_reclaim_right_after_the_acknowledgement() {
    let data = tempfile::tempdir().expect("temp dir");
    let cache = cache(data.path(), "sync").await;
    let client = cache.client(4, 2).await;
    let value = random_bytes(300_000);
    client.put("synced", value.clone()).await.expect("put");
    // Acknowledged means durable: no waiting.
    assert_eq!(stored_chunks(data.path()).len(), NODES);
    reclaim_all(&cache).await;
    assert_eq!(client.get("synced").await.expect("get"), Some(value));
    cache.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_and_overwritten_versions_leave_the_store() {
    let data = tempfile::tempdir().expect("temp dir");
    let cache = cache(data.path(), "sync").await;
    let client = cache.client(4, 2).await;
    client.put("kept", random_bytes(10_000)).await.expect("put");
    client
        .put("doomed", random_bytes(10_000))
        .await
        .expect("put");
    assert_eq!(stored_chunks(data.path()).len(), 2 * NODES);

    let newer = random_bytes(20_000);
    client.put("kept", newer.clone()).await.expect("overwrite");
    assert!(client.delete("doomed").await.expect("delete"));
    eventually("only the newest version of kept remains", || async {
        stored_chunks(data.path()).len() == NODES
    })
    .await;
    reclaim_all(&cache).await;
    assert_eq!(client.get("kept").await.expect("get"), Some(newer));
    assert_eq!(client.get("doomed").await.expect("get"), None);
    cache.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_proxy_serves_every_object_stored_before() {
    let data = tempfile::tempdir().expect("temp dir");
    let objects: Vec<_> = (0..4)
        .map(|i| (format!("restart-{i}"), random_bytes(40_000 + i)))
        .collect();
    let newer = random_bytes(5_000);
    let mut last_version = 0;
    {
        let cache = cache(data.path(), "sync").await;
        let client = cache.client(4, 2).await;
        for (key, value) in &objects {
            last_version = client.put(key.as_str(), value.clone()).await.expect("put");
        }
        client
            .put("restart-0", newer.clone())
            .await
            .expect("overwrite");
        assert!(client.delete("restart-3").await.expect("delete"));
        // Stopping the proxy kills every environment: memory is gone.
        cache.stop().await;
    }

    let cache = cache(data.path(), "sync").await;
    let client = cache.client(4, 2).await;
    assert_eq!(cache.status().await["objects"], 3);
    assert_eq!(client.get("restart-0").await.expect("get"), Some(newer));
    for (key, value) in &objects[1..3] {
        let got = client.get(key.as_str()).await.expect("get after restart");
        assert!(got.as_ref() == Some(value), "{key} changed");
    }
    assert_eq!(client.get("restart-3").await.expect("get"), None, "deleted");
    // New versions keep increasing past the recovered ones.
    let version = client
        .put("restart-1", random_bytes(10))
        .await
        .expect("put");
    assert!(version > last_version, "{version} after {last_version}");
    cache.stop().await;
}
