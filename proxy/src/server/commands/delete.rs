//! DELETE: the object disappears from the metadata at once (no later GET can
//! see it); its chunks are dropped from the nodes and the COS in the
//! background.

use std::sync::Arc;

use infinicache::protocol::{ClientReply, Key};

use crate::cluster::Cluster;

pub async fn apply(cluster: &Arc<Cluster>, key: &Key) -> ClientReply {
    let removed = {
        let mut meta = cluster.meta();
        let version = meta.peek(key).map(|object| object.version);
        version.zip(meta.remove(key))
    };
    let existed = removed.is_some();
    if let Some((version, chunks)) = removed {
        if let Some(durable) = cluster.durable() {
            // The record goes first: once it is gone a restarted proxy no
            // longer knows the object, whatever is left of its chunks.
            let sync = durable.mode() == crate::cos::settings::WriteMode::Sync;
            let (cluster, durable, key) = (cluster.clone(), durable.clone(), key.clone());
            let forget = async move {
                let _ = cluster.sync_record(&key).await;
                durable.forget(key, version);
            };
            if sync {
                forget.await;
            } else {
                tokio::spawn(forget);
            }
        }
        cluster.drop_chunks(chunks);
    }
    ClientReply::Deleted { existed }
}
