//! `/appointments`.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use shms_domain::appointment::{AppointmentFilter, AppointmentStatus, BookRequest, SeriesRequest};
use shms_domain::ids::{AppointmentId, SlotId, UserId};
use shms_domain::user::Role;
use shms_domain::{Actor, Ports};
use uuid::Uuid;

use super::{optional_param, page};
use crate::cursor::time_cursor;
use crate::dto::{AppointmentDto, BookingDto, ListResponse, PaymentDto};
use crate::error::ApiError;
use crate::extract::{ApiQuery, Authenticated, JsonBody, PathId};
use crate::idempotency::idempotent;
use crate::state::AppState;

/// Longest free-text reason accepted.
const MAX_REASON_CHARS: usize = 2000;

fn reason_text(raw: Option<String>, field: &str) -> Result<Option<String>, ApiError> {
    let text = raw.map(|r| r.trim().to_owned()).filter(|r| !r.is_empty());
    if text
        .as_ref()
        .is_some_and(|r| r.chars().count() > MAX_REASON_CHARS)
    {
        return Err(ApiError::invalid_field(
            field,
            format!("must be at most {MAX_REASON_CHARS} characters"),
        ));
    }
    Ok(text)
}

/// `POST /appointments` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"slot_id": "01938d5e-7c1a-7b3e-9f00-1a2b3c4d5e6f", "reason": "check-up"}))]
pub struct BookBody {
    slot_id: Uuid,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    patient_id: Option<Uuid>,
}

async fn book_now<P: Ports>(
    state: &AppState<P>,
    actor: &Actor,
    body: &JsonBody,
) -> Result<(StatusCode, Json<BookingDto>), ApiError> {
    let body: BookBody = body.parse()?;
    let request = BookRequest {
        slot_id: SlotId::from_uuid(body.slot_id),
        reason: reason_text(body.reason, "reason")?.unwrap_or_default(),
        patient_id: body.patient_id.map(UserId::from_uuid),
    };
    let booking = state.services.appointments.book(actor, request).await;
    metrics::counter!("shms_bookings_total", "outcome" => if booking.is_ok() { "booked" } else { "refused" }).increment(1);
    Ok((StatusCode::CREATED, Json(booking?.into())))
}

/// Books a slot → 201 `{appointment, payment}`; 409 `slot_unavailable` when taken.
/// Accepts `Idempotency-Key`: a retry with the same key never books twice.
#[utoipa::path(post, path = "/api/v1/appointments", tag = "appointments", request_body = BookBody, params(("Idempotency-Key" = Option<String>, Header, description = "Replays the first response to a repeated request; scoped to the caller, kept 24 h")), responses((status = 201, description = "The appointment and its pending payment", body = BookingDto), (status = 400, response = crate::openapi::BadRequest), (status = 415, response = crate::openapi::UnsupportedMediaType), (status = 422, response = crate::openapi::Unprocessable), (status = 401, response = crate::openapi::Unauthorized), (status = 403, response = crate::openapi::Forbidden), (status = 404, response = crate::openapi::NotFound), (status = 409, response = crate::openapi::Conflict), (status = 503, response = crate::openapi::Unavailable)), security(("bearer" = [])))]
pub async fn book<P: Ports>(
    State(state): State<AppState<P>>,
    Authenticated(actor): Authenticated,
    headers: HeaderMap,
    body: JsonBody,
) -> Response {
    if actor.role == Role::Doctor {
        return ApiError::forbidden("doctors cannot book appointments").into_response();
    }
    idempotent(
        &state,
        &actor,
        &headers,
        "/appointments",
        body,
        |state, actor, body| async move { book_now(&state, &actor, &body).await.into_response() },
    )
    .await
}

/// `GET /appointments` query.
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

