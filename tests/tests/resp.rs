//! The RESP (Redis protocol) frontend against the real proxy: driven by the
//! `redis` crate and by `redis-cli`, read across frontends, and fed hostile
//! bytes.

use std::process::Stdio;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use infinicache_proxy::resp::frame::{Frame, Limits};
use infinicache_tests::harness::{TestCache, eventually, random_bytes};
use infinicache_tests::redis_cli::{redis_cli, run_cli};
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long one raw exchange may take before the test fails.
const LIMIT: Duration = Duration::from_secs(30);

const TEN_MIB: usize = 10 * 1024 * 1024;

async fn start_cache(args: &[&str]) -> (TestCache, String) {
    let cache = TestCache::small(args).await;
    let resp = cache
        .resp_addr
        .clone()
        .expect("the harness turns the RESP frontend on");
    (cache, resp)
}

/// A multiplexed `redis` connection to `url` with generous timeouts (the
/// machines running the tests are shared and slow; the default response
/// timeout is 500 ms).
async fn connect_url(url: &str) -> redis::RedisResult<MultiplexedConnection> {
    let client = redis::Client::open(url)?;
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(30)))
        .set_response_timeout(Some(Duration::from_secs(120)));
    client
        .get_multiplexed_async_connection_with_config(&config)
        .await
}

async fn connect(addr: &str) -> MultiplexedConnection {
    connect_url(&format!("redis://{addr}/"))
        .await
        .expect("connect with the redis crate")
}

async fn query<T: redis::FromRedisValue>(
    con: &mut MultiplexedConnection,
    cmd: &mut redis::Cmd,
) -> redis::RedisResult<T> {
    cmd.query_async(con).await
}

fn cmd(name: &str) -> redis::Cmd {
    redis::cmd(name)
}

/// The server's error message for `err` (code and detail).
fn message(err: &redis::RedisError) -> String {
    format!(
        "{} {}",
        err.code().unwrap_or(""),
        err.detail().unwrap_or("")
    )
}

#[tokio::test]
async fn redis_client_round_trips_small_and_large_values() {
    let (_cache, addr) = start_cache(&[]).await;
    let mut con = connect(&addr).await;

    let pong: String = query(&mut con, &mut cmd("PING")).await.expect("PING");
    assert_eq!(pong, "PONG");
    let () = query(&mut con, cmd("SET").arg("small").arg("hello"))
        .await
        .expect("SET");
    let value: Vec<u8> = query(&mut con, cmd("GET").arg("small")).await.expect("GET");
    assert_eq!(value, b"hello");
    let () = query(&mut con, cmd("SET").arg("empty").arg(""))
        .await
        .expect("SET of an empty value");
    let value: Vec<u8> = query(&mut con, cmd("GET").arg("empty")).await.expect("GET");
    assert!(value.is_empty());

    let large = random_bytes(TEN_MIB);
    let () = query(&mut con, cmd("SET").arg("large").arg(&large[..]))
        .await
        .expect("SET of 10 MiB");
    let value: Vec<u8> = query(&mut con, cmd("GET").arg("large")).await.expect("GET");
    assert!(value == large[..], "10 MiB read back exactly");
    let len: i64 = query(&mut con, cmd("STRLEN").arg("large"))
        .await
        .expect("STRLEN");
    assert_eq!(len, TEN_MIB as i64);
    let len: i64 = query(&mut con, cmd("STRLEN").arg("nope"))
        .await
        .expect("STRLEN");
    assert_eq!(len, 0);

    let missing: Option<Vec<u8>> = query(&mut con, cmd("GET").arg("nope")).await.expect("GET");
    assert_eq!(missing, None);
    let found: i64 = query(
        &mut con,
        cmd("EXISTS").arg("small").arg("nope").arg("small"),
    )
    .await
    .expect("EXISTS");
    assert_eq!(found, 2, "a key named twice counts twice");

    let medium = random_bytes(300_000);
    let () = query(
        &mut con,
        cmd("MSET")
            .arg("m1")
            .arg("one")
            .arg("m2")
            .arg(&medium[..])
            .arg("m1")
            .arg("uno"),
    )
    .await
    .expect("MSET");
    let values: Vec<Option<Vec<u8>>> = query(
        &mut con,
        cmd("MGET").arg("m1").arg("nope").arg("m2").arg("large"),
    )
    .await
    .expect("MGET");
    assert_eq!(values.len(), 4);
    assert_eq!(
        values[0].as_deref(),
        Some(&b"uno"[..]),
        "the last value of m1"
    );
    assert_eq!(values[1], None);
    assert!(values[2].as_deref() == Some(&medium[..]));
    assert!(values[3].as_deref() == Some(&large[..]));

    let size: i64 = query(&mut con, &mut cmd("DBSIZE")).await.expect("DBSIZE");
    assert_eq!(size, 5, "small, empty, large, m1, m2");
    let deleted: i64 = query(
        &mut con,
        cmd("DEL")
            .arg("small")
            .arg("large")
            .arg("nope")
            .arg("small"),
    )
    .await
    .expect("DEL");
    assert_eq!(deleted, 2);
    let value: Option<Vec<u8>> = query(&mut con, cmd("GET").arg("large")).await.expect("GET");
    assert_eq!(value, None);
    let size: i64 = query(&mut con, &mut cmd("DBSIZE")).await.expect("DBSIZE");
    assert_eq!(size, 3);

    // Keys are binary, within the cache's rules.
    let key = [0u8, 255, b'\r', b'\n', b' '];
    let () = query(&mut con, cmd("SET").arg(&key[..]).arg("binary"))
        .await
        .expect("SET");
    let value: Vec<u8> = query(&mut con, cmd("GET").arg(&key[..]))
        .await
        .expect("GET");
    assert_eq!(value, b"binary");
    let err = query::<()>(&mut con, cmd("SET").arg("").arg("v"))
        .await
        .expect_err("empty keys are refused");
    assert!(message(&err).contains("invalid key"), "{err}");
}

