//! The AWS path end to end, against a Lambda implementation nobody on this
//! project wrote: `infinicache-proxy deploy` puts the node functions into
//! ministack, `infinicache-proxy --platform aws` serves from them, and the
//! Rust client round-trips objects.

use infinicache_tests::harness::{SMALL_POOL, TestCache, random_bytes};
use infinicache_tests::lambda_client;
use infinicache_tests::ministack::{AWS_TEST_ENV, Ministack, ROLE, deploy};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_runs_on_functions_deployed_to_a_lambda_api() {
    let ministack = Ministack::start().await;
    let endpoint = ministack.endpoint();
    deploy(&[
        "--pool-size",
        "6",
        "--role",
        ROLE,
        "--endpoint-url",
        &endpoint,
    ])
    .await
    .success();

    let args: Vec<&str> = ["--platform", "aws", "--endpoint-url", &endpoint]
        .into_iter()
        .chain(SMALL_POOL.iter().copied())
        .collect();
    let cache = TestCache::start_with_env(&args, AWS_TEST_ENV).await;
    let client = cache.client(4, 2).await;
    let mut stored = Vec::new();
    for (key, size) in [
        ("1KiB", 1024),
        ("1MiB", 1024 * 1024),
        ("10MiB", 10 * 1024 * 1024),
    ] {
        let data = random_bytes(size);
        client
            .put(key, data.clone())
            .await
            .expect("put through ministack");
        assert_eq!(
            client.get(key).await.expect("get").as_ref(),
            Some(&data),
            "{key}"
        );
        stored.push((key, data));
    }

    // A function that disappears from under the proxy (the API answers
    // ResourceNotFoundException) costs one chunk; the objects, whose other
    // chunks are elsewhere, stay readable.
    lambda_client(&endpoint)
        .delete_function()
        .function_name("infinicache-node-5")
        .send()
        .await
        .expect("delete one function");
    for (key, data) in &stored {
        assert_eq!(
            client.get(*key).await.expect("get without node 5").as_ref(),
            Some(data),
            "{key}"
        );
    }
    cache.stop().await;
}
