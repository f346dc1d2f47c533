//! `SET key value [NX | XX] [EX s | PX ms | EXAT unix-s | PXAT unix-ms |
//! KEEPTTL]` and `MSET key value [key value ...]`.
//!
//! The proxy erasure-codes the value with the same codec and default `k`
//! and `r` as native clients use, and stores it through the native PUT path
//! (see `server::objects::put_object`), so the reply comes only once the
//! object is visible to every later read, from either frontend.
//!
//! `NX` / `XX` are checked under the metadata lock when the PUT starts and
//! again when it commits, so they are atomic against concurrent SETs of the
//! key; a SET whose condition fails changes nothing and answers a null.
//! Expiry times are absolute (wall-clock milliseconds) once parsed, and
//! survive a proxy restart with the object store. `GET` (return the old
//! value) is not supported: reading the old value atomically with the write
//! would need a read-modify-write the PUT path does not have, so it is a
//! syntax error.

use std::collections::HashMap;

use bytes::Bytes;
use futures::stream::{self, StreamExt};
use infinicache::protocol::Key;

use super::{Args, Command, CommandError, MULTI_KEY_CONCURRENCY, is, parse_int};
use crate::cluster::metadata::{Expiry, PutCondition, PutOptions, unix_millis};
use crate::resp::Frontend;
use crate::resp::frame::Frame;
use crate::server::objects;

pub struct Set {
    key: Key,
    value: Bytes,
    options: PutOptions,
}

/// An expiry option before it is turned into an absolute time.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Unit {
    /// `EX`: seconds from now.
    Seconds,
    /// `PX`: milliseconds from now.
    Millis,
    /// `EXAT`: a Unix time in seconds.
    UnixSeconds,
    /// `PXAT`: a Unix time in milliseconds.
    UnixMillis,
}

impl Set {
    /// Parses the options as Redis 7 does: each option once or repeated
    /// (the last wins), conflicting ones a syntax error.
    pub fn parse(args: &mut Args) -> Result<Command, CommandError> {
        let key = args.next_key()?;
        let value = args.next_bytes()?;
        let mut condition = None;
        let mut keep_ttl = false;
        let mut expire: Option<(Unit, Bytes)> = None;
        while let Some(option) = args.next_opt() {
            let unit = if is(&option, "EX") {
                Some(Unit::Seconds)
            } else if is(&option, "PX") {
                Some(Unit::Millis)
            } else if is(&option, "EXAT") {
                Some(Unit::UnixSeconds)
            } else if is(&option, "PXAT") {
                Some(Unit::UnixMillis)
            } else {
                None
            };
            if is(&option, "NX") && condition != Some(PutCondition::IfPresent) {
                condition = Some(PutCondition::IfAbsent);
            } else if is(&option, "XX") && condition != Some(PutCondition::IfAbsent) {
                condition = Some(PutCondition::IfPresent);
            } else if is(&option, "KEEPTTL") && expire.is_none() {
                keep_ttl = true;
            } else if let Some(unit) = unit
                && !keep_ttl
                && expire.as_ref().is_none_or(|(other, _)| *other == unit)
                && !args.is_empty()
            {
                expire = Some((unit, args.next_bytes()?));
            } else {
                return Err(CommandError::Syntax);
            }
        }
        let expiry = match expire {
            Some((unit, amount)) => Expiry::At(expires_at(unit, &amount, unix_millis())?),
            None if keep_ttl => Expiry::Keep,
            None => Expiry::Never,
        };
        Ok(Command::Set(Set {
            key,
            value,
            options: PutOptions { condition, expiry },
        }))
    }

    pub async fn apply(self, frontend: &Frontend) -> Result<Frame, CommandError> {
        let stored = objects::put_object(frontend.cluster(), self.key, self.value, self.options)
            .await
            .map_err(CommandError::Backend)?;
        Ok(match stored {
            Some(_) => Frame::ok(),
            None => Frame::Null,
        })
    }
}

/// The absolute expiry (Unix milliseconds) an option asks for at `now`,
/// with Redis's checks: a positive integer whose milliseconds, and whose
/// sum with `now`, fit in an i64.
fn expires_at(unit: Unit, amount: &[u8], now: u64) -> Result<u64, CommandError> {
    let amount = parse_int(amount).ok_or(CommandError::NotAnInteger)?;
    let invalid = CommandError::InvalidExpire("set");
    if amount <= 0 {
        return Err(invalid);
    }
    let millis = match unit {
        Unit::Seconds | Unit::UnixSeconds => amount.checked_mul(1000).ok_or(invalid.clone())?,
        Unit::Millis | Unit::UnixMillis => amount,
    };
    let absolute = match unit {
        Unit::Seconds | Unit::Millis => {
            let now = i64::try_from(now).map_err(|_| invalid.clone())?;
            millis.checked_add(now).ok_or(invalid.clone())?
        }
        Unit::UnixSeconds | Unit::UnixMillis => millis,
    };
    u64::try_from(absolute).map_err(|_| invalid)
}

