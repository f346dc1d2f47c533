//! The S3 backend of the object store against an S3 API nobody on this
//! project wrote: ministack (installed by `make test` into `.venv`, or at
//! `MINISTACK_BIN`; like the other ministack tests, these fail with a hint
//! when it is missing). First the store on its own, then the real proxy on
//! a bucket (`--cos s3`), mirroring `durable.rs` (the directory backend):
//! objects outlive every environment, a restarted proxy finds them in the
//! bucket, and deleted or overwritten versions leave it.
//!
//! `Cos::s3` takes its credentials from the AWS configuration chain, as in
//! production, so the tests point the chain at fixed test credentials
//! through the process environment, once, before anything else in the
//! process runs (see [`isolate_aws_environment`]). The proxies get the same
//! credentials in their environment.

use std::future::Future;
use std::sync::Once;

use bytes::Bytes;
use infinicache::codec::{Chunk, CodecParams};
use infinicache::protocol::{Key, MAX_KEY_LEN};
use infinicache_proxy::cluster::manifest::{record_key, records_prefix};
use infinicache_proxy::cos::layout::{
    self, CHUNKS_PREFIX, KeySegment, MAX_HEX_KEY_LEN, META_PREFIX, chunk_key, decode_chunk,
    encode_chunk, object_prefix, parse_chunk_key,
};
use infinicache_proxy::cos::{Cos, CosBackend, CosError, CosSettings, S3Settings};
use infinicache_tests::harness::{SMALL_POOL, TestCache, eventually, random_bytes};
use infinicache_tests::ministack::{AWS_TEST_ENV, Ministack};

const BUCKET: &str = "infinistore-test";

/// Nodes of [`SMALL_POOL`].
const NODES: usize = 6;

/// Points the AWS configuration chain at the test credentials only,
/// ignoring any AWS configuration of the machine (the configuration files
/// are empty).
///
/// Every test calls this first thing, before it starts a runtime or
/// anything else that could read the environment; the first call writes
/// it, and the others wait until it has.
fn isolate_aws_environment() {
    static ISOLATED: Once = Once::new();
    ISOLATED.call_once(|| {
        // SAFETY: no other thread of this process reads the environment
        // while it is written: every test calls this before doing anything
        // else, and `call_once` keeps the others waiting until it returns.
        unsafe {
            for (name, value) in AWS_TEST_ENV {
                std::env::set_var(name, value);
            }
            // Empty files: no profile, no credentials of the machine.
            std::env::set_var("AWS_CONFIG_FILE", "/dev/null");
            std::env::set_var("AWS_SHARED_CREDENTIALS_FILE", "/dev/null");
            for name in [
                "AWS_PROFILE",
                "AWS_SESSION_TOKEN",
                "AWS_ENDPOINT_URL",
                "AWS_ENDPOINT_URL_S3",
            ] {
                std::env::remove_var(name);
            }
        }
    });
}

