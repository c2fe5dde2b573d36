//! `/health/live` and `/health/ready`, at the root.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};
use shms_domain::Ports;

use crate::state::AppState;

/// The process is up.
#[utoipa::path(get, path = "/health/live", tag = "health", responses((status = 200, description = "The process is up")))]
pub async fn live() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// The process can serve: the database answers. 503 otherwise, so load balancers route away.
#[utoipa::path(get, path = "/health/ready", tag = "health", responses((status = 200, description = "The database answers"), (status = 503, response = crate::openapi::Unavailable)))]
pub async fn ready<P: Ports>(State(state): State<AppState<P>>) -> (StatusCode, Json<Value>) {
    if state.readiness.ready().await {
        (
            StatusCode::OK,
            Json(json!({"status": "ready", "database": "ok"})),
        )
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "unavailable", "database": "unreachable"})),
        )
    }
}
