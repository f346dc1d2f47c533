//! `DEL key [key ...]`: removes the objects, as a native DELETE does (gone
//! from the metadata at once, chunks dropped from memory and the object
//! store); the reply counts the keys that existed.

use futures::stream::{self, StreamExt};
use infinicache::protocol::Key;

use super::{Args, Command, CommandError, MULTI_KEY_CONCURRENCY, to_key};
use crate::resp::Frontend;
use crate::resp::frame::Frame;
use crate::server::objects;

pub struct Del {
    keys: Vec<Key>,
}

impl Del {
    pub fn parse(args: &mut Args) -> Result<Command, CommandError> {
        let keys = args
            .rest()
            .into_iter()
            .map(to_key)
            .collect::<Result<_, _>>()?;
        Ok(Command::Del(Del { keys }))
    }

    pub async fn apply(self, frontend: &Frontend) -> Frame {
        let cluster = frontend.cluster();
        // Removal from the metadata is atomic per key, so a key named twice
        // is counted once, whichever of its two deletions runs first.
        let deleted = stream::iter(self.keys)
            .map(|key| async move { objects::delete_object(cluster, &key).await })
            .buffer_unordered(MULTI_KEY_CONCURRENCY)
            .filter(|existed| std::future::ready(*existed))
            .count()
            .await;
        Frame::Integer(i64::try_from(deleted).unwrap_or(i64::MAX))
    }
}
