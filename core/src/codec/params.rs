//! Erasure-coding parameters.

use std::fmt;
use std::str::FromStr;

use super::error::CodecError;

/// Validated erasure-coding parameters: `k >= 1` data shards, `r >= 0`
/// parity shards, `k + r <= 256`.
///
/// The limits come from two places: Reed-Solomon over GF(2^8) has at most
/// 256 distinct evaluation points, and the [chunk header](super::ChunkHeader)
/// stores `k`, `r` and the chunk index in one byte each (so `k <= 255` and
/// `r <= 255` as well). Both counts are therefore kept as `u8`, which makes
/// the type two bytes, `Copy`, and impossible to construct out of range.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CodecParams {
    k: u8,
    r: u8,
}

impl CodecParams {
    /// The paper's default: 10 data + 2 parity chunks (20% overhead,
    /// survives the loss of any two cache nodes).
    pub const DEFAULT: CodecParams = CodecParams { k: 10, r: 2 };

    /// Upper bound of `k + r` (size of GF(2^8)).
    pub const MAX_TOTAL_SHARDS: usize = 256;

    /// Upper bound of `k` and of `r` individually (one header byte each).
    pub const MAX_SHARDS_PER_KIND: usize = 255;

    /// Validates `(k, r)`.
    ///
    /// # Errors
    /// [`CodecError::InvalidParams`] if `k == 0`, `k > 255`, `r > 255` or
    /// `k + r > 256`.
    pub fn new(data_shards: usize, parity_shards: usize) -> Result<Self, CodecError> {
        if data_shards == 0 {
            return Err(CodecError::InvalidParams(
                "at least one data shard is required (k >= 1)".into(),
            ));
        }
        if data_shards > Self::MAX_SHARDS_PER_KIND || parity_shards > Self::MAX_SHARDS_PER_KIND {
            return Err(CodecError::InvalidParams(format!(
                "k = {data_shards}, r = {parity_shards}: each of k and r must be at most {} \
                 (stored in one header byte)",
                Self::MAX_SHARDS_PER_KIND
            )));
        }
        // Both are <= 255 here, so the sum cannot overflow.
        if data_shards + parity_shards > Self::MAX_TOTAL_SHARDS {
            return Err(CodecError::InvalidParams(format!(
                "k + r = {data_shards} + {parity_shards} = {} exceeds {} (GF(2^8) limit)",
                data_shards + parity_shards,
                Self::MAX_TOTAL_SHARDS
            )));
        }
        // The range checks above make these conversions infallible; using
        // `try_from` keeps that reasoning local instead of relying on `as`.
        match (u8::try_from(data_shards), u8::try_from(parity_shards)) {
            (Ok(k), Ok(r)) => Ok(CodecParams { k, r }),
            _ => Err(CodecError::InvalidParams(format!(
                "k = {data_shards}, r = {parity_shards} out of range"
            ))),
        }
    }

    /// `k`: the number of data shards, and the number of chunks needed to
    /// rebuild an object.
    pub fn data_shards(&self) -> usize {
        usize::from(self.k)
    }

    /// `r`: the number of parity shards, i.e. how many lost chunks an object
    /// survives.
    pub fn parity_shards(&self) -> usize {
        usize::from(self.r)
    }

    /// `k + r`: the number of chunks an object is stored as.
    pub fn total_shards(&self) -> usize {
        usize::from(self.k) + usize::from(self.r)
    }

    /// Length of every chunk body of an object of `object_len` bytes:
    /// `max(1, ceil(object_len / k))`.
    ///
    /// Never 0, so an empty object goes through exactly the same encode and
    /// decode path as any other (shard math libraries reject empty shards).
    /// Saturates at `usize::MAX` on 32-bit targets for absurd lengths; such
    /// a length never matches a real body, so [`Chunk::verify`] rejects it.
    ///
    /// [`Chunk::verify`]: super::Chunk::verify
    pub fn shard_len(&self, object_len: u64) -> usize {
        let len = object_len.div_ceil(u64::from(self.k)).max(1);
        usize::try_from(len).unwrap_or(usize::MAX)
    }
}

