//! One freshly migrated PostgreSQL database per test.
//!
//! The server comes from `DATABASE_URL` (set by `make test`; any database on the server will
//! do, the helper only uses it to reach the server). The first test of a process migrates a
//! template database named after a hash of `migrations/` — under an advisory lock, so
//! parallel test binaries agree — and every test then gets
//! `CREATE DATABASE … TEMPLATE … STRATEGY FILE_COPY`, which takes milliseconds. Databases are
//! dropped when the `TestDb` is dropped; `make test` sweeps leftovers of crashed runs.

use std::path::Path;

use diesel_async::{AsyncConnection, AsyncMigrationHarness, AsyncPgConnection, RunQueryDsl};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;

const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations");
const TEMPLATE_LOCK: i64 = 0x5348_4d53_5445_5354;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The server URL without a database name, e.g. `postgres://postgres@127.0.0.1:54329`.
fn server_url() -> Result<String, BoxError> {
    let url = std::env::var("DATABASE_URL")
        .map_err(|_| "DATABASE_URL is not set: run the tests with `make test` or set it to a PostgreSQL server")?;
    let (base, query) = url
        .split_once('?')
        .map_or((url.as_str(), None), |(b, q)| (b, Some(q)));
    let authority_end = base.find("://").map_or(0, |i| i + 3);
    let base = match base[authority_end..].find('/') {
        Some(slash) => &base[..authority_end + slash],
        None => base,
    };
    Ok(match query {
        Some(query) => format!("{base}/{{db}}?{query}"),
        None => format!("{base}/{{db}}"),
    })
}

fn url_for(database: &str) -> Result<String, BoxError> {
    Ok(server_url()?.replace("{db}", database))
}

/// A hash of every migration file, so a changed migration gets a new template.
fn migrations_fingerprint() -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migrations");
    let mut files: Vec<_> = walk(&dir);
    files.sort();
    let mut hasher = Sha256::new();
    for file in files {
        hasher.update(file.to_string_lossy().as_bytes());
        hasher.update(std::fs::read(&file).unwrap_or_default());
    }
    hex::encode(&hasher.finalize()[..6])
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .flat_map(|entry| {
            let path = entry.path();
            if path.is_dir() {
                walk(&path)
            } else {
                vec![path]
            }
        })
        .collect()
}

async fn execute(conn: &mut AsyncPgConnection, sql: &str) -> Result<(), BoxError> {
    diesel::sql_query(sql).execute(conn).await?;
    Ok(())
}

#[derive(diesel::QueryableByName)]
struct Exists {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    exists: bool,
}

static TEMPLATE: OnceCell<String> = OnceCell::const_new();

async fn template() -> Result<&'static String, BoxError> {
    TEMPLATE
        .get_or_try_init(|| async {
            let name = format!("shms_template_{}", migrations_fingerprint());
            let mut admin = AsyncPgConnection::establish(&url_for("postgres")?).await?;
            execute(&mut admin, &format!("SELECT pg_advisory_lock({TEMPLATE_LOCK})")).await?;
            let exists = diesel::sql_query(format!(
                "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = '{name}' AND datistemplate) AS exists"
            ))
            .get_result::<Exists>(&mut admin)
            .await?
            .exists;
            if !exists {
                let building = format!("{name}_building");
                execute(&mut admin, &format!("DROP DATABASE IF EXISTS {building}")).await?;
                execute(&mut admin, &format!("CREATE DATABASE {building}")).await?;
                let conn = AsyncPgConnection::establish(&url_for(&building)?).await?;
                let mut harness = AsyncMigrationHarness::new(conn);
                harness.run_pending_migrations(MIGRATIONS)?;
                drop(harness.into_inner());
                execute(&mut admin, &format!("ALTER DATABASE {building} RENAME TO {name}")).await?;
                execute(&mut admin, &format!("ALTER DATABASE {name} WITH IS_TEMPLATE true")).await?;
            }
            execute(&mut admin, &format!("SELECT pg_advisory_unlock({TEMPLATE_LOCK})")).await?;
            Ok(name)
        })
        .await
}

/// A private, migrated database; dropped with this value.
pub struct TestDb {
    name: String,
    url: String,
}

impl TestDb {
    /// Clones the migrated template into a new database. Needs a multi-threaded runtime
    /// the first time (migrations block in place).
    ///
    /// # Errors
    /// When the server is unreachable or the migrations fail.
    pub async fn new() -> Result<Self, BoxError> {
        let template = template().await?;
        let name = format!("shms_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = AsyncPgConnection::establish(&url_for("postgres")?).await?;
        execute(
            &mut admin,
            &format!("CREATE DATABASE {name} TEMPLATE {template} STRATEGY FILE_COPY"),
        )
        .await?;
        Ok(Self {
            url: url_for(&name)?,
            name,
        })
    }

    /// The database's URL.
    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A direct connection, for raw SQL in tests.
    ///
    /// # Errors
    /// When the database is unreachable.
    pub async fn connect(&self) -> Result<AsyncPgConnection, BoxError> {
        Ok(AsyncPgConnection::establish(&self.url).await?)
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop cannot be async and may run inside a runtime: use a thread with its own.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let mut admin = AsyncPgConnection::establish(&url_for("postgres").ok()?)
                    .await
                    .ok()?;
                execute(
                    &mut admin,
                    &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                )
                .await
                .ok()
            })
        });
        let _ = dropped.join();
    }
}
