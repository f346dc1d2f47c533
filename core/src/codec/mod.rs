//! The object codec: splits an object into `k` data + `r` parity chunks
//! (systematic Reed-Solomon over GF(2^8)) and rebuilds it from any `k` valid
//! chunks.
//!
//! * [`CodecParams`]: validated `(k, r)`.
//! * [`ChunkHeader`] / [`Chunk`]: the self-describing 32-byte header that
//!   travels with every chunk, and the chunk itself.
//! * [`ErasureCoder`] / [`ReedSolomonCoder`]: the raw shard math.
//! * [`ObjectCodec`]: objects <-> chunks, with padding, CRCs and the
//!   "which chunks can be trusted" logic.
//!
//! Data chunk `i` holds bytes `i * s .. (i + 1) * s` of the object, where
//! `s = params.shard_len(object_len)`; the tail of the last data chunk(s) is
//! zero padding. Parity chunks follow at indexes `k..k+r`.

mod chunk;
mod erasure;
mod error;
mod params;

pub use chunk::{Chunk, ChunkHeader};
pub use erasure::{ErasureCoder, ReedSolomonCoder};
pub use error::CodecError;
pub use params::CodecParams;

use std::fmt;

use bytes::Bytes;

/// Column block for the passes that touch every byte of a shard (encode,
/// verify + copy): each block is hashed right after it was produced or
/// copied, while it is still in L1/L2, instead of streaming multi-megabyte
/// shards through memory once for the math and once more for the CRC.
const BLOCK_LEN: usize = 16 * 1024;

/// Encodes objects into chunks and decodes them back for one `(k, r)`.
///
/// Building one computes the Reed-Solomon matrices, so create it once per
/// parameter set and share it (it is `Send + Sync`; wrap it in an `Arc`).
/// All methods take `&self` and are safe to call concurrently.
pub struct ObjectCodec {
    params: CodecParams,
    coder: Box<dyn ErasureCoder>,
}

/// The fields of a header that identify one encoded object. Chunks agreeing
/// on all of them can be combined; the index and CRC are per chunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct ObjectKey {
    params: CodecParams,
    object_len: u64,
    version: u64,
}

impl ObjectKey {
    fn of(header: &ChunkHeader) -> Self {
        ObjectKey {
            params: header.params,
            object_len: header.object_len,
            version: header.version,
        }
    }

    fn shard_len(&self) -> usize {
        self.params.shard_len(self.object_len)
    }
}

/// What is known about a supplied chunk's body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Check {
    /// Header plausible (index in range, body length right), CRC not yet
    /// computed.
    Unverified,
    /// [`Chunk::verify`] passed.
    Valid,
    /// Implausible or failed [`Chunk::verify`]: treated as missing.
    Bad,
}

/// Candidate chunks of one [`ObjectKey`], at most one per index.
struct Group {
    key: ObjectKey,
    /// `key.params.total_shards()` slots holding positions in the caller's
    /// chunk slice.
    slots: Vec<Option<usize>>,
    count: usize,
}

impl ObjectCodec {
    /// Codec backed by [`ReedSolomonCoder`].
    pub fn new(params: CodecParams) -> Self {
        Self::with_coder(Box::new(ReedSolomonCoder::new(params)))
    }

    /// Codec backed by any [`ErasureCoder`] (for experiments and
    /// benchmarks); the parameters are the coder's.
    pub fn with_coder(coder: Box<dyn ErasureCoder>) -> Self {
        ObjectCodec {
            params: coder.params(),
            coder,
        }
    }

    /// The `(k, r)` this codec encodes with and can decode.
    pub fn params(&self) -> CodecParams {
        self.params
    }

