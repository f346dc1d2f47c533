//! The object manifest in the object store: what a restarted proxy needs to
//! serve every object stored before.
//!
//! One small record per visible object, `meta/objects/<key segment>` (the
//! key's hex, or `h` and the SHA-256 of a key too long for that: see
//! [`KeySegment`]), holding the full key (as hex), its version, size and
//! coding:
//!
//! ```text
//! {"key":"6b6579","version":1722,"size":1048576,"data_shards":4,"parity_shards":2}
//! ```
//!
//! The key is read from the record, not from its name (a digest cannot be
//! reversed), and a record is used only under the name its key gets, so a
//! record can never stand for another key, even one sharing its digest.
//! Records written before keys were embedded have no `key`: they were all
//! named by their key's hex (that layout had no other form), which is read
//! back from the name.
//!
//! Placement is deliberately not recorded: it changes with every failover
//! and repair, and a restarted proxy learns it from the nodes themselves
//! (each node is reconciled when it first dials in, and chunks of recovered
//! objects it holds are adopted) or falls back to the chunks in the store.
//!
//! Records are written when a PUT commits and removed when an object is
//! deleted: before the reply in `sync` mode, in the background in `async`
//! mode.
//!
//! Objects that expire (set through the RESP frontend with `SET ... EX`)
//! also have an expiry entry, `meta/expiry/<key segment>/<version>` (the
//! version as 16 hex digits), holding the full key and the absolute expiry
//! time:
//!
//! ```text
//! {"key":"6b6579","expires_at_ms":1722000000000}
//! ```
//!
//! An entry applies only to the version in its name: it is written when that
//! version's PUT starts (so in `sync` mode it is durable before the object is
//! acknowledged), and a restarted proxy gives a recovered object the expiry
//! of the entry naming its version, removing the others. Entries of versions
//! that are gone are therefore harmless leftovers, removed when noticed.
//! Keeping them out of the records means records are still written only as
//! they always were (one writer per key, serialised), and a record without
//! an expiry entry, from before expiries existed, simply never expires.

use bytes::Bytes;
use futures::stream::{self, StreamExt};
use infinicache::protocol::Key;
use serde::{Deserialize, Serialize};

use super::durable::Durable;
use crate::cos::CosError;
use crate::cos::layout::{KeySegment, META_PREFIX, decode_hex, encode_hex, key_segment};
use crate::cos::settings::WriteMode;

/// Records read at once when loading the manifest.
const LOAD_CONCURRENCY: usize = 16;

/// One object's entry in the manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub version: u64,
    pub size: u64,
    pub data_shards: u8,
    pub parity_shards: u8,
}

/// A record as stored: the object's key with its [`Record`].
#[derive(Debug, Serialize, Deserialize)]
struct StoredRecord {
    /// Lowercase hex of the key; missing in records written before keys
    /// were embedded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key: Option<String>,
    version: u64,
    size: u64,
    data_shards: u8,
    parity_shards: u8,
}

/// Where the manifest records live.
pub fn records_prefix() -> String {
    format!("{META_PREFIX}objects/")
}

/// The store key of `key`'s record.
pub fn record_key(key: &Key) -> String {
    let mut out = records_prefix();
    out.push_str(&key_segment(key));
    out
}

fn parse_record_key(object: &str) -> Option<KeySegment> {
    KeySegment::parse(object.strip_prefix(&records_prefix())?)
}

/// The stored form of `key`'s record.
fn encode_record(key: &Key, record: &Record) -> Result<Vec<u8>, CosError> {
    let stored = StoredRecord {
        key: Some(encode_hex(key.as_bytes())),
        version: record.version,
        size: record.size,
        data_shards: record.data_shards,
        parity_shards: record.parity_shards,
    };
    serde_json::to_vec(&stored).map_err(|err| CosError::Corrupt(err.to_string()))
}

/// The key and record stored in `body` under the name `object`, or why they
/// cannot be used.
fn decode_record(object: &str, body: &[u8]) -> Result<(Key, Record), String> {
    let stored: StoredRecord =
        serde_json::from_slice(body).map_err(|err| format!("does not parse: {err}"))?;
    let key = match &stored.key {
        Some(hex) => decode_hex(hex)
            .and_then(|bytes| Key::try_from(bytes).ok())
            .ok_or("holds an invalid key")?,
        // Written before keys were embedded: named by the key's hex.
        None => parse_record_key(object)
            .and_then(|segment| segment.key().cloned())
            .ok_or("holds no key, and its name is no key's hex")?,
    };
    if record_key(&key) != object {
        return Err(format!(
            "holds the record of another key ({} bytes, stored as {})",
            key.len(),
            record_key(&key)
        ));
    }
    let record = Record {
        version: stored.version,
        size: stored.size,
        data_shards: stored.data_shards,
        parity_shards: stored.parity_shards,
    };
    Ok((key, record))
}

