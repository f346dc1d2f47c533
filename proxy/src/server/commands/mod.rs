//! The client commands, one file each: how the proxy applies a parsed
//! request (the parsing lives in `infinicache::protocol`).

pub mod delete;
pub mod exists;
pub mod get;
pub mod put;

use infinicache::protocol::{ClientReply, Encode, OutFrame};
use tokio::sync::mpsc;

/// Where a command writes its replies: the connection's writer queue, tagged
/// with the request id being answered.
#[derive(Clone)]
pub struct Replies {
    tx: mpsc::Sender<OutFrame>,
    request_id: u64,
}

impl Replies {
    pub fn new(tx: mpsc::Sender<OutFrame>, request_id: u64) -> Self {
        Replies { tx, request_id }
    }

    /// Queues one reply. Fails only when the client is gone, in which case
    /// the command may stop early.
    pub async fn send(&self, reply: ClientReply) -> Result<(), ClientGone> {
        crate::metrics::global().native_reply(&reply);
        self.tx
            .send(reply.encode(self.request_id))
            .await
            .map_err(|_| ClientGone)
    }
}

impl Replies {
    /// Queues an error reply.
    pub async fn send_error(
        &self,
        error: infinicache::protocol::ErrorReply,
    ) -> Result<(), ClientGone> {
        self.send(ClientReply::Error(error)).await
    }
}

/// The client connection closed.
#[derive(Debug, Clone, Copy)]
pub struct ClientGone;
