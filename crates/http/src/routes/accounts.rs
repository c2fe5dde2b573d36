//! Accounts: `/users` (administrators), `/me` profile, password and sessions, and
//! `PATCH /doctors/{id}`.
//!
//! Bodies are read only after the caller is authorized (401/403/404 before 422). A field a
//! caller may not change is refused with 422 naming it, never ignored: unknown fields are
//! refused by `deny_unknown_fields` (the problem names the field), and the fields that exist
//! elsewhere in the model but are never changed through a profile call (`role`, `email`,
//! `disabled`, `id`) are refused explicitly.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, NaiveDate, Utc};
use serde::de::IgnoredAny;
use serde::{Deserialize, Deserializer, Serialize};
use shms_domain::accounts::{
    AccountEvent, AccountService, DoctorChanges, ProfileChanges, SessionInfo, StatusOutcome,
    UserFilter,
};
use shms_domain::ids::{SessionId, UserId};
use shms_domain::payment::Money;
use shms_domain::user::{FullName, Phone, User, validate_date_of_birth};
use shms_domain::validation::bounded_text;
use shms_domain::{Ports, ValidationErrors};
use uuid::Uuid;

use super::{optional_param, page};
use crate::cursor::{text_cursor, time_cursor};
use crate::dto::{AppointmentDto, DoctorDto, ListResponse, ProfileDto};
use crate::error::ApiError;
use crate::extract::{ApiQuery, Authenticated, JsonBody, Origin, PathId};
use crate::state::AppState;

/// Reads a field that may be `null`: absent → `None`, `null` → `Some(None)`.
fn nullable<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// Refuses, by name, fields that are never changed through a profile call.
fn refuse_fixed(errors: &mut ValidationErrors, fields: &[(&str, bool)]) {
    for (field, present) in fields {
        if *present {
            errors.push(*field, "cannot be changed through a profile call");
        }
    }
}

/// An account in the administrators' list.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserSummaryDto {
    /// Id.
    pub id: Uuid,
    /// E-mail.
    pub email: String,
    /// Role.
    pub role: &'static str,
    /// Display name.
    pub full_name: String,
    /// Whether the account is disabled.
    pub disabled: bool,
    /// Created.
    pub created_at: DateTime<Utc>,
}

impl From<User> for UserSummaryDto {
    fn from(user: User) -> Self {
        Self {
            id: user.id.as_uuid(),
            email: user.email,
            role: user.role.as_str(),
            full_name: user.full_name,
            disabled: user.disabled,
            created_at: user.created_at,
        }
    }
}

/// `GET /users` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct UserListQuery {
    role: Option<String>,
    q: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

/// Accounts by name (administrators).
#[utoipa::path(get, path = "/api/v1/users", tag = "accounts", params(UserListQuery), responses((status = 200, description = "Accounts by name", body = ListResponse<UserSummaryDto>), (status = 401, response = crate::openapi::Unauthorized), (status = 403, response = crate::openapi::Forbidden), (status = 422, response = crate::openapi::Unprocessable), (status = 503, response = crate::openapi::Unavailable)), security(("bearer" = [])))]
pub async fn list<P: Ports>(
    State(state): State<AppState<P>>,
    Authenticated(actor): Authenticated,
    ApiQuery(query): ApiQuery<UserListQuery>,
) -> Result<Json<ListResponse<UserSummaryDto>>, ApiError> {
    AccountService::<P>::authorize_admin(&actor, None)?;
    let page = page(query.limit, text_cursor(query.cursor.as_deref())?)?;
    let filter = UserFilter {
        role: optional_param(query.role.as_deref(), "role")?,
        query: query
            .q
            .map(|q| q.trim().chars().take(100).collect::<String>())
            .filter(|q| !q.is_empty()),
    };
    let users = state
        .services
        .accounts
        .list_users(&actor, filter, page)
        .await?;
    Ok(Json(ListResponse::from_page(users, UserSummaryDto::from)))
}

/// `GET /users/{id}`: the profile, plus what only administrators see.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AdminProfileDto {
    #[serde(flatten)]
    profile: ProfileDto,
    /// For patients: how many of their appointments were marked no-show.
    #[serde(skip_serializing_if = "Option::is_none")]
    no_show_count: Option<u64>,
}