impl Default for CodecParams {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Formats as `k+r`, e.g. `10+2`, the notation used in configs and logs.
impl fmt::Display for CodecParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}+{}", self.k, self.r)
    }
}

/// Parses the `k+r` notation produced by `Display` (e.g. `"10+2"`), so that
/// configuration files and command lines use the same spelling as logs.
impl FromStr for CodecParams {
    type Err = CodecError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad =
            || CodecError::InvalidParams(format!("expected \"k+r\" (e.g. \"10+2\"), got {s:?}"));
        let (k, r) = s.trim().split_once('+').ok_or_else(bad)?;
        let k: usize = k.trim().parse().map_err(|_| bad())?;
        let r: usize = r.trim().parse().map_err(|_| bad())?;
        Self::new(k, r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_ten_plus_two() {
        let p = CodecParams::DEFAULT;
        assert_eq!(
            (p.data_shards(), p.parity_shards(), p.total_shards()),
            (10, 2, 12)
        );
        assert_eq!(CodecParams::default(), p);
        assert_eq!(CodecParams::new(10, 2).ok(), Some(p));
    }

    #[test]
    fn limits() {
        assert!(CodecParams::new(1, 0).is_ok());
        assert!(CodecParams::new(255, 1).is_ok());
        assert!(CodecParams::new(1, 255).is_ok());
        assert!(CodecParams::new(128, 128).is_ok());
    }

    #[test]
    fn invalid_params_rejected() {
        for (k, r) in [
            (0, 0),
            (0, 2),
            (256, 0),
            (255, 2),
            (1, 256),
            (129, 128),
            (200, 57),
            (usize::MAX, 1),
        ] {
            match CodecParams::new(k, r) {
                Err(CodecError::InvalidParams(msg)) => assert!(!msg.is_empty()),
                other => panic!("({k}, {r}) should be rejected, got {other:?}"),
            }
        }
    }

    #[test]
    fn shard_len_rounds_up_and_is_never_zero() {
        let p = CodecParams::new(4, 2).expect("valid");
        assert_eq!(p.shard_len(0), 1);
        assert_eq!(p.shard_len(1), 1);
        assert_eq!(p.shard_len(4), 1);
        assert_eq!(p.shard_len(5), 2);
        assert_eq!(p.shard_len(8), 2);
        assert_eq!(p.shard_len(9), 3);
        let one = CodecParams::new(1, 0).expect("valid");
        assert_eq!(one.shard_len(0), 1);
        assert_eq!(one.shard_len(12345), 12345);
        assert_eq!(CodecParams::DEFAULT.shard_len(10 << 20), 1 << 20);
        let max_k = CodecParams::new(255, 1).expect("valid");
        assert_eq!(
            max_k.shard_len(u64::MAX),
            usize::try_from(u64::MAX.div_ceil(255)).unwrap_or(usize::MAX)
        );
    }

    #[test]
    fn display_and_parse_round_trip() {
        let p = CodecParams::new(4, 2).expect("valid");
        assert_eq!(p.to_string(), "4+2");
        assert_eq!("4+2".parse::<CodecParams>(), Ok(p));
        assert_eq!(" 10 + 2 ".parse::<CodecParams>(), Ok(CodecParams::DEFAULT));
        assert!(matches!(
            "4".parse::<CodecParams>(),
            Err(CodecError::InvalidParams(_))
        ));
        assert!(matches!(
            "0+2".parse::<CodecParams>(),
            Err(CodecError::InvalidParams(_))
        ));
        assert!(matches!(
            "x+2".parse::<CodecParams>(),
            Err(CodecError::InvalidParams(_))
        ));
    }
}
