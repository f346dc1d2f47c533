//! One client connection: handshake, then requests routed to the commands.
//!
//! Requests are handled concurrently; replies go through one writer task in
//! completion order, tagged with their request ids. A frame that cannot be
//! parsed as a request is answered with an error and the connection goes on;
//! a broken frame boundary (bad length) ends the connection, since the next
//! frame cannot be found. Nothing a client sends can affect other clients.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Weak};

use std::time::Duration;

use infinicache::protocol::{
    ClientRequest, Decode, ErrorCode, ErrorReply, Frame, Hello, ProtocolError, spawn_writer,
};
use parking_lot::Mutex;
use tokio::net::TcpStream;
use tokio::task::AbortHandle;

use super::commands::{self, Replies};
use super::handshake::{self, Greeted, Reader};
use super::limits::{BufferPermit, InFlight, InFlightPermit};
use super::transport::ClientTransport;
use crate::cluster::Cluster;

/// Replies queued per connection before commands wait for the socket.
const REPLY_QUEUE: usize = 1024;

/// Serves one client until it disconnects or breaks the framing.
pub async fn serve(
    cluster: Arc<Cluster>,
    transport: ClientTransport,
    stream: TcpStream,
    peer: SocketAddr,
) {
    let Some(halves) = transport.open(stream, peer).await else {
        return;
    };
    let Some(Greeted {
        mut reader,
        mut writer,
        hello,
    }) = handshake::greet(&cluster, halves, peer).await
    else {
        return;
    };
    let (name, hello_secret) = match hello {
        Hello::Client(hello) => (hello.name, hello.secret),
        Hello::Node(_) => {
            let err = ErrorReply::new(
                ErrorCode::Protocol,
                "nodes must dial the node listener, not the client listener",
            );
            handshake::refuse(&mut writer, peer, err).await;
            return;
        }
    };
    if let Err(refusal) = handshake::authenticate(&cluster, &hello_secret) {
        handshake::refuse(&mut writer, peer, refusal).await;
        return;
    }
    if handshake::welcome(&cluster, &mut writer).await.is_err() {
        return;
    }
    tracing::debug!(%peer, client = %name, "client connected");

    let limits = &cluster.config().limits;
    writer.set_stall_limit(Some(limits.write_timeout));
    let (tx, mut writer_task) = spawn_writer(writer, REPLY_QUEUE);
    let mut in_flight = Operations::new(limits.max_requests_in_flight);
    let gets: Arc<Mutex<HashMap<u64, AbortHandle>>> = Arc::default();
    loop {
        // Idle means nothing received and nothing in flight: a client
        // waiting for a slow GET is not idle.
        let idle_limit = limits.idle().filter(|_| in_flight.is_idle());
        let frame = tokio::select! {
            frame = read_or_idle(&mut reader, idle_limit) => frame,
            // The writer gave up on a client that stopped reading: so do we.
            done = &mut writer_task => {
                if let Ok(Err(err)) = done {
                    tracing::debug!(%peer, client = %name, error = %err, "disconnecting a client that does not read");
                }
                break;
            }
        };
        let frame = match frame {
            Ok(Some(frame)) => frame,
            Ok(None) => break,
            Err(ReadFailure::Idle(limit)) => {
                tracing::debug!(%peer, client = %name, "closing a connection idle for {limit:?}");
                let reply = ErrorReply::new(
                    ErrorCode::Timeout,
                    format!("connection closed after {limit:?} idle"),
                );
                // Through `Replies`, so the metrics count it like any error.
                let _ = Replies::new(tx.clone(), 0).send_error(reply).await;
                break;
            }
            Err(ReadFailure::Frame(err)) => {
                tracing::debug!(%peer, error = %err, "closing client connection");
                let _ = Replies::new(tx.clone(), 0)
                    .send_error(ErrorReply::from(&err))
                    .await;
                break;
            }
        };
        let request_id = frame.request_id;
        let payload_len = frame.payload.len();
        let replies = Replies::new(tx.clone(), request_id);
        let request = match ClientRequest::decode(frame) {
            Ok(request) => request,
            Err(err) => {
                let _ = replies.send_error(ErrorReply::from(&err)).await;
                continue;
            }
        };
        if let ClientRequest::Cancel { target } = request {
            if let Some(task) = gets.lock().remove(&target) {
                task.abort();
            }
            continue;
        }
        let admitted = admit(&cluster, &request, &mut in_flight, payload_len).await;
        let (permit, buffered) = match admitted {
            Ok(admitted) => admitted,
            Err(refusal) => {
                let _ = replies.send_error(refusal).await;
                continue;
            }
        };
        match request {
            ClientRequest::Put(put) => {
                let tracker = cluster.requests().clone();
                let cluster = cluster.clone();
                tracker.spawn(async move {
                    let reply = commands::put::apply(&cluster, put).await;
                    let _ = replies.send(reply).await;
                    drop((permit, buffered));
                });
            }
            ClientRequest::Get { key } => {
                let task = cluster.requests().spawn({
                    let cluster = cluster.clone();
                    let gets = gets.clone();
                    async move {
                        commands::get::apply(cluster, key, replies).await;
                        gets.lock().remove(&request_id);
                        drop(permit);
                    }
                });
                if !task.is_finished() {
                    gets.lock().insert(request_id, task.abort_handle());
                }
            }
            ClientRequest::Delete { key } => {
                // May wait for the object store: off the request loop.
                let tracker = cluster.requests().clone();
                let cluster = cluster.clone();
                tracker.spawn(async move {
                    let _ = replies
                        .send(commands::delete::apply(&cluster, &key).await)
                        .await;
                    drop(permit);
                });
            }
            ClientRequest::Exists { key } => {
                let _ = replies.send(commands::exists::apply(&cluster, &key)).await;
            }
            ClientRequest::Cancel { .. } => {}
        }
    }
    // The client is gone: stop streaming its GETs. PUTs in flight finish (the
    // other chunks of the object may come from elsewhere) but their replies
    // have nowhere to go.
    for (_, task) in gets.lock().drain() {
        task.abort();
    }
    drop(tx);
    if !writer_task.is_finished() {
        let _ = writer_task.await;
    }
}

