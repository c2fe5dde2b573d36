#![doc = include_str!("../README.md")]

mod accounts;
mod appointments;
mod availability;
mod doctors;
mod error;
mod idempotency;
pub mod invariants;
mod migrate;
mod payments;
mod pool;
mod records;
mod rows;
pub mod schema;
mod sessions;
mod slots;
mod sql;
mod statement;
mod users;
mod waitlist;

use std::future::Future;

use diesel_async::AsyncPgConnection;
use diesel_async::pooled_connection::deadpool::Object;
use shms_domain::StoreError;

pub use error::{map_diesel, map_pool};
pub use migrate::{MIGRATIONS, run_migrations};
pub use pool::{PgPool, PoolConfig, build_pool};

/// The PostgreSQL adapter: implements every repository port over one pool. Cloning is cheap
/// (the pool is shared).
#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    /// An adapter over a pool.
    #[must_use]
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// The pool, for health checks and metrics.
    #[must_use]
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Checks a connection out of the pool.
    pub(crate) async fn conn(&self) -> Result<Object<AsyncPgConnection>, StoreError> {
        self.pool.get().await.map_err(map_pool)
    }

    /// Whether the database answers a trivial query (readiness probe).
    ///
    /// # Errors
    /// `Unavailable` when it does not.
    pub async fn ping(&self) -> Result<(), StoreError> {
        use diesel_async::RunQueryDsl;
        let mut conn = self.conn().await?;
        diesel::sql_query("SELECT 1")
            .execute(&mut conn)
            .await
            .map_err(map_diesel)?;
        Ok(())
    }
}

/// Runs a write to completion on its own task. Dropping a request future (client gone,
/// timeout) must not abandon a transaction half-way on a pooled connection, and the client
/// that retries must find the write either done or not started.
pub(crate) async fn detached<T, F>(work: F) -> Result<T, StoreError>
where
    T: Send + 'static,
    F: Future<Output = Result<T, StoreError>> + Send + 'static,
{
    tokio::spawn(work)
        .await
        .map_err(|join| StoreError::Other(Box::new(join)))?
}

/// How often a write is run again after PostgreSQL rolled it back to break a deadlock or a
/// serialization conflict.
pub(crate) const ROLLBACK_ATTEMPTS: u32 = 4;

/// Evaluates a write (one whole transaction or statement, an expression ending in `.await`)
/// again when PostgreSQL aborted it with a deadlock (40P01) or serialization failure (40001).
/// Exclusion constraints and slot row locks can deadlock two racing writers; the victim was
/// rolled back entirely, so running it again is safe and ends in a success or a clean
/// conflict instead of an error. A macro, not a function: the write borrows the connection
/// and the request, which an async closure passed to a generic function cannot express.
macro_rules! retry_rollbacks {
    ($write:expr) => {{
        let mut attempt = 1;
        loop {
            match $write {
                Err(error)
                    if attempt < $crate::ROLLBACK_ATTEMPTS && $crate::error::is_rollback(&error) =>
                {
                    attempt += 1;
                    tracing::debug!(attempt, %error, "write rolled back by the database; retrying");
                }
                other => break other,
            }
        }
    }};
}
pub(crate) use retry_rollbacks;
