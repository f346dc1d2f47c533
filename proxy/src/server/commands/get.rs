//! GET: stream the object's chunks to the client as the nodes answer.
//!
//! The proxy asks every node holding a chunk at once and forwards each chunk
//! the moment it arrives, so the client can decode from the first `k` and a
//! slow or frozen node holds nobody up. The client cancels the rest once it
//! has enough; cancelling drops the outstanding node requests.
//!
//! A chunk found lost (its node's memory is gone, or the node says it does
//! not hold it) makes the GET request a repair of the object, which rebuilds
//! the missing chunks in the background (see `cluster::repair`).

use std::sync::Arc;

use futures::stream::{FuturesUnordered, StreamExt};
use infinicache::protocol::{ClientReply, ErrorCode, ErrorReply, Key, NodeReply, NodeRequest};

use super::Replies;
use crate::cluster::Cluster;

pub async fn apply(cluster: Arc<Cluster>, key: Key, replies: Replies) {
    let Some(object) = cluster.meta().get(&key) else {
        let _ = replies.send(ClientReply::NotFound).await;
        return;
    };
    let header = ClientReply::Object {
        version: object.version,
        object_len: object.size,
        params: object.params,
    };
    if replies.send(header).await.is_err() {
        return;
    }

    if object.lost() > 0 {
        cluster.request_repair(key.clone(), object.version);
    }
    let mut fetches = FuturesUnordered::new();
    for (index, node) in object.placement.iter().enumerate() {
        let index = index as u8;
        let Some(node) = *node else {
            let lost = ErrorReply::new(ErrorCode::Unavailable, "chunk lost with its node's memory");
            if replies
                .send(ClientReply::ChunkFailed { index, error: lost })
                .await
                .is_err()
            {
                return;
            }
            continue;
        };
        let cluster = cluster.clone();
        let request = NodeRequest::Fetch {
            key: key.clone(),
            version: object.version,
            index,
        };
        fetches.push(async move { (index, node, cluster.call(node, &request).await) });
    }

    while let Some((index, node, result)) = fetches.next().await {
        let reply = match result {
            Ok(NodeReply::Chunk(chunk))
                if chunk.header.version == object.version && chunk.header.index == index =>
            {
                ClientReply::Chunk(chunk)
            }
            Ok(NodeReply::Chunk(_)) => failed(
                index,
                ErrorCode::Internal,
                format!("node {node} returned the wrong chunk"),
            ),
            Ok(NodeReply::Missing) => {
                cluster.chunk_missing(&key, object.version, index, node);
                cluster.request_repair(key.clone(), object.version);
                failed(
                    index,
                    ErrorCode::Unavailable,
                    format!("node {node} no longer holds the chunk"),
                )
            }
            Ok(NodeReply::Error(err)) => ClientReply::ChunkFailed { index, error: err },
            Ok(other) => failed(
                index,
                ErrorCode::Internal,
                format!("node {node} answered a fetch with {other:?}"),
            ),
            Err(err) => failed(index, ErrorCode::Unavailable, err.to_string()),
        };
        if replies.send(reply).await.is_err() {
            return;
        }
    }
}

fn failed(index: u8, code: ErrorCode, message: String) -> ClientReply {
    ClientReply::ChunkFailed {
        index,
        error: ErrorReply::new(code, message),
    }
}
