//! Hostile and broken input on both listeners gets an error or a closed
//! connection, and the proxy keeps serving everyone else.

use bytes::Bytes;
use infinicache::codec::{CodecParams, ObjectCodec};
use infinicache::protocol::{
    ClientHello, ClientReply, ClientRequest, Decode, Encode, ErrorCode, ErrorReply, FrameReader,
    Hello, Key, NodeHello, PutChunk,
};
use infinicache::{Client, Error};
use infinicache_tests::harness::{TestCache, random_bytes};
use infinicache_tests::raw::{LIMIT, handshaken, reply};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// Reads frames until the server closes the connection; returns the error
/// replies seen on the way.
async fn errors_until_closed<S: tokio::io::AsyncRead + Unpin>(stream: S) -> Vec<ErrorReply> {
    let mut reader = FrameReader::new(stream, 1 << 20);
    let mut errors = Vec::new();
    tokio::time::timeout(LIMIT, async {
        while let Ok(Some(frame)) = reader.read_frame().await {
            if let Ok(ClientReply::Error(err)) = ClientReply::decode(frame) {
                errors.push(err);
            }
        }
    })
    .await
    .expect("the server must close a broken connection");
    errors
}

/// Connects, sends one Hello, and collects the errors until disconnected.
async fn send_and_collect_errors(addr: &str, hello: &Hello) -> Vec<ErrorReply> {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(&hello.encode(0).to_bytes())
        .await
        .expect("write");
    errors_until_closed(stream).await
}

