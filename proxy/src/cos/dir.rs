//! The directory backend: one file per object under a root directory.
//!
//! A key `a/b/c` is the file `<root>/a/b/c`. Keys reach this module only
//! after [`check_key`](super::check_key), so they are relative, never climb
//! out of the root and never start a segment with `.`; this module's own
//! temporary files start with `.` and so can never collide with, or be
//! listed as, an object.
//!
//! File-system calls block, so every operation runs on tokio's blocking
//! pool.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;

use super::{CosError, check_key};

/// How often a write retries after a concurrent delete pruned the (then
/// empty) directory it had just created.
const DIRECTORY_RACE_RETRIES: usize = 16;

/// Makes temporary file names unique within the process (the pid makes
/// them unique across processes sharing the root).
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Objects as files under `root`.
pub(crate) struct DirStore {
    root: Arc<PathBuf>,
}

impl DirStore {
    /// Opens (creating it if needed) the store at `root`. The root is made
    /// absolute so logs say where the data is whatever the working
    /// directory.
    pub(crate) fn new(root: PathBuf) -> Result<Self, CosError> {
        let root = std::path::absolute(&root).map_err(|err| CosError::io("resolve", &root, err))?;
        fs::create_dir_all(&root).map_err(|err| CosError::io("create directory", &root, err))?;
        Ok(DirStore {
            root: Arc::new(root),
        })
    }

    pub(crate) fn describe(&self) -> String {
        format!("dir:{}", self.root.display())
    }

    pub(crate) async fn put(&self, key: &str, body: Bytes, durable: bool) -> Result<(), CosError> {
        let key = key.to_string();
        self.blocking(move |root| put_file(root, &key, &body, durable))
            .await
    }

    pub(crate) async fn get(&self, key: &str) -> Result<Option<Bytes>, CosError> {
        let path = key_path(&self.root, key);
        self.blocking(move |_| match fs::read(&path) {
            Ok(data) => Ok(Some(Bytes::from(data))),
            Err(err) if is_absent(&err) => Ok(None),
            Err(err) => Err(CosError::io("read", &path, err)),
        })
        .await
    }

    pub(crate) async fn delete(&self, key: &str) -> Result<(), CosError> {
        let path = key_path(&self.root, key);
        self.blocking(move |root| {
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(err) if is_absent(&err) => return Ok(()),
                Err(err) => return Err(CosError::io("delete", &path, err)),
            }
            prune_empty_parents(root, &path);
            Ok(())
        })
        .await
    }

    pub(crate) async fn list(&self, prefix: &str) -> Result<Vec<String>, CosError> {
        let prefix = prefix.to_string();
        self.blocking(move |root| list_files(root, &prefix)).await
    }

    /// Runs `op` on the blocking pool with the root.
    async fn blocking<T, F>(&self, op: F) -> Result<T, CosError>
    where
        T: Send + 'static,
        F: FnOnce(&Path) -> Result<T, CosError> + Send + 'static,
    {
        let root = Arc::clone(&self.root);
        match tokio::task::spawn_blocking(move || op(&root)).await {
            Ok(result) => result,
            Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
            // Only when the runtime is shutting down.
            Err(err) => Err(CosError::io("access", &self.root, io::Error::other(err))),
        }
    }
}

/// The file of a checked key.
fn key_path(root: &Path, key: &str) -> PathBuf {
    let mut path = root.to_path_buf();
    path.extend(key.split('/'));
    path
}

/// Errors that mean "there is no object there": the file is missing, a
/// parent is a file, or the path is a directory (holding other objects).
fn is_absent(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory | io::ErrorKind::IsADirectory
    )
}

