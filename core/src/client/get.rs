//! GET: ask for every chunk, decode from the first `k` valid ones.

use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use super::{Client, Error, offload, unexpected};
use crate::codec::{Chunk, CodecParams};
use crate::protocol::{ClientReply, ClientRequest, Key, ReplyStream};

/// The longest a GET that already holds `k` chunks waits for a missing *data*
/// chunk before rebuilding it from parity instead.
const MAX_DATA_GRACE: Duration = Duration::from_millis(1);

pub(super) async fn get(client: &Client, key: Key) -> Result<Option<Bytes>, Error> {
    let session = client.session_for(&key).await?;
    let mut replies = session.mux.stream(&ClientRequest::Get { key }).await?;

    let mut chunks = match next(&mut replies).await? {
        ClientReply::NotFound => return Ok(None),
        ClientReply::Object {
            version,
            object_len,
            params,
        } => Collector::new(version, object_len, params),
        other => return Err(unexpected(other, "Get")),
    };
    let codec = client.inner.codec_for(chunks.params);

    let object = loop {
        if chunks.enough() {
            // Chunks arrive in the order nodes answer, so the first `k` almost
            // always include parity, and rebuilding a data chunk costs about
            // as much as decoding twice. A missing data chunk is usually
            // microseconds behind: wait for it a little (never longer than
            // the rebuild would take), then decode with what is there.
            let deadline = Instant::now() + chunks.data_grace();
            while chunks.missing_data() {
                match tokio::time::timeout_at(deadline, replies.next()).await {
                    Ok(Some(reply)) => {
                        if chunks.absorb(reply.map_err(Error::from)).is_err() {
                            break;
                        }
                    }
                    Ok(None) | Err(_) => break,
                }
            }
            // Checksums are verified inside decode, while the bodies are
            // copied out anyway; only when that fails is each chunk checked
            // on its own, the corrupt ones counted as lost, and more awaited.
            let attempt = chunks.chunks.clone();
            let codec = codec.clone();
            match offload(chunks.object_len as usize, move || codec.decode(&attempt)).await? {
                Ok(object) => break object,
                Err(err) => chunks.discard_corrupt(err.to_string())?,
            }
        }
        if chunks.exhausted() {
            return Err(chunks.unavailable());
        }
        chunks.absorb(next(&mut replies).await)?;
    };

    // Enough chunks: tell the proxy to stop sending the stragglers, and stop
    // listening for them.
    let request_id = replies.request_id();
    drop(replies);
    let _ = session
        .mux
        .notify(&ClientRequest::Cancel { target: request_id }, 0)
        .await;
    Ok(Some(object))
}

/// The chunks of one GET gathered so far, and what went wrong with others.
struct Collector {
    version: u64,
    object_len: u64,
    params: CodecParams,
    chunks: Vec<Chunk>,
    /// Per index: a chunk or a failure for it has arrived.
    seen: Vec<bool>,
    failed: usize,
    last_failure: String,
}

impl Collector {
    fn new(version: u64, object_len: u64, params: CodecParams) -> Self {
        Collector {
            version,
            object_len,
            params,
            chunks: Vec::with_capacity(params.total_shards()),
            seen: vec![false; params.total_shards()],
            failed: 0,
            last_failure: String::new(),
        }
    }

    /// Takes one reply of the stream. Fails only for replies that end the
    /// GET (an error for the whole request, or the connection lost).
    fn absorb(&mut self, reply: Result<ClientReply, Error>) -> Result<(), Error> {
        match reply {
            Ok(ClientReply::Chunk(chunk)) => {
                let header = chunk.header;
                let index = usize::from(header.index);
                let belongs = header.version == self.version
                    && header.object_len == self.object_len
                    && header.params == self.params
                    && index < self.seen.len();
                if !belongs || self.seen[index] {
                    self.fail(format!(
                        "chunk {index} does not belong to version {}",
                        self.version
                    ));
                } else {
                    self.seen[index] = true;
                    self.chunks.push(chunk);
                }
            }
            Ok(ClientReply::ChunkFailed { index, error }) => {
                if let Some(seen) = self.seen.get_mut(usize::from(index)) {
                    *seen = true;
                }
                self.fail(format!("chunk {index}: {error}"));
            }
            Ok(other) => return Err(unexpected(other, "Get")),
            // A reply we cannot parse (e.g. a chunk with a corrupted header)
            // is one lost chunk, not a failed request.
            Err(Error::Protocol(reason)) => self.fail(reason),
            Err(err) => return Err(err),
        }
        Ok(())
    }

    fn fail(&mut self, reason: String) {
        self.failed += 1;
        self.last_failure = reason;
    }

    fn enough(&self) -> bool {
        self.chunks.len() >= self.params.data_shards()
    }

    fn exhausted(&self) -> bool {
        self.chunks.len() + self.failed >= self.params.total_shards()
    }

    /// Whether a data chunk may still arrive.
    fn missing_data(&self) -> bool {
        self.seen[..self.params.data_shards()]
            .iter()
            .any(|seen| !seen)
    }

    /// How long waiting for a data chunk may take: about what rebuilding it
    /// would cost (some 40 µs per MiB), capped.
    fn data_grace(&self) -> Duration {
        Duration::from_nanos(self.object_len / 25).min(MAX_DATA_GRACE)
    }

    /// After a failed decode: drops the chunks that fail their checksums.
    fn discard_corrupt(&mut self, reason: String) -> Result<(), Error> {
        let before = self.chunks.len();
        self.chunks.retain(|chunk| chunk.verify().is_ok());
        if before == self.chunks.len() {
            // Every chunk checks out, yet they do not decode.
            return Err(Error::Protocol(format!(
                "chunks of version {} do not decode: {reason}",
                self.version
            )));
        }
        self.failed += before - self.chunks.len();
        self.last_failure = reason;
        Ok(())
    }

    fn unavailable(&self) -> Error {
        Error::Unavailable(format!(
            "only {} of the {} chunks needed could be read ({} failed; last: {})",
            self.chunks.len(),
            self.params.data_shards(),
            self.failed,
            self.last_failure
        ))
    }
}

async fn next(replies: &mut ReplyStream<ClientReply>) -> Result<ClientReply, Error> {
    match replies.next().await {
        Some(reply) => Ok(reply?),
        None => Err(Error::Unavailable("proxy connection closed".into())),
    }
}
