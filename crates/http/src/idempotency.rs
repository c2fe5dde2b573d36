//! `Idempotency-Key` for POSTs that create or move money: the first response to a key is
//! stored and replayed for repeats of the same request; the key with another request is
//! 422 `idempotency_key_reused`; a repeat while the first is still running is 409.
//! Server errors (5xx) are not stored, so a retry after one does the work again.
//!
//! Once a key is claimed, the work and the storing of its response run on their own task:
//! a client that gives up (timeout, closed connection) drops the request, and the claim must
//! still end with the stored response, or every retry would meet "in progress" until the
//! claim goes stale.

use std::future::Future;

use axum::body::{Body, to_bytes};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use shms_domain::idempotency::{MAX_KEY_LEN, fingerprint};
use shms_domain::ports::IdempotencyStart;
use shms_domain::{Actor, Ports};

use crate::error::ApiError;
use crate::extract::JsonBody;
use crate::state::AppState;

/// The request header.
pub const HEADER: &str = "idempotency-key";
/// Set on replayed responses.
pub const REPLAYED: &str = "idempotent-replayed";

/// Largest response body stored for replay.
const MAX_STORED_BODY: usize = 1024 * 1024;

fn key_of(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(HEADER) else {
        return Ok(None);
    };
    let key = value.to_str().map(str::trim).unwrap_or_default();
    if key.is_empty() || key.len() > MAX_KEY_LEN || !key.chars().all(|c| c.is_ascii_graphic()) {
        return Err(ApiError::invalid_field(
            "Idempotency-Key",
            format!("must be 1 to {MAX_KEY_LEN} visible ASCII characters"),
        ));
    }
    Ok(Some(key.to_owned()))
}

fn replay(status: u16, body: Vec<u8>) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    let content_type = if status.is_success() {
        "application/json"
    } else {
        "application/problem+json"
    };
    let mut response = (status, body).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
        .headers_mut()
        .insert(REPLAYED, HeaderValue::from_static("true"));
    response
}

/// Runs `work` at most once per (caller, key): see the module docs. Without the header it
/// simply runs `work`. `work` gets the state, the caller and the body back, owned, because
/// it may outlive the request.
pub async fn idempotent<P, F, Fut>(
    state: &AppState<P>,
    actor: &Actor,
    headers: &HeaderMap,
    route: &str,
    body: JsonBody,
    work: F,
) -> Response
where
    P: Ports,
    F: FnOnce(AppState<P>, Actor, JsonBody) -> Fut + Send + 'static,
    Fut: Future<Output = Response> + Send + 'static,
{
    let key = match key_of(headers) {
        Ok(Some(key)) => key,
        Ok(None) => return work(state.clone(), *actor, body).await,
        Err(problem) => return problem.into_response(),
    };
    let print = fingerprint("POST", route, &body.canonical());
    let (state, actor) = (state.clone(), *actor);
    // from the claim on, nothing may be abandoned half-way: see the module docs
    let claimed = tokio::spawn(async move {
        match state.services.idempotency.begin(&actor, &key, print).await {
            Err(error) => ApiError::from(error).into_response(),
            Ok(IdempotencyStart::Replay { status, body }) => replay(status, body),
            Ok(IdempotencyStart::Mismatch) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                "Idempotency key reused",
                "This Idempotency-Key was used with a different request; use a new key for a new request.",
            )
            .into_response(),
            Ok(IdempotencyStart::InProgress) => ApiError::conflict(
                "idempotency_request_in_progress",
                "Request in progress",
                "The first request with this Idempotency-Key is still running; retry shortly.",
            )
            .into_response(),
            Ok(IdempotencyStart::Started) => {
                let response = work(state.clone(), actor, body).await;
                settle(&state, &actor, &key, response).await
            }
        }
    });
    claimed.await.unwrap_or_else(|join| {
        tracing::error!(error = %join, "idempotent request task failed");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal server error",
            "Something went wrong on our side; it has been logged.",
        )
        .into_response()
    })
}

/// Stores the response of a claimed key (or releases the claim after a server error) and
/// hands the response back.
async fn settle<P: Ports>(
    state: &AppState<P>,
    actor: &Actor,
    key: &str,
    response: Response,
) -> Response {
    let idempotency = &state.services.idempotency;
    let (parts, body) = response.into_parts();
    let bytes = match to_bytes(body, MAX_STORED_BODY).await {
        Ok(bytes) => bytes,
        Err(_) => {
            let _ = idempotency.release(actor, key).await;
            return ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "Internal server error",
                "The response could not be stored.",
            )
            .into_response();
        }
    };
    let stored = if parts.status.is_server_error() {
        idempotency.release(actor, key).await
    } else {
        idempotency
            .complete(actor, key, parts.status.as_u16(), bytes.to_vec())
            .await
    };
    if let Err(error) = stored {
        tracing::warn!(%error, "idempotency key not recorded");
    }
    Response::from_parts(parts, Body::from(bytes))
}