/// The caller's appointments (patients and doctors: their own; admins: all).
#[utoipa::path(get, path = "/api/v1/appointments", tag = "appointments", params(ListQuery), responses((status = 200, description = "The caller's appointments by start", body = ListResponse<AppointmentDto>), (status = 401, response = crate::openapi::Unauthorized), (status = 422, response = crate::openapi::Unprocessable), (status = 503, response = crate::openapi::Unavailable)), security(("bearer" = [])))]
pub async fn list<P: Ports>(
    State(state): State<AppState<P>>,
    Authenticated(actor): Authenticated,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<ListResponse<AppointmentDto>>, ApiError> {
    let status = optional_param(query.status.as_deref(), "status")?;
    let page = page(query.limit, time_cursor(query.cursor.as_deref())?)?;
    let filter = AppointmentFilter {
        status,
        from: query.from,
        to: query.to,
        ..AppointmentFilter::default()
    };
    let appointments = state
        .services
        .appointments
        .list(&actor, filter, page)
        .await?;
    Ok(Json(ListResponse::from_page(
        appointments,
        AppointmentDto::from,
    )))
}

/// One appointment with its payment; 404 unless it is the caller's (or an admin asks).
#[utoipa::path(get, path = "/api/v1/appointments/{id}", tag = "appointments", params(("id" = Uuid, Path, description = "The appointment id")), responses((status = 200, description = "The appointment with its payment", body = BookingDto), (status = 401, response = crate::openapi::Unauthorized), (status = 404, response = crate::openapi::NotFound), (status = 503, response = crate::openapi::Unavailable)), security(("bearer" = [])))]
pub async fn get<P: Ports>(
    State(state): State<AppState<P>>,
    Authenticated(actor): Authenticated,
    PathId(id): PathId,
) -> Result<Json<BookingDto>, ApiError> {
    Ok(Json(
        state
            .services
            .appointments
            .get(&actor, AppointmentId::from_uuid(id))
            .await?
            .into(),
    ))
}

/// `POST /appointments/{id}/cancel` body.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"reason": "feeling better"}))]
pub struct CancelBody {
    #[serde(default)]
    reason: Option<String>,
}

/// `200 {"appointment": ..., "payment": ...}` after cancelling.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CancelResponse {
    #[serde(flatten)]
    booking: BookingDto,
}

/// Cancels an appointment; the slot turns free and an unpaid payment is cancelled.
#[utoipa::path(post, path = "/api/v1/appointments/{id}/cancel", tag = "appointments", request_body = CancelBody, params(("id" = Uuid, Path, description = "The appointment id")), responses((status = 200, description = "Cancelled; the slot is free and the payment cancelled or refunded", body = CancelResponse), (status = 400, response = crate::openapi::BadRequest), (status = 415, response = crate::openapi::UnsupportedMediaType), (status = 422, response = crate::openapi::Unprocessable), (status = 401, response = crate::openapi::Unauthorized), (status = 404, response = crate::openapi::NotFound), (status = 409, response = crate::openapi::Conflict), (status = 503, response = crate::openapi::Unavailable)), security(("bearer" = [])))]
pub async fn cancel<P: Ports>(
    State(state): State<AppState<P>>,
    Authenticated(actor): Authenticated,
    PathId(id): PathId,
    body: JsonBody,
) -> Result<Json<CancelResponse>, ApiError> {
    let id = AppointmentId::from_uuid(id);
    // visibility (404) before the body is judged (422)
    state.services.appointments.get(&actor, id).await?;
    let body: CancelBody = body.parse_or_default()?;
    let reason = reason_text(body.reason, "reason")?;
    let booking = state
        .services
        .appointments
        .cancel(&actor, id, reason)
        .await?;
    Ok(Json(CancelResponse {
        booking: booking.into(),
    }))
}

async fn advance<P: Ports>(
    state: &AppState<P>,
    actor: &Actor,
    id: Uuid,
    next: AppointmentStatus,
) -> Result<Json<BookingDto>, ApiError> {
    let booking = state
        .services
        .appointments
        .advance(actor, AppointmentId::from_uuid(id), next)
        .await?;
    Ok(Json(booking.into()))
}

