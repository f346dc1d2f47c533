//! `GET key` and `MGET key [key ...]`: read whole values through the same
//! fetch as the native GET (one announced version, every chunk fetched at
//! once from the nodes or the object store, decoded from the first `k` that
//! verify). A missing or expired key is a null.

use futures::stream::{self, StreamExt};
use infinicache::protocol::Key;

use super::{Args, Command, CommandError, MULTI_KEY_CONCURRENCY, to_key};
use crate::resp::frame::Frame;
use crate::resp::{Frontend, Stats};
use crate::server::objects;

pub struct Get {
    key: Key,
}

impl Get {
    pub fn parse(args: &mut Args) -> Result<Command, CommandError> {
        let key = args.next_key()?;
        Ok(Command::Get(Get { key }))
    }

    pub async fn apply(self, frontend: &Frontend) -> Result<Frame, CommandError> {
        let value = objects::get_object(frontend.cluster(), &self.key)
            .await
            .map_err(CommandError::Backend)?;
        Ok(reply(frontend, value))
    }
}

/// `MGET`: one value (or null) per key, in order. The keys are read
/// concurrently (a few at a time); a read that fails fails the command.
pub struct MGet {
    keys: Vec<Key>,
}

impl MGet {
    pub fn parse(args: &mut Args) -> Result<Command, CommandError> {
        let keys = args
            .rest()
            .into_iter()
            .map(to_key)
            .collect::<Result<_, _>>()?;
        Ok(Command::MGet(MGet { keys }))
    }

    pub async fn apply(self, frontend: &Frontend) -> Result<Frame, CommandError> {
        let cluster = frontend.cluster();
        let values: Vec<_> = stream::iter(self.keys)
            .map(|key| async move { objects::get_object(cluster, &key).await })
            .buffered(MULTI_KEY_CONCURRENCY)
            .collect()
            .await;
        let mut items = Vec::with_capacity(values.len());
        for value in values {
            items.push(reply(frontend, value.map_err(CommandError::Backend)?));
        }
        Ok(Frame::Array(items))
    }
}

/// A value as a reply, counted as a keyspace hit or miss.
fn reply(frontend: &Frontend, value: Option<bytes::Bytes>) -> Frame {
    match value {
        Some(value) => {
            Stats::add(&frontend.stats.keyspace_hits, 1);
            Frame::Bulk(value)
        }
        None => {
            Stats::add(&frontend.stats.keyspace_misses, 1);
            Frame::Null
        }
    }
}
