//! Many requests in flight on one connection.
//!
//! The original InfiniCache allowed one outstanding request per node
//! connection. Here every request gets a fresh request id, replies are routed
//! back by that id, and any number of requests share the connection. The
//! same machinery serves the client's connections to proxies and the
//! proxy's connections to nodes.

use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::{Decode, Encode, FrameReader, FrameWriter, OutFrame, ProtocolError, spawn_writer};

/// Frames queued for the writer before senders wait.
const WRITE_QUEUE: usize = 256;

/// Why a multiplexed request failed at the transport level.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum MuxError {
    /// The connection is closed (the reason says why).
    #[error("connection closed: {0}")]
    Closed(String),
    /// The reply to this request could not be parsed.
    #[error("malformed reply: {0}")]
    Protocol(#[from] ProtocolError),
}

type Delivery<Rep> = Result<Rep, MuxError>;

enum Slot<Rep> {
    Once(oneshot::Sender<Delivery<Rep>>),
    Stream(mpsc::UnboundedSender<Delivery<Rep>>),
}

struct Shared<Rep> {
    /// `None` once the connection is closed: new requests fail at once.
    pending: Mutex<Option<HashMap<u64, Slot<Rep>>>>,
    close_reason: Mutex<String>,
    next_id: AtomicU64,
    /// `None` once closed: dropping the last sender lets the writer task
    /// flush what is queued and shut the write half, so the peer sees the
    /// connection end even while clones of the handle are still around.
    tx: Mutex<Option<mpsc::Sender<OutFrame>>>,
    reader: Mutex<Option<JoinHandle<()>>>,
    /// Set by [`Mux::seal`]: why new requests are refused while the ones
    /// already sent still get their replies.
    sealed: Mutex<Option<String>>,
}

impl<Rep> Shared<Rep> {
    fn register(&self, slot: Slot<Rep>) -> Result<u64, MuxError> {
        let mut pending = self.pending.lock();
        let Some(map) = pending.as_mut() else {
            return Err(MuxError::Closed(self.close_reason.lock().clone()));
        };
        if let Some(reason) = self.sealed.lock().as_ref() {
            return Err(MuxError::Closed(reason.clone()));
        }
        // Request id 0 is reserved for unsolicited messages.
        let id = self.next_id.fetch_add(1, Ordering::Relaxed).max(1);
        map.insert(id, slot);
        Ok(id)
    }

    fn forget(&self, id: u64) {
        if let Some(map) = self.pending.lock().as_mut() {
            map.remove(&id);
        }
    }

    fn close(&self, reason: String) {
        self.tx.lock().take();
        let slots = self.pending.lock().take();
        *self.close_reason.lock() = reason.clone();
        for slot in slots.into_iter().flat_map(HashMap::into_values) {
            let err = Err(MuxError::Closed(reason.clone()));
            match slot {
                Slot::Once(tx) => drop(tx.send(err)),
                Slot::Stream(tx) => drop(tx.send(err)),
            }
        }
    }
}

impl<Rep> Drop for Shared<Rep> {
    fn drop(&mut self) {
        if let Some(reader) = self.reader.lock().take() {
            reader.abort();
        }
    }
}

/// The requesting end of a multiplexed connection.
///
/// Cheap to clone; the connection closes when the last clone is dropped.
pub struct Mux<Req, Rep> {
    shared: Arc<Shared<Rep>>,
    _req: PhantomData<fn(Req)>,
}

impl<Req, Rep> Clone for Mux<Req, Rep> {
    fn clone(&self) -> Self {
        Mux {
            shared: self.shared.clone(),
            _req: PhantomData,
        }
    }
}

