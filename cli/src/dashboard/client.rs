//! Fetching `/status` and `/metrics` from the proxy's admin API.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::Request;
use hyper::header::HOST;
use hyper_util::rt::TokioIo;
use thiserror::Error;
use tokio::net::TcpStream;

use super::prometheus::{ParseError, Samples};
use super::status::Status;

/// The most a response may hold (a `/status` of 1000 nodes is far less).
const MAX_BODY: usize = 64 * 1024 * 1024;

/// Why a fetch failed.
#[derive(Debug, Error)]
pub enum FetchError {
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        addr: String,
        source: std::io::Error,
    },
    #[error("GET {path}: {reason}")]
    Http { path: String, reason: String },
    #[error("GET {path}: HTTP {status}")]
    Status { path: String, status: u16 },
    #[error("GET {path}: no answer within {timeout:?}")]
    Timeout { path: String, timeout: Duration },
    #[error("GET /status: {0}")]
    Json(#[from] serde_json::Error),
    #[error("GET /metrics: {0}")]
    Metrics(#[from] ParseError),
}

/// A client of one proxy's admin API.
#[derive(Debug, Clone)]
pub struct AdminClient {
    addr: String,
    timeout: Duration,
}

impl AdminClient {
    /// A client of the admin API at `addr` (`host:port`), giving up on a
    /// request after `timeout`.
    pub fn new(addr: impl Into<String>, timeout: Duration) -> Self {
        AdminClient {
            addr: addr.into(),
            timeout,
        }
    }

    /// The address polled.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    pub async fn status(&self) -> Result<Status, FetchError> {
        let body = self.get("/status").await?;
        Ok(serde_json::from_slice(&body)?)
    }

    pub async fn metrics(&self) -> Result<Samples, FetchError> {
        let body = self.get("/metrics").await?;
        Ok(Samples::parse(&String::from_utf8_lossy(&body))?)
    }

    /// `GET path`: the body of a 200 answer.
    pub async fn get(&self, path: &str) -> Result<Bytes, FetchError> {
        tokio::time::timeout(self.timeout, self.exchange(path))
            .await
            .unwrap_or_else(|_| {
                Err(FetchError::Timeout {
                    path: path.to_string(),
                    timeout: self.timeout,
                })
            })
    }

    async fn exchange(&self, path: &str) -> Result<Bytes, FetchError> {
        let http = |reason: String| FetchError::Http {
            path: path.to_string(),
            reason,
        };
        let stream =
            TcpStream::connect(&self.addr)
                .await
                .map_err(|source| FetchError::Connect {
                    addr: self.addr.clone(),
                    source,
                })?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|err| http(err.to_string()))?;
        // Drives the connection; it ends once `sender` is dropped.
        tokio::spawn(async move {
            let _ = connection.await;
        });
        let request = Request::get(path)
            .header(HOST, &self.addr)
            .body(Empty::<Bytes>::new())
            .map_err(|err| http(err.to_string()))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|err| http(err.to_string()))?;
        let status = response.status();
        let body = Limited::new(response.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|err| http(err.to_string()))?
            .to_bytes();
        if !status.is_success() {
            return Err(FetchError::Status {
                path: path.to_string(),
                status: status.as_u16(),
            });
        }
        Ok(body)
    }
}
