//! `/doctors/{id}/availability` (weekly rules that generate slots) and
//! `/doctors/{id}/time-off`.

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use shms_domain::Ports;
use shms_domain::availability::{
    Availability, AvailabilityInput, DEFAULT_HORIZON_DAYS, Regenerated, RuleInput, Schedule,
    TimeOffRequest, TimeOffTaken, weekday_code,
};
use shms_domain::ids::UserId;
use uuid::Uuid;

use crate::error::ApiError;
use crate::extract::{Authenticated, JsonBody, PathId};
use crate::state::AppState;

/// One weekly interval, local wall-clock time.
#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleBody {
    /// `mon` … `sun`.
    #[schema(example = "mon")]
    weekday: String,
    /// `HH:MM`, the first slot's start.
    #[schema(example = "09:00")]
    start: String,
    /// `HH:MM`; no slot ends later.
    #[schema(example = "12:00")]
    end: String,
}

const fn default_horizon() -> i64 {
    DEFAULT_HORIZON_DAYS
}

/// `PUT /doctors/{id}/availability`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"time_zone": "Europe/Berlin", "slot_minutes": 30, "buffer_minutes": 0,
    "effective_from": "2027-03-01", "effective_until": null, "horizon_days": 56,
    "rules": [{"weekday": "mon", "start": "09:00", "end": "12:00"}]}))]
pub struct AvailabilityBody {
    /// IANA time zone of the rules.
    time_zone: String,
    /// Slot length, 5–480 minutes.
    slot_minutes: i64,
    /// Gap after each slot, 0–480 minutes (default 0).
    #[serde(default)]
    buffer_minutes: i64,
    /// First local date the rules apply.
    effective_from: NaiveDate,
    /// Last local date the rules apply (inclusive); `null`: open-ended.
    #[serde(default)]
    effective_until: Option<NaiveDate>,
    /// Days ahead, counted from today in the doctor's zone, that slots exist: 1–400 (default 56).
    #[serde(default = "default_horizon")]
    horizon_days: i64,
    /// The weekly rules; none on a weekday means no slots that day. Rules of one weekday may
    /// touch but not overlap.
    rules: Vec<RuleBody>,
}

impl AvailabilityBody {
    fn into_domain(self) -> Result<Availability, ApiError> {
        Availability::parse(AvailabilityInput {
            time_zone: self.time_zone,
            slot_minutes: self.slot_minutes,
            buffer_minutes: self.buffer_minutes,
            effective_from: self.effective_from,
            effective_until: self.effective_until,
            horizon_days: self.horizon_days,
            rules: self
                .rules
                .into_iter()
                .map(|rule| RuleInput {
                    weekday: rule.weekday,
                    start: rule.start,
                    end: rule.end,
                })
                .collect(),
        })
        .map_err(|errors| ApiError::validation(&errors))
    }
}

/// A doctor's stored weekly schedule.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AvailabilityDto {
    /// Whose.
    doctor_id: Uuid,
    /// IANA time zone.
    time_zone: String,
    /// Slot length, minutes.
    slot_minutes: u32,
    /// Gap after each slot, minutes.
    buffer_minutes: u32,
    /// First local date.
    effective_from: NaiveDate,
    /// Last local date, inclusive; `null`: open-ended.
    effective_until: Option<NaiveDate>,
    /// Days ahead that slots exist.
    horizon_days: u32,
    /// The rules, Monday first.
    rules: Vec<RuleBody>,
    /// Bumped by every replacement.
    revision: i64,
    /// When it was last replaced.
    updated_at: DateTime<Utc>,
}

