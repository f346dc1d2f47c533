//! Where things live in the object store, and what a chunk object holds.
//!
//! * Chunk objects: `chunks/<key segment>/<version as 16 hex digits>/<index>`.
//!   The fixed-width version makes a listing of one key come out in version
//!   order.
//! * Key segments ([`KeySegment`]): keys are arbitrary bytes of any length the
//!   protocol allows (up to 64 KiB), but a segment is at most
//!   [`MAX_SEGMENT_LEN`] bytes. A key of at most [`MAX_HEX_KEY_LEN`] bytes is
//!   named by its lowercase hex, readable in listings; a longer key by `h`
//!   followed by the lowercase hex of its SHA-256 ([`DIGEST_SEGMENT_LEN`]
//!   bytes). `h` is not a hex digit, so the two forms never meet, and both
//!   are followed by `/`, so one key's prefix never covers another key's
//!   chunks.
//! * The metadata (the manifest, see `cluster/manifest.rs`): under
//!   [`META_PREFIX`], named with the same key segments.
//!
//! A digest names a key only up to a SHA-256 collision, so every chunk
//! object also carries its full key, checked when it is read
//! ([`StoredChunk::belongs_to`]). Chunk object format 2 (big-endian):
//!
//! ```text
//! offset   size     field
//! 0        1        format = 2 (CHUNK_OBJECT_FORMAT)
//! 1        2        n, the key's length (1..=65535)
//! 3        n        the key
//! 3+n      32       the chunk's header (its own format byte, 1, first)
//! 35+n     ...      the chunk's body
//! ```
//!
//! so an object in the store describes itself and carries its own
//! checksums, whatever the store did to it. Format 1, written before keys of
//! any length were stored, is the bare chunk (header, then body): its first
//! byte is the chunk header's format, 1. Such objects are still read, and
//! only under a hex segment: that layout had no other, and a hex segment
//! names exactly one key, so the name itself is the check.

use std::fmt::{self, Write};

use bytes::{BufMut, Bytes, BytesMut};
use infinicache::codec::{Chunk, ChunkHeader};
use infinicache::protocol::{Key, MAX_KEY_LEN};
use sha2::{Digest, Sha256};

use super::{CosError, MAX_SEGMENT_LEN};

/// Where chunk objects live.
pub const CHUNKS_PREFIX: &str = "chunks/";

/// Where the metadata lives.
pub const META_PREFIX: &str = "meta/";

/// The longest key named by its hex (which must fit in one path segment);
/// longer keys are named by their digest.
pub const MAX_HEX_KEY_LEN: usize = MAX_SEGMENT_LEN / 2;

/// What starts a digest segment: not a hex digit.
const DIGEST_MARK: char = 'h';

/// The length of a digest segment: the mark and 64 hex digits.
pub const DIGEST_SEGMENT_LEN: usize = 1 + 2 * DIGEST_LEN;

const DIGEST_LEN: usize = 32;

/// The first byte of a chunk object in the current format.
pub const CHUNK_OBJECT_FORMAT: u8 = 2;

/// Bytes before the key in a chunk object: the format and the key length.
const KEY_PREAMBLE_LEN: usize = 3;

// Format-1 objects are told apart by their first byte, the chunk header's
// format; and every key's length fits the two-byte field.
const _: () = assert!(CHUNK_OBJECT_FORMAT != ChunkHeader::FORMAT);
const _: () = assert!(MAX_KEY_LEN <= u16::MAX as usize);
const _: () = assert!(DIGEST_SEGMENT_LEN <= MAX_SEGMENT_LEN);

/// The path segment naming a key in the store.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum KeySegment {
    /// A key of at most [`MAX_HEX_KEY_LEN`] bytes, named by its hex.
    Key(Key),
    /// The SHA-256 of a longer key.
    Digest([u8; DIGEST_LEN]),
}

impl KeySegment {
    /// The segment naming `key`.
    pub fn of(key: &Key) -> KeySegment {
        if key.len() <= MAX_HEX_KEY_LEN {
            KeySegment::Key(key.clone())
        } else {
            KeySegment::Digest(Sha256::digest(key.as_bytes()).into())
        }
    }

