//! DELETE: the object disappears from the metadata at once (no later GET can
//! see it); its chunks are dropped from the nodes and the COS in the
//! background (shared with the RESP frontend's DEL:
//! [`objects::delete_object`]).

use std::sync::Arc;

use infinicache::protocol::{ClientReply, Key};

use crate::cluster::Cluster;
use crate::metrics::{self, NativeCommand};
use crate::server::objects;

pub async fn apply(cluster: &Arc<Cluster>, key: &Key) -> ClientReply {
    let _timer = metrics::global().native(NativeCommand::Delete);
    ClientReply::Deleted {
        existed: objects::delete_object(cluster, key).await,
    }
}
