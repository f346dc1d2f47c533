//! The S3 backend of the object store against an S3 API nobody on this
//! project wrote: ministack (installed by `make test` into `.venv`, or at
//! `MINISTACK_BIN`; like the other ministack tests, this one fails with a
//! hint when it is missing).
//!
//! `Cos::s3` takes its credentials from the AWS configuration chain, as in
//! production, so the test points the chain at fixed test credentials
//! through the environment before anything else runs. That is why this file
//! holds a single `#[test]` that builds its own runtime: nothing else in the
//! process reads the environment while it is being set.

use bytes::Bytes;
use infinicache::codec::{Chunk, CodecParams};
use infinicache::protocol::Key;
use infinicache_proxy::cos::layout::{
    self, META_PREFIX, chunk_key, decode_chunk, encode_chunk, object_prefix, parse_chunk_key,
};
use infinicache_proxy::cos::{Cos, CosBackend, CosError, CosSettings, S3Settings};
use infinicache_tests::ministack::{AWS_TEST_ENV, Ministack};

const BUCKET: &str = "infinistore-test";

/// Points the AWS configuration chain at the test credentials only,
/// ignoring any AWS configuration of the machine.
fn isolate_aws_environment(home: &std::path::Path) {
    // SAFETY: called first thing in the only test of this binary, before
    // the runtime (or anything else that could read the environment
    // concurrently) is started.
    unsafe {
        for (name, value) in AWS_TEST_ENV {
            std::env::set_var(name, value);
        }
        std::env::set_var("AWS_CONFIG_FILE", home.join("config"));
        std::env::set_var("AWS_SHARED_CREDENTIALS_FILE", home.join("credentials"));
        for name in [
            "AWS_PROFILE",
            "AWS_SESSION_TOKEN",
            "AWS_ENDPOINT_URL",
            "AWS_ENDPOINT_URL_S3",
        ] {
            std::env::remove_var(name);
        }
    }
}

fn settings(endpoint: &str, bucket: &str, prefix: &str) -> S3Settings {
    S3Settings {
        prefix: prefix.into(),
        endpoint_url: Some(endpoint.into()),
        region: Some("us-east-1".into()),
        path_style: true,
        // Two keys per page: the listings below span several pages, so the
        // continuation tokens are exercised without thousands of objects.
        list_page_size: Some(2),
        ..S3Settings::new(bucket)
    }
}

fn chunk(index: u8, version: u64, body: &'static [u8]) -> Chunk {
    let params = CodecParams::new(2, 1).expect("params");
    Chunk::new(
        params,
        index,
        2 * body.len() as u64,
        version,
        Bytes::from_static(body),
    )
}

#[test]
fn cos_s3_stores_lists_and_deletes_objects_in_an_s3_api() {
    let home = tempfile::tempdir().expect("temporary home");
    isolate_aws_environment(home.path());
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(round_trips(home.path()));
}

