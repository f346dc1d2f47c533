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
const KIND_PING: u8 = 0x34;
const KIND_LIST: u8 = 0x35;
const KIND_STAY: u8 = 0x36;

const KIND_STORED: u8 = 0x40;
const KIND_CHUNK: u8 = 0x41;
const KIND_MISSING: u8 = 0x42;
const KIND_DROPPED: u8 = 0x43;
const KIND_BYE: u8 = 0x44;
const KIND_PONG: u8 = 0x45;
const KIND_INVENTORY: u8 = 0x46;

/// Bytes one inventory entry takes at least on the wire (empty key): the
/// decoder never believes an entry count the payload cannot hold.
const MIN_INVENTORY_ENTRY: usize = 2 + 8 + 1;

/// The address of one stored chunk: what a node keys its memory by.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChunkId {
    pub key: Key,
    pub version: u64,
    pub index: u8,
}

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
    /// Are you there? Answered with [`NodeReply::Pong`]; resets the node's
    /// idle clock.
    Ping,
    /// List every chunk held ([`NodeReply::Inventory`]): how the proxy learns
    /// what an environment it did not expect (a backup taking over, or one
    /// being synced) actually holds.
    List,
    /// Declines the node's [`NodeReply::Bye`] (request id 0, no reply): the
    /// proxy still needs this invocation, because a backup of the node is
    /// being synced through it. The node goes on serving as if it had just
    /// been active, unless its invocation's deadline is near. Holding the
    /// invocation this way does not depend on how promptly anything reaches
    /// the node, however short its idle timeout.
    Stay,
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
    /// Answer to [`NodeRequest::Ping`]: the node's chunk bytes and count.
    Pong { used: u64, chunks: u64 },
    /// Answer to [`NodeRequest::List`]: every chunk held, in no particular order.
    Inventory(Vec<ChunkId>),
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
            NodeRequest::Ping => OutFrame::builder(KIND_PING, request_id).finish(Bytes::new()),
            NodeRequest::List => OutFrame::builder(KIND_LIST, request_id).finish(Bytes::new()),
            NodeRequest::Stay => OutFrame::builder(KIND_STAY, request_id).finish(Bytes::new()),
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
            KIND_PING => NodeRequest::Ping,
            KIND_LIST => NodeRequest::List,
            KIND_STAY => NodeRequest::Stay,
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
            NodeReply::Pong { used, chunks } => {
                let mut frame = OutFrame::builder(KIND_PONG, request_id);
                frame.fields().put_u64(*used);
                frame.fields().put_u64(*chunks);
                frame.finish(Bytes::new())
            }
            NodeReply::Inventory(chunks) => {
                let mut frame = OutFrame::builder(KIND_INVENTORY, request_id);
                let buf = frame.fields();
                buf.put_u32(u32::try_from(chunks.len()).unwrap_or(u32::MAX));
                for id in chunks.iter().take(u32::MAX as usize) {
                    put_bytes16(buf, id.key.as_bytes());
                    buf.put_u64(id.version);
                    buf.put_u8(id.index);
                }
                frame.finish(Bytes::new())
            }
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
            KIND_PONG => NodeReply::Pong {
                used: r.u64()?,
                chunks: r.u64()?,
            },
            KIND_INVENTORY => {
                let count = r.u32()? as usize;
                if count > r.remaining() / MIN_INVENTORY_ENTRY {
                    return Err(ProtocolError::Truncated { what: "inventory" });
                }
                let mut chunks = Vec::with_capacity(count);
                for _ in 0..count {
                    chunks.push(ChunkId {
                        key: Key::new(r.bytes16()?)?,
                        version: r.u64()?,
                        index: r.u8()?,
                    });
                }
                NodeReply::Inventory(chunks)
            }
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
