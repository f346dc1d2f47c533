//! Prometheus metrics (`GET /metrics`) of a real proxy: native and RESP
//! traffic is counted exactly, by frontend and command, with a latency
//! histogram per command; bytes, errors, node states, invocations, billing
//! and reclaims add up; the separate metrics listener serves the same.

use std::net::SocketAddr;
use std::time::Duration;

use infinicache_cli::dashboard::prometheus::Samples;
use infinicache_tests::harness::{TestCache, eventually, random_bytes};
use redis::AsyncConnectionConfig;
use redis::aio::MultiplexedConnection;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// `GET path` on `addr`: the response's head and body.
async fn http_get(addr: SocketAddr, path: &str) -> (String, String) {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream
            .write_all(request.as_bytes())
            .await
            .expect("send request");
        let mut response = Vec::new();
        stream
            .read_to_end(&mut response)
            .await
            .expect("read response");
        let text = String::from_utf8(response).expect("a UTF-8 response");
        let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP response");
        (head.to_string(), body.to_string())
    };
    tokio::time::timeout(Duration::from_secs(60), exchange)
        .await
        .expect("GET /metrics answered")
}

/// Scrapes `addr`, checking the status and content type.
async fn scrape(addr: SocketAddr) -> Samples {
    let (head, body) = http_get(addr, "/metrics").await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
    Samples::parse(&body).unwrap_or_else(|err| panic!("{err}:\n{body}"))
}

fn requests(samples: &Samples, frontend: &str, command: &str) -> f64 {
    samples
        .get(
            "infinicache_requests_total",
            &[("frontend", frontend), ("command", command)],
        )
        .unwrap_or_else(|| panic!("no requests_total for {frontend} {command}"))
}

async fn redis_connection(addr: &str) -> MultiplexedConnection {
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(30)))
        .set_response_timeout(Some(Duration::from_secs(120)));
    redis::Client::open(format!("redis://{addr}/"))
        .expect("redis URL")
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .expect("connect with the redis crate")
}

