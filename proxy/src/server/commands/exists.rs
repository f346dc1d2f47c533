//! EXISTS: answered from the proxy's metadata alone.

use std::sync::Arc;

use infinicache::protocol::{ClientReply, Key};

use crate::cluster::Cluster;
use crate::metrics::{self, NativeCommand};
use crate::server::objects;

pub fn apply(cluster: &Arc<Cluster>, key: &Key) -> ClientReply {
    let _timer = metrics::global().native(NativeCommand::Exists);
    ClientReply::Exists {
        exists: objects::exists(cluster, key),
    }
}
