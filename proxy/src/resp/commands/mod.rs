//! The RESP commands: a table of what is supported, and one file per
//! command or small family, each parsing its arguments into a typed command
//! and applying it.
//!
//! A request goes through the steps Redis takes, in Redis's order, so
//! clients see the errors they expect: the command is looked up (`ERR
//! unknown command ...`), its argument count checked against its arity
//! (`ERR wrong number of arguments for 'get' command`), the client's
//! authentication checked (`NOAUTH Authentication required.`), then the
//! command parses its own options (`ERR syntax error`, ...) and runs.

pub mod auth;
pub mod client;
pub mod command;
pub mod dbsize;
pub mod del;
pub mod exists;
pub mod get;
pub mod info;
pub mod ping;
pub mod quit;
pub mod select;
pub mod set;
pub mod strlen;

use bytes::Bytes;
use infinicache::protocol::{ErrorReply, Key};
use thiserror::Error;

use super::Frontend;
use super::Stats;
use super::frame::{Frame, Protocol};

/// How many keys of one multi-key command are worked on at once.
pub const MULTI_KEY_CONCURRENCY: usize = 16;

/// What the server knows about one client connection.
#[derive(Debug)]
pub struct Session {
    pub id: u64,
    /// Longest key accepted (the proxy's `limits.max_key_len`).
    pub max_key_len: usize,
    pub name: Option<Bytes>,
    pub protocol: Protocol,
    pub authenticated: bool,
    /// Set by `QUIT`: close once the reply is written.
    pub closing: bool,
}

impl Session {
    pub fn new(id: u64, authenticated: bool) -> Self {
        Session {
            id,
            max_key_len: usize::from(u16::MAX),
            name: None,
            protocol: Protocol::Resp2,
            authenticated,
            closing: false,
        }
    }
}

/// A command could not be run. The messages are Redis's, starting with the
/// error kind (`ERR`, `NOAUTH`, ...), so clients recognise them.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CommandError {
    #[error("ERR unknown command '{name}', with args beginning with: {args}")]
    UnknownCommand { name: String, args: String },
    #[error("ERR wrong number of arguments for '{0}' command")]
    Arity(String),
    #[error("ERR syntax error")]
    Syntax,
    #[error("ERR value is not an integer or out of range")]
    NotAnInteger,
    #[error("ERR invalid expire time in '{0}' command")]
    InvalidExpire(&'static str),
    #[error("NOAUTH Authentication required.")]
    NoAuth,
    #[error("WRONGPASS invalid username-password pair or user is disabled.")]
    WrongPass,
    #[error(
        "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"
    )]
    NoPasswordConfigured,
    #[error(
        "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time"
    )]
    HelloNoAuth,
    #[error("NOPROTO unsupported protocol version")]
    NoProto,
    #[error("ERR Protocol version is not an integer or out of range")]
    BadProtocolVersion,
    #[error("ERR Syntax error in HELLO option '{0}'")]
    HelloOption(String),
    #[error("ERR DB index is out of range")]
    DbIndex,
    #[error("ERR unknown subcommand '{sub}'. Try {command} HELP.")]
    UnknownSubcommand { sub: String, command: &'static str },
    #[error("ERR Client names cannot contain spaces, newlines or special characters.")]
    BadClientName,
    #[error("ERR Unrecognized option '{0}'")]
    UnrecognizedOption(String),
    /// A key the cache cannot hold (empty, or over the key length limit).
    #[error("ERR invalid key: {0}")]
    InvalidKey(String),
    /// The cache failed (nodes unavailable, object too large...).
    #[error("ERR {}: {}", .0.code, .0.message)]
    Backend(ErrorReply),
}

impl From<CommandError> for Frame {
    fn from(err: CommandError) -> Frame {
        Frame::Error(err.to_string())
    }
}

/// Text of a client-supplied argument for an error message: at most `max`
/// bytes, shown lossily as UTF-8.
fn shown(arg: &[u8], max: usize) -> String {
    String::from_utf8_lossy(&arg[..arg.len().min(max)]).into_owned()
}

