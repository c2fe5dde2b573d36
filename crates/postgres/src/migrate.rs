//! Embedded migrations, applied at start-up. An advisory lock serializes replicas that
//! start together, so exactly one of them migrates and the others wait and find nothing to do.

use diesel_async::{AsyncConnection, AsyncMigrationHarness, AsyncPgConnection, RunQueryDsl};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

/// Every migration in `migrations/`, compiled into the binary.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations");

/// Arbitrary but fixed key of the migration advisory lock.
const MIGRATION_LOCK: i64 = 0x5348_4d53_4d49_4752;

/// Applies pending migrations; returns the versions applied. Needs a multi-threaded Tokio
/// runtime (the harness blocks in place).
///
/// # Errors
/// When the database is unreachable or a migration fails (the failed one is rolled back).
pub async fn run_migrations(
    url: &str,
) -> Result<Vec<String>, Box<dyn std::error::Error + Send + Sync>> {
    let mut conn = AsyncPgConnection::establish(url).await?;
    diesel::sql_query(format!("SELECT pg_advisory_lock({MIGRATION_LOCK})"))
        .execute(&mut conn)
        .await?;
    let mut harness = AsyncMigrationHarness::new(conn);
    let applied = harness
        .run_pending_migrations(MIGRATIONS)
        .map(|versions| versions.iter().map(ToString::to_string).collect::<Vec<_>>());
    let mut conn = harness.into_inner();
    diesel::sql_query(format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})"))
        .execute(&mut conn)
        .await?;
    applied
}
