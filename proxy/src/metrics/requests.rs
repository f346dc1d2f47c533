//! What the request path records: requests and their latency by frontend
//! and command, errors by kind, payload bytes to and from clients, and chunk
//! bytes to and from nodes.
//!
//! Every label value is known when the proxy starts (the native protocol's
//! four requests, the RESP command table, the protocol's error codes), so
//! each series is a fixed slot of atomics: recording is an index and one or
//! two relaxed additions, with no lock, no map and no allocation.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use infinicache::protocol::{ClientReply, ErrorCode, NodeReply, NodeRequest};

use super::histogram::{Histogram, HistogramSnapshot};
use super::text::{MetricType, TextEncoder};
use crate::resp::frame::Frame;

/// Which listener a request came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frontend {
    /// The native protocol (erasure-coding clients).
    Native,
    /// The Redis protocol.
    Resp,
}

impl Frontend {
    const ALL: [Frontend; 2] = [Frontend::Native, Frontend::Resp];

    pub fn label(self) -> &'static str {
        match self {
            Frontend::Native => "native",
            Frontend::Resp => "resp",
        }
    }

    fn index(self) -> usize {
        match self {
            Frontend::Native => 0,
            Frontend::Resp => 1,
        }
    }
}

/// The native protocol's requests. A PUT is `k + r` chunk requests, each
/// counted (and timed: each is answered when the whole PUT commits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NativeCommand {
    PutChunk,
    Get,
    Delete,
    Exists,
}

impl NativeCommand {
    const ALL: [NativeCommand; 4] = [
        NativeCommand::PutChunk,
        NativeCommand::Get,
        NativeCommand::Delete,
        NativeCommand::Exists,
    ];

    pub fn label(self) -> &'static str {
        match self {
            NativeCommand::PutChunk => "put_chunk",
            NativeCommand::Get => "get",
            NativeCommand::Delete => "delete",
            NativeCommand::Exists => "exists",
        }
    }

    fn index(self) -> usize {
        match self {
            NativeCommand::PutChunk => 0,
            NativeCommand::Get => 1,
            NativeCommand::Delete => 2,
            NativeCommand::Exists => 3,
        }
    }
}

/// The native protocol's error codes, as `kind` labels.
const NATIVE_ERRORS: [&str; 12] = [
    "protocol",
    "unsupported_version",
    "unauthorized",
    "invalid_argument",
    "too_large",
    "unavailable",
    "timeout",
    "capacity_exceeded",
    "internal",
    "aborted",
    "busy",
    "other",
];

fn native_error_index(code: ErrorCode) -> usize {
    match code {
        ErrorCode::Protocol => 0,
        ErrorCode::UnsupportedVersion => 1,
        ErrorCode::Unauthorized => 2,
        ErrorCode::InvalidArgument => 3,
        ErrorCode::TooLarge => 4,
        ErrorCode::Unavailable => 5,
        ErrorCode::Timeout => 6,
        ErrorCode::CapacityExceeded => 7,
        ErrorCode::Internal => 8,
        ErrorCode::Aborted => 9,
        ErrorCode::Busy => 10,
        ErrorCode::Other(_) => 11,
    }
}

/// The RESP frontend's error classes (the first word of an error reply,
/// as Redis clients match on it); anything else is `other`.
const RESP_ERRORS: [&str; 6] = ["ERR", "NOAUTH", "WRONGPASS", "NOPROTO", "BUSY", "other"];

fn resp_error_index(message: &str) -> usize {
    let class = message.split(' ').next().unwrap_or_default();
    let last = RESP_ERRORS.len() - 1;
    RESP_ERRORS[..last]
        .iter()
        .position(|known| *known == class)
        .unwrap_or(last)
}

/// Bytes counted in one direction, relative to the proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Received (from clients: uploads; from nodes: fetched chunks).
    In,
    /// Sent (to clients: values read; to nodes: chunks stored).
    Out,
}

impl Direction {
    const ALL: [Direction; 2] = [Direction::In, Direction::Out];

    fn label(self) -> &'static str {
        match self {
            Direction::In => "in",
            Direction::Out => "out",
        }
    }

    fn index(self) -> usize {
        match self {
            Direction::In => 0,
            Direction::Out => 1,
        }
    }
}

