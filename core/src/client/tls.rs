//! TLS towards proxies whose client listener has a certificate.
//!
//! The proxy's certificate is verified against the system's trust store, or
//! against the CA certificates of a PEM file when the proxy uses a private
//! CA (the usual case inside one deployment). The name checked is the host
//! part of the proxy's address unless one is given: a proxy reached by IP
//! address needs that address in its certificate, or a `server_name` that
//! is.
//!
//! The crypto provider is *ring*, which the rest of the workspace (the AWS
//! SDK) already builds on.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio_rustls::TlsConnector;

use super::Error;

/// How a client secures its connections to the proxies.
///
/// ```
/// # use infinicache::client::TlsOptions;
/// // Trust the proxies' private CA, and check the name in its certificate.
/// let tls = TlsOptions::new().ca_file("/etc/infinicache/ca.pem").server_name("cache.internal");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsOptions {
    ca_file: Option<PathBuf>,
    server_name: Option<String>,
}

impl TlsOptions {
    /// TLS verified against the system's trust store.
    pub fn new() -> Self {
        TlsOptions::default()
    }

    /// Trust the CA certificates in this PEM file instead of the system's.
    pub fn ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_file = Some(path.into());
        self
    }

    /// The name the proxies' certificates must carry (and the SNI sent),
    /// instead of the host part of each proxy's address.
    pub fn server_name(mut self, name: impl Into<String>) -> Self {
        self.server_name = Some(name.into());
        self
    }

    /// Loads the trust roots and builds the connector every link shares.
    pub(crate) fn connector(&self) -> Result<TlsClient, Error> {
        let server_name = self
            .server_name
            .as_deref()
            .map(|name| {
                ServerName::try_from(name.to_string()).map_err(|_| {
                    Error::InvalidArgument(format!("TLS server name {name:?} is not a valid name"))
                })
            })
            .transpose()?;
        let roots = match &self.ca_file {
            Some(path) => roots_from_file(path)?,
            None => system_roots()?,
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|err| Error::InvalidArgument(format!("TLS: {err}")))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(TlsClient {
            connector: TlsConnector::from(Arc::new(config)),
            server_name,
        })
    }
}

/// The loaded TLS configuration of a client's links.
#[derive(Clone)]
pub(crate) struct TlsClient {
    connector: TlsConnector,
    server_name: Option<ServerName<'static>>,
}

impl TlsClient {
    /// The connector and the name to verify for a proxy at `addr`
    /// (`host:port`, `[v6]:port`).
    pub(crate) fn for_proxy(
        &self,
        addr: &str,
    ) -> Result<(&TlsConnector, ServerName<'static>), Error> {
        let name = match &self.server_name {
            Some(name) => name.clone(),
            None => {
                let host = host_of(addr);
                ServerName::try_from(host.to_string()).map_err(|_| {
                    Error::InvalidArgument(format!(
                        "TLS: cannot verify proxy {addr}: {host:?} is not a host name or IP address (set a server name)"
                    ))
                })?
            }
        };
        Ok((&self.connector, name))
    }
}

/// The host part of `host:port` or `[v6]:port` (the whole string if it has
/// no port).
fn host_of(addr: &str) -> &str {
    if let Some(rest) = addr.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match addr.rsplit_once(':') {
        Some((host, _port)) if !host.contains(':') => host,
        _ => addr,
    }
}

fn roots_from_file(path: &Path) -> Result<RootCertStore, Error> {
    let unusable = |reason: String| {
        Error::InvalidArgument(format!("TLS CA file {}: {reason}", path.display()))
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|err| unusable(err.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| unusable(err.to_string()))?;
    if certs.is_empty() {
        return Err(unusable("no PEM certificate in it".into()));
    }
    let mut roots = RootCertStore::empty();
    for cert in certs {
        roots
            .add(cert)
            .map_err(|err| unusable(format!("not a usable CA certificate: {err}")))?;
    }
    Ok(roots)
}

fn system_roots() -> Result<RootCertStore, Error> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        let why = found
            .errors
            .first()
            .map(|err| format!(": {err}"))
            .unwrap_or_default();
        return Err(Error::InvalidArgument(format!(
            "TLS: no trusted CA certificate found on this system{why} (give a CA file)"
        )));
    }
    Ok(roots)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_is_the_address_without_its_port() {
        assert_eq!(host_of("127.0.0.1:6378"), "127.0.0.1");
        assert_eq!(host_of("cache.internal:6378"), "cache.internal");
        assert_eq!(host_of("[::1]:6378"), "::1");
        assert_eq!(host_of("cache.internal"), "cache.internal");
        assert_eq!(host_of("::1"), "::1");
    }

    #[test]
    fn unusable_ca_files_are_named_in_the_error() {
        let missing = TlsOptions::new().ca_file("/nonexistent/ca.pem").connector();
        let Err(Error::InvalidArgument(message)) = missing else {
            panic!("a missing CA file must be an invalid argument");
        };
        assert!(message.contains("/nonexistent/ca.pem"), "{message}");

        let dir = std::env::temp_dir().join(format!("infinicache-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").expect("write");
        let Err(Error::InvalidArgument(message)) = TlsOptions::new().ca_file(&empty).connector()
        else {
            panic!("a file without certificates must be refused");
        };
        assert!(message.contains("no PEM certificate"), "{message}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn server_names_are_validated() {
        let Err(Error::InvalidArgument(message)) = TlsOptions::new()
            .ca_file("/nonexistent")
            .server_name("not a name")
            .connector()
        else {
            panic!("expected an error");
        };
        assert!(message.contains("not a valid name"), "{message}");
    }
}
