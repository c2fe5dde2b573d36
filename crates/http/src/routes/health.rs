//! `/health/live` and `/health/ready`, at the root.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};
use shms_domain::Ports;

use crate::state::AppState;

/// The process is up.
pub async fn live() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// The process can serve: the database answers. 503 otherwise, so load balancers route away.
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