/// One account with its profile (administrators); a patient's no-show count.
#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "accounts", params(("id" = Uuid, Path, description = "The user id")), responses((status = 200, description = "The account and its profile", body = AdminProfileDto), (status = 401, response = crate::openapi::Unauthorized), (status = 403, response = crate::openapi::Forbidden), (status = 404, response = crate::openapi::NotFound), (status = 503, response = crate::openapi::Unavailable)), security(("bearer" = [])))]
pub async fn get<P: Ports>(
    State(state): State<AppState<P>>,
    Authenticated(actor): Authenticated,
    PathId(id): PathId,
) -> Result<Json<AdminProfileDto>, ApiError> {
    let id = UserId::from_uuid(id);
    let profile = state.services.accounts.user(&actor, id).await?;
    let no_show_count = if profile.patient.is_some() {
        Some(
            state
                .services
                .appointments
                .no_show_count(&actor, id)
                .await?,
        )
    } else {
        None
    };
    Ok(Json(AdminProfileDto {
        profile: profile.into(),
        no_show_count,
    }))
}

/// `PATCH /users/{id}` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserPatchBody {
    disabled: bool,
}

/// `PATCH /users/{id}` response.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserStatusResponse {
    /// The account as it is now.
    pub user: ProfileDto,
    /// Sessions revoked by disabling.
    pub revoked_sessions: u64,
    /// A disabled doctor's future free slots now `busy-unavailable`.
    pub blocked_slots: u64,
    /// A disabled doctor's future appointments still booked or checked-in, for the clinic
    /// to reschedule or cancel.
    pub open_appointments: Vec<AppointmentDto>,
}

impl From<StatusOutcome> for UserStatusResponse {
    fn from(outcome: StatusOutcome) -> Self {
        Self {
            user: outcome.user.into(),
            revoked_sessions: outcome.revoked_sessions,
            blocked_slots: outcome.blocked_slots,
            open_appointments: outcome
                .open_appointments
                .into_iter()
                .map(AppointmentDto::from)
                .collect(),
        }
    }
}

/// Disables or re-enables an account (administrators).
#[utoipa::path(patch, path = "/api/v1/users/{id}", tag = "accounts", request_body = UserPatchBody, params(("id" = Uuid, Path, description = "The user id")), responses((status = 200, description = "Disabled or enabled; sessions revoked, a doctor's free slots blocked and booked appointments listed", body = UserStatusResponse), (status = 400, response = crate::openapi::BadRequest), (status = 415, response = crate::openapi::UnsupportedMediaType), (status = 422, response = crate::openapi::Unprocessable), (status = 401, response = crate::openapi::Unauthorized), (status = 403, response = crate::openapi::Forbidden), (status = 404, response = crate::openapi::NotFound), (status = 409, response = crate::openapi::Conflict), (status = 503, response = crate::openapi::Unavailable)), security(("bearer" = [])))]
pub async fn patch<P: Ports>(
    State(state): State<AppState<P>>,
    Authenticated(actor): Authenticated,
    PathId(id): PathId,
    Origin(origin): Origin,
    body: JsonBody,
) -> Result<Json<UserStatusResponse>, ApiError> {
    let id = UserId::from_uuid(id);
    AccountService::<P>::authorize_admin(&actor, Some(id))?;
    let body = body.parse::<UserPatchBody>()?;
    let outcome = state
        .services
        .accounts
        .set_disabled(&actor, &origin, id, body.disabled)
        .await?;
    Ok(Json(outcome.into()))
}

/// An account event.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AccountEventDto {
    /// Id.
    pub id: Uuid,
    /// When.
    pub occurred_at: DateTime<Utc>,
    /// What (`login_succeeded`, `login_failed`, `logout`, `password_changed`, …).
    pub action: &'static str,
    /// Who acted; `null` for a failed login.
    pub actor_id: Option<Uuid>,
    /// Their role then.
    pub actor_role: Option<&'static str>,
    /// Whose account; `null` for a failed login with an unknown e-mail.
    pub subject_id: Option<Uuid>,
    /// The e-mail a failed login tried (lower-cased).
    pub attempted_email: Option<String>,
    /// The request's id.
    pub request_id: Option<String>,
    /// The client's address.
    pub client_ip: Option<String>,
    /// Changed fields, the session concerned, or why a login failed.
    pub detail: Option<String>,
}

