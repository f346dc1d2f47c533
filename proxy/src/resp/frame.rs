//! RESP frames: the values of the Redis serialization protocol, how they are
//! written in RESP2 and RESP3, and how they are read.
//!
//! Two readers live here, for two jobs:
//!
//! * [`RequestParser`] reads client *requests* exactly as Redis does: an
//!   array of bulk strings (`*2\r\n$3\r\nGET\r\n$1\r\nk\r\n`), or an inline
//!   command (`GET k\r\n`, with Redis's quoting rules). It is incremental and
//!   keeps its place between reads, so a 10 MiB value arriving in many reads
//!   is scanned once, not once per read, and its bytes are split out of the
//!   read buffer without a copy. It never allocates what a length prefix
//!   claims: buffers grow only with the bytes that actually arrive.
//! * [`Frame::parse`] reads any frame of the types the proxy uses (for
//!   clients of the proxy, such as the tests, and for checking the encoder).
//!
//! Every length is bounded ([`Limits`]): a bulk string by the proxy's
//! largest object and by Redis's 512 MiB, an array by 1 Mi elements, a line
//! by 64 KiB, a whole request by 1 GiB, nesting by 32 levels; before a client
//! authenticates (when a password is set), a request by 10 arguments of 16
//! KiB, as Redis does, so nobody can make the proxy buffer much without the
//! password. Anything malformed is a [`ProtocolError`], whose message is the
//! one Redis gives; the connection answers it and closes, since the next
//! frame boundary is lost.

use bytes::{Buf, Bytes, BytesMut};
use thiserror::Error;

/// Redis's largest bulk string (`proto-max-bulk-len`).
pub const MAX_BULK_LEN: u64 = 512 * 1024 * 1024;
/// The most elements of one array (arguments of one request).
pub const MAX_ARRAY_LEN: usize = 1024 * 1024;
/// The longest line: an inline request, a simple string, a length prefix.
pub const MAX_LINE_LEN: usize = 64 * 1024;
/// The most bytes of bulk strings in one request (Redis's
/// `client-query-buffer-limit`).
pub const MAX_REQUEST_LEN: u64 = 1024 * 1024 * 1024;
/// The deepest nesting of aggregates.
pub const MAX_DEPTH: usize = 32;
/// Before authentication: the most arguments of a request...
pub const UNAUTHENTICATED_MAX_ARGS: usize = 10;
/// ...and the longest of them.
pub const UNAUTHENTICATED_MAX_BULK: u64 = 16 * 1024;

/// Bulk bodies at least this large are written from their own buffer
/// (vectored), not copied next to the frame's other bytes.
const SHARE_MIN: usize = 16 * 1024;

/// The protocol version a connection speaks: RESP2 until the client says
/// `HELLO 3`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    #[default]
    Resp2,
    Resp3,
}

impl Protocol {
    /// The version number, as `HELLO` shows it.
    pub fn version(self) -> i64 {
        match self {
            Protocol::Resp2 => 2,
            Protocol::Resp3 => 3,
        }
    }
}

/// One RESP value.
///
/// RESP3 types are written in RESP2 the way Redis does it: a null as a null
/// bulk string, a boolean as an integer, a verbatim string as a bulk string,
/// a map as a flat array of keys and values, a set as an array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// `+OK`: a short, binary-safe-free string (no CR or LF).
    Simple(String),
    /// `-ERR message`: the first word is the error's kind.
    Error(String),
    /// `:42`
    Integer(i64),
    /// `$5\r\nhello`: binary-safe.
    Bulk(Bytes),
    /// `_` in RESP3, `$-1` (a null bulk string) in RESP2.
    Null,
    /// `#t` / `#f` (RESP3).
    Boolean(bool),
    /// `=15\r\ntxt:Some string` (RESP3): a string with a three-letter
    /// format, `txt` or `mkd`.
    Verbatim { format: [u8; 3], text: Bytes },
    /// `*2\r\n...`
    Array(Vec<Frame>),
    /// `%1\r\n...` (RESP3): key/value pairs, in order.
    Map(Vec<(Frame, Frame)>),
    /// `~2\r\n...` (RESP3).
    Set(Vec<Frame>),
}

/// Limits a reader enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_bulk: u64,
    pub max_array: usize,
    pub max_line: usize,
    pub max_request: u64,
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bulk: MAX_BULK_LEN,
            max_array: MAX_ARRAY_LEN,
            max_line: MAX_LINE_LEN,
            max_request: MAX_REQUEST_LEN,
            max_depth: MAX_DEPTH,
        }
    }
}

impl Limits {
    /// The default limits, with bulk strings no larger than the proxy's
    /// largest object: a longer value could never be stored, so it is
    /// refused before any of it is buffered.
    pub fn for_objects(max_object_size: u64) -> Limits {
        Limits {
            max_bulk: MAX_BULK_LEN.min(max_object_size),
            ..Limits::default()
        }
    }
}

