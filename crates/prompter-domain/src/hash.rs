//! The config hash: a pure function of the canonical bytes.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::canonical::CanonicalConfig;
use crate::error::DomainError;

/// Which digest a deployment uses for `config_hash`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HashAlgorithm {
    /// BLAKE3 (default for new deployments).
    #[default]
    Blake3,
    /// SHA-256: V7 compatibility, reproduces V7's stored hashes.
    Sha256,
}

impl HashAlgorithm {
    /// `"blake3"` or `"sha256"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Blake3 => "blake3",
            Self::Sha256 => "sha256",
        }
    }
}

impl fmt::Display for HashAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for HashAlgorithm {
    type Err = DomainError;

    /// `"blake3"` or `"sha256"` (ASCII case-insensitive).
    fn from_str(s: &str) -> Result<Self, DomainError> {
        if s.eq_ignore_ascii_case("blake3") {
            Ok(Self::Blake3)
        } else if s.eq_ignore_ascii_case("sha256") {
            Ok(Self::Sha256)
        } else {
            Err(DomainError::InvalidHashAlgorithm {
                value: s.to_owned(),
            })
        }
    }
}

/// A config hash: 64 lowercase hex digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ConfigHash(String);

impl ConfigHash {
    /// Hashes the canonical bytes with `alg`.
    pub fn compute(alg: HashAlgorithm, canonical: &CanonicalConfig) -> Self {
        let mut hex = [0u8; 64];
        Self(digest_hex(alg, canonical.as_bytes(), &mut hex).to_owned())
    }

    /// The 64 lowercase hex digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The hex digits as an owned `String`.
    pub fn into_string(self) -> String {
        self.0
    }
}

/// Hex digest of `bytes` written into `buf`, returned as `&str`.
pub(crate) fn digest_hex<'a>(alg: HashAlgorithm, bytes: &[u8], buf: &'a mut [u8; 64]) -> &'a str {
    let digest: [u8; 32] = match alg {
        HashAlgorithm::Blake3 => *blake3::hash(bytes).as_bytes(),
        HashAlgorithm::Sha256 => Sha256::digest(bytes).into(),
    };
    // Cannot fail: the buffer is exactly twice the digest length.
    hex::encode_to_slice(digest, buf).expect("64-byte buffer for a 32-byte digest");
    std::str::from_utf8(buf).expect("hex is ASCII")
}

impl fmt::Display for ConfigHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for ConfigHash {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl FromStr for ConfigHash {
    type Err = DomainError;

    /// Accepts exactly 64 lowercase hex digits (a stored hash).
    fn from_str(s: &str) -> Result<Self, DomainError> {
        if s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            Ok(Self(s.to_owned()))
        } else {
            Err(DomainError::InvalidConfigHash {
                value: s.to_owned(),
            })
        }
    }
}

impl TryFrom<String> for ConfigHash {
    type Error = DomainError;

    fn try_from(s: String) -> Result<Self, DomainError> {
        s.parse()
    }
}

impl From<ConfigHash> for String {
    fn from(h: ConfigHash) -> String {
        h.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{canonicalize, TemplateConfig};

    #[test]
    fn algorithms() {
        assert_eq!(HashAlgorithm::default(), HashAlgorithm::Blake3);
        assert_eq!(
            "sha256".parse::<HashAlgorithm>().unwrap(),
            HashAlgorithm::Sha256
        );
        assert_eq!(
            "BLAKE3".parse::<HashAlgorithm>().unwrap(),
            HashAlgorithm::Blake3
        );
        assert_eq!(
            "md5".parse::<HashAlgorithm>().unwrap_err().code(),
            "invalid_hash_algorithm"
        );
        assert_eq!(HashAlgorithm::Sha256.to_string(), "sha256");
        assert_eq!(
            serde_json::to_string(&HashAlgorithm::Blake3).unwrap(),
            "\"blake3\""
        );
        let a: HashAlgorithm = serde_json::from_str("\"sha256\"").unwrap();
        assert_eq!(a, HashAlgorithm::Sha256);
    }

    #[test]
    fn known_digests() {
        let c = canonicalize(&TemplateConfig::default());
        // python3: hashlib.sha256(canonical.encode()).hexdigest()
        let sha = ConfigHash::compute(HashAlgorithm::Sha256, &c);
        assert_eq!(sha.as_str(), {
            let mut b = [0u8; 64];
            digest_hex(HashAlgorithm::Sha256, c.as_bytes(), &mut b).to_owned()
        });
        let mut b = [0u8; 64];
        assert_eq!(
            digest_hex(HashAlgorithm::Sha256, b"", &mut b),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            digest_hex(HashAlgorithm::Blake3, b"", &mut b),
            "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
        );
        let blake = ConfigHash::compute(HashAlgorithm::Blake3, &c);
        assert_eq!(blake.as_str().len(), 64);
        assert_ne!(blake, sha);
    }

    #[test]
    fn parse_and_serde() {
        let h: ConfigHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
            .parse()
            .unwrap();
        assert_eq!(h.to_string(), h.as_str());
        let json = serde_json::to_string(&h).unwrap();
        let back: ConfigHash = serde_json::from_str(&json).unwrap();
        assert_eq!(back, h);
        for bad in ["", "abc", &"A".repeat(64), &"g".repeat(64), &"a".repeat(65)] {
            assert_eq!(
                bad.parse::<ConfigHash>().unwrap_err().code(),
                "invalid_config_hash"
            );
        }
        assert!(serde_json::from_str::<ConfigHash>("\"x\"").is_err());
    }
}
