//! GETs survive lost and frozen nodes: erasure coding needs only `k` of the
//! `k + r` chunks, and the client never waits for a straggler.
//!
//! The memory layer alone (`--cos off`, as in InfiniCache): with the object
//! store under it, lost chunks would simply be read back.

use std::time::{Duration, Instant};

use infinicache_tests::harness::{TestCache, random_bytes};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_survives_r_reclaimed_nodes() {
    // A pool of exactly k + r nodes: every node holds one chunk of the object.
    let cache = TestCache::start(&["--cos", "off", "--pool-size", "12"]).await;
    let client = cache.client(10, 2).await;
    let data = random_bytes(3 * 1024 * 1024 + 17);
    client.put("survivor", data.clone()).await.expect("put");

    for node in [3, 8] {
        let reclaimed = cache.reclaim(&format!("infinicache-node-{node}")).await;
        assert!(reclaimed >= 1, "node {node} had no environment to reclaim");
    }
    let got = client
        .get("survivor")
        .await
        .expect("get after reclaim")
        .expect("present");
    assert!(got == data, "object changed after losing 2 nodes");

    // Losing more than r chunks at once makes an object unreadable: an
    // error, never wrong data. (Another object: the first one's lost chunks
    // are being repaired by now.)
    let doomed = random_bytes(1024 * 1024);
    client.put("doomed", doomed).await.expect("put");
    for node in [0, 1, 2] {
        cache.reclaim(&format!("infinicache-node-{node}")).await;
    }
    let err = client
        .get("doomed")
        .await
        .expect_err("3 of 12 chunks lost with r = 2");
    assert!(
        err.to_string().contains("chunks"),
        "unexpected error: {err}"
    );
    cache.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_does_not_wait_for_a_frozen_node() {
    // Nodes stay connected (long idle timeout), so a SIGSTOPped node holds
    // an open connection that never answers: the worst kind of straggler.
    let request_timeout = Duration::from_secs(30);
    let cache = TestCache::small(&[
        "--cos",
        "off",
        "--node-idle-timeout",
        "120s",
        "--node-request-timeout",
        "30s",
    ])
    .await;
    let client = cache.client(4, 2).await;
    let data = random_bytes(2 * 1024 * 1024);
    client.put("straggler", data.clone()).await.expect("put");

    let pids = cache.pids("infinicache-node-2").await;
    assert_eq!(pids.len(), 1, "node 2 should have one environment");
    let pid = Pid::from_raw(pids[0] as i32);
    kill(pid, Signal::SIGSTOP).expect("freeze node 2");

    let started = Instant::now();
    let got = client.get("straggler").await;
    let elapsed = started.elapsed();
    kill(pid, Signal::SIGCONT).expect("thaw node 2");

    assert_eq!(got.expect("get with a frozen node").as_ref(), Some(&data));
    assert!(
        elapsed < request_timeout / 4,
        "GET took {elapsed:?}: it waited for the frozen node (timeout {request_timeout:?})"
    );
    cache.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunks_survive_between_invocations_in_frozen_environments() {
    let cache = TestCache::small(&["--cos", "off", "--node-idle-timeout", "20ms"]).await;
    let client = cache.client(4, 2).await;
    let data = random_bytes(1024 * 1024);
    client.put("kept", data.clone()).await.expect("put");
    let pids_before = cache.pids("infinicache-node-1").await;

    // Wait until every node has returned and its environment is frozen.
    let mut all_frozen = false;
    for _ in 0..200 {
        let functions = cache.admin_get("/admin/functions").await;
        all_frozen = functions
            .as_array()
            .expect("functions")
            .iter()
            .all(|function| {
                function["environments"].as_array().is_some_and(|envs| {
                    envs.iter().all(|env| {
                        env["state"]["phase"] == "idle" && env["state"]["frozen"] == true
                    })
                })
            });
        if all_frozen {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(all_frozen, "nodes should return and be frozen when idle");

    // The next GET thaws the same environments, whose memory still holds the chunks.
    assert_eq!(client.get("kept").await.expect("get"), Some(data));
    assert_eq!(
        cache.pids("infinicache-node-1").await,
        pids_before,
        "same environment, not a new one"
    );
    // Invocations are billed when they end, once the nodes are idle again.
    let mut warm = 0;
    for _ in 0..200 {
        warm = cache
            .billing()
            .await
            .iter()
            .filter(|record| record["cold_start"] == false)
            .count();
        if warm >= 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(
        warm >= 4,
        "the GET's invocations reuse warm environments ({warm} warm)"
    );
    cache.stop().await;
}
