//! Cross-cutting response handling: problem+json for errors produced below the handlers
//! (timeouts, body limits), request metrics, and the metrics endpoint.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

/// Renders the process's metrics in the Prometheus text format (an adapter of the
/// composition root, so this crate does not pick the metrics backend).
pub trait MetricsSource: Send + Sync + 'static {
    /// The exposition text.
    fn render(&self) -> String;
}

/// Layers below the handlers (timeout, body limit) answer with bare status codes; give
/// them the same problem+json body as every other error. Headers such as `Retry-After`
/// are kept.
pub async fn problem_for_bare_errors(response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error())
        || response.headers().contains_key(header::CONTENT_TYPE)
    {
        return response;
    }
    let problem = match status {
        StatusCode::SERVICE_UNAVAILABLE
        | StatusCode::REQUEST_TIMEOUT
        | StatusCode::GATEWAY_TIMEOUT => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "service_unavailable",
            "Service temporarily unavailable",
            "The request took too long; retry shortly.",
        ),
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
            status,
            "payload_too_large",
            "Payload too large",
            "The request body is larger than the service accepts.",
        ),
        _ if status.is_server_error() => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal server error",
            "Something went wrong on our side; it has been logged.",
        ),
        _ => ApiError::new(
            status,
            "bad_request",
            "Bad request",
            "The request could not be processed.",
        ),
    };
    let (parts, _) = response.into_parts();
    let mut replaced = problem.into_response();
    for (name, value) in &parts.headers {
        if name != header::CONTENT_LENGTH {
            replaced.headers_mut().insert(name, value.clone());
        }
    }
    replaced
}

/// Counts requests and observes their latency by route template and status.
pub async fn record_metrics(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().as_str().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    let labels = [("method", method), ("route", route), ("status", status)];
    metrics::counter!("shms_http_requests_total", &labels).increment(1);
    metrics::histogram!("shms_http_request_duration_seconds", &labels)
        .record(started.elapsed().as_secs_f64());
    response
}

/// `GET /metrics`: Prometheus metrics.
#[utoipa::path(get, path = "/metrics", tag = "health",
    responses((status = 200, description = "Prometheus metrics: requests and latency by route and status, database pool, bookings, payments", content_type = "text/plain")))]
pub async fn metrics_endpoint(State(source): State<Arc<dyn MetricsSource>>) -> Response {
    let mut response = source.render().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

#[cfg(test)]
mod tests {
    use axum::body::to_bytes;
    use axum::http::HeaderValue;

    use super::*;

    #[tokio::test]
    async fn bare_error_responses_become_problem_json_keeping_their_headers() {
        let mut bare = StatusCode::SERVICE_UNAVAILABLE.into_response();
        bare.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("7"));
        let fixed = problem_for_bare_errors(bare).await;
        assert_eq!(fixed.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            fixed.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
        assert_eq!(fixed.headers()[header::RETRY_AFTER], "7");
        let body = to_bytes(fixed.into_body(), 4096).await.unwrap_or_default();
        let problem: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        assert_eq!(problem["code"], "service_unavailable");

        let too_large =
            problem_for_bare_errors(StatusCode::PAYLOAD_TOO_LARGE.into_response()).await;
        assert_eq!(
            too_large.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
        // answers that already have a body are left alone
        let ok = problem_for_bare_errors((StatusCode::OK, "fine").into_response()).await;
        assert_eq!(ok.status(), StatusCode::OK);
    }
}