impl From<Schedule> for AvailabilityDto {
    fn from(schedule: Schedule) -> Self {
        let a = schedule.availability;
        Self {
            doctor_id: schedule.doctor_id.as_uuid(),
            time_zone: a.time_zone().name().to_owned(),
            slot_minutes: a.slot_minutes(),
            buffer_minutes: a.buffer_minutes(),
            effective_from: a.effective_from(),
            effective_until: a.effective_until(),
            horizon_days: a.horizon_days(),
            rules: a
                .rules()
                .iter()
                .map(|rule| RuleBody {
                    weekday: weekday_code(rule.weekday).to_owned(),
                    start: rule.start.format("%H:%M").to_string(),
                    end: rule.end.format("%H:%M").to_string(),
                })
                .collect(),
            revision: schedule.revision,
            updated_at: schedule.updated_at,
        }
    }
}

/// `200` after a replacement.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RegeneratedResponse {
    /// Free slots created.
    generated: u64,
    /// Future free generated slots removed (never booked ones; booked, blocked and manual
    /// slots are kept).
    removed: u64,
    /// The stored schedule.
    availability: AvailabilityDto,
}

impl From<Regenerated> for RegeneratedResponse {
    fn from(done: Regenerated) -> Self {
        Self {
            generated: done.generated,
            removed: done.removed,
            availability: done.schedule.into(),
        }
    }
}

fn may_manage(actor: &shms_domain::Actor, doctor_id: UserId) -> Result<(), ApiError> {
    if actor.is_admin() || actor.is(doctor_id) {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "only the doctor themself or an administrator may manage this doctor's availability",
        ))
    }
}

/// Replaces a doctor's weekly rules and regenerates their free slots up to the horizon: the
/// doctor themself or an admin. Booked, blocked and manually created slots are never touched;
/// a new slot overlapping one of them, or the doctor's time off, is not created. Times follow
/// the zone's wall clock across daylight-saving changes.
#[utoipa::path(put, path = "/api/v1/doctors/{id}/availability", tag = "availability", request_body = AvailabilityBody, params(("id" = Uuid, Path, description = "The doctor's user id")), responses((status = 200, description = "The stored rules and what changed", body = RegeneratedResponse), (status = 400, response = crate::openapi::BadRequest), (status = 415, response = crate::openapi::UnsupportedMediaType), (status = 422, response = crate::openapi::Unprocessable), (status = 401, response = crate::openapi::Unauthorized), (status = 403, response = crate::openapi::Forbidden), (status = 404, response = crate::openapi::NotFound), (status = 503, response = crate::openapi::Unavailable)), security(("bearer" = [])))]
pub async fn replace<P: Ports>(
    State(state): State<AppState<P>>,
    Authenticated(actor): Authenticated,
    PathId(doctor_id): PathId,
    body: JsonBody,
) -> Result<Json<RegeneratedResponse>, ApiError> {
    let doctor_id = UserId::from_uuid(doctor_id);
    may_manage(&actor, doctor_id)?;
    let availability = body.parse::<AvailabilityBody>()?.into_domain()?;
    let done = state
        .services
        .availability
        .replace(&actor, doctor_id, availability)
        .await?;
    Ok(Json(done.into()))
}

/// A doctor's weekly rules (anyone, like their slots); 404 when none are set.
#[utoipa::path(get, path = "/api/v1/doctors/{id}/availability", tag = "availability", params(("id" = Uuid, Path, description = "The doctor's user id")), responses((status = 200, description = "The stored rules", body = AvailabilityDto), (status = 404, response = crate::openapi::NotFound), (status = 503, response = crate::openapi::Unavailable)))]
pub async fn get<P: Ports>(
    State(state): State<AppState<P>>,
    PathId(doctor_id): PathId,
) -> Result<Json<AvailabilityDto>, ApiError> {
    let schedule = state
        .services
        .availability
        .get(UserId::from_uuid(doctor_id))
        .await?;
    Ok(Json(schedule.into()))
}

