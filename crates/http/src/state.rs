//! What every handler can reach.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use shms_domain::{Ports, Services};

/// Answers whether the service can do useful work (the database is reachable).
pub trait Readiness: Send + Sync + 'static {
    /// `true` when ready.
    fn ready(&self) -> Pin<Box<dyn Future<Output = bool> + Send + '_>>;
}

/// The router's state: the domain services and a readiness probe.
pub struct AppState<P: Ports> {
    /// Every use case.
    pub services: Arc<Services<P>>,
    /// The readiness probe.
    pub readiness: Arc<dyn Readiness>,
}

impl<P: Ports> Clone for AppState<P> {
    fn clone(&self) -> Self {
        Self {
            services: Arc::clone(&self.services),
            readiness: Arc::clone(&self.readiness),
        }
    }
}
