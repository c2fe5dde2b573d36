//! `/doctors/{id}/slots`, the cross-doctor search `/slots` and holds.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use shms_domain::ids::{SlotId, UserId};
use shms_domain::slot::{SlotFilter, SlotWindow};
use shms_domain::{Ports, ValidationErrors};
use uuid::Uuid;

use super::{optional_param, page};
use crate::cursor::time_cursor;
use crate::dto::{ListResponse, SlotDto};
use crate::error::ApiError;
use crate::extract::{ApiQuery, Authenticated, JsonBody, PathId};
use crate::state::AppState;

/// One interval.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WindowBody {
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
}

/// `POST /doctors/{id}/slots`: one slot `{starts_at, ends_at}` or a batch `{slots: [...]}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"slots": [{"starts_at": "2027-01-04T09:00:00Z", "ends_at": "2027-01-04T09:30:00Z"}, {"starts_at": "2027-01-04T09:30:00Z", "ends_at": "2027-01-04T10:00:00Z"}]}))]
pub struct CreateSlotsBody {
    starts_at: Option<DateTime<Utc>>,
    ends_at: Option<DateTime<Utc>>,
    slots: Option<Vec<WindowBody>>,
}

impl CreateSlotsBody {
    fn into_windows(self) -> Result<Vec<SlotWindow>, ApiError> {
        let mut errors = ValidationErrors::new();
        let raw: Vec<(String, DateTime<Utc>, DateTime<Utc>)> =
            match (self.starts_at, self.ends_at, self.slots) {
                (Some(starts_at), Some(ends_at), None) => vec![(String::new(), starts_at, ends_at)],
                (None, None, Some(batch)) => batch
                    .into_iter()
                    .enumerate()
                    .map(|(i, w)| (format!("slots[{i}]."), w.starts_at, w.ends_at))
                    .collect(),
                _ => {
                    return Err(ApiError::invalid_field(
                        "body",
                        "send either starts_at and ends_at, or a non-empty slots array",
                    ));
                }
            };
        let windows: Vec<_> = raw
            .into_iter()
            .filter_map(|(prefix, starts_at, ends_at)| {
                errors.check(
                    &format!("{prefix}ends_at"),
                    SlotWindow::new(starts_at, ends_at),
                )
            })
            .collect();
        errors.into_result().map_err(|e| ApiError::validation(&e))?;
        Ok(windows)
    }
}

/// `201 {"slots": [...]}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreatedSlots {
    slots: Vec<SlotDto>,
}

/// Creates slots for a doctor: the doctor themself or an admin; all or none.
#[utoipa::path(post, path = "/api/v1/doctors/{id}/slots", tag = "slots", request_body = CreateSlotsBody, params(("id" = Uuid, Path, description = "The doctor's user id")), responses((status = 201, description = "The slots, all or none", body = CreatedSlots), (status = 400, response = crate::openapi::BadRequest), (status = 415, response = crate::openapi::UnsupportedMediaType), (status = 422, response = crate::openapi::Unprocessable), (status = 401, response = crate::openapi::Unauthorized), (status = 403, response = crate::openapi::Forbidden), (status = 404, response = crate::openapi::NotFound), (status = 409, response = crate::openapi::Conflict), (status = 503, response = crate::openapi::Unavailable)), security(("bearer" = [])))]
pub async fn create<P: Ports>(
    State(state): State<AppState<P>>,
    Authenticated(actor): Authenticated,
    PathId(doctor_id): PathId,
    body: JsonBody,
) -> Result<(StatusCode, Json<CreatedSlots>), ApiError> {
    let doctor_id = UserId::from_uuid(doctor_id);
    if !(actor.is_admin() || actor.is(doctor_id)) {
        return Err(ApiError::forbidden(
            "only the doctor themself or an administrator may manage these slots",
        ));
    }
    let windows = body.parse::<CreateSlotsBody>()?.into_windows()?;
    let slots = state
        .services
        .slots
        .create(&actor, doctor_id, windows)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedSlots {
            slots: slots.into_iter().map(SlotDto::from).collect(),
        }),
    ))
}

/// `GET /doctors/{id}/slots` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    status: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

