//! Availability beyond erasure coding: delta-sync backups to a second
//! environment of each node, seamless failover to it, and repair of lost
//! chunks — all over real connections, with environments killed the way the
//! provider reclaims them.

use std::time::Duration;

use infinicache_tests::harness::{TestCache, eventually, random_bytes};
use serde_json::Value;

/// These tests exercise the memory layer's own defences, as in InfiniCache:
/// with the object store under it, a lost chunk would simply be read back.
const MEMORY_ONLY: &[&str] = &["--cos", "off"];

const NODES: usize = 6;

/// Whether at least `lost` chunks were lost and every loss was repaired.
/// (Counted this way because a rebuilt chunk stored on a node while that
/// node is being reconciled may be counted lost and rebuilt once more.)
async fn fully_repaired(cache: &TestCache, lost: u64) -> bool {
    let counters = cache.status().await["counters"].clone();
    let (lost_now, repaired) = (
        counters["chunks_lost"].as_u64().unwrap_or(0),
        counters["chunks_repaired"].as_u64().unwrap_or(0),
    );
    lost_now >= lost && repaired == lost_now
}

fn function(node: usize) -> String {
    format!("infinicache-node-{node}")
}

/// Per-node figures of a backup round, in node order.
fn synced(report: &Value) -> Vec<Value> {
    report["synced"].as_array().cloned().unwrap_or_default()
}

fn total(report: &Value, field: &str) -> u64 {
    synced(report)
        .iter()
        .map(|node| node[field].as_u64().expect("numeric field"))
        .sum()
}

