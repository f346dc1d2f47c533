//! What carries a connection's bytes: plain TCP, or TLS on the client
//! listeners when the proxy has a certificate.
//!
//! Connections are split into a read half and a write half, driven by
//! different tasks. The halves are boxed so the framing and command code
//! is the same for both transports; a plain TCP stream splits without a
//! lock, a TLS stream (one state machine for both directions) through
//! tokio's lock.
//!
//! The TLS handshake runs in the connection's own task, under a timeout,
//! so a client that stalls it holds nothing but its socket. Node
//! connections stay plain TCP: nodes authenticate with their invocation's
//! token, and they dial the proxy from inside its deployment.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;

use crate::config::TlsSettings;

/// How long a client may take to complete the TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The read half of a connection.
pub type ReadHalf = Box<dyn AsyncRead + Send + Unpin>;
/// The write half of a connection.
pub type WriteHalf = Box<dyn AsyncWrite + Send + Unpin>;

/// A connection split into its two directions.
pub struct Halves {
    pub read: ReadHalf,
    pub write: WriteHalf,
}

impl From<TcpStream> for Halves {
    fn from(stream: TcpStream) -> Self {
        // Requests and replies are small and latency-bound.
        let _ = stream.set_nodelay(true);
        let (read, write) = stream.into_split();
        Halves {
            read: Box::new(read),
            write: Box::new(write),
        }
    }
}

/// The certificate or key of the client listeners cannot be used.
#[derive(Debug, Error)]
#[error("TLS {what} {}: {reason}", path.display())]
pub struct TlsError {
    what: &'static str,
    path: PathBuf,
    reason: String,
}

/// How the client listeners (native and RESP) take connections.
#[derive(Clone, Default)]
pub struct ClientTransport {
    tls: Option<TlsAcceptor>,
}

impl ClientTransport {
    /// Plain TCP, or TLS with the certificate chain and key of `settings`.
    pub fn new(settings: Option<&TlsSettings>) -> Result<ClientTransport, TlsError> {
        let Some(settings) = settings else {
            return Ok(ClientTransport::default());
        };
        let certs = load_certs(&settings.cert)?;
        let key = load_key(&settings.key)?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .and_then(|builder| builder.with_no_client_auth().with_single_cert(certs, key))
            .map_err(|err| TlsError {
                what: "key",
                path: settings.key.clone(),
                reason: format!(
                    "cannot be used with the certificate {}: {err}",
                    settings.cert.display()
                ),
            })?;
        Ok(ClientTransport {
            tls: Some(TlsAcceptor::from(Arc::new(config))),
        })
    }

    /// Whether clients must speak TLS.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Opens an accepted connection: the TLS handshake first, if configured.
    /// A client that fails it (plain text on a TLS port, an unknown CA, a
    /// stall) is logged and dropped (`None`).
    pub async fn open(&self, stream: TcpStream, peer: SocketAddr) -> Option<Halves> {
        let Some(acceptor) = &self.tls else {
            return Some(stream.into());
        };
        let _ = stream.set_nodelay(true);
        match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
            Ok(Ok(stream)) => {
                let (read, write) = tokio::io::split(stream);
                Some(Halves {
                    read: Box::new(read),
                    write: Box::new(write),
                })
            }
            Ok(Err(err)) => {
                tracing::debug!(%peer, error = %err, "TLS handshake failed");
                None
            }
            Err(_) => {
                tracing::debug!(%peer, "no TLS handshake within {TLS_HANDSHAKE_TIMEOUT:?}");
                None
            }
        }
    }
}

fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let unusable = |reason: String| TlsError {
        what: "certificate",
        path: path.to_path_buf(),
        reason,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|err| unusable(err.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| unusable(err.to_string()))?;
    if certs.is_empty() {
        return Err(unusable("no PEM certificate in it".into()));
    }
    Ok(certs)
}

fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|err| TlsError {
        what: "key",
        path: path.to_path_buf(),
        reason: err.to_string(),
    })
}