/// Where the expiry entries live.
pub fn expiries_prefix() -> String {
    format!("{META_PREFIX}expiry/")
}

/// The store key of the expiry entry of `key` at `version`.
pub fn expiry_key(key: &Key, version: u64) -> String {
    format!("{}{}/{version:016x}", expiries_prefix(), key_segment(key))
}

/// An expiry entry as stored.
#[derive(Debug, Serialize, Deserialize)]
struct StoredExpiry {
    /// Lowercase hex of the key.
    key: String,
    /// Milliseconds since the Unix epoch.
    expires_at_ms: u64,
}

/// One version's expiry, as loaded from the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpiryEntry {
    /// The entry's name in the store.
    pub object: String,
    pub key: Key,
    pub version: u64,
    /// Milliseconds since the Unix epoch.
    pub expires_at_ms: u64,
}

/// The version named by expiry entry `object`, if it is one in canonical
/// form.
fn parse_expiry_key(object: &str) -> Option<(KeySegment, u64)> {
    let (segment, version) = object.strip_prefix(&expiries_prefix())?.split_once('/')?;
    let segment = KeySegment::parse(segment)?;
    if version.len() != 16 {
        return None;
    }
    let version = u64::from_str_radix(version, 16).ok()?;
    Some((segment, version))
}

/// The expiry entry stored in `body` under the name `object`, or why it
/// cannot be used.
fn decode_expiry(object: &str, body: &[u8]) -> Result<ExpiryEntry, String> {
    let (segment, version) = parse_expiry_key(object).ok_or("is not named as an expiry entry")?;
    let stored: StoredExpiry =
        serde_json::from_slice(body).map_err(|err| format!("does not parse: {err}"))?;
    let key = decode_hex(&stored.key)
        .and_then(|bytes| Key::try_from(bytes).ok())
        .ok_or("holds an invalid key")?;
    if !segment.names(&key) || expiry_key(&key, version) != object {
        return Err(format!(
            "holds the expiry of another key ({} bytes)",
            key.len()
        ));
    }
    Ok(ExpiryEntry {
        object: object.to_string(),
        key,
        version,
        expires_at_ms: stored.expires_at_ms,
    })
}

impl Durable {
    /// Records that `key` at `version` expires at `expires_at_ms`.
    pub async fn write_expiry(
        &self,
        key: &Key,
        version: u64,
        expires_at_ms: u64,
    ) -> Result<(), CosError> {
        let stored = StoredExpiry {
            key: encode_hex(key.as_bytes()),
            expires_at_ms,
        };
        let body = serde_json::to_vec(&stored).map_err(|err| CosError::Corrupt(err.to_string()))?;
        self.cos()
            .put(
                &expiry_key(key, version),
                Bytes::from(body),
                self.mode() == WriteMode::Sync,
            )
            .await
    }

    /// Removes the expiry entry of `key` at `version` (a version that is
    /// gone, or no longer expires).
    pub async fn delete_expiry(&self, key: &Key, version: u64) -> Result<(), CosError> {
        self.cos().delete(&expiry_key(key, version)).await
    }

    /// Every expiry entry in the store. One that does not parse or names
    /// another key is skipped with a warning (and left alone: it is
    /// ignored the same way at every start).
    pub async fn load_expiries(&self) -> Result<Vec<ExpiryEntry>, CosError> {
        let objects = self.cos().list(&expiries_prefix()).await?;
        let loaded: Vec<_> = stream::iter(objects)
            .map(|object| async move {
                let body = self.cos().get(&object).await?;
                Ok::<_, CosError>((object, body))
            })
            .buffer_unordered(LOAD_CONCURRENCY)
            .collect()
            .await;
        let mut entries = Vec::with_capacity(loaded.len());
        for entry in loaded {
            let (object, body) = entry?;
            let Some(body) = body else { continue };
            match decode_expiry(&object, &body) {
                Ok(entry) => entries.push(entry),
                Err(reason) => tracing::warn!(%object, %reason, "skipping an expiry entry"),
            }
        }
        Ok(entries)
    }

    /// Records `key` at `record.version` as visible.
    pub async fn write_record(&self, key: &Key, record: &Record) -> Result<(), CosError> {
        let body = encode_record(key, record)?;
        self.cos()
            .put(
                &record_key(key),
                Bytes::from(body),
                self.mode() == WriteMode::Sync,
            )
            .await
    }