#[tokio::test]
async fn expiry_hides_and_removes_objects() {
    let (cache, addr) = start_cache(&[]).await;
    let mut con = connect(&addr).await;
    let () = query(
        &mut con,
        cmd("SET").arg("short").arg("v").arg("PX").arg(300),
    )
    .await
    .expect("SET PX");
    let () = query(
        &mut con,
        cmd("SET").arg("long").arg("v").arg("EX").arg(3600),
    )
    .await
    .expect("SET EX");
    let () = query(
        &mut con,
        cmd("SET").arg("swept").arg("v").arg("PX").arg(300),
    )
    .await
    .expect("SET PX");
    let () = query(&mut con, cmd("SET").arg("plain").arg("v"))
        .await
        .expect("SET");
    let info: String = query(&mut con, cmd("INFO").arg("keyspace"))
        .await
        .expect("INFO");
    assert!(info.contains("# Keyspace"), "{info}");
    assert!(info.contains("db0:keys="), "{info}");

    // No timing asserts: wait for the short one to go.
    eventually("the PX 300 object expires", || {
        let mut con = con.clone();
        async move {
            let value: Option<Vec<u8>> =
                query(&mut con, cmd("GET").arg("short")).await.expect("GET");
            value.is_none()
        }
    })
    .await;
    let exists: i64 = query(&mut con, cmd("EXISTS").arg("short"))
        .await
        .expect("EXISTS");
    assert_eq!(exists, 0);
    // The one nobody reads is removed by the sweep; DBSIZE never counts it.
    eventually("the sweep removes the unread expired object", || {
        let mut con = con.clone();
        async move {
            let size: i64 = query(&mut con, &mut cmd("DBSIZE")).await.expect("DBSIZE");
            size == 2
        }
    })
    .await;
    let info: String = query(&mut con, cmd("INFO").arg("keyspace"))
        .await
        .expect("INFO");
    assert!(info.contains("db0:keys=2,expires=1"), "{info}");
    let value: Vec<u8> = query(&mut con, cmd("GET").arg("long")).await.expect("GET");
    assert_eq!(value, b"v");
    // Removed like a DELETE: its chunks, record and expiry entry leave the
    // object store too ("swept" is 7377657074 in hex).
    let cos = cache
        .data_dir()
        .expect("the harness's data directory")
        .join("cos");
    eventually("the expired objects leave the object store", || {
        let cos = cos.clone();
        async move {
            ["short", "swept"].iter().all(|key| {
                let hex: String = key.bytes().map(|b| format!("{b:02x}")).collect();
                files_under(&cos.join("chunks").join(&hex)).is_empty()
                    && files_under(&cos.join("meta").join("expiry").join(&hex)).is_empty()
                    && !cos.join("meta").join("objects").join(&hex).exists()
            })
        }
    })
    .await;
    assert!(
        !files_under(&cos.join("chunks").join("6c6f6e67")).is_empty(),
        "long stays"
    );

    // A native client sees the expiry too.
    let client = cache.client(4, 2).await;
    assert!(!client.exists("short").await.expect("exists"));
    assert!(client.exists("long").await.expect("exists"));

    // A plain SET clears an expiry; KEEPTTL keeps it.
    let () = query(&mut con, cmd("SET").arg("long").arg("w").arg("KEEPTTL"))
        .await
        .expect("SET KEEPTTL");
    let info: String = query(&mut con, cmd("INFO").arg("keyspace"))
        .await
        .expect("INFO");
    assert!(info.contains("expires=1"), "{info}");
    let () = query(&mut con, cmd("SET").arg("long").arg("x"))
        .await
        .expect("SET");
    let info: String = query(&mut con, cmd("INFO").arg("keyspace"))
        .await
        .expect("INFO");
    assert!(info.contains("db0:keys=2,expires=0"), "{info}");

    let err = query::<()>(&mut con, cmd("SET").arg("k").arg("v").arg("EX").arg(0))
        .await
        .expect_err("EX 0");
    assert!(
        message(&err).contains("invalid expire time in 'set' command"),
        "{err}"
    );
}

