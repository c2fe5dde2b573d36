#![doc = include_str!("../README.md")]

pub mod cursor;
pub mod dto;
pub mod error;
pub mod extract;
pub mod idempotency;
pub mod middleware;
pub mod openapi;
pub mod routes;
pub mod state;
pub mod throttle;

use std::sync::Arc;
use std::time::Duration;

use axum::Extension;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::routing::{delete, get, post, put};
use shms_domain::Ports;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

pub use error::ApiError;
pub use middleware::MetricsSource;
pub use throttle::LoginLimits;

pub use state::{AppState, Readiness};
use throttle::LoginThrottle;

use routes::{
    accounts, appointments, auth, availability, doctors, health, payments, records, slots, waitlist,
};

/// Largest request body accepted (bytes); a batch of 500 slots fits comfortably.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// Router-level settings.
#[derive(Clone)]
pub struct HttpConfig {
    /// A request taking longer is answered 503 and its work dropped (writes finish on their own task).
    pub request_timeout: Duration,
    /// Origins allowed to call the API from a browser; empty: no CORS headers; `*`: any.
    pub cors_origins: Vec<String>,
    /// Login attempts allowed per minute.
    pub login_limits: LoginLimits,
    /// Where `/metrics` comes from; `None` answers 404.
    pub metrics: Option<Arc<dyn MetricsSource>>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(10),
            cors_origins: Vec::new(),
            login_limits: LoginLimits::default(),
            metrics: None,
        }
    }
}

fn cors(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([
                Method::GET,
                Method::POST,
                Method::PUT,
                Method::PATCH,
                Method::DELETE,
            ])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                HeaderName::from_static("idempotency-key"),
                HeaderName::from_static("x-request-id"),
            ])
            .expose_headers([
                HeaderName::from_static("x-request-id"),
                header::RETRY_AFTER,
                HeaderName::from_static(idempotency::REPLAYED),
            ])
            .max_age(Duration::from_secs(600)),
    )
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
        .route("/me/waitlist", get(waitlist::mine::<P>))
        .route("/me/notifications", get(waitlist::notifications::<P>))
        .route("/waitlist", post(waitlist::join::<P>))
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
        .route("/slots", get(slots::search::<P>))
        .route("/slots/{id}/hold", post(slots::hold::<P>))
        .route(
            "/doctors/{id}/availability",
            put(availability::replace::<P>).get(availability::get::<P>),
        )
        .route("/doctors/{id}/time-off", post(availability::time_off::<P>))
        .route(
            "/appointments",
            post(appointments::book::<P>).get(appointments::list::<P>),
        )
        .route("/appointments/series", post(appointments::series::<P>))
        .route(
            "/appointments/{id}/reschedule",
            post(appointments::reschedule::<P>),
        )
        .route("/appointments/{id}", get(appointments::get::<P>))
        .route("/appointments/{id}/cancel", post(appointments::cancel::<P>))
        .route(
            "/appointments/{id}/check-in",
            post(appointments::check_in::<P>),
        )
        .route(
            "/appointments/{id}/complete",
            post(appointments::complete::<P>),
        )
        .route(
            "/appointments/{id}/no-show",
            post(appointments::no_show::<P>),
        )
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
    let metrics = match config.metrics.clone() {
        Some(source) => Router::new()
            .route("/metrics", get(middleware::metrics_endpoint))
            .with_state(source),
        None => Router::new(),
    };
    let app = Router::new()
        .nest("/api/v1", api::<P>())
        .route("/api/v1/openapi.json", get(openapi::openapi_json))
        .route("/docs", get(openapi::docs_page))
        .route("/docs/redoc.standalone.js", get(openapi::redoc_js))
        .route("/health/live", get(health::live))
        .route("/health/ready", get(health::ready::<P>))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(Extension(Arc::new(LoginThrottle::new(config.login_limits))))
        .with_state(state)
        .merge(metrics)
        .layer(axum::middleware::from_fn(middleware::record_metrics))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(TimeoutLayer::with_status_code(StatusCode::SERVICE_UNAVAILABLE, config.request_timeout))
        .layer(axum::middleware::map_response(middleware::problem_for_bare_errors))
        .layer(SetResponseHeaderLayer::overriding(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")))
        .layer(SetResponseHeaderLayer::overriding(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")))
        .layer(SetResponseHeaderLayer::overriding(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .layer(TraceLayer::new_for_http().make_span_with(|request: &axum::http::Request<_>| {
            let id = request.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("-");
            tracing::info_span!("request", method = %request.method(), path = %request.uri().path(), request_id = %id)
        }))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid));
    match cors(&config.cors_origins) {
        Some(layer) => app.layer(layer),
        None => app,
    }
}
