//! The one place where failures become HTTP: RFC 9457 `application/problem+json` with a
//! stable machine `code`. Internal causes are logged here and never sent to clients.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use shms_domain::accounts::AccountError;
use shms_domain::appointment::AppointmentError;
use shms_domain::auth::AuthError;
use shms_domain::availability::{AvailabilityError, ConflictingAppointment};
use shms_domain::doctor::DoctorError;
use shms_domain::payment::PaymentError;
use shms_domain::records::RecordError;
use shms_domain::slot::SlotError;
use shms_domain::waitlist::WaitlistError;
use shms_domain::{Conflict, StoreError, ValidationErrors};

/// Seconds a client should wait before retrying when the database is saturated or down.
const RETRY_AFTER_SECONDS: u64 = 1;

/// One invalid field in a 422 problem.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct FieldProblem {
    /// The field, as the client named it.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

/// An appointment in the way of a change (409 `time_off_conflict`).
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct AppointmentConflict {
    /// The appointment.
    pub appointment_id: uuid::Uuid,
    /// Its patient.
    pub patient_id: uuid::Uuid,
    /// Its start.
    pub starts_at: chrono::DateTime<chrono::Utc>,
    /// Its end.
    pub ends_at: chrono::DateTime<chrono::Utc>,
}

impl From<ConflictingAppointment> for AppointmentConflict {
    fn from(conflict: ConflictingAppointment) -> Self {
        Self {
            appointment_id: conflict.appointment_id.as_uuid(),
            patient_id: conflict.patient_id.as_uuid(),
            starts_at: conflict.starts_at,
            ends_at: conflict.ends_at,
        }
    }
}

/// The lists some conflicts carry, boxed in `ApiError`: it is returned by value everywhere
/// and must stay small.
#[derive(Debug, Clone, Default)]
struct Extensions {
    /// 409 `slot_unavailable` of a series: the slots in the way.
    slot_ids: Vec<uuid::Uuid>,
    /// 409 `time_off_conflict`: the appointments in the way.
    conflicts: Vec<AppointmentConflict>,
}

/// A problem details response (RFC 9457) with SHMS's `code` extension.
#[derive(Debug, Clone)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    title: &'static str,
    detail: String,
    errors: Vec<FieldProblem>,
    extensions: Option<Box<Extensions>>,
    retry_after: Option<u64>,
}

/// An RFC 9457 problem details document, as every error is answered
/// (`application/problem+json`).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(example = json!({
    "type": "https://shms.example/problems/slot-unavailable", "title": "Slot unavailable",
    "status": 409, "detail": "the slot has just been booked by someone else", "code": "slot_unavailable"
}))]
pub struct Problem {
    /// A URI naming the problem type.
    #[serde(rename = "type")]
    kind: String,
    /// Short, human-readable summary of the problem type.
    title: String,
    /// The HTTP status.
    status: u16,
    /// What happened in this occurrence.
    detail: String,
    /// Stable machine-readable code (`slot_unavailable`, `validation_failed`, …).
    code: String,
    /// For 422 `validation_failed`: every invalid field.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    errors: Vec<FieldProblem>,
    /// For 409 `slot_unavailable` on a series: every slot that stood in the way.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    slot_ids: Vec<uuid::Uuid>,
    /// For 409 `time_off_conflict`: every appointment in the way.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    conflicts: Vec<AppointmentConflict>,
}

