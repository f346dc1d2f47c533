//! TLS on the client listeners: with a certificate the proxy serves native
//! clients and Redis clients over TLS only; clients that trust another CA,
//! or speak plain text, are turned away without disturbing the others; a
//! certificate the proxy cannot use stops it at start with a clear message.

use std::time::Duration;

use infinicache::Client;
use infinicache::client::{ErrorKind, TlsOptions};
use infinicache_tests::certs::TestCerts;
use infinicache_tests::harness::{TestCache, proxy_command, random_bytes, run_ok};
use infinicache_tests::redis_cli::run_cli;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A cache whose client listeners require TLS with `certs`.
async fn tls_cache(certs: &TestCerts) -> TestCache {
    let cert = certs.cert.to_string_lossy().into_owned();
    let key = certs.key.to_string_lossy().into_owned();
    TestCache::small(&["--tls-cert", &cert, "--tls-key", &key]).await
}

async fn connect(addr: &str, tls: Option<TlsOptions>) -> Result<Client, infinicache::Error> {
    let mut builder = Client::builder()
        .proxy(addr)
        .data_shards(4)
        .parity_shards(2)
        .timeout(Duration::from_secs(60))
        .connect_timeout(Duration::from_secs(20));
    if let Some(tls) = tls {
        builder = builder.tls(tls);
    }
    builder.connect().await
}

#[tokio::test]
async fn native_and_redis_clients_round_trip_over_tls() {
    let dir = tempfile::tempdir().expect("temp dir");
    let certs = TestCerts::generate(dir.path()).expect("certificates");
    let cache = tls_cache(&certs).await;

    // By IP address (the certificate names 127.0.0.1) ...
    let client = connect(
        &cache.client_addr,
        Some(TlsOptions::new().ca_file(&certs.ca)),
    )
    .await
    .expect("TLS client");
    let small = random_bytes(1000);
    let large = random_bytes(10 << 20);
    client.put("small", small.clone()).await.expect("put");
    client.put("large", large.clone()).await.expect("put");
    assert_eq!(client.get("small").await.expect("get"), Some(small));
    assert_eq!(client.get("large").await.expect("get"), Some(large.clone()));

    // ... and by the name in the certificate.
    let port = cache.client_addr.rsplit_once(':').expect("port").1;
    let by_name = connect(
        &format!("localhost:{port}"),
        Some(
            TlsOptions::new()
                .ca_file(&certs.ca)
                .server_name("localhost"),
        ),
    )
    .await
    .expect("TLS client by name");
    assert_eq!(by_name.get("large").await.expect("get"), Some(large));

    // redis-cli over TLS, with a value larger than one TLS record.
    let resp = cache.resp_addr.clone().expect("RESP is on");
    let ca = certs.ca.to_string_lossy().into_owned();
    let tls_args = ["--tls", "--cacert", ca.as_str()];
    let value = random_bytes(300_000).to_vec();
    let set = run_cli(
        &resp,
        &[&tls_args[..], &["-x", "SET", "viaresp"]].concat(),
        Some(&value),
    )
    .await;
    assert_eq!(String::from_utf8_lossy(&set).trim(), "OK");
    let read = run_cli(&resp, &[&tls_args[..], &["GET", "viaresp"]].concat(), None).await;
    // redis-cli prints the value and a newline.
    assert_eq!(&read[..read.len() - 1], &value[..], "GET over TLS");
    // Written through RESP, read natively: one store behind both.
    assert_eq!(
        client.get("viaresp").await.expect("get").as_deref(),
        Some(&value[..])
    );
    cache.stop().await;
}

