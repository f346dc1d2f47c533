//! The raw shard math, behind a small trait so that the object codec can be
//! measured against (or switched to) other implementations.
//!
//! An [`ErasureCoder`] knows nothing about chunk headers, CRCs, padding or
//! objects: it maps `k` equally long data shards to `r` parity shards and
//! back. Everything else lives in [`ObjectCodec`](super::ObjectCodec).

use std::fmt;

use reed_solomon_erasure::galois_8;

use super::error::CodecError;
use super::params::CodecParams;

/// Systematic erasure code over equally long byte shards.
///
/// Implementations must be deterministic and agree with each other bit for
/// bit: chunks written by one process are decoded by another.
pub trait ErasureCoder: Send + Sync + fmt::Debug {
    /// The `(k, r)` this coder was built for.
    fn params(&self) -> CodecParams;

    /// Computes the `r` parity shards of `k` data shards.
    ///
    /// All shards must have the same non-zero length. The previous contents
    /// of `parity` are overwritten (they do not need to be zeroed).
    ///
    /// # Errors
    /// [`CodecError::Erasure`] on a wrong shard count or length.
    fn encode_parity(&self, data: &[&[u8]], parity: &mut [&mut [u8]]) -> Result<(), CodecError>;

    /// Rebuilds, in place, the data shards (indexes `0..k`) flagged `false`
    /// in `shards` (all `k + r` of them, in index order).
    ///
    /// Present shards and missing *data* shards must all have the same
    /// non-zero length; missing parity shards are never touched and may be
    /// empty, so callers need not allocate them. At least `k` shards must be
    /// present. Implementations only read the first `k` present shards in
    /// index order, so a caller that wants to avoid copying parity only needs
    /// to supply (and flag present) as many parity shards as data shards are
    /// missing.
    ///
    /// # Errors
    /// [`CodecError::NotEnoughChunks`] if fewer than `k` are present,
    /// [`CodecError::Erasure`] on a wrong shard count or length.
    fn reconstruct_data(&self, shards: &mut [(&mut [u8], bool)]) -> Result<(), CodecError>;
}

/// [`ErasureCoder`] backed by `reed-solomon-erasure` (GF(2^8), Backblaze
/// compatible matrix, AVX2 kernels via the `simd-accel` feature).
///
/// The encoding matrix is built once in [`ReedSolomonCoder::new`]; decode
/// matrices are cached by the library (LRU keyed by the set of missing
/// shards), so a coder should be created once per `(k, r)` and shared.
///
/// The library multiplies one whole input shard into every output shard
/// before moving to the next input. For multi-megabyte shards each of those
/// passes streams the outputs through memory again (`k` times). This coder
/// therefore feeds the library column blocks of `block_len` bytes so that
/// the outputs of a block stay in L1/L2 across all `k` inputs; the result is
/// identical, only the order of the work changes.
pub struct ReedSolomonCoder {
    params: CodecParams,
    /// `None` iff `r == 0`: the library rejects zero parity shards, and with
    /// no parity there is nothing to compute anyway.
    rs: Option<galois_8::ReedSolomon>,
    block_len: usize,
}

impl ReedSolomonCoder {
    /// Default column block: small enough that `r` output blocks plus one
    /// input block fit in a core's L2 (and mostly L1), large enough that the
    /// per-call overhead of the library (a few small vectors, one cache
    /// lookup when decoding) is noise.
    pub const DEFAULT_BLOCK_LEN: usize = 16 * 1024;

    /// Builds the coder, computing the encoding matrix.
    pub fn new(params: CodecParams) -> Self {
        Self::with_block_len(params, Self::DEFAULT_BLOCK_LEN)
    }

    /// Like [`new`](Self::new) with an explicit column block length
    /// (`usize::MAX` = unblocked, whole shards per library call). Exposed for
    /// benchmarks and tuning; a `block_len` of 0 is treated as 1.
    pub fn with_block_len(params: CodecParams, block_len: usize) -> Self {
        let rs = if params.parity_shards() == 0 {
            None
        } else {
            // `CodecParams` guarantees 1 <= k, 1 <= r here and k + r <= 256,
            // which are exactly the library's conditions for success, so
            // this cannot fail at run time.
            Some(
                galois_8::ReedSolomon::new(params.data_shards(), params.parity_shards())
                    .expect("CodecParams are always valid Reed-Solomon parameters"),
            )
        };
        ReedSolomonCoder {
            params,
            rs,
            block_len: block_len.max(1),
        }
    }

