//! Whatever the shape of a request, the answer is a 4xx problem+json, never a 500.

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::harness::{Server, assert_problem};

async fn raw(
    server: &Server,
    method: Method,
    path: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> (StatusCode, Value, reqwest::header::HeaderMap) {
    let mut request = server
        .client
        .request(method, format!("{}{path}", server.base))
        .body(body);
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        headers,
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_requests_get_problem_json() {
    let server = Server::start().await;
    let (token, _) = server.patient().await;
    type Case = (
        Method,
        &'static str,
        Option<&'static str>,
        Vec<u8>,
        StatusCode,
        &'static str,
    );
    let cases: Vec<Case> = vec![
        (
            Method::GET,
            "/api/v1/nowhere",
            None,
            vec![],
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            Method::DELETE,
            "/api/v1/doctors",
            None,
            vec![],
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        ),
        (
            Method::GET,
            "/api/v1/doctors/not-a-uuid",
            None,
            vec![],
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            Method::GET,
            "/api/v1/doctors/not-a-uuid/slots",
            None,
            vec![],
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            Method::GET,
            "/api/v1/doctors?limit=0",
            None,
            vec![],
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            Method::GET,
            "/api/v1/doctors?limit=201",
            None,
            vec![],
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            Method::GET,
            "/api/v1/doctors?limit=abc",
            None,
            vec![],
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            Method::GET,
            "/api/v1/doctors?cursor=zz",
            None,
            vec![],
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            Method::GET,
            "/api/v1/doctors?bogus=1",
            None,
            vec![],
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            Method::POST,
            "/api/v1/auth/register",
            Some("application/json"),
            b"{not json".to_vec(),
            StatusCode::BAD_REQUEST,
            "malformed_json",
        ),
        (
            Method::POST,
            "/api/v1/auth/register",
            Some("text/plain"),
            b"{}".to_vec(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            Method::POST,
            "/api/v1/auth/register",
            None,
            b"{}".to_vec(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            Method::POST,
            "/api/v1/auth/login",
            Some("application/json"),
            b"[]".to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            Method::POST,
            "/api/v1/auth/login",
            Some("application/json"),
            br#"{"email":"a@b.c","password":"x","extra":1}"#.to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            Method::POST,
            "/api/v1/auth/login",
            Some("application/json"),
            vec![b' '; 300 * 1024],
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
    ];
    for (method, path, content_type, body, status, code) in cases {
        let (got, problem, headers) = raw(&server, method.clone(), path, content_type, body).await;
        assert_eq!(
            headers["content-type"], "application/problem+json",
            "{method} {path}"
        );
        assert_problem(got, &problem, status, code);
    }
    // unknown fields are named
    let (status, problem, _) = raw(
        &server,
        Method::POST,
        "/api/v1/auth/login",
        Some("application/json"),
        br#"{"email":"a@b.c","password":"x","role":"admin"}"#.to_vec(),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        problem["detail"].as_str().unwrap().contains("role"),
        "{problem}"
    );

    let (status, problem) = server.get("/appointments?status=done", Some(&token)).await;
    assert_problem(
        status,
        &problem,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    let (status, problem) = server
        .get("/appointments?from=yesterday", Some(&token))
        .await;
    assert_problem(
        status,
        &problem,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn responses_carry_a_request_id_and_health_answers() {
    let server = Server::start().await;
    let response = server
        .client
        .get(format!("{}/health/live", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().contains_key("x-request-id"));
    let response = server
        .client
        .get(format!("{}/health/ready", server.base))
        .header("x-request-id", "trace-me-123")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["x-request-id"], "trace-me-123");
}

/// PostgreSQL cannot store NUL in text: a NUL in a query parameter or a JSON string is a 422
/// naming where it was, never a 500 from the database (found by schemathesis on
/// `GET /doctors?specialty=`).
#[tokio::test(flavor = "multi_thread")]
async fn a_nul_character_anywhere_is_a_422_not_a_500() {
    let server = Server::start().await;
    for path in [
        "/doctors?specialty=Cardio%00logy",
        "/doctors?q=%00",
        "/slots?specialty=%00",
    ] {
        let (status, body) = server.get(path, None).await;
        assert_problem(
            status,
            &body,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        );
    }
    let (status, body) = server
        .post(
            "/auth/register",
            None,
            serde_json::json!({"email": "nul@e2e.test", "password": "Tall-Orange-Kettle-42!",
                   "full_name": "Nul\u{0}Person", "date_of_birth": "1990-04-01", "sex": "female"}),
        )
        .await;
    assert_problem(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    // the same text with an escaped backslash is ordinary text
    let (status, body) = server.get("/doctors?q=%5Cu0000", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        server
            .count("SELECT count(*) AS n FROM users WHERE email = 'nul@e2e.test'")
            .await,
        0
    );
}