/// A malformed frame or request. The messages are Redis's; a reply carries
/// them after `ERR `.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ProtocolError {
    #[error("Protocol error: invalid multibulk length")]
    InvalidMultibulkLength,
    #[error("Protocol error: invalid bulk length")]
    InvalidBulkLength,
    #[error("Protocol error: expected '$', got '{0}'")]
    ExpectedBulk(String),
    #[error("Protocol error: too big inline request")]
    InlineTooLong,
    #[error("Protocol error: too big mbulk count string")]
    CountTooLong,
    #[error("Protocol error: too big bulk count string")]
    BulkCountTooLong,
    #[error("Protocol error: unbalanced quotes in request")]
    UnbalancedQuotes,
    #[error("Protocol error: unauthenticated multibulk length")]
    UnauthenticatedMultibulk,
    #[error("Protocol error: unauthenticated bulk length")]
    UnauthenticatedBulk,
    #[error("Protocol error: expected CRLF after a bulk string")]
    ExpectedCrlf,
    #[error("Protocol error: request larger than {0} bytes")]
    RequestTooLarge(u64),
    #[error("Protocol error: invalid type byte '{0}'")]
    InvalidType(String),
    #[error("Protocol error: invalid integer")]
    InvalidInteger,
    #[error("Protocol error: invalid line")]
    InvalidLine,
    #[error("Protocol error: aggregates nested deeper than {0} levels")]
    TooDeep(usize),
    #[error("Protocol error: invalid boolean")]
    InvalidBoolean,
    #[error("Protocol error: invalid verbatim string")]
    InvalidVerbatim,
    #[error("Protocol error: simple string is not UTF-8")]
    InvalidUtf8,
}

/// A byte as Redis shows it in an error: itself if printable, else escaped.
fn show_byte(byte: u8) -> String {
    if byte.is_ascii_graphic() || byte == b' ' {
        char::from(byte).to_string()
    } else {
        format!("\\x{byte:02x}")
    }
}

/// A strict decimal integer, as Redis's `string2ll` reads one: an optional
/// `-`, then digits without leading zeros; nothing else.
pub(crate) fn parse_int(text: &[u8]) -> Option<i64> {
    let (negative, digits) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text),
    };
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    if digits.len() > 1 && digits[0] == b'0' {
        return None;
    }
    if negative && digits == b"0" {
        return None;
    }
    let mut value: i64 = 0;
    for &digit in digits {
        let digit = i64::from(digit - b'0');
        value = value.checked_mul(10)?;
        value = if negative {
            value.checked_sub(digit)?
        } else {
            value.checked_add(digit)?
        };
    }
    Some(value)
}

/// Where the line starting at `start` ends: the index of its `\r\n`.
/// `Ok(None)` if no line end has arrived yet; an error if the line is
/// longer than `max` or has a lone `\n`.
fn line_end(buf: &[u8], start: usize, max: usize) -> Result<Option<usize>, ProtocolError> {
    let window = &buf[start.min(buf.len())..];
    match window.iter().position(|&b| b == b'\n') {
        Some(n) if n > max => Err(ProtocolError::InvalidLine),
        Some(0) => Err(ProtocolError::InvalidLine),
        Some(n) if window[n - 1] != b'\r' => Err(ProtocolError::InvalidLine),
        Some(n) => Ok(Some(start + n - 1)),
        None if window.len() > max => Err(ProtocolError::InvalidLine),
        None => Ok(None),
    }
}

// ------------------------------------------------------------------ encoding

/// Encoded frames waiting to be written. Small pieces are copied into one
/// buffer; bulk values of `SHARE_MIN` bytes or more are kept as their own
/// reference-counted buffers and written with vectored I/O, never copied.
#[derive(Debug, Default)]
pub struct Output {
    parts: Vec<Bytes>,
    head: BytesMut,
    len: usize,
}

impl Output {
    pub fn new() -> Self {
        Output::default()
    }

    /// Bytes queued.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn put(&mut self, bytes: &[u8]) {
        self.head.extend_from_slice(bytes);
        self.len += bytes.len();
    }

    fn put_shared(&mut self, body: &Bytes) {
        if body.len() < SHARE_MIN {
            self.put(body);
            return;
        }
        self.seal();
        self.len += body.len();
        self.parts.push(body.clone());
    }

    fn seal(&mut self) {
        if !self.head.is_empty() {
            self.parts.push(self.head.split().freeze());
        }
    }

    /// Takes everything queued, as buffers to write in order.
    pub fn take(&mut self) -> Vec<Bytes> {
        self.seal();
        self.len = 0;
        std::mem::take(&mut self.parts)
    }

    /// Everything queued, copied into one buffer (for tests).
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len);
        for part in &self.parts {
            out.extend_from_slice(part);
        }
        out.extend_from_slice(&self.head);
        out
    }
}

/// A simple string or error as it may be written: CR and LF would end the
/// line early, so they become spaces (as Redis does).
fn sanitized(text: &str) -> std::borrow::Cow<'_, str> {
    if text.contains(['\r', '\n']) {
        text.replace(['\r', '\n'], " ").into()
    } else {
        text.into()
    }
}

impl Frame {
    /// An error frame from a message that already starts with its kind
    /// (`ERR ...`, `NOAUTH ...`).
    pub fn error(message: impl Into<String>) -> Frame {
        Frame::Error(message.into())
    }

    /// `+OK`
    pub fn ok() -> Frame {
        Frame::Simple("OK".into())
    }

    /// A bulk string holding `text`.
    pub fn bulk(text: impl Into<Bytes>) -> Frame {
        Frame::Bulk(text.into())
    }

