//! Node.js binding of the InfiniCache client (npm package `infinicache`).
//!
//! This crate exposes a thin native class, `NativeClient`, over
//! [`infinicache::Client`]. The public JavaScript API (`Client`, the error
//! classes, argument checks) lives in `index.js`, which wraps these calls.
//!
//! Conventions shared with `index.js`:
//! * every error this crate raises has a message of the form
//!   `[CODE] description`, where `CODE` is one of `INVALID_ARGUMENT`,
//!   `TOO_LARGE`, `UNAVAILABLE`, `TIMEOUT`, `PROTOCOL`, `UNAUTHORIZED`,
//!   `SERVER` (from [`infinicache::client::ErrorKind`]); `index.js` turns it
//!   into the matching `Error` subclass with a `code` property;
//! * keys and values arrive as a `string` or a `Buffer` (`index.js` turns a
//!   plain `Uint8Array` into a `Buffer` view without copying). A value is
//!   copied exactly once, into [`Bytes`]; a fetched value is handed to
//!   JavaScript as an external `Buffer` over the decoded bytes, without a copy.

#![deny(clippy::all)]

use std::time::Duration;

use bytes::Bytes;
use infinicache::client::{ErrorKind, TlsOptions};
use infinicache::{Client, CodecParams, Key};
use napi::bindgen_prelude::{Buffer, BufferSlice, Either, PromiseRaw};
use napi::{Env, Status};
use napi_derive::napi;
use parking_lot::RwLock;

/// The stable code `index.js` exposes as `error.code`.
fn code(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::InvalidArgument => "INVALID_ARGUMENT",
        ErrorKind::TooLarge => "TOO_LARGE",
        ErrorKind::Unavailable => "UNAVAILABLE",
        ErrorKind::Timeout => "TIMEOUT",
        ErrorKind::Protocol => "PROTOCOL",
        ErrorKind::Unauthorized => "UNAUTHORIZED",
        ErrorKind::Server => "SERVER",
    }
}

/// A client error as a JavaScript exception: `[CODE] message`.
fn to_js(err: infinicache::Error) -> napi::Error {
    napi::Error::new(
        Status::GenericFailure,
        format!("[{}] {err}", code(err.kind())),
    )
}

fn invalid(reason: impl std::fmt::Display) -> napi::Error {
    to_js(infinicache::Error::InvalidArgument(reason.to_string()))
}

/// Options of `NativeClient.connect`; `index.js` has checked their types.
#[napi(object)]
pub struct NativeOptions {
    /// Proxy addresses, `host:port`.
    pub addresses: Vec<String>,
    pub data_shards: Option<u32>,
    pub parity_shards: Option<u32>,
    pub timeout_ms: Option<f64>,
    pub connect_timeout_ms: Option<f64>,
    /// The proxies' shared secret (`index.js` passes a string as its UTF-8
    /// bytes); empty means none.
    pub secret: Option<Buffer>,
    /// TLS, verified against the system's trust store unless `tls_ca_file`
    /// is given; also on when either TLS string is given.
    pub tls: Option<bool>,
    /// A PEM file of CA certificates to trust instead of the system's.
    pub tls_ca_file: Option<String>,
    /// The name the proxies' certificates must carry (and the SNI sent).
    pub tls_server_name: Option<String>,
}

/// The TLS settings of `options`: `None` (plain TCP) unless `tls` is true or
/// a TLS string is given. The CA file is read, and the name checked, when
/// the client connects.
fn tls_options(
    tls: Option<bool>,
    ca_file: Option<String>,
    server_name: Option<String>,
) -> napi::Result<Option<TlsOptions>> {
    if tls != Some(true) && ca_file.is_none() && server_name.is_none() {
        return Ok(None);
    }
    let mut options = TlsOptions::new();
    if let Some(path) = ca_file {
        if path.is_empty() {
            return Err(invalid(
                "tlsCaFile is empty (unset: the system's trust store)",
            ));
        }
        options = options.ca_file(path);
    }
    if let Some(name) = server_name {
        options = options.server_name(name);
    }
    Ok(Some(options))
}

fn duration(name: &str, ms: f64) -> napi::Result<Duration> {
    if !(ms.is_finite() && ms > 0.0) {
        return Err(invalid(format!(
            "{name} must be a positive number of milliseconds, got {ms}"
        )));
    }
    Duration::try_from_secs_f64(ms / 1000.0).map_err(|err| invalid(format!("{name}: {err}")))
}

/// A key as the client takes it: the UTF-8 bytes of a string, or the bytes
/// of a buffer.
fn key(key: Either<String, BufferSlice<'_>>) -> napi::Result<Key> {
    let key = match key {
        Either::A(s) => Key::try_from(s),
        Either::B(b) => Key::try_from(&b[..]),
    };
    key.map_err(|err| to_js(err.into()))
}

/// A connected InfiniCache client. Only `NativeClient.connect` creates one.
#[napi]
pub struct NativeClient {
    /// `None` once closed.
    client: RwLock<Option<Client>>,
}

impl NativeClient {
    fn client(&self) -> napi::Result<Client> {
        self.client.read().clone().ok_or_else(|| {
            to_js(infinicache::Error::Unavailable(
                "the client is closed".into(),
            ))
        })
    }
}