/// Files (not directories) under `dir`, recursively; none if it is missing.
fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return files;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else if !entry.file_name().to_string_lossy().starts_with('.') {
            files.push(path);
        }
    }
    files
}

#[tokio::test]
async fn expiries_survive_a_restart() {
    let data = tempfile::tempdir().expect("temp dir");
    let dir = data.path().to_string_lossy().into_owned();
    let args = ["--cos-write-mode", "sync", "--data-dir", dir.as_str()];
    let (cache, addr) = start_cache(&args).await;
    let mut con = connect(&addr).await;
    let () = query(
        &mut con,
        cmd("SET").arg("hour").arg("v").arg("EX").arg(3600),
    )
    .await
    .expect("SET EX");
    let () = query(
        &mut con,
        cmd("SET").arg("soon").arg("v").arg("PX").arg(1500),
    )
    .await
    .expect("SET PX");
    let () = query(
        &mut con,
        cmd("SET").arg("kept").arg("v1").arg("EX").arg(3600),
    )
    .await
    .expect("SET EX");
    let () = query(&mut con, cmd("SET").arg("kept").arg("v2").arg("KEEPTTL"))
        .await
        .expect("SET KEEPTTL");
    let () = query(
        &mut con,
        cmd("SET").arg("cleared").arg("v").arg("EX").arg(3600),
    )
    .await
    .expect("SET EX");
    let () = query(&mut con, cmd("SET").arg("cleared").arg("w"))
        .await
        .expect("SET");
    let () = query(&mut con, cmd("SET").arg("plain").arg("v"))
        .await
        .expect("SET");
    drop(con);
    cache.stop().await;

    let (cache, addr) = start_cache(&args).await;
    let mut con = connect(&addr).await;
    let info: String = query(&mut con, cmd("INFO").arg("keyspace"))
        .await
        .expect("INFO");
    // "soon" may or may not have expired by now; "hour" and "kept" expire.
    assert!(
        info.contains("keys=5,expires=3") || info.contains("keys=4,expires=2"),
        "{info}"
    );
    let value: Vec<u8> = query(&mut con, cmd("GET").arg("kept")).await.expect("GET");
    assert_eq!(value, b"v2");
    eventually("the expiry recovered for \"soon\" applies", || {
        let mut con = con.clone();
        async move {
            let found: i64 = query(&mut con, cmd("EXISTS").arg("soon"))
                .await
                .expect("EXISTS");
            found == 0
        }
    })
    .await;
    let info: String = query(&mut con, cmd("INFO").arg("keyspace"))
        .await
        .expect("INFO");
    assert!(info.contains("db0:keys=4,expires=2"), "{info}");
    // Only the expiry entries of live versions are left.
    eventually("stale expiry entries are removed", || {
        let expiry = data.path().join("cos").join("meta").join("expiry");
        async move { files_under(&expiry).len() == 2 }
    })
    .await;
    cache.stop().await;
}

