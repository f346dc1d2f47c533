//! The proxy's listeners and start-up.
//!
//! * the **client listener** ([`client_conn`]) serves applications;
//! * the **node listener** ([`node_conn`]) accepts cache nodes dialing in
//!   after being invoked;
//! * the **RESP listener** ([`crate::resp`]) serves Redis clients, through
//!   the same object operations ([`objects`]) as the client listener;
//! * the **admin listener** ([`admin`]) serves `/status` and Prometheus's
//!   `/metrics`, which may also have a listener of its own
//!   ([`crate::metrics`]);
//! * with the local platform, the embedded Lambda platform runs alongside
//!   and the invoker points at it.

pub mod admin;
pub mod client_conn;
pub mod commands;
mod handshake;
pub mod limits;
pub mod node_conn;
pub mod objects;
pub mod transport;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use thiserror::Error;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::cluster::Cluster;
use crate::cluster::durable::Durable;
use crate::config::{Config, ConfigError, PlatformKind};
use crate::invoker::Invoker;
use crate::platform::{FunctionConfig, LocalPlatform, PlatformConfig, PlatformError};

/// Why the proxy could not start.
#[derive(Debug, Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    /// The RESP frontend's address is taken (often by a Redis server, or a
    /// second proxy): the proxy refuses to start rather than run without a
    /// frontend its users expect.
    #[error(
        "cannot listen for Redis clients on {addr}: {source} (choose another address with --resp-listen or resp_listen, or turn the RESP frontend off with --no-resp)"
    )]
    RespBind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(
        "cannot find the node binary {path}: build it with `cargo build --release -p infinicache-node` or set local.node_binary"
    )]
    NodeBinary { path: PathBuf },
    #[error(transparent)]
    Tls(#[from] transport::TlsError),
    #[error("local Lambda platform: {0}")]
    Platform(#[from] PlatformError),
    #[error("object store: {0}")]
    Cos(#[from] crate::cos::CosError),
}

/// A running proxy.
pub struct Proxy {
    client_addr: SocketAddr,
    node_addr: SocketAddr,
    admin_addr: Option<SocketAddr>,
    metrics_addr: Option<SocketAddr>,
    resp_addr: Option<SocketAddr>,
    cluster: Arc<Cluster>,
    platform: Option<LocalPlatform>,
    /// The client listeners' accept loops.
    frontends: Vec<JoinHandle<()>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Proxy {
    /// Binds the listeners, starts the local platform if configured, and
    /// begins serving.
    pub async fn start(config: Config) -> Result<Proxy, StartError> {
        config.validate()?;
        let params = config.default_params()?;
        let transport = transport::ClientTransport::new(config.tls.as_ref())?;
        if transport.is_tls() {
            tracing::info!("TLS on the client listeners");
        }
        let (client_listener, client_addr) = bind(config.client_listen).await?;
        let (node_listener, node_addr) = bind(config.node_listen).await?;
        let admin_listener = match config.admin_listen {
            Some(addr) => Some(bind(addr).await?),
            None => None,
        };
        let metrics_listener = match config.metrics_listen {
            Some(addr) => Some(bind(addr).await?),
            None => None,
        };
        let resp_listener = match config.resp_listen {
            Some(addr) => Some(bind(addr).await.map_err(|err| match err {
                StartError::Bind { addr, source } => StartError::RespBind { addr, source },
                other => other,
            })?),
            None => None,
        };
        let resp_password = config
            .resp_password
            .as_ref()
            .or(config.secret.as_ref())
            .map(|password| password.expose().to_string());
        let advertised = config
            .advertise_addr
            .clone()
            .unwrap_or_else(|| node_addr.to_string());

        let (invoker, platform) = match config.platform {
            PlatformKind::Local => {
                let platform = start_local_platform(&config).await?;
                (
                    Invoker::local(
                        &platform.endpoint_url(),
                        config.region.as_deref().unwrap_or("us-east-1"),
                    ),
                    Some(platform),
                )
            }
            PlatformKind::Aws => (
                Invoker::aws(config.region.as_deref(), config.endpoint_url.as_deref()).await,
                None,
            ),
        };

        let durable = crate::cos::Cos::from_settings(&config.cos, &config.data_dir)
            .await?
            .map(|cos| {
                tracing::info!(store = %cos.describe(), mode = ?config.cos.write_mode, "durable layer on");
                Durable::new(
                    cos,
                    config.cos.write_mode,
                    config.cos.write_back_buffer_mb.saturating_mul(1024 * 1024),
                )
            });
        let cluster = Cluster::new(Arc::new(config), invoker, advertised, params, durable);
        let recovered = cluster.recover().await?;
        if recovered > 0 {
            tracing::info!(objects = recovered, "recovered the object manifest");
        }
        // (Also removes the expiry entries of objects that are gone.)
        let expiring = objects::recover_expiries(&cluster).await?;
        if expiring > 0 {
            tracing::info!(objects = expiring, "recovered object expiries");
        }
        let mut tasks = cluster.spawn_maintenance();
        tasks.push(objects::spawn_expiry_sweep(&cluster));
        // The client listeners stop first at shutdown (the rest keeps
        // serving the requests being drained).
        let client_transport = transport.clone();
        let mut frontends = vec![accept_loop(
            client_listener,
            cluster.clone(),
            move |cluster, stream, peer| {
                client_conn::serve(cluster, client_transport.clone(), stream, peer)
            },
        )];
        tasks.push(accept_loop(
            node_listener,
            cluster.clone(),
            node_conn::serve,
        ));
        let exporter = crate::metrics::Exporter::new(
            cluster.clone(),
            platform
                .as_ref()
                .map(|platform| Arc::new(platform.stats_reader()) as _),
        );
        let admin_addr = admin_listener.map(|(listener, addr)| {
            let app = admin::routes(cluster.clone(), exporter.clone());
            tasks.push(serve_http(listener, app, "admin"));
            addr
        });
        let metrics_addr = metrics_listener.map(|(listener, addr)| {
            tasks.push(serve_http(
                listener,
                crate::metrics::routes(exporter),
                "metrics",
            ));
            addr
        });
        let resp_addr = resp_listener.map(|(listener, addr)| {
            let frontend = crate::resp::Frontend::new(cluster.clone(), resp_password, addr.port());
            frontends.push(crate::resp::server::spawn(listener, frontend, transport));
            addr
        });
        Ok(Proxy {
            client_addr,
            node_addr,
            admin_addr,
            metrics_addr,
            resp_addr,
            cluster,
            platform,
            frontends,
            tasks,
        })
    }

    /// Where clients connect.
    pub fn client_addr(&self) -> SocketAddr {
        self.client_addr
    }

    /// Where nodes dial in.
    pub fn node_addr(&self) -> SocketAddr {
        self.node_addr
    }

    /// The admin/status API, if enabled.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin_addr
    }

    /// Prometheus's own listener (`GET /metrics`), if one is set.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// Where Redis clients connect, if the RESP frontend is on.
    pub fn resp_addr(&self) -> Option<SocketAddr> {
        self.resp_addr
    }

    /// The embedded local platform, if this proxy runs one.
    pub fn platform(&self) -> Option<&LocalPlatform> {
        self.platform.as_ref()
    }

    /// The node pool and metadata.
    pub fn cluster(&self) -> &Arc<Cluster> {
        &self.cluster
    }

    /// Shuts down without losing an acknowledged write: stops accepting
    /// clients; refuses new requests on open connections (`Unavailable`)
    /// while the ones in flight finish (waiting up to `drain` for them, and
    /// as long again for the object store); flushes the write-back buffer
    /// and the manifest to the object store; tells the nodes to return; then
    /// stops everything else and shuts the local platform down (killing its
    /// environments).
    pub async fn shutdown(self, drain: std::time::Duration) {
        for task in &self.frontends {
            task.abort();
        }
        let cluster = &self.cluster;
        if tokio::time::timeout(drain, cluster.drain_requests())
            .await
            .is_err()
        {
            tracing::warn!(?drain, "client requests still running at shutdown");
        }
        if let Some(durable) = cluster.durable() {
            let buffered = durable.buffered_bytes();
            if tokio::time::timeout(drain, durable.flush()).await.is_err() {
                tracing::warn!(
                    ?drain,
                    left = durable.buffered_bytes(),
                    "the write-back buffer did not drain in time"
                );
            } else if buffered > 0 {
                tracing::info!(bytes = buffered, "write-back buffer flushed");
            }
        }
        cluster.begin_shutdown();
        cluster.dismiss_nodes();
        for task in &self.tasks {
            task.abort();
        }
        if let Some(platform) = self.platform {
            platform.shutdown().await;
        }
    }
}

/// Serves an HTTP API (admin, metrics) until the task is aborted.
fn serve_http(listener: TcpListener, app: axum::Router, name: &'static str) -> JoinHandle<()> {
    tokio::spawn(async move {
        if let Err(err) = axum::serve(listener, app).await {
            tracing::error!(%err, "{name} listener failed");
        }
    })
}

async fn bind(addr: SocketAddr) -> Result<(TcpListener, SocketAddr), StartError> {
    let bind_error = |source| StartError::Bind { addr, source };
    let listener = TcpListener::bind(addr).await.map_err(bind_error)?;
    let bound = listener.local_addr().map_err(bind_error)?;
    Ok((listener, bound))
}

/// Accepts connections forever, serving each in its own task. Accept errors
/// (for example running out of file descriptors) are logged and retried
/// after a pause instead of ending the listener.
fn accept_loop<F, Fut>(listener: TcpListener, cluster: Arc<Cluster>, serve: F) -> JoinHandle<()>
where
    F: Fn(Arc<Cluster>, tokio::net::TcpStream, SocketAddr) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((stream, peer)) => {
                    tokio::spawn(serve(cluster.clone(), stream, peer));
                }
                Err(err) => {
                    tracing::warn!(error = %err, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            }
        }
    })
}

