//! The connection pool: bounded, with timeouts, so an exhausted pool turns into a clean
//! `Unavailable` (HTTP 503) instead of a request that hangs.

use std::time::Duration;

use deadpool::Runtime;
use diesel::ConnectionError;
use diesel_async::pooled_connection::deadpool::{BuildError, Pool};
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod,
};
use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};

/// A pool of PostgreSQL connections.
pub type PgPool = Pool<AsyncPgConnection>;

/// Pool sizing and timeouts.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// The database URL (`postgres://user@host:port/db`).
    pub url: String,
    /// Most connections open at once; keep it below the server's `max_connections`.
    pub max_size: usize,
    /// How long a request waits for a free connection before giving up with 503.
    pub acquire_timeout: Duration,
    /// Longest a single statement may run.
    pub statement_timeout: Duration,
}

impl PoolConfig {
    /// Defaults for a URL: 16 connections, 2 s acquire timeout, 5 s statement timeout.
    #[must_use]
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            max_size: 16,
            acquire_timeout: Duration::from_secs(2),
            statement_timeout: Duration::from_secs(5),
        }
    }
}

/// Builds the pool. Connections are opened lazily; each new one gets the statement timeout
/// and an application name that shows up in `pg_stat_activity`.
///
/// # Errors
/// Only when the configuration is unusable.
pub fn build_pool(config: &PoolConfig) -> Result<PgPool, BuildError> {
    let statement_timeout_ms = config.statement_timeout.as_millis();
    let mut manager_config = ManagerConfig::default();
    // The default (`Verified`) sends `SELECT 1` on every checkout: one extra round trip per
    // checkout, three per booking request. `Fast` still drops a connection whose socket
    // the driver has seen closed (a terminated backend, a restarted server) or whose
    // transaction was left broken; a connection that dies unnoticed fails its next query,
    // which maps to 503 and is discarded, and the client retries (docs/performance.md).
    manager_config.recycling_method = RecyclingMethod::Fast;
    manager_config.custom_setup = Box::new(move |url| {
        let url = url.to_owned();
        Box::pin(async move {
            let mut conn = AsyncPgConnection::establish(&url).await?;
            conn.batch_execute(&format!(
                "SET application_name = 'shms'; SET statement_timeout = {statement_timeout_ms}"
            ))
            .await
            .map_err(ConnectionError::CouldntSetupConfiguration)?;
            Ok(conn)
        })
    });
    let manager = AsyncDieselConnectionManager::new_with_config(&config.url, manager_config);
    Pool::builder(manager)
        .max_size(config.max_size)
        .wait_timeout(Some(config.acquire_timeout))
        .create_timeout(Some(config.acquire_timeout))
        .recycle_timeout(Some(config.acquire_timeout))
        .runtime(Runtime::Tokio1)
        .build()
}