    /// Splits `object` into `k + r` chunks, in index order.
    ///
    /// Data chunks are zero-copy [`Bytes::slice`]s of `object`, except the
    /// last data shard(s) when padding is needed (padding is zeros; shards
    /// that are entirely padding share one zero buffer). Parity is computed
    /// into fresh buffers. `version` goes into every header (0 allowed: the
    /// proxy assigns versions later with [`ChunkHeader::with_version`]).
    ///
    /// # Errors
    /// Only on internal inconsistencies of a custom [`ErasureCoder`]; with
    /// the default coder encoding cannot fail.
    pub fn encode(&self, object: &Bytes, version: u64) -> Result<Vec<Chunk>, CodecError> {
        let (k, r) = (self.params.data_shards(), self.params.parity_shards());
        let len = object.len();
        let object_len = u64::try_from(len).map_err(|_| {
            CodecError::InvalidParams(format!("object of {len} bytes is too large"))
        })?;
        let shard_len = self.params.shard_len(object_len);

        let mut data: Vec<Bytes> = Vec::with_capacity(k);
        let mut zeros: Option<Bytes> = None;
        for i in 0..k {
            // i * shard_len <= len + shard_len - 1 for every i < k, which
            // fits in usize because `object` exists in memory.
            let start = i.saturating_mul(shard_len);
            let end = start.saturating_add(shard_len);
            let body = if end <= len {
                object.slice(start..end)
            } else if start < len {
                let mut padded = Vec::with_capacity(shard_len);
                padded.extend_from_slice(&object[start..]);
                padded.resize(shard_len, 0);
                Bytes::from(padded)
            } else {
                zeros
                    .get_or_insert_with(|| Bytes::from(vec![0u8; shard_len]))
                    .clone()
            };
            data.push(body);
        }

        // Parity and CRCs block by block, so each data block is hashed
        // right after the coder read it, and each parity block right after
        // it was written.
        let mut parity: Vec<Vec<u8>> = (0..r).map(|_| vec![0u8; shard_len]).collect();
        let mut crcs = vec![0u32; k + r];
        let mut start = 0;
        while start < shard_len {
            let end = shard_len.min(start + BLOCK_LEN);
            let data_blocks: Vec<&[u8]> = data.iter().map(|b| &b[start..end]).collect();
            let mut parity_blocks: Vec<&mut [u8]> =
                parity.iter_mut().map(|p| &mut p[start..end]).collect();
            self.coder.encode_parity(&data_blocks, &mut parity_blocks)?;
            let blocks = data_blocks
                .iter()
                .copied()
                .chain(parity_blocks.iter().map(|b| &**b));
            for (crc, block) in crcs.iter_mut().zip(blocks) {
                *crc = crc32c::crc32c_append(*crc, block);
            }
            start = end;
        }

        // Zipping with 0..=255 numbers the chunks without a fallible cast:
        // CodecParams guarantees k + r <= 256 bodies.
        let bodies = data.into_iter().chain(parity.into_iter().map(Bytes::from));
        Ok((0..=u8::MAX)
            .zip(bodies.zip(crcs))
            .map(|(index, (body, body_crc))| Chunk {
                header: ChunkHeader {
                    params: self.params,
                    index,
                    object_len,
                    version,
                    body_crc,
                },
                body,
            })
            .collect())
    }

    /// Rebuilds the object from any `k` or more chunks.
    ///
    /// Chunks may come in any order. A chunk is ignored (treated as missing)
    /// if it fails [`Chunk::verify`], if another valid chunk with the same
    /// index came first, or if its header disagrees with the majority of the
    /// valid chunks on `(k, r, object_len, version)`; ties between groups go
    /// to the newer version. When all data chunks are present there is no
    /// Reed-Solomon math at all, only CRC checks and copies into the output
    /// buffer.
    ///
    /// # Errors
    /// * [`CodecError::NotEnoughChunks`] if fewer than `k` chunks survive.
    /// * [`CodecError::Inconsistent`] if the majority was encoded with other
    ///   parameters than this codec's, or if the rebuilt padding is not zero
    ///   (the chunks cannot belong to one object). Wrong data is never
    ///   returned for chunks that pass these checks.
    pub fn decode(&self, chunks: &[Chunk]) -> Result<Bytes, CodecError> {
        // Fast path: usually all chunks describe the same object, and then
        // only the k chunks actually used need their CRC checked (fused with
        // the copy into the output). It gives the same answer as the careful
        // path whenever it succeeds.
        let mut checks = plausibility(chunks);
        let groups = self.group(chunks, &checks);
        if groups.len() == 1
            && let Ok(group) = self.pick(groups)
            && let Some(object) = self.decode_group(chunks, &group, true)?
        {
            return Ok(object);
        }
        // Careful path (corruption or mixed headers seen): verify every
        // chunk, vote among the valid ones.
        verify_all(chunks, &mut checks);
        let group = self.pick(self.group(chunks, &checks))?;
        self.decode_group(chunks, &group, false)?
            .ok_or_else(|| CodecError::Inconsistent("verified chunk changed during decode".into()))
    }

