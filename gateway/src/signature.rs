//! Webhook signatures: GitHub's HMAC of the raw body, checked in constant time against every
//! configured secret, so secrets can be rotated without dropping a delivery.

use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::Sha256;

/// The prefix of the environment variables that hold webhook secrets.
pub const SECRET_VARIABLE_PREFIX: &str = "WEBHOOK_SECRET";

/// The secrets deliveries may be signed with.
#[derive(Clone, Default)]
pub struct Secrets(Vec<Vec<u8>>);

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secrets({} configured)", self.0.len())
    }
}

/// Why a delivery's signature was refused. Nothing of a secret is in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// Neither signature header is present.
    #[error("the delivery is not signed (no X-Hub-Signature-256 header)")]
    Missing,
    /// The header is not `sha256=` (or `sha1=`) and hex.
    #[error("the signature header is malformed")]
    Malformed,
    /// No configured secret produces this signature.
    #[error("the signature does not match any configured secret")]
    Mismatch,
    /// No secret is configured, so no delivery can be verified.
    #[error("no webhook secret is configured (set WEBHOOK_SECRET or --webhook-secret)")]
    NoSecrets,
}

impl Secrets {
    /// The given secrets (empty ones are ignored).
    pub fn new<S: AsRef<[u8]>>(secrets: impl IntoIterator<Item = S>) -> Self {
        Self(
            secrets
                .into_iter()
                .map(|s| s.as_ref().to_vec())
                .filter(|s| !s.is_empty())
                .collect(),
        )
    }

    /// Every non-empty environment variable whose name starts with `WEBHOOK_SECRET`.
    pub fn from_env() -> Self {
        // `vars_os`: a variable that is not Unicode (anywhere in the environment) must not
        // stop the gateway; secrets are bytes anyway.
        let mut vars: Vec<(std::ffi::OsString, std::ffi::OsString)> = std::env::vars_os()
            .filter(|(name, _)| {
                name.as_encoded_bytes()
                    .starts_with(SECRET_VARIABLE_PREFIX.as_bytes())
            })
            .collect();
        vars.sort();
        Self::new(
            vars.into_iter()
                .map(|(_, value)| value.into_encoded_bytes()),
        )
    }

    /// These secrets and `more` (empty ones ignored).
    pub fn with<S: AsRef<[u8]>>(mut self, more: impl IntoIterator<Item = S>) -> Self {
        self.0.extend(Self::new(more).0);
        self
    }

    /// How many secrets are configured.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Checks a delivery: `X-Hub-Signature-256` when present, else the legacy SHA-1
    /// `X-Hub-Signature`, against every secret.
    pub fn verify(
        &self,
        sha256: Option<&[u8]>,
        sha1: Option<&[u8]>,
        body: &[u8],
    ) -> Result<(), SignatureError> {
        if self.is_empty() {
            return Err(SignatureError::NoSecrets);
        }
        match (sha256, sha1) {
            (Some(header), _) => {
                let expected = decode(header, b"sha256=", 32)?;
                self.any(|secret| check::<Hmac<Sha256>>(secret, body, &expected))
            }
            (None, Some(header)) => {
                let expected = decode(header, b"sha1=", 20)?;
                self.any(|secret| check::<Hmac<Sha1>>(secret, body, &expected))
            }
            (None, None) => Err(SignatureError::Missing),
        }
    }

    fn any(&self, matches: impl Fn(&[u8]) -> bool) -> Result<(), SignatureError> {
        // Every secret is tried, so the time taken does not tell which one matched.
        let mut found = false;
        for secret in &self.0 {
            found |= matches(secret);
        }
        if found {
            Ok(())
        } else {
            Err(SignatureError::Mismatch)
        }
    }
}

/// `sha256=` and the hex HMAC-SHA256 of `body` under `secret`: the `X-Hub-Signature-256`
/// header GitHub sends.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

fn decode(header: &[u8], prefix: &[u8], len: usize) -> Result<Vec<u8>, SignatureError> {
    let hex = header
        .strip_prefix(prefix)
        .ok_or(SignatureError::Malformed)?;
    let bytes = hex::decode(hex).map_err(|_| SignatureError::Malformed)?;
    if bytes.len() == len {
        Ok(bytes)
    } else {
        Err(SignatureError::Malformed)
    }
}

/// Whether `expected` is the HMAC of `body` under `secret` (compared in constant time).
fn check<M: Mac + hmac::digest::KeyInit>(secret: &[u8], body: &[u8], expected: &[u8]) -> bool {
    let Ok(mut mac) = <M as hmac::digest::KeyInit>::new_from_slice(secret) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(expected).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const GITHUB_SECRET: &str = "It's a Secret to Everybody";
    const GITHUB_BODY: &[u8] = b"Hello, World!";
    const GITHUB_SIGNATURE: &str =
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

    #[test]
    fn verify_should_accept_githubs_documented_vector() {
        assert_eq!(
            sign(GITHUB_SECRET.as_bytes(), GITHUB_BODY),
            GITHUB_SIGNATURE
        );
        let secrets = Secrets::new([GITHUB_SECRET]);
        assert_eq!(
            secrets.verify(Some(GITHUB_SIGNATURE.as_bytes()), None, GITHUB_BODY),
            Ok(())
        );
    }

    #[test]
    fn verify_should_accept_any_configured_secret() {
        let secrets = Secrets::new(["old", "new"]);
        for secret in ["old", "new"] {
            let signature = sign(secret.as_bytes(), b"{}");
            assert_eq!(
                secrets.verify(Some(signature.as_bytes()), None, b"{}"),
                Ok(())
            );
        }
        let other = sign(b"other", b"{}");
        assert_eq!(
            secrets.verify(Some(other.as_bytes()), None, b"{}"),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn verify_should_refuse_tampered_missing_and_malformed_signatures() {
        let secrets = Secrets::new(["s"]);
        let signature = sign(b"s", b"{\"a\":1}");
        assert_eq!(
            secrets.verify(Some(signature.as_bytes()), None, b"{\"a\":2}"),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            secrets.verify(None, None, b"{}"),
            Err(SignatureError::Missing)
        );
        for bad in ["sha256=zz", "sha1=abcd", "757107ea", "sha256=abcd"] {
            assert_eq!(
                secrets.verify(Some(bad.as_bytes()), None, b"{}"),
                Err(SignatureError::Malformed),
                "{bad}"
            );
        }
        assert_eq!(
            Secrets::default().verify(Some(signature.as_bytes()), None, b"{}"),
            Err(SignatureError::NoSecrets)
        );
    }

    #[test]
    fn verify_should_fall_back_to_sha1_only_without_sha256() {
        let secrets = Secrets::new(["s"]);
        let mut mac = Hmac::<Sha1>::new_from_slice(b"s").unwrap();
        mac.update(b"{}");
        let sha1 = format!("sha1={}", hex::encode(mac.finalize().into_bytes()));
        assert_eq!(secrets.verify(None, Some(sha1.as_bytes()), b"{}"), Ok(()));
        let wrong256 = sign(b"other", b"{}");
        assert_eq!(
            secrets.verify(Some(wrong256.as_bytes()), Some(sha1.as_bytes()), b"{}"),
            Err(SignatureError::Mismatch),
            "a SHA-256 header present is the one checked"
        );
    }
}
