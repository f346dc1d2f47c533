//! One serving invocation: dial the proxy, answer its requests, and return
//! once idle.
//!
//! A Lambda function cannot accept connections, so the node dials out to the
//! proxy's node listener and presents the per-invocation token it was given.
//! From then on the proxy asks and the node answers, many requests in flight
//! at once. When the node has been idle long enough (see
//! [`crate::schedule`]) it says `Bye`, keeps answering whatever the proxy sent
//! before seeing it, and returns when the proxy acknowledges with `ByeAck`.
//! The proxy may decline with `Stay` instead (it is syncing a backup through
//! this invocation): the node then serves on as if it had just been active.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use infinicache::protocol::{
    DEFAULT_MAX_FRAME_LEN, Decode, Encode, ErrorReply, FrameReader, FrameWriter, Hello, NodeHello,
    NodeReply, NodeRequest, ServeArgs, Welcome, spawn_writer,
};
use thiserror::Error;
use tokio::net::TcpStream;

use crate::Node;
use crate::schedule::ReturnPolicy;

/// How long to wait for the proxy to accept the connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long to wait for `ByeAck` before returning anyway.
const BYE_GRACE: Duration = Duration::from_secs(2);
/// Replies queued before the request loop waits for the socket.
const REPLY_QUEUE: usize = 256;

/// Why serving failed (reported to the platform as a function error).
#[derive(Debug, Error)]
pub enum SessionError {
    #[error("cannot reach proxy {proxy}: {reason}")]
    Connect { proxy: String, reason: String },
    #[error("proxy refused the node: {0}")]
    Refused(ErrorReply),
    #[error("handshake failed: {0}")]
    Handshake(String),
}

/// How a serving invocation ended.
#[derive(Debug)]
pub struct Outcome {
    pub served: u64,
    pub reason: &'static str,
}

/// Serves the proxy until idle, the deadline nears, or the proxy goes away.
pub async fn serve(
    node: Arc<Node>,
    args: &ServeArgs,
    deadline: SystemTime,
) -> Result<Outcome, SessionError> {
    let start = Instant::now();
    let leave_by = leave_by(start, deadline);
    let connect_error = |reason: String| SessionError::Connect {
        proxy: args.proxy.clone(),
        reason,
    };
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&args.proxy))
        .await
        .map_err(|_| connect_error("timed out".into()))?
        .map_err(|err| connect_error(err.to_string()))?;
    stream
        .set_nodelay(true)
        .map_err(|err| connect_error(err.to_string()))?;
    let (read, write) = stream.into_split();
    let mut reader = FrameReader::new(read, DEFAULT_MAX_FRAME_LEN);
    let mut writer = FrameWriter::new(write);

    let hello = {
        let store = node.store.lock();
        Hello::Node(NodeHello {
            node_id: args.node_id,
            token: args.token.clone().into_bytes().into(),
            instance_id: node.instance_id,
            capacity: store.capacity(),
            used: store.used(),
            chunks: store.len(),
        })
    };
    writer
        .send(&hello.encode(0))
        .await
        .map_err(|err| connect_error(err.to_string()))?;
    let frame = tokio::time::timeout(CONNECT_TIMEOUT, reader.read_frame())
        .await
        .map_err(|_| SessionError::Handshake("no answer to Hello".into()))?
        .map_err(|err| SessionError::Handshake(err.to_string()))?
        .ok_or_else(|| SessionError::Handshake("proxy closed the connection".into()))?;
    let welcome = <Result<Welcome, ErrorReply>>::decode(frame)
        .map_err(|err| SessionError::Handshake(err.to_string()))?
        .map_err(SessionError::Refused)?;
    reader.set_max_frame_len(welcome.max_frame_len);

    let (replies, writer_task) = spawn_writer(writer, REPLY_QUEUE);
    let policy = ReturnPolicy::new(
        start,
        Duration::from_millis(args.billing_tick_ms),
        Duration::from_millis(args.idle_timeout_ms),
    );
    let mut last_activity = start;
    let mut served = 0u64;
    let mut bye_sent_at: Option<Instant> = None;

    let reason = loop {
        let wake = match bye_sent_at {
            Some(sent) => sent + BYE_GRACE,
            None => policy.return_at(last_activity).min(leave_by),
        };
        tokio::select! {
            frame = reader.read_frame() => {
                let frame = match frame {
                    Ok(Some(frame)) => frame,
                    Ok(None) => break "proxy closed the connection",
                    Err(err) => {
                        tracing::warn!(error = %err, "bad frame from proxy");
                        break "protocol error";
                    }
                };
                let request_id = frame.request_id;
                let reply = match NodeRequest::decode(frame) {
                    Ok(NodeRequest::ByeAck) if bye_sent_at.is_some() => break "idle",
                    Ok(NodeRequest::Stay) if bye_sent_at.is_some() => {
                        // Near the deadline the node leaves regardless (the
                        // proxy learns it from the connection closing).
                        if Instant::now() < leave_by {
                            bye_sent_at = None;
                            last_activity = Instant::now();
                        }
                        continue;
                    }
                    Ok(request) => node.store.lock().apply(request),
                    Err(err) => NodeReply::Error(ErrorReply::from(&err)),
                };
                served += 1;
                last_activity = Instant::now();
                if replies.send(reply.encode(request_id)).await.is_err() {
                    break "proxy connection failed";
                }
            }
            () = tokio::time::sleep_until(wake.into()) => {
                if bye_sent_at.is_some() {
                    break "idle (no ByeAck)";
                }
                let now = Instant::now();
                if now >= leave_by || now >= policy.return_at(last_activity) {
                    if replies.send(NodeReply::Bye.encode(0)).await.is_err() {
                        break "proxy connection failed";
                    }
                    bye_sent_at = Some(now);
                }
            }
        }
    };
    // Flush every reply before returning: once the function returns, the
    // environment is frozen and unsent bytes would be stuck.
    drop(replies);
    if let Ok(Err(err)) = writer_task.await {
        tracing::debug!(error = %err, "closing the proxy connection");
    }
    Ok(Outcome { served, reason })
}

/// When to leave at the latest: before the invocation deadline, keeping a
/// tenth of the time (at most 1 s) to say goodbye and return.
fn leave_by(start: Instant, deadline: SystemTime) -> Instant {
    let now_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let deadline_epoch = deadline.duration_since(UNIX_EPOCH).unwrap_or_default();
    let remaining = deadline_epoch.saturating_sub(now_epoch);
    let safety = (remaining / 10).min(Duration::from_secs(1));
    start + remaining.saturating_sub(safety)
}