/// The arguments of a request after the command name, consumed in order.
pub struct Args {
    /// The command's name as Redis prints it in errors.
    command: &'static str,
    items: std::vec::IntoIter<Bytes>,
    /// Longest key accepted.
    max_key_len: usize,
}

impl Args {
    pub fn new(command: &'static str, items: Vec<Bytes>) -> Self {
        Args {
            command,
            items: items.into_iter(),
            max_key_len: usize::from(u16::MAX),
        }
    }

    /// Refuses keys longer than `max_key_len` (the proxy's limit).
    pub fn with_max_key_len(mut self, max_key_len: usize) -> Self {
        self.max_key_len = max_key_len;
        self
    }

    /// `bytes` as a key, within the key length limit.
    pub fn key(&self, bytes: Bytes) -> Result<Key, CommandError> {
        if bytes.len() > self.max_key_len {
            return Err(CommandError::InvalidKey(format!(
                "key of {} bytes exceeds the limit of {} bytes",
                bytes.len(),
                self.max_key_len
            )));
        }
        to_key(bytes)
    }

    /// Arguments left.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.len() == 0
    }

    /// The next argument; missing means a wrong number of arguments.
    pub fn next_bytes(&mut self) -> Result<Bytes, CommandError> {
        self.items
            .next()
            .ok_or_else(|| CommandError::Arity(self.command.to_string()))
    }

    /// The next argument, if any.
    pub fn next_opt(&mut self) -> Option<Bytes> {
        self.items.next()
    }

    /// The next argument as a key.
    pub fn next_key(&mut self) -> Result<Key, CommandError> {
        let bytes = self.next_bytes()?;
        self.key(bytes)
    }

    /// The next argument as an integer.
    pub fn next_int(&mut self) -> Result<i64, CommandError> {
        parse_int(&self.next_bytes()?).ok_or(CommandError::NotAnInteger)
    }

    /// Every argument left.
    pub fn rest(&mut self) -> Vec<Bytes> {
        self.items.by_ref().collect()
    }

    /// Fails if arguments are left over.
    pub fn finish(&mut self) -> Result<(), CommandError> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(CommandError::Syntax)
        }
    }

    /// A wrong number of arguments for this command.
    pub fn arity_error(&self) -> CommandError {
        CommandError::Arity(self.command.to_string())
    }
}

/// A key the cache can hold, or why not.
pub fn to_key(bytes: Bytes) -> Result<Key, CommandError> {
    Key::new(bytes).map_err(|err| match err {
        infinicache::protocol::ProtocolError::InvalidField { reason, .. } => {
            CommandError::InvalidKey(reason)
        }
        other => CommandError::InvalidKey(other.to_string()),
    })
}

/// An integer argument as Redis reads one (`string2ll`: an optional `-`,
/// digits, no spaces, no `+`, no leading zeros).
pub fn parse_int(bytes: &[u8]) -> Option<i64> {
    super::frame::parse_int(bytes)
}

/// Whether argument `arg` is `word`, ignoring ASCII case.
pub fn is(arg: &[u8], word: &str) -> bool {
    arg.eq_ignore_ascii_case(word.as_bytes())
}

/// A supported command: how `COMMAND` describes it, and how it is parsed.
pub struct Spec {
    /// Lowercase, as Redis prints it.
    pub name: &'static str,
    /// Redis's arity: the exact argument count including the name, or
    /// minus the minimum.
    pub arity: i64,
    pub flags: &'static [&'static str],
    pub first_key: i64,
    pub last_key: i64,
    pub step: i64,
    pub categories: &'static [&'static str],
    /// Allowed before authentication.
    pub no_auth: bool,
    parse: fn(&mut Args) -> Result<Command, CommandError>,
}

impl Spec {
    /// Whether `argc` arguments (the name included) fit the arity.
    fn arity_ok(&self, argc: usize) -> bool {
        let argc = i64::try_from(argc).unwrap_or(i64::MAX);
        if self.arity >= 0 {
            argc == self.arity
        } else {
            argc >= -self.arity
        }
    }
}

