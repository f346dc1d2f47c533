//! Failures reported by the Lambda platform reach the client as clear
//! errors, failing nodes are backed off instead of hammered, and the proxy
//! keeps serving.

use std::time::Duration;

use infinicache::Error;
use infinicache_tests::harness::{SMALL_POOL, TestCache, random_bytes};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn function_errors_are_surfaced_and_failing_nodes_backed_off() {
    // Nodes are told to dial an address where nobody listens: every serving
    // invocation ends in a function error (X-Amz-Function-Error: Unhandled).
    let args: Vec<&str> = SMALL_POOL
        .iter()
        .copied()
        .chain(["--advertise-addr", "127.0.0.1:1"])
        .collect();
    let cache = TestCache::start(&args).await;
    let client = cache.client(4, 2).await;

    let err = client
        .put("doomed", random_bytes(1000))
        .await
        .expect_err("no node can be reached");
    let message = err.to_string();
    assert!(
        message.contains("function error") && message.contains("cannot reach proxy"),
        "{message}"
    );

    // Within the backoff the nodes are not invoked again: the next PUT fails
    // at once, without new invocations.
    let invocations = cache.billing().await.len();
    assert!(
        invocations >= 6,
        "each node was invoked once ({invocations})"
    );
    let err = client
        .put("doomed", random_bytes(1000))
        .await
        .expect_err("still failing");
    assert!(err.to_string().contains("failed 1 times in a row"), "{err}");
    assert_eq!(
        cache.billing().await.len(),
        invocations,
        "a backed-off node must not be invoked"
    );

    // The proxy itself keeps serving what does not need the nodes.
    assert!(!client.exists("doomed").await.expect("exists"));
    cache.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_lambda_endpoint_is_a_clear_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("free port")
        .port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let args: Vec<&str> = ["--platform", "aws", "--endpoint-url", &endpoint]
        .into_iter()
        .chain(SMALL_POOL.iter().copied())
        .collect();
    let cache = TestCache::start_with_env(
        &args,
        &[
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
            ("AWS_REGION", "us-east-1"),
        ],
    )
    .await;
    let client = infinicache::Client::builder()
        .proxy(&cache.client_addr)
        .timeout(Duration::from_secs(30))
        .connect()
        .await
        .expect("the proxy itself is up");
    let err = client
        .put("k", random_bytes(100))
        .await
        .expect_err("no Lambda API");
    assert!(
        matches!(err, Error::Server(_) | Error::Unavailable(_)),
        "{err:?}"
    );
    assert!(err.to_string().contains("Lambda API error"), "{err}");
    assert_eq!(
        client.get("k").await.expect("get"),
        None,
        "nothing half-written is visible"
    );
    cache.stop().await;
}
