//! Object keys.

use std::fmt;

use bytes::Bytes;

use super::ProtocolError;

/// The longest key the protocol can carry (its length prefix is a `u16`).
/// Servers may enforce a lower limit.
pub const MAX_KEY_LEN: usize = u16::MAX as usize;

/// An object key: 1 to [`MAX_KEY_LEN`] arbitrary bytes.
///
/// Keys are binary, like Redis keys; they are shown lossily as UTF-8.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key(Bytes);

impl Key {
    /// Validates and wraps a key.
    pub fn new(key: impl Into<Bytes>) -> Result<Self, ProtocolError> {
        let key = key.into();
        if key.is_empty() {
            return Err(ProtocolError::InvalidField {
                field: "key",
                reason: "must not be empty".into(),
            });
        }
        if key.len() > MAX_KEY_LEN {
            return Err(ProtocolError::InvalidField {
                field: "key",
                reason: format!("{} bytes exceeds {MAX_KEY_LEN}", key.len()),
            });
        }
        Ok(Key(key))
    }

    /// The key's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The key's bytes as a shared buffer.
    pub fn to_bytes(&self) -> Bytes {
        self.0.clone()
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Always false: keys are never empty. Present for API symmetry.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key({:?})", String::from_utf8_lossy(&self.0))
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.0))
    }
}

impl TryFrom<&str> for Key {
    type Error = ProtocolError;
    fn try_from(key: &str) -> Result<Self, Self::Error> {
        Key::new(Bytes::copy_from_slice(key.as_bytes()))
    }
}

impl TryFrom<String> for Key {
    type Error = ProtocolError;
    fn try_from(key: String) -> Result<Self, Self::Error> {
        Key::new(Bytes::from(key.into_bytes()))
    }
}

impl TryFrom<&[u8]> for Key {
    type Error = ProtocolError;
    fn try_from(key: &[u8]) -> Result<Self, Self::Error> {
        Key::new(Bytes::copy_from_slice(key))
    }
}

impl TryFrom<Vec<u8>> for Key {
    type Error = ProtocolError;
    fn try_from(key: Vec<u8>) -> Result<Self, Self::Error> {
        Key::new(Bytes::from(key))
    }
}

impl TryFrom<Bytes> for Key {
    type Error = ProtocolError;
    fn try_from(key: Bytes) -> Result<Self, Self::Error> {
        Key::new(key)
    }
}

impl TryFrom<&Key> for Key {
    type Error = ProtocolError;
    fn try_from(key: &Key) -> Result<Self, Self::Error> {
        Ok(key.clone())
    }
}
