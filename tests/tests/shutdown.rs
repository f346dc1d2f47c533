//! Graceful shutdown: SIGTERM drains the requests in flight, flushes the
//! write-back buffer and the manifest to the object store and tells the
//! nodes to return, so no acknowledged write is lost.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use infinicache_tests::harness::{TestCache, random_bytes};
use parking_lot::Mutex;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_loses_no_acknowledged_write() {
    let data = tempfile::tempdir().expect("temp dir");
    let dir = data.path().to_str().expect("utf-8 path").to_string();
    // The default (async) write mode: a PUT is acknowledged once it is in
    // function memory, before the object store has it.
    let args = ["--data-dir", dir.as_str(), "--cos-write-mode", "async"];
    let cache = TestCache::small(&args).await;
    let acked: Arc<Mutex<HashMap<String, Bytes>>> = Arc::default();
    let mut writers = Vec::new();
    for writer in 0..4 {
        let client = cache.client(4, 2).await;
        let acked = acked.clone();
        writers.push(tokio::spawn(async move {
            for i in 0.. {
                let key = format!("w{writer}-{i}");
                let value = random_bytes(50_000 + 37_000 * (i % 7));
                match client.put(key.as_str(), value.clone()).await {
                    Ok(_) => {
                        acked.lock().insert(key, value);
                    }
                    // Refused or cut off by the shutdown: not acknowledged.
                    Err(_) => return,
                }
            }
        }));
    }
    // Let writes pile up in the write-back buffer, then stop mid-stream.
    while acked.lock().len() < 40 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let status = cache.terminate().await;
    assert!(status.success(), "the proxy exited with {status}");
    for writer in writers {
        tokio::time::timeout(Duration::from_secs(60), writer)
            .await
            .expect("writers stop once the proxy is gone")
            .expect("writer");
    }

    // Every environment died with the old proxy: whatever is read now comes
    // from the object store.
    let cache = TestCache::small(&args).await;
    let client = cache.client(4, 2).await;
    let acked = acked.lock().clone();
    assert!(acked.len() >= 40);
    for (key, value) in &acked {
        let got = client.get(key.as_str()).await.expect("get after restart");
        assert!(got.as_ref() == Some(value), "{key}: acknowledged but lost");
    }
    cache.stop().await;
}
