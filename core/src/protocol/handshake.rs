//! The handshake that opens every connection.
//!
//! The dialing side sends [`Hello`] (request id 0) naming its role; the
//! accepting side answers [`Welcome`] or an error and closes. Hellos carry a
//! version *range* so that a later protocol version can be negotiated without
//! breaking older peers.

use bytes::{BufMut, Bytes};

use super::wire::{FieldReader, put_bytes16, put_message};
use super::{Decode, Encode, Frame, OutFrame, ProtocolError};
use crate::codec::CodecParams;

/// The first four bytes of every Hello payload.
pub const MAGIC: [u8; 4] = *b"INFC";

/// The protocol version this build speaks.
pub const PROTOCOL_VERSION: u16 = 1;

pub(crate) const KIND_HELLO: u8 = 0x01;
pub(crate) const KIND_WELCOME: u8 = 0x02;

const ROLE_CLIENT: u8 = 1;
const ROLE_NODE: u8 = 2;

/// The dialing side introduces itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hello {
    /// An application client (to the proxy's client listener).
    Client(ClientHello),
    /// A cache node (to the proxy's node listener).
    Node(NodeHello),
}

/// A client's introduction.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientHello {
    /// Shown in the proxy's logs.
    pub name: String,
    /// The shared secret of a proxy that requires one (`None` otherwise).
    /// Sent in the clear: use TLS, or a trusted network, when it matters.
    pub secret: Option<Bytes>,
}

impl std::fmt::Debug for ClientHello {
    // The secret is a credential: keep it out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientHello")
            .field("name", &self.name)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// A cache node's introduction.
///
/// The node's *identity* (`node_id`, the function it runs as) is separate from
/// the *environment* hosting it right now (`instance_id`, random per process):
/// a changed instance id tells the proxy the provider replaced the
/// environment and the node's memory is gone.
#[derive(Clone, PartialEq, Eq)]
pub struct NodeHello {
    pub node_id: u32,
    /// The per-invocation token from the invocation payload; the proxy refuses
    /// a node that does not present the token it issued.
    pub token: Bytes,
    pub instance_id: u64,
    /// Bytes of chunk data the node can hold.
    pub capacity: u64,
    /// Bytes of chunk data the node holds now.
    pub used: u64,
    /// Chunks the node holds now.
    pub chunks: u64,
}

impl std::fmt::Debug for NodeHello {
    // The token is a credential: keep it out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeHello")
            .field("node_id", &self.node_id)
            .field("token", &"<redacted>")
            .field("instance_id", &self.instance_id)
            .field("capacity", &self.capacity)
            .field("used", &self.used)
            .field("chunks", &self.chunks)
            .finish()
    }
}

/// The accepting side's answer to a Hello.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Welcome {
    /// The version both sides will speak.
    pub protocol_version: u16,
    /// The largest frame the server accepts.
    pub max_frame_len: u32,
    /// The erasure-coding parameters the server suggests to clients that set
    /// none themselves.
    pub default_params: CodecParams,
    /// Free-form server identification, for logs.
    pub server: String,
}

impl Encode for Hello {
    fn encode(&self, request_id: u64) -> OutFrame {
        let mut frame = OutFrame::builder(KIND_HELLO, request_id);
        let buf = frame.fields();
        buf.put_slice(&MAGIC);
        buf.put_u16(PROTOCOL_VERSION); // min
        buf.put_u16(PROTOCOL_VERSION); // max
        match self {
            Hello::Client(hello) => {
                buf.put_u8(ROLE_CLIENT);
                put_message(buf, &hello.name);
                put_bytes16(buf, hello.secret.as_deref().unwrap_or_default());
            }
            Hello::Node(hello) => {
                buf.put_u8(ROLE_NODE);
                buf.put_u32(hello.node_id);
                put_bytes16(buf, &hello.token);
                buf.put_u64(hello.instance_id);
                buf.put_u64(hello.capacity);
                buf.put_u64(hello.used);
                buf.put_u64(hello.chunks);
            }
        }
        frame.finish(Bytes::new())
    }
}

impl Decode for Hello {
    fn decode(frame: Frame) -> Result<Self, ProtocolError> {
        if frame.kind != KIND_HELLO {
            return Err(ProtocolError::UnexpectedKind {
                kind: frame.kind,
                context: "a handshake (expected Hello)",
            });
        }
        let mut r = FieldReader::new(frame.payload, "Hello");
        if r.fixed::<4>()? != MAGIC {
            return Err(ProtocolError::BadMagic);
        }
        let (min, max) = (r.u16()?, r.u16()?);
        if !(min..=max).contains(&PROTOCOL_VERSION) {
            return Err(ProtocolError::UnsupportedVersion {
                min,
                max,
                ours: PROTOCOL_VERSION,
            });
        }
        let hello = match r.u8()? {
            ROLE_CLIENT => {
                let name = r.string16("client name")?;
                // Optional: clients from before secrets existed end here. An
                // empty secret is no secret.
                let secret = if r.remaining() > 0 {
                    Some(r.bytes16()?).filter(|secret| !secret.is_empty())
                } else {
                    None
                };
                Hello::Client(ClientHello { name, secret })
            }
            ROLE_NODE => Hello::Node(NodeHello {
                node_id: r.u32()?,
                token: r.bytes16()?,
                instance_id: r.u64()?,
                capacity: r.u64()?,
                used: r.u64()?,
                chunks: r.u64()?,
            }),
            other => {
                return Err(ProtocolError::InvalidField {
                    field: "role",
                    reason: format!("unknown role {other}"),
                });
            }
        };
        r.finish()?;
        Ok(hello)
    }
}

impl Encode for Welcome {
    fn encode(&self, request_id: u64) -> OutFrame {
        let mut frame = OutFrame::builder(KIND_WELCOME, request_id);
        let buf = frame.fields();
        buf.put_u16(self.protocol_version);
        buf.put_u32(self.max_frame_len);
        buf.put_u8(self.default_params.data_shards() as u8);
        buf.put_u8(self.default_params.parity_shards() as u8);
        put_message(buf, &self.server);
        frame.finish(Bytes::new())
    }
}

/// Decodes a Welcome, or the error the server sent instead.
impl Decode for Result<Welcome, super::ErrorReply> {
    fn decode(frame: Frame) -> Result<Self, ProtocolError> {
        match frame.kind {
            KIND_WELCOME => {
                let mut r = FieldReader::new(frame.payload, "Welcome");
                let protocol_version = r.u16()?;
                let max_frame_len = r.u32()?;
                let (k, m) = (r.u8()?, r.u8()?);
                let default_params =
                    CodecParams::new(usize::from(k), usize::from(m)).map_err(|err| {
                        ProtocolError::InvalidField {
                            field: "default codec parameters",
                            reason: err.to_string(),
                        }
                    })?;
                let server = r.string16("server")?;
                r.finish()?;
                Ok(Ok(Welcome {
                    protocol_version,
                    max_frame_len,
                    default_params,
                    server,
                }))
            }
            super::error::KIND_ERROR => Ok(Err(super::error::decode_error_reply(frame.payload)?)),
            kind => Err(ProtocolError::UnexpectedKind {
                kind,
                context: "a handshake (expected Welcome)",
            }),
        }
    }
}