    /// Removes `key`'s record (a DELETE).
    pub async fn delete_record(&self, key: &Key) -> Result<(), CosError> {
        self.cos().delete(&record_key(key)).await
    }

    /// Every record in the store. A record that does not parse, or that
    /// holds another key than its name says, is skipped with a warning: one
    /// damaged entry must not keep the proxy from serving every other
    /// object, and none may stand for the wrong key.
    pub async fn load_records(&self) -> Result<Vec<(Key, Record)>, CosError> {
        let objects = self.cos().list(&records_prefix()).await?;
        let loaded: Vec<_> = stream::iter(objects)
            .map(|object| async move {
                let body = self.cos().get(&object).await?;
                Ok::<_, CosError>((object, body))
            })
            .buffer_unordered(LOAD_CONCURRENCY)
            .collect()
            .await;
        let mut records = Vec::with_capacity(loaded.len());
        for entry in loaded {
            let (object, body) = entry?;
            let Some(body) = body else { continue };
            match decode_record(&object, &body) {
                Ok(entry) => records.push(entry),
                Err(reason) => {
                    tracing::warn!(%object, %reason, "skipping a manifest record");
                }
            }
        }
        Ok(records)
    }
}

#[cfg(test)]
mod tests {
    use infinicache::protocol::MAX_KEY_LEN;

    use super::*;
    use crate::cos::layout::MAX_HEX_KEY_LEN;
    use crate::cos::{Cos, check_key};

    const RECORD: Record = Record {
        version: 7,
        size: 1000,
        data_shards: 4,
        parity_shards: 2,
    };

    fn key(bytes: &[u8]) -> Key {
        Key::try_from(bytes).expect("key")
    }

    fn keys() -> Vec<Key> {
        vec![
            key(b"a/b c"),
            key(b"\x00\xff"),
            key(&[b'k'; MAX_HEX_KEY_LEN]),
            key(&[b'k'; MAX_HEX_KEY_LEN + 1]),
            key(&[b'l'; MAX_HEX_KEY_LEN + 1]),
            key(&vec![0x5a; MAX_KEY_LEN]),
        ]
    }

    #[test]
    fn manifest_record_keys_round_trip() {
        for key in keys() {
            let object = record_key(&key);
            check_key(&object).unwrap_or_else(|err| panic!("{object}: {err}"));
            assert!(object.starts_with("meta/objects/"));
            assert_eq!(parse_record_key(&object), Some(KeySegment::of(&key)));
        }
        assert_eq!(record_key(&key(b"ab")), "meta/objects/6162");
        assert_eq!(parse_record_key("meta/objects/abc"), None);
        assert_eq!(parse_record_key("meta/objects/zz"), None);
        assert_eq!(parse_record_key("chunks/61/0/0"), None);
    }

    #[test]
    fn manifest_records_carry_their_full_key() {
        for key in keys() {
            let object = record_key(&key);
            let body = encode_record(&key, &RECORD).expect("encodes");
            let json: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
            assert_eq!(json["key"], encode_hex(key.as_bytes()));
            assert_eq!(decode_record(&object, &body), Ok((key, RECORD)));
        }
    }

    #[test]
    fn manifest_records_of_other_keys_are_rejected() {
        let keys = keys();
        for a in &keys {
            let body = encode_record(a, &RECORD).expect("encodes");
            for b in &keys {
                let decoded = decode_record(&record_key(b), &body);
                assert_eq!(decoded.is_ok(), a == b, "{} vs {}", a.len(), b.len());
            }
        }
        // A record whose key shares another key's name (a digest collision,
        // simulated by a hand-written record under the wrong name).
        let long = key(&[b'k'; MAX_HEX_KEY_LEN + 1]);
        let other = format!(
            "{{\"key\":\"{}\",\"version\":1,\"size\":1,\"data_shards\":1,\"parity_shards\":0}}",
            encode_hex(&[b'j'; MAX_HEX_KEY_LEN + 1])
        );
        assert!(decode_record(&record_key(&long), other.as_bytes()).is_err());
    }

    #[test]
    fn manifest_records_without_a_key_are_read_under_hex_names_only() {
        let legacy = br#"{"version":7,"size":1000,"data_shards":4,"parity_shards":2}"#;
        let short = key(b"greeting");
        assert_eq!(
            decode_record(&record_key(&short), legacy),
            Ok((short, RECORD))
        );
        let long = key(&[b'k'; MAX_HEX_KEY_LEN + 1]);
        assert!(decode_record(&record_key(&long), legacy).is_err());
    }

