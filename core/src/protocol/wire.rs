//! Field-level encoding shared by all messages: big-endian integers,
//! `u16`-length-prefixed byte strings, chunk headers and trailing bodies.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::ProtocolError;
use crate::codec::{Chunk, ChunkHeader};

/// Reads the fields of one frame payload, front to back.
///
/// Every read checks the remaining length first, so a truncated or hostile
/// payload yields [`ProtocolError::Truncated`] instead of a panic.
pub(crate) struct FieldReader {
    buf: Bytes,
    what: &'static str,
}

impl FieldReader {
    pub(crate) fn new(buf: Bytes, what: &'static str) -> Self {
        FieldReader { buf, what }
    }

    fn need(&self, n: usize) -> Result<(), ProtocolError> {
        if self.buf.remaining() < n {
            Err(ProtocolError::Truncated { what: self.what })
        } else {
            Ok(())
        }
    }

    pub(crate) fn u8(&mut self) -> Result<u8, ProtocolError> {
        self.need(1)?;
        Ok(self.buf.get_u8())
    }

    pub(crate) fn bool(&mut self) -> Result<bool, ProtocolError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(ProtocolError::InvalidField {
                field: "boolean",
                reason: format!("{other} is neither 0 nor 1"),
            }),
        }
    }

    pub(crate) fn u16(&mut self) -> Result<u16, ProtocolError> {
        self.need(2)?;
        Ok(self.buf.get_u16())
    }

    pub(crate) fn u32(&mut self) -> Result<u32, ProtocolError> {
        self.need(4)?;
        Ok(self.buf.get_u32())
    }

    pub(crate) fn u64(&mut self) -> Result<u64, ProtocolError> {
        self.need(8)?;
        Ok(self.buf.get_u64())
    }

    pub(crate) fn fixed<const N: usize>(&mut self) -> Result<[u8; N], ProtocolError> {
        self.need(N)?;
        let mut out = [0u8; N];
        self.buf.copy_to_slice(&mut out);
        Ok(out)
    }

    /// A `u16`-length-prefixed byte string, as a zero-copy slice.
    pub(crate) fn bytes16(&mut self) -> Result<Bytes, ProtocolError> {
        let len = usize::from(self.u16()?);
        self.need(len)?;
        Ok(self.buf.split_to(len))
    }

    /// A `u16`-length-prefixed UTF-8 string.
    pub(crate) fn string16(&mut self, field: &'static str) -> Result<String, ProtocolError> {
        let raw = self.bytes16()?;
        String::from_utf8(raw.to_vec()).map_err(|_| ProtocolError::InvalidField {
            field,
            reason: "not valid UTF-8".into(),
        })
    }

    /// A chunk: its 32-byte header, then the rest of the frame as its body.
    pub(crate) fn chunk(&mut self) -> Result<Chunk, ProtocolError> {
        self.need(ChunkHeader::LEN)?;
        let header = ChunkHeader::decode(&self.buf[..ChunkHeader::LEN]).map_err(|err| {
            ProtocolError::InvalidField {
                field: "chunk header",
                reason: err.to_string(),
            }
        })?;
        self.buf.advance(ChunkHeader::LEN);
        let body = std::mem::take(&mut self.buf);
        Ok(Chunk { header, body })
    }

    /// Succeeds only if every byte was consumed.
    pub(crate) fn finish(self) -> Result<(), ProtocolError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(ProtocolError::TrailingBytes {
                what: self.what,
                extra: self.buf.len(),
            })
        }
    }
}

/// Appends a `u16`-length-prefixed byte string.
///
/// Callers only pass values whose length is bounded by construction (keys,
/// tokens, messages truncated by [`put_message`]).
pub(crate) fn put_bytes16(buf: &mut BytesMut, bytes: &[u8]) {
    let len = u16::try_from(bytes.len()).unwrap_or(u16::MAX);
    buf.put_u16(len);
    buf.put_slice(&bytes[..usize::from(len)]);
}

/// Appends a human-readable message, cut at a character boundary so that it
/// fits its `u16` length prefix.
pub(crate) fn put_message(buf: &mut BytesMut, message: &str) {
    let mut end = message.len().min(usize::from(u16::MAX));
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    put_bytes16(buf, &message.as_bytes()[..end]);
}

impl FieldReader {
    /// Bytes not read yet.
    pub(crate) fn remaining(&self) -> usize {
        self.buf.len()
    }

    /// Everything not read yet.
    pub(crate) fn into_rest(self) -> Bytes {
        self.buf
    }
}
