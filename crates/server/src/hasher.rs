//! argon2id password hashing off the async runtime: on `concurrency` dedicated threads, so a
//! burst of logins queues here instead of starving the request-serving threads (each hash
//! takes ~19 MiB and tens of milliseconds).
//!
//! Dedicated threads rather than Tokio's blocking pool: glibc keeps a freed 19 MiB block in
//! the arena of the thread that freed it, and the blocking pool grows to many threads under
//! a login burst, so the server's resident memory grew to ~600 MB (docs/performance.md). A
//! fixed set of hashing threads bounds what the allocator can keep to a few blocks.

use std::sync::Arc;

use std::cell::RefCell;

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{ARGON2ID_IDENT, Algorithm, Argon2, Block, Params, Version, password_hash};
use shms_domain::StoreError;
use shms_domain::ports::PasswordHasher;
use tokio::sync::Semaphore;

/// OWASP's argon2id minimum: 19 MiB, 2 iterations, 1 lane.
pub const MEMORY_KIB: u32 = 19_456;
/// Iterations.
pub const ITERATIONS: u32 = 2;
/// Lanes.
pub const PARALLELISM: u32 = 1;

type Job = Box<dyn FnOnce() + Send>;

/// The production `PasswordHasher`.
#[derive(Clone)]
pub struct Argon2Hasher {
    permits: Arc<Semaphore>,
    jobs: std::sync::mpsc::Sender<Job>,
    /// Verified against when the account does not exist, so unknown e-mails cost the same.
    dummy_hash: Arc<String>,
}

fn params() -> Result<Params, StoreError> {
    Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, None)
        .map_err(|e| StoreError::Other(e.to_string().into()))
}

fn failure(error: impl std::fmt::Display) -> StoreError {
    StoreError::Other(error.to_string().into())
}

thread_local! {
    /// This hashing thread's argon2 working memory (19 MiB), allocated on its first hash and
    /// reused: allocating and freeing it per hash left glibc holding freed blocks in its
    /// per-thread arenas, and the server's memory grew to hundreds of MB under logins.
    static MEMORY: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

/// Computes the raw argon2 output into `out`, in this thread's reused memory.
fn compute(
    argon2: &Argon2<'_>,
    blocks: usize,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
) -> Result<(), StoreError> {
    MEMORY.with_borrow_mut(|memory| {
        if memory.len() < blocks {
            memory.resize(blocks, Block::default());
        }
        let working = memory
            .get_mut(..blocks)
            .ok_or_else(|| failure("argon2 memory"))?;
        argon2
            .hash_password_into_with_memory(password, salt, out, working)
            .map_err(failure)
    })
}

/// A new argon2id PHC string for `password`, with a fresh random salt.
fn hash_blocking(password: &str) -> Result<String, StoreError> {
    let params = params()?;
    let blocks = params.block_count();
    let phc_params = ParamsString::try_from(&params).map_err(failure)?;
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    let salt = password_hash::try_generate_salt().map_err(failure)?;
    let mut out = [0_u8; Params::DEFAULT_OUTPUT_LEN];
    compute(&argon2, blocks, password.as_bytes(), &salt, &mut out)?;
    let hash = PasswordHash {
        algorithm: ARGON2ID_IDENT,
        version: Some(Version::V0x13.into()),
        params: phc_params,
        salt: Some(Salt::new(&salt).map_err(failure)?),
        hash: Some(Output::new(&out).map_err(failure)?),
    };
    Ok(hash.to_string())
}

/// Whether `password` matches the PHC string (with whatever argon2 parameters it names);
/// an unparsable or non-argon2 string never matches.
fn verify_blocking(password: &str, phc: &str) -> Result<bool, StoreError> {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return Ok(false);
    };
    let (Some(salt), Some(expected)) = (&parsed.salt, &parsed.hash) else {
        return Ok(false);
    };
    let (Ok(algorithm), Ok(params)) = (
        Algorithm::try_from(parsed.algorithm.as_str()),
        Params::try_from(&parsed),
    ) else {
        return Ok(false);
    };
    let version = match parsed.version.map(Version::try_from).transpose() {
        Ok(version) => version.unwrap_or_default(),
        Err(_) => return Ok(false),
    };
    let blocks = params.block_count();
    let argon2 = Argon2::new(algorithm, version, params);
    let mut out = vec![0_u8; expected.len()];
    compute(
        &argon2,
        blocks,
        password.as_bytes(),
        salt.as_ref(),
        &mut out,
    )?;
    // `Output`'s equality is constant-time
    Ok(Output::new(&out).is_ok_and(|computed| &computed == expected))
}

/// Whether a PHC string was made with exactly the algorithm, version and cost parameters
/// new hashes get. Anything else (older or weaker parameters, another algorithm, garbage)
/// should be replaced after the next successful login.
#[must_use]
pub fn is_current(hash: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    let Ok(params) = Params::try_from(&parsed) else {
        return false;
    };
    parsed.algorithm.as_str() == "argon2id"
        && parsed.version == Some(Version::V0x13 as u32)
        && params.m_cost() == MEMORY_KIB
        && params.t_cost() == ITERATIONS
        && params.p_cost() == PARALLELISM
}

