//! `EXISTS key [key ...]`: how many of the keys have a visible object (a key
//! named twice counts twice, as in Redis), from the metadata alone.

use infinicache::protocol::Key;

use super::{Args, Command, CommandError, to_key};
use crate::resp::Frontend;
use crate::resp::frame::Frame;
use crate::server::objects;

pub struct Exists {
    keys: Vec<Key>,
}

impl Exists {
    pub fn parse(args: &mut Args) -> Result<Command, CommandError> {
        let keys = args
            .rest()
            .into_iter()
            .map(to_key)
            .collect::<Result<_, _>>()?;
        Ok(Command::Exists(Exists { keys }))
    }

    pub fn apply(self, frontend: &Frontend) -> Frame {
        let found = self
            .keys
            .iter()
            .filter(|key| objects::exists(frontend.cluster(), key))
            .count();
        Frame::Integer(i64::try_from(found).unwrap_or(i64::MAX))
    }
}
