//! Where things live in the object store.
//!
//! * Chunk objects: `chunks/<hex of the key's bytes>/<version as 16 hex
//!   digits>/<index>`. Keys are arbitrary bytes, so they are hex-encoded
//!   (lowercase) into something every store accepts; the fixed-width
//!   version makes a listing of one key come out in version order. The
//!   stored body is the chunk's 32-byte header followed by its body, so an
//!   object in the store describes itself and carries its own checksums,
//!   whatever the store did to it.
//! * The metadata log: under [`META_PREFIX`] (its format comes later).
//!
//! A key's hex is one path segment, so a key can be at most
//! [`MAX_STORED_KEY_LEN`] bytes long to be stored; longer keys get an
//! [`InvalidKey`](CosError::InvalidKey) error from the store.

use std::fmt::Write;

use bytes::{BufMut, Bytes, BytesMut};
use infinicache::codec::Chunk;
use infinicache::protocol::Key;

use super::{CosError, MAX_SEGMENT_LEN};

/// Where chunk objects live.
pub const CHUNKS_PREFIX: &str = "chunks/";

/// Where the metadata log lives.
pub const META_PREFIX: &str = "meta/";

/// The longest object key whose chunks can be stored (its hex must fit in
/// one path segment).
pub const MAX_STORED_KEY_LEN: usize = MAX_SEGMENT_LEN / 2;

/// The store key of chunk `index` of `key` at `version`.
pub fn chunk_key(key: &Key, version: u64, index: u8) -> String {
    let mut out = version_prefix(key, version);
    let _ = write!(out, "{index}");
    out
}

/// The prefix of every chunk of `key` at `version` (ends in `/`).
pub fn version_prefix(key: &Key, version: u64) -> String {
    let mut out = object_prefix(key);
    let _ = write!(out, "{version:016x}/");
    out
}

/// The prefix of every chunk of every version of `key`. It ends in `/`, so
/// the prefix of key `ab` does not also match key `abcd`.
pub fn object_prefix(key: &Key) -> String {
    let bytes = key.as_bytes();
    let mut out = String::with_capacity(CHUNKS_PREFIX.len() + 2 * bytes.len() + 1);
    out.push_str(CHUNKS_PREFIX);
    for byte in bytes {
        let _ = write!(out, "{byte:02x}");
    }
    out.push('/');
    out
}

/// The key, version and index a chunk object is stored under, or `None` if
/// `object` is not a chunk object's key in canonical form (so every parsed
/// key maps back to exactly `object`).
pub fn parse_chunk_key(object: &str) -> Option<(Key, u64, u8)> {
    let rest = object.strip_prefix(CHUNKS_PREFIX)?;
    let mut parts = rest.split('/');
    let (hex, version, index) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let key = Key::new(decode_hex(hex)?).ok()?;
    if version.len() != 16 || !is_lower_hex(version) {
        return None;
    }
    let version = u64::from_str_radix(version, 16).ok()?;
    let parsed: u8 = index.parse().ok()?;
    // Rejects leading zeros and signs, which `parse` accepts.
    if parsed.to_string() != index {
        return None;
    }
    Some((key, version, parsed))
}

fn is_lower_hex(text: &str) -> bool {
    text.bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if hex.is_empty() || !hex.len().is_multiple_of(2) || !is_lower_hex(hex) {
        return None;
    }
    hex.as_bytes()
        .chunks_exact(2)
        .map(|pair| {
            let text = std::str::from_utf8(pair).ok()?;
            u8::from_str_radix(text, 16).ok()
        })
        .collect()
}

/// The stored form of a chunk: its encoded header, then its body. The body
/// is copied once, into the buffer handed to the store.
pub fn encode_chunk(chunk: &Chunk) -> Bytes {
    let mut out = BytesMut::with_capacity(chunk.wire_len());
    chunk.header.put(&mut out);
    out.put_slice(&chunk.body);
    out.freeze()
}

/// Parses a stored chunk (without copying the body) and checks it: the
/// header's own CRC and fields, then the body's length and CRC32C. A chunk
/// that fails is an error, never data, so a damaged object in the store
/// cannot turn into a wrong object for a client.
pub fn decode_chunk(bytes: Bytes) -> Result<Chunk, CosError> {
    let chunk = Chunk::from_bytes(bytes).map_err(|err| CosError::Corrupt(err.to_string()))?;
    chunk
        .verify()
        .map_err(|err| CosError::Corrupt(err.to_string()))?;
    Ok(chunk)
}