#[napi]
impl NativeClient {
    /// Validates the options and connects to the proxies.
    #[napi]
    pub async fn connect(options: NativeOptions) -> napi::Result<NativeClient> {
        let mut builder = Client::builder().proxies(options.addresses);
        let (k, r) = (options.data_shards, options.parity_shards);
        if k.is_some() || r.is_some() {
            // Reject impossible parameters before connecting, so that a bad
            // configuration is reported as such even when no proxy is up.
            // An unset side takes its smallest valid value here; the real
            // check, with the proxy's defaults, happens in `connect`.
            CodecParams::new(k.map_or(1, |k| k as usize), r.map_or(0, |r| r as usize)).map_err(
                |err| match infinicache::Error::from(err) {
                    infinicache::Error::InvalidArgument(reason) => {
                        invalid(format!("dataShards/parityShards: {reason}"))
                    }
                    other => to_js(other),
                },
            )?;
        }
        if let Some(k) = k {
            builder = builder.data_shards(k as usize);
        }
        if let Some(r) = r {
            builder = builder.parity_shards(r as usize);
        }
        if let Some(ms) = options.timeout_ms {
            builder = builder.timeout(duration("timeoutMs", ms)?);
        }
        if let Some(ms) = options.connect_timeout_ms {
            builder = builder.connect_timeout(duration("connectTimeoutMs", ms)?);
        }
        if let Some(secret) = &options.secret {
            builder = builder.secret(Bytes::copy_from_slice(secret));
        }
        if let Some(tls) = tls_options(options.tls, options.tls_ca_file, options.tls_server_name)? {
            builder = builder.tls(tls);
        }
        builder = builder.name(format!("infinicache-node/{}", env!("CARGO_PKG_VERSION")));
        let client = builder.connect().await.map_err(to_js)?;
        Ok(NativeClient {
            client: RwLock::new(Some(client)),
        })
    }

    /// Erasure-coding parameters used for PUTs: `[dataShards, parityShards]`.
    #[napi]
    pub fn params(&self) -> napi::Result<Vec<u32>> {
        let params = self.client()?.params();
        Ok(vec![
            params.data_shards() as u32,
            params.parity_shards() as u32,
        ])
    }

    /// Stores `value` under `key`; resolves to the version the proxy
    /// assigned (a `number`: exact up to 2^53).
    #[napi(ts_return_type = "Promise<number>")]
    pub fn put<'env>(
        &self,
        env: &'env Env,
        key: Either<String, BufferSlice<'_>>,
        value: Either<String, BufferSlice<'_>>,
    ) -> napi::Result<PromiseRaw<'env, f64>> {
        let client = self.client()?;
        let key = self::key(key)?;
        let value = match value {
            Either::A(s) => Bytes::from(s),
            // The one copy: JavaScript may change or reuse its buffer as soon
            // as this call returns.
            Either::B(b) => Bytes::copy_from_slice(&b),
        };
        env.spawn_future(async move {
            let version = client.put(key, value).await.map_err(to_js)?;
            Ok(version as f64)
        })
    }

    /// Fetches the value under `key`; resolves to `null` if there is none.
    #[napi(ts_return_type = "Promise<Buffer | null>")]
    pub fn get<'env>(
        &self,
        env: &'env Env,
        key: Either<String, BufferSlice<'_>>,
    ) -> napi::Result<PromiseRaw<'env, Option<BufferSlice<'env>>>> {
        let client = self.client()?;
        let key = self::key(key)?;
        env.spawn_future_with_callback(
            async move { client.get(key).await.map_err(to_js) },
            |env, value| value.map(|bytes| external_buffer(env, bytes)).transpose(),
        )
    }

    /// Deletes `key`; resolves to whether it existed.
    #[napi(ts_return_type = "Promise<boolean>")]
    pub fn delete<'env>(
        &self,
        env: &'env Env,
        key: Either<String, BufferSlice<'_>>,
    ) -> napi::Result<PromiseRaw<'env, bool>> {
        let client = self.client()?;
        let key = self::key(key)?;
        env.spawn_future(async move { client.delete(key).await.map_err(to_js) })
    }

    /// Resolves to whether `key` exists.
    #[napi(ts_return_type = "Promise<boolean>")]
    pub fn exists<'env>(
        &self,
        env: &'env Env,
        key: Either<String, BufferSlice<'_>>,
    ) -> napi::Result<PromiseRaw<'env, bool>> {
        let client = self.client()?;
        let key = self::key(key)?;
        env.spawn_future(async move { client.exists(key).await.map_err(to_js) })
    }

    /// Releases this handle's connections once operations in flight are
    /// done; later calls fail with `[UNAVAILABLE]`. Idempotent.
    #[napi]
    pub fn close(&self) {
        self.client.write().take();
    }

    /// Whether `close` was called.
    #[napi(getter)]
    pub fn closed(&self) -> bool {
        self.client.read().is_none()
    }
}

/// A `Buffer` over `bytes` without copying them: JavaScript owns the bytes
/// until its garbage collector releases the buffer.
fn external_buffer(env: &Env, bytes: Bytes) -> napi::Result<BufferSlice<'_>> {
    if bytes.is_empty() {
        // External buffers need a real allocation; an empty one has none.
        return BufferSlice::from_data(env, Vec::new());
    }
    let ptr = bytes.as_ptr().cast_mut();
    let len = bytes.len();
    // SAFETY: `ptr..ptr+len` stays valid while `bytes` lives, and `bytes` is
    // kept as the finalize hint until the JS buffer is collected. The
    // decoded object is not shared with anything else, so JavaScript
    // writing into its buffer cannot affect other readers.
    unsafe { BufferSlice::from_external(env, ptr, len, bytes, |_, bytes| drop(bytes)) }
}