#[tokio::test]
async fn nx_and_xx_are_conditional_and_atomic() {
    let (_cache, addr) = start_cache(&[]).await;
    let mut con = connect(&addr).await;
    let set: Option<String> = query(&mut con, cmd("SET").arg("k").arg("1").arg("XX"))
        .await
        .expect("SET XX");
    assert_eq!(set, None, "XX on a missing key");
    let missing: Option<Vec<u8>> = query(&mut con, cmd("GET").arg("k")).await.expect("GET");
    assert_eq!(missing, None, "a failed SET changes nothing");
    let set: Option<String> = query(&mut con, cmd("SET").arg("k").arg("1").arg("NX"))
        .await
        .expect("SET NX");
    assert_eq!(set.as_deref(), Some("OK"));
    let set: Option<String> = query(&mut con, cmd("SET").arg("k").arg("2").arg("NX"))
        .await
        .expect("SET NX");
    assert_eq!(set, None);
    let set: Option<String> = query(&mut con, cmd("SET").arg("k").arg("3").arg("XX"))
        .await
        .expect("SET XX");
    assert_eq!(set.as_deref(), Some("OK"));
    let value: Vec<u8> = query(&mut con, cmd("GET").arg("k")).await.expect("GET");
    assert_eq!(value, b"3");

    // Racing SET NX of one key: exactly one wins, and its value is the one
    // stored.
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..8 {
        let mut con = connect(&addr).await;
        tasks.spawn(async move {
            let set: Option<String> = query(
                &mut con,
                cmd("SET").arg("race").arg(format!("value-{i}")).arg("NX"),
            )
            .await
            .expect("SET NX");
            set.map(|_| i)
        });
    }
    let winners: Vec<i32> = tasks.join_all().await.into_iter().flatten().collect();
    assert_eq!(winners.len(), 1, "winners: {winners:?}");
    let value: Vec<u8> = query(&mut con, cmd("GET").arg("race")).await.expect("GET");
    assert_eq!(value, format!("value-{}", winners[0]).into_bytes());
}

#[tokio::test]
async fn hello_3_switches_to_resp3() {
    let (_cache, addr) = start_cache(&[]).await;

    // With the redis crate speaking RESP3 from the start.
    let mut con = connect_url(&format!("redis://{addr}/?protocol=resp3"))
        .await
        .expect("connect with RESP3");
    let () = query(&mut con, cmd("SET").arg("k").arg("v"))
        .await
        .expect("SET");
    let value: Value = query(&mut con, cmd("GET").arg("nope")).await.expect("GET");
    assert_eq!(value, Value::Nil);
    let info: Value = query(&mut con, &mut cmd("INFO")).await.expect("INFO");
    assert!(
        matches!(&info, Value::VerbatimString { text, .. } if text.contains("# Server")),
        "{info:?}"
    );
    let hello: Value = query(&mut con, cmd("HELLO").arg(3)).await.expect("HELLO");
    let Value::Map(fields) = hello else {
        panic!("HELLO 3 answers a map: {hello:?}");
    };
    assert!(fields.contains(&(Value::BulkString(b"proto".to_vec()), Value::Int(3))));

    // On the wire: the HELLO reply itself is RESP3, and so is what follows.
    let mut raw = Raw::connect(&addr).await;
    raw.send(b"*2\r\n$3\r\nGET\r\n$4\r\nnope\r\n").await;
    assert_eq!(raw.frame().await, Frame::Null);
    assert_eq!(raw.last_bytes, b"$-1\r\n", "RESP2 before HELLO 3");
    raw.send(b"HELLO 3\r\n").await;
    let Frame::Map(fields) = raw.frame().await else {
        panic!("HELLO 3 answers a map");
    };
    assert!(raw.last_bytes.starts_with(b"%7\r\n"));
    assert!(fields.contains(&(Frame::bulk("server"), Frame::bulk("redis"))));
    raw.send(b"GET nope\r\n").await;
    assert_eq!(raw.frame().await, Frame::Null);
    assert_eq!(raw.last_bytes, b"_\r\n");
    raw.send(b"HELLO 4\r\n").await;
    assert_eq!(
        raw.frame().await,
        Frame::error("NOPROTO unsupported protocol version")
    );
    raw.send(b"HELLO 2\r\nGET nope\r\n").await;
    assert!(
        matches!(raw.frame().await, Frame::Array(_)),
        "RESP2: a flat array"
    );
    raw.frame().await;
    assert_eq!(raw.last_bytes, b"$-1\r\n");
}

