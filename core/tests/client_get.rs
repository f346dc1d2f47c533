//! The client's GET against a scripted proxy on loopback: corrupted chunks
//! count as missing (never as data), stragglers are not waited for, and
//! running out of chunks is an error, not wrong bytes.

use std::time::{Duration, Instant};

use bytes::Bytes;
use infinicache::codec::{Chunk, CodecParams, ObjectCodec};
use infinicache::protocol::{
    ClientReply, ClientRequest, Decode, Encode, ErrorCode, ErrorReply, FrameReader, FrameWriter,
    Hello, Welcome,
};
use infinicache::{Client, Error};
use tokio::net::TcpListener;

/// What the scripted proxy answers to a GET, in order.
#[derive(Clone)]
enum Step {
    Send(ClientReply),
    /// Go silent (a frozen node) for this long.
    Stall(Duration),
}

/// Serves one connection: handshake, then answers every GET with `script`.
async fn scripted_proxy(script: Vec<Step>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    tokio::spawn(async move {
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        let (read, write) = stream.into_split();
        let mut reader = FrameReader::new(read, 1 << 30);
        let mut writer = FrameWriter::new(write);
        let Ok(Some(frame)) = reader.read_frame().await else {
            return;
        };
        assert!(matches!(Hello::decode(frame), Ok(Hello::Client(_))));
        let welcome = Welcome {
            protocol_version: 1,
            max_frame_len: 1 << 30,
            default_params: CodecParams::new(4, 2).expect("params"),
            server: "scripted".into(),
        };
        writer.send(&welcome.encode(0)).await.expect("welcome");
        while let Ok(Some(frame)) = reader.read_frame().await {
            let id = frame.request_id;
            if let Ok(ClientRequest::Get { .. }) = ClientRequest::decode(frame) {
                for step in &script {
                    match step {
                        Step::Send(reply) => {
                            if writer.send(&reply.encode(id)).await.is_err() {
                                return;
                            }
                        }
                        Step::Stall(pause) => tokio::time::sleep(*pause).await,
                    }
                }
            }
        }
    });
    addr
}

fn encoded(len: usize) -> (Bytes, Vec<Chunk>, ClientReply) {
    let data: Bytes = (0..len)
        .map(|i| (i * 31 % 251) as u8)
        .collect::<Vec<u8>>()
        .into();
    let params = CodecParams::new(4, 2).expect("params");
    let chunks = ObjectCodec::new(params).encode(&data, 9).expect("encode");
    let object = ClientReply::Object {
        version: 9,
        object_len: len as u64,
        params,
    };
    (data, chunks, object)
}

fn corrupt(chunk: &Chunk) -> Chunk {
    let mut body = chunk.body.to_vec();
    body[0] ^= 0x40;
    Chunk {
        header: chunk.header,
        body: body.into(),
    }
}

async fn client(addr: &str) -> Client {
    Client::builder()
        .proxy(addr)
        .timeout(Duration::from_secs(20))
        .connect()
        .await
        .expect("connect")
}

#[tokio::test]
async fn a_corrupted_chunk_is_replaced_by_a_later_good_one() {
    let (data, chunks, object) = encoded(100_000);
    let mut script = vec![Step::Send(object)];
    script.push(Step::Send(ClientReply::Chunk(corrupt(&chunks[0]))));
    script.extend(
        chunks[1..]
            .iter()
            .cloned()
            .map(|c| Step::Send(ClientReply::Chunk(c))),
    );
    let addr = scripted_proxy(script).await;
    assert_eq!(client(&addr).await.get("k").await.expect("get"), Some(data));
}

#[tokio::test]
async fn too_few_good_chunks_is_an_error_never_wrong_data() {
    let (_, chunks, object) = encoded(100_000);
    let lost = ErrorReply::new(ErrorCode::Unavailable, "node gone");
    let script = vec![
        Step::Send(object),
        Step::Send(ClientReply::Chunk(corrupt(&chunks[0]))),
        Step::Send(ClientReply::Chunk(chunks[1].clone())),
        Step::Send(ClientReply::Chunk(chunks[2].clone())),
        Step::Send(ClientReply::Chunk(chunks[3].clone())),
        Step::Send(ClientReply::ChunkFailed {
            index: 4,
            error: lost.clone(),
        }),
        Step::Send(ClientReply::ChunkFailed {
            index: 5,
            error: lost,
        }),
    ];
    let addr = scripted_proxy(script).await;
    let err = client(&addr)
        .await
        .get("k")
        .await
        .expect_err("only 3 of 4 needed chunks are good");
    assert!(matches!(err, Error::Unavailable(_)), "{err}");
}

#[tokio::test]
async fn chunks_of_another_version_are_not_mixed_in() {
    let (data, chunks, object) = encoded(5_000);
    let (_, stale, _) = encoded(5_000);
    let stale: Vec<Chunk> = stale
        .into_iter()
        .map(|c| Chunk {
            header: c.header.with_version(8),
            body: c.body,
        })
        .collect();
    let mut script = vec![Step::Send(object)];
    script.extend(
        stale[..2]
            .iter()
            .cloned()
            .map(|c| Step::Send(ClientReply::Chunk(c))),
    );
    script.extend(
        chunks[2..]
            .iter()
            .cloned()
            .map(|c| Step::Send(ClientReply::Chunk(c))),
    );
    let addr = scripted_proxy(script).await;
    assert_eq!(client(&addr).await.get("k").await.expect("get"), Some(data));
}

#[tokio::test]
async fn the_first_k_chunks_are_enough_stragglers_are_not_awaited() {
    let (data, chunks, object) = encoded(300_000);
    let mut script = vec![Step::Send(object)];
    script.extend(
        chunks[2..]
            .iter()
            .cloned()
            .map(|c| Step::Send(ClientReply::Chunk(c))),
    );
    script.push(Step::Stall(Duration::from_secs(15)));
    script.extend(
        chunks[..2]
            .iter()
            .cloned()
            .map(|c| Step::Send(ClientReply::Chunk(c))),
    );
    let addr = scripted_proxy(script).await;
    let started = Instant::now();
    assert_eq!(client(&addr).await.get("k").await.expect("get"), Some(data));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "waited for the stalled chunks: {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn not_found_and_server_errors_are_told_apart() {
    let addr = scripted_proxy(vec![Step::Send(ClientReply::NotFound)]).await;
    assert_eq!(client(&addr).await.get("k").await.expect("get"), None);
    let refusal = ErrorReply::new(ErrorCode::TooLarge, "nope");
    let addr = scripted_proxy(vec![Step::Send(ClientReply::Error(refusal.clone()))]).await;
    assert_eq!(
        client(&addr).await.get("k").await,
        Err(Error::Server(refusal))
    );
}
