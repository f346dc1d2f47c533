//! GET: stream the object's chunks to the client as the nodes answer.
//!
//! The proxy asks every node holding a chunk at once and forwards each chunk
//! the moment it arrives, so the client can decode from the first `k` and a
//! slow or frozen node holds nobody up. The client cancels the rest once it
//! has enough; cancelling drops the outstanding node requests.
//!
//! A chunk found lost (its node's memory is gone, or the node says it does
//! not hold it) is read from the durable layer instead when there is one,
//! and makes the GET request a repair of the object, which restores the
//! missing chunks in the background (see `cluster::repair`). The lookup and
//! fetching are shared with the RESP frontend's GET:
//! [`objects::fetch_object`].

use std::sync::Arc;

use infinicache::protocol::{ClientReply, Key};

use super::Replies;
use crate::cluster::Cluster;
use crate::metrics::{self, NativeCommand};
use crate::server::objects;

pub async fn apply(cluster: Arc<Cluster>, key: Key, replies: Replies) {
    // Until the last chunk is forwarded, or the client cancels the rest.
    let _timer = metrics::global().native(NativeCommand::Get);
    let Some(mut fetch) = objects::fetch_object(&cluster, &key) else {
        let _ = replies.send(ClientReply::NotFound).await;
        return;
    };
    let header = ClientReply::Object {
        version: fetch.version,
        object_len: fetch.object_len,
        params: fetch.params,
    };
    if replies.send(header).await.is_err() {
        return;
    }
    while let Some(reply) = fetch.next().await {
        if replies.send(reply).await.is_err() {
            return;
        }
    }
}