#[tokio::test]
async fn auth_is_required_when_a_password_is_set() {
    let (_cache, addr) = start_cache(&["--resp-password", "s3cret"]).await;
    let mut con = connect(&addr).await;
    let err = query::<Option<Vec<u8>>>(&mut con, cmd("GET").arg("k"))
        .await
        .expect_err("not authenticated");
    assert_eq!(message(&err), "NOAUTH Authentication required.");
    let err = query::<()>(&mut con, cmd("AUTH").arg("wrong"))
        .await
        .expect_err("wrong password");
    assert_eq!(
        message(&err),
        "WRONGPASS invalid username-password pair or user is disabled."
    );
    let err = query::<()>(&mut con, cmd("AUTH").arg("admin").arg("s3cret"))
        .await
        .expect_err("no such user");
    assert!(message(&err).starts_with("WRONGPASS"), "{err}");
    let () = query(&mut con, cmd("AUTH").arg("s3cret"))
        .await
        .expect("right password");
    let () = query(&mut con, cmd("SET").arg("k").arg("v"))
        .await
        .expect("SET once authenticated");

    // The password in the URL: the redis crate authenticates on connect.
    let mut con = connect_url(&format!("redis://:s3cret@{addr}/"))
        .await
        .expect("connect with the password");
    let value: Vec<u8> = query(&mut con, cmd("GET").arg("k")).await.expect("GET");
    assert_eq!(value, b"v");
    let mut con = connect_url(&format!("redis://default:s3cret@{addr}/?protocol=resp3"))
        .await
        .expect("HELLO 3 AUTH default ...");
    let value: Vec<u8> = query(&mut con, cmd("GET").arg("k")).await.expect("GET");
    assert_eq!(value, b"v");
    assert!(
        connect_url(&format!("redis://:wrong@{addr}/"))
            .await
            .is_err(),
        "a wrong password fails the connection"
    );

    // Before authenticating, only small requests are read at all.
    let mut raw = Raw::connect(&addr).await;
    raw.send(b"*20\r\n").await;
    assert_eq!(
        raw.frame().await,
        Frame::error("ERR Protocol error: unauthenticated multibulk length")
    );
    raw.closed().await;
}

#[tokio::test]
async fn unknown_commands_and_other_databases_are_errors() {
    let (_cache, addr) = start_cache(&[]).await;
    let mut con = connect(&addr).await;
    let err = query::<()>(&mut con, cmd("FLUSHALL").arg("ASYNC"))
        .await
        .expect_err("unsupported");
    assert_eq!(
        message(&err),
        "ERR unknown command 'FLUSHALL', with args beginning with: 'ASYNC' "
    );
    let err = query::<()>(&mut con, &mut cmd("GET"))
        .await
        .expect_err("arity");
    assert_eq!(
        message(&err),
        "ERR wrong number of arguments for 'get' command"
    );
    let err = query::<()>(&mut con, cmd("SELECT").arg(1))
        .await
        .expect_err("one database");
    assert_eq!(message(&err), "ERR DB index is out of range");
    let () = query(&mut con, cmd("SELECT").arg(0))
        .await
        .expect("SELECT 0");
    let err = query::<()>(&mut con, cmd("SET").arg("k").arg("v").arg("GET"))
        .await
        .expect_err("SET ... GET is not supported");
    assert_eq!(message(&err), "ERR syntax error");

    // The connection is still fine, and the informational commands answer.
    let echo: Vec<u8> = query(&mut con, cmd("ECHO").arg("hi")).await.expect("ECHO");
    assert_eq!(echo, b"hi");
    let () = query(&mut con, cmd("CLIENT").arg("SETNAME").arg("tester"))
        .await
        .expect("CLIENT SETNAME");
    let name: String = query(&mut con, cmd("CLIENT").arg("GETNAME"))
        .await
        .expect("CLIENT GETNAME");
    assert_eq!(name, "tester");
    let id: i64 = query(&mut con, cmd("CLIENT").arg("ID"))
        .await
        .expect("CLIENT ID");
    assert!(id > 0);
    let count: i64 = query(&mut con, cmd("COMMAND").arg("COUNT"))
        .await
        .expect("COMMAND COUNT");
    let commands: Vec<Value> = query(&mut con, &mut cmd("COMMAND")).await.expect("COMMAND");
    assert_eq!(commands.len() as i64, count);
    let docs: Value = query(&mut con, cmd("COMMAND").arg("DOCS"))
        .await
        .expect("COMMAND DOCS");
    assert!(
        matches!(docs, Value::Array(ref items) if items.is_empty()),
        "{docs:?}"
    );
    let info: String = query(&mut con, &mut cmd("INFO")).await.expect("INFO");
    for field in [
        "redis_version:",
        "tcp_port:",
        "uptime_in_seconds:",
        "connected_clients:",
        "used_memory:",
        "infinicache_functions_in_use:",
        "total_commands_processed:",
        "keyspace_hits:",
        "keyspace_misses:",
    ] {
        assert!(info.contains(field), "{field} missing from {info}");
    }
    let server: String = query(&mut con, cmd("INFO").arg("server"))
        .await
        .expect("INFO server");
    assert!(server.contains("# Server") && !server.contains("# Stats"));
}