impl From<AccountEvent> for AccountEventDto {
    fn from(stored: AccountEvent) -> Self {
        let event = stored.event;
        Self {
            id: stored.id.as_uuid(),
            occurred_at: stored.occurred_at,
            action: event.action.as_str(),
            actor_id: event.actor.map(|(id, _)| id.as_uuid()),
            actor_role: event.actor.map(|(_, role)| role.as_str()),
            subject_id: event.subject_id.map(|id| id.as_uuid()),
            attempted_email: event.attempted_email,
            request_id: event.request_id,
            client_ip: event.client_ip,
            detail: event.detail,
        }
    }
}

/// A paginated list's query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    pub(crate) limit: Option<u32>,
    pub(crate) cursor: Option<String>,
}

/// The account events of a user, newest first (administrators).
#[utoipa::path(get, path = "/api/v1/users/{id}/events", tag = "accounts", params(("id" = Uuid, Path, description = "The user id"), PageQuery), responses((status = 200, description = "The account events of the user, newest first", body = ListResponse<AccountEventDto>), (status = 401, response = crate::openapi::Unauthorized), (status = 403, response = crate::openapi::Forbidden), (status = 404, response = crate::openapi::NotFound), (status = 422, response = crate::openapi::Unprocessable), (status = 503, response = crate::openapi::Unavailable)), security(("bearer" = [])))]
pub async fn events<P: Ports>(
    State(state): State<AppState<P>>,
    Authenticated(actor): Authenticated,
    PathId(id): PathId,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Json<ListResponse<AccountEventDto>>, ApiError> {
    let id = UserId::from_uuid(id);
    AccountService::<P>::authorize_admin(&actor, Some(id))?;
    let page = page(query.limit, time_cursor(query.cursor.as_deref())?)?;
    let events = state.services.accounts.events(&actor, id, page).await?;
    Ok(Json(ListResponse::from_page(events, AccountEventDto::from)))
}

/// `PATCH /me` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MePatchBody {
    #[serde(default)]
    full_name: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    phone: Option<Option<String>>,
    #[serde(default)]
    date_of_birth: Option<NaiveDate>,
    #[serde(default)]
    sex: Option<String>,
    #[serde(default)]
    #[schema(ignore)]
    role: Option<IgnoredAny>,
    #[serde(default)]
    #[schema(ignore)]
    email: Option<IgnoredAny>,
    #[serde(default)]
    #[schema(ignore)]
    disabled: Option<IgnoredAny>,
    #[serde(default)]
    #[schema(ignore)]
    id: Option<IgnoredAny>,
}

impl MePatchBody {
    fn into_domain(self, today: NaiveDate) -> Result<ProfileChanges, ApiError> {
        let mut errors = ValidationErrors::new();
        refuse_fixed(
            &mut errors,
            &[
                ("role", self.role.is_some()),
                ("email", self.email.is_some()),
                ("disabled", self.disabled.is_some()),
                ("id", self.id.is_some()),
            ],
        );
        let full_name = self
            .full_name
            .map(|raw| errors.check("full_name", FullName::parse(&raw)));
        let phone = self
            .phone
            .map(|phone| phone.map(|raw| errors.check("phone", Phone::parse(&raw))));
        let date_of_birth = self
            .date_of_birth
            .map(|date| errors.check("date_of_birth", validate_date_of_birth(date, today)));
        let sex = self.sex.map(|raw| errors.check("sex", raw.parse()));
        if !errors.is_empty() {
            return Err(ApiError::validation(&errors));
        }
        // every `Some(None)` left is a field whose error was recorded above
        Ok(ProfileChanges {
            full_name: full_name.flatten(),
            phone: phone.map(Option::flatten),
            date_of_birth: date_of_birth.flatten(),
            sex: sex.flatten(),
        })
    }
}