/// `POST /doctors/{id}/time-off`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"from": "2027-03-01T00:00:00Z", "to": "2027-03-08T00:00:00Z", "reason": "conference", "cancel_conflicts": false}))]
pub struct TimeOffBody {
    /// Start, inclusive.
    from: DateTime<Utc>,
    /// End, exclusive; in the future, at most 366 days after `from`.
    to: DateTime<Utc>,
    /// Why (1–500 characters).
    reason: String,
    /// Administrators only: cancel (and fully refund) the booked appointments in the range
    /// instead of refusing.
    #[serde(default)]
    cancel_conflicts: bool,
}

/// Stored time off.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TimeOffDto {
    /// Its id.
    id: Uuid,
    /// Whose.
    doctor_id: Uuid,
    /// Start, inclusive.
    from: DateTime<Utc>,
    /// End, exclusive.
    to: DateTime<Utc>,
    /// Why.
    reason: String,
    /// Whether conflicting appointments were cancelled.
    cancel_conflicts: bool,
    /// Who took it.
    created_by: Uuid,
}

/// `200` after time off.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TimeOffResponse {
    /// The stored time off.
    time_off: TimeOffDto,
    /// Free slots overlapping the range, now `busy-unavailable`.
    blocked: u64,
    /// Appointments cancelled and refunded by an administrator's `cancel_conflicts`.
    cancelled: Vec<Uuid>,
}

impl From<TimeOffTaken> for TimeOffResponse {
    fn from(taken: TimeOffTaken) -> Self {
        let t = taken.time_off;
        Self {
            time_off: TimeOffDto {
                id: t.id,
                doctor_id: t.doctor_id.as_uuid(),
                from: t.from,
                to: t.to,
                reason: t.reason,
                cancel_conflicts: t.cancel_conflicts,
                created_by: t.created_by.as_uuid(),
            },
            blocked: taken.blocked,
            cancelled: taken.cancelled.iter().map(|id| id.as_uuid()).collect(),
        }
    }
}

/// Takes time off `[from, to)`: the doctor themself or an admin. Free slots overlapping it turn
/// `busy-unavailable`. Booked or checked-in appointments overlapping it refuse the request with
/// 409 `time_off_conflict` listing each in `conflicts`, and nothing changes — unless an admin
/// passes `cancel_conflicts`, which cancels and fully refunds them in the same transaction
/// (audited). A payment being charged meanwhile answers 409 `payment_in_progress`.
#[utoipa::path(post, path = "/api/v1/doctors/{id}/time-off", tag = "availability", request_body = TimeOffBody, params(("id" = Uuid, Path, description = "The doctor's user id")), responses((status = 200, description = "The time off, blocked slots and cancelled appointments", body = TimeOffResponse), (status = 400, response = crate::openapi::BadRequest), (status = 415, response = crate::openapi::UnsupportedMediaType), (status = 422, response = crate::openapi::Unprocessable), (status = 401, response = crate::openapi::Unauthorized), (status = 403, response = crate::openapi::Forbidden), (status = 404, response = crate::openapi::NotFound), (status = 409, response = crate::openapi::Conflict), (status = 503, response = crate::openapi::Unavailable)), security(("bearer" = [])))]
pub async fn time_off<P: Ports>(
    State(state): State<AppState<P>>,
    Authenticated(actor): Authenticated,
    PathId(doctor_id): PathId,
    body: JsonBody,
) -> Result<Json<TimeOffResponse>, ApiError> {
    let doctor_id = UserId::from_uuid(doctor_id);
    may_manage(&actor, doctor_id)?;
    let body = body.parse::<TimeOffBody>()?;
    if body.cancel_conflicts && !actor.is_admin() {
        return Err(ApiError::forbidden(
            "only an administrator may cancel booked appointments to take time off",
        ));
    }
    let request = TimeOffRequest::new(body.from, body.to, &body.reason, body.cancel_conflicts)
        .map_err(|errors| ApiError::validation(&errors))?;
    let taken = state
        .services
        .availability
        .take_time_off(&actor, doctor_id, request)
        .await?;
    Ok(Json(taken.into()))
}
