//! EXISTS: answered from the proxy's metadata alone.

use infinicache::protocol::{ClientReply, Key};

use crate::cluster::Cluster;

pub fn apply(cluster: &Cluster, key: &Key) -> ClientReply {
    ClientReply::Exists {
        exists: cluster.meta().contains(key),
    }
}