/// The operations a connection has in flight, as its limit counts them: a
/// PUT is one operation however many chunk requests it takes (its `k + r`
/// chunks must all be in flight at once for it to complete), GETs, DELETEs
/// and EXISTS one each.
struct Operations {
    limit: InFlight,
    /// The PUTs in flight by `put_id`: their chunks share one permit, which
    /// is given back when the last of them is done.
    puts: HashMap<u64, Weak<InFlightPermit>>,
}

impl Operations {
    fn new(max: usize) -> Self {
        Operations {
            limit: InFlight::new(max),
            puts: HashMap::new(),
        }
    }

    fn is_idle(&self) -> bool {
        self.limit.is_idle()
    }

    /// The permit of PUT `put_id`: its own if another chunk of it holds
    /// one, a new one otherwise.
    fn join_put(&mut self, put_id: u64) -> Result<Arc<InFlightPermit>, ErrorReply> {
        if let Some(permit) = self.puts.get(&put_id).and_then(Weak::upgrade) {
            return Ok(permit);
        }
        let permit = Arc::new(self.limit.begin()?);
        // Forget finished PUTs now and then (the map stays about as large
        // as the PUTs in flight).
        if self.puts.len() >= 64 && self.puts.len().is_power_of_two() {
            self.puts.retain(|_, permit| permit.strong_count() > 0);
        }
        self.puts.insert(put_id, Arc::downgrade(&permit));
        Ok(permit)
    }
}

/// Why no request was read.
enum ReadFailure {
    /// Nothing arrived within the idle limit.
    Idle(Duration),
    /// The framing broke (or the socket failed).
    Frame(ProtocolError),
}

/// Reads the next frame, giving up after `idle` if one is set.
async fn read_or_idle(
    reader: &mut Reader,
    idle: Option<Duration>,
) -> Result<Option<Frame>, ReadFailure> {
    match idle {
        None => reader.read_frame().await.map_err(ReadFailure::Frame),
        Some(limit) => match tokio::time::timeout(limit, reader.read_frame()).await {
            Ok(frame) => frame.map_err(ReadFailure::Frame),
            Err(_) => Err(ReadFailure::Idle(limit)),
        },
    }
}

/// Checks a request against the limits: its key's length, the connection's
/// requests in flight, and (for a chunk upload) room in the proxy's buffer
/// budget, which it holds until it is done. Waiting for buffer room here
/// stops this connection's reading, so an uploader faster than the nodes
/// slows down instead of filling the proxy's memory.
async fn admit(
    cluster: &Cluster,
    request: &ClientRequest,
    in_flight: &mut Operations,
    payload_len: usize,
) -> Result<(Arc<InFlightPermit>, Option<BufferPermit>), ErrorReply> {
    let key = match request {
        ClientRequest::Put(put) => Some(&put.key),
        ClientRequest::Get { key }
        | ClientRequest::Delete { key }
        | ClientRequest::Exists { key } => Some(key),
        ClientRequest::Cancel { .. } => None,
    };
    if cluster.is_draining() {
        return Err(ErrorReply::new(
            ErrorCode::Unavailable,
            "the proxy is shutting down",
        ));
    }
    if let Some(key) = key {
        cluster.config().limits.check_key(key)?;
    }
    let permit = match request {
        ClientRequest::Put(put) => in_flight.join_put(put.put_id)?,
        _ => Arc::new(in_flight.limit.begin()?),
    };
    let buffered = match request {
        ClientRequest::Put(_) => Some(cluster.buffers().reserve(payload_len).await?),
        _ => None,
    };
    Ok((permit, buffered))
}