    /// Appends this frame, written in `protocol`, to `out`.
    pub fn encode(&self, protocol: Protocol, out: &mut Output) {
        let resp3 = protocol == Protocol::Resp3;
        match self {
            Frame::Simple(text) => {
                out.put(b"+");
                out.put(sanitized(text).as_bytes());
                out.put(b"\r\n");
            }
            Frame::Error(text) => {
                out.put(b"-");
                out.put(sanitized(text).as_bytes());
                out.put(b"\r\n");
            }
            Frame::Integer(n) => put_header(out, b':', *n),
            Frame::Bulk(body) => {
                put_header(out, b'$', len_i64(body.len()));
                out.put_shared(body);
                out.put(b"\r\n");
            }
            Frame::Null if resp3 => out.put(b"_\r\n"),
            Frame::Null => out.put(b"$-1\r\n"),
            Frame::Boolean(value) if resp3 => out.put(if *value { b"#t\r\n" } else { b"#f\r\n" }),
            Frame::Boolean(value) => put_header(out, b':', i64::from(*value)),
            Frame::Verbatim { format, text } if resp3 => {
                put_header(out, b'=', len_i64(text.len() + 4));
                out.put(format);
                out.put(b":");
                out.put_shared(text);
                out.put(b"\r\n");
            }
            Frame::Verbatim { text, .. } => Frame::Bulk(text.clone()).encode(protocol, out),
            Frame::Array(items) => {
                put_header(out, b'*', len_i64(items.len()));
                items.iter().for_each(|item| item.encode(protocol, out));
            }
            Frame::Map(pairs) => {
                if resp3 {
                    put_header(out, b'%', len_i64(pairs.len()));
                } else {
                    put_header(out, b'*', len_i64(pairs.len().saturating_mul(2)));
                }
                for (key, value) in pairs {
                    key.encode(protocol, out);
                    value.encode(protocol, out);
                }
            }
            Frame::Set(items) => {
                put_header(out, if resp3 { b'~' } else { b'*' }, len_i64(items.len()));
                items.iter().for_each(|item| item.encode(protocol, out));
            }
        }
    }

    /// This frame written in `protocol`, as one buffer.
    pub fn to_bytes(&self, protocol: Protocol) -> Vec<u8> {
        let mut out = Output::new();
        self.encode(protocol, &mut out);
        out.to_vec()
    }
}

fn len_i64(len: usize) -> i64 {
    i64::try_from(len).unwrap_or(i64::MAX)
}

/// Writes a type byte, an integer and CRLF (`:42`, `$5`, `*2`...).
fn put_header(out: &mut Output, kind: u8, n: i64) {
    use std::io::Write as _;
    // 1 type byte, at most 20 characters of i64, CRLF.
    let mut line = [0u8; 23];
    let mut cursor = std::io::Cursor::new(&mut line[..]);
    let _ = write!(cursor, "{}{n}\r\n", char::from(kind));
    let len = usize::try_from(cursor.position()).unwrap_or(0);
    out.put(&line[..len]);
}

// ------------------------------------------------------------------ general parser

impl Frame {
    /// Reads one frame from the front of `buf`, removing it. `Ok(None)` if
    /// the frame has not fully arrived (nothing is removed then).
    pub fn parse(buf: &mut BytesMut, limits: &Limits) -> Result<Option<Frame>, ProtocolError> {
        match parse_frame(buf, 0, limits, 0)? {
            Some((frame, end)) => {
                buf.advance(end);
                Ok(Some(frame))
            }
            None => Ok(None),
        }
    }

    /// Reads one frame from the front of `buf` without consuming it: the
    /// frame and its length, or `Ok(None)` if it is incomplete.
    pub fn parse_slice(
        buf: &[u8],
        limits: &Limits,
    ) -> Result<Option<(Frame, usize)>, ProtocolError> {
        parse_frame(buf, 0, limits, 0)
    }
}

