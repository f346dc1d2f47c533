//! # infinicache
//!
//! The client side of InfiniCache: an object cache whose storage lives in the
//! memory of serverless functions.
//!
//! * [`codec`] splits an object into `k` data and `r` parity chunks
//!   (Reed-Solomon) and rebuilds it from any `k` valid chunks.
//! * [`protocol`] is the binary wire protocol spoken between clients, the
//!   proxy and the cache nodes (byte layouts in `docs/protocol.md`).
//! * [`Client`] is the async client: it encodes objects, sends the chunks to a
//!   proxy in parallel and, on GET, returns as soon as any `k` valid chunks
//!   have arrived, without waiting for stragglers.
//!
//! ```no_run
//! # async fn demo() -> Result<(), infinicache::Error> {
//! let client = infinicache::Client::builder()
//!     .proxy("127.0.0.1:6378")
//!     .connect()
//!     .await?;
//! client.put("greeting", b"hello".to_vec()).await?;
//! assert_eq!(client.get("greeting").await?.as_deref(), Some(&b"hello"[..]));
//! # Ok(())
//! # }
//! ```

pub mod client;
pub mod codec;
pub mod protocol;

pub use client::{Client, ClientBuilder, Error};
pub use codec::{CodecParams, ObjectCodec};
pub use protocol::Key;
