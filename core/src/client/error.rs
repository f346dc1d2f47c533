//! The client's error type.

use std::time::Duration;

use thiserror::Error;

use crate::codec::CodecError;
use crate::protocol::{ErrorCode, ErrorReply, MuxError, ProtocolError};

/// Why a client operation failed.
///
/// A missing key is not an error: `get` returns `Ok(None)`.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The caller passed something unusable (empty key, invalid k/r, no proxy).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The object exceeds a limit of the client or the proxy.
    #[error("object of {size} bytes is too large: {reason}")]
    TooLarge { size: u64, reason: String },
    /// The proxy, or enough of the nodes holding an object, cannot be reached.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The operation did not complete within the configured timeout.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// The peer sent something this client cannot parse.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The proxy refused or failed the request.
    #[error("server error: {0}")]
    Server(ErrorReply),
}

impl Error {
    /// A stable, coarse classification for programs (and the language
    /// bindings' error codes).
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::InvalidArgument(_) => ErrorKind::InvalidArgument,
            Error::TooLarge { .. } => ErrorKind::TooLarge,
            Error::Unavailable(_) => ErrorKind::Unavailable,
            Error::Timeout(_) => ErrorKind::Timeout,
            Error::Protocol(_) => ErrorKind::Protocol,
            Error::Server(reply) => match reply.code {
                ErrorCode::InvalidArgument => ErrorKind::InvalidArgument,
                ErrorCode::TooLarge | ErrorCode::CapacityExceeded => ErrorKind::TooLarge,
                ErrorCode::Unavailable | ErrorCode::Busy => ErrorKind::Unavailable,
                ErrorCode::Timeout => ErrorKind::Timeout,
                ErrorCode::Protocol | ErrorCode::UnsupportedVersion => ErrorKind::Protocol,
                ErrorCode::Unauthorized => ErrorKind::Unauthorized,
                _ => ErrorKind::Server,
            },
        }
    }
}

/// Coarse error classes, see [`Error::kind`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    InvalidArgument,
    TooLarge,
    Unavailable,
    Timeout,
    Protocol,
    Unauthorized,
    Server,
}

impl From<ErrorReply> for Error {
    fn from(reply: ErrorReply) -> Self {
        Error::Server(reply)
    }
}

impl From<ProtocolError> for Error {
    fn from(err: ProtocolError) -> Self {
        match err {
            ProtocolError::InvalidField {
                field: "key",
                reason,
            } => Error::InvalidArgument(format!("key {reason}")),
            ProtocolError::Io(err) => Error::Unavailable(err),
            other => Error::Protocol(other.to_string()),
        }
    }
}

impl From<MuxError> for Error {
    fn from(err: MuxError) -> Self {
        match err {
            MuxError::Closed(reason) => {
                Error::Unavailable(format!("proxy connection lost: {reason}"))
            }
            MuxError::Protocol(err) => Error::Protocol(err.to_string()),
        }
    }
}

impl From<CodecError> for Error {
    fn from(err: CodecError) -> Self {
        match err {
            CodecError::InvalidParams(reason) => Error::InvalidArgument(reason),
            other => Error::Unavailable(other.to_string()),
        }
    }
}

impl From<std::convert::Infallible> for Error {
    fn from(never: std::convert::Infallible) -> Self {
        match never {}
    }
}