/// Changes the caller's own profile → 200 with the profile.
#[utoipa::path(patch, path = "/api/v1/me", tag = "accounts", request_body = MePatchBody, responses((status = 200, description = "The updated profile", body = ProfileDto), (status = 400, response = crate::openapi::BadRequest), (status = 415, response = crate::openapi::UnsupportedMediaType), (status = 422, response = crate::openapi::Unprocessable), (status = 401, response = crate::openapi::Unauthorized), (status = 503, response = crate::openapi::Unavailable)), security(("bearer" = [])))]
pub async fn patch_me<P: Ports>(
    State(state): State<AppState<P>>,
    Authenticated(actor): Authenticated,
    Origin(origin): Origin,
    body: JsonBody,
) -> Result<Json<ProfileDto>, ApiError> {
    let changes = body
        .parse::<MePatchBody>()?
        .into_domain(Utc::now().date_naive())?;
    let profile = state
        .services
        .accounts
        .update_me(&actor, &origin, changes)
        .await?;
    Ok(Json(profile.into()))
}

/// A fee as sent by clients.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FeeBody {
    amount_cents: i64,
    currency: String,
}

/// `PATCH /doctors/{id}` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DoctorPatchBody {
    #[serde(default)]
    specialty: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    bio: Option<Option<String>>,
    #[serde(default)]
    consultation_fee: Option<FeeBody>,
    #[serde(default)]
    license_number: Option<String>,
    #[serde(default)]
    #[schema(ignore)]
    role: Option<IgnoredAny>,
    #[serde(default)]
    #[schema(ignore)]
    active: Option<IgnoredAny>,
    #[serde(default)]
    #[schema(ignore)]
    id: Option<IgnoredAny>,
}

impl DoctorPatchBody {
    fn into_domain(self) -> Result<DoctorChanges, ApiError> {
        let mut errors = ValidationErrors::new();
        refuse_fixed(
            &mut errors,
            &[
                ("role", self.role.is_some()),
                ("active", self.active.is_some()),
                ("id", self.id.is_some()),
            ],
        );
        let specialty = self
            .specialty
            .map(|raw| errors.check("specialty", bounded_text(&raw, 100)));
        let bio = self
            .bio
            .map(|bio| bio.map(|raw| errors.check("bio", bounded_text(&raw, 4000))));
        let fee = self.consultation_fee.map(|fee| {
            errors.check(
                "consultation_fee",
                Money::new(fee.amount_cents, &fee.currency),
            )
        });
        let license_number = self
            .license_number
            .map(|raw| errors.check("license_number", bounded_text(&raw, 64)));
        if !errors.is_empty() {
            return Err(ApiError::validation(&errors));
        }
        Ok(DoctorChanges {
            specialty: specialty.flatten(),
            bio: bio.map(Option::flatten),
            consultation_fee: fee.flatten(),
            license_number: license_number.flatten(),
        })
    }
}

/// Changes a doctor's profile (the doctor: specialty, bio; administrators: also fee and
/// licence) → 200 with the public profile.
#[utoipa::path(patch, path = "/api/v1/doctors/{id}", tag = "doctors", request_body = DoctorPatchBody, params(("id" = Uuid, Path, description = "The doctor's user id")), responses((status = 200, description = "The updated doctor", body = DoctorDto), (status = 400, response = crate::openapi::BadRequest), (status = 415, response = crate::openapi::UnsupportedMediaType), (status = 422, response = crate::openapi::Unprocessable), (status = 401, response = crate::openapi::Unauthorized), (status = 403, response = crate::openapi::Forbidden), (status = 404, response = crate::openapi::NotFound), (status = 409, response = crate::openapi::Conflict), (status = 503, response = crate::openapi::Unavailable)), security(("bearer" = [])))]
pub async fn patch_doctor<P: Ports>(
    State(state): State<AppState<P>>,
    Authenticated(actor): Authenticated,
    PathId(id): PathId,
    Origin(origin): Origin,
    body: JsonBody,
) -> Result<Json<DoctorDto>, ApiError> {
    let grant = state
        .services
        .accounts
        .authorize_doctor_edit(&actor, UserId::from_uuid(id))
        .await?;
    let changes = body.parse::<DoctorPatchBody>()?.into_domain()?;
    let doctor = state
        .services
        .accounts
        .update_doctor(grant, &origin, changes)
        .await?;
    Ok(Json(doctor.into()))
}

