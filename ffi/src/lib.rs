//! C bindings for the InfiniCache client: `libinfinicache.so` / `libinfinicache.a`
//! with the header `include/infinicache.h` (generated from this crate by
//! cbindgen; `ffi/tests/header.rs` fails when it is stale).
//!
//! A thin blocking layer over [`infinicache::Client`]: every call runs the
//! async operation to completion on one process-wide multi-thread tokio
//! runtime. Every entry point checks its pointers, catches panics and reports
//! failures as an `infinicache_error *` (NULL on success).

mod error;
mod types;

use std::ffi::{CStr, c_char};
use std::future::Future;
use std::path::PathBuf;
use std::ptr;
use std::sync::OnceLock;
use std::time::Duration;

use infinicache::client::TlsOptions;
use tokio::runtime::Runtime;

use error::{FfiError, guard};
pub use error::{infinicache_code, infinicache_error, infinicache_error_free};
pub use types::{
    INFINICACHE_PARITY_DEFAULT, infinicache_bytes, infinicache_bytes_free, infinicache_options,
    infinicache_options_default,
};

/// A connected client. Opaque: create it with `infinicache_client_new`,
/// release it with `infinicache_client_free`.
///
/// One client may be used from any number of threads at once; its operations
/// share the client's connections (one multiplexed connection per proxy).
#[allow(non_camel_case_types)]
pub struct infinicache_client {
    inner: infinicache::Client,
}

/// The process-wide runtime that drives every client's I/O.
fn runtime() -> Result<&'static Runtime, FfiError> {
    static RUNTIME: OnceLock<Result<Runtime, String>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .thread_name("infinicache-io")
                .enable_all()
                .build()
                .map_err(|err| format!("cannot start the I/O runtime: {err}"))
        })
        .as_ref()
        .map_err(|err| FfiError::internal(err.clone()))
}

/// Runs `op` to completion on the runtime, blocking the calling thread.
fn block_on<F: Future>(op: F) -> Result<F::Output, FfiError> {
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(FfiError::internal(
            "libinfinicache was called from a thread that runs an async runtime; \
             its functions block, call them from an ordinary thread",
        ));
    }
    Ok(runtime()?.block_on(op))
}

/// Largest length a Rust slice may have.
const MAX_SLICE: usize = isize::MAX as usize;

/// Borrows `len` bytes at `data`; NULL is allowed only when `len` is 0.
///
/// # Safety
/// Unless NULL, `data` must point to `len` readable bytes that stay valid and
/// unchanged for `'a`.
unsafe fn byte_slice<'a>(data: *const u8, len: usize, what: &str) -> Result<&'a [u8], FfiError> {
    if data.is_null() {
        return if len == 0 {
            Ok(&[])
        } else {
            Err(FfiError::invalid(format!(
                "{what} is NULL but its length is {len}"
            )))
        };
    }
    if len > MAX_SLICE {
        return Err(FfiError::invalid(format!(
            "{what} length {len} is too large"
        )));
    }
    // SAFETY: non-NULL, length checked, validity promised by the caller.
    Ok(unsafe { std::slice::from_raw_parts(data, len) })
}

/// Borrows a key: non-NULL and non-empty.
///
/// # Safety
/// As [`byte_slice`].
unsafe fn key_slice<'a>(key: *const u8, key_len: usize) -> Result<&'a [u8], FfiError> {
    if key.is_null() {
        return Err(FfiError::invalid("key is NULL"));
    }
    if key_len == 0 {
        return Err(FfiError::invalid("key must not be empty"));
    }
    // SAFETY: forwarded to the caller.
    unsafe { byte_slice(key, key_len, "key") }
}

/// Borrows a NUL-terminated string's bytes; `None` for NULL.
///
/// # Safety
/// Unless NULL, `s` must point to a NUL-terminated string that stays valid
/// and unchanged for `'a`.
unsafe fn c_bytes<'a>(s: *const c_char) -> Option<&'a [u8]> {
    // SAFETY: NULL is checked; the rest is promised by the caller.
    (!s.is_null()).then(|| unsafe { CStr::from_ptr(s) }.to_bytes())
}

