//! Prometheus metrics: the recorder the `metrics` facade writes to, plus the database pool
//! gauges, sampled when `/metrics` is scraped.

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use shms_http::MetricsSource;
use shms_postgres::PgStore;

/// The installed recorder and the pool it reports on.
pub struct PrometheusMetrics {
    handle: PrometheusHandle,
    store: PgStore,
}

impl PrometheusMetrics {
    /// Installs the process-wide recorder (once per process).
    ///
    /// # Errors
    /// When a recorder is already installed.
    pub fn install(store: PgStore) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        let handle = PrometheusBuilder::new().install_recorder()?;
        Ok(Self { handle, store })
    }
}

impl MetricsSource for PrometheusMetrics {
    fn render(&self) -> String {
        let status = self.store.pool().status();
        metrics::gauge!("shms_db_pool_connections").set(status.size as f64);
        metrics::gauge!("shms_db_pool_idle").set(status.available as f64);
        metrics::gauge!("shms_db_pool_max").set(status.max_size as f64);
        metrics::gauge!("shms_db_pool_waiting").set(status.waiting as f64);
        self.handle.render()
    }
}
