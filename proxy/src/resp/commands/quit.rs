//! `QUIT`: `+OK`, then the server closes the connection (once the reply,
//! and every reply before it, is written).

use super::{Args, Command, CommandError, Session};
use crate::resp::frame::Frame;

pub struct Quit;

impl Quit {
    /// Redis ignores any arguments.
    pub fn parse(args: &mut Args) -> Result<Command, CommandError> {
        let _ = args.rest();
        Ok(Command::Quit(Quit))
    }

    pub fn apply(self, session: &mut Session) -> Frame {
        session.closing = true;
        Frame::ok()
    }
}
