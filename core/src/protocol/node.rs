//! Messages between the proxy and a cache node.

use bytes::{BufMut, Bytes};

use super::client::chunk_frame;
use super::error::{KIND_ERROR, decode_error_reply};
use super::wire::{FieldReader, put_bytes16};
use super::{Decode, Encode, ErrorReply, Frame, Key, OutFrame, ProtocolError};
use crate::codec::Chunk;

const KIND_STORE: u8 = 0x30;
const KIND_FETCH: u8 = 0x31;
const KIND_DROP: u8 = 0x32;
const KIND_BYE_ACK: u8 = 0x33;

const KIND_STORED: u8 = 0x40;
const KIND_CHUNK: u8 = 0x41;
const KIND_MISSING: u8 = 0x42;
const KIND_DROPPED: u8 = 0x43;
const KIND_BYE: u8 = 0x44;

/// Requests the proxy sends to a node.
///
/// A node stores chunks under `(key, version, index)`, so chunks of two
/// versions of one object never overwrite or mix with each other.
#[derive(Debug, Clone)]
pub enum NodeRequest {
    /// Keep this chunk (the header carries version and index).
    Store { key: Key, chunk: Chunk },
    /// Return one chunk.
    Fetch { key: Key, version: u64, index: u8 },
    /// Forget one chunk.
    Drop { key: Key, version: u64, index: u8 },
    /// Acknowledges the node's [`NodeReply::Bye`] (request id 0): the proxy
    /// sends nothing after it, so once the node has answered everything
    /// received before it, it may return from its invocation.
    ByeAck,
}

/// Replies a node sends to the proxy.
#[derive(Debug, Clone)]
pub enum NodeReply {
    /// The chunk is stored; `used` is the node's chunk bytes afterwards.
    Stored { used: u64 },
    /// The requested chunk.
    Chunk(Chunk),
    /// The node does not hold the requested chunk.
    Missing,
    /// The chunk is gone (`existed` says whether it was there).
    Dropped { used: u64, existed: bool },
    /// Unsolicited (request id 0): the node is idle and wants to return from
    /// its invocation so that idle time is not billed.
    Bye,
    /// The request failed.
    Error(ErrorReply),
}

fn chunk_address(kind: u8, request_id: u64, key: &Key, version: u64, index: u8) -> OutFrame {
    let mut frame = OutFrame::builder(kind, request_id);
    let buf = frame.fields();
    put_bytes16(buf, key.as_bytes());
    buf.put_u64(version);
    buf.put_u8(index);
    frame.finish(Bytes::new())
}

impl Encode for NodeRequest {
    fn encode(&self, request_id: u64) -> OutFrame {
        match self {
            NodeRequest::Store { key, chunk } => {
                let mut frame = OutFrame::builder(KIND_STORE, request_id);
                put_bytes16(frame.fields(), key.as_bytes());
                chunk_frame(frame, chunk)
            }
            NodeRequest::Fetch {
                key,
                version,
                index,
            } => chunk_address(KIND_FETCH, request_id, key, *version, *index),
            NodeRequest::Drop {
                key,
                version,
                index,
            } => chunk_address(KIND_DROP, request_id, key, *version, *index),
            NodeRequest::ByeAck => OutFrame::builder(KIND_BYE_ACK, request_id).finish(Bytes::new()),
        }
    }
}

impl Decode for NodeRequest {
    fn decode(frame: Frame) -> Result<Self, ProtocolError> {
        let kind = frame.kind;
        let mut r = FieldReader::new(frame.payload, "node request");
        let request = match kind {
            KIND_STORE => {
                let key = Key::new(r.bytes16()?)?;
                return Ok(NodeRequest::Store {
                    key,
                    chunk: r.chunk()?,
                });
            }
            KIND_FETCH => NodeRequest::Fetch {
                key: Key::new(r.bytes16()?)?,
                version: r.u64()?,
                index: r.u8()?,
            },
            KIND_DROP => NodeRequest::Drop {
                key: Key::new(r.bytes16()?)?,
                version: r.u64()?,
                index: r.u8()?,
            },
            KIND_BYE_ACK => NodeRequest::ByeAck,
            kind => {
                return Err(ProtocolError::UnexpectedKind {
                    kind,
                    context: "a node request",
                });
            }
        };
        r.finish()?;
        Ok(request)
    }
}

impl Encode for NodeReply {
    fn encode(&self, request_id: u64) -> OutFrame {
        match self {
            NodeReply::Stored { used } => {
                let mut frame = OutFrame::builder(KIND_STORED, request_id);
                frame.fields().put_u64(*used);
                frame.finish(Bytes::new())
            }
            NodeReply::Chunk(chunk) => {
                chunk_frame(OutFrame::builder(KIND_CHUNK, request_id), chunk)
            }
            NodeReply::Missing => OutFrame::builder(KIND_MISSING, request_id).finish(Bytes::new()),
            NodeReply::Dropped { used, existed } => {
                let mut frame = OutFrame::builder(KIND_DROPPED, request_id);
                frame.fields().put_u64(*used);
                frame.fields().put_u8(u8::from(*existed));
                frame.finish(Bytes::new())
            }
            NodeReply::Bye => OutFrame::builder(KIND_BYE, request_id).finish(Bytes::new()),
            NodeReply::Error(error) => error.encode(request_id),
        }
    }
}

impl Decode for NodeReply {
    fn decode(frame: Frame) -> Result<Self, ProtocolError> {
        let kind = frame.kind;
        let mut r = FieldReader::new(frame.payload, "node reply");
        let reply = match kind {
            KIND_STORED => NodeReply::Stored { used: r.u64()? },
            KIND_CHUNK => return Ok(NodeReply::Chunk(r.chunk()?)),
            KIND_MISSING => NodeReply::Missing,
            KIND_DROPPED => NodeReply::Dropped {
                used: r.u64()?,
                existed: r.bool()?,
            },
            KIND_BYE => NodeReply::Bye,
            KIND_ERROR => return Ok(NodeReply::Error(decode_error_reply(r.into_rest())?)),
            kind => {
                return Err(ProtocolError::UnexpectedKind {
                    kind,
                    context: "a node reply",
                });
            }
        };
        r.finish()?;
        Ok(reply)
    }
}

/// Bytes a node charges against its capacity for one stored chunk: the body
/// plus the key, header and bookkeeping. The proxy uses the same figure for
/// placement, so both sides agree on when a node is full.
pub const fn stored_chunk_cost(key_len: usize, body_len: usize) -> u64 {
    const ENTRY_OVERHEAD: u64 = 96;
    body_len as u64 + key_len as u64 + crate::codec::ChunkHeader::LEN as u64 + ENTRY_OVERHEAD
}
