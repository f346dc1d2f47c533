//! Self-describing values, and the byte-for-byte check of what a GET
//! returned.
//!
//! Keeping a copy of every value written would double the memory of a run
//! (hundreds of MB live), and a checksum would only say *that* a value is
//! wrong. Instead every value is a pure function of its identity (run, key,
//! write sequence number) and its length, so the expected bytes can be
//! regenerated at will and compared with every byte returned:
//!
//! ```text
//! word 0  b"ICSOAK\x01\0"  magic
//! word 1  run id           random per run: values of another run never match
//! word 2  key id           (client << 32) | key index
//! word 3  sequence number  the key's write counter, 1, 2, ...
//! word 4  length           of the whole value, in bytes
//! word j  mix(seed + j)    for j >= 5, seed = mix(run, key, seq)
//! ```
//!
//! (little-endian 64-bit words; a value is the first `length` bytes of that
//! stream, so values shorter than the 40-byte header are truncated headers
//! and still exact). Every word is computed independently of the others
//! (a counter-based generator), so checking needs no buffer: each 8 bytes
//! returned are compared with the word that belongs there. When a value is
//! wrong, its header, if intact, says what it is instead: an older write of
//! the same key (stale), a write of a deleted key (resurrected), another
//! key's value, or garbage; and the first differing byte is reported.

use bytes::Bytes;

use super::model::{Expected, Written};

/// Bytes of the header at the start of every value.
pub const HEADER_LEN: usize = 40;
const MAGIC: u64 = u64::from_le_bytes(*b"ICSOAK\x01\0");
const WORD: usize = 8;
const HEADER_WORDS: usize = HEADER_LEN / WORD;

/// Who wrote a value: the run, the key and the key's write counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValueId {
    pub run: u64,
    pub key: u64,
    pub seq: u64,
}

impl ValueId {
    fn seed(&self) -> u64 {
        mix(self.run ^ mix(self.key ^ mix(self.seq)))
    }
}

/// SplitMix64's finaliser: a fast bijective mix with full avalanche.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The words of one value: header words, then the generated body.
struct Words {
    header: [u64; HEADER_WORDS],
    seed: u64,
}

impl Words {
    fn new(id: ValueId, len: usize) -> Words {
        Words {
            header: [MAGIC, id.run, id.key, id.seq, len as u64],
            seed: id.seed(),
        }
    }

    fn word(&self, j: usize) -> u64 {
        match self.header.get(j) {
            Some(&w) => w,
            None => mix(self.seed.wrapping_add(j as u64)),
        }
    }
}

/// The value `id` writes, `len` bytes long.
pub fn generate(id: ValueId, len: usize) -> Bytes {
    let words = Words::new(id, len);
    let mut data = vec![0u8; len];
    let mut chunks = data.chunks_exact_mut(WORD);
    for (j, chunk) in (&mut chunks).enumerate() {
        chunk.copy_from_slice(&words.word(j).to_le_bytes());
    }
    let tail = chunks.into_remainder();
    let j = len / WORD;
    let last = words.word(j).to_le_bytes();
    tail.copy_from_slice(&last[..tail.len()]);
    Bytes::from(data)
}

/// The offset of the first byte of `got` that differs from the value `id`
/// writes at `got`'s length; `None` when every byte matches.
pub fn first_difference(id: ValueId, got: &[u8]) -> Option<usize> {
    let words = Words::new(id, got.len());
    let mut chunks = got.chunks_exact(WORD);
    for (j, chunk) in (&mut chunks).enumerate() {
        let expected = words.word(j).to_le_bytes();
        if chunk != expected {
            let within = chunk.iter().zip(expected).position(|(a, b)| *a != b);
            return Some(j * WORD + within.unwrap_or(0));
        }
    }
    let tail = chunks.remainder();
    let j = got.len() / WORD;
    let expected = words.word(j).to_le_bytes();
    tail.iter()
        .zip(expected)
        .position(|(a, b)| *a != b)
        .map(|within| j * WORD + within)
}

/// What a value's header claims it is, if it has an intact one.
fn header_of(got: &[u8]) -> Option<ValueId> {
    let word = |j: usize| {
        got.get(j * WORD..(j + 1) * WORD)
            .and_then(|bytes| bytes.try_into().ok())
            .map(u64::from_le_bytes)
    };
    if word(0)? != MAGIC || word(4)? != got.len() as u64 {
        return None;
    }
    Some(ValueId {
        run: word(1)?,
        key: word(2)?,
        seq: word(3)?,
    })
}

