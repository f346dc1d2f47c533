//! Frames: the unit of the byte stream.
//!
//! ```text
//! 0      4     5      6            14
//! +------+-----+------+------------+---------------------------+
//! | len  |kind |flags | request_id | payload (fields, body)     |
//! | u32  | u8  | u8   | u64        | len - 10 bytes             |
//! +------+-----+------+------------+---------------------------+
//! ```
//!
//! `len` counts every byte after itself. All integers are big-endian.

use bytes::{BufMut, Bytes, BytesMut};

use super::ProtocolError;

/// Bytes before the payload: length, kind, flags and request id.
pub const FRAME_HEADER_LEN: usize = 14;

/// Bytes of the frame header counted by the length prefix.
pub(crate) const LEN_COUNTED_HEADER: u32 = 10;

/// The largest frame accepted unless configured otherwise: room for a
/// 512 MiB chunk plus its headers.
pub const DEFAULT_MAX_FRAME_LEN: u32 = 512 * 1024 * 1024 + 64 * 1024;

/// A parsed frame: its kind, the request it belongs to and its payload.
///
/// The payload is a slice of the connection's read buffer; message decoders
/// slice chunk bodies out of it without copying.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub kind: u8,
    pub request_id: u64,
    pub payload: Bytes,
}

/// A frame ready to be written: a small head (frame header and fields) and
/// an optional body that is written as it is, never copied into the head.
#[derive(Debug, Clone)]
pub struct OutFrame {
    head: Bytes,
    body: Bytes,
}

impl OutFrame {
    /// Starts building a frame; finish it with [`OutFrameBuilder::finish`].
    pub fn builder(kind: u8, request_id: u64) -> OutFrameBuilder {
        let mut head = BytesMut::with_capacity(64);
        head.put_u32(0); // patched in `finish`
        head.put_u8(kind);
        head.put_u8(0); // flags: none defined in version 1
        head.put_u64(request_id);
        OutFrameBuilder { head }
    }

    /// The frame header and fields.
    pub fn head(&self) -> &Bytes {
        &self.head
    }

    /// The body written after the head (may be empty).
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// Total bytes on the wire.
    pub fn wire_len(&self) -> usize {
        self.head.len() + self.body.len()
    }

    /// The frame as one contiguous buffer (tests and fuzzers).
    pub fn to_bytes(&self) -> Bytes {
        let mut all = BytesMut::with_capacity(self.wire_len());
        all.put_slice(&self.head);
        all.put_slice(&self.body);
        all.freeze()
    }
}

/// Accumulates the fields of an [`OutFrame`].
pub struct OutFrameBuilder {
    head: BytesMut,
}

impl OutFrameBuilder {
    /// The buffer the message's fields are appended to.
    pub fn fields(&mut self) -> &mut BytesMut {
        &mut self.head
    }

    /// Seals the frame, with `body` written after the fields.
    ///
    /// Frames are bounded by the receiver's limit (at most `u32::MAX`); a
    /// longer body is a caller bug that the receiver would reject anyway, so
    /// the prefix saturates rather than wrapping into a valid-looking length.
    pub fn finish(mut self, body: Bytes) -> OutFrame {
        let len = (self.head.len() - 4) as u64 + body.len() as u64;
        let len = u32::try_from(len).unwrap_or(u32::MAX);
        self.head[..4].copy_from_slice(&len.to_be_bytes());
        OutFrame {
            head: self.head.freeze(),
            body,
        }
    }
}

impl Frame {
    /// Parses one complete frame from the front of `buf`, if there is one.
    ///
    /// Returns `Ok(None)` when more bytes are needed. Fails (and the
    /// connection must be closed, because frame boundaries are lost) when the
    /// length prefix is shorter than a header or larger than `max_len`.
    pub fn parse(buf: &mut BytesMut, max_len: u32) -> Result<Option<Frame>, ProtocolError> {
        let Some(len) = Self::peek_len(buf, max_len)? else {
            return Ok(None);
        };
        let total = 4 + len as usize;
        if buf.len() < total {
            return Ok(None);
        }
        let mut frame = buf.split_to(total).freeze();
        let kind = frame[4];
        let request_id =
            u64::from_be_bytes(frame[6..FRAME_HEADER_LEN].try_into().map_err(|_| {
                ProtocolError::Truncated {
                    what: "frame header",
                }
            })?);
        let payload = frame.split_off(FRAME_HEADER_LEN);
        Ok(Some(Frame {
            kind,
            request_id,
            payload,
        }))
    }

    /// Reads and validates the length prefix without consuming anything.
    pub(crate) fn peek_len(buf: &[u8], max_len: u32) -> Result<Option<u32>, ProtocolError> {
        let Some(prefix) = buf.get(..4) else {
            return Ok(None);
        };
        let len = u32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]);
        if len < LEN_COUNTED_HEADER {
            return Err(ProtocolError::FrameTooShort(len));
        }
        if len > max_len {
            return Err(ProtocolError::FrameTooLarge {
                len: u64::from(len),
                max: max_len,
            });
        }
        Ok(Some(len))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_body() {
        let mut b = OutFrame::builder(0x22, 42);
        b.fields().put_u16(7);
        let out = b.finish(Bytes::from_static(b"body"));
        let mut buf = BytesMut::from(&out.to_bytes()[..]);
        let frame = Frame::parse(&mut buf, DEFAULT_MAX_FRAME_LEN)
            .expect("valid frame")
            .expect("complete frame");
        assert_eq!(frame.kind, 0x22);
        assert_eq!(frame.request_id, 42);
        assert_eq!(&frame.payload[..], b"\x00\x07body");
        assert!(buf.is_empty());
    }

    #[test]
    fn partial_frames_wait_for_more() {
        let out = OutFrame::builder(1, 1).finish(Bytes::from_static(b"abc"));
        let bytes = out.to_bytes();
        for cut in 0..bytes.len() {
            let mut buf = BytesMut::from(&bytes[..cut]);
            assert_eq!(Frame::parse(&mut buf, DEFAULT_MAX_FRAME_LEN), Ok(None));
            assert_eq!(buf.len(), cut, "nothing consumed from a partial frame");
        }
    }

    #[test]
    fn absurd_lengths_are_rejected() {
        let mut huge = BytesMut::from(&[0xff, 0xff, 0xff, 0xff, 1, 0][..]);
        assert!(matches!(
            Frame::parse(&mut huge, DEFAULT_MAX_FRAME_LEN),
            Err(ProtocolError::FrameTooLarge { .. })
        ));
        let mut tiny = BytesMut::from(&[0, 0, 0, 3, 1, 0, 0][..]);
        assert_eq!(
            Frame::parse(&mut tiny, DEFAULT_MAX_FRAME_LEN),
            Err(ProtocolError::FrameTooShort(3))
        );
    }
}
