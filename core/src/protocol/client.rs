//! Messages between a client and the proxy.

use bytes::{BufMut, Bytes};

use super::error::{KIND_ERROR, decode_error_reply};
use super::wire::{FieldReader, put_bytes16};
use super::{Decode, Encode, ErrorReply, Frame, Key, OutFrame, ProtocolError};
use crate::codec::{Chunk, ChunkHeader, CodecParams};

const KIND_PUT_CHUNK: u8 = 0x10;
const KIND_GET: u8 = 0x11;
const KIND_DELETE: u8 = 0x12;
const KIND_EXISTS: u8 = 0x13;
const KIND_CANCEL: u8 = 0x14;

const KIND_STORED: u8 = 0x20;
const KIND_OBJECT: u8 = 0x21;
const KIND_CHUNK: u8 = 0x22;
const KIND_CHUNK_FAILED: u8 = 0x23;
const KIND_NOT_FOUND: u8 = 0x24;
const KIND_DELETED: u8 = 0x25;
const KIND_EXISTS_REPLY: u8 = 0x26;

/// One chunk of a PUT.
///
/// A PUT is `k + r` of these, one per chunk, all with the same `put_id`
/// (chosen by the client, unique per object write). The proxy groups them by
/// `(key, put_id)`, assigns the version, and acknowledges every chunk once
/// all of them are stored, so an acknowledged PUT is visible to every later
/// GET.
#[derive(Debug, Clone)]
pub struct PutChunk {
    pub key: Key,
    pub put_id: u64,
    pub chunk: Chunk,
}

/// Requests a client sends to the proxy.
#[derive(Debug, Clone)]
pub enum ClientRequest {
    /// Store one chunk of an object. Answered by [`ClientReply::Stored`].
    Put(PutChunk),
    /// Fetch an object. Answered by [`ClientReply::NotFound`], or by
    /// [`ClientReply::Object`] followed by one [`ClientReply::Chunk`] or
    /// [`ClientReply::ChunkFailed`] per chunk, in arrival order.
    Get { key: Key },
    /// Delete an object. Answered by [`ClientReply::Deleted`].
    Delete { key: Key },
    /// Ask whether an object exists. Answered by [`ClientReply::Exists`].
    Exists { key: Key },
    /// Stop sending replies to request `target` (a GET that already has
    /// enough chunks). Carries request id 0 and has no reply.
    Cancel { target: u64 },
}

/// Replies the proxy sends to a client.
#[derive(Debug, Clone)]
pub enum ClientReply {
    /// A chunk of a PUT is stored and the object's new version is visible.
    Stored { version: u64 },
    /// The object a GET is about to stream.
    Object {
        version: u64,
        object_len: u64,
        params: CodecParams,
    },
    /// One chunk of a GET.
    Chunk(Chunk),
    /// One chunk of a GET could not be fetched.
    ChunkFailed { index: u8, error: ErrorReply },
    /// The key does not exist.
    NotFound,
    /// The result of a DELETE.
    Deleted { existed: bool },
    /// The result of an EXISTS.
    Exists { exists: bool },
    /// The request failed as a whole.
    Error(ErrorReply),
}

fn key_only(frame: Frame, what: &'static str) -> Result<Key, ProtocolError> {
    let mut r = FieldReader::new(frame.payload, what);
    let key = Key::new(r.bytes16()?)?;
    r.finish()?;
    Ok(key)
}

fn key_frame(kind: u8, request_id: u64, key: &Key) -> OutFrame {
    let mut frame = OutFrame::builder(kind, request_id);
    put_bytes16(frame.fields(), key.as_bytes());
    frame.finish(Bytes::new())
}

/// Writes a chunk's header into the fields and its body as the frame body.
pub(crate) fn chunk_frame(mut frame: super::frame::OutFrameBuilder, chunk: &Chunk) -> OutFrame {
    chunk.header.put(frame.fields());
    frame.finish(chunk.body.clone())
}

impl Encode for ClientRequest {
    fn encode(&self, request_id: u64) -> OutFrame {
        match self {
            ClientRequest::Put(put) => {
                let mut frame = OutFrame::builder(KIND_PUT_CHUNK, request_id);
                put_bytes16(frame.fields(), put.key.as_bytes());
                frame.fields().put_u64(put.put_id);
                chunk_frame(frame, &put.chunk)
            }
            ClientRequest::Get { key } => key_frame(KIND_GET, request_id, key),
            ClientRequest::Delete { key } => key_frame(KIND_DELETE, request_id, key),
            ClientRequest::Exists { key } => key_frame(KIND_EXISTS, request_id, key),
            ClientRequest::Cancel { target } => {
                let mut frame = OutFrame::builder(KIND_CANCEL, request_id);
                frame.fields().put_u64(*target);
                frame.finish(Bytes::new())
            }
        }
    }
}