    /// The library instance; only called when `r > 0`.
    fn rs(&self) -> Result<&galois_8::ReedSolomon, CodecError> {
        self.rs
            .as_ref()
            .ok_or_else(|| CodecError::Erasure("no parity shards configured".into()))
    }
}

impl fmt::Debug for ReedSolomonCoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReedSolomonCoder")
            .field("params", &self.params)
            .field("block_len", &self.block_len)
            .finish_non_exhaustive()
    }
}

fn rs_err(err: reed_solomon_erasure::Error) -> CodecError {
    CodecError::Erasure(err.to_string())
}

/// Common length of `lens`, which must all be equal and non-zero.
fn common_len(mut lens: impl Iterator<Item = usize>, what: &str) -> Result<usize, CodecError> {
    let first = lens
        .next()
        .ok_or_else(|| CodecError::Erasure(format!("no {what} shards")))?;
    if first == 0 {
        return Err(CodecError::Erasure("shards must not be empty".into()));
    }
    if let Some(other) = lens.find(|&len| len != first) {
        return Err(CodecError::Erasure(format!(
            "{what} shards differ in length ({first} vs {other})"
        )));
    }
    Ok(first)
}

impl ErasureCoder for ReedSolomonCoder {
    fn params(&self) -> CodecParams {
        self.params
    }

    fn encode_parity(&self, data: &[&[u8]], parity: &mut [&mut [u8]]) -> Result<(), CodecError> {
        let (k, r) = (self.params.data_shards(), self.params.parity_shards());
        if data.len() != k || parity.len() != r {
            return Err(CodecError::Erasure(format!(
                "expected {k} data and {r} parity shards, got {} and {}",
                data.len(),
                parity.len()
            )));
        }
        let len = common_len(
            data.iter()
                .map(|s| s.len())
                .chain(parity.iter().map(|s| s.len())),
            "data and parity",
        )?;
        if r == 0 {
            return Ok(());
        }
        let rs = self.rs()?;
        let mut start = 0;
        while start < len {
            let end = len.min(start.saturating_add(self.block_len));
            let d: Vec<&[u8]> = data.iter().map(|s| &s[start..end]).collect();
            let mut p: Vec<&mut [u8]> = parity.iter_mut().map(|s| &mut s[start..end]).collect();
            rs.encode_sep(&d, &mut p).map_err(rs_err)?;
            start = end;
        }
        Ok(())
    }