impl ApiError {
    /// A problem with a status, code, title and detail.
    #[must_use]
    pub fn new(
        status: StatusCode,
        code: &'static str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            status,
            code,
            title,
            detail: detail.into(),
            errors: Vec::new(),
            extensions: None,
            retry_after: None,
        }
    }

    /// 429 `too_many_requests`, retry after `wait`.
    #[must_use]
    pub fn too_many_requests(wait: std::time::Duration) -> Self {
        let mut problem = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_requests",
            "Too many attempts",
            "Too many login attempts for this account or from this address; wait and retry.",
        );
        problem.retry_after = Some(wait.as_secs().saturating_add(1));
        problem
    }

    /// 404 `not_found`: the object does not exist or the caller may not see it.
    #[must_use]
    pub fn not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "Not found",
            "The requested resource does not exist.",
        )
    }

    /// 401 `unauthorized`.
    #[must_use]
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Authentication required",
            "Send a valid bearer token in the Authorization header.",
        )
    }

    /// 403 `forbidden`.
    #[must_use]
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", "Forbidden", detail)
    }

    /// 422 `validation_failed` listing every invalid field.
    #[must_use]
    pub fn validation(errors: &ValidationErrors) -> Self {
        let mut problem = Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            "Invalid request",
            format!("The request has invalid fields: {errors}"),
        );
        problem.errors = errors
            .fields()
            .iter()
            .map(|e| FieldProblem {
                field: e.field.clone(),
                message: e.message.clone(),
            })
            .collect();
        problem
    }

    /// 422 for a single invalid field.
    #[must_use]
    pub fn invalid_field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::validation(&ValidationErrors::single(field, message))
    }

    /// 409 with a specific code.
    #[must_use]
    pub fn conflict(code: &'static str, title: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, title, detail)
    }

    /// The HTTP status.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The machine code.
    #[must_use]
    pub fn code(&self) -> &'static str {
        self.code
    }

    fn unavailable(cause: &str) -> Self {
        tracing::warn!(cause, "database unavailable");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "service_unavailable",
            "Service temporarily unavailable",
            "The service is overloaded or its database is unreachable; retry shortly.",
        )
    }

    fn internal(cause: &dyn std::error::Error) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal server error",
            "Something went wrong on our side; it has been logged.",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let extensions = self.extensions.map(|boxed| *boxed).unwrap_or_default();
        let body = Problem {
            kind: format!(
                "https://shms.example/problems/{}",
                self.code.replace('_', "-")
            ),
            title: self.title.to_owned(),
            status: self.status.as_u16(),
            detail: self.detail,
            code: self.code.to_owned(),
            errors: self.errors,
            slot_ids: extensions.slot_ids,
            conflicts: extensions.conflicts,
        };
        let json = serde_json::to_vec(&body).unwrap_or_default();
        let mut response = (self.status, json).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        } else if self.status == StatusCode::SERVICE_UNAVAILABLE {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound => Self::not_found(),
            StoreError::Conflict(conflict) => conflict.into(),
            StoreError::Unavailable(cause) => Self::unavailable(&cause),
            StoreError::Other(cause) => Self::internal(cause.as_ref()),
        }
    }
}