    /// Parses a segment in canonical form (what [`KeySegment::of`] makes of
    /// some key, displayed), or `None`.
    pub fn parse(segment: &str) -> Option<KeySegment> {
        if let Some(digest) = segment.strip_prefix(DIGEST_MARK) {
            let bytes = decode_hex(digest)?;
            return <[u8; DIGEST_LEN]>::try_from(bytes)
                .ok()
                .map(KeySegment::Digest);
        }
        if segment.len() > 2 * MAX_HEX_KEY_LEN {
            return None;
        }
        Key::new(decode_hex(segment)?).ok().map(KeySegment::Key)
    }

    /// Whether this segment names `key`.
    pub fn names(&self, key: &Key) -> bool {
        *self == KeySegment::of(key)
    }

    /// The key itself, when the segment is its hex.
    pub fn key(&self) -> Option<&Key> {
        match self {
            KeySegment::Key(key) => Some(key),
            KeySegment::Digest(_) => None,
        }
    }
}

impl fmt::Display for KeySegment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySegment::Key(key) => write_hex(f, key.as_bytes()),
            KeySegment::Digest(digest) => {
                f.write_char(DIGEST_MARK)?;
                write_hex(f, digest)
            }
        }
    }
}

/// The segment naming `key`, as text.
pub fn key_segment(key: &Key) -> String {
    KeySegment::of(key).to_string()
}

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
    let segment = KeySegment::of(key);
    let mut out = String::with_capacity(CHUNKS_PREFIX.len() + 2 * MAX_HEX_KEY_LEN + 1);
    out.push_str(CHUNKS_PREFIX);
    let _ = write!(out, "{segment}/");
    out
}

/// The key segment, version and index a chunk object is stored under, or
/// `None` if `object` is not a chunk object's key in canonical form (so
/// every parsed name maps back to exactly `object`).
pub fn parse_chunk_key(object: &str) -> Option<(KeySegment, u64, u8)> {
    let rest = object.strip_prefix(CHUNKS_PREFIX)?;
    let mut parts = rest.split('/');
    let (segment, version, index) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let segment = KeySegment::parse(segment)?;
    if version.len() != 16 || !is_lower_hex(version) {
        return None;
    }
    let version = u64::from_str_radix(version, 16).ok()?;
    let parsed: u8 = index.parse().ok()?;
    // Rejects leading zeros and signs, which `parse` accepts.
    if parsed.to_string() != index {
        return None;
    }
    Some((segment, version, parsed))
}

fn write_hex(out: &mut impl Write, bytes: &[u8]) -> fmt::Result {
    bytes.iter().try_for_each(|byte| write!(out, "{byte:02x}"))
}

/// Lowercase hex of `bytes`.
pub fn encode_hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(2 * bytes.len());
    let _ = write_hex(&mut out, bytes);
    out
}

