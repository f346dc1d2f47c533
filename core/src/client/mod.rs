//! The async client.
//!
//! A PUT erasure-codes the object and sends its `k + r` chunks to the proxy
//! that owns the key (consistent hashing over the configured proxies); the
//! proxy fans them out to `k + r` distinct cache nodes. A GET asks for the
//! whole object, receives chunks in the order nodes answer, and decodes as
//! soon as any `k` valid ones are in: a slow or frozen node cannot hold the
//! request up ("first-d").

mod connection;
mod error;
mod get;
mod put;
mod ring;
mod tls;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

pub use error::{Error, ErrorKind};
pub use ring::Ring;
pub use tls::TlsOptions;

use self::connection::{LinkSettings, ProxyLink, Session};
use crate::codec::{CodecParams, ObjectCodec};
use crate::protocol::{ClientReply, ClientRequest, Key};

/// Objects at least this large are encoded and decoded on the blocking pool,
/// so codec work never stalls other tasks on the runtime.
const OFFLOAD_THRESHOLD: usize = 256 * 1024;

/// Configures and connects a [`Client`].
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    proxies: Vec<String>,
    params: Option<CodecParams>,
    data_shards: Option<usize>,
    parity_shards: Option<usize>,
    timeout: Duration,
    connect_timeout: Duration,
    name: String,
    secret: Option<Redacted>,
    tls: Option<TlsOptions>,
}

/// A credential kept out of `Debug` output (and so out of logs).
#[derive(Clone)]
struct Redacted(Bytes);

impl std::fmt::Debug for Redacted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl Default for ClientBuilder {
    fn default() -> Self {
        ClientBuilder {
            proxies: Vec::new(),
            params: None,
            data_shards: None,
            parity_shards: None,
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
            name: format!("infinicache-rs/{}", env!("CARGO_PKG_VERSION")),
            tls: None,
            secret: None,
        }
    }
}

impl ClientBuilder {
    /// Adds a proxy address (`host:port`).
    pub fn proxy(mut self, addr: impl Into<String>) -> Self {
        self.proxies.push(addr.into());
        self
    }

    /// Adds several proxy addresses.
    pub fn proxies<I, S>(mut self, addrs: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.proxies.extend(addrs.into_iter().map(Into::into));
        self
    }

    /// Data shards per object (k). Default: the proxy's suggestion (10).
    pub fn data_shards(mut self, k: usize) -> Self {
        self.data_shards = Some(k);
        self
    }

    /// Parity shards per object (r). Default: the proxy's suggestion (2).
    pub fn parity_shards(mut self, r: usize) -> Self {
        self.parity_shards = Some(r);
        self
    }

    /// Both erasure-coding parameters at once.
    pub fn codec(mut self, params: CodecParams) -> Self {
        self.params = Some(params);
        self
    }

    /// Time limit for one operation. Default: 30 s.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Time limit for establishing a connection. Default: 5 s.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The shared secret of proxies that require one (their `secret`
    /// setting). An empty secret means none.
    pub fn secret(mut self, secret: impl Into<Bytes>) -> Self {
        let secret: Bytes = secret.into();
        self.secret = (!secret.is_empty()).then_some(Redacted(secret));
        self
    }

    /// Connects to the proxies over TLS (their client listeners must have a
    /// certificate: `--tls-cert`/`--tls-key`).
    pub fn tls(mut self, tls: TlsOptions) -> Self {
        self.tls = Some(tls);
        self
    }

    /// The name this client gives in its handshake (shown in proxy logs).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Validates the settings and connects to the proxies.
    ///
    /// Fails if no proxy is reachable. Proxies that are down are retried on
    /// the next operation routed to them.
    pub async fn connect(self) -> Result<Client, Error> {
        if self.proxies.is_empty() {
            return Err(Error::InvalidArgument("no proxy address given".into()));
        }
        if self.timeout.is_zero() || self.connect_timeout.is_zero() {
            return Err(Error::InvalidArgument(
                "timeouts must be greater than zero".into(),
            ));
        }
        let settings = Arc::new(LinkSettings {
            name: self.name.clone(),
            secret: self.secret.as_ref().map(|secret| secret.0.clone()),
            connect_timeout: self.connect_timeout,
            tls: self.tls.as_ref().map(TlsOptions::connector).transpose()?,
        });
        let links: Vec<ProxyLink> = self
            .proxies
            .iter()
            .map(|addr| ProxyLink::new(addr.clone(), settings.clone()))
            .collect();
        let mut first: Option<Session> = None;
        let mut last_err = None;
        for link in &links {
            match link.session().await {
                Ok(session) => {
                    first.get_or_insert(session);
                }
                Err(err) => {
                    tracing::warn!(proxy = link.addr(), error = %err, "proxy unreachable");
                    last_err = Some(err);
                }
            }
        }
        let Some(session) = first else {
            return Err(last_err.unwrap_or_else(|| Error::Unavailable("no proxy reachable".into())));
        };
        let params = match (self.params, self.data_shards, self.parity_shards) {
            (Some(params), None, None) => params,
            (Some(_), _, _) => {
                return Err(Error::InvalidArgument(
                    "set either codec() or data_shards()/parity_shards(), not both".into(),
                ));
            }
            (None, k, r) => CodecParams::new(
                k.unwrap_or(session.default_params.data_shards()),
                r.unwrap_or(session.default_params.parity_shards()),
            )?,
        };
        Ok(Client {
            inner: Arc::new(Inner {
                ring: Ring::new(&self.proxies),
                links,
                codec: Arc::new(ObjectCodec::new(params)),
                timeout: self.timeout,
            }),
        })
    }
}