    /// Rebuilds the chunks with the given indexes (e.g. to repair lost cache
    /// nodes) from `k` or more valid chunks, selected as in
    /// [`decode`](Self::decode).
    ///
    /// Returns one chunk per entry of `missing`, in that order, with the
    /// same header fields (`k`, `r`, length, version) as the surviving
    /// chunks. The result is byte-identical to what [`encode`](Self::encode)
    /// produced. An index that is present and valid in `chunks` is returned
    /// as is.
    ///
    /// # Errors
    /// [`CodecError::IndexOutOfRange`] for an index `>= k + r`, otherwise as
    /// [`decode`](Self::decode).
    pub fn reconstruct(&self, chunks: &[Chunk], missing: &[u8]) -> Result<Vec<Chunk>, CodecError> {
        let (k, n) = (self.params.data_shards(), self.params.total_shards());
        if let Some(&index) = missing.iter().find(|&&i| usize::from(i) >= n) {
            return Err(CodecError::IndexOutOfRange {
                index: usize::from(index),
                total: n,
            });
        }
        // Repair is rare and its output is stored again: always verify
        // everything up front.
        let mut checks = plausibility(chunks);
        verify_all(chunks, &mut checks);
        let group = self.pick(self.group(chunks, &checks))?;
        let key = group.key;
        let existing = |i: u8| group.slots[usize::from(i)].map(|pos| chunks[pos].clone());
        if let Some(all) = missing
            .iter()
            .map(|&i| existing(i))
            .collect::<Option<Vec<Chunk>>>()
        {
            return Ok(all);
        }

        let shard_len = key.shard_len();
        let data = self.assemble(chunks, &group, false)?.ok_or_else(|| {
            CodecError::Inconsistent("verified chunk changed during decode".into())
        })?;
        let object_len = usize::try_from(key.object_len).unwrap_or(usize::MAX);
        check_padding(&data, object_len)?;

        let parity = if missing
            .iter()
            .any(|&i| usize::from(i) >= k && existing(i).is_none())
        {
            let data_refs: Vec<&[u8]> = data.chunks_exact(shard_len).collect();
            let mut parity = vec![vec![0u8; shard_len]; self.params.parity_shards()];
            let mut parity_refs: Vec<&mut [u8]> =
                parity.iter_mut().map(Vec::as_mut_slice).collect();
            self.coder.encode_parity(&data_refs, &mut parity_refs)?;
            parity
        } else {
            Vec::new()
        };

        missing
            .iter()
            .map(|&index| {
                if let Some(chunk) = existing(index) {
                    return Ok(chunk);
                }
                let i = usize::from(index);
                // Copy rather than slice the assembled buffer: a repaired
                // chunk may be kept around, and a slice would pin all k
                // shards in memory.
                let body = if i < k {
                    data.get(i * shard_len..(i + 1) * shard_len)
                } else {
                    parity.get(i - k).map(Vec::as_slice)
                }
                .ok_or_else(|| CodecError::Inconsistent(format!("shard {i} was not rebuilt")))?;
                Ok(Chunk::new(
                    key.params,
                    index,
                    key.object_len,
                    key.version,
                    Bytes::copy_from_slice(body),
                ))
            })
            .collect()
    }

    /// Groups the chunks not known to be bad by [`ObjectKey`], keeping the
    /// first candidate per index.
    fn group(&self, chunks: &[Chunk], checks: &[Check]) -> Vec<Group> {
        let mut groups: Vec<Group> = Vec::new();
        for (pos, (chunk, check)) in chunks.iter().zip(checks).enumerate() {
            if *check == Check::Bad {
                continue;
            }
            let key = ObjectKey::of(&chunk.header);
            let group = match groups.iter().position(|g| g.key == key) {
                Some(g) => &mut groups[g],
                None => {
                    groups.push(Group {
                        key,
                        slots: vec![None; key.params.total_shards()],
                        count: 0,
                    });
                    let last = groups.len() - 1;
                    &mut groups[last]
                }
            };
            // `plausibility` guarantees the index is in range.
            if let Some(slot @ None) = group.slots.get_mut(usize::from(chunk.header.index)) {
                *slot = Some(pos);
                group.count += 1;
            }
        }
        groups
    }

    /// The group to decode: most chunks, ties to the newer version, then to
    /// the group seen first. It must use this codec's parameters and have at
    /// least `k` chunks.
    fn pick(&self, groups: Vec<Group>) -> Result<Group, CodecError> {
        let k = self.params.data_shards();
        let mut best: Option<Group> = None;
        for group in groups {
            let better = match &best {
                None => true,
                Some(b) => (group.count, group.key.version) > (b.count, b.key.version),
            };
            if better {
                best = Some(group);
            }
        }
        let Some(best) = best else {
            return Err(CodecError::NotEnoughChunks {
                needed: k,
                valid: 0,
            });
        };
        if best.key.params != self.params {
            return Err(CodecError::Inconsistent(format!(
                "chunks were encoded as {} but this codec is {}",
                best.key.params, self.params
            )));
        }
        if best.count < k {
            return Err(CodecError::NotEnoughChunks {
                needed: k,
                valid: best.count,
            });
        }
        Ok(best)
    }