    #[test]
    fn manifest_garbage_records_are_rejected() {
        let object = record_key(&key(b"ab"));
        for body in [
            &b""[..],
            b"{}",
            b"not json",
            br#"{"key":"","version":1,"size":1,"data_shards":1,"parity_shards":0}"#,
            br#"{"key":"6","version":1,"size":1,"data_shards":1,"parity_shards":0}"#,
            br#"{"key":"6G62","version":1,"size":1,"data_shards":1,"parity_shards":0}"#,
            br#"{"key":"6162","version":-1,"size":1,"data_shards":1,"parity_shards":0}"#,
            br#"{"key":"6162","version":1,"size":1,"data_shards":256,"parity_shards":0}"#,
        ] {
            assert!(decode_record(&object, body).is_err(), "{body:?} accepted");
        }
    }

    #[tokio::test]
    async fn manifest_load_records_rebuilds_every_key_and_skips_impostors() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let cos = Cos::dir(dir.path().to_path_buf()).expect("directory store");
        let durable = Durable::new(cos.clone(), WriteMode::Sync, 1 << 20);
        let keys = keys();
        for (i, key) in keys.iter().enumerate() {
            let record = Record {
                version: i as u64 + 1,
                ..RECORD
            };
            durable.write_record(key, &record).await.expect("write");
        }
        // A copy of one long key's record under another long key's name,
        // and a damaged record: neither is loaded.
        let copied = cos
            .get(&record_key(&keys[3]))
            .await
            .expect("get")
            .expect("stored");
        let impostor = key(&[b'm'; MAX_HEX_KEY_LEN + 1]);
        cos.put(&record_key(&impostor), copied, true)
            .await
            .expect("put");
        cos.put("meta/objects/6162", Bytes::from_static(b"{"), true)
            .await
            .expect("put");

        let mut loaded = durable.load_records().await.expect("load");
        loaded.sort_by_key(|(_, record)| record.version);
        let expected: Vec<_> = keys
            .iter()
            .enumerate()
            .map(|(i, key)| {
                let record = Record {
                    version: i as u64 + 1,
                    ..RECORD
                };
                (key.clone(), record)
            })
            .collect();
        assert_eq!(loaded, expected);

        durable.delete_record(&keys[5]).await.expect("delete");
        assert_eq!(
            durable.load_records().await.expect("load").len(),
            keys.len() - 1
        );
    }

    #[tokio::test]
    async fn expiry_entries_round_trip_per_version() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let cos = Cos::dir(dir.path().to_path_buf()).expect("directory store");
        let durable = Durable::new(cos.clone(), WriteMode::Sync, 1 << 20);
        let keys = keys();
        for (i, key) in keys.iter().enumerate() {
            let object = expiry_key(key, 40 + i as u64);
            check_key(&object).unwrap_or_else(|err| panic!("{object}: {err}"));
            assert_eq!(
                parse_expiry_key(&object),
                Some((KeySegment::of(key), 40 + i as u64))
            );
            durable
                .write_expiry(key, 40 + i as u64, 1_000 + i as u64)
                .await
                .expect("write");
        }
        assert_eq!(
            expiry_key(&key(b"ab"), 1),
            "meta/expiry/6162/0000000000000001"
        );
        // Two versions of one key have an entry each.
        durable.write_expiry(&keys[0], 99, 5).await.expect("write");
        // Damaged entries and another key's entry under this name are skipped.
        cos.put(
            "meta/expiry/6162/0000000000000001",
            Bytes::from_static(b"{"),
            true,
        )
        .await
        .expect("put");
        let impostor = br#"{"key":"6a","expires_at_ms":1}"#;
        cos.put(
            &expiry_key(&key(b"k"), 3),
            Bytes::from_static(impostor),
            true,
        )
        .await
        .expect("put");

        let mut loaded = durable.load_expiries().await.expect("load");
        loaded.sort_by_key(|entry| entry.version);
        let summary: Vec<_> = loaded
            .iter()
            .map(|entry| (entry.key.clone(), entry.version, entry.expires_at_ms))
            .collect();
        let mut expected: Vec<_> = keys
            .iter()
            .enumerate()
            .map(|(i, key)| (key.clone(), 40 + i as u64, 1_000 + i as u64))
            .collect();
        expected.push((keys[0].clone(), 99, 5));
        assert_eq!(summary, expected);
        assert!(
            loaded
                .iter()
                .all(|entry| entry.object == expiry_key(&entry.key, entry.version))
        );

        durable.delete_expiry(&keys[0], 99).await.expect("delete");
        assert_eq!(
            durable.load_expiries().await.expect("load").len(),
            keys.len()
        );
        // Expiry entries are not manifest records.
        assert!(durable.load_records().await.expect("load").is_empty());
    }
}
