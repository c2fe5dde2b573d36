//! `/payments`.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use shms_domain::ids::PaymentId;
use shms_domain::payment::{PayRequest, PaymentFilter, RefundRequest};
use shms_domain::user::Role;
use shms_domain::validation::bounded_text;
use shms_domain::{Actor, Ports, ValidationErrors};

use super::{optional_param, page};
use crate::cursor::time_cursor;
use crate::dto::{ListResponse, PaymentDetailsDto, PaymentDto, RefundDto};
use crate::error::ApiError;
use crate::extract::{ApiQuery, Authenticated, JsonBody, PathId};
use crate::idempotency::idempotent;
use crate::state::AppState;

/// `POST /payments/{id}/pay` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"method": "card", "card_token": "tok_visa"}))]
pub struct PayBody {
    method: String,
    #[serde(default)]
    card_token: Option<String>,
}

impl PayBody {
    fn into_domain(self) -> Result<PayRequest, ApiError> {
        let mut errors = ValidationErrors::new();
        let method = errors.check("method", self.method.parse());
        let card_token = match self.card_token.as_deref().map(str::trim) {
            Some(token) if token.is_empty() || token.len() > 200 => {
                errors.push("card_token", "must be 1 to 200 characters");
                None
            }
            other => other.map(str::to_owned),
        };
        errors.into_result().map_err(|e| ApiError::validation(&e))?;
        method
            .map(|method| PayRequest { method, card_token })
            .ok_or_else(|| ApiError::invalid_field("method", "required"))
    }
}

/// `{"payment": {...}}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PaymentResponse {
    payment: PaymentDetailsDto,
}

async fn pay_now<P: Ports>(
    state: &AppState<P>,
    actor: &Actor,
    id: PaymentId,
    body: &JsonBody,
) -> Result<Json<PaymentResponse>, ApiError> {
    let request = body.parse::<PayBody>()?.into_domain()?;
    let details = state.services.payments.pay(actor, id, request).await?;
    Ok(Json(PaymentResponse {
        payment: details.into(),
    }))
}

/// Pays a pending payment: the patient by card (via the payment gateway), an admin
/// recording cash or insurance. Accepts `Idempotency-Key`.
#[utoipa::path(post, path = "/api/v1/payments/{id}/pay", tag = "payments", request_body = PayBody, params(("id" = Uuid, Path, description = "The payment id"), ("Idempotency-Key" = Option<String>, Header, description = "Replays the first response to a repeated request; scoped to the caller, kept 24 h")), responses((status = 200, description = "Paid", body = PaymentResponse), (status = 400, response = crate::openapi::BadRequest), (status = 415, response = crate::openapi::UnsupportedMediaType), (status = 422, response = crate::openapi::Unprocessable), (status = 401, response = crate::openapi::Unauthorized), (status = 402, response = crate::openapi::PaymentRequired), (status = 403, response = crate::openapi::Forbidden), (status = 404, response = crate::openapi::NotFound), (status = 409, response = crate::openapi::Conflict), (status = 503, response = crate::openapi::Unavailable)), security(("bearer" = [])))]
pub async fn pay<P: Ports>(
    State(state): State<AppState<P>>,
    Authenticated(actor): Authenticated,
    PathId(id): PathId,
    headers: HeaderMap,
    body: JsonBody,
) -> Response {
    let id = PaymentId::from_uuid(id);
    // visibility (404) and role (403) before the body is judged (422)
    if let Err(error) = state.services.payments.get(&actor, id).await {
        return ApiError::from(error).into_response();
    }
    if actor.role == Role::Doctor {
        return ApiError::forbidden("doctors cannot pay or record payments").into_response();
    }
    let route = format!("/payments/{id}/pay");
    idempotent(
        &state,
        &actor,
        &headers,
        &route,
        body,
        move |state, actor, body| async move {
            pay_now(&state, &actor, id, &body).await.into_response()
        },
    )
    .await
}

/// `POST /payments/{id}/refunds` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"amount_cents": 2000, "reason": "goodwill"}))]
pub struct RefundBody {
    amount_cents: i64,
    reason: String,
}

/// `201 {"refund": {...}, "payment": {...}}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RefundResponse {
    refund: RefundDto,
    payment: PaymentDetailsDto,
}