/// `tls_ca_file` as a path: any bytes on Unix, UTF-8 elsewhere.
fn ca_file_path(bytes: &[u8]) -> Result<PathBuf, FfiError> {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        Ok(PathBuf::from(std::ffi::OsStr::from_bytes(bytes)))
    }
    #[cfg(not(unix))]
    {
        std::str::from_utf8(bytes)
            .map(PathBuf::from)
            .map_err(|_| FfiError::invalid("tls_ca_file is not valid UTF-8"))
    }
}

/// The TLS settings of `options`: `None` (plain TCP) unless `tls` is true or
/// a TLS string is set. The CA file is read, and the name checked, when the
/// client connects.
///
/// # Safety
/// `options.tls_ca_file` and `options.tls_server_name` must each be NULL or
/// a NUL-terminated string.
unsafe fn tls_options(options: &infinicache_options) -> Result<Option<TlsOptions>, FfiError> {
    // SAFETY: NULL or NUL-terminated strings (caller's promise).
    let (ca_file, server_name) = unsafe {
        (
            c_bytes(options.tls_ca_file),
            c_bytes(options.tls_server_name),
        )
    };
    if !options.tls && ca_file.is_none() && server_name.is_none() {
        return Ok(None);
    }
    let mut tls = TlsOptions::new();
    if let Some(path) = ca_file {
        if path.is_empty() {
            return Err(FfiError::invalid(
                "tls_ca_file is empty (NULL: the system's trust store)",
            ));
        }
        tls = tls.ca_file(ca_file_path(path)?);
    }
    if let Some(name) = server_name {
        let name = std::str::from_utf8(name)
            .map_err(|_| FfiError::invalid("tls_server_name is not valid UTF-8"))?;
        tls = tls.server_name(name);
    }
    Ok(Some(tls))
}

/// Borrows the client behind a pointer.
///
/// # Safety
/// `client` must be NULL or a live client from `infinicache_client_new`.
unsafe fn client_ref<'a>(
    client: *const infinicache_client,
) -> Result<&'a infinicache::Client, FfiError> {
    // SAFETY: promised by the caller.
    unsafe { client.as_ref() }
        .map(|client| &client.inner)
        .ok_or_else(|| FfiError::invalid("client is NULL"))
}

fn millis(ms: u64, default: Duration) -> Duration {
    if ms == 0 {
        default
    } else {
        Duration::from_millis(ms)
    }
}

