//! The object manifest in the object store: what a restarted proxy needs to
//! serve every object stored before.
//!
//! One small record per visible object, `meta/objects/<hex key>`, holding its
//! version, size and coding. Placement is deliberately not recorded: it
//! changes with every failover and repair, and a restarted proxy learns it
//! from the nodes themselves (each node is reconciled when it first dials in,
//! and chunks of recovered objects it holds are adopted) or falls back to the
//! chunks in the store.
//!
//! Records are written when a PUT commits and removed when an object is
//! deleted: before the reply in `sync` mode, in the background in `async`
//! mode.

use std::fmt::Write as _;

use bytes::Bytes;
use futures::stream::{self, StreamExt};
use infinicache::protocol::Key;
use serde::{Deserialize, Serialize};

use super::durable::Durable;
use crate::cos::CosError;
use crate::cos::layout::META_PREFIX;
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

/// Where the manifest records live.
pub fn records_prefix() -> String {
    format!("{META_PREFIX}objects/")
}

/// The store key of `key`'s record.
pub fn record_key(key: &Key) -> String {
    let mut out = records_prefix();
    for byte in key.as_bytes() {
        let _ = write!(out, "{byte:02x}");
    }
    out
}

fn parse_record_key(object: &str) -> Option<Key> {
    let hex = object.strip_prefix(&records_prefix())?;
    if hex.is_empty() || hex.len() % 2 != 0 {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect();
    Key::try_from(bytes?).ok()
}

impl Durable {
    /// Records `key` at `record.version` as visible.
    pub async fn write_record(&self, key: &Key, record: &Record) -> Result<(), CosError> {
        let body = serde_json::to_vec(record).map_err(|err| CosError::Corrupt(err.to_string()))?;
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

    /// Every record in the store. A record that does not parse is skipped
    /// with a warning: one damaged entry must not keep the proxy from
    /// serving every other object.
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
            match (
                parse_record_key(&object),
                serde_json::from_slice::<Record>(&body),
            ) {
                (Some(key), Ok(record)) => records.push((key, record)),
                _ => tracing::warn!(%object, "skipping a manifest record that does not parse"),
            }
        }
        Ok(records)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_keys_round_trip() {
        let key = Key::try_from("a/b c").expect("key");
        let object = record_key(&key);
        assert!(object.starts_with("meta/objects/"));
        assert_eq!(parse_record_key(&object), Some(key));
        assert_eq!(parse_record_key("meta/objects/abc"), None);
        assert_eq!(parse_record_key("meta/objects/zz"), None);
        assert_eq!(parse_record_key("chunks/61/0/0"), None);
    }
}
