//! DELETE: the object disappears from the metadata at once (no later GET can
//! see it); its chunks are dropped from the nodes and the COS in the
//! background.

use std::sync::Arc;

use infinicache::protocol::{ClientReply, Key};

use crate::cluster::Cluster;

pub fn apply(cluster: &Arc<Cluster>, key: &Key) -> ClientReply {
    let removed = {
        let mut meta = cluster.meta();
        let version = meta.peek(key).map(|object| object.version);
        version.zip(meta.remove(key))
    };
    let existed = removed.is_some();
    if let Some((version, chunks)) = removed {
        if let Some(durable) = cluster.durable() {
            durable.forget(key.clone(), version);
        }
        cluster.drop_chunks(chunks);
    }
    ClientReply::Deleted { existed }
}