impl From<Conflict> for ApiError {
    fn from(conflict: Conflict) -> Self {
        let detail = conflict.to_string();
        match conflict {
            Conflict::SlotUnavailable | Conflict::DoctorOverlap => {
                Self::conflict("slot_unavailable", "Slot unavailable", detail)
            }
            Conflict::PatientOverlap => {
                Self::conflict("overlapping_appointment", "Overlapping appointment", detail)
            }
            Conflict::SlotOverlap => Self::conflict("slot_overlap", "Overlapping slot", detail),
            Conflict::EmailTaken => {
                Self::conflict("email_taken", "E-mail already registered", detail)
            }
            Conflict::LicenseTaken => {
                Self::conflict("license_taken", "Licence number already registered", detail)
            }
            Conflict::InvalidTransition => {
                Self::conflict("invalid_transition", "Invalid status change", detail)
            }
            Conflict::PaymentNotPending => {
                Self::conflict("payment_not_pending", "Payment not pending", detail)
            }
            Conflict::PaymentInProgress => {
                Self::conflict("payment_in_progress", "Payment in progress", detail)
            }
            Conflict::PaymentNotRefundable => {
                Self::conflict("payment_not_refundable", "Payment not refundable", detail)
            }
            Conflict::RefundExceedsPaid => {
                Self::conflict("refund_exceeds_payment", "Refund too large", detail)
            }
            Conflict::PaymentNotSettled => {
                Self::conflict("payment_changed", "Payment changed", detail)
            }
            Conflict::EncounterExists => {
                Self::conflict("encounter_exists", "Encounter already written", detail)
            }
            Conflict::LastAdmin => Self::conflict(
                "last_admin",
                "Last active administrator",
                "The last active administrator cannot be disabled; enable or create another administrator first.",
            ),
            Conflict::AppointmentNotCheckedIn => Self::conflict(
                "appointment_not_checked_in",
                "Appointment not checked in",
                detail,
            ),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> Self {
        match error {
            AuthError::InvalidCredentials => {
                let mut problem = Self::unauthorized();
                problem.code = "invalid_credentials";
                problem.title = "Invalid credentials";
                problem.detail = "The e-mail or password is wrong.".into();
                problem
            }
            AuthError::Unauthenticated => Self::unauthorized(),
            AuthError::EmailTaken => Conflict::EmailTaken.into(),
            AuthError::NotAnAdmin(role) => Self::conflict(
                "email_taken",
                "E-mail already registered",
                format!("the e-mail belongs to a {role}"),
            ),
            AuthError::Store(store) => store.into(),
        }
    }
}

impl From<DoctorError> for ApiError {
    fn from(error: DoctorError) -> Self {
        match error {
            DoctorError::NotFound => Self::not_found(),
            DoctorError::Forbidden => Self::forbidden(error.to_string()),
            DoctorError::Conflict(conflict) => conflict.into(),
            DoctorError::Store(store) => store.into(),
        }
    }
}

impl From<SlotError> for ApiError {
    fn from(error: SlotError) -> Self {
        match error {
            SlotError::NotFound => Self::not_found(),
            SlotError::Forbidden => Self::forbidden(error.to_string()),
            SlotError::Validation(errors) => Self::validation(&errors),
            SlotError::Conflict(conflict) => conflict.into(),
            SlotError::Unavailable(why) => {
                Self::conflict("slot_unavailable", "Slot unavailable", why)
            }
            SlotError::Store(store) => store.into(),
        }
    }
}

impl From<AppointmentError> for ApiError {
    fn from(error: AppointmentError) -> Self {
        match error {
            AppointmentError::NotFound => Self::not_found(),
            AppointmentError::Forbidden => Self::forbidden(error.to_string()),
            AppointmentError::Validation(errors) => Self::validation(&errors),
            AppointmentError::SlotUnavailable(why) => {
                Self::conflict("slot_unavailable", "Slot unavailable", why)
            }
            AppointmentError::PatientOverlap => Conflict::PatientOverlap.into(),
            AppointmentError::CancellationWindowClosed => Self::conflict(
                "cancellation_window_closed",
                "Cancellation window closed",
                "Patients can cancel only until the cut-off before the start; contact the clinic.",
            ),
            AppointmentError::InvalidTransition { .. } => Self::conflict(
                "invalid_transition",
                "Invalid status change",
                error.to_string(),
            ),
            AppointmentError::SeriesUnavailable(slots) => {
                let mut problem = Self::conflict(
                    "slot_unavailable",
                    "Slots unavailable",
                    format!(
                        "{} of the requested slots cannot be booked (taken, blocked, started, \
                         held by another patient or overlapping another appointment); nothing was booked",
                        slots.len()
                    ),
                );
                problem.extensions = Some(Box::new(Extensions {
                    slot_ids: slots.iter().map(shms_domain::SlotId::as_uuid).collect(),
                    ..Extensions::default()
                }));
                problem
            }
            AppointmentError::NotReschedulable(_) => Self::conflict(
                "invalid_transition",
                "Invalid status change",
                error.to_string(),
            ),
            AppointmentError::PaymentInProgress => Conflict::PaymentInProgress.into(),
            AppointmentError::PaymentChanged => Conflict::PaymentNotSettled.into(),
            AppointmentError::Store(store) => store.into(),
        }
    }
}

impl From<PaymentError> for ApiError {
    fn from(error: PaymentError) -> Self {
        let detail = error.to_string();
        match error {
            PaymentError::NotFound => Self::not_found(),
            PaymentError::Forbidden(why) => Self::forbidden(why),
            PaymentError::Validation(errors) => Self::validation(&errors),
            PaymentError::NotPayable(_) => {
                Self::conflict("payment_not_pending", "Payment not pending", detail)
            }
            PaymentError::InProgress => Conflict::PaymentInProgress.into(),
            PaymentError::Declined(_) => Self::new(
                StatusCode::PAYMENT_REQUIRED,
                "payment_declined",
                "Payment declined",
                detail,
            ),
            PaymentError::InvalidCardToken => Self::invalid_field("card_token", detail),
            PaymentError::GatewayUnavailable => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "gateway_unavailable",
                "Payment provider unavailable",
                detail,
            ),
            PaymentError::NotRefundable(_) => {
                Self::conflict("payment_not_refundable", "Payment not refundable", detail)
            }
            PaymentError::RefundExceedsPaid { .. } => {
                Self::conflict("refund_exceeds_payment", "Refund too large", detail)
            }
            PaymentError::Store(store) => store.into(),
        }
    }
}

impl From<RecordError> for ApiError {
    fn from(error: RecordError) -> Self {
        match error {
            RecordError::NotFound => Self::not_found(),
            RecordError::Forbidden(why) => Self::forbidden(why),
            // the administrator sees the patient; reading their records needs a stated reason
            RecordError::ReasonRequired => Self::new(
                StatusCode::FORBIDDEN,
                "reason_required",
                "Reason required",
                error.to_string(),
            ),
            RecordError::Validation(errors) => Self::validation(&errors),
            RecordError::NotCheckedIn(_) => Self::conflict(
                "appointment_not_checked_in",
                "Appointment not checked in",
                error.to_string(),
            ),
            RecordError::EncounterExists => Conflict::EncounterExists.into(),
            RecordError::Store(store) => store.into(),
        }
    }
}

impl From<AccountError> for ApiError {
    fn from(error: AccountError) -> Self {
        match error {
            AccountError::NotFound => Self::not_found(),
            AccountError::Forbidden(why) => Self::forbidden(why),
            AccountError::Validation(errors) => Self::validation(&errors),
            // 422, not 401: the caller is authenticated, and a 401 would tell clients to
            // drop their (valid) token
            AccountError::WrongPassword => {
                let mut problem = Self::invalid_field("current_password", error.to_string());
                problem.code = "current_password_incorrect";
                problem.title = "Current password incorrect";
                problem.detail = "The current password is not correct.".into();
                problem
            }
            AccountError::LastAdmin => Conflict::LastAdmin.into(),
            AccountError::Conflict(conflict) => conflict.into(),
            AccountError::Store(store) => store.into(),
        }
    }
}

impl From<WaitlistError> for ApiError {
    fn from(error: WaitlistError) -> Self {
        match error {
            WaitlistError::NotFound => Self::not_found(),
            WaitlistError::Forbidden => Self::forbidden(error.to_string()),
            WaitlistError::Validation(errors) => Self::validation(&errors),
            WaitlistError::Store(store) => store.into(),
        }
    }
}

impl From<AvailabilityError> for ApiError {
    fn from(error: AvailabilityError) -> Self {
        match error {
            AvailabilityError::NotFound => Self::not_found(),
            AvailabilityError::Forbidden(why) => Self::forbidden(why),
            AvailabilityError::Validation(errors) => Self::validation(&errors),
            AvailabilityError::TimeOffConflict(conflicts) => {
                let mut problem = Self::conflict(
                    "time_off_conflict",
                    "Appointments in the way",
                    format!(
                        "{} booked appointment(s) overlap the time off; nothing was changed. \
                         Cancel or move them first (an administrator may pass cancel_conflicts).",
                        conflicts.len()
                    ),
                );
                problem.extensions = Some(Box::new(Extensions {
                    conflicts: conflicts
                        .into_iter()
                        .map(AppointmentConflict::from)
                        .collect(),
                    ..Extensions::default()
                }));
                problem
            }
            AvailabilityError::PaymentInProgress => Conflict::PaymentInProgress.into(),
            AvailabilityError::PaymentChanged => Conflict::PaymentNotSettled.into(),
            AvailabilityError::Conflict(conflict) => conflict.into(),
            AvailabilityError::Store(store) => store.into(),
        }
    }
}
