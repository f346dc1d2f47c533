//! The RESP listener and the per-connection loop.
//!
//! Each connection runs in its own task: read a request, execute it, queue
//! the reply, in order. A protocol error (garbage, a length over a limit, a
//! connection closed mid-request) is answered with Redis's error and the
//! connection closed, since the next request boundary is lost; nothing a
//! client sends affects another client. Like the native listener, the
//! accept loop is a task of the proxy, stopped at shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use super::Frontend;
use super::Stats;
use super::commands::{self, Session};
use super::connection::{Connection, ReadError};
use super::frame::Frame;
use crate::server::transport::ClientTransport;

/// Accepts connections until the task is aborted. Accept errors (for
/// example running out of file descriptors) are logged and retried after a
/// pause instead of ending the listener.
pub fn spawn(
    listener: TcpListener,
    frontend: Arc<Frontend>,
    transport: ClientTransport,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((stream, peer)) => {
                    tokio::spawn(serve(frontend.clone(), transport.clone(), stream, peer));
                }
                Err(err) => {
                    tracing::warn!(error = %err, "RESP accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    })
}

/// Bytes of values a request carries (its bulk strings).
fn request_bytes(request: &Frame) -> usize {
    match request {
        Frame::Array(items) => items.iter().map(request_bytes).sum(),
        Frame::Bulk(bytes) => bytes.len(),
        _ => 0,
    }
}

/// Counts a connection as connected for as long as it lives.
struct ConnectedGuard(Arc<Frontend>);

impl Drop for ConnectedGuard {
    fn drop(&mut self) {
        self.0
            .stats
            .connected_clients
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Serves one client until it quits, disconnects or breaks the protocol.
pub async fn serve(
    frontend: Arc<Frontend>,
    transport: ClientTransport,
    stream: TcpStream,
    peer: SocketAddr,
) {
    let Some(halves) = transport.open(stream, peer).await else {
        return;
    };
    Stats::add(&frontend.stats.connections_received, 1);
    Stats::add(&frontend.stats.connected_clients, 1);
    let _connected = ConnectedGuard(frontend.clone());
    let limits = &frontend.cluster().config().limits;
    let mut connection = Connection::new(halves, frontend.limits(), limits.write_timeout);
    let mut session = Session::new(frontend.next_client_id(), !frontend.requires_password());
    session.max_key_len = limits.max_key_len;
    tracing::debug!(%peer, id = session.id, "RESP client connected");
    loop {
        let read = connection.read_request(session.authenticated);
        let read = match limits.idle() {
            None => read.await,
            Some(limit) => match tokio::time::timeout(limit, read).await {
                Ok(read) => read,
                Err(_) => {
                    tracing::debug!(%peer, id = session.id, "closing a RESP connection idle for {limit:?}");
                    break;
                }
            },
        };
        let request = match read {
            Ok(Some(request)) => request,
            Ok(None) => break,
            Err(ReadError::Io(err)) => {
                tracing::debug!(%peer, error = %err, "RESP client connection failed");
                break;
            }
            Err(err) => {
                tracing::debug!(%peer, error = %err, "closing a RESP connection");
                let reply = Frame::error(format!("ERR {err}"));
                crate::metrics::global().resp_reply(&reply);
                let _ = connection.send(&reply).await;
                break;
            }
        };
        // The request's values stay in the proxy until it is done: they
        // count against the buffer budget (waiting for room stops this
        // connection's reading; none in time is an error).
        let cluster = frontend.cluster();
        // Counted as in flight: a shutdown lets it finish.
        let _running = cluster.requests().token();
        // (`execute` counts its replies in the metrics; the refusals made
        // here are counted here.)
        let refused = |reply: Frame| {
            crate::metrics::global().resp_reply(&reply);
            reply
        };
        let reply = if cluster.is_draining() {
            refused(Frame::error("ERR the proxy is shutting down"))
        } else {
            match cluster.buffers().reserve(request_bytes(&request)).await {
                Ok(_permit) => commands::execute(&frontend, &mut session, request).await,
                Err(busy) => refused(Frame::error(format!("BUSY {}", busy.message))),
            }
        };
        // HELLO answers in the protocol it switches to.
        connection.set_protocol(session.protocol);
        if connection.send(&reply).await.is_err() || session.closing {
            break;
        }
    }
    connection.close().await;
    tracing::debug!(%peer, id = session.id, "RESP client disconnected");
}
