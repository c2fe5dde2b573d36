//! `/appointments/{id}/encounter`, `/encounters/{id}/amendments` and
//! `/patients/{id}/{records,allergies,access-log}`.
//!
//! Writes ask the domain for a grant first and only then parse the body, so 401/403/404
//! come before 422. Reads of records and allergies are audited by the domain call itself.

mod body;
mod response;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use shms_domain::Ports;
use shms_domain::ids::{AppointmentId, EncounterId, UserId};
use shms_domain::records::{AllergyDraft, AmendmentDraft, EncounterDraft};

use self::body::{AllergyBody, AmendmentBody, EncounterBody};
use self::response::{
    AllergyDto, AllergyResponse, AuditEventDto, EncounterDto, EncounterResponse, RecordsResponse,
};
use super::page;
use crate::cursor::{encode, time_cursor};
use crate::dto::ListResponse;
use crate::error::ApiError;
use crate::extract::{ApiQuery, Authenticated, JsonBody, Origin, PathId};
use crate::state::AppState;

/// Writes the encounter of a checked-in or fulfilled appointment → 201 `{"encounter"}`.
#[utoipa::path(post, path = "/api/v1/appointments/{id}/encounter", tag = "records", request_body = EncounterBody, params(("id" = Uuid, Path, description = "The appointment id")), responses((status = 201, description = "The encounter", body = EncounterResponse), (status = 400, response = crate::openapi::BadRequest), (status = 415, response = crate::openapi::UnsupportedMediaType), (status = 422, response = crate::openapi::Unprocessable), (status = 401, response = crate::openapi::Unauthorized), (status = 403, response = crate::openapi::Forbidden), (status = 404, response = crate::openapi::NotFound), (status = 409, response = crate::openapi::Conflict), (status = 503, response = crate::openapi::Unavailable)), security(("bearer" = [])))]
pub async fn write_encounter<P: Ports>(
    State(state): State<AppState<P>>,
    Authenticated(actor): Authenticated,
    Origin(origin): Origin,
    PathId(id): PathId,
    body: JsonBody,
) -> Result<(StatusCode, Json<EncounterResponse>), ApiError> {
    let records = &state.services.records;
    let grant = records
        .authorize_encounter(&actor, AppointmentId::from_uuid(id))
        .await?;
    let draft = EncounterDraft::from(body.parse::<EncounterBody>()?);
    let encounter = records.write_encounter(grant, &origin, &draft).await?;
    Ok((
        StatusCode::CREATED,
        Json(EncounterResponse {
            encounter: encounter.into(),
        }),
    ))
}

/// Amends an encounter (its author only) → 201 `{"encounter"}` with every amendment.
#[utoipa::path(post, path = "/api/v1/encounters/{id}/amendments", tag = "records", request_body = AmendmentBody, params(("id" = Uuid, Path, description = "The encounter id")), responses((status = 201, description = "The encounter with every amendment, oldest first", body = EncounterResponse), (status = 400, response = crate::openapi::BadRequest), (status = 415, response = crate::openapi::UnsupportedMediaType), (status = 422, response = crate::openapi::Unprocessable), (status = 401, response = crate::openapi::Unauthorized), (status = 403, response = crate::openapi::Forbidden), (status = 404, response = crate::openapi::NotFound), (status = 503, response = crate::openapi::Unavailable)), security(("bearer" = [])))]
pub async fn amend<P: Ports>(
    State(state): State<AppState<P>>,
    Authenticated(actor): Authenticated,
    Origin(origin): Origin,
    PathId(id): PathId,
    body: JsonBody,
) -> Result<(StatusCode, Json<EncounterResponse>), ApiError> {
    let records = &state.services.records;
    let grant = records
        .authorize_amendment(&actor, EncounterId::from_uuid(id))
        .await?;
    let draft = AmendmentDraft::from(body.parse::<AmendmentBody>()?);
    let encounter = records.amend(grant, &origin, &draft).await?;
    Ok((
        StatusCode::CREATED,
        Json(EncounterResponse {
            encounter: encounter.into(),
        }),
    ))
}

/// Records an allergy (a treating doctor) → 201 `{"allergy"}`.
#[utoipa::path(post, path = "/api/v1/patients/{id}/allergies", tag = "records", request_body = AllergyBody, params(("id" = Uuid, Path, description = "The patient's user id")), responses((status = 201, description = "The allergy", body = AllergyResponse), (status = 400, response = crate::openapi::BadRequest), (status = 415, response = crate::openapi::UnsupportedMediaType), (status = 422, response = crate::openapi::Unprocessable), (status = 401, response = crate::openapi::Unauthorized), (status = 403, response = crate::openapi::Forbidden), (status = 404, response = crate::openapi::NotFound), (status = 503, response = crate::openapi::Unavailable)), security(("bearer" = [])))]
pub async fn add_allergy<P: Ports>(
    State(state): State<AppState<P>>,
    Authenticated(actor): Authenticated,
    Origin(origin): Origin,
    PathId(id): PathId,
    body: JsonBody,
) -> Result<(StatusCode, Json<AllergyResponse>), ApiError> {
    let records = &state.services.records;
    let grant = records
        .authorize_allergy(&actor, UserId::from_uuid(id))
        .await?;
    let draft = AllergyDraft::from(body.parse::<AllergyBody>()?);
    let allergy = records.add_allergy(grant, &origin, &draft).await?;
    Ok((
        StatusCode::CREATED,
        Json(AllergyResponse {
            allergy: allergy.into(),
        }),
    ))
}

