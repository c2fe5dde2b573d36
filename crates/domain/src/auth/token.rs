//! Opaque bearer tokens: 256 random bits, shown to the client once, stored only as SHA-256.
//! A fast hash is right here (unlike passwords): the token has full entropy, so the hash
//! cannot be brute-forced, and it is checked on every request.

use sha2::{Digest, Sha256};

use crate::error::StoreError;

/// A freshly issued bearer token. Its `Debug` output hides the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionToken(String);

impl SessionToken {
    /// Bytes of randomness in a token.
    pub const BYTES: usize = 32;

    /// Draws a new token from the operating system's CSPRNG.
    ///
    /// # Errors
    /// `StoreError::Other` if the system has no randomness to give.
    pub fn generate() -> Result<Self, StoreError> {
        let mut bytes = [0_u8; Self::BYTES];
        getrandom::fill(&mut bytes).map_err(|error| StoreError::Other(error.to_string().into()))?;
        Ok(Self(hex::encode(bytes)))
    }

    /// The secret, to hand to the client exactly once.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// What the store keeps.
    #[must_use]
    pub fn hash(&self) -> [u8; 32] {
        hash_token(&self.0)
    }
}

impl std::fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionToken(***)")
    }
}

/// SHA-256 of a presented token.
#[must_use]
pub fn hash_token(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_256_bit_and_hashed() -> Result<(), StoreError> {
        let a = SessionToken::generate()?;
        let b = SessionToken::generate()?;
        assert_ne!(a, b);
        assert_eq!(a.expose().len(), 64);
        assert_eq!(a.hash(), hash_token(a.expose()));
        assert_ne!(a.hash(), b.hash());
        assert_eq!(format!("{a:?}"), "SessionToken(***)");
        Ok(())
    }
}
