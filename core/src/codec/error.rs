//! Errors of the object codec.

/// Everything that can go wrong while splitting, verifying or rebuilding an
/// object.
///
/// The variants carry owned, human-readable context (not `&'static str`)
/// because these errors travel far from where they are raised: the proxy
/// turns them into wire-protocol error replies and the client logs them, and
/// in both places "which chunk, and why" is what an operator needs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// The requested `(k, r)` cannot be represented (see
    /// [`CodecParams::new`](super::CodecParams::new)).
    #[error("invalid codec parameters: {0}")]
    InvalidParams(String),

    /// A chunk header failed to parse: wrong length, unknown format, bad
    /// header CRC or impossible field values.
    #[error("invalid chunk header: {0}")]
    InvalidHeader(String),

    /// A chunk whose header is fine but whose body does not match it
    /// (wrong length or CRC32C mismatch).
    #[error("corrupt chunk {index}: {reason}")]
    CorruptChunk {
        /// Index of the chunk inside its object (`0..k+r`).
        index: u8,
        /// What did not match.
        reason: String,
    },

    /// Fewer than `needed` (= k) chunks survived verification and the
    /// majority vote, so the object cannot be rebuilt.
    #[error("not enough valid chunks: need {needed}, have {valid}")]
    NotEnoughChunks {
        /// Chunks required (the number of data shards `k`).
        needed: usize,
        /// Distinct valid chunks that agree with each other.
        valid: usize,
    },

    /// The chunks are individually valid but do not describe one object
    /// this codec can rebuild (other `(k, r)`, non-zero padding after
    /// reconstruction, ...).
    #[error("inconsistent chunks: {0}")]
    Inconsistent(String),

    /// A chunk index outside `0..k+r` was requested.
    #[error("chunk index {index} out of range: object has {total} chunks")]
    IndexOutOfRange {
        /// The offending index.
        index: usize,
        /// `k + r`.
        total: usize,
    },

    /// The shard buffers handed to an [`ErasureCoder`](super::ErasureCoder)
    /// have the wrong count or length, or the underlying library refused
    /// them. Indicates a caller bug rather than bad input data.
    #[error("erasure coding failed: {0}")]
    Erasure(String),
}
