//! The RESP frontend: the incremental request parser, the general frame
//! parser and command parsing (`proxy/src/resp/`).
//!
//! Input: a flags byte (bit 0: the client has not authenticated, so the
//! small pre-authentication limits apply; bit 1: small [`Limits`], so the
//! fuzzer reaches every limit with short inputs), a seed byte for the read
//! cuts ([`crate::pieces`]), then the bytes a client sent.
//!
//! Properties:
//! * the request parser reads the same requests, and stops with the same
//!   error or leftover, whether the bytes arrive at once or in pieces;
//! * every request is a non-empty array of bulk strings, which command
//!   parsing accepts or refuses without panicking, and which (within the
//!   limits) reads back unchanged once written as a RESP array;
//! * the general parser sees no frame in any proper prefix of a frame, and
//!   its frames, written and read again, are a fixed point in RESP2 and
//!   RESP3.

use bytes::BytesMut;
use infinicache_proxy::resp::commands::{Command, Session};
use infinicache_proxy::resp::frame::{
    Frame, Limits, MAX_ARRAY_LEN, MAX_BULK_LEN, MAX_DEPTH, MAX_LINE_LEN, MAX_REQUEST_LEN, Protocol,
    ProtocolError, RequestParser,
};

use crate::pieces::Cuts;

/// Limits small enough that short inputs cross every one of them.
const SMALL_LIMITS: Limits = Limits {
    max_bulk: 64,
    max_array: 8,
    max_line: 32,
    max_request: 128,
    max_depth: 3,
};

/// Limits for reading back what the encoder wrote: a RESP3 map of `n`
/// pairs is an array of `2n` elements in RESP2, so arrays may be twice as
/// long; everything else is written no larger than it was read.
const READ_BACK_LIMITS: Limits = Limits {
    max_bulk: MAX_BULK_LEN,
    max_array: 2 * MAX_ARRAY_LEN,
    max_line: MAX_LINE_LEN,
    max_request: MAX_REQUEST_LEN,
    max_depth: MAX_DEPTH,
};

/// Runs one input; panics if a property does not hold.
pub fn check(data: &[u8]) {
    let [flags, seed, stream @ ..] = data else {
        return;
    };
    let authenticated = flags & 1 == 0;
    let limits = if flags & 2 == 0 {
        Limits::default()
    } else {
        SMALL_LIMITS
    };

    let whole = read_requests(limits, authenticated, &[stream]);
    let pieces = Cuts::new(*seed).split(stream);
    let split = read_requests(limits, authenticated, &pieces);
    assert_eq!(
        whole, split,
        "requests differ when the bytes arrive in pieces"
    );
    for request in &whole.requests {
        check_request(request, &limits, authenticated);
    }

    check_frames(stream, &limits);
}

/// What the request parser made of a stream.
#[derive(Debug, PartialEq)]
struct Requests {
    requests: Vec<Frame>,
    /// The error that ended reading, or the bytes left unconsumed and
    /// whether a multibulk request was partly read.
    end: Result<(Vec<u8>, bool), ProtocolError>,
}

/// Reads requests as a connection does, the stream arriving in `pieces`.
fn read_requests(limits: Limits, authenticated: bool, pieces: &[&[u8]]) -> Requests {
    let mut parser = RequestParser::new(limits);
    let mut buf = BytesMut::new();
    let mut requests = Vec::new();
    for piece in pieces {
        buf.extend_from_slice(piece);
        loop {
            let before = buf.len();
            match parser.parse(&mut buf, authenticated) {
                Ok(Some(request)) => {
                    assert!(buf.len() < before, "a request consumed nothing");
                    requests.push(request);
                }
                Ok(None) => break,
                Err(err) => {
                    return Requests {
                        requests,
                        end: Err(err),
                    };
                }
            }
        }
    }
    Requests {
        requests,
        end: Ok((buf.to_vec(), parser.is_idle())),
    }
}

/// One parsed request: its shape, command parsing, and its encoding read
/// back.
fn check_request(request: &Frame, limits: &Limits, authenticated: bool) {
    let Frame::Array(args) = request else {
        panic!("a request is not an array: {request:?}");
    };
    assert!(!args.is_empty(), "an empty request was not skipped");
    let mut sizes = Vec::with_capacity(args.len());
    for arg in args {
        let Frame::Bulk(arg) = arg else {
            panic!("a request argument is not a bulk string: {arg:?}");
        };
        sizes.push(arg.len() as u64);
    }

    // Refusing is fine; panicking is not.
    let _ = Command::from_frame(request.clone(), &Session::new(1, authenticated));

    // Inline requests are bounded by the line limit, not the bulk limits,
    // so only a request within the latter must read back as a multibulk.
    let fits = args.len() <= limits.max_array
        && sizes.iter().all(|&size| size <= limits.max_bulk)
        && sizes.iter().sum::<u64>() <= limits.max_request;
    if fits {
        let mut buf = BytesMut::from(&request.to_bytes(Protocol::Resp2)[..]);
        let again = RequestParser::new(*limits).parse(&mut buf, true);
        assert_eq!(
            again.as_ref(),
            Ok(&Some(request.clone())),
            "a request changed"
        );
        assert!(buf.is_empty(), "a written request left bytes behind");
    }
}

/// Runs the general frame parser over the stream, frame after frame.
fn check_frames(stream: &[u8], limits: &Limits) {
    let mut at = 0;
    while let Ok(Some((frame, len))) = Frame::parse_slice(&stream[at..], limits) {
        assert!(
            len > 0 && at + len <= stream.len(),
            "bad frame length {len}"
        );
        let bytes = &stream[at..at + len];
        for cut in [0, len / 2, len - 1] {
            assert_eq!(
                Frame::parse_slice(&bytes[..cut], limits),
                Ok(None),
                "a proper prefix of a frame is not incomplete"
            );
        }
        let mut buf = BytesMut::from(bytes);
        assert_eq!(Frame::parse(&mut buf, limits), Ok(Some(frame.clone())));
        assert!(buf.is_empty());
        for protocol in [Protocol::Resp3, Protocol::Resp2] {
            check_fixed_point(&frame, protocol);
        }
        at += len;
    }
}

/// Written, read and written again, a frame must give the same bytes.
fn check_fixed_point(frame: &Frame, protocol: Protocol) {
    let written = frame.to_bytes(protocol);
    let read = Frame::parse_slice(&written, &READ_BACK_LIMITS);
    let Ok(Some((again, len))) = read else {
        panic!("{protocol:?} writing of {frame:?} does not read back: {read:?}");
    };
    assert_eq!(
        len,
        written.len(),
        "{protocol:?}: a written frame read short"
    );
    assert_eq!(
        again.to_bytes(protocol),
        written,
        "{protocol:?}: writing is not stable"
    );
}
