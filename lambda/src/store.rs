//! The node's chunk store: plain process memory that outlives invocations.
//!
//! Lambda keeps a function's process (and so this store) alive between
//! invocations until the provider reclaims the environment; that memory is
//! the cache.

use std::collections::HashMap;

use bytes::Bytes;
use infinicache::codec::Chunk;
use infinicache::protocol::{
    ChunkId as WireChunkId, ErrorCode, ErrorReply, Key, NodeReply, NodeRequest, stored_chunk_cost,
};

/// Bodies below this size are copied into their own allocation when stored:
/// a small body is a slice of a shared read buffer, and keeping it would pin
/// the whole buffer for as long as the chunk lives.
const COPY_BELOW: usize = 256 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ChunkId {
    key: Key,
    version: u64,
    index: u8,
}

/// Chunks by `(key, version, index)`, with capacity accounting.
#[derive(Debug)]
pub struct ChunkStore {
    chunks: HashMap<ChunkId, Chunk>,
    used: u64,
    capacity: u64,
}

impl ChunkStore {
    /// An empty store that accepts up to `capacity` bytes (bodies plus overhead).
    pub fn new(capacity: u64) -> Self {
        ChunkStore {
            chunks: HashMap::new(),
            used: 0,
            capacity,
        }
    }

    pub fn used(&self) -> u64 {
        self.used
    }

    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    pub fn len(&self) -> u64 {
        self.chunks.len() as u64
    }

    /// Answers one request from the proxy.
    pub fn apply(&mut self, request: NodeRequest) -> NodeReply {
        match request {
            NodeRequest::Store { key, chunk } => self.store(key, chunk),
            NodeRequest::Fetch {
                key,
                version,
                index,
            } => match self.chunks.get(&ChunkId {
                key,
                version,
                index,
            }) {
                Some(chunk) => NodeReply::Chunk(chunk.clone()),
                None => NodeReply::Missing,
            },
            NodeRequest::Drop {
                key,
                version,
                index,
            } => {
                let id = ChunkId {
                    key,
                    version,
                    index,
                };
                let existed = match self.chunks.remove(&id) {
                    Some(chunk) => {
                        self.used -= cost(&id, &chunk);
                        true
                    }
                    None => false,
                };
                NodeReply::Dropped {
                    used: self.used,
                    existed,
                }
            }
            NodeRequest::Ping => NodeReply::Pong {
                used: self.used,
                chunks: self.len(),
            },
            NodeRequest::List => NodeReply::Inventory(
                self.chunks
                    .keys()
                    .map(|id| WireChunkId {
                        key: id.key.clone(),
                        version: id.version,
                        index: id.index,
                    })
                    .collect(),
            ),
            NodeRequest::ByeAck | NodeRequest::Stay => NodeReply::Error(ErrorReply::new(
                ErrorCode::Protocol,
                "ByeAck and Stay answer a Bye; they are not requests",
            )),
        }
    }

    fn store(&mut self, key: Key, chunk: Chunk) -> NodeReply {
        // Never keep a chunk that is already corrupt: it would be served as
        // data later. (The client verifies too; this catches it at the source.)
        if let Err(err) = chunk.verify() {
            return NodeReply::Error(ErrorReply::new(ErrorCode::InvalidArgument, err.to_string()));
        }
        let id = ChunkId {
            key,
            version: chunk.header.version,
            index: chunk.header.index,
        };
        let chunk = if chunk.body.len() < COPY_BELOW {
            Chunk {
                header: chunk.header,
                body: Bytes::copy_from_slice(&chunk.body),
            }
        } else {
            chunk
        };
        let new_cost = cost(&id, &chunk);
        let old_cost = self.chunks.get(&id).map_or(0, |old| cost(&id, old));
        let after = self.used - old_cost + new_cost;
        if after > self.capacity {
            return NodeReply::Error(ErrorReply::new(
                ErrorCode::CapacityExceeded,
                format!(
                    "chunk of {new_cost} bytes does not fit: {} of {} bytes used",
                    self.used, self.capacity
                ),
            ));
        }
        self.chunks.insert(id, chunk);
        self.used = after;
        NodeReply::Stored { used: self.used }
    }
}