/// `POST /me/password` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordBody {
    current_password: String,
    new_password: String,
}

/// `POST /me/password` response.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PasswordResponse {
    /// How many other sessions were revoked (the current one stays).
    pub revoked_sessions: u64,
}

/// Changes the caller's password → 200; every other session of theirs is revoked.
#[utoipa::path(post, path = "/api/v1/me/password", tag = "accounts", request_body = PasswordBody, responses((status = 200, description = "Changed; every other session is revoked", body = PasswordResponse), (status = 400, response = crate::openapi::BadRequest), (status = 415, response = crate::openapi::UnsupportedMediaType), (status = 422, response = crate::openapi::Unprocessable), (status = 401, response = crate::openapi::Unauthorized), (status = 503, response = crate::openapi::Unavailable)), security(("bearer" = [])))]
pub async fn change_password<P: Ports>(
    State(state): State<AppState<P>>,
    Authenticated(actor): Authenticated,
    Origin(origin): Origin,
    body: JsonBody,
) -> Result<Json<PasswordResponse>, ApiError> {
    let body = body.parse::<PasswordBody>()?;
    if body.current_password.chars().count() > shms_domain::user::Password::MAX_CHARS {
        // longer than any valid password: refuse before spending a hash on it
        return Err(shms_domain::accounts::AccountError::WrongPassword.into());
    }
    let revoked_sessions = state
        .services
        .accounts
        .change_password(&actor, &origin, body.current_password, &body.new_password)
        .await?;
    Ok(Json(PasswordResponse { revoked_sessions }))
}

/// One of the caller's sessions (never the token or its hash).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SessionDto {
    /// The session id (for `DELETE /me/sessions/{id}`).
    pub id: Uuid,
    /// Login time.
    pub created_at: DateTime<Utc>,
    /// Last request.
    pub last_used_at: DateTime<Utc>,
    /// Absolute expiry.
    pub expires_at: DateTime<Utc>,
    /// Client address at login.
    pub client_ip: Option<String>,
    /// Client user agent at login.
    pub user_agent: Option<String>,
    /// Whether this is the session of the request.
    pub current: bool,
}

/// The caller's live sessions, newest first.
#[utoipa::path(get, path = "/api/v1/me/sessions", tag = "accounts", params(PageQuery), responses((status = 200, description = "The caller's live sessions (never tokens)", body = ListResponse<SessionDto>), (status = 401, response = crate::openapi::Unauthorized), (status = 422, response = crate::openapi::Unprocessable), (status = 503, response = crate::openapi::Unavailable)), security(("bearer" = [])))]
pub async fn sessions<P: Ports>(
    State(state): State<AppState<P>>,
    Authenticated(actor): Authenticated,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Json<ListResponse<SessionDto>>, ApiError> {
    let page = page(query.limit, time_cursor(query.cursor.as_deref())?)?;
    let sessions = state.services.accounts.sessions(&actor, page).await?;
    let current = actor.session_id;
    Ok(Json(ListResponse::from_page(
        sessions,
        |session: SessionInfo| SessionDto {
            id: session.id.as_uuid(),
            created_at: session.created_at,
            last_used_at: session.last_used_at,
            expires_at: session.expires_at,
            client_ip: session.client_ip,
            user_agent: session.user_agent,
            current: Some(session.id) == current,
        },
    )))
}

/// Revokes one of the caller's sessions → 204 (another user's session is 404).
#[utoipa::path(delete, path = "/api/v1/me/sessions/{id}", tag = "accounts", params(("id" = Uuid, Path, description = "The session id")), responses((status = 204, description = "Revoked"), (status = 401, response = crate::openapi::Unauthorized), (status = 404, response = crate::openapi::NotFound), (status = 503, response = crate::openapi::Unavailable)), security(("bearer" = [])))]
pub async fn revoke_session<P: Ports>(
    State(state): State<AppState<P>>,
    Authenticated(actor): Authenticated,
    PathId(id): PathId,
    Origin(origin): Origin,
) -> Result<StatusCode, ApiError> {
    state
        .services
        .accounts
        .revoke_session(&actor, &origin, SessionId::from_uuid(id))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