struct Inner {
    ring: Ring,
    links: Vec<ProxyLink>,
    codec: Arc<ObjectCodec>,
    timeout: Duration,
}

impl Inner {
    /// The codec for objects written with `params` (which may differ from
    /// this client's own: another client may have written the object).
    fn codec_for(&self, params: CodecParams) -> Arc<ObjectCodec> {
        if params == self.codec.params() {
            self.codec.clone()
        } else {
            Arc::new(ObjectCodec::new(params))
        }
    }
}

/// An InfiniCache client. Cheap to clone; clones share connections.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field(
                "proxies",
                &self
                    .inner
                    .links
                    .iter()
                    .map(ProxyLink::addr)
                    .collect::<Vec<_>>(),
            )
            .field("params", &self.inner.codec.params())
            .finish()
    }
}

impl Client {
    /// Starts configuring a client.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// The erasure-coding parameters used for PUTs.
    pub fn params(&self) -> CodecParams {
        self.inner.codec.params()
    }

    /// Stores `value` under `key`, replacing any previous value. Returns the
    /// version the proxy assigned; once this returns, every GET sees this
    /// version or a newer one.
    pub async fn put<K, V>(&self, key: K, value: V) -> Result<u64, Error>
    where
        K: TryInto<Key>,
        K::Error: Into<Error>,
        V: Into<Bytes>,
    {
        let key = key.try_into().map_err(Into::into)?;
        let value = value.into();
        self.with_timeout(put::put(self, key, value)).await
    }

    /// Fetches the value under `key`; `Ok(None)` if there is none.
    pub async fn get<K>(&self, key: K) -> Result<Option<Bytes>, Error>
    where
        K: TryInto<Key>,
        K::Error: Into<Error>,
    {
        let key = key.try_into().map_err(Into::into)?;
        self.with_timeout(get::get(self, key)).await
    }

    /// Deletes `key`; returns whether it existed.
    pub async fn delete<K>(&self, key: K) -> Result<bool, Error>
    where
        K: TryInto<Key>,
        K::Error: Into<Error>,
    {
        let key = key.try_into().map_err(Into::into)?;
        self.flag(
            key,
            |key| ClientRequest::Delete { key },
            "Delete",
            |reply| match reply {
                ClientReply::Deleted { existed } => Some(*existed),
                _ => None,
            },
        )
        .await
    }

    /// Whether `key` exists.
    pub async fn exists<K>(&self, key: K) -> Result<bool, Error>
    where
        K: TryInto<Key>,
        K::Error: Into<Error>,
    {
        let key = key.try_into().map_err(Into::into)?;
        self.flag(
            key,
            |key| ClientRequest::Exists { key },
            "Exists",
            |reply| match reply {
                ClientReply::Exists { exists } => Some(*exists),
                _ => None,
            },
        )
        .await
    }

    /// Sends a single-key request answered by one yes/no reply.
    async fn flag(
        &self,
        key: Key,
        request: impl FnOnce(Key) -> ClientRequest,
        name: &str,
        answer: impl FnOnce(&ClientReply) -> Option<bool>,
    ) -> Result<bool, Error> {
        self.with_timeout(async {
            let session = self.session_for(&key).await?;
            let reply = session.mux.call(&request(key)).await?;
            answer(&reply).ok_or_else(|| unexpected(reply, name))
        })
        .await
    }

    async fn with_timeout<T>(
        &self,
        op: impl Future<Output = Result<T, Error>>,
    ) -> Result<T, Error> {
        tokio::time::timeout(self.inner.timeout, op)
            .await
            .unwrap_or(Err(Error::Timeout(self.inner.timeout)))
    }

    async fn session_for(&self, key: &Key) -> Result<Session, Error> {
        let index = self
            .inner
            .ring
            .route(key.as_bytes())
            .ok_or_else(|| Error::InvalidArgument("no proxy configured".into()))?;
        self.inner.links[index].session().await
    }
}

/// A reply that does not belong to the request it answers.
fn unexpected(reply: ClientReply, request: &str) -> Error {
    match reply {
        ClientReply::Error(err) => Error::Server(err),
        other => Error::Protocol(format!("unexpected reply to {request}: {other:?}")),
    }
}

/// Runs CPU-heavy codec work off the async runtime when the object is large.
async fn offload<T: Send + 'static>(
    size: usize,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Error> {
    if size < OFFLOAD_THRESHOLD {
        return Ok(work());
    }
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|err| Error::Protocol(format!("codec task failed: {err}")))
}