fn cost(id: &ChunkId, chunk: &Chunk) -> u64 {
    stored_chunk_cost(id.key.len(), chunk.body.len())
}

#[cfg(test)]
mod tests {
    use infinicache::codec::{CodecParams, ObjectCodec};

    use super::*;

    fn chunks(len: usize, version: u64) -> Vec<Chunk> {
        let codec = ObjectCodec::new(CodecParams::new(2, 1).expect("params"));
        codec
            .encode(&Bytes::from(vec![5u8; len]), version)
            .expect("encode")
    }

    fn key(name: &str) -> Key {
        Key::try_from(name).expect("key")
    }

    #[test]
    fn store_fetch_drop() {
        let mut store = ChunkStore::new(1 << 20);
        let chunk = chunks(1000, 7).remove(0);
        assert!(matches!(
            store.apply(NodeRequest::Store {
                key: key("a"),
                chunk: chunk.clone()
            }),
            NodeReply::Stored { .. }
        ));
        match store.apply(NodeRequest::Fetch {
            key: key("a"),
            version: 7,
            index: 0,
        }) {
            NodeReply::Chunk(got) => assert_eq!(got.body, chunk.body),
            other => panic!("unexpected {other:?}"),
        }
        // Another version of the same index is a different chunk.
        assert!(matches!(
            store.apply(NodeRequest::Fetch {
                key: key("a"),
                version: 8,
                index: 0
            }),
            NodeReply::Missing
        ));
        assert!(matches!(
            store.apply(NodeRequest::Drop {
                key: key("a"),
                version: 7,
                index: 0
            }),
            NodeReply::Dropped {
                used: 0,
                existed: true
            }
        ));
        assert_eq!(store.len(), 0);
    }

    #[test]
    fn refuses_writes_over_capacity() {
        let mut store = ChunkStore::new(2_000);
        let mut parts = chunks(2_000, 1);
        assert!(matches!(
            store.apply(NodeRequest::Store {
                key: key("a"),
                chunk: parts.remove(0)
            }),
            NodeReply::Stored { .. }
        ));
        match store.apply(NodeRequest::Store {
            key: key("a"),
            chunk: parts.remove(0),
        }) {
            NodeReply::Error(err) => assert_eq!(err.code, ErrorCode::CapacityExceeded),
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(store.len(), 1, "the refused chunk must not be kept");
    }

    #[test]
    fn refuses_corrupt_chunks() {
        let mut store = ChunkStore::new(1 << 20);
        let mut chunk = chunks(100, 1).remove(0);
        let mut body = chunk.body.to_vec();
        body[0] ^= 1;
        chunk.body = Bytes::from(body);
        assert!(matches!(
            store.apply(NodeRequest::Store {
                key: key("a"),
                chunk
            }),
            NodeReply::Error(_)
        ));
        assert_eq!(store.used(), 0);
    }

    #[test]
    fn ping_and_list_report_what_is_held() {
        let mut store = ChunkStore::new(1 << 20);
        for (name, chunk) in [
            ("a", chunks(100, 3).remove(1)),
            ("b", chunks(10, 4).remove(0)),
        ] {
            store.apply(NodeRequest::Store {
                key: key(name),
                chunk,
            });
        }
        match store.apply(NodeRequest::Ping) {
            NodeReply::Pong { used, chunks } => {
                assert_eq!((used, chunks), (store.used(), 2));
            }
            other => panic!("unexpected {other:?}"),
        }
        let NodeReply::Inventory(mut held) = store.apply(NodeRequest::List) else {
            panic!("List must answer with an inventory");
        };
        held.sort();
        assert_eq!(
            held,
            vec![
                WireChunkId {
                    key: key("a"),
                    version: 3,
                    index: 1
                },
                WireChunkId {
                    key: key("b"),
                    version: 4,
                    index: 0
                },
            ]
        );
    }

    #[test]
    fn overwriting_the_same_chunk_is_accounted_once() {
        let mut store = ChunkStore::new(1 << 20);
        let chunk = chunks(1000, 1).remove(0);
        store.apply(NodeRequest::Store {
            key: key("a"),
            chunk: chunk.clone(),
        });
        let used = store.used();
        store.apply(NodeRequest::Store {
            key: key("a"),
            chunk,
        });
        assert_eq!(store.used(), used);
    }
}
