//! Bounded resources: each limit refuses what would cross it with a clear
//! error (or disconnects a client that stopped reading) while the proxy goes
//! on serving everyone else.

use std::time::Duration;

use bytes::Bytes;
use infinicache::codec::{CodecParams, ObjectCodec};
use infinicache::protocol::{ClientReply, ClientRequest, Encode, ErrorCode, Key, PutChunk};
use infinicache_tests::harness::{TestCache, random_bytes};
use infinicache_tests::raw::{LIMIT, handshaken, reply};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A normal client still round-trips an object.
async fn assert_still_serving(cache: &TestCache, key: &str) {
    let client = cache.client(4, 2).await;
    let data = random_bytes(20_000);
    client.put(key, data.clone()).await.expect("put");
    assert_eq!(client.get(key).await.expect("get"), Some(data));
}

/// The first chunk of an object of `len` bytes, RS(4+2): a PUT that sends
/// only this chunk stays in flight until the proxy's PUT timeout.
fn first_chunk(len: usize) -> infinicache::codec::Chunk {
    ObjectCodec::new(CodecParams::new(4, 2).expect("params"))
        .encode(&random_bytes(len), 0)
        .expect("encode")
        .remove(0)
}

fn half_put(key: &str, put_id: u64, len: usize) -> ClientRequest {
    ClientRequest::Put(PutChunk {
        key: Key::try_from(key).expect("key"),
        put_id,
        chunk: first_chunk(len),
    })
}