const fn spec(
    name: &'static str,
    arity: i64,
    flags: &'static [&'static str],
    keys: (i64, i64, i64),
    categories: &'static [&'static str],
    parse: fn(&mut Args) -> Result<Command, CommandError>,
) -> Spec {
    Spec {
        name,
        arity,
        flags,
        first_key: keys.0,
        last_key: keys.1,
        step: keys.2,
        categories,
        no_auth: false,
        parse,
    }
}

const fn no_auth(spec: Spec) -> Spec {
    Spec {
        no_auth: true,
        ..spec
    }
}

const NO_KEYS: (i64, i64, i64) = (0, 0, 0);

/// Every supported command, with Redis's arity, flags, key positions and
/// ACL categories.
pub static COMMANDS: &[Spec] = &[
    no_auth(spec(
        "auth",
        -2,
        &[
            "noscript",
            "loading",
            "stale",
            "fast",
            "no_auth",
            "allow_busy",
        ],
        NO_KEYS,
        &["@fast", "@connection"],
        auth::Auth::parse,
    )),
    spec(
        "client",
        -2,
        &["noscript", "loading", "stale"],
        NO_KEYS,
        &["@slow", "@connection"],
        client::Client::parse,
    ),
    spec(
        "command",
        -1,
        &["loading", "stale"],
        NO_KEYS,
        &["@slow", "@connection"],
        command::CommandInfo::parse,
    ),
    spec(
        "dbsize",
        1,
        &["readonly", "fast"],
        NO_KEYS,
        &["@keyspace", "@read", "@fast"],
        dbsize::DbSize::parse,
    ),
    spec(
        "del",
        -2,
        &["write"],
        (1, -1, 1),
        &["@keyspace", "@write", "@slow"],
        del::Del::parse,
    ),
    spec(
        "echo",
        2,
        &["loading", "stale", "fast"],
        NO_KEYS,
        &["@fast", "@connection"],
        ping::Echo::parse,
    ),
    spec(
        "exists",
        -2,
        &["readonly", "fast"],
        (1, -1, 1),
        &["@keyspace", "@read", "@fast"],
        exists::Exists::parse,
    ),
    spec(
        "get",
        2,
        &["readonly", "fast"],
        (1, 1, 1),
        &["@read", "@string", "@fast"],
        get::Get::parse,
    ),
    no_auth(spec(
        "hello",
        -1,
        &[
            "noscript",
            "loading",
            "stale",
            "fast",
            "no_auth",
            "allow_busy",
        ],
        NO_KEYS,
        &["@fast", "@connection"],
        auth::Hello::parse,
    )),
    spec(
        "info",
        -1,
        &["loading", "stale"],
        NO_KEYS,
        &["@slow", "@dangerous"],
        info::Info::parse,
    ),
    spec(
        "mget",
        -2,
        &["readonly", "fast"],
        (1, -1, 1),
        &["@read", "@string", "@fast"],
        get::MGet::parse,
    ),
    spec(
        "mset",
        -3,
        &["write", "denyoom"],
        (1, -1, 2),
        &["@write", "@string", "@slow"],
        set::MSet::parse,
    ),
    spec(
        "ping",
        -1,
        &["fast"],
        NO_KEYS,
        &["@fast", "@connection"],
        ping::Ping::parse,
    ),
    no_auth(spec(
        "quit",
        -1,
        &[
            "noscript",
            "loading",
            "stale",
            "fast",
            "no_auth",
            "allow_busy",
        ],
        NO_KEYS,
        &["@fast", "@connection"],
        quit::Quit::parse,
    )),
    spec(
        "select",
        2,
        &["loading", "stale", "fast"],
        NO_KEYS,
        &["@fast", "@connection"],
        select::Select::parse,
    ),
    spec(
        "set",
        -3,
        &["write", "denyoom"],
        (1, 1, 1),
        &["@write", "@string", "@slow"],
        set::Set::parse,
    ),
    spec(
        "strlen",
        2,
        &["readonly", "fast"],
        (1, 1, 1),
        &["@read", "@string", "@fast"],
        strlen::Strlen::parse,
    ),
];

