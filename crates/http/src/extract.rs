//! Extractors whose rejections are problem+json: bodies, queries, path ids and the bearer
//! token. Authentication runs before the body is read (401/403/404 before 422), because
//! handlers list `Authenticated` before `ApiJson`.

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Query, Request};
use axum::http::StatusCode;
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, USER_AGENT};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use shms_domain::auth::ClientInfo;
use shms_domain::records::RequestOrigin;
use shms_domain::{Actor, Ports};
use uuid::Uuid;

use crate::error::ApiError;
use crate::state::AppState;

/// A JSON body read but not yet parsed, so that handlers can decide authorization first
/// (DESIGN §6: 401/403/404 before 422). Malformed JSON is 400, a wrong content type 415,
/// an oversized body 413, and a body of the wrong shape 422 naming the field.
pub struct JsonBody(Result<Bytes, ApiError>);

impl JsonBody {
    /// The body in canonical form (re-serialized JSON, so key order and whitespace do not
    /// matter), for idempotency fingerprints; raw bytes when it is not JSON.
    #[must_use]
    pub fn canonical(&self) -> Vec<u8> {
        match &self.0 {
            Ok(bytes) => serde_json::from_slice::<serde_json::Value>(bytes)
                .ok()
                .and_then(|value| serde_json::to_vec(&value).ok())
                .unwrap_or_else(|| bytes.to_vec()),
            Err(_) => Vec::new(),
        }
    }

    /// Parses the body, or gives the default when the request has no body at all.
    ///
    /// # Errors
    /// The problem to answer.
    pub fn parse_or_default<T: DeserializeOwned + Default>(&self) -> Result<T, ApiError> {
        match &self.0 {
            Ok(bytes) if bytes.is_empty() => Ok(T::default()),
            _ => self.parse(),
        }
    }

    /// Parses the body.
    ///
    /// # Errors
    /// The problem to answer.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        match &self.0 {
            Ok(bytes) => parse_json(bytes),
            Err(problem) => Err(problem.clone()),
        }
    }
}

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = std::convert::Infallible;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let declares_body = req.headers().contains_key(CONTENT_TYPE)
            || req
                .headers()
                .get(axum::http::header::CONTENT_LENGTH)
                .is_some_and(|len| len != "0")
            || req
                .headers()
                .contains_key(axum::http::header::TRANSFER_ENCODING);
        if !declares_body {
            return Ok(Self(Ok(Bytes::new())));
        }
        let is_json = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.split(';').next())
            .is_some_and(|mime| {
                let mime = mime.trim().to_ascii_lowercase();
                mime == "application/json"
                    || (mime.starts_with("application/") && mime.ends_with("+json"))
            });
        if !is_json {
            return Ok(Self(Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "Unsupported media type",
                "Send the body as application/json.",
            ))));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    "Payload too large",
                    rejection.body_text(),
                )
            } else {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "malformed_body",
                    "Malformed body",
                    rejection.body_text(),
                )
            }
        });
        Ok(Self(bytes))
    }
}

/// A JSON body parsed at extraction, for routes without authorization to decide first.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let Ok(body) = JsonBody::from_request(req, state).await;
        body.parse().map(Self)
    }
}

/// Deserializes JSON, telling syntax errors (400) from shape errors (422 with the path).
///
/// # Errors
/// The problem to answer.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if json_has_nul(bytes) {
        return Err(ApiError::invalid_field("body", NUL_MESSAGE));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    match serde_path_to_error::deserialize(&mut deserializer) {
        Ok(value) => {
            deserializer.end().map_err(|error| malformed(&error))?;
            Ok(value)
        }
        Err(error) => {
            let path = error.path().to_string();
            let inner = error.into_inner();
            if inner.is_data() {
                let field = unknown_field(&inner.to_string()).map_or_else(
                    || path.clone(),
                    |name| {
                        if path == "." {
                            name.to_owned()
                        } else if path == name || path.ends_with(&format!(".{name}")) {
                            path.clone()
                        } else {
                            format!("{path}.{name}")
                        }
                    },
                );
                let field = if field == "." {
                    "body".to_owned()
                } else {
                    field
                };
                Err(ApiError::invalid_field(field, inner.to_string()))
            } else {
                Err(malformed(&inner))
            }
        }
    }
}

/// The name in serde's "unknown field `x`, expected ..." message: a 422 names the field the
/// client may not send, not the object around it.
fn unknown_field(message: &str) -> Option<&str> {
    message
        .strip_prefix("unknown field `")
        .and_then(|rest| rest.split_once('`'))
        .map(|(name, _)| name)
}