    fn reconstruct_data(&self, shards: &mut [(&mut [u8], bool)]) -> Result<(), CodecError> {
        let (k, n) = (self.params.data_shards(), self.params.total_shards());
        if shards.len() != n {
            return Err(CodecError::Erasure(format!(
                "expected {n} shards, got {}",
                shards.len()
            )));
        }
        let present = shards.iter().filter(|(_, p)| *p).count();
        if present < k {
            return Err(CodecError::NotEnoughChunks {
                needed: k,
                valid: present,
            });
        }
        // Shards whose length matters: every present one, and missing data
        // shards (they are the outputs).
        let relevant = |i: usize, present: bool| present || i < k;
        let len = common_len(
            shards
                .iter()
                .enumerate()
                .filter(|(i, (_, p))| relevant(*i, *p))
                .map(|(_, (s, _))| s.len()),
            "present and missing data",
        )?;
        if shards[..k].iter().all(|(_, p)| *p) {
            return Ok(());
        }
        let rs = self.rs()?;
        let mut start = 0;
        while start < len {
            let end = len.min(start.saturating_add(self.block_len));
            let mut block: Vec<(&mut [u8], bool)> = shards
                .iter_mut()
                .enumerate()
                .map(|(i, (s, p))| {
                    if relevant(i, *p) {
                        (&mut s[start..end], *p)
                    } else {
                        (&mut [][..], false)
                    }
                })
                .collect();
            rs.reconstruct_data(&mut block).map_err(rs_err)?;
            start = end;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(k: usize, r: usize) -> CodecParams {
        CodecParams::new(k, r).expect("valid params")
    }

    fn pattern(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect()
    }

    /// Blocking must not change the result: compare block sizes 1, 7,
    /// default and unblocked, on a length that is not a multiple of any.
    #[test]
    fn blocking_is_transparent() {
        let p = params(5, 3);
        let len = 50_001;
        let data: Vec<Vec<u8>> = (0..5).map(|i| pattern(len, i as u8)).collect();
        let refs: Vec<&[u8]> = data.iter().map(Vec::as_slice).collect();
        let mut results = Vec::new();
        for block in [1, 7, ReedSolomonCoder::DEFAULT_BLOCK_LEN, usize::MAX] {
            let coder = ReedSolomonCoder::with_block_len(p, block);
            let mut parity = vec![vec![0xAAu8; len]; 3];
            let mut prefs: Vec<&mut [u8]> = parity.iter_mut().map(Vec::as_mut_slice).collect();
            coder.encode_parity(&refs, &mut prefs).expect("encode");
            results.push(parity);
        }
        assert!(results.windows(2).all(|w| w[0] == w[1]));
        assert!(results[0].iter().all(|p| p.iter().any(|&b| b != 0)));
    }

    #[test]
    fn reconstruct_in_place_with_empty_unused_parity() {
        let p = params(4, 3);
        let coder = ReedSolomonCoder::with_block_len(p, 100);
        let len = 1000;
        let data: Vec<Vec<u8>> = (0..4).map(|i| pattern(len, 3 * i as u8)).collect();
        let refs: Vec<&[u8]> = data.iter().map(Vec::as_slice).collect();
        let mut parity = vec![vec![0u8; len]; 3];
        let mut prefs: Vec<&mut [u8]> = parity.iter_mut().map(Vec::as_mut_slice).collect();
        coder.encode_parity(&refs, &mut prefs).expect("encode");

        // Lose data shards 0 and 2; supply parity 4 and 6, parity 5 absent
        // and empty.
        let mut d0 = vec![0u8; len];
        let mut d1 = data[1].clone();
        let mut d2 = vec![0xFFu8; len];
        let mut d3 = data[3].clone();
        let mut p4 = parity[0].clone();
        let mut p6 = parity[2].clone();
        let mut shards: Vec<(&mut [u8], bool)> = vec![
            (&mut d0, false),
            (&mut d1, true),
            (&mut d2, false),
            (&mut d3, true),
            (&mut p4, true),
            (&mut [][..], false),
            (&mut p6, true),
        ];
        coder.reconstruct_data(&mut shards).expect("reconstruct");
        assert_eq!(d0, data[0]);
        assert_eq!(d2, data[2]);
    }

    #[test]
    fn shard_shape_errors() {
        let coder = ReedSolomonCoder::new(params(2, 1));
        let a = [1u8, 2];
        let b = [3u8];
        let mut p = [0u8; 2];
        assert!(matches!(
            coder.encode_parity(&[&a, &b], &mut [&mut p]),
            Err(CodecError::Erasure(_))
        ));
        assert!(matches!(
            coder.encode_parity(&[&a], &mut [&mut p]),
            Err(CodecError::Erasure(_))
        ));
        assert!(matches!(
            coder.encode_parity(&[&[], &[]], &mut [&mut []]),
            Err(CodecError::Erasure(_))
        ));
        let (mut x, mut y, mut z) = ([0u8; 2], [0u8; 2], [0u8; 2]);
        let mut shards: Vec<(&mut [u8], bool)> =
            vec![(&mut x, false), (&mut y, false), (&mut z, true)];
        assert!(matches!(
            coder.reconstruct_data(&mut shards),
            Err(CodecError::NotEnoughChunks {
                needed: 2,
                valid: 1
            })
        ));
    }

    #[test]
    fn zero_parity_is_a_no_op() {
        let coder = ReedSolomonCoder::new(params(3, 0));
        let data = [[1u8; 4], [2; 4], [3; 4]];
        let refs: Vec<&[u8]> = data.iter().map(|d| &d[..]).collect();
        assert_eq!(coder.encode_parity(&refs, &mut []), Ok(()));
        let [mut a, mut b, mut c] = data;
        let mut shards: Vec<(&mut [u8], bool)> =
            vec![(&mut a, true), (&mut b, true), (&mut c, true)];
        assert_eq!(coder.reconstruct_data(&mut shards), Ok(()));
    }
}