#[tokio::test]
async fn objects_are_shared_between_the_frontends() {
    let (cache, addr) = start_cache(&[]).await;
    let mut con = connect(&addr).await;
    // Clients code with their own k and r; the proxy with its default (4+2).
    for (k, r) in [(4, 2), (2, 1), (3, 0)] {
        let client = cache.client(k, r).await;
        for len in [0, 1, 1000, 3 * 1024 * 1024] {
            let value = random_bytes(len);
            let key = format!("native-{k}-{r}-{len}");
            client
                .put(key.as_str(), value.clone())
                .await
                .expect("native PUT");
            let read: Vec<u8> = query(&mut con, cmd("GET").arg(&key))
                .await
                .expect("RESP GET");
            assert!(
                read == value[..],
                "RESP GET of a native PUT ({k}+{r}, {len} B)"
            );
            let len_read: i64 = query(&mut con, cmd("STRLEN").arg(&key))
                .await
                .expect("STRLEN");
            assert_eq!(len_read, len as i64);

            let key = format!("resp-{k}-{r}-{len}");
            let value = random_bytes(len);
            let () = query(&mut con, cmd("SET").arg(&key).arg(&value[..]))
                .await
                .expect("RESP SET");
            let read = client.get(key.as_str()).await.expect("native GET");
            assert_eq!(read, Some(value), "native GET of a RESP SET ({len} B)");
        }
    }
    // Deletes and overwrites cross over too.
    let client = cache.client(4, 2).await;
    client
        .put("shared", Bytes::from_static(b"native"))
        .await
        .expect("PUT");
    let () = query(&mut con, cmd("SET").arg("shared").arg("resp"))
        .await
        .expect("SET");
    assert_eq!(
        client.get("shared").await.expect("GET").as_deref(),
        Some(&b"resp"[..])
    );
    let deleted: i64 = query(&mut con, cmd("DEL").arg("shared"))
        .await
        .expect("DEL");
    assert_eq!(deleted, 1);
    assert_eq!(client.get("shared").await.expect("GET"), None);
    assert!(client.delete("resp-4-2-1000").await.expect("DELETE"));
    let gone: Option<Vec<u8>> = query(&mut con, cmd("GET").arg("resp-4-2-1000"))
        .await
        .expect("GET");
    assert_eq!(gone, None);
}

#[tokio::test]
async fn pipelined_and_concurrent_commands_on_one_connection() {
    let (_cache, addr) = start_cache(&[]).await;
    let con = connect(&addr).await;

    // Many commands in flight at once on one multiplexed connection: each
    // gets its own reply, in order.
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..40 {
        let mut con = con.clone();
        tasks.spawn(async move {
            let key = format!("key-{i}");
            let value = format!("value-{i}").repeat(i * 10 + 1);
            let () = query(&mut con, cmd("SET").arg(&key).arg(&value))
                .await
                .expect("SET");
            let read: Vec<u8> = query(&mut con, cmd("GET").arg(&key)).await.expect("GET");
            assert_eq!(read, value.as_bytes());
        });
    }
    tasks.join_all().await;

    // An explicit pipeline: commands run in order, so the GET sees the SET.
    let mut con = con.clone();
    let (set, get, del, after, size): (String, Vec<u8>, i64, Option<Vec<u8>>, i64) = redis::pipe()
        .cmd("SET")
        .arg("p")
        .arg("1")
        .cmd("GET")
        .arg("p")
        .cmd("DEL")
        .arg("p")
        .cmd("GET")
        .arg("p")
        .cmd("DBSIZE")
        .query_async(&mut con)
        .await
        .expect("pipeline");
    assert_eq!(
        (set.as_str(), get.as_slice(), del, after, size),
        ("OK", &b"1"[..], 1, None, 40)
    );

    // On the wire: a pipeline written at once is answered in order.
    let mut raw = Raw::connect(&addr).await;
    raw.send(
        b"SET a 1\r\n*2\r\n$3\r\nGET\r\n$1\r\na\r\nPING\r\nINCR a\r\nECHO done\r\nQUIT\r\nPING\r\n",
    )
    .await;
    assert_eq!(raw.frame().await, Frame::ok());
    assert_eq!(raw.frame().await, Frame::bulk("1"));
    assert_eq!(raw.frame().await, Frame::Simple("PONG".into()));
    assert!(
        matches!(raw.frame().await, Frame::Error(e) if e.starts_with("ERR unknown command 'INCR'"))
    );
    assert_eq!(raw.frame().await, Frame::bulk("done"));
    assert_eq!(raw.frame().await, Frame::ok(), "QUIT");
    raw.closed().await;
}

// ---------------------------------------------------------------- redis-cli

async fn cli_text(addr: &str, args: &[&str]) -> String {
    String::from_utf8_lossy(&run_cli(addr, args, None).await).into_owned()
}

