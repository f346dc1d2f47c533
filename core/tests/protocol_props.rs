//! Property tests of the wire protocol: every message survives an
//! encode/decode round trip, and no byte sequence makes a decoder panic.

use bytes::{Bytes, BytesMut};
use infinicache::codec::{Chunk, CodecParams, ObjectCodec};
use infinicache::protocol::{
    ChunkId, ClientHello, ClientReply, ClientRequest, DEFAULT_MAX_FRAME_LEN, Decode, Encode,
    ErrorCode, ErrorReply, Frame, FrameReader, Hello, Key, NodeHello, NodeReply, NodeRequest,
    PutChunk, Welcome,
};
use proptest::prelude::*;

fn key() -> impl Strategy<Value = Key> {
    proptest::collection::vec(any::<u8>(), 1..64)
        .prop_map(|bytes| Key::try_from(bytes).expect("non-empty key"))
}

fn chunk() -> impl Strategy<Value = Chunk> {
    (
        1usize..6,
        0usize..3,
        proptest::collection::vec(any::<u8>(), 0..2000),
        any::<u64>(),
        any::<prop::sample::Index>(),
    )
        .prop_map(|(k, r, data, version, pick)| {
            let codec = ObjectCodec::new(CodecParams::new(k, r).expect("params"));
            let mut chunks = codec.encode(&Bytes::from(data), version).expect("encode");
            chunks.swap_remove(pick.index(chunks.len()))
        })
}

fn error_reply() -> impl Strategy<Value = ErrorReply> {
    (any::<u16>(), ".{0,40}")
        .prop_map(|(code, message)| ErrorReply::new(ErrorCode::from_u16(code), message))
}

fn client_request() -> impl Strategy<Value = ClientRequest> {
    prop_oneof![
        (key(), any::<u64>(), chunk())
            .prop_map(|(key, put_id, chunk)| ClientRequest::Put(PutChunk { key, put_id, chunk })),
        key().prop_map(|key| ClientRequest::Get { key }),
        key().prop_map(|key| ClientRequest::Delete { key }),
        key().prop_map(|key| ClientRequest::Exists { key }),
        any::<u64>().prop_map(|target| ClientRequest::Cancel { target }),
    ]
}

fn client_reply() -> impl Strategy<Value = ClientReply> {
    prop_oneof![
        any::<u64>().prop_map(|version| ClientReply::Stored { version }),
        (any::<u64>(), any::<u64>(), 1usize..200, 0usize..56).prop_map(
            |(version, object_len, k, r)| {
                ClientReply::Object {
                    version,
                    object_len,
                    params: CodecParams::new(k, r).expect("params"),
                }
            }
        ),
        chunk().prop_map(ClientReply::Chunk),
        (any::<u8>(), error_reply())
            .prop_map(|(index, error)| ClientReply::ChunkFailed { index, error }),
        Just(ClientReply::NotFound),
        any::<bool>().prop_map(|existed| ClientReply::Deleted { existed }),
        any::<bool>().prop_map(|exists| ClientReply::Exists { exists }),
        error_reply().prop_map(ClientReply::Error),
    ]
}

fn node_request() -> impl Strategy<Value = NodeRequest> {
    prop_oneof![
        (key(), chunk()).prop_map(|(key, chunk)| NodeRequest::Store { key, chunk }),
        (key(), any::<u64>(), any::<u8>()).prop_map(|(key, version, index)| NodeRequest::Fetch {
            key,
            version,
            index
        }),
        (key(), any::<u64>(), any::<u8>()).prop_map(|(key, version, index)| NodeRequest::Drop {
            key,
            version,
            index
        }),
        Just(NodeRequest::ByeAck),
        Just(NodeRequest::Stay),
        Just(NodeRequest::Ping),
        Just(NodeRequest::List),
    ]
}

fn node_reply() -> impl Strategy<Value = NodeReply> {
    prop_oneof![
        any::<u64>().prop_map(|used| NodeReply::Stored { used }),
        chunk().prop_map(NodeReply::Chunk),
        Just(NodeReply::Missing),
        (any::<u64>(), any::<bool>())
            .prop_map(|(used, existed)| NodeReply::Dropped { used, existed }),
        Just(NodeReply::Bye),
        (any::<u64>(), any::<u64>()).prop_map(|(used, chunks)| NodeReply::Pong { used, chunks }),
        proptest::collection::vec((key(), any::<u64>(), any::<u8>()), 0..20).prop_map(|ids| {
            NodeReply::Inventory(
                ids.into_iter()
                    .map(|(key, version, index)| ChunkId {
                        key,
                        version,
                        index,
                    })
                    .collect(),
            )
        }),
        error_reply().prop_map(NodeReply::Error),
    ]
}

