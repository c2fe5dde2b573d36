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
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MoneyBody {
    amount_cents: i64,
    currency: String,
}

/// `POST /doctors` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
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
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    specialty: Option<String>,
    q: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

/// The doctor directory (anyone).
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
