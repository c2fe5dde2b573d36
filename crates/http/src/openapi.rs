//! The OpenAPI 3.1 document, generated from the handlers' `#[utoipa::path]` attributes and
//! the DTOs' `ToSchema` derives, served at `/api/v1/openapi.json`, and the browsable page
//! at `/docs` (Redoc, vendored: nothing is fetched from a CDN).

use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse, Response};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToResponse};

use crate::dto;
use crate::error::{AppointmentConflict, FieldProblem, Problem};
use crate::routes::{
    accounts, appointments, auth, availability, doctors, health, payments, records, slots, waitlist,
};

/// 400: the body is not JSON.
#[derive(ToResponse)]
#[response(
    description = "Malformed JSON body (`malformed_json`)",
    content_type = "application/problem+json"
)]
pub struct BadRequest(#[to_schema] pub Problem);

/// 401: no valid bearer token.
#[derive(ToResponse)]
#[response(
    description = "No, an unknown, an expired or a revoked bearer token (`unauthorized`)",
    content_type = "application/problem+json"
)]
pub struct Unauthorized(#[to_schema] pub Problem);

/// 402: the card was declined.
#[derive(ToResponse)]
#[response(
    description = "The card was declined (`payment_declined`); the payment stays pending",
    content_type = "application/problem+json"
)]
pub struct PaymentRequired(#[to_schema] pub Problem);

/// 403: visible, but not allowed.
#[derive(ToResponse)]
#[response(
    description = "The caller may see the object but not do this (`forbidden`)",
    content_type = "application/problem+json"
)]
pub struct Forbidden(#[to_schema] pub Problem);

/// 404: unknown or invisible.
#[derive(ToResponse)]
#[response(
    description = "Unknown, not visible to the caller, or a malformed id (`not_found`)",
    content_type = "application/problem+json"
)]
pub struct NotFound(#[to_schema] pub Problem);

/// 409: a rule refused the change.
#[derive(ToResponse)]
#[response(
    description = "A rule refused the change; nothing was written (see `code`)",
    content_type = "application/problem+json"
)]
pub struct Conflict(#[to_schema] pub Problem);

/// 415: not JSON.
#[derive(ToResponse)]
#[response(
    description = "The body is not `application/json` (`unsupported_media_type`)",
    content_type = "application/problem+json"
)]
pub struct UnsupportedMediaType(#[to_schema] pub Problem);

/// 422: invalid fields.
#[derive(ToResponse)]
#[response(
    description = "Invalid fields, listed in `errors` (`validation_failed`), or a reused idempotency key (`idempotency_key_reused`)",
    content_type = "application/problem+json",
    example = json!({"type": "https://shms.example/problems/validation-failed", "title": "Invalid request", "status": 422,
        "detail": "The request has invalid fields: email: must be an e-mail address such as name@example.org",
        "code": "validation_failed", "errors": [{"field": "email", "message": "must be an e-mail address such as name@example.org"}]})
)]
pub struct Unprocessable(#[to_schema] pub Problem);

/// 429: throttled.
#[derive(ToResponse)]
#[response(
    description = "Too many attempts (`too_many_requests`); `Retry-After` says when to retry",
    content_type = "application/problem+json"
)]
pub struct TooManyRequests(#[to_schema] pub Problem);

/// 503: try again later.
#[derive(ToResponse)]
#[response(
    description = "Database or payment provider unavailable (`service_unavailable`, `gateway_unavailable`); `Retry-After` says when to retry",
    content_type = "application/problem+json"
)]
pub struct Unavailable(#[to_schema] pub Problem);

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "The opaque `access_token` from `POST /api/v1/auth/login`.",
                    ))
                    .build(),
            ),
        );
    }
}

/// The document.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "SHMS — Smart Healthcare Management System",
        description = "Patients, doctors and administrators; slots; booking; payments; medical history. \
            Errors are RFC 9457 `application/problem+json` with a stable `code`. Lists answer \
            `{\"items\": [...], \"next_cursor\": ...}`.",
        version = env!("CARGO_PKG_VERSION"),
    ),
    paths(
        health::live, health::ready,
        auth::register, auth::login, auth::logout, auth::me,
        doctors::create, doctors::list, doctors::get,
        slots::create, slots::list, slots::search, slots::hold,
        availability::replace, availability::get, availability::time_off,
        appointments::book, appointments::list, appointments::get, appointments::cancel, appointments::check_in, appointments::complete, appointments::no_show,
        appointments::reschedule, appointments::series,
        waitlist::join, waitlist::mine, waitlist::notifications,
        payments::pay, payments::refund, payments::list, payments::get,
        records::write_encounter, records::amend, records::add_allergy, records::allergies,
        records::records, records::access_log,
        accounts::list, accounts::get, accounts::patch, accounts::events, accounts::patch_me,
        accounts::patch_doctor, accounts::change_password, accounts::sessions, accounts::revoke_session,
        openapi_json, docs_page, redoc_js, crate::middleware::metrics_endpoint,
    ),
    components(
        schemas(Problem, FieldProblem, AppointmentConflict, dto::MoneyDto),
        responses(BadRequest, Unauthorized, PaymentRequired, Forbidden, NotFound, Conflict,
            UnsupportedMediaType, Unprocessable, TooManyRequests, Unavailable),
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "health", description = "Probes for load balancers"),
        (name = "auth", description = "Registration, login, sessions"),
        (name = "doctors", description = "The doctor directory"),
        (name = "slots", description = "Doctors' bookable intervals"),
        (name = "availability", description = "Weekly rules that generate slots, and time off; see docs/api.md"),
        (name = "appointments", description = "Booking and cancelling"),
        (name = "payments", description = "Paying and refunding; see docs/payments.md"),
        (name = "waitlist", description = "Waitlists and the notifications they produce"),
        (name = "accounts", description = "User administration, profiles, passwords and sessions"),
        (name = "records", description = "Medical history and its audit trail; see docs/privacy.md"),
        (name = "docs", description = "This document"),
    ),
)]
pub struct ApiDoc;

