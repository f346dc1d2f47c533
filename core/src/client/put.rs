//! PUT: encode, then send every chunk at once.

use bytes::Bytes;
use futures::future::join_all;

use super::{Client, Error, offload, unexpected};
use crate::protocol::{ClientReply, ClientRequest, Key, PutChunk};

pub(super) async fn put(client: &Client, key: Key, value: Bytes) -> Result<u64, Error> {
    let session = client.session_for(&key).await?;
    let codec = client.inner.codec.clone();
    let params = codec.params();

    let shard_len = params.shard_len(value.len() as u64);
    let frame_len = PutChunk::frame_overhead(key.len()) + shard_len;
    if frame_len > session.max_frame_len as usize {
        return Err(Error::TooLarge {
            size: value.len() as u64,
            reason: format!(
                "a {shard_len}-byte chunk (with {} data shards) exceeds the proxy's frame limit of {} bytes",
                params.data_shards(),
                session.max_frame_len
            ),
        });
    }

    let size = value.len();
    let chunks = offload(size, move || codec.encode(&value, 0)).await??;

    // Each chunk is its own request; the proxy answers all of them once the
    // whole object is stored and visible.
    let put_id = rand::random::<u64>();
    let calls = chunks.into_iter().map(|chunk| {
        let request = ClientRequest::Put(PutChunk {
            key: key.clone(),
            put_id,
            chunk,
        });
        let mux = session.mux.clone();
        async move { mux.call(&request).await }
    });
    let mut version = None;
    let mut first_error = None;
    for reply in join_all(calls).await {
        match reply.map_err(Error::from) {
            Ok(ClientReply::Stored { version: v }) => {
                version = Some(v);
            }
            Ok(other) => {
                first_error.get_or_insert(unexpected(other, "PutChunk"));
            }
            Err(err) => {
                first_error.get_or_insert(err);
            }
        }
    }
    match (first_error, version) {
        (Some(err), _) => Err(err),
        (None, Some(version)) => Ok(version),
        (None, None) => Err(Error::Protocol("no reply to PUT".into())),
    }
}
