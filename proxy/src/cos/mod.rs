//! The cloud object store (COS): InfiniStore's durable layer under the
//! functions' memory.
//!
//! Function memory is fast but can vanish whenever the provider reclaims an
//! environment; the COS keeps a copy of every chunk that survives that. The
//! proxy sees one small async API, [`Cos`], over two backends:
//!
//! * `dir.rs`: files under a local root directory, the embedded default on
//!   the local platform (no cloud account needed), with atomic and
//!   optionally fsynced writes;
//! * `s3.rs`: Amazon S3 or an S3-compatible service, through `aws-sdk-s3`.
//!
//! Where things live inside the store (chunk objects, the metadata log) is
//! decided only by [`layout`]; the backends just store bytes under keys.
//!
//! Keys are `/`-separated relative paths. Both backends accept exactly the
//! same keys ([`check_key`]), checked before any backend sees them, so a key
//! that works on the directory backend in tests works on S3 in production
//! and a hostile key can never reach outside the directory backend's root.

mod dir;
pub mod layout;
mod s3;
pub mod settings;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use thiserror::Error;

use dir::DirStore;
use s3::S3Store;
pub use settings::{CosBackend, CosSettings, S3Settings, WriteMode};

/// The longest key accepted: S3's limit on object keys (the S3 backend's
/// prefix comes on top of it).
pub const MAX_KEY_LEN: usize = 1024;

/// The longest segment (between `/`) of a key: the usual limit on a file
/// name, which a segment is on the directory backend.
pub const MAX_SEGMENT_LEN: usize = 255;

/// Why a store operation failed.
///
/// `Clone` so one failure can be handed to everyone waiting on the same
/// write; I/O errors are shared behind an `Arc` for that.
#[derive(Debug, Clone, Error)]
pub enum CosError {
    /// The key breaks the rules of [`check_key`]; nothing was touched.
    #[error("invalid store key {key:?}: {reason}")]
    InvalidKey { key: String, reason: &'static str },
    /// A file-system operation of the directory backend failed.
    #[error("cannot {op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: Arc<std::io::Error>,
    },
    /// An S3 request failed (after the SDK's retries).
    #[error("S3 {op} {key}: {message}")]
    S3 {
        op: &'static str,
        key: String,
        message: String,
    },
    /// The store returned bytes that fail their checksums or do not parse:
    /// never handed out as data.
    #[error("corrupt object in the store: {0}")]
    Corrupt(String),
    /// The store's settings are invalid.
    #[error("{0}")]
    Settings(String),
    /// The store (or the machinery writing to it) is shutting down.
    #[error("the object store is shut down")]
    Closed,
}

impl CosError {
    /// Whether repeating the same request cannot help: the key is invalid,
    /// the data corrupt, the settings wrong or the store shut down. I/O and S3 failures may pass (a full disk,
    /// throttling, an outage) and are worth retrying.
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            CosError::InvalidKey { .. }
                | CosError::Corrupt(_)
                | CosError::Settings(_)
                | CosError::Closed
        )
    }

    fn io(op: &'static str, path: &Path, source: std::io::Error) -> Self {
        CosError::Io {
            op,
            path: path.to_owned(),
            source: Arc::new(source),
        }
    }
}

/// Checks a store key: 1 to [`MAX_KEY_LEN`] bytes of `/`-separated segments,
/// each non-empty, at most [`MAX_SEGMENT_LEN`] bytes, not starting with `.`
/// (which also rules out `.` and `..`, and keeps keys apart from the
/// directory backend's hidden temporary files), and free of NUL, `\` and
/// other control characters. So no key is absolute, climbs out of its
/// root, or names a directory.
///
/// Keys are only built by [`layout`], so a failure here is a bug (or a
/// store shared with something else), reported as an error rather than
/// trusted.
pub fn check_key(key: &str) -> Result<(), CosError> {
    let invalid = |reason| {
        Err(CosError::InvalidKey {
            key: key.to_string(),
            reason,
        })
    };
    if key.is_empty() {
        return invalid("empty");
    }
    if key.len() > MAX_KEY_LEN {
        return invalid("longer than 1024 bytes");
    }
    if key.chars().any(|c| c.is_control() || c == '\\') {
        return invalid("contains a control character or '\\'");
    }
    for segment in key.split('/') {
        if segment.is_empty() {
            return invalid("absolute, or with an empty segment ('//' or a trailing '/')");
        }
        if segment.starts_with('.') {
            return invalid("has a segment starting with '.'");
        }
        if segment.len() > MAX_SEGMENT_LEN {
            return invalid("has a segment longer than 255 bytes");
        }
    }
    Ok(())
}

/// Checks a listing prefix: empty (everything), or a key, optionally with a
/// trailing `/`. A prefix may end inside a segment (`chunks/ab` matches
/// `chunks/abcd/...`), as on S3.
pub fn check_prefix(prefix: &str) -> Result<(), CosError> {
    if prefix.is_empty() {
        return Ok(());
    }
    let trimmed = prefix.strip_suffix('/').unwrap_or(prefix);
    check_key(trimmed).map_err(|err| match err {
        CosError::InvalidKey { reason, .. } => CosError::InvalidKey {
            key: prefix.to_string(),
            reason,
        },
        other => other,
    })
}

/// A handle on the durable store. Cheap to clone (an `Arc` inside); all
/// clones share the backend and its connections.
#[derive(Clone)]
pub struct Cos {
    backend: Arc<Backend>,
}

enum Backend {
    Dir(DirStore),
    S3(S3Store),
}

impl std::fmt::Debug for Cos {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Cos").field(&self.describe()).finish()
    }
}

