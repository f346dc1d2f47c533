//! Nodes dialing in.
//!
//! A node connects after being invoked and must present the token of that
//! invocation; anything else is refused and disconnected. Once accepted, the
//! connection becomes the node's [`NodeLink`] and the proxy sends requests on
//! it. The node's unsolicited `Bye` (it is idle and wants to return) is
//! acknowledged after routing to it stops, so no request is stranded.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use infinicache::protocol::{
    Decode, Encode, ErrorCode, ErrorReply, FrameReader, FrameWriter, Hello, Mux, NodeHello,
    NodeReply, NodeRequest, PROTOCOL_VERSION, Welcome,
};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use crate::cluster::Cluster;
use crate::cluster::node::NodeLink;

/// How long a connecting node may take to say Hello.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Handles one connection on the node listener.
pub async fn serve(cluster: Arc<Cluster>, stream: TcpStream, peer: SocketAddr) {
    let _ = stream.set_nodelay(true);
    let max_frame_len = cluster.config().max_frame_len;
    let (read, write) = stream.into_split();
    let mut reader = FrameReader::new(read, max_frame_len);
    let mut writer = FrameWriter::new(write);

    let hello = match handshake(&mut reader).await {
        Ok(hello) => hello,
        Err(err) => {
            tracing::warn!(%peer, error = %err.message, "refused a node connection");
            let _ = writer.send(&err.encode(0)).await;
            return;
        }
    };
    if let Err(err) = cluster.check_token(&hello) {
        tracing::warn!(%peer, node = hello.node_id, "{err}");
        let refusal = ErrorReply::new(ErrorCode::Unauthorized, err.to_string());
        let _ = writer.send(&refusal.encode(0)).await;
        return;
    }
    // Welcome before the link exists: the node must not see a request first.
    let welcome = Welcome {
        protocol_version: PROTOCOL_VERSION,
        max_frame_len,
        default_params: cluster.default_params(),
        server: format!("infinicache-proxy/{}", env!("CARGO_PKG_VERSION")),
    };
    if writer.send(&welcome.encode(0)).await.is_err() {
        return;
    }
    let (bye_tx, mut bye_rx) = mpsc::unbounded_channel();
    let link: NodeLink = Mux::start(reader, writer, Some(bye_tx));
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
                cluster.detach(hello.node_id, &link);
                let _ = link.notify(&NodeRequest::ByeAck, 0).await;
            }
        }
        cluster.detach(hello.node_id, &link);
    });
}

async fn handshake(
    reader: &mut FrameReader<tokio::net::tcp::OwnedReadHalf>,
) -> Result<NodeHello, ErrorReply> {
    let frame = tokio::time::timeout(HANDSHAKE_TIMEOUT, reader.read_frame())
        .await
        .map_err(|_| ErrorReply::new(ErrorCode::Protocol, "no Hello within the handshake timeout"))?
        .map_err(|err| ErrorReply::from(&err))?
        .ok_or_else(|| ErrorReply::new(ErrorCode::Protocol, "closed before Hello"))?;
    match Hello::decode(frame).map_err(|err| ErrorReply::from(&err))? {
        Hello::Node(hello) => Ok(hello),
        Hello::Client(_) => Err(ErrorReply::new(
            ErrorCode::Protocol,
            "clients must dial the client listener, not the node listener",
        )),
    }
}