impl Decode for ClientRequest {
    fn decode(frame: Frame) -> Result<Self, ProtocolError> {
        match frame.kind {
            KIND_PUT_CHUNK => {
                let mut r = FieldReader::new(frame.payload, "PutChunk");
                let key = Key::new(r.bytes16()?)?;
                let put_id = r.u64()?;
                let chunk = r.chunk()?;
                Ok(ClientRequest::Put(PutChunk { key, put_id, chunk }))
            }
            KIND_GET => Ok(ClientRequest::Get {
                key: key_only(frame, "Get")?,
            }),
            KIND_DELETE => Ok(ClientRequest::Delete {
                key: key_only(frame, "Delete")?,
            }),
            KIND_EXISTS => Ok(ClientRequest::Exists {
                key: key_only(frame, "Exists")?,
            }),
            KIND_CANCEL => {
                let mut r = FieldReader::new(frame.payload, "Cancel");
                let target = r.u64()?;
                r.finish()?;
                Ok(ClientRequest::Cancel { target })
            }
            kind => Err(ProtocolError::UnexpectedKind {
                kind,
                context: "a client request",
            }),
        }
    }
}

impl Encode for ClientReply {
    fn encode(&self, request_id: u64) -> OutFrame {
        match self {
            ClientReply::Stored { version } => {
                let mut frame = OutFrame::builder(KIND_STORED, request_id);
                frame.fields().put_u64(*version);
                frame.finish(Bytes::new())
            }
            ClientReply::Object {
                version,
                object_len,
                params,
            } => {
                let mut frame = OutFrame::builder(KIND_OBJECT, request_id);
                let buf = frame.fields();
                buf.put_u64(*version);
                buf.put_u64(*object_len);
                buf.put_u8(params.data_shards() as u8);
                buf.put_u8(params.parity_shards() as u8);
                frame.finish(Bytes::new())
            }
            ClientReply::Chunk(chunk) => {
                chunk_frame(OutFrame::builder(KIND_CHUNK, request_id), chunk)
            }
            ClientReply::ChunkFailed { index, error } => {
                let mut frame = OutFrame::builder(KIND_CHUNK_FAILED, request_id);
                let buf = frame.fields();
                buf.put_u8(*index);
                buf.put_u16(error.code.to_u16());
                super::wire::put_message(buf, &error.message);
                frame.finish(Bytes::new())
            }
            ClientReply::NotFound => {
                OutFrame::builder(KIND_NOT_FOUND, request_id).finish(Bytes::new())
            }
            ClientReply::Deleted { existed } => {
                let mut frame = OutFrame::builder(KIND_DELETED, request_id);
                frame.fields().put_u8(u8::from(*existed));
                frame.finish(Bytes::new())
            }
            ClientReply::Exists { exists } => {
                let mut frame = OutFrame::builder(KIND_EXISTS_REPLY, request_id);
                frame.fields().put_u8(u8::from(*exists));
                frame.finish(Bytes::new())
            }
            ClientReply::Error(error) => error.encode(request_id),
        }
    }
}

impl Decode for ClientReply {
    fn decode(frame: Frame) -> Result<Self, ProtocolError> {
        let kind = frame.kind;
        let mut r = FieldReader::new(frame.payload, "client reply");
        let reply = match kind {
            KIND_STORED => ClientReply::Stored { version: r.u64()? },
            KIND_OBJECT => {
                let version = r.u64()?;
                let object_len = r.u64()?;
                let (k, m) = (r.u8()?, r.u8()?);
                let params = CodecParams::new(usize::from(k), usize::from(m)).map_err(|err| {
                    ProtocolError::InvalidField {
                        field: "codec parameters",
                        reason: err.to_string(),
                    }
                })?;
                ClientReply::Object {
                    version,
                    object_len,
                    params,
                }
            }
            KIND_CHUNK => return Ok(ClientReply::Chunk(r.chunk()?)),
            KIND_CHUNK_FAILED => {
                let index = r.u8()?;
                let code = super::ErrorCode::from_u16(r.u16()?);
                let message = r.string16("error message")?;
                ClientReply::ChunkFailed {
                    index,
                    error: ErrorReply { code, message },
                }
            }
            KIND_NOT_FOUND => ClientReply::NotFound,
            KIND_DELETED => ClientReply::Deleted { existed: r.bool()? },
            KIND_EXISTS_REPLY => ClientReply::Exists { exists: r.bool()? },
            KIND_ERROR => return Ok(ClientReply::Error(decode_error_reply(r.into_rest())?)),
            kind => {
                return Err(ProtocolError::UnexpectedKind {
                    kind,
                    context: "a client reply",
                });
            }
        };
        r.finish()?;
        Ok(reply)
    }
}

impl PutChunk {
    /// Bytes a PutChunk frame adds around a chunk body, for limit checks
    /// before encoding.
    pub const fn frame_overhead(key_len: usize) -> usize {
        super::FRAME_HEADER_LEN + 2 + key_len + 8 + ChunkHeader::LEN
    }
}
