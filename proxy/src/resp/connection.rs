//! One RESP connection: requests read from a buffer, replies written in
//! order by a writer task.
//!
//! Requests are executed one at a time, in order, as Redis does: a pipelined
//! `SET k v` then `GET k` must see the SET. Replies are encoded into an
//! [`Output`] and handed to the writer whenever no further request is
//! already buffered, so a pipeline is answered in few writes. The writer
//! runs on its own task so reading goes on while large replies are being
//! sent (up to `WRITE_QUEUE` batches: a client that writes a long
//! pipeline before reading anything is not stalled by its first replies),
//! and it writes bulk values straight from their buffers with vectored I/O,
//! without copying them. A client that reads nothing for the write stall
//! limit (`limits.write_timeout`) is dropped.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::time::Duration;

use crate::server::transport::{Halves, ReadHalf, WriteHalf};
use bytes::{Buf, Bytes, BytesMut};
use thiserror::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::frame::{Frame, Limits, Output, Protocol, ProtocolError, RequestParser};

/// Bytes asked of the socket per read (the buffer grows further only as
/// the bytes of a large value actually arrive).
const READ_CHUNK: usize = 64 * 1024;

/// Replies held before they are handed to the writer even though more
/// requests are buffered.
const FLUSH_AT: usize = 1024 * 1024;

/// Batches of replies queued for the writer.
const WRITE_QUEUE: usize = 64;

/// Most buffers written in one vectored write.
const MAX_IOVECS: usize = 64;

/// When closing, how long, and how many bytes, what the client still sends
/// is read and discarded (see [`Connection::close`]).
const LINGER: Duration = Duration::from_millis(250);
const LINGER_BYTES: usize = 1024 * 1024;

/// Why no request could be read.
#[derive(Debug, Error)]
pub enum ReadError {
    /// The bytes are not RESP: answer with the error and close.
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    /// The client closed the connection in the middle of a request.
    #[error("Protocol error: connection closed in the middle of a request")]
    Truncated,
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
}

/// The writer task is gone: the client closed the connection or a write
/// failed.
#[derive(Debug, Error)]
#[error("the connection is closed")]
pub struct Closed;

/// A client connection speaking RESP.
pub struct Connection {
    reader: ReadHalf,
    buffer: BytesMut,
    parser: RequestParser,
    output: Output,
    protocol: Protocol,
    writer: mpsc::Sender<Vec<Bytes>>,
    writer_task: JoinHandle<()>,
}

impl Connection {
    /// Wraps `stream`, reading requests within `limits`; a client that
    /// takes no reply bytes for `write_stall` is disconnected.
    pub fn new(stream: Halves, limits: Limits, write_stall: Duration) -> Self {
        let Halves {
            read: reader,
            write: writer,
        } = stream;
        let (tx, rx) = mpsc::channel(WRITE_QUEUE);
        Connection {
            reader,
            buffer: BytesMut::with_capacity(4096),
            parser: RequestParser::new(limits),
            output: Output::new(),
            protocol: Protocol::Resp2,
            writer: tx,
            writer_task: tokio::spawn(write_loop(writer, rx, write_stall)),
        }
    }

    /// The protocol replies are written in.
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// Switches the protocol replies are written in (`HELLO`).
    pub fn set_protocol(&mut self, protocol: Protocol) {
        self.protocol = protocol;
    }

    /// The next request: an array of bulk strings. `Ok(None)` when the
    /// client closed the connection between requests. Replies queued so far
    /// are handed to the writer before waiting for the socket.
    pub async fn read_request(&mut self, authenticated: bool) -> Result<Option<Frame>, ReadError> {
        loop {
            if let Some(request) = self.parser.parse(&mut self.buffer, authenticated)? {
                return Ok(Some(request));
            }
            if self.flush().await.is_err() {
                return Ok(None);
            }
            self.buffer.reserve(READ_CHUNK);
            if self.reader.read_buf(&mut self.buffer).await? == 0 {
                if self.buffer.is_empty() && self.parser.is_idle() {
                    return Ok(None);
                }
                return Err(ReadError::Truncated);
            }
        }
    }

    /// Queues a reply, handing the queue to the writer if it is large.
    pub async fn send(&mut self, frame: &Frame) -> Result<(), Closed> {
        frame.encode(self.protocol, &mut self.output);
        if self.output.len() >= FLUSH_AT {
            self.flush().await?;
        }
        Ok(())
    }

    /// Hands every queued reply to the writer.
    pub async fn flush(&mut self) -> Result<(), Closed> {
        if self.output.is_empty() {
            return Ok(());
        }
        let parts = self.output.take();
        self.writer.send(parts).await.map_err(|_| Closed)
    }

    /// Writes what is queued and closes the connection.
    ///
    /// Closing a socket whose unread input is not empty makes the kernel
    /// reset the connection, and a client may then lose the replies (an
    /// error explaining why we close, `QUIT`'s `+OK`) still on their way.
    /// So once the replies are written and our side is shut down, what the
    /// client still sends is read and discarded for a moment before the
    /// socket is closed.
    pub async fn close(mut self) {
        let _ = self.flush().await;
        drop(self.writer);
        let _ = self.writer_task.await;
        let reader = &mut self.reader;
        let _ = tokio::time::timeout(LINGER, async move {
            let mut sink = vec![0u8; 16 * 1024];
            let mut discarded = 0;
            while discarded < LINGER_BYTES {
                match reader.read(&mut sink).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => discarded += n,
                }
            }
        })
        .await;
    }
}

/// Writes reply batches in order until the connection ends, then shuts the
/// socket down (the client sees EOF after the last reply).
async fn write_loop(
    mut socket: WriteHalf,
    mut batches: mpsc::Receiver<Vec<Bytes>>,
    stall: Duration,
) {
    while let Some(parts) = batches.recv().await {
        if let Err(err) = write_all(&mut socket, parts, stall).await {
            tracing::debug!(error = %err, "RESP client write failed");
            return;
        }
    }
    let _ = socket.shutdown().await;
}

/// Writes `parts` in order with vectored writes, without copying them.
async fn write_all(socket: &mut WriteHalf, parts: Vec<Bytes>, stall: Duration) -> io::Result<()> {
    let mut parts: VecDeque<Bytes> = parts.into_iter().filter(|part| !part.is_empty()).collect();
    while !parts.is_empty() {
        let slices: Vec<IoSlice<'_>> = parts
            .iter()
            .take(MAX_IOVECS)
            .map(|part| IoSlice::new(part))
            .collect();
        let mut written = tokio::time::timeout(stall, socket.write_vectored(&slices))
            .await
            .map_err(|_| {
                io::Error::new(io::ErrorKind::TimedOut, "the client reads no replies")
            })??;
        if written == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        while written > 0 {
            let Some(front) = parts.front_mut() else {
                break;
            };
            if written >= front.len() {
                written -= front.len();
                parts.pop_front();
            } else {
                front.advance(written);
                written = 0;
            }
        }
    }
    Ok(())
}