#[tokio::test]
async fn clients_that_cannot_do_this_tls_are_turned_away_and_others_go_on() {
    let dir = tempfile::tempdir().expect("temp dir");
    let certs = TestCerts::generate(dir.path()).expect("certificates");
    let other_dir = tempfile::tempdir().expect("temp dir");
    let other = TestCerts::generate(other_dir.path()).expect("certificates");
    let cache = tls_cache(&certs).await;
    let good = connect(
        &cache.client_addr,
        Some(TlsOptions::new().ca_file(&certs.ca)),
    )
    .await
    .expect("TLS client");
    good.put("k", random_bytes(50_000)).await.expect("put");

    // A plain-text client: the proxy answers its Hello with a TLS alert.
    let plain = connect(&cache.client_addr, None)
        .await
        .expect_err("plain text on a TLS listener");
    assert_eq!(plain.kind(), ErrorKind::Unavailable, "{plain}");
    assert!(plain.to_string().contains("TLS"), "a hint: {plain}");

    // A client trusting another CA refuses the proxy's certificate.
    let stranger = connect(
        &cache.client_addr,
        Some(TlsOptions::new().ca_file(&other.ca)),
    )
    .await
    .expect_err("unknown issuer");
    assert_eq!(stranger.kind(), ErrorKind::Unavailable, "{stranger}");
    assert!(stranger.to_string().contains("TLS"), "{stranger}");
    assert!(
        stranger.to_string().to_lowercase().contains("certificate"),
        "{stranger}"
    );

    // A name the certificate does not carry.
    let wrong_name = connect(
        &cache.client_addr,
        Some(
            TlsOptions::new()
                .ca_file(&certs.ca)
                .server_name("cache.example"),
        ),
    )
    .await
    .expect_err("wrong name");
    assert!(
        wrong_name
            .to_string()
            .to_lowercase()
            .contains("certificate"),
        "{wrong_name}"
    );

    // A CA file that is not there is the caller's mistake, named.
    let missing = connect(
        &cache.client_addr,
        Some(TlsOptions::new().ca_file(dir.path().join("nope.pem"))),
    )
    .await
    .expect_err("missing CA file");
    assert_eq!(missing.kind(), ErrorKind::InvalidArgument, "{missing}");
    assert!(missing.to_string().contains("nope.pem"), "{missing}");

    // Garbage on both TLS listeners, and a client that never finishes its
    // handshake: dropped, the others keep being served.
    let resp = cache.resp_addr.clone().expect("RESP is on");
    for addr in [cache.client_addr.as_str(), resp.as_str()] {
        let mut garbage = tokio::net::TcpStream::connect(addr).await.expect("connect");
        garbage
            .write_all(b"*1\r\n$4\r\nPING\r\n\x00\xff\xfe garbage")
            .await
            .expect("write");
        let mut sink = Vec::new();
        // Closed, or reset: either way, within the handshake timeout.
        let _closed = tokio::time::timeout(Duration::from_secs(30), garbage.read_to_end(&mut sink))
            .await
            .expect("the proxy closes the connection");
        assert!(
            !String::from_utf8_lossy(&sink).contains("PONG"),
            "no plain-text reply on a TLS listener"
        );
    }
    let _stalled = tokio::net::TcpStream::connect(&cache.client_addr)
        .await
        .expect("connect");
    assert_eq!(
        good.get("k").await.expect("get").map(|value| value.len()),
        Some(50_000)
    );
    cache.stop().await;
}

/// The proxy does not start with a certificate it cannot use, and says
/// which file is wrong.
#[tokio::test]
async fn unusable_certificates_stop_the_proxy_at_start() {
    let dir = tempfile::tempdir().expect("temp dir");
    let certs = TestCerts::generate(dir.path()).expect("certificates");
    let other_dir = tempfile::tempdir().expect("temp dir");
    let other = TestCerts::generate(other_dir.path()).expect("certificates");
    let missing = dir.path().join("missing.pem");
    let cases = [
        (missing.clone(), certs.key.clone(), "missing.pem"),
        (certs.key.clone(), certs.key.clone(), "no PEM certificate"),
        (
            certs.cert.clone(),
            other.key.clone(),
            "cannot be used with the certificate",
        ),
        (certs.cert.clone(), certs.cert.clone(), "server.pem"),
    ];
    for (cert, key, expected) in cases {
        let output = proxy_command()
            .args(["--no-resp", "--no-admin", "--pool-size", "3"])
            .args(["--data-shards", "2", "--parity-shards", "1"])
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .arg("--tls-cert")
            .arg(&cert)
            .arg("--tls-key")
            .arg(&key)
            .output();
        let output = tokio::time::timeout(Duration::from_secs(60), output)
            .await
            .expect("the proxy gives up at once")
            .expect("run the proxy");
        assert!(!output.status.success(), "started with {cert:?} / {key:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(expected),
            "{cert:?} / {key:?}: expected {expected:?} in {stderr}"
        );
    }
}

/// The command-line client speaks TLS with `--tls-ca`, and without it is
/// told the proxy may require TLS.
#[tokio::test]
async fn the_cli_connects_over_tls() {
    let dir = tempfile::tempdir().expect("temp dir");
    let certs = TestCerts::generate(dir.path()).expect("certificates");
    let cache = tls_cache(&certs).await;
    let input = dir.path().join("input.bin");
    let data = random_bytes(200_000);
    std::fs::write(&input, &data).expect("write input");
    let ca = certs.ca.to_string_lossy().into_owned();
    run_ok(cache.cli(&["--tls-ca", &ca, "put", "cli-key"]).arg(&input)).await;
    let get = run_ok(&mut cache.cli(&["--tls-ca", &ca, "get", "cli-key"])).await;
    assert!(get.stdout == data, "the value read back differs");

    let plain = cache
        .cli(&["get", "cli-key"])
        .output()
        .await
        .expect("run get");
    assert_eq!(plain.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&plain.stderr);
    assert!(stderr.contains("TLS"), "{stderr}");

    // INFINICACHE_TLS=1 turns TLS on as --tls does: the handshake happens,
    // and fails on the test CA, which the system does not trust; =0 is off.
    let by_env = |value: &str| {
        let mut command = cache.cli(&["get", "cli-key"]);
        command.env("INFINICACHE_TLS", value);
        command
    };
    let on = by_env("1").output().await.expect("run get");
    let stderr = String::from_utf8_lossy(&on.stderr);
    assert_eq!(on.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("certificate"), "{stderr}");
    let off = by_env("0").output().await.expect("run get");
    assert_eq!(off.stderr, plain.stderr, "INFINICACHE_TLS=0 is plain text");
    cache.stop().await;
}