    /// Rebuilds the object from `group`. With `verify`, the chunks used are
    /// CRC-checked on the way and `Ok(None)` means one of them is corrupt.
    fn decode_group(
        &self,
        chunks: &[Chunk],
        group: &Group,
        verify: bool,
    ) -> Result<Option<Bytes>, CodecError> {
        let object_len = usize::try_from(group.key.object_len).map_err(|_| {
            CodecError::Inconsistent(format!(
                "object of {} bytes does not fit in memory",
                group.key.object_len
            ))
        })?;
        // k = 1: the object is the first chunk minus its padding; no copy.
        if self.params.data_shards() == 1
            && let Some(pos) = group.slots[0]
        {
            let chunk = &chunks[pos];
            if verify && chunk.verify().is_err() {
                return Ok(None);
            }
            check_padding(&chunk.body, object_len)?;
            return Ok(Some(chunk.body.slice(..object_len)));
        }
        let Some(mut out) = self.assemble(chunks, group, verify)? else {
            return Ok(None);
        };
        check_padding(&out, object_len)?;
        out.truncate(object_len);
        Ok(Some(Bytes::from(out)))
    }

    /// Returns the `k` data shards of `group` concatenated (`k * shard_len`
    /// bytes, padding included), or `None` if `verify` is set and a chunk it
    /// needed fails its CRC.
    ///
    /// The buffer is allocated once; present data shards are copied straight
    /// into their slots (hashed block by block on the way when verifying),
    /// and missing ones are rebuilt in place by the coder. Only as many
    /// parity chunks as data shards are missing are read (and copied into
    /// one scratch buffer, because the coder needs mutable shards).
    fn assemble(
        &self,
        chunks: &[Chunk],
        group: &Group,
        verify: bool,
    ) -> Result<Option<Vec<u8>>, CodecError> {
        let (k, n) = (self.params.data_shards(), self.params.total_shards());
        let shard_len = group.key.shard_len();
        let total = k.checked_mul(shard_len).ok_or_else(|| {
            CodecError::Inconsistent(format!(
                "{k} shards of {shard_len} bytes do not fit in memory"
            ))
        })?;

        // Filling in order with extend/resize writes every byte exactly once
        // (no memset of slots that are copied over anyway).
        let mut out = Vec::with_capacity(total);
        let mut missing = 0;
        for slot in &group.slots[..k] {
            match slot {
                Some(pos) => {
                    if !copy_checked(&mut out, &chunks[*pos], verify) {
                        return Ok(None);
                    }
                }
                None => {
                    out.resize(out.len() + shard_len, 0);
                    missing += 1;
                }
            }
        }
        if missing == 0 {
            return Ok(Some(out));
        }

        // The coder reads the first k present shards in index order: all
        // present data shards plus the first `missing` parity shards.
        let mut use_parity = vec![false; n - k];
        let mut scratch = Vec::with_capacity(missing * shard_len);
        for (j, pos) in group.slots[k..]
            .iter()
            .enumerate()
            .filter_map(|(j, s)| s.map(|pos| (j, pos)))
            .take(missing)
        {
            use_parity[j] = true;
            if !copy_checked(&mut scratch, &chunks[pos], verify) {
                return Ok(None);
            }
        }

        let mut shards: Vec<(&mut [u8], bool)> = Vec::with_capacity(n);
        for (slot, shard) in group.slots[..k].iter().zip(out.chunks_exact_mut(shard_len)) {
            shards.push((shard, slot.is_some()));
        }
        let mut scratch_shards = scratch.chunks_exact_mut(shard_len);
        for used in use_parity {
            let shard = if used { scratch_shards.next() } else { None };
            match shard {
                Some(shard) => shards.push((shard, true)),
                None => shards.push((&mut [][..], false)),
            }
        }
        self.coder.reconstruct_data(&mut shards)?;
        Ok(Some(out))
    }
}

/// Cheap per-chunk checks that need no pass over the body: index in range
/// and body length as the header implies.
fn plausibility(chunks: &[Chunk]) -> Vec<Check> {
    chunks
        .iter()
        .map(|c| {
            let h = &c.header;
            // Headers are plain structs; one built by hand may be bogus.
            if usize::from(h.index) < h.params.total_shards() && c.body.len() == h.body_len() {
                Check::Unverified
            } else {
                tracing::debug!(index = h.index, "ignoring chunk with implausible header");
                Check::Bad
            }
        })
        .collect()
}

