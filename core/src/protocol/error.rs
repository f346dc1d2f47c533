//! Protocol errors: what went wrong while parsing, and the error codes carried
//! on the wire.

use std::fmt;

use thiserror::Error;

/// A frame or message that could not be parsed.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ProtocolError {
    /// The frame ended before a field did.
    #[error("truncated {what}")]
    Truncated { what: &'static str },
    /// The frame had bytes left over after the last field.
    #[error("{extra} unexpected trailing bytes in {what}")]
    TrailingBytes { what: &'static str, extra: usize },
    /// The length prefix announces a frame larger than this side accepts.
    #[error("frame of {len} bytes exceeds the limit of {max} bytes")]
    FrameTooLarge { len: u64, max: u32 },
    /// The length prefix is too small to hold a frame header.
    #[error("frame length {0} is shorter than the frame header")]
    FrameTooShort(u32),
    /// The kind byte names no message this side accepts here.
    #[error("unexpected message kind 0x{kind:02x} for {context}")]
    UnexpectedKind { kind: u8, context: &'static str },
    /// A field held a value outside its domain.
    #[error("invalid {field}: {reason}")]
    InvalidField { field: &'static str, reason: String },
    /// The handshake did not start with the protocol magic.
    #[error("not an InfiniCache connection (bad magic)")]
    BadMagic,
    /// The peer speaks no protocol version this side supports.
    #[error("unsupported protocol version range {min}..={max} (this side speaks {ours})")]
    UnsupportedVersion { min: u16, max: u16, ours: u16 },
    /// The connection closed in the middle of a frame.
    #[error("connection closed in the middle of a frame")]
    UnexpectedEof,
    /// The transport failed.
    #[error("I/O error: {0}")]
    Io(String),
}

impl From<std::io::Error> for ProtocolError {
    fn from(err: std::io::Error) -> Self {
        ProtocolError::Io(err.to_string())
    }
}

/// Error codes carried in [`ErrorReply`] frames.
///
/// Codes are part of the wire format: never renumber one. Codes this version
/// does not know survive a round trip as [`ErrorCode::Other`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The request could not be parsed or was not allowed at this point.
    Protocol,
    /// No common protocol version.
    UnsupportedVersion,
    /// Missing or wrong credentials (for nodes: the invocation token).
    Unauthorized,
    /// A well-formed request with invalid parameters (key, k, r, ...).
    InvalidArgument,
    /// The object or chunk exceeds a configured limit.
    TooLarge,
    /// The node(s) needed to serve the request cannot be reached.
    Unavailable,
    /// The request did not complete in time.
    Timeout,
    /// The node has no room for the chunk.
    CapacityExceeded,
    /// A bug or an unexpected internal condition.
    Internal,
    /// The operation was abandoned (for example a PUT whose other chunks failed).
    Aborted,
    /// The proxy is at a configured limit (requests in flight on the
    /// connection, buffer memory): the request was refused, retry later.
    Busy,
    /// A code this version does not know.
    Other(u16),
}

impl ErrorCode {
    /// The code's value on the wire.
    pub fn to_u16(self) -> u16 {
        match self {
            ErrorCode::Protocol => 1,
            ErrorCode::UnsupportedVersion => 2,
            ErrorCode::Unauthorized => 3,
            ErrorCode::InvalidArgument => 4,
            ErrorCode::TooLarge => 5,
            ErrorCode::Unavailable => 6,
            ErrorCode::Timeout => 7,
            ErrorCode::CapacityExceeded => 8,
            ErrorCode::Internal => 9,
            ErrorCode::Aborted => 10,
            ErrorCode::Busy => 11,
            ErrorCode::Other(code) => code,
        }
    }

    /// Parses a wire value; unknown values are kept as [`ErrorCode::Other`].
    pub fn from_u16(code: u16) -> Self {
        match code {
            1 => ErrorCode::Protocol,
            2 => ErrorCode::UnsupportedVersion,
            3 => ErrorCode::Unauthorized,
            4 => ErrorCode::InvalidArgument,
            5 => ErrorCode::TooLarge,
            6 => ErrorCode::Unavailable,
            7 => ErrorCode::Timeout,
            8 => ErrorCode::CapacityExceeded,
            9 => ErrorCode::Internal,
            10 => ErrorCode::Aborted,
            11 => ErrorCode::Busy,
            other => ErrorCode::Other(other),
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            ErrorCode::Protocol => "protocol error",
            ErrorCode::UnsupportedVersion => "unsupported version",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::InvalidArgument => "invalid argument",
            ErrorCode::TooLarge => "too large",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Timeout => "timeout",
            ErrorCode::CapacityExceeded => "capacity exceeded",
            ErrorCode::Internal => "internal error",
            ErrorCode::Aborted => "aborted",
            ErrorCode::Busy => "busy",
            ErrorCode::Other(code) => return write!(f, "error {code}"),
        };
        f.write_str(name)
    }
}

/// An error reported by the peer: a code a program can act on and a message
/// for people.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{code}: {message}")]
pub struct ErrorReply {
    pub code: ErrorCode,
    pub message: String,
}

impl ErrorReply {
    /// Builds an error reply.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ErrorReply {
            code,
            message: message.into(),
        }
    }
}

impl From<&ProtocolError> for ErrorReply {
    fn from(err: &ProtocolError) -> Self {
        let code = match err {
            ProtocolError::UnsupportedVersion { .. } => ErrorCode::UnsupportedVersion,
            ProtocolError::FrameTooLarge { .. } => ErrorCode::TooLarge,
            _ => ErrorCode::Protocol,
        };
        ErrorReply::new(code, err.to_string())
    }
}

/// The kind byte of an error reply; shared by every reply family.
pub(crate) const KIND_ERROR: u8 = 0x7f;

impl super::Encode for ErrorReply {
    fn encode(&self, request_id: u64) -> super::OutFrame {
        let mut frame = super::OutFrame::builder(KIND_ERROR, request_id);
        let buf = frame.fields();
        bytes::BufMut::put_u16(buf, self.code.to_u16());
        super::wire::put_message(buf, &self.message);
        frame.finish(bytes::Bytes::new())
    }
}

/// Parses the payload of an error frame.
pub(crate) fn decode_error_reply(payload: bytes::Bytes) -> Result<ErrorReply, ProtocolError> {
    let mut r = super::wire::FieldReader::new(payload, "Error");
    let code = ErrorCode::from_u16(r.u16()?);
    let message = r.string16("error message")?;
    r.finish()?;
    Ok(ErrorReply { code, message })
}
