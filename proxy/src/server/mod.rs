//! The proxy's listeners and start-up.
//!
//! * the **client listener** ([`client_conn`]) serves applications;
//! * the **node listener** ([`node_conn`]) accepts cache nodes dialing in
//!   after being invoked;
//! * the **RESP listener** ([`crate::resp`]) serves Redis clients, through
//!   the same object operations ([`objects`]) as the client listener;
//! * with the local platform, the embedded Lambda platform runs alongside
//!   and the invoker points at it.

pub mod admin;
pub mod client_conn;
pub mod commands;
mod handshake;
pub mod node_conn;
pub mod objects;

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
    #[error(
        "cannot find the node binary {path}: build it with `cargo build --release -p infinicache-node` or set local.node_binary"
    )]
    NodeBinary { path: PathBuf },
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
    resp_addr: Option<SocketAddr>,
    cluster: Arc<Cluster>,
    platform: Option<LocalPlatform>,
    tasks: Vec<JoinHandle<()>>,
}

impl Proxy {
    /// Binds the listeners, starts the local platform if configured, and
    /// begins serving.
    pub async fn start(config: Config) -> Result<Proxy, StartError> {
        config.validate()?;
        let params = config.default_params()?;
        let (client_listener, client_addr) = bind(config.client_listen).await?;
        let (node_listener, node_addr) = bind(config.node_listen).await?;
        let admin_listener = match config.admin_listen {
            Some(addr) => Some(bind(addr).await?),
            None => None,
        };
        let resp_listener = match config.resp_listen {
            Some(addr) => bind_resp(addr).await?,
            None => None,
        };
        let resp_password = config
            .resp_password
            .as_ref()
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
        tasks.push(accept_loop(
            client_listener,
            cluster.clone(),
            client_conn::serve,
        ));
        tasks.push(accept_loop(
            node_listener,
            cluster.clone(),
            node_conn::serve,
        ));
        let admin_addr = admin_listener.map(|(listener, addr)| {
            let app = admin::routes(cluster.clone());
            tasks.push(tokio::spawn(async move {
                if let Err(err) = axum::serve(listener, app).await {
                    tracing::error!(%err, "admin listener failed");
                }
            }));
            addr
        });
        let resp_addr = resp_listener.map(|(listener, addr)| {
            let frontend = crate::resp::Frontend::new(cluster.clone(), resp_password, addr.port());
            tasks.push(crate::resp::server::spawn(listener, frontend));
            addr
        });
        Ok(Proxy {
            client_addr,
            node_addr,
            admin_addr,
            resp_addr,
            cluster,
            platform,
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

    /// Stops accepting connections and shuts the local platform down
    /// (killing its environments).
    pub async fn shutdown(self) {
        self.cluster.begin_shutdown();
        for task in &self.tasks {
            task.abort();
        }
        if let Some(platform) = self.platform {
            platform.shutdown().await;
        }
    }
}

async fn bind(addr: SocketAddr) -> Result<(TcpListener, SocketAddr), StartError> {
    let bind_error = |source| StartError::Bind { addr, source };
    let listener = TcpListener::bind(addr).await.map_err(bind_error)?;
    let bound = listener.local_addr().map_err(bind_error)?;
    Ok((listener, bound))
}

/// Binds the RESP listener. The default address is shared by every proxy on
/// a machine that leaves it alone (test suites start several at once): if
/// it is taken, the proxy runs without the RESP frontend and says so, rather
/// than refusing to start. Any address chosen explicitly must be free.
async fn bind_resp(addr: SocketAddr) -> Result<Option<(TcpListener, SocketAddr)>, StartError> {
    match bind(addr).await {
        Ok(bound) => Ok(Some(bound)),
        Err(StartError::Bind { source, .. })
            if addr == crate::config::DEFAULT_RESP_LISTEN
                && source.kind() == std::io::ErrorKind::AddrInUse =>
        {
            tracing::warn!(
                %addr,
                "the RESP frontend's default address is in use; running without it (set resp_listen, or --resp-listen, to serve Redis clients)"
            );
            Ok(None)
        }
        Err(err) => Err(err),
    }
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