async fn round_trips(data_dir: &std::path::Path) {
    let ministack = Ministack::start().await;
    let endpoint = ministack.endpoint();
    ministack.create_bucket(BUCKET).await;

    // A missing bucket stops start-up with a clear error.
    let err = Cos::s3(&settings(&endpoint, "no-such-bucket", ""))
        .await
        .expect_err("a missing bucket");
    assert!(
        matches!(
            &err,
            CosError::S3 {
                op: "HeadBucket",
                ..
            }
        ) && err.to_string().contains("does not exist"),
        "{err}"
    );

    let cos = Cos::s3(&settings(&endpoint, BUCKET, "infinicache"))
        .await
        .expect("S3 store");
    assert_eq!(
        cos.describe(),
        format!("s3://{BUCKET}/infinicache/ ({endpoint})")
    );

    // Missing objects.
    assert_eq!(cos.get("meta/nothing").await.expect("get missing"), None);
    cos.delete("meta/nothing").await.expect("delete missing");
    assert!(cos.list("").await.expect("list empty").is_empty());

    // Chunks of two keys and two metadata objects: three listing prefixes.
    let greeting = Key::try_from("greeting").expect("key");
    let binary = Key::try_from(&b"\x00bin/ary\xff"[..]).expect("key");
    let stored = [
        (greeting.clone(), 1, chunk(0, 1, b"hel")),
        (greeting.clone(), 1, chunk(1, 1, b"lo!")),
        (greeting.clone(), 2, chunk(2, 2, b"xyz")),
        (binary.clone(), 7, chunk(0, 7, b"abc")),
    ];
    for (key, version, chunk) in &stored {
        cos.put(
            &chunk_key(key, *version, chunk.index()),
            encode_chunk(chunk),
            false,
        )
        .await
        .expect("put chunk");
    }
    let meta = [format!("{META_PREFIX}log-1"), format!("{META_PREFIX}log-2")];
    for name in &meta {
        cos.put(name, Bytes::from_static(b"{}"), true)
            .await
            .expect("put meta");
    }

    let mut expected: Vec<String> = stored
        .iter()
        .map(|(key, version, chunk)| chunk_key(key, *version, chunk.index()))
        .chain(meta.iter().cloned())
        .collect();
    expected.sort();
    assert_eq!(cos.list("").await.expect("list all"), expected);
    assert_eq!(cos.list(META_PREFIX).await.expect("list meta"), meta);
    let greeting_chunks = cos
        .list(&object_prefix(&greeting))
        .await
        .expect("list one key");
    assert_eq!(greeting_chunks.len(), 3, "{greeting_chunks:?}");
    assert_eq!(
        cos.list(&layout::version_prefix(&greeting, 2))
            .await
            .expect("list one version"),
        [chunk_key(&greeting, 2, 2)]
    );

    // What was stored comes back whole and self-describing.
    for (key, version, chunk) in &stored {
        let object = chunk_key(key, *version, chunk.index());
        assert_eq!(
            parse_chunk_key(&object),
            Some((key.clone(), *version, chunk.index()))
        );
        let bytes = cos.get(&object).await.expect("get").expect("stored");
        assert_eq!(&decode_chunk(bytes).expect("valid chunk"), chunk);
    }

    // Overwrites replace; a large body survives the trip.
    let big = Bytes::from((0..5 * 1024 * 1024).map(|i| i as u8).collect::<Vec<u8>>());
    cos.put(&meta[0], big.clone(), false)
        .await
        .expect("overwrite");
    assert_eq!(cos.get(&meta[0]).await.expect("get"), Some(big));

    // A corrupt object is an error, never data.
    let damaged = chunk_key(&binary, 8, 0);
    let mut bytes = encode_chunk(&chunk(0, 8, b"abc")).to_vec();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    cos.put(&damaged, Bytes::from(bytes), false)
        .await
        .expect("put damaged");
    let fetched = cos.get(&damaged).await.expect("get").expect("stored");
    assert!(matches!(decode_chunk(fetched), Err(CosError::Corrupt(_))));

    // Another prefix in the same bucket is another store.
    let other = Cos::from_settings(
        &CosSettings {
            backend: CosBackend::S3,
            bucket: Some(BUCKET.into()),
            prefix: "other/".into(),
            endpoint_url: Some(endpoint.clone()),
            region: Some("us-east-1".into()),
            path_style: true,
            ..CosSettings::default()
        },
        data_dir,
    )
    .await
    .expect("from settings")
    .expect("s3 is on");
    assert!(other.list("").await.expect("list other").is_empty());
    assert_eq!(other.get(&meta[1]).await.expect("get other"), None);

    // Deletes, twice.
    for object in cos.list("").await.expect("list") {
        cos.delete(&object).await.expect("delete");
        cos.delete(&object).await.expect("delete again");
        assert_eq!(cos.get(&object).await.expect("get deleted"), None);
    }
    assert!(cos.list("").await.expect("list emptied").is_empty());

    // Hostile keys never reach the service.
    assert!(matches!(
        cos.put("../escape", Bytes::new(), false).await,
        Err(CosError::InvalidKey { .. })
    ));
}
