//! Chunks: one erasure-coded shard of an object plus its self-describing
//! 32-byte header.
//!
//! Header layout (big-endian, referenced by `docs/protocol.md`):
//!
//! ```text
//! offset size field
//! 0      1    format      = 1
//! 1      1    k           data shards (>= 1)
//! 2      1    r           parity shards
//! 3      1    index       chunk index, 0..k+r (data chunks first, then parity)
//! 4      4    reserved    = 0
//! 8      8    object_len  object length in bytes
//! 16     8    version     object version (assigned by the proxy; 0 = not yet assigned)
//! 24     4    body_crc    CRC32C of the chunk body
//! 28     4    header_crc  CRC32C of bytes 0..28 of this header
//! ```
//!
//! The header and the body are protected by separate CRCs on purpose: the
//! proxy assigns the version and rewrites only the header (recomputing
//! `header_crc`) without touching or re-hashing a multi-megabyte body.

use bytes::{BufMut, Bytes};

use super::error::CodecError;
use super::params::CodecParams;

/// Decoded form of the 32-byte chunk header. Every chunk carries the full
/// description of its object (`k`, `r`, length, version), so any `k` chunks
/// are enough to rebuild the object without other metadata, and chunks of
/// different objects or versions can be told apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkHeader {
    /// `(k, r)` the object was encoded with.
    pub params: CodecParams,
    /// Position of this chunk: `0..k` are data, `k..k+r` parity.
    pub index: u8,
    /// Length of the whole object in bytes (before padding).
    pub object_len: u64,
    /// Object version assigned by the proxy; 0 = not assigned yet.
    pub version: u64,
    /// CRC32C of the chunk body.
    pub body_crc: u32,
}

impl ChunkHeader {
    /// Encoded size of a header.
    pub const LEN: usize = 32;

    /// The only header format defined so far (byte 0).
    pub const FORMAT: u8 = 1;

    /// Serialises the header, computing `header_crc` over bytes `0..28`.
    pub fn encode(&self) -> [u8; Self::LEN] {
        let mut out = [0u8; Self::LEN];
        out[0] = Self::FORMAT;
        // `CodecParams` guarantees k <= 255 and r <= 255.
        out[1] = u8::try_from(self.params.data_shards()).unwrap_or(u8::MAX);
        out[2] = u8::try_from(self.params.parity_shards()).unwrap_or(u8::MAX);
        out[3] = self.index;
        // out[4..8] reserved, stays zero.
        out[8..16].copy_from_slice(&self.object_len.to_be_bytes());
        out[16..24].copy_from_slice(&self.version.to_be_bytes());
        out[24..28].copy_from_slice(&self.body_crc.to_be_bytes());
        let header_crc = crc32c::crc32c(&out[..28]);
        out[28..32].copy_from_slice(&header_crc.to_be_bytes());
        out
    }

    /// Appends the encoded header to `buf`.
    pub fn put(&self, buf: &mut impl BufMut) {
        buf.put_slice(&self.encode());
    }

    /// Parses exactly [`ChunkHeader::LEN`] bytes.
    ///
    /// Checks, in order: length, format byte, `header_crc`, reserved bytes,
    /// `k >= 1`, `k + r <= 256`, `index < k + r`. Never panics: the input
    /// comes straight off the network.
    ///
    /// # Errors
    /// [`CodecError::InvalidHeader`] describing the first failed check.
    pub fn decode(bytes: &[u8]) -> Result<Self, CodecError> {
        let Ok(raw) = <&[u8; Self::LEN]>::try_from(bytes) else {
            return Err(CodecError::InvalidHeader(format!(
                "expected {} bytes, got {}",
                Self::LEN,
                bytes.len()
            )));
        };
        if raw[0] != Self::FORMAT {
            return Err(CodecError::InvalidHeader(format!(
                "unknown format {} (expected {})",
                raw[0],
                Self::FORMAT
            )));
        }
        let stored_crc = be_u32(raw, 28);
        let actual_crc = crc32c::crc32c(&raw[..28]);
        if stored_crc != actual_crc {
            return Err(CodecError::InvalidHeader(format!(
                "header CRC mismatch (stored {stored_crc:#010x}, computed {actual_crc:#010x})"
            )));
        }
        if raw[4..8] != [0; 4] {
            return Err(CodecError::InvalidHeader(
                "reserved bytes are not zero".into(),
            ));
        }
        let params = CodecParams::new(usize::from(raw[1]), usize::from(raw[2]))
            .map_err(|err| CodecError::InvalidHeader(err.to_string()))?;
        let index = raw[3];
        if usize::from(index) >= params.total_shards() {
            return Err(CodecError::InvalidHeader(format!(
                "chunk index {index} out of range for {params} ({} chunks)",
                params.total_shards()
            )));
        }
        Ok(ChunkHeader {
            params,
            index,
            object_len: be_u64(raw, 8),
            version: be_u64(raw, 16),
            body_crc: be_u32(raw, 24),
        })
    }