fn busy(reply: &ClientReply) -> bool {
    matches!(reply, ClientReply::Error(err) if err.code == ErrorCode::Busy)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_over_the_limit_are_refused_on_both_frontends() {
    let cache = TestCache::small(&["--max-key-len", "16"]).await;
    let client = cache.client(4, 2).await;
    let long = "k".repeat(17);
    let err = client
        .put(long.as_str(), Bytes::from_static(b"v"))
        .await
        .expect_err("key too long");
    assert!(
        err.to_string()
            .contains("key of 17 bytes exceeds the limit of 16 bytes"),
        "{err}"
    );
    let err = client.get(long.as_str()).await.expect_err("GET too");
    assert!(err.to_string().contains("exceeds the limit"), "{err}");
    client
        .put("k".repeat(16), Bytes::from_static(b"v"))
        .await
        .expect("16 bytes is fine");

    let addr = cache.resp_addr.clone().expect("RESP");
    let redis = redis::Client::open(format!("redis://{addr}/")).expect("url");
    let mut conn = redis
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    let refused: redis::RedisResult<()> = redis::cmd("SET")
        .arg(&long)
        .arg("v")
        .query_async(&mut conn)
        .await;
    let refused = refused.expect_err("too long").to_string();
    assert!(
        refused.contains("exceeds the limit of 16 bytes"),
        "{refused}"
    );
    let refused: redis::RedisResult<()> = redis::cmd("MSET")
        .arg("a")
        .arg("1")
        .arg(&long)
        .arg("2")
        .query_async(&mut conn)
        .await;
    assert!(refused.is_err(), "MSET checks every key");
    let value: Option<String> = redis::cmd("GET")
        .arg("a")
        .query_async(&mut conn)
        .await
        .expect("get");
    assert_eq!(value, None, "nothing of the refused MSET was written");
    assert_still_serving(&cache, "after-long-keys").await;
    cache.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_over_its_in_flight_limit_gets_busy() {
    let cache = TestCache::small(&["--max-requests-in-flight", "4"]).await;
    let (mut reader, mut write) = handshaken(&cache.client_addr).await;
    // Four PUTs that wait for chunks that never come: all in flight.
    for id in 1..=4 {
        write
            .write_all(
                &half_put(&format!("pending-{id}"), id, 4000)
                    .encode(id)
                    .to_bytes(),
            )
            .await
            .expect("write");
    }
    let exists = ClientRequest::Exists {
        key: Key::try_from("x").expect("key"),
    };
    write
        .write_all(&exists.encode(5).to_bytes())
        .await
        .expect("write");
    let (id, answer) = reply(&mut reader).await;
    assert_eq!(id, 5, "the fifth request is answered at once: {answer:?}");
    assert!(busy(&answer), "{answer:?}");
    let ClientReply::Error(err) = answer else {
        unreachable!()
    };
    assert!(err.message.contains("limit 4"), "{}", err.message);
    // Other connections are not affected.
    assert_still_serving(&cache, "other-connection").await;
    cache.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_beyond_the_buffer_budget_are_refused() {
    let cache =
        TestCache::small(&["--max-buffered-bytes", "1048576", "--buffer-wait", "300ms"]).await;
    let stored = random_bytes(100_000);
    cache
        .client(4, 2)
        .await
        .put("stored", stored.clone())
        .await
        .expect("put before");
    // A 700 KiB chunk held by a PUT that never completes takes most of the
    // 1 MiB budget; a second one does not fit.
    let (mut reader, mut write) = handshaken(&cache.client_addr).await;
    write
        .write_all(&half_put("big-1", 1, 2_800_000).encode(1).to_bytes())
        .await
        .expect("write");
    write
        .write_all(&half_put("big-2", 2, 2_800_000).encode(2).to_bytes())
        .await
        .expect("write");
    let (id, answer) = reply(&mut reader).await;
    assert_eq!(id, 2, "{answer:?}");
    assert!(busy(&answer), "{answer:?}");
    let ClientReply::Error(err) = answer else {
        unreachable!()
    };
    assert!(
        err.message.contains("buffer memory is full"),
        "{}",
        err.message
    );
    // Reads take no budget; small writes fit in what is left.
    let client = cache.client(4, 2).await;
    assert_eq!(client.get("stored").await.expect("get"), Some(stored));
    assert_still_serving(&cache, "small-write").await;
    // The budget comes back when the stuck upload goes away.
    drop((reader, write));
    cache.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_is_disconnected() {
    let cache = TestCache::small(&["--client-write-timeout", "1s"]).await;
    let client = cache.client(4, 2).await;
    let object = random_bytes(8 * 1024 * 1024);
    client.put("big", object.clone()).await.expect("put");

    // Thirty GETs of 8 MiB, and never a byte read.
    let (reader, mut write) = handshaken(&cache.client_addr).await;
    let get = ClientRequest::Get {
        key: Key::try_from("big").expect("key"),
    };
    for id in 1..=30 {
        write
            .write_all(&get.encode(id).to_bytes())
            .await
            .expect("write");
    }
    // Everyone else proceeds meanwhile.
    for _ in 0..5 {
        assert_eq!(
            client.get("big").await.expect("other GET"),
            Some(object.clone())
        );
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    // The proxy gave up on the connection: what it had written is there,
    // then the end, long before thirty objects' worth.
    let mut stream = reader.into_inner();
    let mut received = 0usize;
    let mut buf = vec![0u8; 1 << 20];
    tokio::time::timeout(LIMIT * 4, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => received += n,
            }
        }
    })
    .await
    .expect("the proxy closed the connection");
    assert!(
        received < 30 * object.len(),
        "{received} bytes: the connection was not cut"
    );
    assert_still_serving(&cache, "after-stalled-reader").await;
    cache.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_time_out_on_both_frontends() {
    let cache = TestCache::small(&["--client-idle-timeout", "1s"]).await;
    let (mut reader, _write) = handshaken(&cache.client_addr).await;
    let (id, answer) = reply(&mut reader).await;
    assert_eq!(id, 0);
    assert!(
        matches!(&answer, ClientReply::Error(err) if err.code == ErrorCode::Timeout && err.message.contains("idle")),
        "{answer:?}"
    );
    let end = tokio::time::timeout(LIMIT, reader.read_frame())
        .await
        .expect("closed in time");
    assert!(matches!(end, Ok(None) | Err(_)), "{end:?}");
    // Counted as an error like any other reply.
    let (status, metrics) =
        infinicache_tests::harness::http(cache.admin_addr, "GET", "/metrics", "").await;
    assert_eq!(status, 200);
    assert!(
        metrics.contains("\ninfinicache_errors_total{frontend=\"native\",kind=\"timeout\"} 1\n"),
        "the idle close is in the metrics"
    );

    let mut resp = TcpStream::connect(cache.resp_addr.clone().expect("RESP"))
        .await
        .expect("connect");
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(LIMIT, resp.read(&mut buf))
        .await
        .expect("closed in time")
        .unwrap_or(0);
    assert_eq!(n, 0, "the idle RESP connection was closed");

    // A client that keeps talking is never idle; the library reconnects
    // after an idle close.
    let client = cache.client(4, 2).await;
    client.put("k", random_bytes(1000)).await.expect("put");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(client.get("k").await.expect("get after idle").is_some());
    cache.stop().await;
}
