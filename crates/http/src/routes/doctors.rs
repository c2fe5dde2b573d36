//! `/doctors`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use shms_domain::doctor::{CreateDoctor, DoctorFilter};
use shms_domain::ids::UserId;
use shms_domain::payment::Money;
use shms_domain::user::{Email, FullName, Password};
use shms_domain::validation::bounded_text;
use shms_domain::{Ports, ValidationErrors};

use super::page;
use crate::cursor::text_cursor;
use crate::dto::{DoctorDto, ListResponse};
use crate::error::ApiError;
use crate::extract::{ApiQuery, Authenticated, JsonBody, PathId};
use crate::state::AppState;

/// A fee as sent by clients.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MoneyBody {
    amount_cents: i64,
    currency: String,
}

/// `POST /doctors` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"email": "dr.who@example.org", "password": "a long passphrase", "full_name": "Dr Who", "specialty": "Cardiology", "license_number": "LIC-42", "consultation_fee": {"amount_cents": 5000, "currency": "EUR"}}))]
pub struct CreateDoctorBody {
    email: String,
    password: String,
    full_name: String,
    specialty: String,
    license_number: String,
    consultation_fee: MoneyBody,
    #[serde(default)]
    bio: Option<String>,
}

impl CreateDoctorBody {
    fn into_domain(self) -> Result<CreateDoctor, ApiError> {
        let mut errors = ValidationErrors::new();
        let email = errors.check("email", Email::parse(&self.email));
        let password = errors.check(
            "password",
            Password::new(&self.password, &[&self.email, &self.full_name]),
        );
        let full_name = errors.check("full_name", FullName::parse(&self.full_name));
        let specialty = errors.check("specialty", bounded_text(&self.specialty, 100));
        let license_number = errors.check("license_number", bounded_text(&self.license_number, 64));
        let fee = errors.check(
            "consultation_fee",
            Money::new(
                self.consultation_fee.amount_cents,
                &self.consultation_fee.currency,
            ),
        );
        let bio = match self.bio.as_deref() {
            Some(raw) => errors.check("bio", bounded_text(raw, 4000)).map(Some),
            None => Some(None),
        };
        match (
            email,
            password,
            full_name,
            specialty,
            license_number,
            fee,
            bio,
        ) {
            (
                Some(email),
                Some(password),
                Some(full_name),
                Some(specialty),
                Some(license_number),
                Some(fee),
                Some(bio),
            ) => Ok(CreateDoctor {
                email,
                password,
                full_name,
                specialty,
                license_number,
                consultation_fee: fee,
                bio,
            }),
            _ => Err(ApiError::validation(&errors)),
        }
    }
}

/// Creates a doctor account and profile (admins) → 201.
#[utoipa::path(post, path = "/api/v1/doctors", tag = "doctors", request_body = CreateDoctorBody, responses((status = 201, description = "The new doctor", body = DoctorDto), (status = 400, response = crate::openapi::BadRequest), (status = 415, response = crate::openapi::UnsupportedMediaType), (status = 422, response = crate::openapi::Unprocessable), (status = 401, response = crate::openapi::Unauthorized), (status = 403, response = crate::openapi::Forbidden), (status = 409, response = crate::openapi::Conflict), (status = 503, response = crate::openapi::Unavailable)), security(("bearer" = [])))]
pub async fn create<P: Ports>(
    State(state): State<AppState<P>>,
    Authenticated(actor): Authenticated,
    body: JsonBody,
) -> Result<(StatusCode, Json<DoctorDto>), ApiError> {
    if !actor.is_admin() {
        // authorization before validation (DESIGN §6)
        return Err(ApiError::forbidden(
            "only administrators may create doctors",
        ));
    }
    let request = body.parse::<CreateDoctorBody>()?.into_domain()?;
    let doctor = state.services.doctors.create(&actor, request).await?;
    Ok((StatusCode::CREATED, Json(doctor.into())))
}

/// `GET /doctors` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    specialty: Option<String>,
    q: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

/// The doctor directory (anyone).
#[utoipa::path(get, path = "/api/v1/doctors", tag = "doctors", params(ListQuery), responses((status = 200, description = "Doctors by name", body = ListResponse<DoctorDto>), (status = 422, response = crate::openapi::Unprocessable), (status = 503, response = crate::openapi::Unavailable)))]
pub async fn list<P: Ports>(
    State(state): State<AppState<P>>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<ListResponse<DoctorDto>>, ApiError> {
    let page = page(query.limit, text_cursor(query.cursor.as_deref())?)?;
    let filter = DoctorFilter {
        specialty: query
            .specialty
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty()),
        name_contains: query
            .q
            .map(|q| q.trim().chars().take(100).collect::<String>())
            .filter(|q| !q.is_empty()),
    };
    let doctors = state.services.doctors.list(filter, page).await?;
    Ok(Json(ListResponse::from_page(doctors, DoctorDto::from)))
}

/// One doctor (anyone).
#[utoipa::path(get, path = "/api/v1/doctors/{id}", tag = "doctors", params(("id" = Uuid, Path, description = "The doctor's user id")), responses((status = 200, description = "One doctor", body = DoctorDto), (status = 404, response = crate::openapi::NotFound), (status = 503, response = crate::openapi::Unavailable)))]
pub async fn get<P: Ports>(
    State(state): State<AppState<P>>,
    PathId(id): PathId,
) -> Result<Json<DoctorDto>, ApiError> {
    Ok(Json(
        state
            .services
            .doctors
            .get(UserId::from_uuid(id))
            .await?
            .into(),
    ))
}