impl Argon2Hasher {
    /// A hasher running at most `concurrency` hashes at once.
    ///
    /// # Errors
    /// If the dummy hash cannot be computed (no randomness).
    pub fn new(concurrency: usize) -> Result<Self, StoreError> {
        let dummy = hash_blocking("dummy password for unknown accounts")?;
        let concurrency = concurrency.max(1);
        let (jobs, queue) = std::sync::mpsc::channel::<Job>();
        let queue = Arc::new(std::sync::Mutex::new(queue));
        for n in 0..concurrency {
            let queue = Arc::clone(&queue);
            std::thread::Builder::new()
                .name(format!("argon2-{n}"))
                .spawn(move || {
                    loop {
                        // the lock is held only while taking the next job; a poisoned lock or
                        // a closed channel (the hasher was dropped) ends the thread
                        let next = match queue.lock() {
                            Ok(receiver) => receiver.recv(),
                            Err(_) => return,
                        };
                        match next {
                            Ok(job) => job(),
                            Err(_) => return,
                        }
                    }
                })
                .map_err(|e| StoreError::Other(Box::new(e)))?;
        }
        Ok(Self {
            permits: Arc::new(Semaphore::new(concurrency)),
            jobs,
            dummy_hash: Arc::new(dummy),
        })
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, StoreError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| StoreError::Unavailable("hasher closed".into()))?;
        let (done, result) = tokio::sync::oneshot::channel();
        self.jobs
            .send(Box::new(move || {
                // the caller may have gone; its result is then simply dropped
                let _ = done.send(work());
            }))
            .map_err(|_| StoreError::Unavailable("hasher stopped".into()))?;
        result
            .await
            .map_err(|_| StoreError::Other("a hashing thread stopped".into()))
    }
}

impl PasswordHasher for Argon2Hasher {
    async fn hash(&self, password: String) -> Result<String, StoreError> {
        self.run(move || hash_blocking(&password)).await?
    }

    async fn verify(&self, password: String, hash: Option<String>) -> Result<bool, StoreError> {
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| self.dummy_hash.as_str().to_owned());
        let matches = self
            .run(move || verify_blocking(&password, &hash))
            .await??;
        Ok(known && matches)
    }

    fn needs_rehash(&self, hash: &str) -> bool {
        !is_current(hash)
    }
}

#[cfg(test)]
mod tests {
    use argon2::{PasswordHasher as _, PasswordVerifier as _};

    use super::*;

    #[tokio::test(flavor = "multi_thread")]
    async fn hashes_made_in_reused_memory_are_standard_phc_strings() -> Result<(), StoreError> {
        let hasher = Argon2Hasher::new(1)?;
        // several hashes on the one thread reuse its memory and still differ by salt
        let first = hasher.hash("correct horse battery staple".into()).await?;
        let second = hasher.hash("correct horse battery staple".into()).await?;
        assert_ne!(first, second);
        for hash in [&first, &second] {
            // the library's own verifier accepts them: the format is the standard one
            let reference = Argon2::default();
            assert!(
                reference
                    .verify_password(b"correct horse battery staple", hash.as_str())
                    .is_ok()
            );
            assert!(reference.verify_password(b"wrong", hash.as_str()).is_err());
        }
        assert!(
            !hasher
                .verify("x".into(), Some("not a phc string".into()))
                .await?
        );
        Ok(())
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn hashes_are_argon2id_with_owasp_parameters_and_verify() -> Result<(), StoreError> {
        let hasher = Argon2Hasher::new(2)?;
        let hash = hasher.hash("correct horse battery staple".into()).await?;
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(
            hasher
                .verify("correct horse battery staple".into(), Some(hash.clone()))
                .await?
        );
        assert!(!hasher.verify("wrong".into(), Some(hash.clone())).await?);
        // a second hash of the same password has its own salt
        assert_ne!(
            hasher.hash("correct horse battery staple".into()).await?,
            hash
        );
        // unknown account: never matches, even with the dummy's own password
        assert!(
            !hasher
                .verify("dummy password for unknown accounts".into(), None)
                .await?
        );
        Ok(())
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn hashes_with_older_parameters_need_a_rehash_and_still_verify() -> Result<(), StoreError>
    {
        let hasher = Argon2Hasher::new(2)?;
        let current = hasher.hash("correct horse battery staple".into()).await?;
        assert!(!hasher.needs_rehash(&current));
        // argon2id with the 0.5-era defaults' weaker cost, and argon2i: both to upgrade
        let weaker = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(4096, 1, 1, None).map_err(|e| StoreError::Other(e.to_string().into()))?,
        )
        .hash_password(b"correct horse battery staple")
        .map(|h| h.to_string())
        .map_err(|e| StoreError::Other(e.to_string().into()))?;
        assert!(hasher.needs_rehash(&weaker));
        assert!(
            hasher
                .verify("correct horse battery staple".into(), Some(weaker))
                .await?
        );
        assert!(hasher.needs_rehash("$argon2i$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaA"));
        assert!(hasher.needs_rehash("not a hash"));
        Ok(())
    }
}
