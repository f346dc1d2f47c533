//! DELETE: the object disappears from the metadata at once (no later GET can
//! see it); its chunks are dropped from the nodes in the background.

use std::sync::Arc;

use infinicache::protocol::{ClientReply, Key};

use crate::cluster::Cluster;

pub fn apply(cluster: &Arc<Cluster>, key: &Key) -> ClientReply {
    let chunks = cluster.meta().remove(key);
    let existed = chunks.is_some();
    if let Some(chunks) = chunks {
        cluster.drop_chunks(chunks);
    }
    ClientReply::Deleted { existed }
}