    /// Same header with another version (the proxy's rewrite; the body and
    /// therefore `body_crc` are unchanged).
    #[must_use]
    pub fn with_version(self, version: u64) -> Self {
        ChunkHeader { version, ..self }
    }

    /// Expected body length: `params.shard_len(object_len)`.
    pub fn body_len(&self) -> usize {
        self.params.shard_len(self.object_len)
    }

    /// Whether this is a data chunk (`index < k`) rather than parity.
    pub fn is_data(&self) -> bool {
        usize::from(self.index) < self.params.data_shards()
    }
}

fn be_u32(raw: &[u8; ChunkHeader::LEN], at: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&raw[at..at + 4]);
    u32::from_be_bytes(b)
}

fn be_u64(raw: &[u8; ChunkHeader::LEN], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&raw[at..at + 8]);
    u64::from_be_bytes(b)
}

/// One shard of an object: header plus body.
///
/// The body is a [`Bytes`] so that data chunks can be zero-copy views into
/// the caller's object and received chunks can be views into network
/// buffers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chunk {
    /// Self-describing header.
    pub header: ChunkHeader,
    /// `header.body_len()` bytes of shard data.
    pub body: Bytes,
}

impl Chunk {
    /// Wraps `body` with a header, computing `body_crc` (the other header
    /// fields are taken as given).
    pub fn new(params: CodecParams, index: u8, object_len: u64, version: u64, body: Bytes) -> Self {
        let body_crc = crc32c::crc32c(&body);
        Chunk {
            header: ChunkHeader {
                params,
                index,
                object_len,
                version,
                body_crc,
            },
            body,
        }
    }

    /// The chunk's index inside its object.
    pub fn index(&self) -> u8 {
        self.header.index
    }

    /// Checks the body against the header: its length must be
    /// `header.body_len()` and its CRC32C must equal `header.body_crc`.
    ///
    /// # Errors
    /// [`CodecError::CorruptChunk`] naming the chunk index and the mismatch.
    pub fn verify(&self) -> Result<(), CodecError> {
        let expected = self.header.body_len();
        if self.body.len() != expected {
            return Err(CodecError::CorruptChunk {
                index: self.header.index,
                reason: format!("body is {} bytes, header says {expected}", self.body.len()),
            });
        }
        let crc = crc32c::crc32c(&self.body);
        if crc != self.header.body_crc {
            return Err(CodecError::CorruptChunk {
                index: self.header.index,
                reason: format!(
                    "body CRC32C mismatch (header {:#010x}, body {crc:#010x})",
                    self.header.body_crc
                ),
            });
        }
        Ok(())
    }

    /// Size of the chunk on the wire: header plus body.
    pub fn wire_len(&self) -> usize {
        ChunkHeader::LEN + self.body.len()
    }

    /// Appends header and body to `buf` (copies the body; prefer sending
    /// `header.encode()` and `body` as separate buffers for large chunks).
    pub fn write_to(&self, buf: &mut impl BufMut) {
        self.header.put(buf);
        buf.put_slice(&self.body);
    }

