//! Comparing credentials: client secrets, RESP passwords and the
//! per-invocation tokens nodes present.

use sha2::{Digest, Sha256};

/// Compares tokens without leaking, through timing, where they differ. (The
/// length is not hidden: it says little about a random token of fixed size.)
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len()
        && std::hint::black_box(a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y))) == 0
}

/// Whether `given` is the configured secret `expected`. Both are hashed
/// first and the digests compared in constant time, so neither the position
/// of the first difference nor the secret's length shows in the timing
/// (people choose secrets; their length is worth hiding).
pub fn secret_matches(expected: &[u8], given: &[u8]) -> bool {
    constant_time_eq(&Sha256::digest(expected), &Sha256::digest(given))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_only_when_every_byte_is() {
        assert!(constant_time_eq(b"", b""));
        assert!(constant_time_eq(b"hunter2", b"hunter2"));
        assert!(!constant_time_eq(b"hunter2", b"hunter3"));
        assert!(!constant_time_eq(b"hunter2", b"hunter"));
        assert!(!constant_time_eq(b"", b"x"));
    }

    #[test]
    fn secrets_match_exactly() {
        assert!(secret_matches(b"hunter2", b"hunter2"));
        assert!(!secret_matches(b"hunter2", b"hunter22"));
        assert!(!secret_matches(b"hunter2", b""));
    }
}
