//! `AUTH [username] password` and `HELLO [protover [AUTH username password]
//! [SETNAME clientname]]`.
//!
//! With `resp_password` set, a client must authenticate before anything but
//! `AUTH`, `HELLO` and `QUIT`. There is one user, `default`, as in a Redis
//! configured with `requirepass`; the password is compared in constant time
//! ([`Frontend::password_matches`]). `HELLO 3` switches the connection to
//! RESP3 (its own reply is already RESP3); `HELLO 2` back to RESP2.

use bytes::Bytes;

use super::client::valid_name;
use super::{Args, Command, CommandError, Session, is, parse_int};
use crate::resp::frame::{Frame, Protocol};
use crate::resp::{Frontend, REDIS_VERSION};

/// The only user.
const DEFAULT_USER: &[u8] = b"default";

/// Authenticates `session` as `username` (default: `default`) with
/// `password`.
fn authenticate(
    frontend: &Frontend,
    session: &mut Session,
    username: Option<&[u8]>,
    password: &[u8],
) -> Result<(), CommandError> {
    let user_ok = username.is_none_or(|user| user == DEFAULT_USER);
    if !frontend.requires_password() {
        // As Redis's passwordless default user: any password, that user only.
        return if user_ok {
            session.authenticated = true;
            Ok(())
        } else {
            Err(CommandError::WrongPass)
        };
    }
    // Compare even for an unknown user: the time taken says nothing.
    let password_ok = frontend.password_matches(password);
    if user_ok && password_ok {
        session.authenticated = true;
        Ok(())
    } else {
        Err(CommandError::WrongPass)
    }
}

pub struct Auth {
    username: Option<Bytes>,
    password: Bytes,
}

impl Auth {
    pub fn parse(args: &mut Args) -> Result<Command, CommandError> {
        let auth = match args.len() {
            1 => Auth {
                username: None,
                password: args.next_bytes()?,
            },
            2 => Auth {
                username: Some(args.next_bytes()?),
                password: args.next_bytes()?,
            },
            _ => return Err(CommandError::Syntax),
        };
        Ok(Command::Auth(auth))
    }

    pub fn apply(self, frontend: &Frontend, session: &mut Session) -> Result<Frame, CommandError> {
        if self.username.is_none() && !frontend.requires_password() {
            return Err(CommandError::NoPasswordConfigured);
        }
        authenticate(frontend, session, self.username.as_deref(), &self.password)?;
        Ok(Frame::ok())
    }
}

pub struct Hello {
    protocol: Option<Protocol>,
    auth: Option<(Bytes, Bytes)>,
    name: Option<Bytes>,
}

impl Hello {
    pub fn parse(args: &mut Args) -> Result<Command, CommandError> {
        let protocol = match args.next_opt() {
            None => None,
            Some(version) => match parse_int(&version) {
                Some(2) => Some(Protocol::Resp2),
                Some(3) => Some(Protocol::Resp3),
                Some(_) => return Err(CommandError::NoProto),
                None => return Err(CommandError::BadProtocolVersion),
            },
        };
        let mut hello = Hello {
            protocol,
            auth: None,
            name: None,
        };
        while let Some(option) = args.next_opt() {
            if is(&option, "AUTH") && args.len() >= 2 {
                hello.auth = Some((args.next_bytes()?, args.next_bytes()?));
            } else if is(&option, "SETNAME") && !args.is_empty() {
                let name = args.next_bytes()?;
                if !valid_name(&name) {
                    return Err(CommandError::BadClientName);
                }
                hello.name = Some(name);
            } else {
                return Err(CommandError::HelloOption(
                    String::from_utf8_lossy(&option).into_owned(),
                ));
            }
        }
        Ok(Command::Hello(hello))
    }

    pub fn apply(self, frontend: &Frontend, session: &mut Session) -> Result<Frame, CommandError> {
        if let Some((username, password)) = &self.auth {
            authenticate(frontend, session, Some(username), password)?;
        }
        if !session.authenticated {
            return Err(CommandError::HelloNoAuth);
        }
        if let Some(name) = self.name {
            session.name = (!name.is_empty()).then_some(name);
        }
        if let Some(protocol) = self.protocol {
            session.protocol = protocol;
        }
        let field = |name: &'static str, value: Frame| (Frame::bulk(name), value);
        Ok(Frame::Map(vec![
            field("server", Frame::bulk("redis")),
            field("version", Frame::bulk(REDIS_VERSION)),
            field("proto", Frame::Integer(session.protocol.version())),
            field(
                "id",
                Frame::Integer(i64::try_from(session.id).unwrap_or(i64::MAX)),
            ),
            field("mode", Frame::bulk("standalone")),
            field("role", Frame::bulk("master")),
            field("modules", Frame::Array(Vec::new())),
        ]))
    }
}
