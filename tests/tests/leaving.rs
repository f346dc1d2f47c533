//! Nodes come and go under load, and no request notices: a node that says
//! `Bye` while requests are routed to it stays until they are answered, and
//! a request whose node left or was reclaimed under it is sent again on the
//! node's next invocation (node requests are idempotent).

use std::collections::HashMap;
use std::time::Duration;

use infinicache::codec::{Chunk, CodecParams, ObjectCodec};
use infinicache::protocol::{ClientReply, ClientRequest, Encode, Key};
use infinicache_tests::harness::{TestCache, eventually, random_bytes};
use infinicache_tests::raw::{handshaken, reply};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::io::AsyncWriteExt;

/// PUTs (each followed by a GET) per client in the churn test.
const ROUNDS: usize = 150;
/// Keys per client, overwritten in turn: every overwrite also drops the
/// previous version's chunks, more node requests in the background.
const KEYS: usize = 4;
/// Concurrent clients in the churn test: enough chunk requests per node
/// that some wait for an invocation while it is being set up.
const CLIENTS: usize = 48;

/// With an idle timeout of zero every node says `Bye` about one billing
/// tick after its last request, so each one leaves and is invoked again all
/// the time while concurrent PUTs keep arriving. Requests that waited for an
/// invocation are handed its link at once, but their tasks may run only
/// later (two worker threads, dozens of runnable tasks): the node must not
/// be let go before their requests reach it, and a request that misses an
/// invocation must wait for the next one rather than fail. Every PUT must
/// succeed and every object must read back intact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn puts_succeed_while_idle_nodes_keep_leaving() {
    let cache = TestCache::small(&[
        "--cos",
        "off",
        "--node-idle-timeout",
        "0s",
        "--node-request-timeout",
        "60s",
    ])
    .await;
    let client = cache.client(4, 2).await;
    let mut tasks = Vec::new();
    for id in 0..CLIENTS {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            let mut failures = Vec::new();
            for round in 0..ROUNDS {
                let key = format!("churn-{id}-{}", round % KEYS);
                // Small objects: the point is many chunk requests, not bytes.
                let data = random_bytes(1024 + 1531 * ((id + round) % 41));
                match client.put(key.as_str(), data.clone()).await {
                    Ok(_) => {}
                    Err(err) => {
                        failures.push(format!("PUT {key}: {err}"));
                        continue;
                    }
                }
                match client.get(key.as_str()).await {
                    Ok(Some(got)) if got == data => {}
                    Ok(Some(_)) => failures.push(format!("GET {key}: wrong bytes")),
                    Ok(None) => failures.push(format!("GET {key}: missing")),
                    Err(err) => failures.push(format!("GET {key}: {err}")),
                }
            }
            failures
        }));
    }
    let mut failures = Vec::new();
    for task in tasks {
        failures.extend(task.await.expect("client task"));
    }
    let invocations = cache.counter("serve_invocations").await;
    assert!(
        failures.is_empty(),
        "{} of {} operations failed ({invocations} serving invocations), e.g.:\n{}",
        failures.len(),
        2 * CLIENTS * ROUNDS,
        failures
            .iter()
            .take(10)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    // The nodes did leave between requests, or the test proved nothing.
    assert!(
        invocations > 6,
        "only {invocations} serving invocations: the nodes never left"
    );
    // A node is kept only while requests routed to it are unanswered: once
    // the load stops, every one of them returns (no claim was leaked).
    eventually("every node returned once the load stopped", || {
        every_node_idle(&cache)
    })
    .await;
    cache.stop().await;
}

/// Whether the proxy reports every node idle: none is invoked, so none is
/// held by a request routed to it.
async fn every_node_idle(cache: &TestCache) -> bool {
    cache.status().await["nodes"]
        .as_array()
        .is_some_and(|nodes| nodes.iter().all(|node| node["phase"] == "idle"))
}