/// Connects a client to one or more proxies.
///
/// `addresses` is an array of `n_addresses` NUL-terminated `"host:port"`
/// strings (at least one); keys are spread over several proxies by
/// consistent hashing. `options` may be NULL for all defaults (see
/// `infinicache_options`). Fails with `INFINICACHE_UNAVAILABLE` if no proxy
/// can be reached within the connect timeout, and with
/// `INFINICACHE_INVALID_ARGUMENT` for a NULL pointer, an empty address list
/// or invalid options (for example more than 255 data shards, or a TLS CA
/// file that cannot be read), and with `INFINICACHE_UNAUTHORIZED` if a proxy
/// requires a secret that `options->secret` does not give. A failed TLS
/// handshake (a plain client and a TLS proxy, or a certificate that does not
/// verify) is `INFINICACHE_UNAVAILABLE`, with a message saying so.
///
/// On success stores the new client in `*out`; on failure sets `*out` to NULL.
/// The client is safe to use from several threads at once. Release it with
/// `infinicache_client_free`.
///
/// # Safety
/// `addresses` must point to `n_addresses` pointers to NUL-terminated strings;
/// `options` must be NULL or point to an `infinicache_options` whose
/// `secret`, `tls_ca_file` and `tls_server_name` are each NULL or a
/// NUL-terminated string; `out` must be a valid pointer to write to.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn infinicache_client_new(
    addresses: *const *const c_char,
    n_addresses: usize,
    options: *const infinicache_options,
    out: *mut *mut infinicache_client,
) -> *mut infinicache_error {
    guard(|| {
        // SAFETY: `out` is NULL or valid for writes (caller's promise).
        let out = unsafe { out.as_mut() }.ok_or_else(|| FfiError::invalid("out is NULL"))?;
        *out = ptr::null_mut();
        if addresses.is_null() {
            return Err(FfiError::invalid("addresses is NULL"));
        }
        if n_addresses == 0 {
            return Err(FfiError::invalid("no proxy address given"));
        }
        if n_addresses > MAX_SLICE / size_of::<*const c_char>() {
            return Err(FfiError::invalid("too many addresses"));
        }
        // SAFETY: non-NULL, `n_addresses` entries promised by the caller.
        let entries = unsafe { std::slice::from_raw_parts(addresses, n_addresses) };
        let mut proxies = Vec::with_capacity(n_addresses);
        for (i, &entry) in entries.iter().enumerate() {
            if entry.is_null() {
                return Err(FfiError::invalid(format!("address {i} is NULL")));
            }
            // SAFETY: a NUL-terminated string (caller's promise).
            let addr = unsafe { CStr::from_ptr(entry) }
                .to_str()
                .map_err(|_| FfiError::invalid(format!("address {i} is not valid UTF-8")))?;
            if addr.is_empty() {
                return Err(FfiError::invalid(format!("address {i} is empty")));
            }
            proxies.push(addr.to_owned());
        }
        // SAFETY: NULL or a valid options struct (caller's promise).
        let options = unsafe { options.as_ref() }
            .copied()
            .unwrap_or_else(|| infinicache_options_default());

        let mut builder = infinicache::Client::builder()
            .proxies(proxies)
            .name(format!("infinicache-c/{}", env!("CARGO_PKG_VERSION")))
            .timeout(millis(options.timeout_ms, Duration::from_secs(30)))
            .connect_timeout(millis(options.connect_timeout_ms, Duration::from_secs(5)));
        if options.data_shards != 0 {
            builder = builder.data_shards(options.data_shards as usize);
        }
        match options.parity_shards {
            INFINICACHE_PARITY_DEFAULT => {}
            r if r >= 0 => builder = builder.parity_shards(r as usize),
            r => {
                return Err(FfiError::invalid(format!(
                    "parity_shards = {r}: use a count >= 0 or INFINICACHE_PARITY_DEFAULT (-1)"
                )));
            }
        }
        // SAFETY: NULL or a NUL-terminated string (caller's promise). Copied:
        // the caller may free it once this returns. An empty one is none.
        if let Some(secret) = unsafe { c_bytes(options.secret) } {
            builder = builder.secret(bytes::Bytes::copy_from_slice(secret));
        }
        // SAFETY: NULL or NUL-terminated strings (caller's promise); copied.
        if let Some(tls) = unsafe { tls_options(&options) }? {
            builder = builder.tls(tls);
        }
        let client = block_on(builder.connect())??;
        *out = Box::into_raw(Box::new(infinicache_client { inner: client }));
        Ok(())
    })
}

/// Releases a client and closes its connections. Passing NULL is allowed and
/// does nothing.
///
/// # Safety
/// `client` must be NULL or a client from `infinicache_client_new` that has
/// not been freed, and no other thread may be using it any more.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn infinicache_client_free(client: *mut infinicache_client) {
    if client.is_null() {
        return;
    }
    // SAFETY: the pointer came from `Box::into_raw` in `infinicache_client_new`.
    let client = unsafe { Box::from_raw(client) };
    // Background tasks of the client hold runtime resources; dropping inside
    // the runtime's context lets them shut down cleanly.
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match runtime() {
        Ok(rt) => {
            let _entered = rt.enter();
            drop(client);
        }
        Err(_) => drop(client),
    }));
}

