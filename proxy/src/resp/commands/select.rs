//! `SELECT index`: the cache has one keyspace, database 0. Selecting it is
//! accepted (clients and connection pools do so routinely); any other is
//! out of range, as in a Redis configured with one database.

use super::{Args, Command, CommandError};
use crate::resp::frame::Frame;

pub struct Select {
    index: i64,
}

impl Select {
    pub fn parse(args: &mut Args) -> Result<Command, CommandError> {
        let index = args.next_int()?;
        // Redis reads the index as a C int.
        if i32::try_from(index).is_err() {
            return Err(CommandError::NotAnInteger);
        }
        Ok(Command::Select(Select { index }))
    }

    pub fn apply(self) -> Result<Frame, CommandError> {
        if self.index == 0 {
            Ok(Frame::ok())
        } else {
            Err(CommandError::DbIndex)
        }
    }
}