/// One frame starting at `pos`: the frame and where it ends.
fn parse_frame(
    buf: &[u8],
    pos: usize,
    limits: &Limits,
    depth: usize,
) -> Result<Option<(Frame, usize)>, ProtocolError> {
    let Some(&kind) = buf.get(pos) else {
        return Ok(None);
    };
    if !b"+-:_#$=*~%".contains(&kind) {
        return Err(ProtocolError::InvalidType(show_byte(kind)));
    }
    let Some(end) = line_end(buf, pos + 1, limits.max_line)? else {
        return Ok(None);
    };
    let line = &buf[pos + 1..end];
    let next = end + 2;
    let int = |line: &[u8]| parse_int(line).ok_or(ProtocolError::InvalidInteger);
    match kind {
        b'+' | b'-' => {
            let text = std::str::from_utf8(line)
                .map_err(|_| ProtocolError::InvalidUtf8)?
                .to_string();
            let frame = if kind == b'+' {
                Frame::Simple(text)
            } else {
                Frame::Error(text)
            };
            Ok(Some((frame, next)))
        }
        b':' => Ok(Some((Frame::Integer(int(line)?), next))),
        b'_' if line.is_empty() => Ok(Some((Frame::Null, next))),
        b'_' => Err(ProtocolError::InvalidLine),
        b'#' => match line {
            b"t" => Ok(Some((Frame::Boolean(true), next))),
            b"f" => Ok(Some((Frame::Boolean(false), next))),
            _ => Err(ProtocolError::InvalidBoolean),
        },
        b'$' | b'=' => {
            let len = parse_int(line).ok_or(ProtocolError::InvalidBulkLength)?;
            if len == -1 && kind == b'$' {
                return Ok(Some((Frame::Null, next)));
            }
            let len = u64::try_from(len)
                .ok()
                .filter(|&len| len <= limits.max_bulk)
                .and_then(|len| usize::try_from(len).ok())
                .ok_or(ProtocolError::InvalidBulkLength)?;
            let body_end = next.saturating_add(len);
            if buf.len() < body_end.saturating_add(2) {
                return Ok(None);
            }
            if &buf[body_end..body_end + 2] != b"\r\n" {
                return Err(ProtocolError::ExpectedCrlf);
            }
            let body = &buf[next..body_end];
            let frame = if kind == b'$' {
                Frame::Bulk(Bytes::copy_from_slice(body))
            } else {
                if body.len() < 4 || body[3] != b':' {
                    return Err(ProtocolError::InvalidVerbatim);
                }
                Frame::Verbatim {
                    format: [body[0], body[1], body[2]],
                    text: Bytes::copy_from_slice(&body[4..]),
                }
            };
            Ok(Some((frame, body_end + 2)))
        }
        b'*' | b'~' | b'%' => {
            let count = parse_int(line).ok_or(ProtocolError::InvalidMultibulkLength)?;
            if count == -1 && kind == b'*' {
                return Ok(Some((Frame::Null, next)));
            }
            let count = usize::try_from(count)
                .ok()
                .filter(|&count| count <= limits.max_array)
                .ok_or(ProtocolError::InvalidMultibulkLength)?;
            if depth >= limits.max_depth {
                return Err(ProtocolError::TooDeep(limits.max_depth));
            }
            let elements = if kind == b'%' { count * 2 } else { count };
            // Each element takes at least 3 bytes: never reserve more than
            // the bytes present could hold.
            let mut items = Vec::with_capacity(elements.min((buf.len() - next) / 3));
            let mut at = next;
            for _ in 0..elements {
                let Some((item, end)) = parse_frame(buf, at, limits, depth + 1)? else {
                    return Ok(None);
                };
                items.push(item);
                at = end;
            }
            let frame = match kind {
                b'*' => Frame::Array(items),
                b'~' => Frame::Set(items),
                _ => {
                    let mut pairs = Vec::with_capacity(count);
                    let mut items = items.into_iter();
                    while let (Some(key), Some(value)) = (items.next(), items.next()) {
                        pairs.push((key, value));
                    }
                    Frame::Map(pairs)
                }
            };
            Ok(Some((frame, at)))
        }
        other => Err(ProtocolError::InvalidType(show_byte(other))),
    }
}

// ------------------------------------------------------------------ requests

/// Reads client requests, keeping its place between reads. See the module
/// documentation.
#[derive(Debug)]
pub struct RequestParser {
    limits: Limits,
    partial: Option<Multibulk>,
}

/// A multibulk request whose arguments are still arriving.
#[derive(Debug)]
struct Multibulk {
    remaining: usize,
    args: Vec<Frame>,
    /// The length of the bulk string being read, once its header was read.
    bulk_len: Option<usize>,
    /// Bytes of bulk strings so far.
    size: u64,
}

impl RequestParser {
    pub fn new(limits: Limits) -> Self {
        RequestParser {
            limits,
            partial: None,
        }
    }

    /// Whether no request is partly read.
    pub fn is_idle(&self) -> bool {
        self.partial.is_none()
    }

    /// Reads the next request from `buf`, consuming what it reads: an array
    /// of bulk strings (the command and its arguments). `Ok(None)` until a
    /// whole request has arrived; the parser remembers how far it got.
    /// Empty requests (a blank line, `*0`) are skipped, as Redis does.
    /// `authenticated` selects the small limits for clients that still
    /// have to authenticate.
    pub fn parse(
        &mut self,
        buf: &mut BytesMut,
        authenticated: bool,
    ) -> Result<Option<Frame>, ProtocolError> {
        loop {
            if self.partial.is_none() {
                let Some(&first) = buf.first() else {
                    return Ok(None);
                };
                if first != b'*' {
                    match self.inline(buf)? {
                        Inline::Incomplete => return Ok(None),
                        Inline::Empty => continue,
                        Inline::Request(frame) => return Ok(Some(frame)),
                    }
                }
                let Some(count) = length_line(buf, &self.limits, ProtocolError::CountTooLong)?
                else {
                    return Ok(None);
                };
                let count = count.ok_or(ProtocolError::InvalidMultibulkLength)?;
                if count > i64::from(i32::MAX) {
                    return Err(ProtocolError::InvalidMultibulkLength);
                }
                if count <= 0 {
                    continue;
                }
                let count = usize::try_from(count)
                    .ok()
                    .filter(|&count| count <= self.limits.max_array)
                    .ok_or(ProtocolError::InvalidMultibulkLength)?;
                if !authenticated && count > UNAUTHENTICATED_MAX_ARGS {
                    return Err(ProtocolError::UnauthenticatedMultibulk);
                }
                self.partial = Some(Multibulk {
                    remaining: count,
                    args: Vec::with_capacity(count.min(1024)),
                    bulk_len: None,
                    size: 0,
                });
            }
            return self.bulks(buf, authenticated);
        }
    }

