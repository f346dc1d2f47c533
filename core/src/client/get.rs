//! GET: ask for every chunk, decode from the first `k` valid ones.

use bytes::Bytes;

use super::{Client, Error, offload, unexpected};
use crate::codec::Chunk;
use crate::protocol::{ClientReply, ClientRequest, Key};

pub(super) async fn get(client: &Client, key: Key) -> Result<Option<Bytes>, Error> {
    let session = client.session_for(&key).await?;
    let mut replies = session.mux.stream(&ClientRequest::Get { key }).await?;

    let (version, object_len, params) = match next(&mut replies).await? {
        ClientReply::NotFound => return Ok(None),
        ClientReply::Object {
            version,
            object_len,
            params,
        } => (version, object_len, params),
        other => return Err(unexpected(other, "Get")),
    };

    let needed = params.data_shards();
    let total = params.total_shards();
    let codec = client.inner.codec_for(params);
    let mut chunks: Vec<Chunk> = Vec::with_capacity(total);
    let mut seen = vec![false; total];
    let mut failed = 0usize;
    let mut last_failure = String::new();

    let object = loop {
        if chunks.len() >= needed {
            // Checksums are verified inside decode, while the bodies are
            // copied out anyway; only when that fails is each chunk checked
            // on its own, the corrupt ones counted as lost, and more awaited.
            let attempt = chunks.clone();
            let codec = codec.clone();
            match offload(object_len as usize, move || codec.decode(&attempt)).await? {
                Ok(object) => break object,
                Err(err) => {
                    let before = chunks.len();
                    chunks.retain(|chunk| chunk.verify().is_ok());
                    failed += before - chunks.len();
                    last_failure = err.to_string();
                    if chunks.len() >= needed {
                        // Every chunk checks out, yet they do not decode.
                        return Err(Error::Protocol(format!(
                            "chunks of version {version} do not decode: {err}"
                        )));
                    }
                }
            }
        }
        if chunks.len() + failed >= total {
            return Err(Error::Unavailable(format!(
                "only {} of the {needed} chunks needed could be read ({failed} failed; last: {last_failure})",
                chunks.len()
            )));
        }
        match next(&mut replies).await {
            Ok(ClientReply::Chunk(chunk)) => {
                let header = chunk.header;
                let index = usize::from(header.index);
                let belongs = header.version == version
                    && header.object_len == object_len
                    && header.params == params
                    && index < total;
                if !belongs || seen[index] {
                    failed += 1;
                    last_failure = format!("chunk {index} does not belong to version {version}");
                    continue;
                }
                seen[index] = true;
                chunks.push(chunk);
            }
            Ok(ClientReply::ChunkFailed { index, error }) => {
                failed += 1;
                if let Some(seen) = seen.get_mut(usize::from(index)) {
                    *seen = true;
                }
                last_failure = format!("chunk {index}: {error}");
            }
            Ok(other) => return Err(unexpected(other, "Get")),
            // A reply we cannot parse (e.g. a chunk with a corrupted header)
            // is one lost chunk, not a failed request.
            Err(Error::Protocol(reason)) => {
                failed += 1;
                last_failure = reason;
            }
            Err(err) => return Err(err),
        }
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

async fn next(
    replies: &mut crate::protocol::ReplyStream<ClientReply>,
) -> Result<ClientReply, Error> {
    match replies.next().await {
        Some(reply) => Ok(reply?),
        None => Err(Error::Unavailable("proxy connection closed".into())),
    }
}
