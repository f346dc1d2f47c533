//! The servers a benchmark measures, behind one interface: PUT, GET and
//! DELETE of whole values.
//!
//! * native: `infinicache::Client` on the proxy's client port. One client
//!   (one multiplexed connection per proxy) serves every worker, which is how
//!   applications use it.
//! * native-tls: the same client with [`TlsOptions`], trusting a given CA
//!   (the test CA of the TLS proxy the tool starts) or the system's roots.
//! * resp and redis: the `redis` crate's multiplexed async connection, on
//!   the proxy's RESP port or on a redis-server. By default each worker opens
//!   its own connection, as `redis-benchmark -c N` opens N; with
//!   [`Connections::Shared`] all workers pipeline on one.

use std::time::Duration;

use bytes::Bytes;
use std::path::Path;

use infinicache::Client;
use infinicache::client::TlsOptions;
use redis::AsyncConnectionConfig;
use redis::aio::MultiplexedConnection;

use super::options::{Connections, Settings, TargetKind};

/// A connected target.
pub struct Target {
    pub kind: TargetKind,
    /// The address measured.
    pub addr: String,
    inner: Inner,
}

enum Inner {
    Native(Client),
    Redis(Box<RedisTarget>),
}

struct RedisTarget {
    client: redis::Client,
    config: AsyncConnectionConfig,
    shared: Option<MultiplexedConnection>,
}

/// One worker's handle on a target.
pub enum Handle {
    Native(Client),
    Redis(MultiplexedConnection),
}

/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

impl Target {
    /// Connects to `addr` as `kind`. `tls_ca`: the CA certificates (PEM)
    /// the native-tls target trusts (`None`: the system's); unused by the
    /// others.
    pub async fn connect(
        kind: TargetKind,
        addr: &str,
        tls_ca: Option<&Path>,
        settings: &Settings,
    ) -> Result<Target, String> {
        let inner = match kind {
            TargetKind::Native | TargetKind::NativeTls => {
                let mut builder = Client::builder()
                    .proxy(addr)
                    .data_shards(settings.data_shards)
                    .parity_shards(settings.parity_shards)
                    .timeout(settings.op_timeout)
                    .connect_timeout(CONNECT_TIMEOUT)
                    .name("infinicache-bench");
                if kind == TargetKind::NativeTls {
                    let mut tls = TlsOptions::new();
                    if let Some(ca) = tls_ca {
                        tls = tls.ca_file(ca);
                    }
                    builder = builder.tls(tls);
                }
                let client = builder.connect().await.map_err(|err| {
                    format!("cannot connect to the proxy at {addr} ({kind}): {err}")
                })?;
                Inner::Native(client)
            }
            TargetKind::Resp | TargetKind::Redis => {
                let client = redis::Client::open(format!("redis://{addr}/"))
                    .map_err(|err| format!("bad {kind} address {addr:?}: {err}"))?;
                // The crate's default response timeout (500 ms) is far too
                // short for 100 MiB values at concurrency 16.
                let config = AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(CONNECT_TIMEOUT))
                    .set_response_timeout(Some(settings.op_timeout));
                let shared = match settings.connections {
                    Connections::Shared => Some(open(&client, &config, kind, addr).await?),
                    Connections::PerWorker => None,
                };
                Inner::Redis(Box::new(RedisTarget {
                    client,
                    config,
                    shared,
                }))
            }
        };
        let target = Target {
            kind,
            addr: addr.to_string(),
            inner,
        };
        // Fail now, not in the first cell, if nothing (or no Redis) listens.
        target.ping().await?;
        Ok(target)
    }

    /// A handle for one worker.
    pub async fn handle(&self) -> Result<Handle, String> {
        match &self.inner {
            Inner::Native(client) => Ok(Handle::Native(client.clone())),
            Inner::Redis(redis) => match &redis.shared {
                Some(conn) => Ok(Handle::Redis(conn.clone())),
                None => Ok(Handle::Redis(
                    open(&redis.client, &redis.config, self.kind, &self.addr).await?,
                )),
            },
        }
    }

    async fn ping(&self) -> Result<(), String> {
        let mut handle = self.handle().await?;
        if let Handle::Redis(conn) = &mut handle {
            let reply: String = redis::cmd("PING")
                .query_async(conn)
                .await
                .map_err(|err| format!("{} at {}: PING failed: {err}", self.kind, self.addr))?;
            if reply != "PONG" {
                return Err(format!(
                    "{} at {}: PING answered {reply:?}",
                    self.kind, self.addr
                ));
            }
        }
        Ok(())
    }
}

async fn open(
    client: &redis::Client,
    config: &AsyncConnectionConfig,
    kind: TargetKind,
    addr: &str,
) -> Result<MultiplexedConnection, String> {
    client
        .get_multiplexed_async_connection_with_config(config)
        .await
        .map_err(|err| format!("cannot connect to {kind} at {addr}: {err}"))
}

impl Handle {
    /// Stores `value` under `key`.
    pub async fn put(&mut self, key: &str, value: &Bytes) -> Result<(), String> {
        match self {
            Handle::Native(client) => {
                let version = client
                    .put(key, value.clone())
                    .await
                    .map_err(|err| format!("PUT {key} ({} bytes): {err}", value.len()))?;
                if version == 0 {
                    return Err(format!("PUT {key}: version 0"));
                }
                Ok(())
            }
            Handle::Redis(conn) => {
                let reply: String = redis::cmd("SET")
                    .arg(key)
                    .arg(value.as_ref())
                    .query_async(conn)
                    .await
                    .map_err(|err| format!("SET {key} ({} bytes): {err}", value.len()))?;
                if reply != "OK" {
                    return Err(format!("SET {key}: answered {reply:?}"));
                }
                Ok(())
            }
        }
    }

    /// Fetches `key`'s value; `None` if there is none.
    pub async fn get(&mut self, key: &str) -> Result<Option<Bytes>, String> {
        match self {
            Handle::Native(client) => client
                .get(key)
                .await
                .map_err(|err| format!("GET {key}: {err}")),
            Handle::Redis(conn) => redis::cmd("GET")
                .arg(key)
                .query_async::<Option<Bytes>>(conn)
                .await
                .map_err(|err| format!("GET {key}: {err}")),
        }
    }

    /// Deletes `key` (whether or not it exists).
    pub async fn delete(&mut self, key: &str) -> Result<(), String> {
        match self {
            Handle::Native(client) => client
                .delete(key)
                .await
                .map(drop)
                .map_err(|err| format!("DELETE {key}: {err}")),
            Handle::Redis(conn) => redis::cmd("DEL")
                .arg(key)
                .query_async::<i64>(conn)
                .await
                .map(drop)
                .map_err(|err| format!("DEL {key}: {err}")),
        }
    }
}