/// Kills the oldest environment of `function`: the primary, since the
/// backup environment was started later, by the first backup round.
async fn reclaim_primary(cache: &TestCache, function: &str) {
    let envs = cache.environments(function).await;
    assert_eq!(
        envs.len(),
        2,
        "{function}: primary and backup expected: {envs:?}"
    );
    let oldest = envs
        .iter()
        .min_by_key(|env| env["id"].as_u64())
        .and_then(|env| env["id"].as_u64())
        .expect("environment id");
    assert_eq!(cache.reclaim_environment(oldest).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delta_sync_sends_only_what_changed() {
    let cache = TestCache::small(MEMORY_ONLY).await;
    let client = cache.client(4, 2).await;
    for i in 0..4 {
        client
            .put(format!("obj-{i}"), random_bytes(64 * 1024))
            .await
            .expect("put");
    }

    // First sync: the backup environments are new and get everything. With
    // 4+2 chunks on 6 nodes, every node holds one chunk of every object.
    let first = cache.backup_now().await;
    assert_eq!(synced(&first).len(), NODES, "{first}");
    assert_eq!(total(&first, "sent"), 4 * 6, "{first}");
    assert_eq!(total(&first, "unchanged"), 0, "{first}");
    let backups: Vec<u64> = synced(&first)
        .iter()
        .map(|node| node["instance_id"].as_u64().expect("instance"))
        .collect();
    for node in 0..NODES {
        assert_eq!(cache.environments(&function(node)).await.len(), 2);
    }

    // Nothing changed: nothing travels.
    let second = cache.backup_now().await;
    assert_eq!(total(&second, "sent"), 0, "{second}");
    assert_eq!(total(&second, "dropped"), 0, "{second}");
    assert_eq!(total(&second, "unchanged"), 4 * 6, "{second}");

    // Two new objects, one overwritten, one deleted: the delta is the new
    // chunks, and drops of the replaced and deleted ones.
    for i in 4..6 {
        client
            .put(format!("obj-{i}"), random_bytes(64 * 1024))
            .await
            .expect("put");
    }
    client
        .put("obj-0", random_bytes(1000))
        .await
        .expect("overwrite");
    assert!(client.delete("obj-1").await.expect("delete"));
    let third = cache.backup_now().await;
    assert_eq!(total(&third, "sent"), 3 * 6, "{third}");
    assert_eq!(total(&third, "dropped"), 2 * 6, "{third}");
    assert_eq!(total(&third, "unchanged"), 2 * 6, "{third}");
    // The same backup environments were synced each time.
    let again: Vec<u64> = synced(&third)
        .iter()
        .map(|node| node["instance_id"].as_u64().expect("instance"))
        .collect();
    assert_eq!(again, backups);

    let counters = cache.status().await["counters"].clone();
    assert_eq!(counters["backups"], 18);
    assert_eq!(counters["backup_chunks_sent"], (4 + 3) * 6);
    assert_eq!(counters["backup_chunks_dropped"], 2 * 6);
    // Backups are accounted separately from serving.
    let billing = cache.status().await["billing"].clone();
    assert!(
        billing["backup"]["invocations"].as_u64() >= Some(6),
        "{billing}"
    );
    assert!(
        billing["backup"]["gb_seconds"].as_f64() > Some(0.0),
        "{billing}"
    );
    cache.stop().await;
}

/// A node whose idle timeout is a couple of milliseconds goes idle between
/// any two relay steps of a sync on a busy host; the proxy must still hold
/// the primary (and the backup environment) until the copy is complete, or
/// the sync fails with "closed by peer" and a later failover finds nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backups_hold_nodes_whose_idle_timeout_is_tiny() {
    let args: Vec<&str> = MEMORY_ONLY
        .iter()
        .copied()
        .chain(["--node-idle-timeout", "2ms"])
        .collect();
    let cache = TestCache::small(&args).await;
    let client = cache.client(4, 2).await;
    let objects: Vec<_> = (0..6)
        .map(|i| (format!("obj-{i}"), random_bytes(1024 * 1024 + i)))
        .collect();
    for (key, data) in &objects {
        client.put(key.as_str(), data.clone()).await.expect("put");
    }
    let first = cache.backup_now().await;
    assert_eq!(first["failed"], serde_json::json!([]), "{first}");
    assert_eq!(total(&first, "sent"), 6 * 6, "{first}");
    // The primaries returned last: the next round reaches the same backup
    // environments, which kept everything.
    let second = cache.backup_now().await;
    assert_eq!(second["failed"], serde_json::json!([]), "{second}");
    assert_eq!(total(&second, "sent"), 0, "{second}");
    assert_eq!(total(&second, "unchanged"), 6 * 6, "{second}");
    for node in [1, 3, 5] {
        reclaim_primary(&cache, &function(node)).await;
    }
    for (key, data) in &objects {
        let got = client.get(key.as_str()).await.expect("get after failover");
        assert!(got.as_ref() == Some(data), "{key} changed");
    }
    eventually("three backups took over", || async {
        cache.counter("failovers").await == 3
    })
    .await;
    assert_eq!(cache.counter("chunks_lost").await, 0);
    cache.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_to_the_backup_is_invisible_to_clients() {
    let cache = TestCache::small(MEMORY_ONLY).await;
    let client = cache.client(4, 2).await;
    let objects: Vec<_> = (0..5)
        .map(|i| (format!("obj-{i}"), random_bytes(200_000 + i)))
        .collect();
    for (key, data) in &objects {
        client.put(key.as_str(), data.clone()).await.expect("put");
    }
    let report = cache.backup_now().await;
    assert_eq!(total(&report, "sent"), 5 * 6, "{report}");

    // More than r primaries die: without the backups every object would be
    // gone. GETs run while the environments are being killed.
    let readers = {
        let client = client.clone();
        let objects = objects.clone();
        tokio::spawn(async move {
            for _ in 0..10 {
                for (key, data) in &objects {
                    let got = client.get(key.as_str()).await.expect("get during failover");
                    assert!(got.as_ref() == Some(data), "{key} changed");
                }
            }
        })
    };
    for node in [0, 2, 4] {
        reclaim_primary(&cache, &function(node)).await;
    }
    readers.await.expect("readers");
    for (key, data) in &objects {
        let got = client.get(key.as_str()).await.expect("get after failover");
        assert!(got.as_ref() == Some(data), "{key} changed");
    }

    eventually("all three backups took over", || async {
        cache.counter("failovers").await == 3
    })
    .await;
    let status = cache.status().await;
    assert_eq!(
        status["counters"]["chunks_lost"], 0,
        "the backups held every chunk"
    );
    for node in [0, 2, 4] {
        assert_eq!(status["nodes"][node]["failovers"], 1);
        assert_eq!(cache.environments(&function(node)).await.len(), 1);
    }
    cache.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_more_than_r_nodes_without_backup_loses_the_object() {
    let cache = TestCache::small(MEMORY_ONLY).await;
    let client = cache.client(4, 2).await;
    client
        .put("gone", random_bytes(100_000))
        .await
        .expect("put");
    for node in [1, 3, 5] {
        assert_eq!(cache.reclaim(&function(node)).await, 1);
    }
    let err = client.get("gone").await.expect_err("3 chunks lost, r = 2");
    assert!(
        err.to_string().contains("chunks"),
        "unexpected error: {err}"
    );

    // The repair the GET requested finds the object beyond saving: it is
    // forgotten, and later reads are plain misses.
    eventually("the object is declared lost", || async {
        cache.counter("objects_lost").await == 1
    })
    .await;
    assert_eq!(client.get("gone").await.expect("get"), None);
    assert!(!client.exists("gone").await.expect("exists"));
    cache.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repair_restores_full_redundancy() {
    let cache = TestCache::small(MEMORY_ONLY).await;
    let client = cache.client(4, 2).await;
    let data = random_bytes(300_000);
    client.put("mended", data.clone()).await.expect("put");

    // Lose r chunks; the GET still decodes, and repairs.
    for node in [0, 1] {
        cache.reclaim(&function(node)).await;
    }
    // A GET that finds chunks lost requests the repair. (The first GET may
    // have had its k chunks before the lost ones were even detected: reads
    // go on until one notices.)
    eventually("both lost chunks are rebuilt", || async {
        assert_eq!(client.get("mended").await.expect("get"), Some(data.clone()));
        fully_repaired(&cache, 2).await
    })
    .await;

    // Lose r *other* chunks: only the repaired ones make the object readable.
    for node in [2, 3] {
        cache.reclaim(&function(node)).await;
    }
    eventually("the next two are rebuilt", || async {
        assert_eq!(client.get("mended").await.expect("get"), Some(data.clone()));
        fully_repaired(&cache, 4).await
    })
    .await;
    for node in [4, 5] {
        cache.reclaim(&function(node)).await;
    }
    assert_eq!(client.get("mended").await.expect("get"), Some(data));
    eventually("every loss is counted", || async {
        cache.counter("chunks_lost").await >= 6
    })
    .await;
    assert_eq!(cache.counter("objects_lost").await, 0);
    cache.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn periodic_backups_run_and_hand_over() {
    let cache = TestCache::small(&["--cos", "off", "--backup-interval", "300ms"]).await;
    let client = cache.client(4, 2).await;
    let data = random_bytes(50_000);
    client.put("periodic", data.clone()).await.expect("put");
    eventually("every node was backed up", || async {
        cache.counter("backups").await >= NODES as u64
    })
    .await;
    // Nothing changes any more, so later rounds send nothing new.
    let sent = cache.counter("backup_chunks_sent").await;
    assert_eq!(sent, NODES as u64);
    for node in [0, 1, 2] {
        let envs = cache.environments(&function(node)).await;
        if envs.len() == 2 {
            reclaim_primary(&cache, &function(node)).await;
        }
    }
    assert_eq!(client.get("periodic").await.expect("get"), Some(data));
    cache.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abandoned_backup_request_does_not_wedge_the_node() {
    use tokio::io::AsyncWriteExt;

    let cache = TestCache::small(MEMORY_ONLY).await;
    let client = cache.client(4, 2).await;
    client.put("kept", random_bytes(10_000)).await.expect("put");

    // Ask for a backup round and hang up at once: the handler is dropped
    // mid-sync, the syncs must finish (or fail) on their own.
    for _ in 0..3 {
        let mut stream = tokio::net::TcpStream::connect(cache.admin_addr)
            .await
            .expect("connect");
        stream
            .write_all(b"POST /backup HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
            .await
            .expect("send");
        drop(stream);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eventually("no node is left backing up", || async {
        let status = cache.status().await;
        status["nodes"]
            .as_array()
            .is_some_and(|nodes| nodes.iter().all(|node| node["backing_up"] == false))
    })
    .await;
    let report = cache.backup_now().await;
    assert_eq!(synced(&report).len(), NODES, "{report}");
    assert_eq!(
        client.get("kept").await.expect("get").map(|b| b.len()),
        Some(10_000)
    );
    cache.stop().await;
}