/// The judgement of one GET (or of a DELETE's `existed` flag).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Exactly one of the values the key may hold, byte for byte.
    Match { bytes: u64 },
    /// Nothing, and the key may hold nothing.
    Absent,
    /// Nothing, but a value was acknowledged.
    Missing(String),
    /// An intact older value of this key where a newer one was
    /// acknowledged.
    Stale(String),
    /// An intact value of this key after its DELETE was acknowledged.
    Resurrected(String),
    /// Anything else: garbled bytes, another key's value, a wrong length.
    Corrupt(String),
}

impl Verdict {
    /// Whether the cache answered correctly.
    pub fn is_ok(&self) -> bool {
        matches!(self, Verdict::Match { .. } | Verdict::Absent)
    }
}

/// Judges a GET of `key` (id `key_id` in run `run`) that returned `got`
/// (`None`: not found) against `expected`, what the key may hold.
///
/// Every byte is compared: against the candidate values of the same
/// length; a value that matches none is then explained by its header.
pub fn judge_get(
    run: u64,
    key: &str,
    key_id: u64,
    expected: &Expected,
    got: Option<&[u8]>,
) -> Verdict {
    let Some(got) = got else {
        return if expected.may_be_absent() {
            Verdict::Absent
        } else {
            Verdict::Missing(format!(
                "GET {key}: not found; expected {}",
                expected.describe()
            ))
        };
    };
    let id = |w: &Written| ValueId {
        run,
        key: key_id,
        seq: w.seq,
    };
    let mut closest: Option<(Written, usize)> = None;
    for written in expected.values() {
        if written.len != got.len() {
            continue;
        }
        match first_difference(id(written), got) {
            None => {
                return Verdict::Match {
                    bytes: got.len() as u64,
                };
            }
            Some(offset) => {
                if closest.is_none_or(|(_, best)| offset > best) {
                    closest = Some((*written, offset));
                }
            }
        }
    }
    explain(run, key, key_id, expected, got, closest)
}

/// Why `got`, which matches none of the expected values, is wrong.
fn explain(
    run: u64,
    key: &str,
    key_id: u64,
    expected: &Expected,
    got: &[u8],
    closest: Option<(Written, usize)>,
) -> Verdict {
    let wanted = expected.describe();
    let header = header_of(got).filter(|h| first_difference(*h, got).is_none());
    match header {
        Some(h) if h.run == run && h.key == key_id => {
            let what = format!(
                "GET {key}: returned write #{} ({} bytes), intact; expected {wanted}",
                h.seq,
                got.len()
            );
            if expected.may_be_absent() && expected.values().next().is_none() {
                Verdict::Resurrected(what)
            } else if expected.values().all(|w| h.seq < w.seq) {
                Verdict::Stale(what)
            } else {
                // A write newer than any sent, or one superseded by an
                // acknowledged DELETE and PUT: nothing legitimate.
                Verdict::Corrupt(what)
            }
        }
        Some(h) => Verdict::Corrupt(format!(
            "GET {key}: returned another key's value (run {:016x}, key {:#x}, write #{}, {} bytes); expected {wanted}",
            h.run,
            h.key,
            h.seq,
            got.len()
        )),
        None => Verdict::Corrupt(match closest {
            Some((w, offset)) => format!(
                "GET {key}: {} bytes differ from write #{} from byte {offset} on; expected {wanted}",
                got.len(),
                w.seq
            ),
            None => format!(
                "GET {key}: returned {} bytes, a length no write had; expected {wanted}",
                got.len()
            ),
        }),
    }
}

