//! The composition root: which adapter plays which port.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use shms_domain::clock::SystemClock;
use shms_domain::{Adapters, Ports, Services};
use shms_http::Readiness;
use shms_postgres::{PgStore, PoolConfig, build_pool};

use crate::config::Config;
use crate::gateway::SimulatedGateway;
use crate::hasher::Argon2Hasher;

/// Production adapters: PostgreSQL for storage, argon2id for passwords, the simulated
/// payment gateway (swap in a real provider here), the system clock.
pub struct PgPorts;

impl Ports for PgPorts {
    type Users = PgStore;
    type Sessions = PgStore;
    type Doctors = PgStore;
    type Slots = PgStore;
    type Appointments = PgStore;
    type Payments = PgStore;
    type Gateway = SimulatedGateway;
    type Idempotency = PgStore;
    type Records = PgStore;
    type Waitlist = PgStore;
    type Availability = PgStore;
    type Hasher = Argon2Hasher;
    type Clock = SystemClock;
}

/// The services plus the store they share.
pub struct App {
    /// Every use case.
    pub services: Arc<Services<PgPorts>>,
    /// The store, for readiness and shutdown.
    pub store: PgStore,
}

/// Builds the pool and the services.
///
/// # Errors
/// When the pool configuration is unusable or the hasher cannot start.
pub fn build(config: &Config) -> Result<App, Box<dyn std::error::Error + Send + Sync>> {
    let pool = build_pool(&PoolConfig {
        url: config.database_url.clone(),
        max_size: config.pool_size,
        acquire_timeout: config.acquire_timeout,
        statement_timeout: config.statement_timeout,
    })?;
    let store = PgStore::new(pool);
    let shared = Arc::new(store.clone());
    let adapters = Adapters::<PgPorts> {
        users: Arc::clone(&shared),
        sessions: Arc::clone(&shared),
        doctors: Arc::clone(&shared),
        slots: Arc::clone(&shared),
        appointments: Arc::clone(&shared),
        payments: Arc::clone(&shared),
        gateway: Arc::new(SimulatedGateway::default()),
        idempotency: Arc::clone(&shared),
        records: Arc::clone(&shared),
        waitlist: Arc::clone(&shared),
        availability: shared,
        hasher: Arc::new(Argon2Hasher::new(config.hash_concurrency)?),
        clock: Arc::new(SystemClock),
    };
    Ok(App {
        services: Arc::new(Services::new(&adapters, config.policies)),
        store,
    })
}

/// Readiness = the database answers.
pub struct DatabaseReadiness(pub PgStore);

impl Readiness for DatabaseReadiness {
    fn ready(&self) -> Pin<Box<dyn Future<Output = bool> + Send + '_>> {
        Box::pin(async move { self.0.ping().await.is_ok() })
    }
}