impl<Req: Encode, Rep: Decode + Send + 'static> Mux<Req, Rep> {
    /// Starts the reader and writer tasks for a connection whose handshake is
    /// done. Replies with request id 0 (unsolicited messages, such as a
    /// node's Bye) go to `unsolicited`, when given.
    pub fn start<R, W>(
        mut reader: FrameReader<R>,
        writer: FrameWriter<W>,
        unsolicited: Option<mpsc::UnboundedSender<Rep>>,
    ) -> Self
    where
        R: AsyncRead + Unpin + Send + 'static,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let (tx, _writer) = spawn_writer(writer, WRITE_QUEUE);
        let shared = Arc::new(Shared {
            pending: Mutex::new(Some(HashMap::new())),
            close_reason: Mutex::new(String::new()),
            next_id: AtomicU64::new(1),
            tx: Mutex::new(Some(tx)),
            reader: Mutex::new(None),
            sealed: Mutex::new(None),
        });
        let weak = Arc::downgrade(&shared);
        let task = tokio::spawn(async move {
            let reason = loop {
                let frame = match reader.read_frame().await {
                    Ok(Some(frame)) => frame,
                    Ok(None) => break "closed by peer".to_string(),
                    Err(err) => break err.to_string(),
                };
                let Some(shared) = weak.upgrade() else { return };
                let id = frame.request_id;
                let reply = Rep::decode(frame).map_err(MuxError::from);
                if id == 0 {
                    if let (Some(tx), Ok(reply)) = (&unsolicited, reply) {
                        let _ = tx.send(reply);
                    }
                    continue;
                }
                let mut pending = shared.pending.lock();
                let Some(map) = pending.as_mut() else { return };
                match map.remove(&id) {
                    Some(Slot::Once(tx)) => drop(tx.send(reply)),
                    // Keep a stream registered while its reader is alive.
                    Some(Slot::Stream(tx)) if tx.send(reply).is_ok() => {
                        map.insert(id, Slot::Stream(tx));
                    }
                    Some(Slot::Stream(_)) => {}
                    // The requester gave up (timeout, cancelled, or a GET
                    // that already had enough chunks): drop the straggler.
                    None => {}
                }
            };
            if let Some(shared) = weak.upgrade() {
                shared.close(reason);
            }
        });
        *shared.reader.lock() = Some(task);
        Mux {
            shared,
            _req: PhantomData,
        }
    }

    /// Sends a request and waits for its single reply.
    ///
    /// Dropping the future (for example on a timeout) forgets the request;
    /// a late reply is discarded.
    pub async fn call(&self, request: &Req) -> Result<Rep, MuxError> {
        let (tx, rx) = oneshot::channel();
        let id = self.shared.register(Slot::Once(tx))?;
        let guard = Forget {
            shared: &self.shared,
            id,
        };
        self.write(request.encode(id)).await?;
        let reply = rx
            .await
            .unwrap_or_else(|_| Err(MuxError::Closed(self.shared.close_reason.lock().clone())));
        drop(guard);
        reply
    }

    /// Sends a request whose replies arrive as a stream; the stream stays
    /// registered until dropped.
    pub async fn stream(&self, request: &Req) -> Result<ReplyStream<Rep>, MuxError> {
        let (tx, rx) = mpsc::unbounded_channel();
        let id = self.shared.register(Slot::Stream(tx))?;
        let stream = ReplyStream {
            shared: self.shared.clone(),
            id,
            rx,
        };
        self.write(request.encode(id)).await?;
        Ok(stream)
    }

    /// Sends a message that has no reply, under the given request id.
    pub async fn notify(&self, message: &Req, request_id: u64) -> Result<(), MuxError> {
        self.write(message.encode(request_id)).await
    }

    async fn write(&self, frame: OutFrame) -> Result<(), MuxError> {
        let tx = self.shared.tx.lock().clone();
        match tx {
            Some(tx) => tx
                .send(frame)
                .await
                .map_err(|_| MuxError::Closed("writer stopped".into())),
            None => Err(MuxError::Closed(self.shared.close_reason.lock().clone())),
        }
    }

    /// Whether the connection has closed.
    pub fn is_closed(&self) -> bool {
        self.shared.pending.lock().is_none()
    }

    /// Whether the connection was sealed (see [`Mux::seal`]) or closed: it
    /// takes no new requests.
    pub fn is_sealed(&self) -> bool {
        self.is_closed() || self.shared.sealed.lock().is_some()
    }

    /// How many requests have been sent on this connection (replies or not).
    pub fn requests_sent(&self) -> u64 {
        self.shared
            .next_id
            .load(Ordering::Relaxed)
            .saturating_sub(1)
    }

    /// Whether two handles share one connection.
    pub fn same_connection(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }

    /// Number of requests waiting for replies.
    pub fn in_flight(&self) -> usize {
        self.shared.pending.lock().as_ref().map_or(0, HashMap::len)
    }

    /// Refuses new requests (as closed, for `reason`) while the ones already
    /// sent still get their replies: for a peer about to leave, which
    /// answers what it received before it was told to go and nothing after.
    pub fn seal(&self, reason: impl Into<String>) {
        let _pending = self.shared.pending.lock();
        *self.shared.sealed.lock() = Some(reason.into());
    }

    /// Fails every pending request, refuses new ones, and closes the
    /// sending half once what is queued is written (the reader keeps
    /// running until the peer closes too, or the last clone is dropped).
    pub fn close(&self, reason: impl Into<String>) {
        self.shared.close(reason.into());
    }
}