/// The request path's metrics.
#[derive(Debug)]
pub struct Metrics {
    native: [Histogram; NativeCommand::ALL.len()],
    /// One per entry of the RESP command table, in its order.
    resp: Box<[(&'static str, Histogram)]>,
    native_errors: [AtomicU64; NATIVE_ERRORS.len()],
    resp_errors: [AtomicU64; RESP_ERRORS.len()],
    /// `[frontend][direction]`: value (native: chunk body) bytes.
    client_bytes: [[AtomicU64; 2]; 2],
    /// `[direction]`: chunk bytes stored on and fetched from nodes.
    node_bytes: [AtomicU64; 2],
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        Metrics {
            native: [const { Histogram::new() }; NativeCommand::ALL.len()],
            resp: crate::resp::commands::COMMANDS
                .iter()
                .map(|spec| (spec.name, Histogram::new()))
                .collect(),
            native_errors: [const { AtomicU64::new(0) }; NATIVE_ERRORS.len()],
            resp_errors: [const { AtomicU64::new(0) }; RESP_ERRORS.len()],
            client_bytes: [const { [const { AtomicU64::new(0) }; 2] }; 2],
            node_bytes: [const { AtomicU64::new(0) }; 2],
        }
    }

    /// Times one native request until the returned guard is dropped (when
    /// the command finishes, or its task is aborted).
    pub fn native(&self, command: NativeCommand) -> RequestTimer<'_> {
        RequestTimer {
            metrics: self,
            frontend: Frontend::Native,
            latency: &self.native[command.index()],
            started: Instant::now(),
        }
    }

