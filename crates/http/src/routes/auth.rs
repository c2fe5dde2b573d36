//! `/auth/*` and `/me`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use shms_domain::auth::RegisterPatient;
use shms_domain::user::{Email, FullName, Password, Phone, validate_date_of_birth};
use shms_domain::{Ports, ValidationErrors};

use crate::dto::{ProfileDto, UserDto};
use crate::error::ApiError;
use crate::extract::{ApiJson, Authenticated, ClientMeta};
use crate::state::AppState;
use crate::throttle::LoginThrottle;

/// `POST /auth/register` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"email": "ann@example.org", "password": "a long passphrase", "full_name": "Ann Smith", "date_of_birth": "1990-04-01", "sex": "female", "phone": "+49 30 1234"}))]
pub struct RegisterBody {
    email: String,
    password: String,
    full_name: String,
    date_of_birth: NaiveDate,
    sex: String,
    #[serde(default)]
    phone: Option<String>,
}

impl RegisterBody {
    fn into_domain(self, today: NaiveDate) -> Result<RegisterPatient, ApiError> {
        let mut errors = ValidationErrors::new();
        let email = errors.check("email", Email::parse(&self.email));
        let password = errors.check(
            "password",
            Password::new(&self.password, &[&self.email, &self.full_name]),
        );
        let full_name = errors.check("full_name", FullName::parse(&self.full_name));
        let date_of_birth = errors.check(
            "date_of_birth",
            validate_date_of_birth(self.date_of_birth, today),
        );
        let sex = errors.check("sex", self.sex.parse());
        let phone = match self.phone.as_deref() {
            Some(raw) => errors.check("phone", Phone::parse(raw)).map(Some),
            None => Some(None),
        };
        match (email, password, full_name, date_of_birth, sex, phone) {
            (
                Some(email),
                Some(password),
                Some(full_name),
                Some(date_of_birth),
                Some(sex),
                Some(phone),
            ) => Ok(RegisterPatient {
                email,
                password,
                full_name,
                date_of_birth,
                sex,
                phone,
            }),
            _ => Err(ApiError::validation(&errors)),
        }
    }
}

/// Registers a patient → 201 with the new user and profile.
#[utoipa::path(post, path = "/api/v1/auth/register", tag = "auth", request_body = RegisterBody, responses((status = 201, description = "The new patient account", body = ProfileDto), (status = 400, response = crate::openapi::BadRequest), (status = 415, response = crate::openapi::UnsupportedMediaType), (status = 422, response = crate::openapi::Unprocessable), (status = 409, response = crate::openapi::Conflict), (status = 503, response = crate::openapi::Unavailable)))]
pub async fn register<P: Ports>(
    State(state): State<AppState<P>>,
    ApiJson(body): ApiJson<RegisterBody>,
) -> Result<(StatusCode, Json<ProfileDto>), ApiError> {
    let request = body.into_domain(Utc::now().date_naive())?;
    let profile = state.services.auth.register(request).await?;
    Ok((StatusCode::CREATED, Json(profile.into())))
}

/// `POST /auth/login` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"email": "ann@example.org", "password": "a long passphrase"}))]
pub struct LoginBody {
    email: String,
    password: String,
}

/// `POST /auth/login` response.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(example = json!({"access_token": "3f9c…64 hex characters…", "token_type": "Bearer", "expires_at": "2026-12-04T22:00:00Z", "user": {"id": "01938d5e-7c1a-7b3e-9f00-00000000a11c", "email": "ann@example.org", "role": "patient", "full_name": "Ann Smith"}}))]
pub struct LoginResponse {
    access_token: String,
    token_type: &'static str,
    expires_at: DateTime<Utc>,
    user: UserDto,
}

/// Logs in → 200 with a bearer token; 401 `invalid_credentials` otherwise.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginBody, responses((status = 200, description = "A new bearer token", body = LoginResponse), (status = 400, response = crate::openapi::BadRequest), (status = 415, response = crate::openapi::UnsupportedMediaType), (status = 422, response = crate::openapi::Unprocessable), (status = 401, response = crate::openapi::Unauthorized), (status = 429, response = crate::openapi::TooManyRequests), (status = 503, response = crate::openapi::Unavailable)))]
pub async fn login<P: Ports>(
    State(state): State<AppState<P>>,
    ClientMeta(client): ClientMeta,
    Extension(throttle): Extension<Arc<LoginThrottle>>,
    ApiJson(body): ApiJson<LoginBody>,
) -> Result<Json<LoginResponse>, ApiError> {
    let address = client.ip.as_deref().and_then(|ip| ip.parse().ok());
    throttle
        .check(&body.email, address)
        .map_err(ApiError::too_many_requests)?;
    if body.password.chars().count() > Password::MAX_CHARS {
        // longer than any valid password: refuse before spending a hash on it
        return Err(shms_domain::auth::AuthError::InvalidCredentials.into());
    }
    let session = state
        .services
        .auth
        .login(&body.email, body.password, client)
        .await?;
    Ok(Json(LoginResponse {
        access_token: session.token.expose().to_owned(),
        token_type: "Bearer",
        expires_at: session.expires_at,
        user: session.user.into(),
    }))
}

/// Revokes the caller's token → 204.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", responses((status = 204, description = "The token is revoked"), (status = 401, response = crate::openapi::Unauthorized), (status = 503, response = crate::openapi::Unavailable)), security(("bearer" = [])))]
pub async fn logout<P: Ports>(
    State(state): State<AppState<P>>,
    Authenticated(actor): Authenticated,
    ClientMeta(client): ClientMeta,
) -> Result<StatusCode, ApiError> {
    state.services.auth.logout(&actor, &client).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The caller and their profile.
#[utoipa::path(get, path = "/api/v1/me", tag = "auth", responses((status = 200, description = "The caller and their profile", body = ProfileDto), (status = 401, response = crate::openapi::Unauthorized), (status = 503, response = crate::openapi::Unavailable)), security(("bearer" = [])))]
pub async fn me<P: Ports>(
    State(state): State<AppState<P>>,
    Authenticated(actor): Authenticated,
) -> Result<Json<ProfileDto>, ApiError> {
    Ok(Json(state.services.auth.me(&actor).await?.into()))
}