/// The document as JSON, built once per process.
#[must_use]
pub fn document() -> &'static str {
    static DOCUMENT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DOCUMENT.get_or_init(|| {
        ApiDoc::openapi()
            .to_pretty_json()
            .unwrap_or_else(|_| "{}".to_owned())
    })
}

/// The OpenAPI 3.1 document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "docs",
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json")))]
pub async fn openapi_json() -> Response {
    let mut response = document().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

const DOCS_PAGE: &str = r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>SHMS API</title>
<style>body { margin: 0; }</style>
</head>
<body>
<redoc spec-url="/api/v1/openapi.json"></redoc>
<script src="/docs/redoc.standalone.js"></script>
</body>
</html>
"#;

/// Redoc 2.5.0's standalone bundle (MIT, see `assets/redoc.LICENSE`).
const REDOC_JS: &[u8] = include_bytes!("../assets/redoc.standalone.js");

/// The browsable API reference.
#[utoipa::path(get, path = "/docs", tag = "docs",
    responses((status = 200, description = "An HTML page rendering the OpenAPI document", content_type = "text/html")))]
pub async fn docs_page() -> Response {
    let mut response = Html(DOCS_PAGE).into_response();
    // Redoc runs its search in a blob: worker and styles itself inline
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; worker-src blob:; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:",
        ),
    );
    response
}

/// The vendored Redoc script.
#[utoipa::path(get, path = "/docs/redoc.standalone.js", tag = "docs",
    responses((status = 200, description = "The Redoc script the docs page loads", content_type = "application/javascript")))]
pub async fn redoc_js() -> Response {
    let mut response = REDOC_JS.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/javascript"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=86400"),
    );
    response
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// Every `(METHOD, path)` the router registers, read from `lib.rs`: routes inside `fn api`
    /// are nested under `/api/v1`.
    fn routed() -> BTreeSet<(String, String)> {
        let source = include_str!("lib.rs");
        let api_start = source.find("fn api<").unwrap_or(0);
        let api_end = source[api_start..]
            .find("\n}\n")
            .map_or(source.len(), |i| api_start + i);
        let mut routes = BTreeSet::new();
        for (offset, _) in source.match_indices(".route(") {
            let rest = &source[offset + ".route(".len()..];
            let Some(open) = rest.find('"') else { continue };
            let Some(close) = rest[open + 1..].find('"') else {
                continue;
            };
            let path = &rest[open + 1..open + 1 + close];
            let prefix = if (api_start..api_end).contains(&offset) {
                "/api/v1"
            } else {
                ""
            };
            // the handlers of this route: up to the call's closing parenthesis
            let mut depth = 1;
            let end = rest
                .char_indices()
                .find(|(_, c)| {
                    match c {
                        '(' => depth += 1,
                        ')' => depth -= 1,
                        _ => {}
                    }
                    depth == 0
                })
                .map_or(rest.len(), |(i, _)| i);
            for method in ["get", "post", "put", "patch", "delete"] {
                let call = format!("{method}(");
                if rest[..end].match_indices(&call).any(|(i, _)| {
                    i == 0
                        || !rest.as_bytes()[i - 1].is_ascii_alphanumeric()
                            && rest.as_bytes()[i - 1] != b'_'
                }) {
                    routes.insert((method.to_uppercase(), format!("{prefix}{path}")));
                }
            }
        }
        routes
    }

    fn documented() -> BTreeSet<(String, String)> {
        let doc: serde_json::Value = serde_json::from_str(document()).unwrap_or_default();
        let mut operations = BTreeSet::new();
        if let Some(paths) = doc["paths"].as_object() {
            for (path, item) in paths {
                for method in ["get", "post", "put", "patch", "delete"] {
                    if item.get(method).is_some() {
                        operations.insert((method.to_uppercase(), path.clone()));
                    }
                }
            }
        }
        operations
    }

    #[test]
    fn every_route_is_in_the_document_and_nothing_else() {
        let routed = routed();
        assert!(
            routed.len() >= 25,
            "the route scan found too little: {routed:?}"
        );
        let documented = documented();
        let undocumented: Vec<_> = routed.difference(&documented).collect();
        assert!(
            undocumented.is_empty(),
            "routes missing from the OpenAPI document: {undocumented:?}"
        );
        let phantom: Vec<_> = documented.difference(&routed).collect();
        assert!(
            phantom.is_empty(),
            "documented operations without a route: {phantom:?}"
        );
    }

    #[test]
    fn the_document_is_openapi_3_1_with_bearer_auth_and_problem_errors() {
        let doc: serde_json::Value = serde_json::from_str(document()).unwrap_or_default();
        assert!(
            doc["openapi"]
                .as_str()
                .is_some_and(|v| v.starts_with("3.1")),
            "{}",
            doc["openapi"]
        );
        assert_eq!(
            doc["components"]["securitySchemes"]["bearer"]["scheme"],
            "bearer"
        );
        assert!(doc["components"]["schemas"]["Problem"].is_object());
        let book = &doc["paths"]["/api/v1/appointments"]["post"];
        assert!(
            book["responses"]["409"].is_object() && book["requestBody"].is_object(),
            "{book}"
        );
    }
}