    /// Counts a RESP request's values as received and times it, if it names
    /// a known command (unknown ones are only counted as errors).
    pub fn resp(&self, request: &Frame) -> Option<RequestTimer<'_>> {
        self.add_client_bytes(Frontend::Resp, Direction::In, value_bytes(request));
        let Frame::Array(items) = request else {
            return None;
        };
        let name: &[u8] = match items.first()? {
            Frame::Bulk(name) => name,
            Frame::Simple(name) => name.as_bytes(),
            _ => return None,
        };
        let (_, latency) = self
            .resp
            .iter()
            .find(|(command, _)| name.eq_ignore_ascii_case(command.as_bytes()))?;
        Some(RequestTimer {
            metrics: self,
            frontend: Frontend::Resp,
            latency,
            started: Instant::now(),
        })
    }

    /// Records a reply to a native client: an error by its code, a chunk's
    /// body as bytes sent.
    pub fn native_reply(&self, reply: &ClientReply) {
        match reply {
            ClientReply::Error(err) => {
                self.native_errors[native_error_index(err.code)].fetch_add(1, Ordering::Relaxed);
            }
            ClientReply::Chunk(chunk) => {
                self.add_client_bytes(Frontend::Native, Direction::Out, chunk.body.len());
            }
            _ => {}
        }
    }

    /// Records a reply to a RESP client: an error by its class, values as
    /// bytes sent.
    pub fn resp_reply(&self, reply: &Frame) {
        if let Frame::Error(message) = reply {
            self.resp_errors[resp_error_index(message)].fetch_add(1, Ordering::Relaxed);
        } else {
            self.add_client_bytes(Frontend::Resp, Direction::Out, value_bytes(reply));
        }
    }

    pub fn add_client_bytes(&self, frontend: Frontend, direction: Direction, bytes: usize) {
        if bytes > 0 {
            self.client_bytes[frontend.index()][direction.index()]
                .fetch_add(bytes as u64, Ordering::Relaxed);
        }
    }

    /// Records the chunk bytes of one completed node request.
    pub fn node_call(&self, request: &NodeRequest, reply: &NodeReply) {
        let (direction, bytes) = match (request, reply) {
            (NodeRequest::Store { chunk, .. }, NodeReply::Stored { .. }) => {
                (Direction::Out, chunk.body.len())
            }
            (_, NodeReply::Chunk(chunk)) => (Direction::In, chunk.body.len()),
            _ => return,
        };
        self.node_bytes[direction.index()].fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// Requests completed so far and their latency, by frontend and command
    /// (`(frontend, command, latency)`).
    pub fn requests(
        &self,
    ) -> impl Iterator<Item = (Frontend, &'static str, HistogramSnapshot)> + '_ {
        let native = NativeCommand::ALL.iter().map(|command| {
            (
                Frontend::Native,
                command.label(),
                self.native[command.index()].snapshot(),
            )
        });
        let resp = self
            .resp
            .iter()
            .map(|(name, latency)| (Frontend::Resp, *name, latency.snapshot()));
        native.chain(resp)
    }

    /// Writes every series.
    pub fn encode(&self, encoder: &mut TextEncoder) {
        let requests: Vec<_> = self.requests().collect();
        let mut family = encoder.family(
            "infinicache_requests_total",
            "Client requests completed, by frontend and command (a native PUT is one put_chunk request per chunk).",
            MetricType::Counter,
        );
        for (frontend, command, latency) in &requests {
            family.sample(
                &[("frontend", frontend.label()), ("command", command)],
                latency.count,
            );
        }
        let mut family = encoder.family(
            "infinicache_request_duration_seconds",
            "Time from a request's dispatch to its last reply (a cancelled native GET: to the cancel), by frontend and command.",
            MetricType::Histogram,
        );
        for (frontend, command, latency) in &requests {
            family.histogram(
                &[("frontend", frontend.label()), ("command", command)],
                latency,
            );
        }

        let mut family = encoder.family(
            "infinicache_errors_total",
            "Error replies to clients, by frontend and kind (native: the protocol's error code; RESP: the error class).",
            MetricType::Counter,
        );
        for (kind, count) in NATIVE_ERRORS.iter().zip(&self.native_errors) {
            family.sample(&[("frontend", "native"), ("kind", kind)], load(count));
        }
        for (kind, count) in RESP_ERRORS.iter().zip(&self.resp_errors) {
            family.sample(&[("frontend", "resp"), ("kind", kind)], load(count));
        }

        let mut family = encoder.family(
            "infinicache_client_bytes_total",
            "Value bytes from (in) and to (out) clients: chunk bodies on the native frontend, bulk strings on RESP.",
            MetricType::Counter,
        );
        for frontend in Frontend::ALL {
            for direction in Direction::ALL {
                family.sample(
                    &[
                        ("frontend", frontend.label()),
                        ("direction", direction.label()),
                    ],
                    load(&self.client_bytes[frontend.index()][direction.index()]),
                );
            }
        }

        let mut family = encoder.family(
            "infinicache_node_bytes_total",
            "Chunk bytes stored on (out) and fetched from (in) cache nodes by client requests and repairs.",
            MetricType::Counter,
        );
        for direction in Direction::ALL {
            family.sample(
                &[("direction", direction.label())],
                load(&self.node_bytes[direction.index()]),
            );
        }
    }
}

fn load(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

/// Bytes of the values in a RESP frame: its bulk and verbatim strings.
fn value_bytes(frame: &Frame) -> usize {
    match frame {
        Frame::Bulk(bytes) => bytes.len(),
        Frame::Verbatim { text, .. } => text.len(),
        Frame::Array(items) | Frame::Set(items) => items.iter().map(value_bytes).sum(),
        Frame::Map(pairs) => pairs
            .iter()
            .map(|(key, value)| value_bytes(key) + value_bytes(value))
            .sum(),
        _ => 0,
    }
}

/// Records one request's completion and latency when dropped.
#[must_use = "the request is timed until the guard is dropped"]
#[derive(Debug)]
pub struct RequestTimer<'a> {
    metrics: &'a Metrics,
    frontend: Frontend,
    latency: &'a Histogram,
    started: Instant,
}

impl RequestTimer<'_> {
    /// Counts `bytes` of the request's values as received from the client.
    pub fn received(self, bytes: usize) -> Self {
        self.metrics
            .add_client_bytes(self.frontend, Direction::In, bytes);
        self
    }
}

