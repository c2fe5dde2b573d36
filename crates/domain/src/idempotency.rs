//! Idempotency keys (DESIGN §6): the same key and request replays the first response, the
//! same key with another request is refused. Keys are scoped to the calling user.

use chrono::TimeDelta;
use sha2::{Digest, Sha256};

use crate::actor::Actor;
use crate::clock::Clock;
use crate::error::StoreError;
use crate::ports::{IdempotencyRepository, IdempotencyStart};
use crate::services::{Adapters, Ports};

/// A claim still in progress after this long belongs to a request whose process died; a
/// retry takes it over rather than waiting forever.
pub const ABANDONED_AFTER: TimeDelta = TimeDelta::minutes(5);

/// The longest key accepted.
pub const MAX_KEY_LEN: usize = 255;

/// Identifies a request: method, path and body. Callers should pass a canonical body
/// (e.g. re-serialized JSON) so that formatting does not matter.
#[must_use]
pub fn fingerprint(method: &str, path: &str, body: &[u8]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(method.as_bytes());
    hasher.update([0]);
    hasher.update(path.as_bytes());
    hasher.update([0]);
    hasher.update(body);
    hasher.finalize().into()
}

/// Claims, completes and releases idempotency keys.
pub struct IdempotencyService<P: Ports> {
    adapters: Adapters<P>,
}

impl<P: Ports> IdempotencyService<P> {
    /// A service over the given adapters.
    #[must_use]
    pub fn new(adapters: Adapters<P>) -> Self {
        Self { adapters }
    }

    /// Claims the caller's key for this request.
    ///
    /// # Errors
    /// Storage failures only.
    pub async fn begin(
        &self,
        actor: &Actor,
        key: &str,
        fingerprint: [u8; 32],
    ) -> Result<IdempotencyStart, StoreError> {
        let stale_before = self.adapters.clock.now() - ABANDONED_AFTER;
        self.adapters
            .idempotency
            .begin(actor.user_id, key.to_owned(), fingerprint, stale_before)
            .await
    }

    /// Stores the response for replays.
    ///
    /// # Errors
    /// Storage failures only.
    pub async fn complete(
        &self,
        actor: &Actor,
        key: &str,
        status: u16,
        body: Vec<u8>,
    ) -> Result<(), StoreError> {
        self.adapters
            .idempotency
            .complete(actor.user_id, key.to_owned(), status, body)
            .await
    }

    /// Releases the key after a transient failure, so a retry does the work.
    ///
    /// # Errors
    /// Storage failures only.
    pub async fn release(&self, actor: &Actor, key: &str) -> Result<(), StoreError> {
        self.adapters
            .idempotency
            .release(actor.user_id, key.to_owned())
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::fingerprint;

    #[test]
    fn fingerprints_separate_method_path_and_body() {
        let base = fingerprint("POST", "/a", b"{}");
        assert_eq!(base, fingerprint("POST", "/a", b"{}"));
        assert_ne!(base, fingerprint("POST", "/a", b"{ }"));
        assert_ne!(base, fingerprint("POST", "/b", b"{}"));
        assert_ne!(
            fingerprint("POST", "/a", b"b"),
            fingerprint("POST", "/ab", b"")
        );
    }
}