/// Writes the object atomically: the body goes to a temporary file in the
/// object's directory, which is then renamed over the object (a rename
/// within one directory is atomic on POSIX file systems), so a reader, or
/// a restart after the proxy crashed, sees the old object or the new one,
/// never a torn one.
///
/// A `durable` write also fsyncs the file before the rename and then every
/// directory from the object's up to the root, so the object and the chain
/// of directory entries leading to it survive a power loss once this
/// returns. Syncing every level (not only the ones this write created)
/// covers directories an earlier, non-durable write created. A power loss
/// can lose a non-durable write, or on some file systems leave it empty or
/// short: the chunk checksums ([`super::layout::decode_chunk`]) catch that.
fn put_file(root: &Path, key: &str, body: &[u8], durable: bool) -> Result<(), CosError> {
    let path = key_path(root, key);
    let Some(dir) = path.parent() else {
        return Err(CosError::InvalidKey {
            key: key.to_string(),
            reason: "has no parent directory",
        });
    };
    let mut attempt = 0;
    let temp = loop {
        let written = fs::create_dir_all(dir)
            .map_err(|err| ("create directory", dir.to_path_buf(), err))
            .and_then(|()| {
                write_temp(dir, body, durable)
                    .map_err(|(temp, err)| ("write temporary file", temp, err))
            });
        match written {
            Ok(temp) => break temp,
            // A delete pruned a directory between its creation and the
            // temporary file; once the file is in it, the directory is not
            // empty and no longer pruned.
            // (`create_dir_all` reports AlreadyExists when a directory it
            // found existing is pruned before it can check it.)
            Err((_, _, err))
                if matches!(
                    err.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::AlreadyExists
                ) && attempt < DIRECTORY_RACE_RETRIES =>
            {
                attempt += 1;
            }
            Err((op, path, err)) => return Err(CosError::io(op, &path, err)),
        }
    };
    if let Err(err) = fs::rename(&temp, &path) {
        let _ = fs::remove_file(&temp);
        return Err(CosError::io("rename a temporary file to", &path, err));
    }
    if durable {
        for ancestor in path.ancestors().skip(1) {
            match sync_dir(ancestor) {
                // A concurrent delete of this very object pruned it.
                Err(err) if err.kind() == io::ErrorKind::NotFound => {}
                Err(err) => return Err(CosError::io("sync directory", ancestor, err)),
                Ok(()) => {}
            }
            if ancestor == root {
                break;
            }
        }
    }
    Ok(())
}