/// Resolves every [`Check::Unverified`] with [`Chunk::verify`].
fn verify_all(chunks: &[Chunk], checks: &mut [Check]) {
    for (chunk, check) in chunks.iter().zip(checks) {
        if *check == Check::Unverified {
            *check = match chunk.verify() {
                Ok(()) => Check::Valid,
                Err(err) => {
                    tracing::debug!(%err, "ignoring invalid chunk");
                    Check::Bad
                }
            };
        }
    }
}

/// Appends `chunk.body` to `out`; with `verify`, hashes it block by block
/// on the way (each block is copied while still in L1) and returns whether
/// the CRC matched.
fn copy_checked(out: &mut Vec<u8>, chunk: &Chunk, verify: bool) -> bool {
    if !verify {
        out.extend_from_slice(&chunk.body);
        return true;
    }
    let mut crc = 0;
    for block in chunk.body.chunks(BLOCK_LEN) {
        crc = crc32c::crc32c_append(crc, block);
        out.extend_from_slice(block);
    }
    if crc != chunk.header.body_crc {
        tracing::debug!(index = chunk.header.index, "chunk body fails its CRC");
    }
    crc == chunk.header.body_crc
}

/// Padding beyond the object's end must be zero (that is how it was
/// encoded). After reconstruction this is a cheap cross-check that the
/// chunks, each valid on its own, really belong to one object.
fn check_padding(data: &[u8], object_len: usize) -> Result<(), CodecError> {
    match data.get(object_len..) {
        Some(padding) if padding.iter().all(|&b| b == 0) => Ok(()),
        Some(_) => Err(CodecError::Inconsistent(
            "padding after the end of the object is not zero".into(),
        )),
        None => Err(CodecError::Inconsistent(format!(
            "shards hold {} bytes, less than the object length {object_len}",
            data.len()
        ))),
    }
}