/// The command named `name` (any case).
pub fn lookup(name: &[u8]) -> Option<&'static Spec> {
    COMMANDS.iter().find(|spec| is(name, spec.name))
}

/// A parsed command, ready to run.
pub enum Command {
    Auth(auth::Auth),
    Client(client::Client),
    Command(command::CommandInfo),
    DbSize(dbsize::DbSize),
    Del(del::Del),
    Echo(ping::Echo),
    Exists(exists::Exists),
    Get(get::Get),
    Hello(auth::Hello),
    Info(info::Info),
    MGet(get::MGet),
    MSet(set::MSet),
    Ping(ping::Ping),
    Quit(quit::Quit),
    Select(select::Select),
    Set(set::Set),
    Strlen(strlen::Strlen),
}

impl Command {
    /// Parses a request (an array of bulk strings) into a command, checking
    /// arity and authentication as Redis does, in Redis's order.
    pub fn from_frame(request: Frame, session: &Session) -> Result<Command, CommandError> {
        let Frame::Array(items) = request else {
            return Err(CommandError::Syntax);
        };
        let mut args = Vec::with_capacity(items.len());
        for item in items {
            match item {
                Frame::Bulk(arg) => args.push(arg),
                Frame::Simple(text) => args.push(Bytes::from(text)),
                _ => return Err(CommandError::Syntax),
            }
        }
        let Some(name) = args.first().cloned() else {
            return Err(CommandError::Syntax);
        };
        let Some(spec) = lookup(&name) else {
            return Err(unknown_command(&name, &args[1..]));
        };
        if !spec.arity_ok(args.len()) {
            return Err(CommandError::Arity(spec.name.to_string()));
        }
        if !session.authenticated && !spec.no_auth {
            return Err(CommandError::NoAuth);
        }
        args.remove(0);
        (spec.parse)(&mut Args::new(spec.name, args).with_max_key_len(session.max_key_len))
    }

    /// Runs the command.
    pub async fn apply(
        self,
        frontend: &Frontend,
        session: &mut Session,
    ) -> Result<Frame, CommandError> {
        match self {
            Command::Auth(cmd) => cmd.apply(frontend, session),
            Command::Client(cmd) => cmd.apply(session),
            Command::Command(cmd) => Ok(cmd.apply()),
            Command::DbSize(cmd) => Ok(cmd.apply(frontend)),
            Command::Del(cmd) => Ok(cmd.apply(frontend).await),
            Command::Echo(cmd) => Ok(cmd.apply()),
            Command::Exists(cmd) => Ok(cmd.apply(frontend)),
            Command::Get(cmd) => cmd.apply(frontend).await,
            Command::Hello(cmd) => cmd.apply(frontend, session),
            Command::Info(cmd) => Ok(cmd.apply(frontend)),
            Command::MGet(cmd) => cmd.apply(frontend).await,
            Command::MSet(cmd) => cmd.apply(frontend).await,
            Command::Ping(cmd) => Ok(cmd.apply()),
            Command::Quit(cmd) => Ok(cmd.apply(session)),
            Command::Select(cmd) => cmd.apply(),
            Command::Set(cmd) => cmd.apply(frontend).await,
            Command::Strlen(cmd) => Ok(cmd.apply(frontend)),
        }
    }
}

/// Redis's error for a command it does not know: the name and the first
/// arguments, quoted, up to about 128 characters.
fn unknown_command(name: &[u8], args: &[Bytes]) -> CommandError {
    let mut shown_args = String::new();
    for arg in args {
        if shown_args.len() >= 128 {
            break;
        }
        let room = 128 - shown_args.len();
        shown_args.push('\'');
        shown_args.push_str(&shown(arg, room));
        shown_args.push_str("' ");
    }
    CommandError::UnknownCommand {
        name: shown(name, 128),
        args: shown_args,
    }
}