/// Judges a DELETE's answer (`existed`) against what the key may hold.
pub fn judge_delete(key: &str, expected: &Expected, existed: bool) -> Verdict {
    match (existed, expected.may_be_absent(), expected.values().next()) {
        (true, _, Some(_)) | (false, true, _) => Verdict::Absent,
        (true, _, None) => {
            let what = format!("DELETE {key}: the key existed; expected it absent");
            if expected.ever_written() {
                Verdict::Resurrected(what)
            } else {
                Verdict::Corrupt(what)
            }
        }
        (false, false, _) => Verdict::Missing(format!(
            "DELETE {key}: the key did not exist; expected {}",
            expected.describe()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RUN: u64 = 0x1234;

    fn id(seq: u64) -> ValueId {
        ValueId {
            run: RUN,
            key: 7,
            seq,
        }
    }

    #[test]
    fn values_are_deterministic_self_describing_and_distinct() {
        for len in [0, 1, 7, 8, 39, 40, 41, 1000, 65_537] {
            let value = generate(id(3), len);
            assert_eq!(value.len(), len);
            assert_eq!(value, generate(id(3), len));
            assert_eq!(first_difference(id(3), &value), None, "len {len}");
            if len > HEADER_LEN {
                assert_eq!(header_of(&value), Some(id(3)));
                assert_ne!(value, generate(id(4), len));
            }
        }
        let mut value = generate(id(1), 4096).to_vec();
        value[1234] ^= 1;
        assert_eq!(first_difference(id(1), &value), Some(1234));
        let mut short = generate(id(1), 13).to_vec();
        short[12] ^= 0x80;
        assert_eq!(first_difference(id(1), &short), Some(12));
    }

    fn holding(seqs: &[(u64, usize)], absent: bool) -> Expected {
        Expected::for_tests(
            seqs.iter()
                .map(|&(seq, len)| Written { seq, len })
                .collect(),
            absent,
            true,
        )
    }

    #[test]
    fn gets_are_judged_exactly() {
        let now = holding(&[(5, 3000)], false);
        let current = generate(id(5), 3000);
        assert_eq!(
            judge_get(RUN, "k", 7, &now, Some(&current)),
            Verdict::Match { bytes: 3000 }
        );
        assert!(matches!(
            judge_get(RUN, "k", 7, &now, None),
            Verdict::Missing(_)
        ));
        let old = generate(id(4), 100);
        assert!(matches!(
            judge_get(RUN, "k", 7, &now, Some(&old)),
            Verdict::Stale(_)
        ));
        let mut garbled = current.to_vec();
        garbled[2999] ^= 0xff;
        match judge_get(RUN, "k", 7, &now, Some(&garbled)) {
            Verdict::Corrupt(what) => assert!(what.contains("byte 2999"), "{what}"),
            other => panic!("{other:?}"),
        }
        let other_key = generate(
            ValueId {
                run: RUN,
                key: 8,
                seq: 5,
            },
            3000,
        );
        assert!(matches!(
            judge_get(RUN, "k", 7, &now, Some(&other_key)),
            Verdict::Corrupt(_)
        ));
        // Deleted: nothing is right, the old value is a resurrection.
        let deleted = holding(&[], true);
        assert_eq!(judge_get(RUN, "k", 7, &deleted, None), Verdict::Absent);
        assert!(matches!(
            judge_get(RUN, "k", 7, &deleted, Some(&current)),
            Verdict::Resurrected(_)
        ));
    }

    #[test]
    fn an_unknown_outcome_accepts_either_value_and_nothing_else() {
        // Write 5 acknowledged, write 6 failed: either may be read.
        let unsure = holding(&[(5, 3000), (6, 50)], false);
        for (seq, len) in [(5, 3000), (6, 50)] {
            let value = generate(id(seq), len);
            assert!(judge_get(RUN, "k", 7, &unsure, Some(&value)).is_ok());
        }
        assert!(!judge_get(RUN, "k", 7, &unsure, None).is_ok());
        // A failed DELETE after an acknowledged PUT: the value or nothing.
        let maybe_deleted = holding(&[(5, 3000)], true);
        assert!(judge_get(RUN, "k", 7, &maybe_deleted, None).is_ok());
        assert!(judge_delete("k", &maybe_deleted, true).is_ok());
        assert!(judge_delete("k", &maybe_deleted, false).is_ok());
    }

    #[test]
    fn deletes_must_agree_with_the_model() {
        assert!(judge_delete("k", &holding(&[(1, 10)], false), true).is_ok());
        assert!(matches!(
            judge_delete("k", &holding(&[(1, 10)], false), false),
            Verdict::Missing(_)
        ));
        assert!(matches!(
            judge_delete("k", &holding(&[], true), true),
            Verdict::Resurrected(_)
        ));
        let never = Expected::for_tests(Vec::new(), true, false);
        assert!(matches!(
            judge_delete("k", &never, true),
            Verdict::Corrupt(_)
        ));
    }
}