fn hello() -> impl Strategy<Value = Hello> {
    prop_oneof![
        (
            ".{0,30}",
            proptest::option::of(proptest::collection::vec(any::<u8>(), 1..40))
        )
            .prop_map(|(name, secret)| Hello::Client(ClientHello {
                name,
                secret: secret.map(Into::into)
            })),
        (
            any::<u32>(),
            proptest::collection::vec(any::<u8>(), 0..64),
            any::<u64>(),
            any::<u64>(),
            any::<u64>(),
            any::<u64>()
        )
            .prop_map(|(node_id, token, instance_id, capacity, used, chunks)| {
                Hello::Node(NodeHello {
                    node_id,
                    token: token.into(),
                    instance_id,
                    capacity,
                    used,
                    chunks,
                })
            }),
    ]
}

/// Encodes, frames, parses and decodes one message.
fn round_trip<M: Encode + Decode>(message: &M, request_id: u64) -> M {
    let bytes = message.encode(request_id).to_bytes();
    let mut buf = BytesMut::from(&bytes[..]);
    let frame = Frame::parse(&mut buf, DEFAULT_MAX_FRAME_LEN)
        .expect("valid frame")
        .expect("complete frame");
    assert!(
        buf.is_empty(),
        "frame length prefix disagrees with its content"
    );
    assert_eq!(frame.request_id, request_id);
    M::decode(frame).expect("decode what was encoded")
}

/// Decoding and re-encoding must give back exactly the same frame.
fn same_bytes<M: Encode + Decode>(message: &M, request_id: u64) {
    let again = round_trip(message, request_id);
    assert_eq!(
        message.encode(request_id).to_bytes(),
        again.encode(request_id).to_bytes()
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn client_requests_round_trip(message in client_request(), id in any::<u64>()) {
        same_bytes(&message, id);
    }

    #[test]
    fn client_replies_round_trip(message in client_reply(), id in any::<u64>()) {
        same_bytes(&message, id);
    }

    #[test]
    fn node_requests_round_trip(message in node_request(), id in any::<u64>()) {
        same_bytes(&message, id);
    }

    #[test]
    fn node_replies_round_trip(message in node_reply(), id in any::<u64>()) {
        same_bytes(&message, id);
    }

    #[test]
    fn hellos_round_trip(message in hello()) {
        prop_assert_eq!(round_trip(&message, 0), message);
    }

    #[test]
    fn chunks_survive_the_wire_intact(chunk in chunk()) {
        match round_trip(&ClientReply::Chunk(chunk.clone()), 1) {
            ClientReply::Chunk(back) => {
                prop_assert_eq!(back.header, chunk.header);
                prop_assert_eq!(&back.body, &chunk.body);
                prop_assert!(back.verify().is_ok());
            }
            other => prop_assert!(false, "decoded as {:?}", other),
        }
    }

    /// Arbitrary payloads under every kind byte: decoders return errors,
    /// never panic.
    #[test]
    fn decoding_random_frames_never_panics(kind in any::<u8>(), id in any::<u64>(), payload in proptest::collection::vec(any::<u8>(), 0..300)) {
        let frame = Frame { kind, request_id: id, payload: Bytes::from(payload) };
        let _ = ClientRequest::decode(frame.clone());
        let _ = ClientReply::decode(frame.clone());
        let _ = NodeRequest::decode(frame.clone());
        let _ = NodeReply::decode(frame.clone());
        let _ = Hello::decode(frame.clone());
        let _ = <Result<Welcome, ErrorReply>>::decode(frame);
    }

    /// Truncating a valid message anywhere yields an error, not a panic or a
    /// different message.
    #[test]
    fn truncated_messages_are_rejected(message in client_request(), cut in any::<prop::sample::Index>()) {
        let bytes = message.encode(9).to_bytes();
        let payload = bytes.slice(14..);
        if !payload.is_empty() {
            let cut = cut.index(payload.len());
            let frame = Frame { kind: bytes[4], request_id: 9, payload: payload.slice(..cut) };
            // A PutChunk cut inside its body still parses (the body is the
            // frame's tail) but then fails chunk verification.
            match ClientRequest::decode(frame) {
                Err(_) => {}
                Ok(ClientRequest::Put(put)) => prop_assert!(put.chunk.verify().is_err()),
                Ok(other) => prop_assert!(false, "truncated frame decoded as {:?}", other),
            }
        }
    }

    /// A stream of random bytes through the frame reader: frames or an
    /// error, never a panic or a hang.
    #[test]
    fn random_streams_never_panic_the_frame_reader(data in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
        runtime.block_on(async {
            let mut reader = FrameReader::new(&data[..], 1 << 16);
            for _ in 0..data.len() + 1 {
                match reader.read_frame().await {
                    Ok(Some(_)) => continue,
                    Ok(None) | Err(_) => break,
                }
            }
        });
    }
}