/// Writes `body` to a new hidden file in `dir` (fsynced if `durable`);
/// removes it again on failure. Returns its path, or it with the error.
fn write_temp(dir: &Path, body: &[u8], durable: bool) -> Result<PathBuf, (PathBuf, io::Error)> {
    let temp = dir.join(format!(
        ".tmp-{}-{}",
        std::process::id(),
        TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let written = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&temp)
        .and_then(|mut file| {
            file.write_all(body)?;
            if durable {
                file.sync_all()?;
            }
            Ok(())
        });
    match written {
        Ok(()) => Ok(temp),
        Err(err) => {
            let _ = fs::remove_file(&temp);
            Err((temp, err))
        }
    }
}

/// fsyncs a directory, making the entries created in it durable.
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Removes the directories above a deleted object that are now empty, up
/// to (not including) the root, so deleted keys leave no litter behind.
/// Best-effort: `remove_dir` only removes empty directories, and the first
/// that is not (or any error) stops it.
fn prune_empty_parents(root: &Path, path: &Path) {
    for dir in path.ancestors().skip(1) {
        if dir == root || !dir.starts_with(root) || fs::remove_dir(dir).is_err() {
            return;
        }
    }
}

/// Every key under `prefix`, unsorted. Walks only from the deepest
/// directory the prefix names in full, and does not follow symlinks.
fn list_files(root: &Path, prefix: &str) -> Result<Vec<String>, CosError> {
    let start = match prefix.rfind('/') {
        Some(end) => &prefix[..end],
        None => "",
    };
    let mut keys = Vec::new();
    let mut pending = vec![start.to_string()];
    while let Some(rel) = pending.pop() {
        let dir = if rel.is_empty() {
            root.to_path_buf()
        } else {
            key_path(root, &rel)
        };
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(err) if is_absent(&err) => continue,
            Err(err) => return Err(CosError::io("list", &dir, err)),
        };
        for entry in entries {
            let entry = entry.map_err(|err| CosError::io("list", &dir, err))?;
            // Names that are not UTF-8, temporary files and anything else
            // no key could name are not objects.
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            let key = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            if check_key(&key).is_err() {
                continue;
            }
            let kind = entry
                .file_type()
                .map_err(|err| CosError::io("list", &entry.path(), err))?;
            if kind.is_dir() {
                if key.starts_with(prefix) || prefix.starts_with(&format!("{key}/")) {
                    pending.push(key);
                }
            } else if kind.is_file() && key.starts_with(prefix) {
                keys.push(key);
            }
        }
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::super::Cos;
    use super::*;

    fn store() -> (tempfile::TempDir, Cos) {
        let dir = tempfile::tempdir().expect("temporary directory");
        let cos = Cos::dir(dir.path().join("store")).expect("directory store");
        (dir, cos)
    }

    fn body(text: &'static str) -> Bytes {
        Bytes::from_static(text.as_bytes())
    }

    /// Every file and directory under `root`, relative, sorted.
    fn tree(root: &Path) -> Vec<String> {
        let mut out = Vec::new();
        let mut pending = vec![root.to_path_buf()];
        while let Some(dir) = pending.pop() {
            for entry in fs::read_dir(&dir).expect("read_dir") {
                let path = entry.expect("entry").path();
                let rel = path.strip_prefix(root).expect("under root");
                out.push(rel.to_string_lossy().into_owned());
                if path.is_dir() {
                    pending.push(path);
                }
            }
        }
        out.sort();
        out
    }

    #[tokio::test]
    async fn cos_dir_put_get_delete_round_trip() {
        let (_dir, cos) = store();
        assert_eq!(cos.get("a/b").await.expect("get"), None);
        cos.put("a/b", body("hello"), false).await.expect("put");
        assert_eq!(cos.get("a/b").await.expect("get"), Some(body("hello")));
        cos.put("top", Bytes::new(), false)
            .await
            .expect("empty put");
        assert_eq!(cos.get("top").await.expect("get"), Some(Bytes::new()));
        cos.delete("a/b").await.expect("delete");
        assert_eq!(cos.get("a/b").await.expect("get"), None);
        assert!(cos.describe().starts_with("dir:/"), "{}", cos.describe());
    }

    #[tokio::test]
    async fn cos_dir_overwrite_is_atomic_and_leaves_no_temporary_files() {
        let (dir, cos) = store();
        cos.put("k/v", body("first"), false).await.expect("put");
        cos.put("k/v", body("second, longer"), false)
            .await
            .expect("overwrite");
        assert_eq!(
            cos.get("k/v").await.expect("get"),
            Some(body("second, longer"))
        );
        cos.put("k/v", body("3"), true)
            .await
            .expect("durable overwrite");
        assert_eq!(cos.get("k/v").await.expect("get"), Some(body("3")));
        assert_eq!(tree(&dir.path().join("store")), ["k", "k/v"]);

        // Readers racing writers see one whole version or the other.
        let big_a = Bytes::from(vec![b'a'; 1 << 20]);
        let big_b = Bytes::from(vec![b'b'; 1 << 20]);
        let writer = {
            let cos = cos.clone();
            let (a, b) = (big_a.clone(), big_b.clone());
            tokio::spawn(async move {
                for i in 0..20 {
                    let data = if i % 2 == 0 { a.clone() } else { b.clone() };
                    cos.put("race", data, false).await.expect("put");
                }
            })
        };
        for _ in 0..20 {
            if let Some(data) = cos.get("race").await.expect("get") {
                assert!(data == big_a || data == big_b, "torn read");
            }
        }
        writer.await.expect("writer");
        assert_eq!(tree(&dir.path().join("store")), ["k", "k/v", "race"]);
    }

    #[tokio::test]
    async fn cos_dir_durable_writes_land() {
        let (dir, cos) = store();
        cos.put("chunks/00/0000000000000001/0", body("durable"), true)
            .await
            .expect("durable put");
        let file = dir.path().join("store/chunks/00/0000000000000001/0");
        assert_eq!(fs::read(file).expect("file"), b"durable");
        assert_eq!(
            cos.get("chunks/00/0000000000000001/0").await.expect("get"),
            Some(body("durable"))
        );
    }

    #[tokio::test]
    async fn cos_dir_list_walks_nested_prefixes_sorted() {
        let (_dir, cos) = store();
        for key in [
            "chunks/ab/2/0",
            "chunks/ab/1/1",
            "chunks/ab/1/0",
            "chunks/abc/1/0",
            "chunks/b/1/0",
            "meta/log",
        ] {
            cos.put(key, body("x"), false).await.expect("put");
        }
        let all = cos.list("").await.expect("list all");
        assert_eq!(
            all,
            [
                "chunks/ab/1/0",
                "chunks/ab/1/1",
                "chunks/ab/2/0",
                "chunks/abc/1/0",
                "chunks/b/1/0",
                "meta/log"
            ]
        );
        assert_eq!(
            cos.list("chunks/ab/").await.expect("list"),
            ["chunks/ab/1/0", "chunks/ab/1/1", "chunks/ab/2/0"]
        );
        assert_eq!(
            cos.list("chunks/ab").await.expect("list"),
            [
                "chunks/ab/1/0",
                "chunks/ab/1/1",
                "chunks/ab/2/0",
                "chunks/abc/1/0"
            ]
        );
        assert_eq!(cos.list("meta").await.expect("list"), ["meta/log"]);
        assert_eq!(
            cos.list("chunks/ab/1/1").await.expect("list"),
            ["chunks/ab/1/1"]
        );
        assert!(cos.list("nothing/").await.expect("list").is_empty());
        assert!(cos.list("meta/log/deeper").await.expect("list").is_empty());
    }

    #[tokio::test]
    async fn cos_dir_list_skips_temporary_and_foreign_files() {
        let (dir, cos) = store();
        cos.put("a/b", body("x"), false).await.expect("put");
        let root = dir.path().join("store");
        fs::write(root.join("a/.tmp-1-1"), b"partial").expect("temp file");
        std::os::unix::fs::symlink("/etc", root.join("a/link")).expect("symlink");
        assert_eq!(cos.list("").await.expect("list"), ["a/b"]);
    }

    #[tokio::test]
    async fn cos_dir_delete_is_idempotent_and_prunes_empty_directories() {
        let (dir, cos) = store();
        cos.delete("never/stored").await.expect("delete missing");
        cos.put("x/y/z/1", body("1"), false).await.expect("put");
        cos.put("x/y/2", body("2"), false).await.expect("put");
        cos.delete("x/y/z/1").await.expect("delete");
        cos.delete("x/y/z/1").await.expect("delete again");
        let root = dir.path().join("store");
        assert_eq!(tree(&root), ["x", "x/y", "x/y/2"]);
        cos.delete("x/y/2").await.expect("delete");
        assert!(tree(&root).is_empty(), "{:?}", tree(&root));
        assert!(root.is_dir(), "the root stays");
        // A directory is not an object.
        cos.put("d/e", body("e"), false).await.expect("put");
        cos.delete("d").await.expect("delete a directory name");
        assert_eq!(cos.get("d").await.expect("get a directory name"), None);
        assert_eq!(cos.get("d/e/f").await.expect("get below a file"), None);
        assert_eq!(cos.get("d/e").await.expect("get"), Some(body("e")));
    }

    #[tokio::test]
    async fn cos_dir_hostile_keys_are_rejected_without_touching_anything() {
        let outer = tempfile::tempdir().expect("temporary directory");
        let root = outer.path().join("store");
        let cos = Cos::dir(root.clone()).expect("store");
        fs::write(outer.path().join("victim"), b"keep").expect("victim");
        for key in [
            "../victim",
            "a/../../victim",
            "/etc/passwd",
            "",
            "a//b",
            "a/",
            ".hidden",
            "a\0b",
            "..\\victim",
        ] {
            let invalid =
                |result: Result<_, CosError>| matches!(result, Err(CosError::InvalidKey { .. }));
            assert!(
                invalid(cos.put(key, body("evil"), false).await.map(|_| ())),
                "put {key:?}"
            );
            assert!(invalid(cos.get(key).await.map(|_| ())), "get {key:?}");
            assert!(invalid(cos.delete(key).await), "delete {key:?}");
        }
        assert!(matches!(
            cos.list("../").await,
            Err(CosError::InvalidKey { .. })
        ));
        assert_eq!(
            fs::read(outer.path().join("victim")).expect("victim"),
            b"keep"
        );
        assert!(tree(&root).is_empty(), "{:?}", tree(&root));
    }

    #[tokio::test]
    async fn cos_dir_concurrent_puts_and_deletes_in_one_directory() {
        let (_dir, cos) = store();
        let mut tasks = Vec::new();
        for i in 0..8 {
            let cos = cos.clone();
            tasks.push(tokio::spawn(async move {
                let key = format!("shared/dir/{i}");
                for _ in 0..20 {
                    cos.put(&key, body("v"), false).await.expect("put");
                    cos.delete(&key).await.expect("delete");
                }
                cos.put(&key, body("last"), false).await.expect("put");
            }));
        }
        for task in tasks {
            task.await.expect("task");
        }
        assert_eq!(cos.list("shared/").await.expect("list").len(), 8);
    }

    #[test]
    fn cos_dir_errors_name_the_path() {
        let file = tempfile::NamedTempFile::new().expect("file");
        // A root that is a file cannot be created.
        let err = Cos::dir(file.path().join("sub")).expect_err("root under a file");
        assert!(
            err.to_string().contains(&file.path().display().to_string()),
            "{err}"
        );
    }
}
