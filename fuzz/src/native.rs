//! The native protocol: frames and every message decoder
//! (`core/src/protocol/`).
//!
//! Input: one seed byte for the read cuts ([`crate::pieces`]), then the byte
//! stream a peer sent. The stream is read as frames twice, all at once with
//! [`Frame::parse`] and in pieces through the connection's [`FrameReader`],
//! and both must agree frame for frame and on how the stream ended. Every
//! frame then goes through every decoder (a proxy reads client requests and
//! hellos, a client reads replies and welcomes, a node reads node requests,
//! the proxy node replies), and whatever decodes must re-encode to a frame
//! that decodes to the same message: byte for byte, because the decoders
//! accept only the encoding the encoders write, except for `Hello`, whose
//! version range and optional secret field are normalised. Errors must be
//! answerable: the error reply built from a decoder's error must itself
//! encode and decode.

use bytes::BytesMut;
use infinicache::protocol::{
    ClientReply, ClientRequest, Decode, Encode, ErrorReply, Frame, FrameReader, Hello, NodeReply,
    NodeRequest, ProtocolError, Welcome,
};

use crate::pieces::{Cuts, PiecewiseReader};

/// The frame limit the checks read with: large enough for any frame a
/// fuzzer builds, small enough that a claimed length never makes the
/// reader reserve much.
const MAX_FRAME_LEN: u32 = 1 << 20;

/// How a byte stream ended, after its last whole frame.
#[derive(Debug, PartialEq, Eq)]
enum End {
    /// Exactly at a frame boundary.
    Clean,
    /// Inside a frame (the reader's `UnexpectedEof`).
    Truncated,
    /// At an invalid length prefix.
    Invalid(ProtocolError),
}

/// Runs one input; panics if a property does not hold.
pub fn check(data: &[u8]) {
    let Some((&seed, stream)) = data.split_first() else {
        return;
    };
    let (frames, end) = parse_whole(stream);
    let (read, read_end) = read_in_pieces(stream, Cuts::new(seed));
    assert_eq!(frames, read, "FrameReader and Frame::parse disagree");
    assert_eq!(
        end, read_end,
        "FrameReader and Frame::parse end differently"
    );
    for frame in &frames {
        check_frame(frame);
    }
}

/// Every frame of `stream`, parsed from one buffer.
fn parse_whole(stream: &[u8]) -> (Vec<Frame>, End) {
    let mut buf = BytesMut::from(stream);
    let mut frames = Vec::new();
    loop {
        let before = buf.len();
        match Frame::parse(&mut buf, MAX_FRAME_LEN) {
            Ok(Some(frame)) => {
                assert!(buf.len() < before, "a parsed frame consumed nothing");
                frames.push(frame);
            }
            Ok(None) => {
                assert_eq!(buf.len(), before, "an incomplete frame was consumed");
                let end = if buf.is_empty() {
                    End::Clean
                } else {
                    End::Truncated
                };
                return (frames, end);
            }
            Err(err) => return (frames, End::Invalid(err)),
        }
    }
}

/// Every frame of `stream`, read through a [`FrameReader`] that gets the
/// bytes in pieces.
fn read_in_pieces(stream: &[u8], cuts: Cuts) -> (Vec<Frame>, End) {
    let mut reader = FrameReader::new(PiecewiseReader::new(stream, cuts), MAX_FRAME_LEN);
    let mut frames = Vec::new();
    futures::executor::block_on(async {
        loop {
            match reader.read_frame().await {
                Ok(Some(frame)) => frames.push(frame),
                Ok(None) => return (frames, End::Clean),
                Err(ProtocolError::UnexpectedEof) => return (frames, End::Truncated),
                Err(err) => return (frames, End::Invalid(err)),
            }
        }
    })
}

/// Runs one frame through every decoder.
fn check_frame(frame: &Frame) {
    exact_round_trip::<ClientRequest>(frame);
    exact_round_trip::<ClientReply>(frame);
    exact_round_trip::<NodeRequest>(frame);
    exact_round_trip::<NodeReply>(frame);
    hello_round_trip(frame);
    welcome_round_trip(frame);
}

/// Encodes a message as the frame answering `request_id` and parses that
/// frame back.
fn reencode(message: &impl Encode, request_id: u64) -> Frame {
    let bytes = message.encode(request_id).to_bytes();
    let mut buf = BytesMut::from(&bytes[..]);
    let frame = Frame::parse(&mut buf, u32::MAX)
        .unwrap_or_else(|err| panic!("an encoded message does not parse as a frame: {err}"))
        .unwrap_or_else(|| panic!("an encoded message is an incomplete frame"));
    assert!(buf.is_empty(), "an encoded message is more than one frame");
    frame
}

/// A message that decodes must encode to exactly the frame it came from.
fn exact_round_trip<M: Decode + Encode>(frame: &Frame) {
    match M::decode(frame.clone()) {
        Ok(message) => {
            let again = reencode(&message, frame.request_id);
            assert_eq!(&again, frame, "decode -> encode changed the frame");
        }
        Err(err) => check_error_reply(&err, frame.request_id),
    }
}

/// A Hello normalises its version range and secret, so it is compared as a
/// message: decode -> encode -> decode gives the same Hello.
fn hello_round_trip(frame: &Frame) {
    match Hello::decode(frame.clone()) {
        Ok(hello) => {
            let again = reencode(&hello, frame.request_id);
            assert_eq!(again.kind, frame.kind);
            let decoded = Hello::decode(again.clone())
                .unwrap_or_else(|err| panic!("a re-encoded Hello does not decode: {err}"));
            assert_eq!(decoded, hello, "decode -> encode -> decode changed a Hello");
            assert_eq!(reencode(&decoded, frame.request_id), again);
        }
        Err(err) => check_error_reply(&err, frame.request_id),
    }
}

/// What a client reads in answer to its Hello: a Welcome or an error.
fn welcome_round_trip(frame: &Frame) {
    match <Result<Welcome, ErrorReply>>::decode(frame.clone()) {
        Ok(Ok(welcome)) => {
            assert_eq!(&reencode(&welcome, frame.request_id), frame);
        }
        Ok(Err(reply)) => {
            assert_eq!(&reencode(&reply, frame.request_id), frame);
        }
        Err(err) => check_error_reply(&err, frame.request_id),
    }
}

/// The proxy answers an undecodable frame with an error reply made from the
/// decoder's error; that reply must decode, unchanged, on the other side.
fn check_error_reply(err: &ProtocolError, request_id: u64) {
    let reply = ErrorReply::from(err);
    let frame = reencode(&reply, request_id);
    match <Result<Welcome, ErrorReply>>::decode(frame) {
        Ok(Err(decoded)) => assert_eq!(decoded, reply, "an error reply changed in transit"),
        other => panic!("an error reply decoded as {other:?}"),
    }
}