/// A node's environment is reclaimed while a chunk store is in flight on it
/// (the node is frozen, so the request cannot have been answered): the
/// store is sent again to the node's next invocation, on a fresh
/// environment, and the PUT succeeds instead of reporting the lost
/// connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_put_survives_its_node_reclaimed_mid_request() {
    let cache = TestCache::small(&[
        "--cos",
        "off",
        // The node stays connected between the PUTs: the second one's chunk
        // request goes out on the open link to the frozen process.
        "--node-idle-timeout",
        "120s",
        "--node-request-timeout",
        "60s",
    ])
    .await;
    let client = cache.client(4, 2).await;
    let first = random_bytes(256 * 1024);
    client
        .put("before", first.clone())
        .await
        .expect("first put");

    // Every PUT places a chunk on each of the six nodes, node 2 included.
    let function = "infinicache-node-2";
    let pids = cache.pids(function).await;
    assert_eq!(pids.len(), 1, "{function} should have one environment");
    let pid = Pid::from_raw(pids[0] as i32);
    kill(pid, Signal::SIGSTOP).expect("freeze node 2");

    let data = random_bytes(512 * 1024 + 3);
    let put = {
        let client = client.clone();
        let data = data.clone();
        tokio::spawn(async move { client.put("during", data).await })
    };
    // Give the chunk request time to go out (if it has not, it is sent to
    // the next environment directly, which the test accepts as well).
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!put.is_finished(), "the PUT cannot finish without node 2");
    assert_eq!(cache.reclaim(function).await, 1, "reclaim node 2");

    put.await
        .expect("put task")
        .expect("the PUT is retried on node 2's next environment");
    let got = client.get("during").await.expect("get").expect("present");
    assert!(got == data, "the object written across the reclaim changed");
    // The earlier object lost its chunk on node 2 and is still readable.
    let got = client.get("before").await.expect("get").expect("present");
    assert!(got == first, "the earlier object changed");
    cache.stop().await;
}

/// GETs pipelined by a client that does not read its replies.
const STALLED_GETS: u64 = 600;

/// A client pipelines GETs and reads nothing: its replies back up, and
/// most of the GETs wait to hand their chunks to the connection. The chunk
/// requests must still run to the end, so every node is let go a billing
/// tick later instead of staying invoked (and billed) for as long as the
/// client pleases. The replies are all there when the client does read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_reads_slowly_does_not_keep_nodes_invoked() {
    let cache = TestCache::small(&[
        "--cos",
        "off",
        "--node-idle-timeout",
        "0s",
        // Far longer than the test: the proxy must not cut the client.
        "--client-write-timeout",
        "600s",
    ])
    .await;
    let client = cache.client(4, 2).await;
    let object = random_bytes(64 * 1024 + 5);
    client.put("slow", object.clone()).await.expect("put");

    // 600 objects of 6 chunks, some 60 MB: more than the reply queue and
    // the socket buffers hold.
    let (mut reader, mut write) = handshaken(&cache.client_addr).await;
    let get = ClientRequest::Get {
        key: Key::try_from("slow").expect("key"),
    };
    for id in 1..=STALLED_GETS {
        write
            .write_all(&get.encode(id).to_bytes())
            .await
            .expect("write");
    }
    eventually(
        "every node returned while the client was not reading",
        || every_node_idle(&cache),
    )
    .await;

    // Now read: every GET streams its header and all six chunks, and any
    // four of them give the object back.
    let codec = ObjectCodec::new(CodecParams::new(4, 2).expect("params"));
    let mut chunks: HashMap<u64, Vec<Chunk>> = HashMap::new();
    let (mut headers, mut received) = (0, 0);
    while headers < STALLED_GETS || received < 6 * STALLED_GETS {
        match reply(&mut reader).await {
            (_, ClientReply::Object { object_len, .. }) => {
                assert_eq!(object_len, object.len() as u64);
                headers += 1;
            }
            (id, ClientReply::Chunk(chunk)) => {
                received += 1;
                chunks.entry(id).or_default().push(chunk);
            }
            (id, other) => panic!("GET {id}: {other:?}"),
        }
    }
    assert_eq!(chunks.len() as u64, STALLED_GETS, "a GET went unanswered");
    for (id, got) in chunks {
        assert_eq!(got.len(), 6, "GET {id}");
        let decoded = codec.decode(&got[2..]).expect("decode");
        assert!(decoded == object, "GET {id} returned other bytes");
    }
    drop(write);
    cache.stop().await;
}