/// Stores `len` bytes at `data` under the key (`key_len` bytes at `key`,
/// any bytes, not empty), replacing any previous value.
///
/// The data is copied; the caller keeps ownership of `data` and `key`.
/// `data` may be NULL when `len` is 0 (an empty object). On success, if
/// `version_out` is not NULL, stores the version the proxy assigned (every
/// later `infinicache_get` sees this version or a newer one); on failure
/// stores 0 there.
///
/// # Safety
/// `client` must be a live client; `key` must point to `key_len` readable
/// bytes and `data` to `len` readable bytes; `version_out` must be NULL or
/// valid for writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn infinicache_put(
    client: *const infinicache_client,
    key: *const u8,
    key_len: usize,
    data: *const u8,
    len: usize,
    version_out: *mut u64,
) -> *mut infinicache_error {
    guard(|| {
        // SAFETY: NULL or valid for writes (caller's promise).
        let mut version_out = unsafe { version_out.as_mut() };
        if let Some(v) = version_out.as_deref_mut() {
            *v = 0;
        }
        // SAFETY: pointer contracts forwarded to the caller.
        let (client, key, data) = unsafe {
            (
                client_ref(client)?,
                key_slice(key, key_len)?,
                byte_slice(data, len, "data")?,
            )
        };
        let value = bytes::Bytes::copy_from_slice(data);
        let version = block_on(client.put(key, value))??;
        if let Some(v) = version_out {
            *v = version;
        }
        Ok(())
    })
}

/// Fetches the value stored under the key.
///
/// On success sets `*found`: if true, `*out` holds the value (possibly empty),
/// allocated by the library, which the caller must release with
/// `infinicache_bytes_free` (never `free()`). A missing key is not an error:
/// the call succeeds with `*found == false` and an empty `*out`. On failure
/// `*found` is false and `*out` is empty. `*out` is overwritten without being
/// freed first.
///
/// # Safety
/// `client` must be a live client; `key` must point to `key_len` readable
/// bytes; `out` and `found` must be valid for writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn infinicache_get(
    client: *const infinicache_client,
    key: *const u8,
    key_len: usize,
    out: *mut infinicache_bytes,
    found: *mut bool,
) -> *mut infinicache_error {
    guard(|| {
        // SAFETY: NULL or valid for writes (caller's promise).
        let out = unsafe { out.as_mut() }.ok_or_else(|| FfiError::invalid("out is NULL"))?;
        *out = infinicache_bytes::empty();
        // SAFETY: as above.
        let found = unsafe { found.as_mut() }.ok_or_else(|| FfiError::invalid("found is NULL"))?;
        *found = false;
        // SAFETY: pointer contracts forwarded to the caller.
        let (client, key) = unsafe { (client_ref(client)?, key_slice(key, key_len)?) };
        if let Some(value) = block_on(client.get(key))?? {
            *out = infinicache_bytes::from_bytes(value);
            *found = true;
        }
        Ok(())
    })
}

/// Deletes the key. On success, if `existed` is not NULL, stores whether the
/// key existed; deleting a missing key is not an error.
///
/// # Safety
/// `client` must be a live client; `key` must point to `key_len` readable
/// bytes; `existed` must be NULL or valid for writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn infinicache_delete(
    client: *const infinicache_client,
    key: *const u8,
    key_len: usize,
    existed: *mut bool,
) -> *mut infinicache_error {
    guard(|| {
        // SAFETY: NULL or valid for writes (caller's promise).
        let mut existed = unsafe { existed.as_mut() };
        if let Some(e) = existed.as_deref_mut() {
            *e = false;
        }
        // SAFETY: pointer contracts forwarded to the caller.
        let (client, key) = unsafe { (client_ref(client)?, key_slice(key, key_len)?) };
        let was = block_on(client.delete(key))??;
        if let Some(e) = existed {
            *e = was;
        }
        Ok(())
    })
}

/// Stores in `*exists` whether the key has a value (false on failure).
///
/// # Safety
/// `client` must be a live client; `key` must point to `key_len` readable
/// bytes; `exists` must be valid for writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn infinicache_exists(
    client: *const infinicache_client,
    key: *const u8,
    key_len: usize,
    exists: *mut bool,
) -> *mut infinicache_error {
    guard(|| {
        // SAFETY: NULL or valid for writes (caller's promise).
        let exists =
            unsafe { exists.as_mut() }.ok_or_else(|| FfiError::invalid("exists is NULL"))?;
        *exists = false;
        // SAFETY: pointer contracts forwarded to the caller.
        let (client, key) = unsafe { (client_ref(client)?, key_slice(key, key_len)?) };
        *exists = block_on(client.exists(key))??;
        Ok(())
    })
}