impl fmt::Debug for ObjectCodec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObjectCodec")
            .field("params", &self.params)
            .field("coder", &self.coder)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::seq::SliceRandom;
    use rand::{Rng, SeedableRng, rngs::StdRng};

    fn params(k: usize, r: usize) -> CodecParams {
        CodecParams::new(k, r).expect("valid params")
    }

    fn object(len: usize, seed: u64) -> Bytes {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut v = vec![0u8; len];
        rng.fill(&mut v[..]);
        Bytes::from(v)
    }

    fn corrupt(chunk: &Chunk, at: usize, mask: u8) -> Chunk {
        let mut body = chunk.body.to_vec();
        let at = at % body.len();
        body[at] ^= mask.max(1);
        Chunk {
            header: chunk.header,
            body: body.into(),
        }
    }

    /// Encodes, checks the chunk shapes, then decodes from (a) all chunks,
    /// (b) only the data chunks, (c) the last k chunks (maximum parity).
    fn round_trip(p: CodecParams, len: usize) {
        let codec = ObjectCodec::new(p);
        let obj = object(len, len as u64);
        let chunks = codec.encode(&obj, 7).expect("encode");
        assert_eq!(chunks.len(), p.total_shards());
        for (i, c) in chunks.iter().enumerate() {
            assert_eq!(usize::from(c.header.index), i);
            assert_eq!(c.header.params, p);
            assert_eq!(c.header.object_len, len as u64);
            assert_eq!(c.header.version, 7);
            assert_eq!(c.body.len(), p.shard_len(len as u64));
            assert_eq!(c.header.is_data(), i < p.data_shards());
            assert_eq!(c.verify(), Ok(()));
        }
        let k = p.data_shards();
        assert_eq!(
            codec.decode(&chunks).expect("all"),
            obj,
            "{p} len {len}: all"
        );
        assert_eq!(
            codec.decode(&chunks[..k]).expect("data"),
            obj,
            "{p} len {len}: data"
        );
        let tail = &chunks[chunks.len() - k..];
        assert_eq!(
            codec.decode(tail).expect("tail"),
            obj,
            "{p} len {len}: last k"
        );
    }

    #[test]
    fn edge_lengths() {
        for p in [params(10, 2), params(4, 2), params(3, 1), params(2, 3)] {
            let k = p.data_shards();
            for len in [
                0,
                1,
                2,
                k - 1,
                k,
                k + 1,
                3 * k,
                3 * k + 1,
                1000,
                4096,
                65_537,
            ] {
                round_trip(p, len);
            }
        }
    }

    #[test]
    fn zero_parity() {
        let p = params(4, 0);
        for len in [0, 1, 4, 5, 1001] {
            round_trip(p, len);
        }
        let codec = ObjectCodec::new(p);
        let chunks = codec.encode(&object(100, 1), 0).expect("encode");
        assert_eq!(
            codec.decode(&chunks[1..]),
            Err(CodecError::NotEnoughChunks {
                needed: 4,
                valid: 3
            })
        );
    }

    #[test]
    fn single_data_shard() {
        for r in [0, 1, 3] {
            let p = params(1, r);
            for len in [0, 1, 2, 999] {
                round_trip(p, len);
            }
            let codec = ObjectCodec::new(p);
            let obj = object(500, 2);
            let chunks = codec.encode(&obj, 0).expect("encode");
            // k = 1: every chunk is a full copy of the object.
            for c in &chunks {
                assert_eq!(
                    codec.decode(std::slice::from_ref(c)).expect("one chunk"),
                    obj
                );
            }
            if r > 0 {
                // The zero-copy path must still check the CRC.
                let bad = corrupt(&chunks[0], 3, 0x10);
                assert_eq!(
                    codec.decode(std::slice::from_ref(&bad)),
                    Err(CodecError::NotEnoughChunks {
                        needed: 1,
                        valid: 0
                    })
                );
                assert_eq!(
                    codec.decode(&[bad, chunks[1].clone()]).expect("decode"),
                    obj
                );
            }
        }
    }

    #[test]
    fn total_of_256_shards() {
        for (k, r) in [(128, 128), (255, 1), (1, 255)] {
            let p = params(k, r);
            let codec = ObjectCodec::new(p);
            let obj = object(3000, 3);
            let chunks = codec.encode(&obj, 1).expect("encode");
            assert_eq!(chunks.len(), 256);
            assert_eq!(chunks[255].header.index, 255);
            // Drop the first min(r, k) data chunks: worst case for decode.
            let lost = r.min(k);
            assert_eq!(codec.decode(&chunks[lost..]).expect("decode"), obj);
        }
    }

    #[test]
    fn every_subset_of_k_chunks_decodes() {
        let p = params(3, 3);
        let codec = ObjectCodec::new(p);
        let obj = object(1000, 4);
        let chunks = codec.encode(&obj, 9).expect("encode");
        for mask in 0u32..(1 << 6) {
            let subset: Vec<Chunk> = (0..6)
                .filter(|i| mask & (1 << i) != 0)
                .map(|i| chunks[i].clone())
                .collect();
            let result = codec.decode(&subset);
            if subset.len() >= 3 {
                assert_eq!(result.expect("enough chunks"), obj, "mask {mask:06b}");
            } else {
                assert_eq!(
                    result,
                    Err(CodecError::NotEnoughChunks {
                        needed: 3,
                        valid: subset.len()
                    })
                );
            }
        }
    }

    #[test]
    fn data_chunks_are_zero_copy_unless_padded() {
        let codec = ObjectCodec::new(params(4, 2));
        let obj = object(4 * 1000 + 3, 5);
        let chunks = codec.encode(&obj, 0).expect("encode");
        let range = obj.as_ptr_range();
        for c in &chunks[..3] {
            assert!(
                range.contains(&c.body.as_ptr()),
                "data chunk {} was copied",
                c.index()
            );
        }
        // The last data chunk needs padding, parity is new memory.
        for c in &chunks[3..] {
            assert!(!range.contains(&c.body.as_ptr()));
        }
        // Shards of 1001 bytes: the last one holds 1000 bytes plus 1 of padding.
        assert_eq!(&chunks[3].body[..1000], &obj[3 * 1001..]);
        assert_eq!(chunks[3].body[1000..], [0]);
    }

    #[test]
    fn empty_object_uses_one_byte_shards() {
        let codec = ObjectCodec::new(CodecParams::DEFAULT);
        let chunks = codec.encode(&Bytes::new(), 3).expect("encode");
        assert!(chunks.iter().all(|c| c.body[..] == [0]));
        assert_eq!(codec.decode(&chunks[2..]).expect("decode"), Bytes::new());
    }

    #[test]
    fn corrupted_and_duplicate_chunks_are_ignored() {
        let codec = ObjectCodec::new(params(4, 2));
        let obj = object(10_000, 6);
        let chunks = codec.encode(&obj, 1).expect("encode");
        // Corrupt data chunk 1, keep the good copy later in the list.
        let mut input = vec![corrupt(&chunks[1], 17, 0x40)];
        input.extend(chunks.iter().cloned());
        assert_eq!(codec.decode(&input).expect("decode"), obj);
        // Corruption leaves only 3 valid: error, not wrong data.
        let input = vec![
            chunks[0].clone(),
            corrupt(&chunks[1], 0, 1),
            chunks[2].clone(),
            chunks[4].clone(),
        ];
        assert_eq!(
            codec.decode(&input),
            Err(CodecError::NotEnoughChunks {
                needed: 4,
                valid: 3
            })
        );
        // The same chunk four times counts once.
        let dup = vec![chunks[5].clone(); 4];
        assert_eq!(
            codec.decode(&dup),
            Err(CodecError::NotEnoughChunks {
                needed: 4,
                valid: 1
            })
        );
        assert_eq!(
            codec.decode(&[]),
            Err(CodecError::NotEnoughChunks {
                needed: 4,
                valid: 0
            })
        );
    }

    #[test]
    fn majority_header_wins() {
        let codec = ObjectCodec::new(params(2, 2));
        let old = object(1000, 7);
        let new = object(1200, 8);
        let old_chunks = codec.encode(&old, 1).expect("encode");
        let new_chunks = codec.encode(&new, 2).expect("encode");
        // 3 new + 1 old: new wins, the stray old chunk is treated as missing.
        let mixed = vec![
            old_chunks[0].clone(),
            new_chunks[1].clone(),
            new_chunks[2].clone(),
            new_chunks[3].clone(),
        ];
        assert_eq!(codec.decode(&mixed).expect("decode"), new);
        // 2 + 2: both decodable, the newer version wins the tie.
        let tie = vec![
            old_chunks[0].clone(),
            old_chunks[3].clone(),
            new_chunks[1].clone(),
            new_chunks[2].clone(),
        ];
        assert_eq!(codec.decode(&tie).expect("decode"), new);
        // A re-versioned chunk (valid header, valid body) of the same object
        // disagrees with the others and is not used.
        let mut rev = old_chunks[1].clone();
        rev.header = rev.header.with_version(99);
        assert_eq!(
            codec.decode(&[old_chunks[0].clone(), rev]),
            Err(CodecError::NotEnoughChunks {
                needed: 2,
                valid: 1
            })
        );
    }

    #[test]
    fn foreign_params_are_inconsistent() {
        let obj = object(1000, 9);
        let chunks = ObjectCodec::new(params(4, 2))
            .encode(&obj, 1)
            .expect("encode");
        let codec = ObjectCodec::new(params(3, 3));
        assert!(matches!(
            codec.decode(&chunks),
            Err(CodecError::Inconsistent(_))
        ));
        assert!(matches!(
            codec.reconstruct(&chunks, &[0]),
            Err(CodecError::Inconsistent(_))
        ));
    }

    /// Chunks that are each valid but whose data disagree with the header
    /// length (non-zero padding) are refused rather than silently truncated.
    #[test]
    fn non_zero_padding_is_inconsistent() {
        let p = params(2, 1);
        let codec = ObjectCodec::new(p);
        let good = codec
            .encode(&Bytes::from_static(b"abc"), 1)
            .expect("encode");
        assert_eq!(good[1].body[..], [b'c', 0]);
        let forged = Chunk::new(p, 1, 3, 1, Bytes::from_static(b"cX"));
        let err = codec.decode(&[good[0].clone(), forged.clone()]);
        assert!(matches!(err, Err(CodecError::Inconsistent(_))), "{err:?}");
        // Same through reconstruction: parity from the forged data.
        let forged_parity = {
            let all = [good[0].body.clone(), forged.body.clone()];
            let mut par = vec![0u8; 2];
            ReedSolomonCoder::new(p)
                .encode_parity(&[&all[0], &all[1]], &mut [&mut par])
                .expect("encode");
            Chunk::new(p, 2, 3, 1, par.into())
        };
        let err = codec.decode(&[good[0].clone(), forged_parity]);
        assert!(matches!(err, Err(CodecError::Inconsistent(_))), "{err:?}");
    }

    #[test]
    fn reconstruct_rebuilds_identical_chunks() {
        let codec = ObjectCodec::new(params(4, 3));
        let obj = object(12_345, 10);
        let chunks = codec.encode(&obj, 5).expect("encode");
        // Lose 0, 2 (data) and 5 (parity); rebuild them plus one present.
        let surviving: Vec<Chunk> = [1, 3, 4, 6].iter().map(|&i| chunks[i].clone()).collect();
        let rebuilt = codec
            .reconstruct(&surviving, &[5, 0, 2, 3])
            .expect("reconstruct");
        let expect: Vec<Chunk> = [5, 0, 2, 3].iter().map(|&i| chunks[i].clone()).collect();
        assert_eq!(rebuilt, expect);
        assert!(
            codec
                .reconstruct(&surviving, &[])
                .expect("nothing")
                .is_empty()
        );
        assert_eq!(
            codec.reconstruct(&surviving, &[7]),
            Err(CodecError::IndexOutOfRange { index: 7, total: 7 })
        );
        assert_eq!(
            codec.reconstruct(&surviving[..3], &[0]),
            Err(CodecError::NotEnoughChunks {
                needed: 4,
                valid: 3
            })
        );
    }

    #[test]
    fn codec_is_shareable() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<ObjectCodec>();
        assert_send_sync::<Chunk>();
        let codec = std::sync::Arc::new(ObjectCodec::new(CodecParams::DEFAULT));
        let handles: Vec<_> = (0..3)
            .map(|t| {
                let codec = codec.clone();
                std::thread::spawn(move || {
                    let obj = object(50_000 + t, t as u64);
                    let chunks = codec.encode(&obj, 0).expect("encode");
                    codec.decode(&chunks[t..t + 10]).map(|d| d == obj)
                })
            })
            .collect();
        for h in handles {
            assert_eq!(h.join().expect("thread"), Ok(true));
        }
    }

    /// `(k, r)` with `k + r <= 20`, and `r >= min_r`.
    fn small_params(min_r: usize) -> impl Strategy<Value = CodecParams> {
        (1usize..=20 - min_r)
            .prop_flat_map(move |k| (Just(k), min_r..=20 - k))
            .prop_map(|(k, r)| params(k, r))
    }

    fn shuffled_indices(n: usize, seed: u64) -> Vec<usize> {
        let mut idx: Vec<usize> = (0..n).collect();
        idx.shuffle(&mut StdRng::seed_from_u64(seed));
        idx
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

        #[test]
        fn any_k_chunks_decode(
            p in small_params(0),
            data in proptest::collection::vec(any::<u8>(), 0..65_536),
            seed in any::<u64>(),
            version in any::<u64>(),
        ) {
            let codec = ObjectCodec::new(p);
            let obj = Bytes::from(data);
            let chunks = codec.encode(&obj, version).expect("encode");
            let subset: Vec<Chunk> = shuffled_indices(p.total_shards(), seed)
                .into_iter()
                .take(p.data_shards())
                .map(|i| chunks[i].clone())
                .collect();
            prop_assert_eq!(codec.decode(&subset).expect("decode"), obj);
        }

        #[test]
        fn corruption_never_yields_wrong_data(
            p in small_params(1),
            data in proptest::collection::vec(any::<u8>(), 0..65_536),
            seed in any::<u64>(),
            at in any::<usize>(),
            mask in 1u8..,
        ) {
            let codec = ObjectCodec::new(p);
            let k = p.data_shards();
            let obj = Bytes::from(data);
            let chunks = codec.encode(&obj, 3).expect("encode");
            let order = shuffled_indices(p.total_shards(), seed);
            // k + 1 chunks, the first of which is corrupted: k valid remain.
            let mut supplied: Vec<Chunk> = order[..=k].iter().map(|&i| chunks[i].clone()).collect();
            supplied[0] = corrupt(&supplied[0], at, mask);
            prop_assert_eq!(codec.decode(&supplied).expect("decode"), obj);
            // Only k, one of them corrupted: refuse.
            prop_assert_eq!(
                codec.decode(&supplied[..k]),
                Err(CodecError::NotEnoughChunks { needed: k, valid: k - 1 })
            );
        }

        #[test]
        fn reconstruct_matches_encode(
            p in small_params(1),
            data in proptest::collection::vec(any::<u8>(), 0..16_384),
            seed in any::<u64>(),
            lose_frac in 0.0f64..=1.0,
        ) {
            let codec = ObjectCodec::new(p);
            let (k, n) = (p.data_shards(), p.total_shards());
            let obj = Bytes::from(data);
            let chunks = codec.encode(&obj, 11).expect("encode");
            let order = shuffled_indices(n, seed);
            // Lose between 0 and r chunks.
            let lose = ((p.parity_shards() as f64) * lose_frac).round() as usize;
            let (lost, kept) = order.split_at(lose);
            let surviving: Vec<Chunk> = kept.iter().map(|&i| chunks[i].clone()).collect();
            let missing: Vec<u8> = lost.iter().map(|&i| i as u8).collect();
            let rebuilt = codec.reconstruct(&surviving, &missing).expect("reconstruct");
            prop_assert_eq!(rebuilt.len(), missing.len());
            for (chunk, &i) in rebuilt.iter().zip(lost) {
                prop_assert_eq!(chunk, &chunks[i]);
            }
            prop_assert!(kept.len() >= k);
        }
    }
}