#[tokio::test]
async fn metrics_count_native_and_resp_traffic() {
    let cache = TestCache::small(&["--metrics-listen", "127.0.0.1:0", "--max-key-len", "64"]).await;
    let metrics_addr = cache
        .metrics_addr
        .expect("the ready line announces metrics=");
    let client = cache.client(4, 2).await;

    // Native: 3 PUTs (6 chunk requests each), 5 GETs (one a miss), 1
    // DELETE, 2 EXISTS, and one request refused for its key's length.
    let sizes = [100 * 1024, 300 * 1024, 7];
    let mut put_bytes = 0;
    for (i, size) in sizes.iter().enumerate() {
        client
            .put(format!("native-{i}").as_str(), random_bytes(*size))
            .await
            .expect("PUT");
        put_bytes += size;
    }
    let mut got_bytes = 0;
    for key in ["native-0", "native-1", "native-1", "native-2"] {
        got_bytes += client.get(key).await.expect("GET").expect("found").len();
    }
    assert!(client.get("missing").await.expect("GET").is_none());
    assert!(client.delete("native-2").await.expect("DELETE"));
    assert!(client.exists("native-0").await.expect("EXISTS"));
    assert!(!client.exists("native-2").await.expect("EXISTS"));
    let long_key = "k".repeat(100);
    client
        .exists(long_key.as_str())
        .await
        .expect_err("a key over --max-key-len is refused");

    // RESP: 2 SETs, 3 GETs (one of a native object), 1 unknown command.
    let mut con = redis_connection(cache.resp_addr.as_deref().expect("RESP on")).await;
    let value = random_bytes(50_000);
    let () = redis::cmd("SET")
        .arg("resp-0")
        .arg(value.as_ref())
        .query_async(&mut con)
        .await
        .expect("SET");
    let () = redis::cmd("SET")
        .arg("resp-1")
        .arg("x")
        .query_async(&mut con)
        .await
        .expect("SET");
    let mut resp_out = 0;
    for key in ["resp-0", "resp-1", "native-0"] {
        let got: Vec<u8> = redis::cmd("GET")
            .arg(key)
            .query_async(&mut con)
            .await
            .expect("GET");
        resp_out += got.len();
    }
    redis::cmd("NOSUCHCOMMAND")
        .query_async::<()>(&mut con)
        .await
        .expect_err("unknown command");

    // A native GET's task may still be forwarding its last chunks after
    // the client has decoded: wait until every request is recorded.
    let expected = [
        ("native", "put_chunk", 18.0),
        ("native", "get", 5.0),
        ("native", "delete", 1.0),
        ("native", "exists", 2.0),
        ("resp", "set", 2.0),
        ("resp", "get", 3.0),
        ("resp", "del", 0.0),
    ];
    eventually("every request is recorded", || async {
        let samples = scrape(cache.admin_addr).await;
        expected
            .iter()
            .all(|(frontend, command, n)| requests(&samples, frontend, command) >= *n)
    })
    .await;
    let samples = scrape(cache.admin_addr).await;

    for (frontend, command, n) in expected {
        let labels = [("frontend", frontend), ("command", command)];
        assert_eq!(
            requests(&samples, frontend, command),
            n,
            "{frontend} {command}"
        );
        let histogram = samples
            .histogram("infinicache_request_duration_seconds", &labels)
            .expect("a latency histogram per command");
        assert_eq!(histogram.count(), n, "{frontend} {command} histogram");
        assert_eq!(
            samples.get("infinicache_request_duration_seconds_count", &labels),
            Some(n)
        );
        // 16 bounds from 100 µs to 10 s, then +Inf; cumulative.
        assert_eq!(histogram.buckets.len(), 17);
        assert_eq!(histogram.buckets[0].0, 0.0001);
        assert_eq!(histogram.buckets[15].0, 10.0);
        assert!(histogram.buckets[16].0.is_infinite());
        assert!(histogram.buckets.windows(2).all(|w| w[0].1 <= w[1].1));
        if n > 0.0 {
            assert!(histogram.quantile(0.5).is_some());
        }
    }

    let errors = |frontend, kind| {
        samples
            .get(
                "infinicache_errors_total",
                &[("frontend", frontend), ("kind", kind)],
            )
            .unwrap_or_else(|| panic!("no errors_total for {frontend} {kind}"))
    };
    assert_eq!(errors("native", "invalid_argument"), 1.0);
    assert_eq!(errors("native", "too_large"), 0.0);
    assert_eq!(errors("resp", "ERR"), 1.0);
    assert_eq!(errors("resp", "NOAUTH"), 0.0);

    let bytes = |name, labels: &[(&str, &str)]| samples.get(name, labels).expect(name);
    let client_bytes = "infinicache_client_bytes_total";
    // Chunk bodies carry the data plus parity (and padding).
    let native_in = bytes(client_bytes, &[("frontend", "native"), ("direction", "in")]);
    assert!(native_in >= (put_bytes * 6 / 4) as f64, "{native_in}");
    let native_out = bytes(
        client_bytes,
        &[("frontend", "native"), ("direction", "out")],
    );
    assert!(native_out >= got_bytes as f64, "{native_out} < {got_bytes}");
    let resp_in = bytes(client_bytes, &[("frontend", "resp"), ("direction", "in")]);
    assert!(resp_in >= (value.len() + 1) as f64, "{resp_in}");
    let resp_out_metric = bytes(client_bytes, &[("frontend", "resp"), ("direction", "out")]);
    assert!(resp_out_metric >= resp_out as f64, "{resp_out_metric}");
    let node_out = bytes("infinicache_node_bytes_total", &[("direction", "out")]);
    assert!(node_out >= native_in, "every uploaded chunk went to a node");
    assert!(bytes("infinicache_node_bytes_total", &[("direction", "in")]) > 0.0);

    // The pool: every node in exactly one state.
    let nodes = samples.sum("infinicache_nodes", &[]);
    assert_eq!(nodes, 6.0);
    assert_eq!(
        samples
            .matching("infinicache_nodes", &[])
            .filter_map(|sample| sample.label("state"))
            .collect::<Vec<_>>(),
        [
            "idle",
            "warming",
            "invoking",
            "serving",
            "leaving",
            "backing_up",
            "failing"
        ]
    );
    // native-0, native-1, resp-0, resp-1.
    assert_eq!(samples.get("infinicache_objects", &[]), Some(4.0));
    let used = samples
        .get("infinicache_memory_used_bytes", &[])
        .expect("used");
    assert!(used >= native_in / 2.0, "{used}");
    // Six functions of 1024 MB, each keeping some back.
    let capacity = samples
        .get("infinicache_memory_capacity_bytes", &[])
        .expect("capacity");
    assert!(
        capacity > used && capacity <= (6u64 << 30) as f64,
        "{capacity}"
    );
    assert!(
        samples
            .get("infinicache_invocations_total", &[("purpose", "serve")])
            .expect("serve invocations")
            >= 1.0
    );

    // Invocations are billed once they return (nodes leave when idle).
    eventually("invocations are billed", || async {
        let samples = scrape(cache.admin_addr).await;
        samples.sum("infinicache_billed_gb_seconds_total", &[]) > 0.0
    })
    .await;
    let samples = scrape(cache.admin_addr).await;
    let gb_seconds = samples
        .get(
            "infinicache_billed_gb_seconds_total",
            &[("purpose", "serve")],
        )
        .expect("serve GB-seconds");
    assert!(gb_seconds > 0.0);
    let cost = samples.sum("infinicache_estimated_cost_usd_total", &[]);
    let billed = samples.sum("infinicache_billed_invocations_total", &[]);
    let expected_cost =
        samples.sum("infinicache_billed_gb_seconds_total", &[]) * 0.000_016_666_7 + billed * 0.2e-6;
    assert!(
        (cost - expected_cost).abs() < 1e-12,
        "{cost} vs {expected_cost}"
    );
    assert!(samples.sum("infinicache_cold_starts_total", &[]) >= 1.0);

    // The local platform's reclaims, by reason.
    let reclaimed = cache.reclaim("infinicache-node-0").await;
    assert!(reclaimed >= 1, "node 0 has an environment");
    let samples = scrape(cache.admin_addr).await;
    assert_eq!(
        samples.get("infinicache_reclaims_total", &[("reason", "admin")]),
        Some(reclaimed as f64)
    );

    // The separate listener serves the same exposition.
    let own = scrape(metrics_addr).await;
    assert_eq!(requests(&own, "resp", "set"), 2.0);
    assert_eq!(own.sum("infinicache_nodes", &[]), 6.0);
    let (head, _) = http_get(metrics_addr, "/status").await;
    assert!(
        head.starts_with("HTTP/1.1 404"),
        "only /metrics there: {head}"
    );
}