/// Runs one test on its own runtime, in an isolated AWS environment.
fn run(test: impl Future<Output = ()>) {
    isolate_aws_environment();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(test);
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

/// A key of `len` bytes: `prefix`, then `x`s.
fn long_key(prefix: &str, len: usize) -> Key {
    let mut bytes = prefix.as_bytes().to_vec();
    bytes.resize(len, b'x');
    Key::try_from(bytes).expect("key")
}

#[test]
fn cos_s3_stores_lists_and_deletes_objects_in_an_s3_api() {
    let home = tempfile::tempdir().expect("temporary data directory");
    run(round_trips(home.path()));
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

    // Chunks of four keys (two named by their digest) and two metadata
    // objects.
    let greeting = Key::try_from("greeting").expect("key");
    let binary = Key::try_from(&b"\x00bin/ary\xff"[..]).expect("key");
    let long = long_key("long-a", MAX_HEX_KEY_LEN + 1);
    let longest = long_key("long-b", MAX_KEY_LEN);
    let stored = [
        (greeting.clone(), 1, chunk(0, 1, b"hel")),
        (greeting.clone(), 1, chunk(1, 1, b"lo!")),
        (greeting.clone(), 2, chunk(2, 2, b"xyz")),
        (binary.clone(), 7, chunk(0, 7, b"abc")),
        (long.clone(), 9, chunk(1, 9, b"def")),
        (long.clone(), 10, chunk(0, 10, b"ghi")),
        (longest.clone(), 9, chunk(0, 9, b"jkl")),
    ];
    for (key, version, chunk) in &stored {
        cos.put(
            &chunk_key(key, *version, chunk.index()),
            encode_chunk(key, chunk),
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
    for (key, count) in [(&greeting, 3), (&binary, 1), (&long, 2), (&longest, 1)] {
        let chunks = cos.list(&object_prefix(key)).await.expect("list one key");
        assert_eq!(chunks.len(), count, "{chunks:?}");
    }
    assert_eq!(
        cos.list(&layout::version_prefix(&greeting, 2))
            .await
            .expect("list one version"),
        [chunk_key(&greeting, 2, 2)]
    );
    assert_eq!(
        cos.list(&layout::version_prefix(&long, 9))
            .await
            .expect("list one version of a long key"),
        [chunk_key(&long, 9, 1)]
    );

    // What was stored comes back whole and self-describing.
    for (key, version, chunk) in &stored {
        let object = chunk_key(key, *version, chunk.index());
        assert_eq!(
            parse_chunk_key(&object),
            Some((KeySegment::of(key), *version, chunk.index()))
        );
        let bytes = cos.get(&object).await.expect("get").expect("stored");
        let decoded = decode_chunk(bytes).expect("valid chunk");
        assert!(decoded.belongs_to(key));
        assert_eq!(&decoded.chunk, chunk);
    }

    // Overwrites replace; a large body survives the trip.
    let big = Bytes::from((0..5 * 1024 * 1024).map(|i| i as u8).collect::<Vec<u8>>());
    cos.put(&meta[0], big.clone(), false)
        .await
        .expect("overwrite");
    assert_eq!(cos.get(&meta[0]).await.expect("get"), Some(big));

    // A corrupt object is an error, never data.
    let damaged = chunk_key(&binary, 8, 0);
    let mut bytes = encode_chunk(&binary, &chunk(0, 8, b"abc")).to_vec();
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

/// A ministack with one bucket, and a view of the bucket through the S3
/// API under the prefix the proxy uses by default.
struct Bucket {
    ministack: Ministack,
    cos: Cos,
}

impl Bucket {
    async fn create() -> Bucket {
        let ministack = Ministack::start().await;
        ministack.create_bucket(BUCKET).await;
        let prefix = CosSettings::default().prefix;
        let cos = Cos::s3(&settings(&ministack.endpoint(), BUCKET, &prefix))
            .await
            .expect("S3 store");
        Bucket { ministack, cos }
    }

    /// A proxy (with [`SMALL_POOL`]) storing its chunks and manifest in the
    /// bucket, in write mode `mode`.
    async fn proxy(&self, mode: &str) -> TestCache {
        let endpoint = self.ministack.endpoint();
        let mut args: Vec<&str> = SMALL_POOL.to_vec();
        args.extend([
            "--cos",
            "s3",
            "--cos-bucket",
            BUCKET,
            "--cos-endpoint-url",
            &endpoint,
            "--cos-write-mode",
            mode,
        ]);
        TestCache::start_with_env(&args, AWS_TEST_ENV).await
    }

    async fn list(&self, prefix: &str) -> Vec<String> {
        self.cos.list(prefix).await.expect("list the bucket")
    }

    /// Chunk objects in the bucket.
    async fn chunks(&self) -> Vec<String> {
        self.list(CHUNKS_PREFIX).await
    }
}

async fn reclaim_all(cache: &TestCache) {
    for node in 0..NODES {
        cache.reclaim(&format!("infinicache-node-{node}")).await;
    }
}

/// Short keys and two long ones: one just past the readable form's limit,
/// one of the longest length the protocol allows.
fn objects(name: &str) -> Vec<(Key, Bytes)> {
    vec![
        (
            Key::try_from(format!("{name}-short")).expect("key"),
            random_bytes(150_000),
        ),
        (long_key(name, MAX_HEX_KEY_LEN + 1), random_bytes(150_001)),
        (long_key(name, MAX_KEY_LEN), random_bytes(100_002)),
    ]
}

#[test]
fn cos_s3_objects_outlive_every_node_that_held_them() {
    run(async {
        let bucket = Bucket::create().await;
        let cache = bucket.proxy("async").await;
        let client = cache.client(4, 2).await;
        let objects = objects("durable");
        for (key, value) in &objects {
            client.put(key, value.clone()).await.expect("put");
        }
        // Async mode: the write-back finishes in the background.
        eventually("every chunk is in the bucket", || async {
            bucket.chunks().await.len() == objects.len() * NODES
        })
        .await;
        for (key, _) in &objects {
            assert_eq!(bucket.list(&object_prefix(key)).await.len(), NODES);
        }

        // Every environment is gone: memory holds nothing any more.
        reclaim_all(&cache).await;
        for (key, value) in &objects {
            let got = client.get(key).await.expect("get from the bucket");
            assert!(got.as_ref() == Some(value), "{} bytes: changed", key.len());
        }
        assert_eq!(cache.counter("objects_lost").await, 0);
        cache.stop().await;
    });
}

#[test]
fn cos_s3_sync_mode_survives_a_reclaim_right_after_the_acknowledgement() {
    run(async {
        let bucket = Bucket::create().await;
        let cache = bucket.proxy("sync").await;
        let client = cache.client(4, 2).await;
        let objects = objects("synced");
        for (key, value) in &objects {
            client.put(key, value.clone()).await.expect("put");
        }
        // Acknowledged means durable: no waiting.
        assert_eq!(bucket.chunks().await.len(), objects.len() * NODES);
        assert_eq!(bucket.list(&records_prefix()).await.len(), objects.len());
        reclaim_all(&cache).await;
        for (key, value) in &objects {
            let got = client.get(key).await.expect("get");
            assert!(got.as_ref() == Some(value), "{} bytes: changed", key.len());
        }
        cache.stop().await;
    });
}

#[test]
fn cos_s3_a_restarted_proxy_serves_every_object_in_the_bucket() {
    run(async {
        let bucket = Bucket::create().await;
        let objects = objects("restart");
        let newer = random_bytes(5_000);
        let deleted = long_key("restart-deleted", MAX_HEX_KEY_LEN + 10);
        let mut last_version = 0;
        {
            let cache = bucket.proxy("sync").await;
            let client = cache.client(4, 2).await;
            for (key, value) in &objects {
                last_version = client.put(key, value.clone()).await.expect("put");
            }
            client
                .put(&deleted, random_bytes(1_000))
                .await
                .expect("put");
            client
                .put(&objects[1].0, newer.clone())
                .await
                .expect("overwrite");
            assert!(client.delete(&deleted).await.expect("delete"));
            // Stopping the proxy kills every environment: memory is gone.
            cache.stop().await;
        }
        // The manifest is in the bucket, one record per object, each under
        // its key's name.
        let mut expected: Vec<String> = objects.iter().map(|(key, _)| record_key(key)).collect();
        expected.sort();
        assert_eq!(bucket.list(&records_prefix()).await, expected);

        let cache = bucket.proxy("sync").await;
        let client = cache.client(4, 2).await;
        assert_eq!(cache.status().await["objects"], objects.len());
        assert_eq!(client.get(&objects[1].0).await.expect("get"), Some(newer));
        for (key, value) in [&objects[0], &objects[2]] {
            let got = client.get(key).await.expect("get after restart");
            assert!(got.as_ref() == Some(value), "{} bytes: changed", key.len());
        }
        assert_eq!(client.get(&deleted).await.expect("get"), None, "deleted");
        // New versions keep increasing past the recovered ones.
        let version = client
            .put(&objects[0].0, random_bytes(10))
            .await
            .expect("put");
        assert!(version > last_version, "{version} after {last_version}");
        cache.stop().await;
    });
}

#[test]
fn cos_s3_deleted_and_overwritten_versions_leave_the_bucket() {
    run(async {
        let bucket = Bucket::create().await;
        let cache = bucket.proxy("sync").await;
        let client = cache.client(4, 2).await;
        // Two long keys that differ only in their last byte, and a short one.
        let kept = long_key("kept", MAX_HEX_KEY_LEN + 50);
        let doomed = {
            let mut bytes = kept.as_bytes().to_vec();
            if let Some(last) = bytes.last_mut() {
                *last = b'y';
            }
            Key::try_from(bytes).expect("key")
        };
        let short = Key::try_from("short-doomed").expect("key");
        let old_version = client.put(&kept, random_bytes(10_000)).await.expect("put");
        for key in [&doomed, &short] {
            client.put(key, random_bytes(10_000)).await.expect("put");
        }
        assert_eq!(bucket.chunks().await.len(), 3 * NODES);

        let newer = random_bytes(20_000);
        let new_version = client.put(&kept, newer.clone()).await.expect("overwrite");
        for key in [&doomed, &short] {
            assert!(client.delete(key).await.expect("delete"));
        }
        eventually("only the newest version of kept remains", || async {
            bucket.chunks().await.len() == NODES
        })
        .await;
        assert!(
            bucket
                .list(&layout::version_prefix(&kept, old_version))
                .await
                .is_empty()
        );
        for key in [&doomed, &short] {
            assert!(bucket.list(&object_prefix(key)).await.is_empty());
        }
        for object in bucket.list(&object_prefix(&kept)).await {
            let (segment, version, _) = parse_chunk_key(&object).expect("a chunk object");
            assert!(segment.names(&kept));
            assert_eq!(version, new_version, "{object}");
        }
        // The manifest lost the deleted keys' records too.
        eventually("the deleted keys' records are gone", || async {
            bucket.list(&records_prefix()).await == [record_key(&kept)]
        })
        .await;

        reclaim_all(&cache).await;
        assert_eq!(client.get(&kept).await.expect("get"), Some(newer));
        for key in [&doomed, &short] {
            assert_eq!(client.get(key).await.expect("get"), None);
        }
        cache.stop().await;
    });
}