    /// Splits a serialised chunk (header followed by body) without copying
    /// the body. Only the header is checked; call [`Chunk::verify`] to check
    /// the body.
    ///
    /// # Errors
    /// [`CodecError::InvalidHeader`] if the input is shorter than a header or
    /// the header is invalid.
    pub fn from_bytes(mut bytes: Bytes) -> Result<Self, CodecError> {
        if bytes.len() < ChunkHeader::LEN {
            return Err(CodecError::InvalidHeader(format!(
                "chunk of {} bytes is shorter than its {}-byte header",
                bytes.len(),
                ChunkHeader::LEN
            )));
        }
        let body = bytes.split_off(ChunkHeader::LEN);
        let header = ChunkHeader::decode(&bytes)?;
        Ok(Chunk { header, body })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> ChunkHeader {
        ChunkHeader {
            params: CodecParams::DEFAULT,
            index: 11,
            object_len: 0x0102_0304_0506_0708,
            version: 0x1122_3344_5566_7788,
            body_crc: 0xdead_beef,
        }
    }

    #[test]
    fn encode_layout_is_big_endian_and_fixed() {
        let raw = sample().encode();
        assert_eq!(raw.len(), ChunkHeader::LEN);
        assert_eq!(&raw[..4], &[1, 10, 2, 11]);
        assert_eq!(&raw[4..8], &[0; 4]);
        assert_eq!(&raw[8..16], &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(
            &raw[16..24],
            &[0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88]
        );
        assert_eq!(&raw[24..28], &[0xde, 0xad, 0xbe, 0xef]);
        assert_eq!(&raw[28..32], &crc32c::crc32c(&raw[..28]).to_be_bytes());
    }

    #[test]
    fn header_round_trip() {
        let h = sample();
        assert_eq!(ChunkHeader::decode(&h.encode()), Ok(h));
        let mut buf = Vec::new();
        h.put(&mut buf);
        assert_eq!(buf, h.encode());
        let extremes = ChunkHeader {
            params: CodecParams::new(255, 1).expect("valid"),
            index: 255,
            object_len: u64::MAX,
            version: 0,
            body_crc: 0,
        };
        assert_eq!(ChunkHeader::decode(&extremes.encode()), Ok(extremes));
    }

    #[test]
    fn any_single_bit_flip_is_rejected() {
        let raw = sample().encode();
        for byte in 0..ChunkHeader::LEN {
            for bit in 0..8 {
                let mut bad = raw;
                bad[byte] ^= 1 << bit;
                assert!(
                    matches!(ChunkHeader::decode(&bad), Err(CodecError::InvalidHeader(_))),
                    "flip of bit {bit} in byte {byte} accepted"
                );
            }
        }
    }

    #[test]
    fn wrong_length_rejected() {
        let raw = sample().encode();
        assert!(ChunkHeader::decode(&raw[..31]).is_err());
        assert!(ChunkHeader::decode(&[]).is_err());
        let mut long = raw.to_vec();
        long.push(0);
        assert!(ChunkHeader::decode(&long).is_err());
    }

    /// Headers with a valid CRC but impossible contents (as a buggy or
    /// malicious peer could send) are rejected by the semantic checks.
    #[test]
    fn semantic_checks() {
        fn resealed(mut raw: [u8; 32]) -> [u8; 32] {
            let crc = crc32c::crc32c(&raw[..28]);
            raw[28..].copy_from_slice(&crc.to_be_bytes());
            raw
        }
        let raw = sample().encode();
        for (at, value, what) in [
            (0usize, 2u8, "format"),
            (1, 0, "k = 0"),
            (2, 255, "k + r = 265"),
            (3, 12, "index = k + r"),
            (5, 1, "reserved"),
        ] {
            let mut bad = raw;
            bad[at] = value;
            assert!(
                ChunkHeader::decode(&resealed(bad)).is_err(),
                "{what} accepted"
            );
        }
    }

    #[test]
    fn with_version_changes_only_the_version() {
        let h = sample();
        let v = h.with_version(42);
        assert_eq!(v.version, 42);
        assert_eq!(
            ChunkHeader {
                version: h.version,
                ..v
            },
            h
        );
        let (a, b) = (h.encode(), v.encode());
        assert_eq!(a[..16], b[..16]);
        assert_eq!(a[24..28], b[24..28]);
        assert_ne!(a[28..], b[28..]);
    }

    #[test]
    fn data_or_parity() {
        let h = sample();
        assert!(!h.is_data());
        assert!(ChunkHeader { index: 9, ..h }.is_data());
        assert!(!ChunkHeader { index: 10, ..h }.is_data());
        assert!(ChunkHeader { index: 0, ..h }.is_data());
    }

    #[test]
    fn verify_detects_body_corruption() {
        let params = CodecParams::new(2, 1).expect("valid");
        let chunk = Chunk::new(params, 0, 6, 1, Bytes::from_static(b"abc"));
        assert_eq!(chunk.verify(), Ok(()));
        for i in 0..3 {
            for bit in 0..8 {
                let mut body = chunk.body.to_vec();
                body[i] ^= 1 << bit;
                let bad = Chunk {
                    body: body.into(),
                    ..chunk.clone()
                };
                assert!(matches!(
                    bad.verify(),
                    Err(CodecError::CorruptChunk { index: 0, .. })
                ));
            }
        }
        let short = Chunk {
            body: chunk.body.slice(..2),
            ..chunk.clone()
        };
        assert!(matches!(
            short.verify(),
            Err(CodecError::CorruptChunk { .. })
        ));
        // A body that matches its CRC but not the length the header implies.
        let wrong_len = Chunk::new(params, 0, 8, 1, Bytes::from_static(b"abc"));
        assert!(matches!(
            wrong_len.verify(),
            Err(CodecError::CorruptChunk { .. })
        ));
    }

    #[test]
    fn wire_round_trip() {
        let chunk = Chunk::new(CodecParams::DEFAULT, 3, 40, 7, Bytes::from_static(b"wxyz"));
        let mut buf = Vec::new();
        chunk.write_to(&mut buf);
        assert_eq!(buf.len(), chunk.wire_len());
        let back = Chunk::from_bytes(Bytes::from(buf)).expect("valid chunk");
        assert_eq!(back, chunk);
        assert_eq!(back.verify(), Ok(()));
        assert!(Chunk::from_bytes(Bytes::from_static(&[1; 31])).is_err());
    }

    proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = ChunkHeader::decode(&bytes);
            let _ = Chunk::from_bytes(Bytes::from(bytes));
        }

        /// Random bytes with a correct CRC exercise the semantic checks
        /// (a random CRC would almost always be rejected first).
        #[test]
        fn decode_never_panics_with_valid_crc(mut raw in proptest::array::uniform32(any::<u8>()), format_ok in any::<bool>()) {
            if format_ok {
                raw[0] = ChunkHeader::FORMAT;
            }
            let crc = crc32c::crc32c(&raw[..28]);
            raw[28..].copy_from_slice(&crc.to_be_bytes());
            if let Ok(h) = ChunkHeader::decode(&raw) {
                prop_assert!(usize::from(h.index) < h.params.total_shards());
                prop_assert_eq!(h.encode(), raw);
            }
        }

        #[test]
        fn round_trip_any_valid_header(
            k in 1usize..=255, r_frac in 0.0f64..=1.0, index_frac in 0.0f64..1.0,
            object_len in any::<u64>(), version in any::<u64>(), body_crc in any::<u32>(),
        ) {
            let max_r = (256 - k).min(255);
            let r = ((max_r as f64) * r_frac) as usize;
            let params = CodecParams::new(k, r).expect("in range");
            let index = ((params.total_shards() as f64) * index_frac) as usize;
            let h = ChunkHeader { params, index: index as u8, object_len, version, body_crc };
            prop_assert_eq!(ChunkHeader::decode(&h.encode()), Ok(h));
        }
    }
}
