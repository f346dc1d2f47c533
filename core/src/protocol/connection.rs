//! Reading and writing frames on a byte stream.

use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::sync::mpsc;

use super::{Frame, OutFrame, ProtocolError};

/// Reads at most this much ahead of the current frame: large frames grow the
/// buffer as their bytes arrive, never on the word of a length prefix alone.
const READ_CHUNK: usize = 256 * 1024;

/// Frames larger than this are read into an allocation of their own.
const EXACT_ALLOCATION_THRESHOLD: usize = 64 * 1024;

/// Reads frames from a byte stream.
///
/// Bodies are sliced out of the read buffer ([`bytes::Bytes`]), so reading a
/// 10 MiB chunk costs one copy from the socket and no more.
pub struct FrameReader<R> {
    inner: R,
    buf: BytesMut,
    max_frame_len: u32,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    /// Wraps a stream; frames longer than `max_frame_len` are refused.
    pub fn new(inner: R, max_frame_len: u32) -> Self {
        FrameReader {
            inner,
            buf: BytesMut::with_capacity(READ_CHUNK),
            max_frame_len,
        }
    }

    /// Reads the next frame.
    ///
    /// `Ok(None)` means the peer closed the connection between frames. Errors
    /// are fatal for the connection: an invalid length prefix leaves no way to
    /// find the next frame boundary.
    pub async fn read_frame(&mut self) -> Result<Option<Frame>, ProtocolError> {
        loop {
            if let Some(frame) = Frame::parse(&mut self.buf, self.max_frame_len)? {
                return Ok(Some(frame));
            }
            self.make_room()?;
            if self.inner.read_buf(&mut self.buf).await? == 0 {
                return if self.buf.is_empty() {
                    Ok(None)
                } else {
                    Err(ProtocolError::UnexpectedEof)
                };
            }
        }
    }

    /// Prepares the buffer for the next read.
    ///
    /// A large frame gets an allocation of exactly its own size as soon as
    /// its length prefix is in: its bytes are read straight into place (no
    /// regrowth copies), and its body, sliced out later, owns that allocation
    /// alone, so a node that keeps the body for hours holds no neighbouring
    /// frames' memory with it. The length was checked against the frame limit;
    /// pages of the allocation are only committed as the peer's bytes arrive.
    fn make_room(&mut self) -> Result<(), ProtocolError> {
        let Some(len) = Frame::peek_len(&self.buf, self.max_frame_len)? else {
            self.buf.reserve(READ_CHUNK);
            return Ok(());
        };
        let total = 4 + len as usize;
        if total > EXACT_ALLOCATION_THRESHOLD && self.buf.capacity() < total {
            // Only this frame's prefix is buffered (frames are parsed as soon
            // as they are complete), so this copies at most one read's worth.
            let mut exact = BytesMut::with_capacity(total);
            exact.extend_from_slice(&self.buf);
            self.buf = exact;
            return Ok(());
        }
        let missing = total.saturating_sub(self.buf.len());
        self.buf.reserve(missing.clamp(1, READ_CHUNK));
        Ok(())
    }

    /// Gives back the underlying stream (buffered bytes are discarded).
    pub fn into_inner(self) -> R {
        self.inner
    }

    /// The configured frame limit.
    pub fn max_frame_len(&self) -> u32 {
        self.max_frame_len
    }

    /// Changes the frame limit (after a handshake agreed on one).
    pub fn set_max_frame_len(&mut self, max_frame_len: u32) {
        self.max_frame_len = max_frame_len;
    }
}

/// Writes frames to a byte stream.
///
/// Small frames are coalesced in a buffer; bodies larger than the buffer are
/// written straight from their `Bytes` without being copied into it.
pub struct FrameWriter<W: AsyncWrite> {
    inner: BufWriter<W>,
    /// Longest the peer may take no bytes at all (see
    /// [`FrameWriter::set_stall_limit`]).
    stall: Option<Duration>,
}

impl<W: AsyncWrite + Unpin> FrameWriter<W> {
    /// Wraps a stream.
    pub fn new(inner: W) -> Self {
        FrameWriter {
            inner: BufWriter::with_capacity(64 * 1024, inner),
            stall: None,
        }
    }