fn malformed(error: &serde_json::Error) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "malformed_json",
        "Malformed JSON",
        format!("The body is not valid JSON: {error}"),
    )
}

/// Query parameters; a bad parameter is 422.
pub struct ApiQuery<T>(pub T);

/// PostgreSQL cannot store the NUL character in text: a request carrying one would fail in
/// the database (a 500) instead of being refused as invalid.
const NUL_MESSAGE: &str = "text must not contain the NUL character";

/// Whether a JSON document has a string with a NUL character. JSON can only spell it as the
/// escape `\u0000` (raw control characters are not allowed in strings); an escaped
/// backslash before `u0000` is literal text, so escapes are walked, not searched.
fn json_has_nul(bytes: &[u8]) -> bool {
    let mut rest = bytes;
    while let Some(at) = rest.iter().position(|b| *b == b'\\') {
        let escape = rest.get(at + 1..).unwrap_or_default();
        if escape.first() == Some(&b'u') && escape.get(1..5) == Some(b"0000".as_slice()) {
            return true;
        }
        // skip the backslash and the character it escapes
        rest = rest.get(at + 2..).unwrap_or_default();
    }
    false
}

/// The name of the first query parameter whose key or value decodes to a NUL character
/// (`%00`; nothing else percent-decodes to NUL).
fn query_param_with_nul(query: &str) -> Option<&str> {
    query
        .split('&')
        .find(|pair| pair.contains("%00"))
        .map(|pair| pair.split('=').next().unwrap_or(pair))
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if let Some(field) = parts.uri.query().and_then(query_param_with_nul) {
            return Err(ApiError::invalid_field(field, NUL_MESSAGE));
        }
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(value)| Self(value))
            .map_err(|rejection: QueryRejection| {
                ApiError::invalid_field("query", rejection.body_text())
            })
    }
}

/// A UUID from the path; anything else is 404 (DESIGN §6: a malformed id is not found).
pub struct PathId(pub Uuid);

impl<S: Send + Sync> FromRequestParts<S> for PathId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<Uuid>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(id)| Self(id))
            .map_err(|_| ApiError::not_found())
    }
}

/// The authenticated caller; 401 without a live bearer token.
pub struct Authenticated(pub Actor);

impl<P: Ports> FromRequestParts<AppState<P>> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState<P>,
    ) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| {
                let (scheme, token) = value.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            })
            .ok_or_else(ApiError::unauthorized)?;
        let actor = state.services.auth.authenticate(token).await?;
        Ok(Self(actor))
    }
}

/// Where the request comes from, for the session list and the audit trail.
pub struct ClientMeta(pub ClientInfo);

/// The peer's address, when the server was started with connect info.
fn client_ip(parts: &Parts) -> Option<String> {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip().to_string())
}

/// The request id set (or kept) by the request-id layer.
fn request_id(parts: &Parts) -> Option<String> {
    parts
        .headers
        .get("x-request-id")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
}

impl<S: Send + Sync> FromRequestParts<S> for ClientMeta {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let user_agent = parts
            .headers
            .get(USER_AGENT)
            .and_then(|value| value.to_str().ok())
            .map(|agent| agent.chars().take(512).collect());
        Ok(Self(ClientInfo {
            ip: client_ip(parts),
            user_agent,
            request_id: request_id(parts),
        }))
    }
}

/// The request's id (`x-request-id`, set or propagated by the router) and the client's
/// address, for the audit trail.
pub struct Origin(pub RequestOrigin);

impl<S: Send + Sync> FromRequestParts<S> for Origin {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(RequestOrigin {
            request_id: request_id(parts),
            client_ip: client_ip(parts),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::{json_has_nul, query_param_with_nul};

    #[test]
    fn a_nul_escape_in_json_is_found_and_an_escaped_backslash_is_not_one() {
        assert!(json_has_nul(br#"{"reason": "a\u0000b"}"#));
        assert!(json_has_nul(br#"["\n", "\u0000"]"#));
        assert!(!json_has_nul(br#"{"reason": "a\\u0000b"}"#));
        assert!(!json_has_nul(br#"{"reason": "\u00e9 \\ \" ok"}"#));
        assert!(!json_has_nul(br#"{"reason": "ends with a backslash \\"}"#));
    }

    #[test]
    fn a_percent_encoded_nul_names_its_query_parameter() {
        assert_eq!(
            query_param_with_nul("q=ab&specialty=x%00y"),
            Some("specialty")
        );
        assert_eq!(query_param_with_nul("a%00b=1"), Some("a%00b"));
        assert_eq!(query_param_with_nul("q=%2500&limit=5"), None);
    }
}