#[tokio::test]
async fn redis_cli_drives_the_frontend() {
    redis_cli();
    let (_cache, addr) = start_cache(&[]).await;
    assert_eq!(cli_text(&addr, &["PING"]).await, "PONG\n");
    assert_eq!(cli_text(&addr, &["SET", "greeting", "hello"]).await, "OK\n");
    assert_eq!(cli_text(&addr, &["GET", "greeting"]).await, "hello\n");
    assert_eq!(cli_text(&addr, &["MSET", "a", "1", "b", "2"]).await, "OK\n");
    assert_eq!(
        cli_text(&addr, &["MGET", "a", "nope", "b"]).await,
        "1\n\n2\n"
    );
    assert_eq!(cli_text(&addr, &["DEL", "a", "b", "nope"]).await, "2\n");
    assert_eq!(cli_text(&addr, &["GET", "a"]).await, "\n");
    let unknown = cli_text(&addr, &["NOSUCHCOMMAND", "x"]).await;
    assert!(
        unknown.contains("ERR unknown command 'NOSUCHCOMMAND', with args beginning with: 'x'"),
        "{unknown}"
    );

    // A 10 MiB value through -x (the last argument read from stdin).
    let value: Vec<u8> = random_bytes(TEN_MIB)
        .iter()
        .map(|byte| b'a' + byte % 26)
        .collect();
    let set = run_cli(&addr, &["-x", "SET", "big"], Some(&value)).await;
    assert_eq!(String::from_utf8_lossy(&set), "OK\n");
    let read = run_cli(&addr, &["GET", "big"], None).await;
    assert_eq!(read.len(), TEN_MIB + 1, "the value and a newline");
    assert!(read[..TEN_MIB] == value[..], "10 MiB read back exactly");
    assert_eq!(
        cli_text(&addr, &["STRLEN", "big"]).await,
        format!("{TEN_MIB}\n")
    );
    assert_eq!(cli_text(&addr, &["DEL", "big"]).await, "1\n");
}

#[tokio::test]
async fn redis_cli_authenticates_with_a_password() {
    redis_cli();
    let (_cache, addr) = start_cache(&["--resp-password", "pa55word"]).await;
    let refused = cli_text(&addr, &["GET", "k"]).await;
    assert!(
        refused.contains("NOAUTH Authentication required."),
        "{refused}"
    );
    let wrong = cli_text(&addr, &["--no-auth-warning", "-a", "nope", "PING"]).await;
    assert!(wrong.contains("WRONGPASS"), "{wrong}");
    assert_eq!(
        cli_text(
            &addr,
            &["--no-auth-warning", "-a", "pa55word", "SET", "k", "v"]
        )
        .await,
        "OK\n"
    );
    assert_eq!(
        cli_text(&addr, &["--no-auth-warning", "-a", "pa55word", "GET", "k"]).await,
        "v\n"
    );
    // And with RESP3.
    assert_eq!(
        cli_text(
            &addr,
            &["--no-auth-warning", "-a", "pa55word", "-3", "GET", "k"]
        )
        .await,
        "v\n"
    );
}

// ---------------------------------------------------------------- bad input

/// A raw connection to the RESP frontend, reading replies with the proxy's
/// own frame parser.
struct Raw {
    stream: TcpStream,
    buffer: BytesMut,
    /// The bytes of the last frame read.
    last_bytes: Vec<u8>,
}

impl Raw {
    async fn connect(addr: &str) -> Raw {
        Raw {
            stream: TcpStream::connect(addr).await.expect("connect"),
            buffer: BytesMut::new(),
            last_bytes: Vec::new(),
        }
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("send");
    }

    /// Reads more bytes; `false` at EOF (or a reset).
    async fn fill(&mut self) -> bool {
        let read = tokio::time::timeout(LIMIT, self.stream.read_buf(&mut self.buffer))
            .await
            .expect("the server answers or closes in time");
        matches!(read, Ok(n) if n > 0)
    }

    /// The next reply.
    async fn frame(&mut self) -> Frame {
        loop {
            if let Some((frame, len)) =
                Frame::parse_slice(&self.buffer, &Limits::default()).expect("valid RESP")
            {
                self.last_bytes = self.buffer.split_to(len).to_vec();
                return frame;
            }
            assert!(self.fill().await, "connection closed before a reply");
        }
    }

    /// Waits for the server to close the connection, with nothing more said.
    async fn closed(&mut self) {
        while self.fill().await {}
        assert!(
            self.buffer.is_empty(),
            "unexpected bytes: {:?}",
            self.buffer
        );
    }
}

