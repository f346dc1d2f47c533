//! Client authentication on both frontends: a proxy with a `secret` refuses
//! native clients without it (or with a wrong one) in the handshake, and
//! RESP clients until they `AUTH`; the secret never shows in its output.

use std::process::Stdio;
use std::time::Duration;

use infinicache::Client;
use infinicache::client::ErrorKind;
use infinicache_tests::harness::{SMALL_POOL, TestCache, proxy_command, random_bytes};
use redis::AsyncConnectionConfig;

const SECRET: &str = "correct horse battery staple";

async fn connect(cache: &TestCache, secret: Option<&str>) -> Result<Client, infinicache::Error> {
    let mut builder = Client::builder()
        .proxy(&cache.client_addr)
        .data_shards(4)
        .parity_shards(2)
        .timeout(Duration::from_secs(60));
    if let Some(secret) = secret {
        builder = builder.secret(secret.to_string());
    }
    builder.connect().await
}

async fn resp(cache: &TestCache) -> redis::aio::MultiplexedConnection {
    let addr = cache.resp_addr.clone().expect("RESP is on");
    let client = redis::Client::open(format!("redis://{addr}/")).expect("url");
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(30)))
        .set_response_timeout(Some(Duration::from_secs(60)));
    client
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .expect("connect")
}

#[tokio::test]
async fn native_clients_need_the_secret() {
    let cache = TestCache::small(&["--secret", SECRET]).await;

    let missing = connect(&cache, None).await.expect_err("no secret");
    assert_eq!(missing.kind(), ErrorKind::Unauthorized, "{missing}");
    assert!(
        missing.to_string().contains("requires a secret"),
        "{missing}"
    );

    let wrong = connect(&cache, Some("correct horse battery stapl"))
        .await
        .expect_err("wrong secret");
    assert_eq!(wrong.kind(), ErrorKind::Unauthorized, "{wrong}");
    assert!(wrong.to_string().contains("wrong secret"), "{wrong}");
    assert!(
        !wrong.to_string().contains("stapl"),
        "never echoed: {wrong}"
    );

    let client = connect(&cache, Some(SECRET)).await.expect("right secret");
    let value = random_bytes(300_000);
    client.put("k", value.clone()).await.expect("put");
    assert_eq!(client.get("k").await.expect("get"), Some(value));
    cache.stop().await;
}

#[tokio::test]
async fn resp_clients_must_auth_with_the_secret() {
    let cache = TestCache::small(&["--secret", SECRET]).await;
    let mut conn = resp(&cache).await;
    let refused: redis::RedisResult<Option<Vec<u8>>> =
        redis::cmd("GET").arg("k").query_async(&mut conn).await;
    let err = refused.expect_err("not authenticated");
    assert!(err.to_string().contains("NOAUTH"), "{err}");
    let wrong: redis::RedisResult<String> =
        redis::cmd("AUTH").arg("guess").query_async(&mut conn).await;
    assert!(
        wrong.expect_err("wrong").to_string().contains("WRONGPASS"),
        "wrong password"
    );
    let ok: String = redis::cmd("AUTH")
        .arg(SECRET)
        .query_async(&mut conn)
        .await
        .expect("auth");
    assert_eq!(ok, "OK");
    let () = redis::cmd("SET")
        .arg("k")
        .arg(b"v".as_slice())
        .query_async(&mut conn)
        .await
        .expect("set");

    // An explicit RESP password wins over the secret for RESP clients.
    let both = TestCache::small(&["--secret", SECRET, "--resp-password", "other"]).await;
    let mut conn = resp(&both).await;
    let with_secret: redis::RedisResult<String> =
        redis::cmd("AUTH").arg(SECRET).query_async(&mut conn).await;
    assert!(with_secret.is_err(), "the RESP password is required");
    let ok: String = redis::cmd("AUTH")
        .arg("other")
        .query_async(&mut conn)
        .await
        .expect("auth");
    assert_eq!(ok, "OK");
    both.stop().await;
    cache.stop().await;
}

/// The secret is never printed, even at debug level, even when clients get
/// it wrong; nor does `--help` show a value taken from the environment.
#[tokio::test]
async fn the_secret_stays_out_of_the_output() {
    let data = tempfile::tempdir().expect("temp dir");
    let mut proxy = proxy_command()
        .args([
            "--admin-listen",
            "127.0.0.1:0",
            "--resp-listen",
            "127.0.0.1:0",
        ])
        .args(SMALL_POOL)
        .arg("--data-dir")
        .arg(data.path())
        .env("INFINICACHE_SECRET", SECRET)
        .env("INFINICACHE_LOG", "debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the proxy");
    let stdout = proxy.stdout.take().expect("stdout");
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stdout));
    let ready = tokio::time::timeout(Duration::from_secs(30), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.starts_with("infinicache-proxy ready") {
                return line;
            }
        }
        panic!("the proxy exited before it was ready");
    })
    .await
    .expect("ready in time");
    let client_addr = ready
        .split_whitespace()
        .find_map(|part| part.strip_prefix("client="))
        .expect("client address")
        .to_string();
    for secret in [None, Some("wrong"), Some(SECRET)] {
        let mut builder = Client::builder().proxy(&client_addr);
        if let Some(secret) = secret {
            builder = builder.secret(secret);
        }
        let _ = builder.connect().await;
    }
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(proxy.id().expect("pid") as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let output = tokio::time::timeout(Duration::from_secs(120), proxy.wait_with_output())
        .await
        .expect("exit in time")
        .expect("output");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("refusing a connection"),
        "debug logs are on"
    );
    assert!(!stderr.contains(SECRET), "the secret leaked into the logs");

    let help = std::process::Command::new(infinicache_tests::target_bin("infinicache-proxy"))
        .arg("--help")
        .env("INFINICACHE_SECRET", SECRET)
        .output()
        .expect("help");
    assert!(!String::from_utf8_lossy(&help.stdout).contains(SECRET));
}
