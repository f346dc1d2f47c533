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
//! missing chunks in the background (see `cluster::repair`).

use std::sync::Arc;

use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, StreamExt};
use infinicache::protocol::{ClientReply, ErrorCode, ErrorReply, Key, NodeReply, NodeRequest};

use super::Replies;
use crate::cluster::Cluster;

pub async fn apply(cluster: Arc<Cluster>, key: Key, replies: Replies) {
    let Some(object) = cluster.meta().get(&key) else {
        let _ = replies.send(ClientReply::NotFound).await;
        return;
    };
    let version = object.version;
    let header = ClientReply::Object {
        version,
        object_len: object.size,
        params: object.params,
    };
    if replies.send(header).await.is_err() {
        return;
    }

    if object.lost() > 0 {
        // Lost chunks, or a cold object: bring them back into memory.
        cluster.request_repair(key.clone(), version);
    } else {
        // Read from a degraded bucket: move it forward (if it is in one).
        cluster.request_move(key.clone(), version);
    }
    let mut fetches: FuturesUnordered<BoxFuture<'static, ClientReply>> = FuturesUnordered::new();
    for (index, node) in object.placement.iter().copied().enumerate() {
        let index = index as u8;
        let (cluster, key) = (cluster.clone(), key.clone());
        fetches.push(Box::pin(async move {
            match node {
                Some(node) => from_node(&cluster, &key, version, index, node).await,
                None => {
                    from_cos(
                        &cluster,
                        &key,
                        version,
                        index,
                        "chunk lost with its node's memory",
                    )
                    .await
                }
            }
        }));
    }
    while let Some(reply) = fetches.next().await {
        if replies.send(reply).await.is_err() {
            return;
        }
    }
}

/// Asks `node` for its chunk; falls back to the COS if it no longer has it.
async fn from_node(
    cluster: &Arc<Cluster>,
    key: &Key,
    version: u64,
    index: u8,
    node: u32,
) -> ClientReply {
    let request = NodeRequest::Fetch {
        key: key.clone(),
        version,
        index,
    };
    match cluster.call(node, &request).await {
        Ok(NodeReply::Chunk(chunk))
            if chunk.header.version == version && chunk.header.index == index =>
        {
            ClientReply::Chunk(chunk)
        }
        Ok(NodeReply::Chunk(_)) => failed(
            index,
            ErrorCode::Internal,
            format!("node {node} returned the wrong chunk"),
        ),
        Ok(NodeReply::Missing) => {
            cluster.chunk_missing(key, version, index, node);
            cluster.request_repair(key.clone(), version);
            from_cos(
                cluster,
                key,
                version,
                index,
                &format!("node {node} no longer holds the chunk"),
            )
            .await
        }
        Ok(NodeReply::Error(err)) => ClientReply::ChunkFailed { index, error: err },
        Ok(other) => failed(
            index,
            ErrorCode::Internal,
            format!("node {node} answered a fetch with {other:?}"),
        ),
        Err(err) => failed(index, ErrorCode::Unavailable, err.to_string()),
    }
}

/// Reads a chunk missing from memory back from the durable layer; without
/// one (or if it is not there), reports why it is missing.
async fn from_cos(
    cluster: &Arc<Cluster>,
    key: &Key,
    version: u64,
    index: u8,
    why_missing: &str,
) -> ClientReply {
    let Some(durable) = cluster.durable() else {
        return failed(index, ErrorCode::Unavailable, why_missing.to_string());
    };
    match durable.fetch(key, version, index).await {
        Ok(Some(chunk)) => ClientReply::Chunk(chunk),
        Ok(None) => failed(
            index,
            ErrorCode::Unavailable,
            format!("{why_missing}, and it is not in the object store"),
        ),
        Err(err) => failed(
            index,
            ErrorCode::Unavailable,
            format!("{why_missing}; object store: {err}"),
        ),
    }
}

fn failed(index: u8, code: ErrorCode, message: String) -> ClientReply {
    ClientReply::ChunkFailed {
        index,
        error: ErrorReply::new(code, message),
    }
}
