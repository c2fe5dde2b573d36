//! `/waitlist`, `/me/waitlist` and `/me/notifications`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use shms_domain::Ports;
use shms_domain::ids::UserId;
use shms_domain::user::Role;
use shms_domain::waitlist::{Notification, WaitlistEntry};
use uuid::Uuid;

use super::accounts::PageQuery;
use super::page;
use crate::cursor::time_cursor;
use crate::dto::ListResponse;
use crate::error::ApiError;
use crate::extract::{ApiQuery, Authenticated, JsonBody};
use crate::state::AppState;

/// `POST /waitlist` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"doctor_id": "01938d5e-7c1a-7b3e-9f00-000000000d0c", "from": "2027-01-04T00:00:00Z", "to": "2027-01-09T00:00:00Z"}))]
pub struct JoinBody {
    doctor_id: Uuid,
    /// A matching slot starts at or after this.
    from: DateTime<Utc>,
    /// A matching slot ends at or before this.
    to: DateTime<Utc>,
}

/// A patient's place on a doctor's waitlist.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WaitlistEntryDto {
    id: Uuid,
    patient_id: Uuid,
    doctor_id: Uuid,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    /// waiting | offered.
    status: &'static str,
    /// The slot offered (and held for the patient), once offered.
    offered_slot_id: Option<Uuid>,
    offered_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
}

impl From<WaitlistEntry> for WaitlistEntryDto {
    fn from(entry: WaitlistEntry) -> Self {
        Self {
            id: entry.id.as_uuid(),
            patient_id: entry.patient_id.as_uuid(),
            doctor_id: entry.doctor_id.as_uuid(),
            from: entry.from,
            to: entry.to,
            status: entry.status.as_str(),
            offered_slot_id: entry.offered_slot_id.map(|slot| slot.as_uuid()),
            offered_at: entry.offered_at,
            created_at: entry.created_at,
        }
    }
}

/// A message addressed to the caller.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(example = json!({"id": "01938d5e-7c1a-7b3e-9f00-0000000000f1", "kind": "waitlist_offer", "payload": {"waitlist_entry_id": "01938d5e-7c1a-7b3e-9f00-0000000000e1", "slot_id": "01938d5e-7c1a-7b3e-9f00-0000000051a7", "doctor_id": "01938d5e-7c1a-7b3e-9f00-000000000d0c", "starts_at": "2027-01-05T09:00:00+00:00", "ends_at": "2027-01-05T09:30:00+00:00", "hold_expires_at": "2027-01-04T12:30:00+00:00"}, "created_at": "2027-01-04T12:00:00Z", "delivered_at": null}))]
pub struct NotificationDto {
    id: Uuid,
    /// waitlist_offer.
    kind: String,
    /// For `waitlist_offer`: waitlist_entry_id, slot_id, doctor_id, starts_at, ends_at and
    /// hold_expires_at (book the slot before then).
    #[schema(value_type = Object)]
    payload: serde_json::Value,
    created_at: DateTime<Utc>,
    delivered_at: Option<DateTime<Utc>>,
}

impl From<Notification> for NotificationDto {
    fn from(notification: Notification) -> Self {
        Self {
            id: notification.id.as_uuid(),
            kind: notification.kind,
            payload: notification.payload,
            created_at: notification.created_at,
            delivered_at: notification.delivered_at,
        }
    }
}

/// Joins a doctor's waitlist (patients): when a slot of that doctor within the range becomes
/// free, the longest-waiting patient is offered it — the slot is held for them and an offer
/// appears in `GET /me/notifications`.
#[utoipa::path(post, path = "/api/v1/waitlist", tag = "waitlist", request_body = JoinBody, responses((status = 201, description = "On the waitlist", body = WaitlistEntryDto), (status = 400, response = crate::openapi::BadRequest), (status = 415, response = crate::openapi::UnsupportedMediaType), (status = 422, response = crate::openapi::Unprocessable), (status = 401, response = crate::openapi::Unauthorized), (status = 403, response = crate::openapi::Forbidden), (status = 404, response = crate::openapi::NotFound), (status = 503, response = crate::openapi::Unavailable)), security(("bearer" = [])))]
pub async fn join<P: Ports>(
    State(state): State<AppState<P>>,
    Authenticated(actor): Authenticated,
    body: JsonBody,
) -> Result<(StatusCode, Json<WaitlistEntryDto>), ApiError> {
    if actor.role != Role::Patient {
        return Err(ApiError::forbidden("only patients can join a waitlist"));
    }
    let body: JoinBody = body.parse()?;
    let entry = state
        .services
        .waitlist
        .join(
            &actor,
            UserId::from_uuid(body.doctor_id),
            body.from,
            body.to,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(entry.into())))
}

/// The calling patient's waitlist entries, newest first.
#[utoipa::path(get, path = "/api/v1/me/waitlist", tag = "waitlist", params(PageQuery), responses((status = 200, description = "The caller's entries, newest first", body = ListResponse<WaitlistEntryDto>), (status = 401, response = crate::openapi::Unauthorized), (status = 403, response = crate::openapi::Forbidden), (status = 422, response = crate::openapi::Unprocessable), (status = 503, response = crate::openapi::Unavailable)), security(("bearer" = [])))]
pub async fn mine<P: Ports>(
    State(state): State<AppState<P>>,
    Authenticated(actor): Authenticated,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Json<ListResponse<WaitlistEntryDto>>, ApiError> {
    let page = page(query.limit, time_cursor(query.cursor.as_deref())?)?;
    let entries = state.services.waitlist.entries(&actor, page).await?;
    Ok(Json(ListResponse::from_page(
        entries,
        WaitlistEntryDto::from,
    )))
}

/// The notifications outbox entries addressed to the caller (waitlist offers), newest first.
#[utoipa::path(get, path = "/api/v1/me/notifications", tag = "waitlist", params(PageQuery), responses((status = 200, description = "The caller's notifications, newest first", body = ListResponse<NotificationDto>), (status = 401, response = crate::openapi::Unauthorized), (status = 422, response = crate::openapi::Unprocessable), (status = 503, response = crate::openapi::Unavailable)), security(("bearer" = [])))]
pub async fn notifications<P: Ports>(
    State(state): State<AppState<P>>,
    Authenticated(actor): Authenticated,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Json<ListResponse<NotificationDto>>, ApiError> {
    let page = page(query.limit, time_cursor(query.cursor.as_deref())?)?;
    let notifications = state.services.waitlist.notifications(&actor, page).await?;
    Ok(Json(ListResponse::from_page(
        notifications,
        NotificationDto::from,
    )))
}