/// The patient has arrived: booked → checked-in (its doctor or an admin).
#[utoipa::path(post, path = "/api/v1/appointments/{id}/check-in", tag = "appointments",
    params(("id" = Uuid, Path, description = "The appointment id")),
    responses((status = 200, description = "Checked in", body = BookingDto),
        (status = 401, response = crate::openapi::Unauthorized), (status = 403, response = crate::openapi::Forbidden),
        (status = 404, response = crate::openapi::NotFound), (status = 409, response = crate::openapi::Conflict),
        (status = 503, response = crate::openapi::Unavailable)),
    security(("bearer" = [])))]
pub async fn check_in<P: Ports>(
    State(state): State<AppState<P>>,
    Authenticated(actor): Authenticated,
    PathId(id): PathId,
) -> Result<Json<BookingDto>, ApiError> {
    advance(&state, &actor, id, AppointmentStatus::CheckedIn).await
}

/// The visit took place: checked-in → fulfilled (its doctor or an admin).
#[utoipa::path(post, path = "/api/v1/appointments/{id}/complete", tag = "appointments",
    params(("id" = Uuid, Path, description = "The appointment id")),
    responses((status = 200, description = "Fulfilled", body = BookingDto),
        (status = 401, response = crate::openapi::Unauthorized), (status = 403, response = crate::openapi::Forbidden),
        (status = 404, response = crate::openapi::NotFound), (status = 409, response = crate::openapi::Conflict),
        (status = 503, response = crate::openapi::Unavailable)),
    security(("bearer" = [])))]
pub async fn complete<P: Ports>(
    State(state): State<AppState<P>>,
    Authenticated(actor): Authenticated,
    PathId(id): PathId,
) -> Result<Json<BookingDto>, ApiError> {
    advance(&state, &actor, id, AppointmentStatus::Fulfilled).await
}

/// The patient did not come: booked → noshow, only after the start (its doctor or an admin).
#[utoipa::path(post, path = "/api/v1/appointments/{id}/no-show", tag = "appointments",
    params(("id" = Uuid, Path, description = "The appointment id")),
    responses((status = 200, description = "Marked as no-show", body = BookingDto),
        (status = 401, response = crate::openapi::Unauthorized), (status = 403, response = crate::openapi::Forbidden),
        (status = 404, response = crate::openapi::NotFound), (status = 409, response = crate::openapi::Conflict),
        (status = 503, response = crate::openapi::Unavailable)),
    security(("bearer" = [])))]
pub async fn no_show<P: Ports>(
    State(state): State<AppState<P>>,
    Authenticated(actor): Authenticated,
    PathId(id): PathId,
) -> Result<Json<BookingDto>, ApiError> {
    advance(&state, &actor, id, AppointmentStatus::NoShow).await
}

/// `POST /appointments/{id}/reschedule` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"slot_id": "01938d5e-7c1a-7b3e-9f00-0000000051a8"}))]
pub struct RescheduleBody {
    /// A free slot of the same doctor.
    slot_id: Uuid,
}

/// Moves a booked appointment to another free slot of the same doctor, atomically: the old
/// slot is freed, the new one taken, the payment carried over — or nothing changes (409).
/// Patients move their own until the cancellation cut-off; admins any.
#[utoipa::path(post, path = "/api/v1/appointments/{id}/reschedule", tag = "appointments", request_body = RescheduleBody, params(("id" = Uuid, Path, description = "The appointment id")), responses((status = 200, description = "Moved; same appointment id and payment", body = BookingDto), (status = 400, response = crate::openapi::BadRequest), (status = 415, response = crate::openapi::UnsupportedMediaType), (status = 422, response = crate::openapi::Unprocessable), (status = 401, response = crate::openapi::Unauthorized), (status = 403, response = crate::openapi::Forbidden), (status = 404, response = crate::openapi::NotFound), (status = 409, response = crate::openapi::Conflict), (status = 503, response = crate::openapi::Unavailable)), security(("bearer" = [])))]
pub async fn reschedule<P: Ports>(
    State(state): State<AppState<P>>,
    Authenticated(actor): Authenticated,
    PathId(id): PathId,
    body: JsonBody,
) -> Result<Json<BookingDto>, ApiError> {
    let id = AppointmentId::from_uuid(id);
    // visibility (404) and role (403) before the body is judged (422)
    state.services.appointments.get(&actor, id).await?;
    if actor.role == Role::Doctor {
        return Err(ApiError::forbidden(
            "doctors cannot reschedule; the patient or an administrator can",
        ));
    }
    let body: RescheduleBody = body.parse()?;
    let booking = state
        .services
        .appointments
        .reschedule(&actor, id, SlotId::from_uuid(body.slot_id))
        .await?;
    Ok(Json(booking.into()))
}

