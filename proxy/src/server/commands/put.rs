//! PUT: one chunk of an object.
//!
//! The first chunk of a PUT to arrive starts it: the metadata assigns the
//! version and a node for every chunk. Each chunk is forwarded to its node
//! with the version written into its header (the body is passed on as the
//! same reference-counted buffer, never copied). Every chunk request is
//! answered only when the whole PUT has committed or failed, so a client
//! whose PUT returned can rely on every later GET seeing it.

use std::sync::Arc;
use std::time::Instant;

use infinicache::codec::Chunk;
use infinicache::protocol::{ClientReply, ErrorCode, ErrorReply, NodeReply, NodeRequest, PutChunk};

use crate::cluster::Cluster;
use crate::cluster::metadata::ChunkLoc;

pub async fn apply(cluster: &Arc<Cluster>, put: PutChunk) -> ClientReply {
    match store(cluster, put).await {
        Ok(version) => ClientReply::Stored { version },
        Err(err) => ClientReply::Error(err),
    }
}

async fn store(cluster: &Arc<Cluster>, put: PutChunk) -> Result<u64, ErrorReply> {
    let PutChunk { key, put_id, chunk } = put;
    let header = chunk.header;
    validate(cluster, key.len(), &chunk)?;

    let joined = cluster
        .meta()
        .join_put(&key, put_id, &header, Instant::now())?;
    // Evicted objects leave function memory only: with the object store
    // they stay visible, cold, and are read back from it.
    cluster.drop_chunks(joined.drop_later);
    for evicted in joined.drop_first {
        cluster.drop_chunk(evicted).await;
    }

    let chunk = Chunk {
        header: header.with_version(joined.version),
        body: chunk.body,
    };
    // The chunk goes to its node and, when the durable layer is on, to the
    // COS at the same time (sync mode waits for both).
    let persisted = async {
        match cluster.durable() {
            Some(durable) => durable
                .persist(&key, &chunk, cluster.liveness())
                .await
                .map_err(|err| ErrorReply::new(ErrorCode::Unavailable, format!("COS: {err}"))),
            None => Ok(()),
        }
    };
    let request = NodeRequest::Store {
        key: key.clone(),
        chunk: chunk.clone(),
    };
    let stored = async {
        match cluster.call(joined.node, &request).await {
            Ok(NodeReply::Stored { .. }) => Ok(()),
            Ok(NodeReply::Error(err)) => Err(err),
            Ok(other) => Err(ErrorReply::new(
                ErrorCode::Internal,
                format!("node {} answered a store with {other:?}", joined.node),
            )),
            Err(err) => Err(ErrorReply::new(ErrorCode::Unavailable, err.to_string())),
        }
    };
    let (stored_result, persisted_result) = tokio::join!(stored, persisted);
    let result = stored_result.and(persisted_result);
    let stored = result.is_ok();
    let done = cluster
        .meta()
        .chunk_done(&key, put_id, header.index, result);
    match done {
        Ok(Some(finished)) => cluster.finish_put(finished).await,
        Ok(None) => {}
        Err(_expired) => {
            // The PUT was abandoned while this chunk was in flight.
            if stored {
                cluster.drop_chunks(vec![ChunkLoc {
                    node: joined.node,
                    key,
                    version: joined.version,
                    index: header.index,
                }]);
            }
        }
    }
    joined
        .outcome
        .await
        .unwrap_or_else(|_| Err(ErrorReply::new(ErrorCode::Aborted, "PUT abandoned")))
}

/// Checks what can be checked without the other chunks: the body length
/// matches the header, and the object fits the configured limits.
fn validate(cluster: &Cluster, key_len: usize, chunk: &Chunk) -> Result<(), ErrorReply> {
    let header = &chunk.header;
    if chunk.body.len() != header.body_len() {
        return Err(ErrorReply::new(
            ErrorCode::InvalidArgument,
            format!(
                "chunk body is {} bytes, its header says {}",
                chunk.body.len(),
                header.body_len()
            ),
        ));
    }
    if cluster.durable().is_some() && key_len > crate::cos::layout::MAX_STORED_KEY_LEN {
        return Err(ErrorReply::new(
            ErrorCode::InvalidArgument,
            format!(
                "keys of {key_len} bytes cannot be stored durably (the object store takes at most {})",
                crate::cos::layout::MAX_STORED_KEY_LEN
            ),
        ));
    }
    let max = cluster.config().max_object_size;
    if header.object_len > max {
        return Err(ErrorReply::new(
            ErrorCode::TooLarge,
            format!(
                "object of {} bytes exceeds the limit of {max} bytes",
                header.object_len
            ),
        ));
    }
    Ok(())
}