    /// Reads the bulk strings of the request in progress.
    fn bulks(
        &mut self,
        buf: &mut BytesMut,
        authenticated: bool,
    ) -> Result<Option<Frame>, ProtocolError> {
        let limits = self.limits;
        loop {
            let Some(partial) = self.partial.as_mut() else {
                return Ok(None);
            };
            if partial.remaining == 0 {
                let done = self.partial.take().map(|partial| partial.args);
                return Ok(done.map(Frame::Array));
            }
            let len = match partial.bulk_len {
                Some(len) => len,
                None => {
                    let Some(&first) = buf.first() else {
                        return Ok(None);
                    };
                    if first != b'$' {
                        return Err(ProtocolError::ExpectedBulk(show_byte(first)));
                    }
                    let Some(len) = length_line(buf, &limits, ProtocolError::BulkCountTooLong)?
                    else {
                        return Ok(None);
                    };
                    let len = len
                        .and_then(|len| u64::try_from(len).ok())
                        .filter(|&len| len <= limits.max_bulk)
                        .ok_or(ProtocolError::InvalidBulkLength)?;
                    if !authenticated && len > UNAUTHENTICATED_MAX_BULK {
                        return Err(ProtocolError::UnauthenticatedBulk);
                    }
                    partial.size = partial.size.saturating_add(len);
                    if partial.size > limits.max_request {
                        return Err(ProtocolError::RequestTooLarge(limits.max_request));
                    }
                    let len = usize::try_from(len).map_err(|_| ProtocolError::InvalidBulkLength)?;
                    partial.bulk_len = Some(len);
                    len
                }
            };
            if buf.len() < len.saturating_add(2) {
                return Ok(None);
            }
            if &buf[len..len + 2] != b"\r\n" {
                return Err(ProtocolError::ExpectedCrlf);
            }
            let arg = buf.split_to(len).freeze();
            buf.advance(2);
            partial.args.push(Frame::Bulk(arg));
            partial.remaining -= 1;
            partial.bulk_len = None;
        }
    }

    /// Reads an inline request: one line, split into arguments.
    fn inline(&self, buf: &mut BytesMut) -> Result<Inline, ProtocolError> {
        let Some(newline) = buf.iter().position(|&b| b == b'\n') else {
            return if buf.len() > self.limits.max_line {
                Err(ProtocolError::InlineTooLong)
            } else {
                Ok(Inline::Incomplete)
            };
        };
        if newline > self.limits.max_line {
            return Err(ProtocolError::InlineTooLong);
        }
        let line = buf.split_to(newline + 1);
        let line = line.strip_suffix(b"\n").unwrap_or(&line);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let args = split_args(line)?;
        if args.is_empty() {
            return Ok(Inline::Empty);
        }
        Ok(Inline::Request(Frame::Array(
            args.into_iter()
                .map(|arg| Frame::Bulk(arg.into()))
                .collect(),
        )))
    }
}

/// A `*N` or `$N` line at the front of a request buffer: `Ok(None)` until
/// it has fully arrived; then it is consumed and its integer returned
/// (`Some(None)`: it holds none). A line longer than the limit is
/// `too_long`.
fn length_line(
    buf: &mut BytesMut,
    limits: &Limits,
    too_long: ProtocolError,
) -> Result<Option<Option<i64>>, ProtocolError> {
    let Some(newline) = buf.iter().position(|&b| b == b'\n') else {
        return if buf.len() > limits.max_line {
            Err(too_long)
        } else {
            Ok(None)
        };
    };
    if newline > limits.max_line {
        return Err(too_long);
    }
    let value = match buf[..newline].split_last() {
        Some((b'\r', line)) => line.get(1..).and_then(parse_int),
        _ => None,
    };
    buf.advance(newline + 1);
    Ok(Some(value))
}

enum Inline {
    Incomplete,
    Empty,
    Request(Frame),
}

