//! One client connection: handshake, then requests routed to the commands.
//!
//! Requests are handled concurrently; replies go through one writer task in
//! completion order, tagged with their request ids. A frame that cannot be
//! parsed as a request is answered with an error and the connection goes on;
//! a broken frame boundary (bad length) ends the connection, since the next
//! frame cannot be found. Nothing a client sends can affect other clients.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use infinicache::protocol::{
    ClientRequest, Decode, Encode, ErrorCode, ErrorReply, Hello, spawn_writer,
};
use parking_lot::Mutex;
use tokio::net::TcpStream;
use tokio::task::AbortHandle;

use super::commands::{self, Replies};
use super::handshake::{self, Greeted};
use crate::cluster::Cluster;

/// Replies queued per connection before commands wait for the socket.
const REPLY_QUEUE: usize = 1024;

/// Serves one client until it disconnects or breaks the framing.
pub async fn serve(cluster: Arc<Cluster>, stream: TcpStream, peer: SocketAddr) {
    let Some(Greeted {
        mut reader,
        mut writer,
        hello,
    }) = handshake::greet(&cluster, stream, peer).await
    else {
        return;
    };
    let name = match hello {
        Hello::Client(hello) => hello.name,
        Hello::Node(_) => {
            let err = ErrorReply::new(
                ErrorCode::Protocol,
                "nodes must dial the node listener, not the client listener",
            );
            handshake::refuse(&mut writer, peer, err).await;
            return;
        }
    };
    if handshake::welcome(&cluster, &mut writer).await.is_err() {
        return;
    }
    tracing::debug!(%peer, client = %name, "client connected");

    let (tx, writer_task) = spawn_writer(writer, REPLY_QUEUE);
    let gets: Arc<Mutex<HashMap<u64, AbortHandle>>> = Arc::default();
    loop {
        let frame = match reader.read_frame().await {
            Ok(Some(frame)) => frame,
            Ok(None) => break,
            Err(err) => {
                tracing::debug!(%peer, error = %err, "closing client connection");
                let _ = tx.send(ErrorReply::from(&err).encode(0)).await;
                break;
            }
        };
        let request_id = frame.request_id;
        let replies = Replies::new(tx.clone(), request_id);
        let request = match ClientRequest::decode(frame) {
            Ok(request) => request,
            Err(err) => {
                let _ = replies.send_error(ErrorReply::from(&err)).await;
                continue;
            }
        };
        match request {
            ClientRequest::Put(put) => {
                let cluster = cluster.clone();
                tokio::spawn(async move {
                    let reply = commands::put::apply(&cluster, put).await;
                    let _ = replies.send(reply).await;
                });
            }
            ClientRequest::Get { key } => {
                let task = tokio::spawn({
                    let cluster = cluster.clone();
                    let gets = gets.clone();
                    async move {
                        commands::get::apply(cluster, key, replies).await;
                        gets.lock().remove(&request_id);
                    }
                });
                if !task.is_finished() {
                    gets.lock().insert(request_id, task.abort_handle());
                }
            }
            ClientRequest::Delete { key } => {
                // May wait for the object store: off the request loop.
                let cluster = cluster.clone();
                tokio::spawn(async move {
                    let _ = replies
                        .send(commands::delete::apply(&cluster, &key).await)
                        .await;
                });
            }
            ClientRequest::Exists { key } => {
                let _ = replies.send(commands::exists::apply(&cluster, &key)).await;
            }
            ClientRequest::Cancel { target } => {
                if let Some(task) = gets.lock().remove(&target) {
                    task.abort();
                }
            }
        }
    }
    // The client is gone: stop streaming its GETs. PUTs in flight finish (the
    // other chunks of the object may come from elsewhere) but their replies
    // have nowhere to go.
    for (_, task) in gets.lock().drain() {
        task.abort();
    }
    drop(tx);
    let _ = writer_task.await;
}
