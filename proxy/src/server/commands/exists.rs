//! EXISTS: answered from the proxy's metadata alone.

use std::sync::Arc;

use infinicache::protocol::{ClientReply, Key};

use crate::cluster::Cluster;
use crate::server::objects;

pub fn apply(cluster: &Arc<Cluster>, key: &Key) -> ClientReply {
    ClientReply::Exists {
        exists: objects::exists(cluster, key),
    }
}