    /// Fails writes (with `TimedOut`) once the peer has taken no bytes for
    /// `limit`. A slow reader keeps its connection as long as it makes
    /// progress; one that stopped reading is found out, so the frames queued
    /// for it (and whoever waits to queue more) do not wait forever.
    pub fn set_stall_limit(&mut self, limit: Option<Duration>) {
        self.stall = limit;
    }

    /// Runs one write step, bounded by the stall limit.
    async fn step<T>(
        stall: Option<Duration>,
        io: impl std::future::Future<Output = std::io::Result<T>>,
    ) -> std::io::Result<T> {
        let Some(limit) = stall else {
            return io.await;
        };
        tokio::time::timeout(limit, io).await.unwrap_or_else(|_| {
            Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("the peer took no data for {limit:?}"),
            ))
        })
    }

    /// Queues one frame; call [`FrameWriter::flush`] to push it out.
    pub async fn write_frame(&mut self, frame: &OutFrame) -> std::io::Result<()> {
        let stall = self.stall;
        // Each step is one buffer's worth at most (the head is small; a
        // large body goes out in as many writes as the socket takes), so
        // bounding each step bounds the time without progress.
        Self::step(stall, self.inner.write_all(frame.head())).await?;
        let mut body = frame.body().clone();
        while body.has_remaining() {
            let n = Self::step(stall, self.inner.write(&body)).await?;
            if n == 0 {
                return Err(std::io::ErrorKind::WriteZero.into());
            }
            body.advance(n);
        }
        Ok(())
    }

    /// Writes out everything queued.
    pub async fn flush(&mut self) -> std::io::Result<()> {
        Self::step(self.stall, self.inner.flush()).await
    }

    /// Writes one frame and flushes.
    pub async fn send(&mut self, frame: &OutFrame) -> std::io::Result<()> {
        self.write_frame(frame).await?;
        self.flush().await
    }

    /// Shuts down the write half.
    pub async fn shutdown(&mut self) -> std::io::Result<()> {
        self.inner.shutdown().await
    }
}

/// Runs a writer task: frames sent on the returned channel are written in
/// order, and the socket is flushed whenever the queue runs dry (so bursts of
/// small frames share one system call).
///
/// The task ends, shutting down the write half, when every sender is dropped
/// or the socket fails. The channel is bounded: producers wait when the peer
/// reads slower than they write.
pub fn spawn_writer<W>(
    mut writer: FrameWriter<W>,
    capacity: usize,
) -> (
    mpsc::Sender<OutFrame>,
    tokio::task::JoinHandle<std::io::Result<()>>,
)
where
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (tx, mut rx) = mpsc::channel::<OutFrame>(capacity);
    let task = tokio::spawn(async move {
        while let Some(frame) = rx.recv().await {
            writer.write_frame(&frame).await?;
            while let Ok(frame) = rx.try_recv() {
                writer.write_frame(&frame).await?;
            }
            writer.flush().await?;
        }
        writer.shutdown().await
    });
    (tx, task)
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    #[tokio::test]
    async fn frames_cross_a_stream() {
        let (a, b) = tokio::io::duplex(1024);
        let mut writer = FrameWriter::new(a);
        let mut reader = FrameReader::new(b, 1 << 20);
        let body = Bytes::from(vec![7u8; 100_000]);
        let out = OutFrame::builder(0x22, 9).finish(body.clone());
        let sent = tokio::spawn(async move {
            writer.send(&out).await?;
            writer.shutdown().await
        });
        let frame = reader.read_frame().await.expect("read").expect("a frame");
        assert_eq!(frame.request_id, 9);
        assert_eq!(frame.payload, body);
        assert_eq!(reader.read_frame().await, Ok(None));
        sent.await.expect("join").expect("write");
    }

    #[tokio::test]
    async fn eof_inside_a_frame_is_an_error() {
        let (mut a, b) = tokio::io::duplex(1024);
        let mut reader = FrameReader::new(b, 1 << 20);
        a.write_all(&[0, 0, 0, 20, 1, 0, 0]).await.expect("write");
        drop(a);
        assert_eq!(reader.read_frame().await, Err(ProtocolError::UnexpectedEof));
    }
}