/// Executes one request and returns the reply.
pub async fn execute(frontend: &Frontend, session: &mut Session, request: Frame) -> Frame {
    let metrics = crate::metrics::global();
    let _timer = metrics.resp(&request);
    let reply = run(frontend, session, request).await;
    metrics.resp_reply(&reply);
    reply
}

async fn run(frontend: &Frontend, session: &mut Session, request: Frame) -> Frame {
    let command = match Command::from_frame(request, session) {
        Ok(command) => command,
        Err(err) => return err.into(),
    };
    Stats::add(&frontend.stats.commands_processed, 1);
    match command.apply(frontend, session).await {
        Ok(reply) => reply,
        Err(err) => err.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(parts: &[&str]) -> Frame {
        Frame::Array(
            parts
                .iter()
                .map(|part| Frame::Bulk(Bytes::copy_from_slice(part.as_bytes())))
                .collect(),
        )
    }

    /// The error parsing `parts` gives (as the client would see it).
    fn error(parts: &[&str], authenticated: bool) -> String {
        let session = Session::new(1, authenticated);
        match Command::from_frame(request(parts), &session) {
            Ok(_) => panic!("{parts:?} parsed"),
            Err(err) => err.to_string(),
        }
    }

    fn parses(parts: &[&str]) -> bool {
        Command::from_frame(request(parts), &Session::new(1, true)).is_ok()
    }

    #[test]
    fn unknown_commands_and_arity_give_redis_errors() {
        assert_eq!(
            error(&["FOO", "a", "b"], true),
            "ERR unknown command 'FOO', with args beginning with: 'a' 'b' "
        );
        assert_eq!(
            error(&["foo"], true),
            "ERR unknown command 'foo', with args beginning with: "
        );
        let long = "x".repeat(300);
        let message = error(&["foo", &long, "more"], true);
        assert!(message.len() < 300, "{message}");
        assert_eq!(
            error(&["GET"], true),
            "ERR wrong number of arguments for 'get' command"
        );
        assert_eq!(
            error(&["get", "a", "b"], true),
            "ERR wrong number of arguments for 'get' command"
        );
        assert_eq!(
            error(&["MSET", "a", "1", "b"], true),
            "ERR wrong number of arguments for 'mset' command"
        );
        assert_eq!(
            error(&["ping", "a", "b"], true),
            "ERR wrong number of arguments for 'ping' command"
        );
        assert_eq!(error(&["set", "k", "v", "EX"], true), "ERR syntax error");
        assert_eq!(
            error(&["set", "k", "v", "NX", "XX"], true),
            "ERR syntax error"
        );
        assert_eq!(
            error(&["set", "k", "v", "EX", "1", "PX", "1"], true),
            "ERR syntax error"
        );
        assert_eq!(
            error(&["set", "k", "v", "KEEPTTL", "EX", "1"], true),
            "ERR syntax error"
        );
        assert_eq!(error(&["set", "k", "v", "GET"], true), "ERR syntax error");
        assert_eq!(
            error(&["set", "k", "v", "EX", "x"], true),
            "ERR value is not an integer or out of range"
        );
        assert_eq!(
            error(&["set", "k", "v", "EX", "0"], true),
            "ERR invalid expire time in 'set' command"
        );
        assert_eq!(
            error(&["set", "k", "v", "PX", "-5"], true),
            "ERR invalid expire time in 'set' command"
        );
        assert_eq!(
            error(&["set", "k", "v", "EX", "9223372036854775807"], true),
            "ERR invalid expire time in 'set' command"
        );
        assert_eq!(
            error(&["set", "", "v"], true),
            "ERR invalid key: must not be empty"
        );
        assert_eq!(
            error(&["get", ""], true),
            "ERR invalid key: must not be empty"
        );
        let huge = "k".repeat(70_000);
        assert_eq!(
            error(&["get", &huge], true),
            "ERR invalid key: key of 70000 bytes exceeds the limit of 65535 bytes"
        );
        assert!(parses(&["set", "k", "v", "nx", "px", "100"]));
        assert!(parses(&["SET", "k", "v", "XX", "KEEPTTL"]));
        assert!(parses(&["set", "k", "v", "EXAT", "1", "xx"]));
        assert!(
            parses(&["set", "k", "v", "ex", "1", "ex", "2"]),
            "Redis takes the last"
        );
    }

    #[test]
    fn authentication_comes_after_lookup_and_arity() {
        assert_eq!(
            error(&["get", "k"], false),
            "NOAUTH Authentication required."
        );
        assert_eq!(error(&["ping"], false), "NOAUTH Authentication required.");
        assert!(error(&["nope"], false).starts_with("ERR unknown command"));
        assert!(error(&["get"], false).starts_with("ERR wrong number"));
        let session = Session::new(1, false);
        for allowed in [&["auth", "pw"][..], &["hello", "3"], &["quit"]] {
            assert!(
                Command::from_frame(request(allowed), &session).is_ok(),
                "{allowed:?}"
            );
        }
    }

    #[test]
    fn connection_commands_parse_like_redis() {
        assert_eq!(
            error(&["select", "x"], true),
            "ERR value is not an integer or out of range"
        );
        assert_eq!(error(&["auth", "a", "b", "c"], true), "ERR syntax error");
        assert_eq!(
            error(&["hello", "4"], true),
            "NOPROTO unsupported protocol version"
        );
        assert_eq!(
            error(&["hello", "1"], true),
            "NOPROTO unsupported protocol version"
        );
        assert_eq!(
            error(&["hello", "three"], true),
            "ERR Protocol version is not an integer or out of range"
        );
        assert_eq!(
            error(&["hello", "3", "AUTH", "u"], true),
            "ERR Syntax error in HELLO option 'AUTH'"
        );
        assert_eq!(
            error(&["hello", "3", "bogus"], true),
            "ERR Syntax error in HELLO option 'bogus'"
        );
        assert!(parses(&[
            "hello", "3", "auth", "default", "pw", "setname", "me"
        ]));
        assert!(parses(&["hello"]));
        assert_eq!(
            error(&["client", "kill", "x"], true),
            "ERR unknown subcommand 'kill'. Try CLIENT HELP."
        );
        assert_eq!(
            error(&["client", "setname"], true),
            "ERR wrong number of arguments for 'client|setname' command"
        );
        assert_eq!(
            error(&["client", "setname", "a b"], true),
            "ERR Client names cannot contain spaces, newlines or special characters."
        );
        assert_eq!(
            error(&["client", "setinfo", "color", "x"], true),
            "ERR Unrecognized option 'color'"
        );
        assert!(parses(&["client", "setinfo", "LIB-NAME", "redis-rs"]));
        assert!(parses(&["CLIENT", "ID"]));
        assert_eq!(
            error(&["command", "frob"], true),
            "ERR unknown subcommand 'frob'. Try COMMAND HELP."
        );
        assert!(parses(&["command", "docs"]));
        assert!(parses(&["command", "count"]));
        assert!(parses(&["command", "info", "get", "nope"]));
        assert!(parses(&["info", "keyspace", "server"]));
        assert_eq!(
            error(&["dbsize", "x"], true),
            "ERR wrong number of arguments for 'dbsize' command"
        );
    }

    #[test]
    fn the_command_table_is_consistent() {
        let mut names: Vec<_> = COMMANDS.iter().map(|spec| spec.name).collect();
        let count = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), count, "no duplicates");
        for spec in COMMANDS {
            assert_eq!(spec.name, spec.name.to_ascii_lowercase());
            assert_eq!(
                spec.no_auth,
                spec.flags.contains(&"no_auth"),
                "{}",
                spec.name
            );
        }
        assert!(lookup(b"GeT").is_some());
        assert!(lookup(b"flushall").is_none());
    }
}