impl Cos {
    /// The directory backend rooted at `root` (created if missing).
    pub fn dir(root: PathBuf) -> Result<Cos, CosError> {
        Ok(Cos {
            backend: Arc::new(Backend::Dir(DirStore::new(root)?)),
        })
    }

    /// The S3 backend; fails if the bucket cannot be reached, so a wrong
    /// bucket, endpoint or credentials stop the proxy at start-up instead of
    /// failing every write later.
    pub async fn s3(settings: &S3Settings) -> Result<Cos, CosError> {
        Ok(Cos {
            backend: Arc::new(Backend::S3(S3Store::connect(settings).await?)),
        })
    }

    /// The store the settings describe, or `None` when it is `off`.
    /// `data_dir` holds the directory backend unless `dir` is set.
    pub async fn from_settings(
        settings: &CosSettings,
        data_dir: &Path,
    ) -> Result<Option<Cos>, CosError> {
        settings
            .validate()
            .map_err(|err| CosError::Settings(err.to_string()))?;
        match settings.backend {
            CosBackend::Off => Ok(None),
            CosBackend::Dir => Cos::dir(settings.dir_root(data_dir)).map(Some),
            CosBackend::S3 => {
                let s3 = settings
                    .s3()
                    .map_err(|err| CosError::Settings(err.to_string()))?;
                Cos::s3(&s3).await.map(Some)
            }
        }
    }

    /// Stores `body` under `key`, replacing any previous object atomically:
    /// readers see the old or the new object, never a mix. `durable` asks
    /// for the write to survive a crash of the machine once this returns
    /// (fsync on the directory backend; every S3 write already is).
    pub async fn put(&self, key: &str, body: Bytes, durable: bool) -> Result<(), CosError> {
        check_key(key)?;
        match &*self.backend {
            Backend::Dir(store) => store.put(key, body, durable).await,
            Backend::S3(store) => store.put(key, body).await,
        }
    }

    /// The object under `key`, or `None` if there is none.
    pub async fn get(&self, key: &str) -> Result<Option<Bytes>, CosError> {
        check_key(key)?;
        match &*self.backend {
            Backend::Dir(store) => store.get(key).await,
            Backend::S3(store) => store.get(key).await,
        }
    }

    /// Deletes the object under `key`; deleting a missing object succeeds,
    /// so deletes can be retried and replayed.
    pub async fn delete(&self, key: &str) -> Result<(), CosError> {
        check_key(key)?;
        match &*self.backend {
            Backend::Dir(store) => store.delete(key).await,
            Backend::S3(store) => store.delete(key).await,
        }
    }

    /// Every key starting with `prefix` (at any depth), sorted.
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>, CosError> {
        check_prefix(prefix)?;
        let mut keys = match &*self.backend {
            Backend::Dir(store) => store.list(prefix).await?,
            Backend::S3(store) => store.list(prefix).await?,
        };
        keys.sort_unstable();
        Ok(keys)
    }

    /// Where the store is, for the ready line and logs: `dir:/path` or
    /// `s3://bucket/prefix (endpoint)`.
    pub fn describe(&self) -> String {
        match &*self.backend {
            Backend::Dir(store) => store.describe(),
            Backend::S3(store) => store.describe(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cos_is_send_sync_and_cheap_to_clone() {
        fn assert_send_sync<T: Send + Sync + Clone + 'static>() {}
        assert_send_sync::<Cos>();
        assert_send_sync::<CosError>();
    }

    #[test]
    fn cos_errors_tell_permanent_from_transient() {
        assert!(check_key("../x").expect_err("invalid").is_permanent());
        assert!(CosError::Corrupt("bad CRC".into()).is_permanent());
        assert!(CosError::Closed.is_permanent());
        let io = CosError::io("read", Path::new("/x"), std::io::Error::other("disk"));
        assert!(!io.is_permanent());
        assert_eq!(io.to_string(), "cannot read /x: disk");
        let s3 = CosError::S3 {
            op: "PutObject",
            key: "k".into(),
            message: "SlowDown: reduce your request rate".into(),
        };
        assert!(!s3.is_permanent());
    }

    #[test]
    fn check_key_accepts_layout_keys() {
        for key in [
            "a",
            "chunks/6b6579/0000000000000001/0",
            "meta/log-0001",
            "with space/and-dash_underscore.ext",
            &"x".repeat(MAX_SEGMENT_LEN),
        ] {
            check_key(key).unwrap_or_else(|err| panic!("{key:?}: {err}"));
        }
    }

    #[test]
    fn check_key_rejects_hostile_keys() {
        for key in [
            "",
            "/etc/passwd",
            "../outside",
            "a/../../outside",
            "a/./b",
            ".",
            "..",
            ".hidden",
            "a//b",
            "a/",
            "a\0b",
            "a\\..\\b",
            "a\nb",
            &"x".repeat(MAX_SEGMENT_LEN + 1),
            &"a/".repeat(MAX_KEY_LEN / 2 + 1),
        ] {
            assert!(
                matches!(check_key(key), Err(CosError::InvalidKey { .. })),
                "{key:?} accepted"
            );
        }
    }

    #[test]
    fn check_prefix_allows_empty_and_partial_prefixes() {
        for prefix in ["", "chunks", "chunks/", "chunks/ab", "chunks/ab/"] {
            check_prefix(prefix).unwrap_or_else(|err| panic!("{prefix:?}: {err}"));
        }
        for prefix in ["/", "//", "/abs", "../", "a//", "a/../b/", "a\0"] {
            assert!(check_prefix(prefix).is_err(), "{prefix:?} accepted");
        }
    }
}