/// `POST /appointments/series` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"slot_ids": ["01938d5e-7c1a-7b3e-9f00-0000000051a7", "01938d5e-7c1a-7b3e-9f00-0000000051b9"], "reason": "physiotherapy"}))]
pub struct SeriesBody {
    /// The slots to book, at most 52.
    slot_ids: Vec<Uuid>,
    #[serde(default)]
    reason: Option<String>,
    /// Required when an administrator books.
    #[serde(default)]
    patient_id: Option<Uuid>,
}

/// `201 {"appointments": [...], "payments": [...]}`, in the order of `slot_ids`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SeriesResponse {
    appointments: Vec<AppointmentDto>,
    /// The pending payment of each appointment, in the same order.
    payments: Vec<PaymentDto>,
}

async fn book_series_now<P: Ports>(
    state: &AppState<P>,
    actor: &Actor,
    body: &JsonBody,
) -> Result<(StatusCode, Json<SeriesResponse>), ApiError> {
    let body: SeriesBody = body.parse()?;
    let request = SeriesRequest {
        slot_ids: body.slot_ids.into_iter().map(SlotId::from_uuid).collect(),
        reason: reason_text(body.reason, "reason")?.unwrap_or_default(),
        patient_id: body.patient_id.map(UserId::from_uuid),
    };
    let bookings = state
        .services
        .appointments
        .book_series(actor, request)
        .await?;
    let (appointments, payments) = bookings
        .into_iter()
        .map(|booking| {
            (
                AppointmentDto::from(booking.appointment),
                PaymentDto::from(booking.payment),
            )
        })
        .unzip();
    Ok((
        StatusCode::CREATED,
        Json(SeriesResponse {
            appointments,
            payments,
        }),
    ))
}

/// Books a recurring series all or none → 201; 409 `slot_unavailable` listing every slot
/// that stood in the way (`slot_ids`), with nothing booked. Accepts `Idempotency-Key`.
#[utoipa::path(post, path = "/api/v1/appointments/series", tag = "appointments", request_body = SeriesBody, params(("Idempotency-Key" = Option<String>, Header, description = "Replays the first response to a repeated request; scoped to the caller, kept 24 h")), responses((status = 201, description = "Every appointment of the series with its pending payment", body = SeriesResponse), (status = 400, response = crate::openapi::BadRequest), (status = 415, response = crate::openapi::UnsupportedMediaType), (status = 422, response = crate::openapi::Unprocessable), (status = 401, response = crate::openapi::Unauthorized), (status = 403, response = crate::openapi::Forbidden), (status = 404, response = crate::openapi::NotFound), (status = 409, response = crate::openapi::Conflict), (status = 503, response = crate::openapi::Unavailable)), security(("bearer" = [])))]
pub async fn series<P: Ports>(
    State(state): State<AppState<P>>,
    Authenticated(actor): Authenticated,
    headers: HeaderMap,
    body: JsonBody,
) -> Response {
    if actor.role == Role::Doctor {
        return ApiError::forbidden("doctors cannot book appointments").into_response();
    }
    idempotent(
        &state,
        &actor,
        &headers,
        "/appointments/series",
        body,
        |state, actor, body| async move {
            book_series_now(&state, &actor, &body)
                .await
                .into_response()
        },
    )
    .await
}
