//! What each key may hold, as far as its client knows.
//!
//! Keys are partitioned: a key belongs to one client, which runs one
//! operation at a time, so after an acknowledged PUT or DELETE the key's
//! content is known exactly. An operation that *failed* has an unknown
//! outcome: a PUT that timed out may still commit (its chunks may all have
//! reached the proxy), a DELETE that lost its connection may have run. Such
//! a key may hold any of several things, and they all stay possible until
//! the next acknowledged write: a GET that happens to see the old value
//! does not prove the failed PUT will not commit a moment later. Only an
//! acknowledged PUT or DELETE, which the proxy orders after everything
//! before it, makes the key's content exact again.

/// One PUT of a key: its sequence number and length (the bytes follow from
/// them, see [`super::verify`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    pub seq: u64,
    pub len: usize,
}

/// Everything a key may hold now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    /// Values it may hold: one after an acknowledged PUT, more after PUTs
    /// with unknown outcomes.
    values: Vec<Written>,
    /// Whether it may hold nothing (never written, deleted, or a DELETE
    /// with unknown outcome).
    absent: bool,
    /// Whether any PUT of it was ever sent.
    ever_written: bool,
}

impl Expected {
    /// Whether a GET may find nothing.
    pub fn may_be_absent(&self) -> bool {
        self.absent
    }

    /// The values a GET may return.
    pub fn values(&self) -> impl Iterator<Item = &Written> {
        self.values.iter()
    }

    /// Whether any PUT of the key was ever sent (a value that shows up for
    /// a key never written is not a resurrection but garbage).
    pub fn ever_written(&self) -> bool {
        self.ever_written
    }

    /// Whether the content is known exactly.
    pub fn is_exact(&self) -> bool {
        self.values.len() + usize::from(self.absent) == 1
    }

    /// For messages: `write #5 (3000 bytes)`, `nothing`, or the
    /// alternatives joined by `or`.
    pub fn describe(&self) -> String {
        let mut parts: Vec<String> = self
            .values
            .iter()
            .map(|w| format!("write #{} ({} bytes)", w.seq, w.len))
            .collect();
        if self.absent {
            parts.push("nothing".into());
        }
        parts.join(" or ")
    }

    #[cfg(test)]
    pub(crate) fn for_tests(values: Vec<Written>, absent: bool, ever_written: bool) -> Expected {
        Expected {
            values,
            absent,
            ever_written,
        }
    }
}

/// One key's model: what it may hold, and its write counter.
#[derive(Debug, Clone)]
pub struct KeyModel {
    expected: Expected,
    next_seq: u64,
}

impl Default for KeyModel {
    fn default() -> Self {
        KeyModel::new()
    }
}

impl KeyModel {
    /// A key never written: it holds nothing.
    pub fn new() -> KeyModel {
        KeyModel {
            expected: Expected {
                values: Vec::new(),
                absent: true,
                ever_written: false,
            },
            next_seq: 1,
        }
    }

    /// What the key may hold now.
    pub fn expected(&self) -> &Expected {
        &self.expected
    }

    /// Starts a PUT of `len` bytes: the write it will be.
    pub fn begin_put(&mut self, len: usize) -> Written {
        let written = Written {
            seq: self.next_seq,
            len,
        };
        self.next_seq += 1;
        self.expected.ever_written = true;
        written
    }

    /// The PUT was acknowledged: the key holds exactly `written`.
    pub fn put_acked(&mut self, written: Written) {
        self.expected.values.clear();
        self.expected.values.push(written);
        self.expected.absent = false;
    }

    /// The PUT failed: the key may hold `written` as well.
    pub fn put_failed(&mut self, written: Written) {
        self.expected.values.push(written);
    }

    /// The DELETE was acknowledged: the key holds nothing.
    pub fn delete_acked(&mut self) {
        self.expected.values.clear();
        self.expected.absent = true;
    }

    /// The DELETE failed: the key may hold nothing as well.
    pub fn delete_failed(&mut self) {
        self.expected.absent = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acknowledged_writes_make_the_content_exact() {
        let mut key = KeyModel::new();
        assert!(key.expected().may_be_absent() && key.expected().is_exact());
        assert!(!key.expected().ever_written());
        let first = key.begin_put(10);
        key.put_acked(first);
        assert_eq!(key.expected().values().collect::<Vec<_>>(), [&first]);
        assert!(!key.expected().may_be_absent());
        let second = key.begin_put(20);
        assert_eq!(second.seq, first.seq + 1);
        key.put_acked(second);
        assert_eq!(key.expected().values().collect::<Vec<_>>(), [&second]);
        key.delete_acked();
        assert!(key.expected().may_be_absent() && key.expected().is_exact());
        assert!(key.expected().ever_written());
        assert_eq!(key.expected().describe(), "nothing");
    }

    #[test]
    fn failures_widen_the_possibilities_until_the_next_acknowledgement() {
        let mut key = KeyModel::new();
        let first = key.begin_put(10);
        key.put_acked(first);
        let failed = key.begin_put(30);
        key.put_failed(failed);
        key.delete_failed();
        let e = key.expected();
        assert!(!e.is_exact());
        assert_eq!(e.values().count(), 2);
        assert!(e.may_be_absent());
        assert_eq!(
            e.describe(),
            "write #1 (10 bytes) or write #2 (30 bytes) or nothing"
        );
        let third = key.begin_put(5);
        key.put_acked(third);
        assert!(key.expected().is_exact());
        assert_eq!(key.expected().values().collect::<Vec<_>>(), [&third]);
    }
}