async fn refund_now<P: Ports>(
    state: &AppState<P>,
    actor: &Actor,
    id: PaymentId,
    body: &JsonBody,
) -> Result<(StatusCode, Json<RefundResponse>), ApiError> {
    let body: RefundBody = body.parse()?;
    let mut errors = ValidationErrors::new();
    if body.amount_cents <= 0 {
        errors.push("amount_cents", "must be positive");
    }
    let reason = errors.check("reason", bounded_text(&body.reason, 2000));
    errors.into_result().map_err(|e| ApiError::validation(&e))?;
    let request = RefundRequest {
        amount_cents: body.amount_cents,
        reason: reason.unwrap_or_default(),
    };
    let (refund, details) = state.services.payments.refund(actor, id, request).await?;
    metrics::counter!("shms_refunds_total").increment(1);
    Ok((
        StatusCode::CREATED,
        Json(RefundResponse {
            refund: refund.into(),
            payment: details.into(),
        }),
    ))
}

/// Refunds part or all of a paid payment (admins). Accepts `Idempotency-Key`.
#[utoipa::path(post, path = "/api/v1/payments/{id}/refunds", tag = "payments", request_body = RefundBody, params(("id" = Uuid, Path, description = "The payment id"), ("Idempotency-Key" = Option<String>, Header, description = "Replays the first response to a repeated request; scoped to the caller, kept 24 h")), responses((status = 201, description = "The refund and the payment after it", body = RefundResponse), (status = 400, response = crate::openapi::BadRequest), (status = 415, response = crate::openapi::UnsupportedMediaType), (status = 422, response = crate::openapi::Unprocessable), (status = 401, response = crate::openapi::Unauthorized), (status = 403, response = crate::openapi::Forbidden), (status = 404, response = crate::openapi::NotFound), (status = 409, response = crate::openapi::Conflict), (status = 503, response = crate::openapi::Unavailable)), security(("bearer" = [])))]
pub async fn refund<P: Ports>(
    State(state): State<AppState<P>>,
    Authenticated(actor): Authenticated,
    PathId(id): PathId,
    headers: HeaderMap,
    body: JsonBody,
) -> Response {
    let id = PaymentId::from_uuid(id);
    if let Err(error) = state.services.payments.get(&actor, id).await {
        return ApiError::from(error).into_response();
    }
    if !actor.is_admin() {
        return ApiError::forbidden("only administrators refund payments").into_response();
    }
    let route = format!("/payments/{id}/refunds");
    idempotent(
        &state,
        &actor,
        &headers,
        &route,
        body,
        move |state, actor, body| async move {
            refund_now(&state, &actor, id, &body).await.into_response()
        },
    )
    .await
}

/// `GET /payments` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    status: Option<String>,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    limit: Option<u32>,
    cursor: Option<String>,
}

/// The caller's payments, newest first (patients: own; doctors: their appointments'; admins: all).
#[utoipa::path(get, path = "/api/v1/payments", tag = "payments", params(ListQuery), responses((status = 200, description = "The caller's payments, newest first", body = ListResponse<PaymentDto>), (status = 401, response = crate::openapi::Unauthorized), (status = 422, response = crate::openapi::Unprocessable), (status = 503, response = crate::openapi::Unavailable)), security(("bearer" = [])))]
pub async fn list<P: Ports>(
    State(state): State<AppState<P>>,
    Authenticated(actor): Authenticated,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<ListResponse<PaymentDto>>, ApiError> {
    let status = optional_param(query.status.as_deref(), "status")?;
    let page = page(query.limit, time_cursor(query.cursor.as_deref())?)?;
    let filter = PaymentFilter {
        status,
        from: query.from,
        to: query.to,
        ..PaymentFilter::default()
    };
    let payments = state.services.payments.list(&actor, filter, page).await?;
    Ok(Json(ListResponse::from_page(payments, PaymentDto::from)))
}

/// One payment with its attempts and refunds.
#[utoipa::path(get, path = "/api/v1/payments/{id}", tag = "payments", params(("id" = Uuid, Path, description = "The payment id")), responses((status = 200, description = "The payment with its attempts and refunds", body = PaymentDetailsDto), (status = 401, response = crate::openapi::Unauthorized), (status = 404, response = crate::openapi::NotFound), (status = 503, response = crate::openapi::Unavailable)), security(("bearer" = [])))]
pub async fn get<P: Ports>(
    State(state): State<AppState<P>>,
    Authenticated(actor): Authenticated,
    PathId(id): PathId,
) -> Result<Json<PaymentDetailsDto>, ApiError> {
    Ok(Json(
        state
            .services
            .payments
            .get(&actor, PaymentId::from_uuid(id))
            .await?
            .into(),
    ))
}
