#![doc = include_str!("../README.md")]

pub mod cursor;
pub mod dto;
pub mod error;
pub mod extract;
pub mod idempotency;
pub mod routes;
pub mod state;

use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::routing::{delete, get, post};
use shms_domain::Ports;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

pub use error::ApiError;
pub use state::{AppState, Readiness};

use routes::{accounts, appointments, auth, doctors, health, payments, records, slots};

/// Largest request body accepted (bytes); a batch of 500 slots fits comfortably.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// Router-level settings.
#[derive(Debug, Clone, Copy)]
pub struct HttpConfig {
    /// A request taking longer is answered 503 and its work dropped (writes finish on their own task).
    pub request_timeout: Duration,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(10),
        }
    }
}

fn api<P: Ports>() -> Router<AppState<P>> {
    Router::new()
        .route("/auth/register", post(auth::register::<P>))
        .route("/auth/login", post(auth::login::<P>))
        .route("/auth/logout", post(auth::logout::<P>))
        .route("/me", get(auth::me::<P>).patch(accounts::patch_me::<P>))
        .route("/me/password", post(accounts::change_password::<P>))
        .route("/me/sessions", get(accounts::sessions::<P>))
        .route("/me/sessions/{id}", delete(accounts::revoke_session::<P>))
        .route("/users", get(accounts::list::<P>))
        .route(
            "/users/{id}",
            get(accounts::get::<P>).patch(accounts::patch::<P>),
        )
        .route("/users/{id}/events", get(accounts::events::<P>))
        .route(
            "/doctors",
            post(doctors::create::<P>).get(doctors::list::<P>),
        )
        .route(
            "/doctors/{id}",
            get(doctors::get::<P>).patch(accounts::patch_doctor::<P>),
        )
        .route(
            "/doctors/{id}/slots",
            post(slots::create::<P>).get(slots::list::<P>),
        )
        .route(
            "/appointments",
            post(appointments::book::<P>).get(appointments::list::<P>),
        )
        .route("/appointments/{id}", get(appointments::get::<P>))
        .route("/appointments/{id}/cancel", post(appointments::cancel::<P>))
        .route("/payments", get(payments::list::<P>))
        .route("/payments/{id}", get(payments::get::<P>))
        .route("/payments/{id}/pay", post(payments::pay::<P>))
        .route("/payments/{id}/refunds", post(payments::refund::<P>))
        .route(
            "/appointments/{id}/encounter",
            post(records::write_encounter::<P>),
        )
        .route("/encounters/{id}/amendments", post(records::amend::<P>))
        .route("/patients/{id}/records", get(records::records::<P>))
        .route(
            "/patients/{id}/allergies",
            post(records::add_allergy::<P>).get(records::allergies::<P>),
        )
        .route("/patients/{id}/access-log", get(records::access_log::<P>))
}

async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "Not found",
        "No such route.",
    )
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "Method not allowed",
        "This route does not accept this method.",
    )
}

/// The whole HTTP surface: `/api/v1/...`, health probes, problem+json fallbacks, request
/// ids, body limit, timeout and tracing.
pub fn router<P: Ports>(state: AppState<P>, config: HttpConfig) -> Router {
    let request_id = HeaderName::from_static("x-request-id");
    Router::new()
        .nest("/api/v1", api::<P>())
        .route("/health/live", get(health::live))
        .route("/health/ready", get(health::ready::<P>))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(TimeoutLayer::with_status_code(StatusCode::SERVICE_UNAVAILABLE, config.request_timeout))
        .layer(SetResponseHeaderLayer::overriding(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")))
        .layer(SetResponseHeaderLayer::overriding(header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .layer(TraceLayer::new_for_http().make_span_with(|request: &axum::http::Request<_>| {
            let id = request.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("-");
            tracing::info_span!("request", method = %request.method(), path = %request.uri().path(), request_id = %id)
        }))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .with_state(state)
}
