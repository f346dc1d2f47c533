//! PUT: one chunk of an object.
//!
//! The first chunk of a PUT to arrive starts it: the metadata assigns the
//! version and a node for every chunk. Each chunk is forwarded to its node
//! with the version written into its header (the body is passed on as the
//! same reference-counted buffer, never copied). Every chunk request is
//! answered only when the whole PUT has committed or failed, so a client
//! whose PUT returned can rely on every later GET seeing it.
//!
//! The work is shared with the RESP frontend's SET: see
//! [`objects::put_chunk`].

use std::sync::Arc;

use infinicache::protocol::{ClientReply, PutChunk};

use crate::cluster::Cluster;
use crate::metrics::{self, NativeCommand};
use crate::server::objects;

pub async fn apply(cluster: &Arc<Cluster>, put: PutChunk) -> ClientReply {
    let _timer = metrics::global()
        .native(NativeCommand::PutChunk)
        .received(put.chunk.body.len());
    match objects::put_chunk(cluster, put).await {
        Ok(version) => ClientReply::Stored { version },
        Err(err) => ClientReply::Error(err),
    }
}