/// A doctor's slots by range and status (anyone).
#[utoipa::path(get, path = "/api/v1/doctors/{id}/slots", tag = "slots", params(("id" = Uuid, Path, description = "The doctor's user id"), ListQuery), responses((status = 200, description = "The doctor's slots by start", body = ListResponse<SlotDto>), (status = 404, response = crate::openapi::NotFound), (status = 422, response = crate::openapi::Unprocessable), (status = 503, response = crate::openapi::Unavailable)))]
pub async fn list<P: Ports>(
    State(state): State<AppState<P>>,
    PathId(doctor_id): PathId,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<ListResponse<SlotDto>>, ApiError> {
    let status = optional_param(query.status.as_deref(), "status")?;
    let page = page(query.limit, time_cursor(query.cursor.as_deref())?)?;
    let filter = SlotFilter {
        doctor_id: UserId::from_uuid(doctor_id),
        from: query.from,
        to: query.to,
        status,
    };
    let slots = state.services.slots.list(filter, page).await?;
    Ok(Json(ListResponse::from_page(slots, SlotDto::from)))
}

/// `GET /slots` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SearchQuery {
    /// Only doctors of this specialty (case-insensitive).
    specialty: Option<String>,
    /// Slots starting at or after (default: now).
    from: Option<DateTime<Utc>>,
    /// Slots starting before.
    to: Option<DateTime<Utc>>,
    limit: Option<u32>,
    cursor: Option<String>,
}

/// Bookable slots across doctors (anyone): free, not started, not held; by start time.
#[utoipa::path(get, path = "/api/v1/slots", tag = "slots", params(SearchQuery), responses((status = 200, description = "Bookable slots of active doctors by start", body = ListResponse<SlotDto>), (status = 422, response = crate::openapi::Unprocessable), (status = 503, response = crate::openapi::Unavailable)))]
pub async fn search<P: Ports>(
    State(state): State<AppState<P>>,
    ApiQuery(query): ApiQuery<SearchQuery>,
) -> Result<Json<ListResponse<SlotDto>>, ApiError> {
    let page = page(query.limit, time_cursor(query.cursor.as_deref())?)?;
    let slots = state
        .services
        .slots
        .search(query.specialty, query.from, query.to, page)
        .await?;
    Ok(Json(ListResponse::from_page(slots, SlotDto::from)))
}

/// A patient's hold on a slot.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HoldDto {
    slot_id: Uuid,
    patient_id: Uuid,
    /// The hold lapses by itself at this time unless the patient books.
    expires_at: DateTime<Utc>,
}

/// `201 {"hold": {...}}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(example = json!({"hold": {"slot_id": "01938d5e-7c1a-7b3e-9f00-0000000051a7", "patient_id": "01938d5e-7c1a-7b3e-9f00-00000000a11c", "expires_at": "2027-01-04T08:05:00Z"}}))]
pub struct HoldResponse {
    hold: HoldDto,
}

/// Holds a free slot for the calling patient while they check out (default 5 minutes);
/// nobody else can book it meanwhile. Holding it again renews the hold.
#[utoipa::path(post, path = "/api/v1/slots/{id}/hold", tag = "slots", params(("id" = Uuid, Path, description = "The slot id")), responses((status = 201, description = "Held", body = HoldResponse), (status = 401, response = crate::openapi::Unauthorized), (status = 403, response = crate::openapi::Forbidden), (status = 404, response = crate::openapi::NotFound), (status = 409, response = crate::openapi::Conflict), (status = 503, response = crate::openapi::Unavailable)), security(("bearer" = [])))]
pub async fn hold<P: Ports>(
    State(state): State<AppState<P>>,
    Authenticated(actor): Authenticated,
    PathId(slot_id): PathId,
) -> Result<(StatusCode, Json<HoldResponse>), ApiError> {
    let hold = state
        .services
        .slots
        .hold(&actor, SlotId::from_uuid(slot_id))
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(HoldResponse {
            hold: HoldDto {
                slot_id: hold.slot_id.as_uuid(),
                patient_id: hold.patient_id.as_uuid(),
                expires_at: hold.expires_at,
            },
        }),
    ))
}
