//! `PING [message]` and `ECHO message`: liveness and round trips.

use bytes::Bytes;

use super::{Args, Command, CommandError};
use crate::resp::frame::Frame;

/// `PING`: `+PONG`, or the message as a bulk string.
pub struct Ping {
    message: Option<Bytes>,
}

impl Ping {
    pub fn parse(args: &mut Args) -> Result<Command, CommandError> {
        if args.len() > 1 {
            return Err(args.arity_error());
        }
        Ok(Command::Ping(Ping {
            message: args.next_opt(),
        }))
    }

    pub fn apply(self) -> Frame {
        match self.message {
            None => Frame::Simple("PONG".into()),
            Some(message) => Frame::Bulk(message),
        }
    }
}

/// `ECHO`: the message back.
pub struct Echo {
    message: Bytes,
}

impl Echo {
    pub fn parse(args: &mut Args) -> Result<Command, CommandError> {
        let message = args.next_bytes()?;
        args.finish()?;
        Ok(Command::Echo(Echo { message }))
    }

    pub fn apply(self) -> Frame {
        Frame::Bulk(self.message)
    }
}
