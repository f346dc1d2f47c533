//! `DBSIZE`: the number of visible objects (expired ones not counted, even
//! before the sweep removes them), from the metadata alone.

use super::{Args, Command, CommandError};
use crate::cluster::metadata::unix_millis;
use crate::resp::Frontend;
use crate::resp::frame::Frame;

pub struct DbSize;

impl DbSize {
    pub fn parse(_args: &mut Args) -> Result<Command, CommandError> {
        Ok(Command::DbSize(DbSize))
    }

    pub fn apply(self, frontend: &Frontend) -> Frame {
        let live = frontend.cluster().meta().live_len(unix_millis());
        Frame::Integer(i64::try_from(live).unwrap_or(i64::MAX))
    }
}
