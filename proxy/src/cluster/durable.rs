//! The durable layer under the function memory (InfiniStore): every chunk
//! is also written to a cloud object store (COS), so an object outlives the
//! environments holding it.
//!
//! Two write modes:
//!
//! * **sync**: a PUT is acknowledged only once every chunk is durable in the
//!   COS (and in function memory);
//! * **async**: a PUT is acknowledged once its chunks are in function memory;
//!   the chunks are written to the COS in the background. What is not
//!   persisted yet is held in a bounded write-back buffer: a PUT that finds
//!   it full waits (backpressure) instead of the proxy buffering without
//!   bound. Failed writes are retried until they succeed or the version they
//!   belong to is gone.
//!
//! Versions that are overwritten or deleted are removed from the COS too, and
//! a chunk missing from memory can be read back from it (see `get.rs` and
//! [`super::repair`]).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use infinicache::codec::Chunk;
use infinicache::protocol::Key;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::cos::settings::WriteMode;
use crate::cos::{Cos, CosError, layout};

/// First pause before retrying a failed background write; doubles up to
/// [`MAX_RETRY`].
const FIRST_RETRY: Duration = Duration::from_millis(100);
const MAX_RETRY: Duration = Duration::from_secs(10);

/// The COS and how the proxy writes to it.
#[derive(Clone)]
pub struct Durable {
    cos: Cos,
    mode: WriteMode,
    /// Permits are KiB of write-back buffer.
    buffer: Arc<Semaphore>,
    buffer_kib: u32,
    /// Background writes (write-backs, manifest records of async PUTs): a
    /// shutdown flushes them.
    background: tokio_util::task::TaskTracker,
}

/// Whether a version is still wanted (visible or being PUT): background
/// writes of versions that are gone are skipped or undone.
pub trait Liveness: Send + Sync + 'static {
    fn is_live(&self, key: &Key, version: u64) -> bool;
}

impl Durable {
    pub fn new(cos: Cos, mode: WriteMode, buffer_bytes: u64) -> Self {
        let buffer_kib = u32::try_from(buffer_bytes.div_ceil(1024))
            .unwrap_or(u32::MAX)
            .clamp(1, Semaphore::MAX_PERMITS as u32);
        Durable {
            cos,
            mode,
            buffer: Arc::new(Semaphore::new(buffer_kib as usize)),
            buffer_kib,
            background: tokio_util::task::TaskTracker::new(),
        }
    }

    /// Where background writes to the store are spawned.
    pub fn background(&self) -> &tokio_util::task::TaskTracker {
        &self.background
    }

    /// Waits for every background write spawned so far (the write-back
    /// buffer and pending manifest records) to reach the store, or give up
    /// because its version went away.
    pub async fn flush(&self) {
        self.background.close();
        self.background.wait().await;
        self.background.reopen();
    }

    pub fn cos(&self) -> &Cos {
        &self.cos
    }

    pub fn mode(&self) -> WriteMode {
        self.mode
    }

    /// Bytes waiting in the write-back buffer (async mode).
    pub fn buffered_bytes(&self) -> u64 {
        u64::from(self.buffer_kib).saturating_sub(self.buffer.available_permits() as u64) * 1024
    }

    /// Persists one chunk of `key`. In sync mode this returns once the chunk
    /// is durable; in async mode once it is queued (waiting for room in the
    /// write-back buffer first), and `live` decides whether a write that
    /// keeps failing is still worth retrying.
    pub async fn persist(
        &self,
        key: &Key,
        chunk: &Chunk,
        live: Arc<dyn Liveness>,
    ) -> Result<(), CosError> {
        let object = layout::chunk_key(key, chunk.header.version, chunk.header.index);
        let body = layout::encode_chunk(key, chunk);
        match self.mode {
            WriteMode::Sync => self.cos.put(&object, body, true).await,
            WriteMode::Async => {
                let permit = self.reserve(body.len()).await?;
                let writer = self.clone();
                let (key, version) = (key.clone(), chunk.header.version);
                self.background.spawn(async move {
                    writer
                        .write_back(&key, version, &object, body, live.as_ref())
                        .await;
                    drop(permit);
                });
                Ok(())
            }
        }
    }

    /// Room for `len` bytes in the write-back buffer. An object larger than
    /// the whole buffer takes all of it (it cannot be split).
    async fn reserve(&self, len: usize) -> Result<OwnedSemaphorePermit, CosError> {
        let kib = u32::try_from(len.div_ceil(1024))
            .unwrap_or(u32::MAX)
            .clamp(1, self.buffer_kib);
        self.buffer
            .clone()
            .acquire_many_owned(kib)
            .await
            .map_err(|_| CosError::Closed)
    }