#[tokio::test]
async fn hostile_input_gets_an_error_or_a_clean_close() {
    let (cache, addr) = start_cache(&[]).await;

    // Garbage that is not RESP is an inline command Redis does not know:
    // an error, and the connection goes on.
    let mut raw = Raw::connect(&addr).await;
    raw.send(b"\xff\xfe\xfd garbage \x01\r\nPING\r\n").await;
    assert!(matches!(raw.frame().await, Frame::Error(e) if e.starts_with("ERR unknown command")),);
    assert_eq!(raw.frame().await, Frame::Simple("PONG".into()));

    // Frames the parser must refuse: an error, then the connection closes
    // (the next request boundary is lost).
    let cases: &[(&[u8], &str)] = &[
        (
            b"*1\r\n$1099511627776\r\n",
            "ERR Protocol error: invalid bulk length",
        ),
        (b"*1\r\n$-5\r\n", "ERR Protocol error: invalid bulk length"),
        (
            b"*-7\r\n*1\r\n$-1\r\n",
            "ERR Protocol error: invalid bulk length",
        ),
        (
            b"*4294967296\r\n",
            "ERR Protocol error: invalid multibulk length",
        ),
        (
            b"*1048577\r\n",
            "ERR Protocol error: invalid multibulk length",
        ),
        (b"*x\r\n", "ERR Protocol error: invalid multibulk length"),
        (
            b"*2\r\n$3\r\nGET\r\n:1\r\n",
            "ERR Protocol error: expected '$', got ':'",
        ),
        (
            b"*1\r\n$4\r\nPINGxx",
            "ERR Protocol error: expected CRLF after a bulk string",
        ),
        (
            b"GET \"unbalanced\r\n",
            "ERR Protocol error: unbalanced quotes in request",
        ),
    ];
    for (input, expected) in cases {
        let mut raw = Raw::connect(&addr).await;
        raw.send(input).await;
        assert_eq!(raw.frame().await, Frame::error(*expected), "{input:?}");
        raw.closed().await;
    }

    // A line that never ends (64 KiB and more of it).
    let mut raw = Raw::connect(&addr).await;
    let endless = vec![b'x'; 100 * 1024];
    let _ = raw.stream.write_all(&endless).await;
    assert_eq!(
        raw.frame().await,
        Frame::error("ERR Protocol error: too big inline request")
    );
    raw.closed().await;

    // A frame cut short: the client stops sending in the middle.
    let mut raw = Raw::connect(&addr).await;
    raw.send(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$100\r\nonly part of it")
        .await;
    raw.stream.shutdown().await.expect("half-close");
    assert_eq!(
        raw.frame().await,
        Frame::error("ERR Protocol error: connection closed in the middle of a request")
    );
    raw.closed().await;
    // A client that vanishes mid-frame costs nothing either.
    let mut raw = Raw::connect(&addr).await;
    raw.send(b"*2\r\n$3\r\nGET\r\n$1000000\r\nab").await;
    drop(raw);

    // A huge claimed value that never comes holds nothing up.
    let mut hanging = Raw::connect(&addr).await;
    hanging
        .send(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$536870912\r\nabc")
        .await;

    // Everyone else is served, on both frontends.
    let mut con = connect(&addr).await;
    let () = query(&mut con, cmd("SET").arg("after").arg("fine"))
        .await
        .expect("SET");
    let value: Vec<u8> = query(&mut con, cmd("GET").arg("after")).await.expect("GET");
    assert_eq!(value, b"fine");
    let client = cache.client(4, 2).await;
    assert_eq!(
        client.get("after").await.expect("native GET").as_deref(),
        Some(&b"fine"[..])
    );
    let exists: i64 = query(&mut con, cmd("EXISTS").arg("k"))
        .await
        .expect("EXISTS");
    assert_eq!(exists, 0, "no partial request was applied");
    drop(hanging);
}

/// A proxy whose RESP address is taken refuses to start and says how to
/// fix it, rather than running without the frontend its users expect.
#[tokio::test]
async fn a_taken_resp_address_stops_the_proxy_with_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("address").to_string();
    let data_dir = tempfile::tempdir().expect("temp dir");
    let output = tokio::time::timeout(
        LIMIT,
        infinicache_tests::harness::proxy_command()
            .args(["--admin-listen", "127.0.0.1:0", "--resp-listen", &addr])
            .arg("--data-dir")
            .arg(data_dir.path())
            .stdin(Stdio::null())
            .output(),
    )
    .await
    .expect("the proxy exits at once")
    .expect("run the proxy");
    assert!(!output.status.success(), "the proxy must not start");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!stdout.contains("ready"), "{stdout}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("cannot listen for Redis clients on {addr}"))
            && stderr.contains("--no-resp"),
        "{stderr}"
    );
    drop(taken);
}