impl Drop for RequestTimer<'_> {
    fn drop(&mut self) {
        self.latency.observe(self.started.elapsed());
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use infinicache::protocol::ErrorReply;

    use super::*;

    fn command(parts: &[&str]) -> Frame {
        Frame::Array(
            parts
                .iter()
                .map(|part| Frame::Bulk(Bytes::copy_from_slice(part.as_bytes())))
                .collect(),
        )
    }

    fn count(metrics: &Metrics, frontend: Frontend, name: &str) -> u64 {
        metrics
            .requests()
            .find(|(f, command, _)| *f == frontend && *command == name)
            .map(|(_, _, latency)| latency.count)
            .unwrap_or_else(|| panic!("no series for {name}"))
    }

    #[test]
    fn requests_are_counted_by_frontend_and_command() {
        let metrics = Metrics::new();
        drop(metrics.native(NativeCommand::Get));
        drop(metrics.native(NativeCommand::Get));
        drop(metrics.native(NativeCommand::PutChunk).received(100));
        drop(metrics.resp(&command(&["GeT", "k"])));
        drop(metrics.resp(&command(&["set", "k", "value"])));
        assert!(metrics.resp(&command(&["flushall"])).is_none());
        assert!(metrics.resp(&Frame::Integer(1)).is_none());
        assert_eq!(count(&metrics, Frontend::Native, "get"), 2);
        assert_eq!(count(&metrics, Frontend::Native, "put_chunk"), 1);
        assert_eq!(count(&metrics, Frontend::Native, "delete"), 0);
        assert_eq!(count(&metrics, Frontend::Resp, "get"), 1);
        assert_eq!(count(&metrics, Frontend::Resp, "set"), 1);
        // Every RESP command has a series, named as in the command table.
        for spec in crate::resp::commands::COMMANDS {
            count(&metrics, Frontend::Resp, spec.name);
        }
        assert_eq!(load(&metrics.client_bytes[0][0]), 100);
        // "GeT" "k" "set" "k" "value" "flushall": every bulk string counts.
        assert_eq!(load(&metrics.client_bytes[1][0]), 3 + 1 + 3 + 1 + 5 + 8);
    }

    #[test]
    fn errors_are_counted_by_kind() {
        let metrics = Metrics::new();
        metrics.native_reply(&ClientReply::Error(ErrorReply::new(
            ErrorCode::TooLarge,
            "x",
        )));
        metrics.native_reply(&ClientReply::Error(ErrorReply::new(
            ErrorCode::Other(99),
            "x",
        )));
        metrics.native_reply(&ClientReply::NotFound);
        metrics.resp_reply(&Frame::Error("NOAUTH Authentication required.".into()));
        metrics.resp_reply(&Frame::Error("ERR syntax error".into()));
        metrics.resp_reply(&Frame::Error("WEIRD thing".into()));
        metrics.resp_reply(&Frame::Array(vec![
            Frame::Bulk(Bytes::from_static(b"abc")),
            Frame::Null,
        ]));
        assert_eq!(
            load(&metrics.native_errors[native_error_index(ErrorCode::TooLarge)]),
            1
        );
        assert_eq!(load(&metrics.native_errors[11]), 1);
        assert_eq!(
            metrics.resp_errors.iter().map(load).collect::<Vec<_>>(),
            [1, 1, 0, 0, 0, 1]
        );
        assert_eq!(load(&metrics.client_bytes[1][1]), 3);
    }

    #[test]
    fn the_encoding_lists_every_series() {
        let metrics = Metrics::new();
        drop(metrics.native(NativeCommand::Exists));
        let mut encoder = TextEncoder::new();
        metrics.encode(&mut encoder);
        let text = encoder.finish();
        assert!(
            text.contains(
                "\ninfinicache_requests_total{frontend=\"native\",command=\"exists\"} 1\n"
            )
        );
        assert!(text.contains(
            "\ninfinicache_request_duration_seconds_count{frontend=\"native\",command=\"exists\"} 1\n"
        ));
        assert!(text.contains("\ninfinicache_errors_total{frontend=\"resp\",kind=\"NOAUTH\"} 0\n"));
        assert!(text.contains(
            "\ninfinicache_client_bytes_total{frontend=\"native\",direction=\"out\"} 0\n"
        ));
        assert!(text.contains("\ninfinicache_node_bytes_total{direction=\"in\"} 0\n"));
    }
}