/// `?reason=` — required of administrators (break-glass), ignored for everyone else.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ReadQuery {
    reason: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

/// The patient's allergies (all of them) → `{"items", "next_cursor": null}`; audited.
#[utoipa::path(get, path = "/api/v1/patients/{id}/allergies", tag = "records", params(("id" = Uuid, Path, description = "The patient's user id"), ReadQuery), responses((status = 200, description = "The patient's allergies; the read is audited", body = ListResponse<AllergyDto>), (status = 401, response = crate::openapi::Unauthorized), (status = 403, response = crate::openapi::Forbidden), (status = 404, response = crate::openapi::NotFound), (status = 422, response = crate::openapi::Unprocessable), (status = 503, response = crate::openapi::Unavailable)), security(("bearer" = [])))]
pub async fn allergies<P: Ports>(
    State(state): State<AppState<P>>,
    Authenticated(actor): Authenticated,
    Origin(origin): Origin,
    PathId(id): PathId,
    ApiQuery(query): ApiQuery<ReadQuery>,
) -> Result<Json<ListResponse<AllergyDto>>, ApiError> {
    let allergies = state
        .services
        .records
        .read_allergies(
            &actor,
            &origin,
            UserId::from_uuid(id),
            query.reason.as_deref(),
        )
        .await?;
    Ok(Json(ListResponse {
        items: allergies.into_iter().map(AllergyDto::from).collect(),
        next_cursor: None,
    }))
}

/// A page of the patient's history → `{"patient_id", "allergies", "items", "next_cursor"}`;
/// audited.
#[utoipa::path(get, path = "/api/v1/patients/{id}/records", tag = "records", params(("id" = Uuid, Path, description = "The patient's user id"), ReadQuery), responses((status = 200, description = "A page of the patient's history, newest first; the read is audited", body = RecordsResponse), (status = 401, response = crate::openapi::Unauthorized), (status = 403, response = crate::openapi::Forbidden), (status = 404, response = crate::openapi::NotFound), (status = 422, response = crate::openapi::Unprocessable), (status = 503, response = crate::openapi::Unavailable)), security(("bearer" = [])))]
pub async fn records<P: Ports>(
    State(state): State<AppState<P>>,
    Authenticated(actor): Authenticated,
    Origin(origin): Origin,
    PathId(id): PathId,
    ApiQuery(query): ApiQuery<ReadQuery>,
) -> Result<Json<RecordsResponse>, ApiError> {
    let page = page(query.limit, time_cursor(query.cursor.as_deref())?)?;
    let records = state
        .services
        .records
        .read_records(
            &actor,
            &origin,
            UserId::from_uuid(id),
            query.reason.as_deref(),
            page,
        )
        .await?;
    Ok(Json(RecordsResponse {
        patient_id: id,
        allergies: records
            .allergies
            .into_iter()
            .map(AllergyDto::from)
            .collect(),
        next_cursor: records.encounters.next.as_ref().map(encode),
        items: records
            .encounters
            .items
            .into_iter()
            .map(EncounterDto::from)
            .collect(),
    }))
}

/// `GET /patients/{id}/access-log` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct LogQuery {
    limit: Option<u32>,
    cursor: Option<String>,
}

/// Who read or wrote the patient's data, newest first (the patient, administrators).
#[utoipa::path(get, path = "/api/v1/patients/{id}/access-log", tag = "records", params(("id" = Uuid, Path, description = "The patient's user id"), LogQuery), responses((status = 200, description = "Who read or wrote the patient's data, newest first", body = ListResponse<AuditEventDto>), (status = 401, response = crate::openapi::Unauthorized), (status = 403, response = crate::openapi::Forbidden), (status = 404, response = crate::openapi::NotFound), (status = 422, response = crate::openapi::Unprocessable), (status = 503, response = crate::openapi::Unavailable)), security(("bearer" = [])))]
pub async fn access_log<P: Ports>(
    State(state): State<AppState<P>>,
    Authenticated(actor): Authenticated,
    PathId(id): PathId,
    ApiQuery(query): ApiQuery<LogQuery>,
) -> Result<Json<ListResponse<AuditEventDto>>, ApiError> {
    let page = page(query.limit, time_cursor(query.cursor.as_deref())?)?;
    let events = state
        .services
        .records
        .access_log(&actor, UserId::from_uuid(id), page)
        .await?;
    Ok(Json(ListResponse::from_page(events, AuditEventDto::from)))
}