#[cfg(test)]
mod tests {
    use infinicache::codec::{ChunkHeader, CodecParams};

    use super::super::check_key;
    use super::*;

    fn key(bytes: &[u8]) -> Key {
        Key::try_from(bytes).expect("valid key")
    }

    fn chunk() -> Chunk {
        let params = CodecParams::new(2, 1).expect("params");
        Chunk::new(params, 1, 6, 7, Bytes::from_static(b"def"))
    }

    #[test]
    fn layout_chunk_keys_round_trip() {
        for (k, version, index) in [
            (key(b"greeting"), 1, 0),
            (key(b"\x00/../\xff"), u64::MAX, 255),
            (key(&[b'k'; MAX_STORED_KEY_LEN]), 0, 11),
        ] {
            let object = chunk_key(&k, version, index);
            check_key(&object).unwrap_or_else(|err| panic!("{object}: {err}"));
            assert!(object.starts_with(&object_prefix(&k)));
            assert!(object.starts_with(&version_prefix(&k, version)));
            assert_eq!(parse_chunk_key(&object), Some((k, version, index)));
        }
        assert_eq!(
            chunk_key(&key(b"ab"), 0x1234, 3),
            "chunks/6162/0000000000001234/3"
        );
        assert_eq!(object_prefix(&key(b"ab")), "chunks/6162/");
        assert_eq!(
            version_prefix(&key(b"ab"), 1),
            "chunks/6162/0000000000000001/"
        );
        // One key's prefix never covers another key's chunks.
        assert!(!chunk_key(&key(b"abc"), 1, 0).starts_with(&object_prefix(&key(b"ab"))));
    }

    #[test]
    fn layout_too_long_keys_are_rejected_by_the_store_rules() {
        let long = key(&[b'k'; MAX_STORED_KEY_LEN + 1]);
        assert!(check_key(&chunk_key(&long, 1, 0)).is_err());
    }

    #[test]
    fn layout_parse_rejects_non_canonical_keys() {
        for object in [
            "",
            "chunks/",
            "chunks/6162/0000000000000001",
            "chunks/6162/0000000000000001/",
            "chunks/6162/0000000000000001/0/extra",
            "chunks//0000000000000001/0",
            "chunks/616/0000000000000001/0",
            "chunks/6G62/0000000000000001/0",
            "chunks/6A62/0000000000000001/0",
            "chunks/6162/1/0",
            "chunks/6162/000000000000000A/0",
            "chunks/6162/0000000000000001/01",
            "chunks/6162/0000000000000001/+1",
            "chunks/6162/0000000000000001/256",
            "meta/6162/0000000000000001/0",
            "chunks/6162/00000000000000001/0",
        ] {
            assert_eq!(parse_chunk_key(object), None, "{object:?} parsed");
        }
    }

    #[test]
    fn layout_encode_decode_chunk_round_trip() {
        let chunk = chunk();
        let stored = encode_chunk(&chunk);
        assert_eq!(stored.len(), ChunkHeader::LEN + chunk.body.len());
        assert_eq!(&stored[..ChunkHeader::LEN], &chunk.header.encode());
        assert_eq!(&stored[ChunkHeader::LEN..], &b"def"[..]);
        let back = decode_chunk(stored.clone()).expect("decodes");
        assert_eq!(back, chunk);
        // The decoded body is a view of the stored bytes, not a copy.
        assert_eq!(back.body.as_ptr(), stored[ChunkHeader::LEN..].as_ptr());
    }

    #[test]
    fn layout_corrupt_chunks_are_errors() {
        let stored = encode_chunk(&chunk());
        for at in 0..stored.len() {
            let mut bad = stored.to_vec();
            bad[at] ^= 0x01;
            assert!(
                matches!(decode_chunk(Bytes::from(bad)), Err(CosError::Corrupt(_))),
                "flip at byte {at} accepted"
            );
        }
        for bad in [
            stored.slice(..ChunkHeader::LEN - 1),
            stored.slice(..stored.len() - 1),
            Bytes::new(),
            {
                let mut longer = stored.to_vec();
                longer.push(0);
                Bytes::from(longer)
            },
        ] {
            assert!(
                matches!(decode_chunk(bad.clone()), Err(CosError::Corrupt(_))),
                "{} bytes accepted",
                bad.len()
            );
        }
    }
}
