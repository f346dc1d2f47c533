//! `STRLEN key`: the length of the value, from the metadata alone (no chunk
//! is fetched); 0 if there is none.

use infinicache::protocol::Key;

use super::{Args, Command, CommandError};
use crate::resp::frame::Frame;
use crate::resp::{Frontend, Stats};
use crate::server::objects;

pub struct Strlen {
    key: Key,
}

impl Strlen {
    pub fn parse(args: &mut Args) -> Result<Command, CommandError> {
        let key = args.next_key()?;
        Ok(Command::Strlen(Strlen { key }))
    }

    pub fn apply(self, frontend: &Frontend) -> Frame {
        let stats = &frontend.stats;
        match objects::object_size(frontend.cluster(), &self.key) {
            Some(size) => {
                Stats::add(&stats.keyspace_hits, 1);
                Frame::Integer(i64::try_from(size).unwrap_or(i64::MAX))
            }
            None => {
                Stats::add(&stats.keyspace_misses, 1);
                Frame::Integer(0)
            }
        }
    }
}