async fn assert_still_serving(cache: &TestCache) {
    let client = cache.client(4, 2).await;
    let data = random_bytes(50_000);
    client
        .put("still-serving", data.clone())
        .await
        .expect("put after abuse");
    assert_eq!(
        client.get("still-serving").await.expect("get after abuse"),
        Some(data)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_on_the_client_listener() {
    let cache = TestCache::start(&[]).await;

    // Random bytes instead of a Hello.
    let mut stream = TcpStream::connect(&cache.client_addr)
        .await
        .expect("connect");
    stream.write_all(&random_bytes(4096)).await.expect("write");
    stream.shutdown().await.expect("shutdown");
    errors_until_closed(stream).await;

    // A Hello with a wrong magic.
    let mut bad_magic = Hello::Client(ClientHello {
        name: "x".into(),
        secret: None,
    })
    .encode(0)
    .to_bytes()
    .to_vec();
    bad_magic[14] ^= 0xff;
    let mut stream = TcpStream::connect(&cache.client_addr)
        .await
        .expect("connect");
    stream.write_all(&bad_magic).await.expect("write");
    let errors = errors_until_closed(stream).await;
    assert_eq!(
        errors.first().map(|e| e.code),
        Some(ErrorCode::Protocol),
        "{errors:?}"
    );

    // An absurd length prefix after the handshake.
    let (reader, mut write) = handshaken(&cache.client_addr).await;
    write
        .write_all(&[0xff, 0xff, 0xff, 0xff, 0x11, 0])
        .await
        .expect("write");
    let errors = errors_until_closed(reader.into_inner()).await;
    assert_eq!(
        errors.first().map(|e| e.code),
        Some(ErrorCode::TooLarge),
        "{errors:?}"
    );

    // A truncated frame, then the client goes away.
    let (reader, mut write) = handshaken(&cache.client_addr).await;
    let get = ClientRequest::Get {
        key: Key::try_from("k").expect("key"),
    }
    .encode(7)
    .to_bytes();
    write.write_all(&get[..get.len() - 1]).await.expect("write");
    write.shutdown().await.expect("shutdown");
    errors_until_closed(reader.into_inner()).await;

    // Random bytes after a valid handshake.
    let (reader, mut write) = handshaken(&cache.client_addr).await;
    write
        .write_all(&random_bytes(100_000))
        .await
        .expect("write");
    write.shutdown().await.expect("shutdown");
    errors_until_closed(reader.into_inner()).await;

    assert_still_serving(&cache).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_requests_get_errors_and_the_connection_goes_on() {
    let cache = TestCache::start(&[]).await;
    let (mut reader, mut write) = handshaken(&cache.client_addr).await;

    // k + r larger than the pool (12 nodes).
    let codec = ObjectCodec::new(CodecParams::new(16, 4).expect("params"));
    let chunk = codec
        .encode(&Bytes::from_static(b"hello"), 0)
        .expect("encode")
        .remove(0);
    let put = ClientRequest::Put(PutChunk {
        key: Key::try_from("k").expect("key"),
        put_id: 1,
        chunk: chunk.clone(),
    });
    write
        .write_all(&put.encode(11).to_bytes())
        .await
        .expect("write");
    let (id, answer) = reply(&mut reader).await;
    assert_eq!(id, 11);
    assert!(
        matches!(answer, ClientReply::Error(ref e) if e.code == ErrorCode::InvalidArgument),
        "{answer:?}"
    );

    // A chunk whose body does not match its header.
    let mut short = chunk.clone();
    short.body = Bytes::from_static(b"x");
    let put = ClientRequest::Put(PutChunk {
        key: Key::try_from("k").expect("key"),
        put_id: 2,
        chunk: short,
    });
    write
        .write_all(&put.encode(12).to_bytes())
        .await
        .expect("write");
    let (id, answer) = reply(&mut reader).await;
    assert_eq!(id, 12);
    assert!(
        matches!(answer, ClientReply::Error(ref e) if e.code == ErrorCode::InvalidArgument),
        "{answer:?}"
    );

    // A chunk header with a broken checksum (k = 0 would be caught the same way).
    let mut frame = put.encode(13).to_bytes().to_vec();
    let header_at = 14 + 2 + 1 + 8;
    frame[header_at + 1] = 0; // k = 0
    write.write_all(&frame).await.expect("write");
    let (id, answer) = reply(&mut reader).await;
    assert_eq!(id, 13);
    assert!(
        matches!(answer, ClientReply::Error(ref e) if e.code == ErrorCode::Protocol),
        "{answer:?}"
    );

    // An unknown message kind.
    let mut unknown = ClientRequest::Exists {
        key: Key::try_from("k").expect("key"),
    }
    .encode(14)
    .to_bytes()
    .to_vec();
    unknown[4] = 0x6e;
    write.write_all(&unknown).await.expect("write");
    let (id, answer) = reply(&mut reader).await;
    assert_eq!(id, 14);
    assert!(
        matches!(answer, ClientReply::Error(ref e) if e.code == ErrorCode::Protocol),
        "{answer:?}"
    );

    // The same connection still works.
    let exists = ClientRequest::Exists {
        key: Key::try_from("k").expect("key"),
    };
    write
        .write_all(&exists.encode(15).to_bytes())
        .await
        .expect("write");
    let (id, answer) = reply(&mut reader).await;
    assert_eq!(id, 15);
    assert!(
        matches!(answer, ClientReply::Exists { exists: false }),
        "{answer:?}"
    );

    assert_still_serving(&cache).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_parameters_are_rejected_by_the_client_and_the_proxy() {
    let cache = TestCache::start(&[]).await;
    let zero_k = Client::builder()
        .proxy(&cache.client_addr)
        .data_shards(0)
        .connect()
        .await;
    assert!(
        matches!(zero_k, Err(Error::InvalidArgument(_))),
        "{zero_k:?}"
    );
    let too_many = Client::builder()
        .proxy(&cache.client_addr)
        .data_shards(200)
        .parity_shards(100)
        .connect()
        .await;
    assert!(
        matches!(too_many, Err(Error::InvalidArgument(_))),
        "{too_many:?}"
    );

    // Valid for the codec, but more chunks than the pool has nodes.
    let client = cache.client(12, 4).await;
    let err = client
        .put("k", random_bytes(10))
        .await
        .expect_err("16 chunks on 12 nodes");
    assert_eq!(
        err.kind(),
        infinicache::client::ErrorKind::InvalidArgument,
        "{err}"
    );

    let empty_key = client.put("", random_bytes(10)).await;
    assert!(
        matches!(empty_key, Err(Error::InvalidArgument(_))),
        "{empty_key:?}"
    );
    assert_still_serving(&cache).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_and_impostors_on_the_node_listener() {
    let cache = TestCache::start(&[]).await;

    // Random bytes.
    let mut stream = TcpStream::connect(&cache.node_addr).await.expect("connect");
    stream.write_all(&random_bytes(4096)).await.expect("write");
    stream.shutdown().await.expect("shutdown");
    errors_until_closed(stream).await;

    // A node with a token the proxy never issued, and one outside the pool.
    for (node_id, token) in [
        (0, &b"00000000000000000000000000000000"[..]),
        (5000, &b"x"[..]),
    ] {
        let impostor = Hello::Node(NodeHello {
            node_id,
            token: Bytes::copy_from_slice(token),
            instance_id: 42,
            capacity: 1 << 30,
            used: 0,
            chunks: 0,
        });
        let errors = send_and_collect_errors(&cache.node_addr, &impostor).await;
        assert_eq!(
            errors.first().map(|e| e.code),
            Some(ErrorCode::Unauthorized),
            "{errors:?}"
        );
    }

    // A client dialing the node listener.
    let hello = Hello::Client(ClientHello {
        name: "lost".into(),
        secret: None,
    });
    let errors = send_and_collect_errors(&cache.node_addr, &hello).await;
    assert_eq!(
        errors.first().map(|e| e.code),
        Some(ErrorCode::Protocol),
        "{errors:?}"
    );

    assert_still_serving(&cache).await;
}
