//! `CLIENT SETNAME | GETNAME | ID | SETINFO | HELP`: what client libraries
//! send when they connect. Other subcommands (`KILL`, `LIST`, `PAUSE`...)
//! manage a Redis server's clients and are not supported.

use bytes::Bytes;

use super::{Args, Command, CommandError, Session, is};
use crate::resp::frame::Frame;

pub enum Client {
    SetName(Bytes),
    GetName,
    Id,
    SetInfo,
    Help,
}

/// Whether `name` may name a client: no spaces, newlines or other special
/// characters (Redis's rule: every byte between `!` and `~`).
pub fn valid_name(name: &[u8]) -> bool {
    name.iter().all(|&byte| (b'!'..=b'~').contains(&byte))
}

impl Client {
    pub fn parse(args: &mut Args) -> Result<Command, CommandError> {
        let sub = args.next_bytes()?;
        let sub_name = String::from_utf8_lossy(&sub).to_ascii_lowercase();
        let arity = |expected: usize, args: &Args| {
            if args.len() == expected {
                Ok(())
            } else {
                Err(CommandError::Arity(format!("client|{sub_name}")))
            }
        };
        let client = if is(&sub, "SETNAME") {
            arity(1, args)?;
            let name = args.next_bytes()?;
            if !valid_name(&name) {
                return Err(CommandError::BadClientName);
            }
            Client::SetName(name)
        } else if is(&sub, "GETNAME") {
            arity(0, args)?;
            Client::GetName
        } else if is(&sub, "ID") {
            arity(0, args)?;
            Client::Id
        } else if is(&sub, "SETINFO") {
            arity(2, args)?;
            let attribute = args.next_bytes()?;
            if !is(&attribute, "LIB-NAME") && !is(&attribute, "LIB-VER") {
                return Err(CommandError::UnrecognizedOption(
                    String::from_utf8_lossy(&attribute).into_owned(),
                ));
            }
            let _value = args.next_bytes()?;
            Client::SetInfo
        } else if is(&sub, "HELP") {
            arity(0, args)?;
            Client::Help
        } else {
            return Err(CommandError::UnknownSubcommand {
                sub: String::from_utf8_lossy(&sub).into_owned(),
                command: "CLIENT",
            });
        };
        Ok(Command::Client(client))
    }

    pub fn apply(self, session: &mut Session) -> Result<Frame, CommandError> {
        Ok(match self {
            Client::SetName(name) => {
                // An empty name clears it.
                session.name = (!name.is_empty()).then_some(name);
                Frame::ok()
            }
            Client::GetName => session.name.clone().map_or(Frame::Null, Frame::Bulk),
            Client::Id => Frame::Integer(i64::try_from(session.id).unwrap_or(i64::MAX)),
            Client::SetInfo => Frame::ok(),
            Client::Help => Frame::Array(
                [
                    "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                    "GETNAME",
                    "    Return the name of the current connection.",
                    "ID",
                    "    Return the ID of the current connection.",
                    "SETNAME <name>",
                    "    Assign the name <name> to the current connection.",
                    "SETINFO <LIB-NAME|LIB-VER> <value>",
                    "    Accepted and ignored (client library details).",
                    "HELP",
                    "    Print this help.",
                ]
                .into_iter()
                .map(|line| Frame::Simple(line.into()))
                .collect(),
            ),
        })
    }
}