/// `MSET`: every pair is stored with its own PUT, a few at a time. Unlike
/// Redis's, it is not atomic across keys: a concurrent reader may see some
/// new values before others, and if one PUT fails the command answers the
/// error while the others may have been stored. A key given twice takes its
/// last value, as in Redis.
pub struct MSet {
    pairs: Vec<(Key, Bytes)>,
}

impl MSet {
    pub fn parse(args: &mut Args) -> Result<Command, CommandError> {
        if !args.len().is_multiple_of(2) {
            return Err(args.arity_error());
        }
        let mut pairs: Vec<(Key, Bytes)> = Vec::with_capacity(args.len() / 2);
        let mut position: HashMap<Key, usize> = HashMap::new();
        while let Some(key) = args.next_opt() {
            let key = args.key(key)?;
            let value = args.next_bytes()?;
            match position.get(&key) {
                Some(&at) => pairs[at].1 = value,
                None => {
                    position.insert(key.clone(), pairs.len());
                    pairs.push((key, value));
                }
            }
        }
        Ok(Command::MSet(MSet { pairs }))
    }

    pub async fn apply(self, frontend: &Frontend) -> Result<Frame, CommandError> {
        let cluster = frontend.cluster();
        let results: Vec<_> = stream::iter(self.pairs)
            .map(|(key, value)| async move {
                objects::put_object(cluster, key, value, PutOptions::default()).await
            })
            .buffer_unordered(MULTI_KEY_CONCURRENCY)
            .collect()
            .await;
        for result in results {
            result.map_err(CommandError::Backend)?;
        }
        Ok(Frame::ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_times_are_absolute_and_checked_like_redis() {
        let now = 1_700_000_000_000;
        assert_eq!(expires_at(Unit::Seconds, b"10", now), Ok(now + 10_000));
        assert_eq!(expires_at(Unit::Millis, b"10", now), Ok(now + 10));
        assert_eq!(
            expires_at(Unit::UnixSeconds, b"1700000001", now),
            Ok(1_700_000_001_000)
        );
        assert_eq!(expires_at(Unit::UnixMillis, b"5", now), Ok(5));
        assert_eq!(
            expires_at(Unit::Seconds, b"1.5", now),
            Err(CommandError::NotAnInteger)
        );
        assert_eq!(
            expires_at(Unit::Seconds, b" 1", now),
            Err(CommandError::NotAnInteger)
        );
        for bad in [
            &b"0"[..],
            b"-1",
            b"9223372036854775",
            b"9223372036854775807",
        ] {
            let unit = if bad.len() > 10 {
                Unit::Seconds
            } else {
                Unit::Millis
            };
            assert_eq!(
                expires_at(unit, bad, now),
                Err(CommandError::InvalidExpire("set")),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(
            expires_at(Unit::Millis, b"9223372036854775807", now),
            Err(CommandError::InvalidExpire("set"))
        );
    }

    fn parse(parts: &[&str]) -> Set {
        let args: Vec<Bytes> = parts
            .iter()
            .map(|p| Bytes::copy_from_slice(p.as_bytes()))
            .collect();
        match Set::parse(&mut Args::new("set", args)) {
            Ok(Command::Set(set)) => set,
            Ok(_) => panic!("not a SET"),
            Err(err) => panic!("{parts:?}: {err}"),
        }
    }

    #[test]
    fn set_options_become_put_options() {
        assert_eq!(parse(&["k", "v"]).options, PutOptions::default());
        let nx = parse(&["k", "v", "nx"]).options;
        assert_eq!(nx.condition, Some(PutCondition::IfAbsent));
        let xx = parse(&["k", "v", "XX", "XX", "KEEPTTL"]).options;
        assert_eq!(xx.condition, Some(PutCondition::IfPresent));
        assert_eq!(xx.expiry, Expiry::Keep);
        let before = unix_millis();
        let Expiry::At(at) = parse(&["k", "v", "PX", "5000"]).options.expiry else {
            panic!("an expiry");
        };
        assert!(at >= before + 5000 && at <= unix_millis() + 5000);
        assert_eq!(
            parse(&["k", "v", "pxat", "77"]).options.expiry,
            Expiry::At(77)
        );
        let Expiry::At(twice) = parse(&["k", "v", "EX", "1", "EX", "2"]).options.expiry else {
            panic!("an expiry");
        };
        assert!(twice >= before + 2000, "the last EX wins");
    }

    #[test]
    fn mset_keeps_the_last_value_of_a_repeated_key() {
        let args: Vec<Bytes> = ["a", "1", "b", "2", "a", "3"]
            .iter()
            .map(|p| Bytes::copy_from_slice(p.as_bytes()))
            .collect();
        let Ok(Command::MSet(mset)) = MSet::parse(&mut Args::new("mset", args)) else {
            panic!("parses");
        };
        let pairs: Vec<_> = mset
            .pairs
            .iter()
            .map(|(key, value)| (key.as_bytes().to_vec(), value.clone()))
            .collect();
        assert_eq!(
            pairs,
            vec![
                (b"a".to_vec(), Bytes::from_static(b"3")),
                (b"b".to_vec(), Bytes::from_static(b"2"))
            ]
        );
    }
}
