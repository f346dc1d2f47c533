//! The InfiniCache wire protocol.
//!
//! One protocol is shared by the three parties:
//!
//! * **client -> proxy** ([`ClientRequest`] / [`ClientReply`]): PUT sends one
//!   frame per chunk, GET is one request answered by a stream of chunk frames.
//! * **proxy -> node** ([`NodeRequest`] / [`NodeReply`]): store, fetch and
//!   drop single chunks. The node dials the proxy (a Lambda function cannot
//!   accept connections), but once connected it is the proxy that asks.
//!
//! Every connection opens with a [`Hello`] from the dialing side, answered by a
//! [`Welcome`] or an error. After that, frames carry a request id so many
//! requests can be in flight on one connection; replies name the request they
//! answer and say what they are, so a reader never needs outside context to
//! parse them. Chunk bodies travel as [`bytes::Bytes`] slices of the read
//! buffer: parsing a frame never copies a body.
//!
//! The byte layouts are specified in `docs/protocol.md`.

mod client;
mod connection;
mod error;
mod frame;
mod handshake;
mod invocation;
mod key;
mod mux;
mod node;
mod wire;

pub use client::{ClientReply, ClientRequest, PutChunk};
pub use connection::{FrameReader, FrameWriter, spawn_writer};
pub use error::{ErrorCode, ErrorReply, ProtocolError};
pub use frame::{DEFAULT_MAX_FRAME_LEN, FRAME_HEADER_LEN, Frame, OutFrame};
pub use handshake::{ClientHello, Hello, MAGIC, NodeHello, PROTOCOL_VERSION, Welcome};
pub use invocation::{Invocation, InvocationSummary, ServeArgs};
pub use key::{Key, MAX_KEY_LEN};
pub use mux::{Mux, MuxError, ReplyStream};
pub use node::{ChunkId, NodeReply, NodeRequest, stored_chunk_cost};

/// A message that can be written as one frame.
pub trait Encode {
    /// Encodes the message as the frame answering or carrying `request_id`.
    fn encode(&self, request_id: u64) -> OutFrame;
}

/// A message that can be parsed from one frame.
pub trait Decode: Sized {
    /// Parses the frame's kind and payload.
    ///
    /// An error here concerns this frame only: the framing itself was intact,
    /// so the connection can go on and the peer can be told what was wrong.
    fn decode(frame: Frame) -> Result<Self, ProtocolError>;
}