fn is_lower_hex(text: &str) -> bool {
    text.bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The bytes of non-empty lowercase hex, or `None`.
pub fn decode_hex(hex: &str) -> Option<Vec<u8>> {
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

/// The stored form of chunk `chunk` of `key` (format 2): the format, the
/// key, the chunk's encoded header, then its body. The body is copied once,
/// into the buffer handed to the store.
pub fn encode_chunk(key: &Key, chunk: &Chunk) -> Bytes {
    let key = key.as_bytes();
    let mut out = BytesMut::with_capacity(KEY_PREAMBLE_LEN + key.len() + chunk.wire_len());
    out.put_u8(CHUNK_OBJECT_FORMAT);
    // Never saturates: a `Key` is at most `MAX_KEY_LEN` (asserted above to
    // fit) bytes long.
    out.put_u16(u16::try_from(key.len()).unwrap_or(u16::MAX));
    out.put_slice(key);
    chunk.header.put(&mut out);
    out.put_slice(&chunk.body);
    out.freeze()
}

/// A decoded chunk object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredChunk {
    /// The key the object says it belongs to; `None` in a format-1 object,
    /// which does not say.
    pub key: Option<Key>,
    pub chunk: Chunk,
}

impl StoredChunk {
    /// Whether this object, read from one of `key`'s names, holds a chunk
    /// of `key`: its embedded key is `key`; or, in format 1, the name is
    /// `key`'s hex (which names no other key).
    pub fn belongs_to(&self, key: &Key) -> bool {
        match &self.key {
            Some(stored) => stored == key,
            None => key.len() <= MAX_HEX_KEY_LEN,
        }
    }
}

/// Parses a stored chunk object (without copying the body) and checks it:
/// its format and embedded key, the header's own CRC and fields, then the
/// body's length and CRC32C. An object that fails is an error, never data,
/// so a damaged object in the store cannot turn into a wrong object for a
/// client. Whose chunk it is is up to the caller
/// ([`StoredChunk::belongs_to`]).
pub fn decode_chunk(bytes: Bytes) -> Result<StoredChunk, CosError> {
    let corrupt = CosError::Corrupt;
    let (key, chunk) = match bytes.first() {
        Some(&ChunkHeader::FORMAT) => (None, bytes),
        Some(&CHUNK_OBJECT_FORMAT) => {
            let Some(len) = bytes
                .get(1..KEY_PREAMBLE_LEN)
                .and_then(|len| <[u8; 2]>::try_from(len).ok())
            else {
                return Err(corrupt(format!(
                    "chunk object of {} bytes ends in its key length",
                    bytes.len()
                )));
            };
            let end = KEY_PREAMBLE_LEN + usize::from(u16::from_be_bytes(len));
            if bytes.len() < end {
                return Err(corrupt(format!(
                    "chunk object of {} bytes ends in its key ({} bytes)",
                    bytes.len(),
                    end - KEY_PREAMBLE_LEN
                )));
            }
            let key = Key::new(bytes.slice(KEY_PREAMBLE_LEN..end))
                .map_err(|err| corrupt(format!("chunk object key: {err}")))?;
            (Some(key), bytes.slice(end..))
        }
        Some(other) => {
            return Err(corrupt(format!(
                "unknown chunk object format {other} (expected {CHUNK_OBJECT_FORMAT}, or {} for a bare chunk)",
                ChunkHeader::FORMAT
            )));
        }
        None => return Err(corrupt("empty chunk object".into())),
    };
    let chunk = Chunk::from_bytes(chunk).map_err(|err| corrupt(err.to_string()))?;
    chunk.verify().map_err(|err| corrupt(err.to_string()))?;
    Ok(StoredChunk { key, chunk })
}

#[cfg(test)]
mod tests {
    use infinicache::codec::CodecParams;

    use super::super::{MAX_KEY_LEN as MAX_STORE_KEY_LEN, check_key, check_prefix};
    use super::*;

    fn key(bytes: &[u8]) -> Key {
        Key::try_from(bytes).expect("valid key")
    }

    /// A key of `len` bytes that differs from others of the same length in
    /// its last byte.
    fn long_key(len: usize, last: u8) -> Key {
        let mut bytes = vec![b'k'; len];
        if let Some(end) = bytes.last_mut() {
            *end = last;
        }
        key(&bytes)
    }

    fn chunk() -> Chunk {
        let params = CodecParams::new(2, 1).expect("params");
        Chunk::new(params, 1, 6, 7, Bytes::from_static(b"def"))
    }

    /// The format-1 object: the bare chunk.
    fn bare(chunk: &Chunk) -> Bytes {
        let mut out = BytesMut::new();
        chunk.write_to(&mut out);
        out.freeze()
    }

    #[test]
    fn layout_chunk_keys_round_trip() {
        for (k, version, index) in [
            (key(b"greeting"), 1, 0),
            (key(b"\x00/../\xff"), u64::MAX, 255),
            (key(&[b'k'; MAX_HEX_KEY_LEN]), 0, 11),
            (key(&[b'k'; MAX_HEX_KEY_LEN + 1]), 3, 1),
            (key(&[0xff; 1000]), 1 << 52, 200),
            (long_key(MAX_KEY_LEN, b'/'), u64::MAX, 255),
        ] {
            let object = chunk_key(&k, version, index);
            check_key(&object).unwrap_or_else(|err| panic!("{object}: {err}"));
            check_prefix(&object_prefix(&k)).expect("a valid prefix");
            assert!(object.starts_with(&object_prefix(&k)));
            assert!(object.starts_with(&version_prefix(&k, version)));
            let (segment, parsed_version, parsed_index) =
                parse_chunk_key(&object).unwrap_or_else(|| panic!("{object} does not parse"));
            assert_eq!((parsed_version, parsed_index), (version, index));
            assert_eq!(segment, KeySegment::of(&k));
            assert!(segment.names(&k));
            assert_eq!(segment.key(), (k.len() <= MAX_HEX_KEY_LEN).then_some(&k));
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
    fn layout_key_segments_fit_one_path_segment() {
        for len in (1..=300).chain([1000, 4096, MAX_KEY_LEN - 1, MAX_KEY_LEN]) {
            let k = key(&vec![0xa5; len]);
            let segment = key_segment(&k);
            if len <= MAX_HEX_KEY_LEN {
                assert_eq!(segment, encode_hex(k.as_bytes()), "{len} bytes");
            } else {
                assert_eq!(segment.len(), DIGEST_SEGMENT_LEN, "{len} bytes");
                assert!(segment.starts_with('h'), "{segment}");
            }
            assert!(segment.len() <= MAX_SEGMENT_LEN, "{len} bytes: {segment}");
            assert_eq!(KeySegment::parse(&segment), Some(KeySegment::of(&k)));
            // The longest store key stays well inside the store's limit,
            // with room for an S3 prefix.
            let object = chunk_key(&k, u64::MAX, u8::MAX);
            assert!(object.len() <= MAX_STORE_KEY_LEN / 2, "{}", object.len());
        }
        // The digest is SHA-256 of the key's bytes.
        let k = key(&[b'x'; MAX_HEX_KEY_LEN + 1]);
        let expected: [u8; 32] = Sha256::digest(k.as_bytes()).into();
        assert_eq!(KeySegment::of(&k), KeySegment::Digest(expected));
        assert_eq!(key_segment(&k), format!("h{}", encode_hex(&expected)));
    }

    #[test]
    fn layout_long_key_prefixes_do_not_cover_other_keys() {
        let keys = [
            key(&[b'k'; MAX_HEX_KEY_LEN]),
            long_key(MAX_HEX_KEY_LEN + 1, b'k'),
            long_key(MAX_HEX_KEY_LEN + 1, b'l'),
            long_key(MAX_HEX_KEY_LEN + 2, b'k'),
            long_key(MAX_KEY_LEN, b'k'),
            long_key(MAX_KEY_LEN, b'l'),
            // A short key whose hex starts with the digest mark's neighbours.
            key(b"h"),
            key(b"\x0f"),
        ];
        for (i, a) in keys.iter().enumerate() {
            for (j, b) in keys.iter().enumerate() {
                let covered = chunk_key(b, 1, 0).starts_with(&object_prefix(a));
                assert_eq!(covered, i == j, "{i} covers {j}: {covered}");
                let covered = chunk_key(b, 1, 0).starts_with(&version_prefix(a, 1));
                assert_eq!(covered, i == j, "{i} at version 1 covers {j}: {covered}");
            }
            // One version's prefix never covers another version's chunks.
            for (v, w) in [(1, 0x10), (0x10, 1), (1, 2)] {
                assert!(!chunk_key(a, w, 0).starts_with(&version_prefix(a, v)));
            }
        }
    }

    #[test]
    fn layout_parse_rejects_non_canonical_keys() {
        let digest = "ab".repeat(32);
        let too_long_hex = "61".repeat(MAX_HEX_KEY_LEN + 1);
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
            "chunks/h/0000000000000001/0",
            &format!("chunks/h{}/0000000000000001/0", &digest[2..]),
            &format!("chunks/h{digest}00/0000000000000001/0"),
            &format!("chunks/H{digest}/0000000000000001/0"),
            &format!("chunks/h{}/0000000000000001/0", digest.to_uppercase()),
            &format!("chunks/hh{digest}/0000000000000001/0"),
            // A long key is never named by its hex.
            &format!("chunks/{too_long_hex}/0000000000000001/0"),
        ] {
            assert_eq!(parse_chunk_key(object), None, "{object:?} parsed");
        }
        assert!(parse_chunk_key(&format!("chunks/h{digest}/0000000000000001/0")).is_some());
    }

    #[test]
    fn layout_encode_decode_chunk_round_trip() {
        let chunk = chunk();
        for k in [
            key(b"k"),
            key(&[b'k'; MAX_HEX_KEY_LEN]),
            long_key(MAX_HEX_KEY_LEN + 1, b'x'),
            long_key(MAX_KEY_LEN, 0),
        ] {
            let stored = encode_chunk(&k, &chunk);
            let start = KEY_PREAMBLE_LEN + k.len();
            assert_eq!(stored.len(), start + ChunkHeader::LEN + chunk.body.len());
            assert_eq!(stored[0], CHUNK_OBJECT_FORMAT);
            assert_eq!(&stored[3..start], k.as_bytes());
            assert_eq!(
                &stored[start..start + ChunkHeader::LEN],
                &chunk.header.encode()
            );
            assert_eq!(&stored[start + ChunkHeader::LEN..], &b"def"[..]);
            let back = decode_chunk(stored.clone()).expect("decodes");
            assert_eq!(back.key.as_ref(), Some(&k));
            assert_eq!(back.chunk, chunk);
            assert!(back.belongs_to(&k));
            // The decoded body is a view of the stored bytes, not a copy.
            assert_eq!(
                back.chunk.body.as_ptr(),
                stored[start + ChunkHeader::LEN..].as_ptr()
            );
        }
    }

    #[test]
    fn layout_chunks_of_other_keys_do_not_belong() {
        let chunk = chunk();
        let keys = [
            key(b"a"),
            key(b"b"),
            long_key(MAX_HEX_KEY_LEN + 1, b'a'),
            long_key(MAX_HEX_KEY_LEN + 1, b'b'),
            long_key(MAX_KEY_LEN, b'a'),
        ];
        for a in &keys {
            let stored = decode_chunk(encode_chunk(a, &chunk)).expect("decodes");
            for b in &keys {
                assert_eq!(stored.belongs_to(b), a == b, "{} vs {}", a.len(), b.len());
            }
        }
    }

    #[test]
    fn layout_format_1_chunks_are_read_under_hex_names_only() {
        let chunk = chunk();
        let stored = decode_chunk(bare(&chunk)).expect("a format-1 object decodes");
        assert_eq!(stored.key, None);
        assert_eq!(stored.chunk, chunk);
        assert!(stored.belongs_to(&key(b"greeting")));
        assert!(stored.belongs_to(&key(&[b'k'; MAX_HEX_KEY_LEN])));
        // The old layout could not name a long key: such an object under a
        // digest is not trusted.
        assert!(!stored.belongs_to(&long_key(MAX_HEX_KEY_LEN + 1, b'k')));
    }

    #[test]
    fn layout_corrupt_chunks_are_errors_or_someone_elses() {
        let k = long_key(MAX_HEX_KEY_LEN + 3, b'k');
        for stored in [encode_chunk(&k, &chunk()), bare(&chunk())] {
            for at in 0..stored.len() {
                let mut bad = stored.to_vec();
                bad[at] ^= 0x01;
                // A flip inside the embedded key makes a valid object of
                // another key: never one of `k`.
                match decode_chunk(Bytes::from(bad)) {
                    Err(CosError::Corrupt(_)) => {}
                    Ok(decoded) => assert!(!decoded.belongs_to(&k), "flip at byte {at} accepted"),
                    Err(other) => panic!("flip at byte {at}: {other}"),
                }
            }
            for end in 0..stored.len() {
                assert!(
                    matches!(decode_chunk(stored.slice(..end)), Err(CosError::Corrupt(_))),
                    "{end} bytes accepted"
                );
            }
            let mut longer = stored.to_vec();
            longer.push(0);
            assert!(matches!(
                decode_chunk(Bytes::from(longer)),
                Err(CosError::Corrupt(_))
            ));
        }
        for garbage in [&b"\x00"[..], b"\x03abc", b"\xff", b"\x02\x00\x00"] {
            assert!(
                matches!(
                    decode_chunk(Bytes::copy_from_slice(garbage)),
                    Err(CosError::Corrupt(_))
                ),
                "{garbage:?} accepted"
            );
        }
    }
}