    /// Writes one chunk in the background, retrying with backoff while its
    /// version is still wanted; removes it again if the version went away
    /// while it was being written.
    async fn write_back(
        &self,
        key: &Key,
        version: u64,
        object: &str,
        body: Bytes,
        live: &dyn Liveness,
    ) {
        let mut pause = FIRST_RETRY;
        loop {
            if !live.is_live(key, version) {
                return;
            }
            match self.cos.put(object, body.clone(), false).await {
                Ok(()) => break,
                Err(err) if err.is_permanent() => {
                    // Retrying cannot help.
                    tracing::error!(%key, version, error = %err, "cannot persist a chunk");
                    return;
                }
                Err(err) => {
                    tracing::warn!(%key, version, error = %err, "COS write failed; retrying");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(MAX_RETRY);
                }
            }
        }
        if !live.is_live(key, version)
            && let Err(err) = self.cos.delete(object).await
        {
            tracing::debug!(%key, version, error = %err, "could not remove a stale chunk");
        }
    }

    /// Reads chunk `index` of `key` at `version` back from the COS; `None`
    /// if it is not there (not persisted yet, or gone). An object under that
    /// name holding another key's chunk (two long keys sharing a digest) is
    /// not there either: it is logged and never returned.
    pub async fn fetch(
        &self,
        key: &Key,
        version: u64,
        index: u8,
    ) -> Result<Option<Chunk>, CosError> {
        let object = layout::chunk_key(key, version, index);
        let Some(bytes) = self.cos.get(&object).await? else {
            return Ok(None);
        };
        let stored = layout::decode_chunk(bytes)?;
        if !stored.belongs_to(key) {
            tracing::warn!(
                %key,
                %object,
                stored_key_len = stored.key.as_ref().map(Key::len),
                "the object store holds another key's chunk under this key's name; ignoring it"
            );
            return Ok(None);
        }
        let chunk = stored.chunk;
        if chunk.header.version != version || chunk.header.index != index {
            return Err(CosError::Corrupt(format!(
                "{object} holds chunk {} of version {}",
                chunk.header.index, chunk.header.version
            )));
        }
        Ok(Some(chunk))
    }

    /// Removes every chunk of `key` at `version` from the COS (an
    /// overwritten or deleted version), in the background. The version's
    /// prefix ends in `/`, so it covers no other key's chunks (nor, versions
    /// being unique across keys, those of a key sharing a long key's digest).
    pub fn forget(&self, key: Key, version: u64) {
        let cos = self.cos.clone();
        tokio::spawn(async move {
            let prefix = layout::version_prefix(&key, version);
            match cos.list(&prefix).await {
                Ok(objects) => {
                    for object in objects {
                        if let Err(err) = cos.delete(&object).await {
                            tracing::warn!(%key, version, error = %err, "could not delete from the COS");
                        }
                    }
                }
                Err(err) => {
                    tracing::warn!(%key, version, error = %err, "could not list a version in the COS");
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use infinicache::codec::CodecParams;

    use super::*;
    use crate::cos::layout::MAX_HEX_KEY_LEN;

    fn chunk(version: u64, index: u8) -> Chunk {
        let params = CodecParams::new(2, 1).expect("params");
        Chunk::new(params, index, 6, version, Bytes::from_static(b"abc"))
    }

    #[tokio::test]
    async fn durable_fetch_returns_only_the_requested_keys_chunks() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let cos = Cos::dir(dir.path().to_path_buf()).expect("directory store");
        let durable = Durable::new(cos.clone(), WriteMode::Sync, 1 << 20);
        let long = Key::try_from(vec![b'k'; MAX_HEX_KEY_LEN + 40]).expect("key");
        let other = Key::try_from(vec![b'j'; MAX_HEX_KEY_LEN + 40]).expect("key");
        let short = Key::try_from("short").expect("key");
        for key in [&long, &short] {
            cos.put(
                &layout::chunk_key(key, 5, 1),
                layout::encode_chunk(key, &chunk(5, 1)),
                true,
            )
            .await
            .expect("put");
        }
        for key in [&long, &short] {
            assert_eq!(
                durable.fetch(key, 5, 1).await.expect("fetch"),
                Some(chunk(5, 1))
            );
            assert_eq!(durable.fetch(key, 5, 0).await.expect("fetch"), None);
        }

        // Another key's chunk under this key's name (what a digest collision
        // would do) is absent, not data.
        cos.put(
            &layout::chunk_key(&other, 5, 1),
            layout::encode_chunk(&long, &chunk(5, 1)),
            true,
        )
        .await
        .expect("put");
        assert_eq!(durable.fetch(&other, 5, 1).await.expect("fetch"), None);

        // A chunk stored in format 1 (the bare chunk) is still read under a
        // key's hex name, never under a digest.
        let mut bare = bytes::BytesMut::new();
        chunk(6, 0).write_to(&mut bare);
        for key in [&short, &long] {
            cos.put(&layout::chunk_key(key, 6, 0), bare.clone().freeze(), true)
                .await
                .expect("put");
        }
        assert_eq!(
            durable.fetch(&short, 6, 0).await.expect("fetch"),
            Some(chunk(6, 0))
        );
        assert_eq!(durable.fetch(&long, 6, 0).await.expect("fetch"), None);

        // A chunk of another version under this name is corrupt.
        cos.put(
            &layout::chunk_key(&short, 7, 0),
            layout::encode_chunk(&short, &chunk(8, 0)),
            true,
        )
        .await
        .expect("put");
        assert!(matches!(
            durable.fetch(&short, 7, 0).await,
            Err(CosError::Corrupt(_))
        ));
    }
}