/// Starts the embedded Lambda platform with one function per node.
async fn start_local_platform(config: &Config) -> Result<LocalPlatform, StartError> {
    let executable = match &config.local.node_binary {
        Some(path) => path.clone(),
        None => std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(|dir| dir.join("infinicache-node")))
            .unwrap_or_else(|| PathBuf::from("infinicache-node")),
    };
    if !executable.is_file() {
        return Err(StartError::NodeBinary { path: executable });
    }
    let platform_config = PlatformConfig {
        listen: config.local.listen,
        billing_tick: config.billing_tick,
        freeze: config.local.freeze,
        reclaim: config.local.reclaim.clone(),
        max_environments_per_function: config.local.max_environments_per_function,
    };
    let functions = (0..config.pool_size)
        .map(|i| {
            let mut function = FunctionConfig::new(config.function_name(i), executable.clone());
            function.memory_mb = config.node_memory_mb;
            function.timeout = config.function_timeout;
            function.environment = vec![
                (
                    "INFINICACHE_RESERVED_MB".into(),
                    config.node_reserved_mb.to_string(),
                ),
                (
                    "INFINICACHE_LOG".into(),
                    std::env::var("INFINICACHE_NODE_LOG").unwrap_or_else(|_| "warn".into()),
                ),
            ];
            function
        })
        .collect();
    Ok(LocalPlatform::start(platform_config, functions).await?)
}
