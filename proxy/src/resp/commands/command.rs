//! `COMMAND`, `COMMAND COUNT | DOCS | INFO | LIST | HELP`: what the server
//! supports, in Redis 7's format, for client libraries and `redis-cli`
//! (which asks for `COMMAND DOCS` when it starts interactively, to show
//! hints; an empty answer is fine).

use bytes::Bytes;

use super::{Args, COMMANDS, Command, CommandError, Spec, is, lookup};
use crate::resp::frame::Frame;

pub enum CommandInfo {
    All,
    Count,
    Docs,
    Info(Vec<Bytes>),
    List,
    Help,
}

impl CommandInfo {
    pub fn parse(args: &mut Args) -> Result<Command, CommandError> {
        let Some(sub) = args.next_opt() else {
            return Ok(Command::Command(CommandInfo::All));
        };
        let sub_name = String::from_utf8_lossy(&sub).to_ascii_lowercase();
        let no_more = |args: &Args| {
            if args.is_empty() {
                Ok(())
            } else {
                Err(CommandError::Arity(format!("command|{sub_name}")))
            }
        };
        let info = if is(&sub, "COUNT") {
            no_more(args)?;
            CommandInfo::Count
        } else if is(&sub, "DOCS") {
            let _names = args.rest();
            CommandInfo::Docs
        } else if is(&sub, "INFO") {
            CommandInfo::Info(args.rest())
        } else if is(&sub, "LIST") {
            no_more(args)?;
            CommandInfo::List
        } else if is(&sub, "HELP") {
            no_more(args)?;
            CommandInfo::Help
        } else {
            return Err(CommandError::UnknownSubcommand {
                sub: String::from_utf8_lossy(&sub).into_owned(),
                command: "COMMAND",
            });
        };
        Ok(Command::Command(info))
    }

    pub fn apply(self) -> Frame {
        match self {
            CommandInfo::All => Frame::Array(COMMANDS.iter().map(describe).collect()),
            CommandInfo::Info(names) if names.is_empty() => {
                Frame::Array(COMMANDS.iter().map(describe).collect())
            }
            CommandInfo::Info(names) => Frame::Array(
                names
                    .iter()
                    .map(|name| lookup(name).map_or(Frame::Null, describe))
                    .collect(),
            ),
            CommandInfo::Count => Frame::Integer(i64::try_from(COMMANDS.len()).unwrap_or(0)),
            // No documentation: clients treat it as "no hints".
            CommandInfo::Docs => Frame::Map(Vec::new()),
            CommandInfo::List => {
                Frame::Array(COMMANDS.iter().map(|spec| Frame::bulk(spec.name)).collect())
            }
            CommandInfo::Help => Frame::Array(
                [
                    "COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                    "(no subcommand)",
                    "    Return details about all commands.",
                    "COUNT",
                    "    Return the total number of commands.",
                    "DOCS [<command-name> ...]",
                    "    Return documentary information (none here).",
                    "INFO [<command-name> ...]",
                    "    Return details about the given commands, or all of them.",
                    "LIST",
                    "    Return the names of all commands.",
                    "HELP",
                    "    Print this help.",
                ]
                .into_iter()
                .map(|line| Frame::Simple(line.into()))
                .collect(),
            ),
        }
    }
}

/// One command as Redis 7 describes it: name, arity, flags, first key, last
/// key, key step, ACL categories, tips, key specifications, subcommands.
fn describe(spec: &Spec) -> Frame {
    let words = |words: &[&str]| {
        Frame::Set(
            words
                .iter()
                .map(|word| Frame::Simple((*word).to_string()))
                .collect(),
        )
    };
    Frame::Array(vec![
        Frame::bulk(spec.name),
        Frame::Integer(spec.arity),
        words(spec.flags),
        Frame::Integer(spec.first_key),
        Frame::Integer(spec.last_key),
        Frame::Integer(spec.step),
        words(spec.categories),
        Frame::Array(Vec::new()),
        Frame::Array(Vec::new()),
        Frame::Array(Vec::new()),
    ])
}
