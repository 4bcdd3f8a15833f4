//! Keys: validated where they enter, and encoded into object names that are safe for any key.

use sha2::{Digest, Sha256};

/// The longest key the queue takes, in bytes.
pub const MAX_KEY_BYTES: usize = 1024;

/// Encoded keys longer than this are stored under their hash instead, so that a key plus the
/// queue's prefixes (and a bucket prefix) stays within GCS's 1,024-byte name limit.
const MAX_ENCODED_KEY_BYTES: usize = 768;

/// Why a key was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidKey {
    /// The key is the empty string.
    #[error("the key is empty")]
    Empty,
    /// The key is over [`MAX_KEY_BYTES`].
    #[error("the key is {0} bytes long, over the limit of 1024")]
    TooLong(usize),
}

/// Checks that `key` can be queued: not empty, at most [`MAX_KEY_BYTES`] bytes.
pub fn validate_key(key: &str) -> Result<(), InvalidKey> {
    match key.len() {
        0 => Err(InvalidKey::Empty),
        n if n > MAX_KEY_BYTES => Err(InvalidKey::TooLong(n)),
        _ => Ok(()),
    }
}

/// The name segment that stands for `key`: bytes other than `A-Z a-z 0-9 - _ .` become `%XX`
/// (so a `/` can never leave the prefix), and a key too long for that becomes `~` and its
/// SHA-256. The key itself is always kept in the object's metadata too.
pub(crate) fn encode_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for byte in key.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    if out.len() > MAX_ENCODED_KEY_BYTES {
        format!("~{}", hex::encode(Sha256::digest(key.as_bytes())))
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validate_key_should_refuse_empty_and_oversized_keys() {
        assert_eq!(validate_key(""), Err(InvalidKey::Empty));
        assert_eq!(
            validate_key(&"k".repeat(1025)),
            Err(InvalidKey::TooLong(1025))
        );
        assert!(validate_key(&"k".repeat(1024)).is_ok());
    }

    #[test]
    fn encode_key_should_keep_keys_inside_their_prefix() {
        for key in ["../../etc/passwd", "a/b", "%2F", "~x", "é ü", "..", "."] {
            let encoded = encode_key(key);
            assert!(!encoded.contains('/'), "{encoded}");
            assert!(!encoded.starts_with('~'), "{encoded}");
        }
        assert_eq!(
            encode_key("https://github.com/o/r/pull/1"),
            "https%3A%2F%2Fgithub.com%2Fo%2Fr%2Fpull%2F1"
        );
    }

    #[test]
    fn encode_key_should_be_injective_and_bounded() {
        assert_ne!(encode_key("a b"), encode_key("a%20b"));
        let long = "é".repeat(512);
        let encoded = encode_key(&long);
        assert!(encoded.starts_with('~') && encoded.len() == 65);
        assert_ne!(encoded, encode_key(&"é".repeat(511)));
    }
}