/// Splits an inline request into arguments as Redis's `sdssplitargs` does:
/// whitespace separates arguments; `"..."` quotes with `\n`, `\r`, `\t`,
/// `\b`, `\a`, `\xHH` and `\<char>` escapes; `'...'` quotes with `\'`. A
/// closing quote must be followed by whitespace or the end of the line.
/// A NUL byte ends the line, as it ends the C string Redis splits.
pub fn split_args(line: &[u8]) -> Result<Vec<Vec<u8>>, ProtocolError> {
    let line = match line.iter().position(|&b| b == 0) {
        Some(end) => &line[..end],
        None => line,
    };
    let mut args = Vec::new();
    let mut i = 0;
    let is_space = |b: u8| matches!(b, b' ' | b'\n' | b'\r' | b'\t' | 0x0b | 0x0c);
    loop {
        while i < line.len() && is_space(line[i]) {
            i += 1;
        }
        if i >= line.len() {
            return Ok(args);
        }
        let mut current = Vec::new();
        let (mut in_double, mut in_single) = (false, false);
        loop {
            let byte = line.get(i).copied();
            if in_double {
                let Some(byte) = byte else {
                    return Err(ProtocolError::UnbalancedQuotes);
                };
                if byte == b'\\'
                    && line.get(i + 1) == Some(&b'x')
                    && let Some(value) = line
                        .get(i + 2..i + 4)
                        .and_then(|hex| std::str::from_utf8(hex).ok())
                        .filter(|hex| hex.bytes().all(|b| b.is_ascii_hexdigit()))
                        .and_then(|hex| u8::from_str_radix(hex, 16).ok())
                {
                    current.push(value);
                    i += 3;
                } else if byte == b'\\' && i + 1 < line.len() {
                    i += 1;
                    current.push(match line[i] {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 0x08,
                        b'a' => 0x07,
                        other => other,
                    });
                } else if byte == b'"' {
                    if line.get(i + 1).is_some_and(|&next| !is_space(next)) {
                        return Err(ProtocolError::UnbalancedQuotes);
                    }
                    i += 1;
                    break;
                } else {
                    current.push(byte);
                }
            } else if in_single {
                let Some(byte) = byte else {
                    return Err(ProtocolError::UnbalancedQuotes);
                };
                if byte == b'\\' && line.get(i + 1) == Some(&b'\'') {
                    i += 1;
                    current.push(b'\'');
                } else if byte == b'\'' {
                    if line.get(i + 1).is_some_and(|&next| !is_space(next)) {
                        return Err(ProtocolError::UnbalancedQuotes);
                    }
                    i += 1;
                    break;
                } else {
                    current.push(byte);
                }
            } else {
                match byte {
                    None | Some(b' ' | b'\n' | b'\r' | b'\t') => break,
                    Some(b'"') => in_double = true,
                    Some(b'\'') => in_single = true,
                    Some(other) => current.push(other),
                }
            }
            i += 1;
        }
        args.push(current);
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn request(parts: &[&[u8]]) -> Frame {
        Frame::Array(
            parts
                .iter()
                .map(|part| Frame::Bulk(Bytes::copy_from_slice(part)))
                .collect(),
        )
    }

    fn parse_all(input: &[u8]) -> Result<Vec<Frame>, ProtocolError> {
        let mut parser = RequestParser::new(Limits::default());
        let mut buf = BytesMut::from(input);
        let mut out = Vec::new();
        while let Some(frame) = parser.parse(&mut buf, true)? {
            out.push(frame);
        }
        assert!(buf.is_empty(), "left over: {buf:?}");
        Ok(out)
    }

    fn parse_err(input: &[u8], authenticated: bool) -> ProtocolError {
        let mut parser = RequestParser::new(Limits::default());
        let mut buf = BytesMut::from(input);
        loop {
            match parser.parse(&mut buf, authenticated) {
                Ok(Some(_)) => continue,
                Ok(None) => panic!("{input:?} is incomplete, not invalid"),
                Err(err) => return err,
            }
        }
    }

    #[test]
    fn multibulk_and_inline_requests() {
        assert_eq!(
            parse_all(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n").expect("parses"),
            vec![request(&[b"GET", b"k"])]
        );
        assert_eq!(
            parse_all(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n").expect("parses"),
            vec![request(&[b"SET", b"k", b""])]
        );
        // Binary-safe: CRLF inside a bulk string.
        assert_eq!(
            parse_all(b"*1\r\n$4\r\na\r\nb\r\n").expect("parses"),
            vec![request(&[b"a\r\nb"])]
        );
        assert_eq!(
            parse_all(b"PING\r\nset k \"a b\\n\" 'c''\r\n\r\n  \nGET x\n").err(),
            Some(ProtocolError::UnbalancedQuotes),
            "a closing quote followed by a quote"
        );
        assert_eq!(
            parse_all(b"PING\r\nset k \"a b\\n\\x41\" 'it\\'s'\r\n\r\n  \nGET x\n")
                .expect("parses"),
            vec![
                request(&[b"PING"]),
                request(&[b"set", b"k", b"a b\nA", b"it's"]),
                request(&[b"GET", b"x"]),
            ]
        );
        // A NUL ends an inline line, as in Redis (whose line is a C string).
        assert_eq!(
            parse_all(b"GET a\x00b c\r\n\x00\r\n").expect("parses"),
            vec![request(&[b"GET", b"a"])]
        );
        assert_eq!(
            split_args(b"GET \"a\x00b\""),
            Err(ProtocolError::UnbalancedQuotes)
        );
        // Empty requests are skipped.
        assert_eq!(
            parse_all(b"*0\r\n*-1\r\n*1\r\n$4\r\nPING\r\n").expect("parses"),
            vec![request(&[b"PING"])]
        );
    }

    #[test]
    fn requests_split_anywhere_parse_the_same() {
        let input: &[u8] = b"*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$10\r\n0123456789\r\nGET key\r\n";
        let expected = parse_all(input).expect("parses");
        for split in 0..input.len() {
            let mut parser = RequestParser::new(Limits::default());
            let mut buf = BytesMut::from(&input[..split]);
            let mut out = Vec::new();
            while let Some(frame) = parser.parse(&mut buf, true).expect("valid") {
                out.push(frame);
            }
            buf.extend_from_slice(&input[split..]);
            while let Some(frame) = parser.parse(&mut buf, true).expect("valid") {
                out.push(frame);
            }
            assert_eq!(out, expected, "split at {split}");
            assert!(parser.is_idle());
        }
    }

    #[test]
    fn request_errors_are_redis_errors() {
        let cases: &[(&[u8], ProtocolError)] = &[
            (b"*x\r\n", ProtocolError::InvalidMultibulkLength),
            (b"*01\r\n", ProtocolError::InvalidMultibulkLength),
            (b"*+1\r\n", ProtocolError::InvalidMultibulkLength),
            (b"*1\n", ProtocolError::InvalidMultibulkLength),
            (b"*99999999999\r\n", ProtocolError::InvalidMultibulkLength),
            (b"*1048577\r\n", ProtocolError::InvalidMultibulkLength),
            (b"*1\r\n+OK\r\n", ProtocolError::ExpectedBulk("+".into())),
            (b"*1\r\n\x00", ProtocolError::ExpectedBulk("\\x00".into())),
            (b"*1\r\n$-1\r\n", ProtocolError::InvalidBulkLength),
            (b"*1\r\n$x\r\n", ProtocolError::InvalidBulkLength),
            (
                b"*1\r\n$1099511627776\r\n",
                ProtocolError::InvalidBulkLength,
            ),
            (b"*1\r\n$536870913\r\n", ProtocolError::InvalidBulkLength),
            (b"*1\r\n$1\r\nab\r\n", ProtocolError::ExpectedCrlf),
            (b"GET \"k\r\n", ProtocolError::UnbalancedQuotes),
            (b"GET 'k\r\n", ProtocolError::UnbalancedQuotes),
            (b"GET \"k\"x\r\n", ProtocolError::UnbalancedQuotes),
        ];
        for (input, expected) in cases {
            assert_eq!(&parse_err(input, true), expected, "{input:?}");
        }
        // Lines without an end are refused once they pass the limit.
        let mut long = vec![b'a'; MAX_LINE_LEN + 1];
        assert_eq!(parse_err(&long, true), ProtocolError::InlineTooLong);
        long.insert(0, b'*');
        assert_eq!(parse_err(&long, true), ProtocolError::CountTooLong);
        let mut bulk = b"*1\r\n$".to_vec();
        bulk.extend(vec![b'1'; MAX_LINE_LEN + 1]);
        assert_eq!(parse_err(&bulk, true), ProtocolError::BulkCountTooLong);
        // Before authentication: small requests only.
        assert_eq!(
            parse_err(b"*11\r\n", false),
            ProtocolError::UnauthenticatedMultibulk
        );
        assert_eq!(
            parse_err(b"*2\r\n$4\r\nAUTH\r\n$16385\r\n", false),
            ProtocolError::UnauthenticatedBulk
        );
        // A bulk longer than the object limit is refused before any of it.
        let mut parser = RequestParser::new(Limits::for_objects(10));
        let mut buf = BytesMut::from(&b"*2\r\n$3\r\nSET\r\n$11\r\n"[..]);
        assert_eq!(
            parser.parse(&mut buf, true),
            Err(ProtocolError::InvalidBulkLength)
        );
        // The request limit counts every argument.
        let limits = Limits {
            max_request: 8,
            ..Limits::default()
        };
        let mut parser = RequestParser::new(limits);
        let mut buf = BytesMut::from(&b"*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$3\r\n"[..]);
        assert_eq!(
            parser.parse(&mut buf, true),
            Err(ProtocolError::RequestTooLarge(8))
        );
    }

    #[test]
    fn huge_claimed_lengths_allocate_nothing() {
        let mut parser = RequestParser::new(Limits::default());
        let mut buf = BytesMut::from(&b"*1048576\r\n$536870912\r\nabc"[..]);
        assert_eq!(parser.parse(&mut buf, true), Ok(None));
        assert!(buf.capacity() < 1024, "capacity {}", buf.capacity());
        let Some(partial) = &parser.partial else {
            panic!("a request is in progress");
        };
        assert!(partial.args.capacity() <= 1024);
    }

    #[test]
    fn frames_encode_as_redis_writes_them() {
        let frame = Frame::Array(vec![
            Frame::Simple("OK".into()),
            Frame::Error("ERR bad\r\nthing".into()),
            Frame::Integer(-7),
            Frame::bulk("hi"),
            Frame::Null,
            Frame::Boolean(true),
            Frame::Verbatim {
                format: *b"txt",
                text: Bytes::from_static(b"a"),
            },
            Frame::Map(vec![(Frame::bulk("k"), Frame::Integer(1))]),
            Frame::Set(vec![Frame::Integer(2)]),
        ]);
        assert_eq!(
            frame.to_bytes(Protocol::Resp3),
            b"*9\r\n+OK\r\n-ERR bad  thing\r\n:-7\r\n$2\r\nhi\r\n_\r\n#t\r\n=5\r\ntxt:a\r\n%1\r\n$1\r\nk\r\n:1\r\n~1\r\n:2\r\n"
        );
        assert_eq!(
            frame.to_bytes(Protocol::Resp2),
            b"*9\r\n+OK\r\n-ERR bad  thing\r\n:-7\r\n$2\r\nhi\r\n$-1\r\n:1\r\n$1\r\na\r\n*2\r\n$1\r\nk\r\n:1\r\n*1\r\n:2\r\n"
        );
    }

    #[test]
    fn large_bulks_are_written_from_their_own_buffer() {
        let value = Bytes::from(vec![7u8; 1 << 20]);
        let mut out = Output::new();
        Frame::Array(vec![Frame::Bulk(value.clone()), Frame::bulk("x")])
            .encode(Protocol::Resp2, &mut out);
        assert_eq!(out.len(), (1 << 20) + 23);
        let parts = out.take();
        assert_eq!(parts.len(), 3, "head, the value itself, tail");
        assert_eq!(parts[1].as_ptr(), value.as_ptr(), "not copied");
        assert!(out.is_empty());
    }

    #[test]
    fn general_frame_errors() {
        let limits = Limits {
            max_depth: 3,
            ..Limits::default()
        };
        let cases: &[(&[u8], ProtocolError)] = &[
            (b"?x\r\n", ProtocolError::InvalidType("?".into())),
            (b":12a\r\n", ProtocolError::InvalidInteger),
            (b":1\n", ProtocolError::InvalidLine),
            (b"\n", ProtocolError::InvalidType("\\x0a".into())),
            (b"_x\r\n", ProtocolError::InvalidLine),
            (b"#x\r\n", ProtocolError::InvalidBoolean),
            (b"$-2\r\n", ProtocolError::InvalidBulkLength),
            (b"$1099511627776\r\n", ProtocolError::InvalidBulkLength),
            (b"$1\r\nab\r\n", ProtocolError::ExpectedCrlf),
            (b"=2\r\nab\r\n", ProtocolError::InvalidVerbatim),
            (b"*-5\r\n", ProtocolError::InvalidMultibulkLength),
            (b"%9999999999\r\n", ProtocolError::InvalidMultibulkLength),
            (b"*1\r\n*1\r\n*1\r\n*1\r\n", ProtocolError::TooDeep(3)),
            (b"+\xff\r\n", ProtocolError::InvalidUtf8),
        ];
        for (input, expected) in cases {
            let result = Frame::parse_slice(input, &limits);
            assert_eq!(result.as_ref().err(), Some(expected), "{input:?}");
        }
        assert_eq!(Frame::parse_slice(b"*2\r\n:1\r\n", &limits), Ok(None));
        assert_eq!(
            Frame::parse_slice(b"$-1\r\n*-1\r\n", &limits),
            Ok(Some((Frame::Null, 5)))
        );
    }

    fn frame_strategy() -> impl Strategy<Value = Frame> {
        let line = "[^\r\n]{0,20}";
        let leaf = prop_oneof![
            line.prop_map(Frame::Simple),
            line.prop_map(Frame::Error),
            any::<i64>().prop_map(Frame::Integer),
            prop::collection::vec(any::<u8>(), 0..64).prop_map(|b| Frame::Bulk(b.into())),
            Just(Frame::Null),
            any::<bool>().prop_map(Frame::Boolean),
            ("[a-z]{3}", prop::collection::vec(any::<u8>(), 0..32)).prop_map(|(format, text)| {
                let format = format.as_bytes();
                Frame::Verbatim {
                    format: [format[0], format[1], format[2]],
                    text: text.into(),
                }
            }),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..8).prop_map(Frame::Array),
                prop::collection::vec(inner.clone(), 0..8).prop_map(Frame::Set),
                prop::collection::vec((inner.clone(), inner), 0..4).prop_map(Frame::Map),
            ]
        })
    }

    /// What RESP2 makes of a frame: its RESP3-only types downgraded.
    fn as_resp2(frame: Frame) -> Frame {
        match frame {
            Frame::Boolean(value) => Frame::Integer(i64::from(value)),
            Frame::Verbatim { text, .. } => Frame::Bulk(text),
            Frame::Array(items) | Frame::Set(items) => {
                Frame::Array(items.into_iter().map(as_resp2).collect())
            }
            Frame::Map(pairs) => Frame::Array(
                pairs
                    .into_iter()
                    .flat_map(|(key, value)| [as_resp2(key), as_resp2(value)])
                    .collect(),
            ),
            other => other,
        }
    }

    proptest! {
        #[test]
        fn parse_inverts_encode(frame in frame_strategy()) {
            let limits = Limits::default();
            let bytes = frame.to_bytes(Protocol::Resp3);
            let mut buf = BytesMut::from(&bytes[..]);
            prop_assert_eq!(Frame::parse(&mut buf, &limits), Ok(Some(frame.clone())));
            prop_assert!(buf.is_empty());
            // Every proper prefix is incomplete, never an error.
            for cut in 0..bytes.len() {
                prop_assert_eq!(Frame::parse_slice(&bytes[..cut], &limits), Ok(None));
            }
            let bytes = frame.to_bytes(Protocol::Resp2);
            let parsed = Frame::parse_slice(&bytes, &limits);
            prop_assert_eq!(parsed, Ok(Some((as_resp2(frame), bytes.len()))));
        }

        #[test]
        fn requests_round_trip(args in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 1..8)) {
            let frame = Frame::Array(args.iter().map(|arg| Frame::Bulk(arg.clone().into())).collect());
            let bytes = frame.to_bytes(Protocol::Resp2);
            let mut parser = RequestParser::new(Limits::default());
            let mut buf = BytesMut::from(&bytes[..]);
            prop_assert_eq!(parser.parse(&mut buf, true), Ok(Some(frame)));
            prop_assert!(buf.is_empty());
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256), authenticated in any::<bool>()) {
            let limits = Limits { max_bulk: 1 << 20, ..Limits::default() };
            let _ = Frame::parse_slice(&bytes, &limits);
            let mut parser = RequestParser::new(limits);
            let mut buf = BytesMut::from(&bytes[..]);
            // Bounded: each successful parse consumes input.
            for _ in 0..=bytes.len() {
                match parser.parse(&mut buf, authenticated) {
                    Ok(Some(_)) => continue,
                    Ok(None) | Err(_) => break,
                }
            }
        }

        #[test]
        fn arbitrary_bytes_after_a_request_header_never_panic(
            head in prop::sample::select(vec![&b"*"[..], b"*3\r\n", b"*1\r\n$", b"*2\r\n$3\r\nGET\r\n$", b"$", b"*1\r\n*"]),
            tail in prop::collection::vec(any::<u8>(), 0..64),
        ) {
            let mut bytes = head.to_vec();
            bytes.extend(tail);
            let _ = Frame::parse_slice(&bytes, &Limits::default());
            let mut parser = RequestParser::new(Limits::default());
            let mut buf = BytesMut::from(&bytes[..]);
            for _ in 0..=bytes.len() {
                match parser.parse(&mut buf, true) {
                    Ok(Some(_)) => continue,
                    Ok(None) | Err(_) => break,
                }
            }
        }
    }
}
