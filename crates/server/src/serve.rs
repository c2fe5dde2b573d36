//! `shms serve`: migrate, bootstrap, listen, and shut down gracefully on SIGTERM/SIGINT
//! (stop accepting, finish in-flight requests, close the pool).

use std::net::SocketAddr;
use std::sync::Arc;

use shms_http::{AppState, HttpConfig, router};
use tracing_subscriber::EnvFilter;

use crate::config::Config;
use crate::metrics::PrometheusMetrics;
use crate::wiring::{self, DatabaseReadiness};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// How often the availability horizon rolls forward (every doctor's generated slots are
/// extended to today + horizon; see docs/operations.md).
const EXTEND_AVAILABILITY_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);

/// Extends every schedule's generated slots now and then every hour, until aborted. Each
/// doctor's extension is its own transaction (finished even if this task is aborted), and
/// it is safe to run on several servers at once.
async fn extend_availability(services: Arc<shms_domain::Services<wiring::PgPorts>>) {
    let mut ticks = tokio::time::interval(EXTEND_AVAILABILITY_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        match services.availability.extend_all().await {
            Ok(done) => tracing::info!(
                schedules = done.schedules,
                generated = done.generated,
                "availability extended"
            ),
            Err(error) => tracing::warn!(%error, "extending availability failed; retrying later"),
        }
    }
}

/// Logs to stderr, as text or JSON; `RUST_LOG` filters (default `info`).
pub fn init_tracing(json: bool) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// Runs the HTTP server until a shutdown signal.
///
/// # Errors
/// When migrations fail, the admin cannot be bootstrapped, or the address is taken.
pub async fn serve(config: Config) -> Result<(), BoxError> {
    let applied = shms_postgres::run_migrations(&config.database_url).await?;
    if !applied.is_empty() {
        tracing::info!(?applied, "migrations applied");
    }
    let app = wiring::build(&config)?;
    if let Some((email, password)) = &config.bootstrap_admin {
        let (admin, created) =
            crate::bootstrap_admin(&app, email, password, "Administrator").await?;
        tracing::info!(email = %admin.email, created, "bootstrap admin ensured");
    }
    let state = AppState {
        services: Arc::clone(&app.services),
        readiness: Arc::new(DatabaseReadiness(app.store.clone())),
    };
    let metrics = Arc::new(PrometheusMetrics::install(app.store.clone())?);
    let http = HttpConfig {
        request_timeout: config.request_timeout,
        cors_origins: config.cors_origins.clone(),
        login_limits: config.login_limits,
        metrics: Some(metrics),
    };
    let sweeper = tokio::spawn(sweep_lapsed_holds(
        Arc::clone(&app.services),
        config.hold_sweep_interval,
    ));
    let routes = router(state, http);
    let extender = tokio::spawn(extend_availability(Arc::clone(&app.services)));
    let listener = tokio::net::TcpListener::bind(config.bind).await?;
    tracing::info!(address = %listener.local_addr()?, "listening");
    axum::serve(
        listener,
        routes.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await?;
    sweeper.abort();
    extender.abort();
    app.store.pool().close();
    tracing::info!("stopped");
    Ok(())
}

/// Offers slots whose holds lapsed to the waitlist. Holds lapse without it (the database
/// treats an expired hold as none); this only makes the waitlist notice them.
async fn sweep_lapsed_holds(
    services: Arc<shms_domain::Services<wiring::PgPorts>>,
    every: std::time::Duration,
) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        match services.slots.sweep_lapsed_holds().await {
            Ok(0) => {}
            Ok(offered) => tracing::info!(offered, "lapsed holds offered to the waitlist"),
            Err(error) => tracing::warn!(%error, "sweeping lapsed holds failed; will retry"),
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown signal received; finishing in-flight requests");
}
