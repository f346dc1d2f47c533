//! The `infinicache` command-line client against a real cache.

use infinicache_tests::harness::{TestCache, random_bytes, run_ok};
use infinicache_tests::target_bin;
use tokio::process::Command;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_round_trips_a_file() {
    let cache = TestCache::start(&[]).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let input = dir.path().join("input.bin");
    let output = dir.path().join("output.bin");
    let data = random_bytes(1024 * 1024 + 3);
    std::fs::write(&input, &data).expect("write input");

    let cli = |args: &[&str]| cache.cli(args);
    run_ok(cli(&["put", "file-key"]).arg(&input)).await;
    run_ok(cli(&["get", "file-key"]).arg(&output)).await;
    assert!(
        std::fs::read(&output).expect("read output") == data,
        "file changed"
    );

    let to_stdout = cli(&["get", "file-key"])
        .output()
        .await
        .expect("run get to stdout");
    assert!(to_stdout.stdout == data, "stdout output differs");

    let exists = cli(&["exists", "file-key"])
        .output()
        .await
        .expect("run exists");
    assert!(exists.status.success());

    let del = cli(&["del", "file-key"]).output().await.expect("run del");
    assert!(del.status.success());
    let missing = cli(&["get", "file-key"])
        .output()
        .await
        .expect("run get missing");
    assert_eq!(missing.status.code(), Some(1), "a missing key exits with 1");
    assert!(String::from_utf8_lossy(&missing.stderr).contains("not found"));

    let bad_file = cli(&["put", "k", "/nonexistent/file"])
        .output()
        .await
        .expect("run put");
    assert_eq!(bad_file.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&bad_file.stderr).contains("cannot read"));
    cache.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_reports_an_unreachable_proxy() {
    // A port nobody listens on: bind one, then free it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("free port")
        .port();
    let output = Command::new(target_bin("infinicache"))
        .args(["--proxy", &format!("127.0.0.1:{port}"), "get", "k"])
        .output()
        .await
        .expect("run get");
    assert_eq!(output.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&output.stderr).contains("unavailable"));
}