struct Forget<'a, Rep> {
    shared: &'a Shared<Rep>,
    id: u64,
}

impl<Rep> Drop for Forget<'_, Rep> {
    fn drop(&mut self) {
        self.shared.forget(self.id);
    }
}

/// The replies to one streamed request, in arrival order.
pub struct ReplyStream<Rep> {
    shared: Arc<Shared<Rep>>,
    id: u64,
    rx: mpsc::UnboundedReceiver<Delivery<Rep>>,
}

impl<Rep> ReplyStream<Rep> {
    /// The next reply; `None` after the connection closed and every reply
    /// received before was consumed.
    pub async fn next(&mut self) -> Option<Result<Rep, MuxError>> {
        self.rx.recv().await
    }

    /// The request id the replies belong to.
    pub fn request_id(&self) -> u64 {
        self.id
    }
}

impl<Rep> Drop for ReplyStream<Rep> {
    fn drop(&mut self) {
        self.shared.forget(self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{NodeReply, NodeRequest};

    #[tokio::test]
    async fn a_sealed_link_refuses_new_requests_and_answers_the_old() {
        let (ours, theirs) = tokio::io::duplex(1 << 16);
        let (read, write) = tokio::io::split(ours);
        let mux: Mux<NodeRequest, NodeReply> = Mux::start(
            FrameReader::new(read, 1 << 20),
            FrameWriter::new(write),
            None,
        );
        let (peer_read, peer_write) = tokio::io::split(theirs);
        let mut peer_reader = FrameReader::new(peer_read, 1 << 20);
        let mut peer_writer = FrameWriter::new(peer_write);

        let first = tokio::spawn({
            let mux = mux.clone();
            async move { mux.call(&NodeRequest::Ping).await }
        });
        let frame = peer_reader
            .read_frame()
            .await
            .expect("read")
            .expect("a request");
        mux.seal("the node is leaving");
        match mux.call(&NodeRequest::List).await {
            Err(MuxError::Closed(reason)) => assert_eq!(reason, "the node is leaving"),
            other => panic!("a new request on a sealed link: {other:?}"),
        }
        peer_writer
            .send(&NodeReply::Pong { used: 1, chunks: 2 }.encode(frame.request_id))
            .await
            .expect("answer");
        let reply = first
            .await
            .expect("task")
            .expect("the earlier request's reply");
        assert!(matches!(reply, NodeReply::Pong { used: 1, chunks: 2 }));
        assert!(!mux.is_closed(), "sealed is not closed");
        assert!(mux.is_sealed());
    }
}
