//! Nodes dialing in.
//!
//! A node connects after being invoked and must present the token of that
//! invocation; anything else is refused and disconnected. Once accepted, the
//! connection becomes the node's [`NodeLink`] and the proxy sends requests on
//! it. The node's unsolicited `Bye` (it is idle and wants to return) is
//! declined while requests routed to it are unanswered, and acknowledged
//! only after routing to it stops, so no request is stranded.

use std::net::SocketAddr;
use std::sync::Arc;

use infinicache::protocol::{ErrorCode, ErrorReply, Hello, Mux, NodeHello, NodeReply, NodeRequest};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use super::handshake::{self, Greeted};
use crate::cluster::Cluster;
use crate::cluster::node::{ByeAnswer, NodeLink, TokenRole};

/// Handles one connection on the node listener.
pub async fn serve(cluster: Arc<Cluster>, stream: TcpStream, peer: SocketAddr) {
    let Some(Greeted {
        reader,
        mut writer,
        hello,
    }) = handshake::greet(&cluster, stream, peer).await
    else {
        return;
    };
    let hello = match hello {
        Hello::Node(hello) => hello,
        Hello::Client(_) => {
            let err = ErrorReply::new(
                ErrorCode::Protocol,
                "clients must dial the client listener, not the node listener",
            );
            handshake::refuse(&mut writer, peer, err).await;
            return;
        }
    };
    let role = match cluster.check_token(&hello) {
        Ok(role) => role,
        Err(err) => {
            tracing::warn!(%peer, node = hello.node_id, "{err}");
            handshake::refuse(
                &mut writer,
                peer,
                ErrorReply::new(ErrorCode::Unauthorized, err.to_string()),
            )
            .await;
            return;
        }
    };
    // Welcome before the link exists: the node must not see a request first.
    if handshake::welcome(&cluster, &mut writer).await.is_err() {
        return;
    }
    let (bye_tx, mut bye_rx) = mpsc::unbounded_channel();
    let link: NodeLink = Mux::start(reader, writer, Some(bye_tx));
    if role == TokenRole::Backup {
        serve_backup(cluster, hello, link, bye_rx, peer);
        return;
    }
    if let Err(err) = cluster.attach(&hello, link.clone()) {
        // The invocation ended between the check and now.
        tracing::warn!(%peer, node = hello.node_id, "{err}");
        link.close("refused");
        return;
    }
    tracing::debug!(%peer, node = hello.node_id, instance = hello.instance_id, used = hello.used, "node connected");

    // Watch for Bye until the connection closes (the reader task drops the
    // sender when it ends).
    tokio::spawn(async move {
        while let Some(message) = bye_rx.recv().await {
            if matches!(message, NodeReply::Bye) {
                // The node stays while a backup is synced from it or
                // requests routed to it have not been answered (the slot
                // tracks their claims on the link). Otherwise the slot has
                // stopped routing to the link and sealed it: requests still
                // pending are answered before the node reads the ByeAck,
                // and nothing is sent after it.
                match cluster.answer_bye(hello.node_id, &link) {
                    ByeAnswer::Stay(reason) => {
                        tracing::trace!(node = hello.node_id, ?reason, "node asked to stay");
                        let _ = link.notify(&NodeRequest::Stay, 0).await;
                    }
                    ByeAnswer::Leave => {
                        let _ = link.notify(&NodeRequest::ByeAck, 0).await;
                    }
                }
            }
        }
        cluster.detach(hello.node_id, &link);
    });
}

/// A backup environment dialed in: its connection goes to the delta sync
/// waiting for it, never into routing. Its `Bye` (the relay went quiet for
/// longer than its idle timeout) is declined while the sync runs; the sync
/// closes the connection when it is done, which lets the backup return.
fn serve_backup(
    cluster: Arc<Cluster>,
    hello: NodeHello,
    link: NodeLink,
    mut bye_rx: mpsc::UnboundedReceiver<NodeReply>,
    peer: SocketAddr,
) {
    if let Err(err) = cluster.attach_backup(&hello, link.clone()) {
        tracing::warn!(%peer, node = hello.node_id, "backup refused: {err}");
        link.close("refused");
        return;
    }
    tracing::debug!(%peer, node = hello.node_id, instance = hello.instance_id, chunks = hello.chunks, "backup connected");
    tokio::spawn(async move {
        while let Some(message) = bye_rx.recv().await {
            if matches!(message, NodeReply::Bye) {
                if cluster.backup_running(hello.node_id) {
                    let _ = link.notify(&NodeRequest::Stay, 0).await;
                    continue;
                }
                let _ = link.notify(&NodeRequest::ByeAck, 0).await;
                link.close("backup left");
            }
        }
    });
}
