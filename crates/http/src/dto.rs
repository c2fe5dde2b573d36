//! Wire types: response bodies built from domain entities, and the list envelope.
//! Field names follow DESIGN §6 and are part of the API contract.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use shms_domain::Page;
use shms_domain::appointment::{Appointment, Booking};
use shms_domain::doctor::Doctor;
use shms_domain::payment::{Money, Payment, PaymentAttempt, PaymentDetails, Refund};
use shms_domain::slot::Slot;
use shms_domain::user::{User, UserProfile};
use uuid::Uuid;

use crate::cursor;

/// `{"items": [...], "next_cursor": ...}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ListResponse<T> {
    /// This page.
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

impl<T> ListResponse<T> {
    /// Converts a domain page.
    pub fn from_page<D>(page: Page<D>, convert: impl Fn(D) -> T) -> Self {
        Self {
            next_cursor: page.next.as_ref().map(cursor::encode),
            items: page.items.into_iter().map(convert).collect(),
        }
    }
}

/// Money on the wire.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MoneyDto {
    /// Minor units.
    pub amount_cents: i64,
    /// ISO 4217.
    pub currency: String,
}

impl From<Money> for MoneyDto {
    fn from(money: Money) -> Self {
        Self {
            amount_cents: money.amount_cents,
            currency: money.currency,
        }
    }
}

/// A user, as in the login response.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserDto {
    /// Id.
    pub id: Uuid,
    /// E-mail.
    pub email: String,
    /// Role.
    pub role: &'static str,
    /// Name.
    pub full_name: String,
}

impl From<User> for UserDto {
    fn from(user: User) -> Self {
        Self {
            id: user.id.as_uuid(),
            email: user.email,
            role: user.role.as_str(),
            full_name: user.full_name,
        }
    }
}

/// A patient's profile.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PatientDto {
    /// Date of birth.
    pub date_of_birth: NaiveDate,
    /// FHIR administrative gender.
    pub sex: &'static str,
    /// Phone.
    pub phone: Option<String>,
}

/// A user with their profile (`GET /me`, registration).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(example = json!({"id": "01938d5e-7c1a-7b3e-9f00-00000000a11c", "email": "ann@example.org", "role": "patient", "full_name": "Ann Smith", "disabled": false, "created_at": "2026-12-04T10:00:00Z", "patient": {"date_of_birth": "1990-04-01", "sex": "female", "phone": null}, "doctor": null}))]
pub struct ProfileDto {
    /// Id.
    pub id: Uuid,
    /// E-mail.
    pub email: String,
    /// Role.
    pub role: &'static str,
    /// Name.
    pub full_name: String,
    /// Disabled accounts cannot log in.
    pub disabled: bool,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Set for patients.
    pub patient: Option<PatientDto>,
    /// Set for doctors.
    pub doctor: Option<DoctorDto>,
}

impl From<UserProfile> for ProfileDto {
    fn from(profile: UserProfile) -> Self {
        let user = profile.user;
        Self {
            id: user.id.as_uuid(),
            email: user.email,
            role: user.role.as_str(),
            full_name: user.full_name,
            disabled: user.disabled,
            created_at: user.created_at,
            patient: profile.patient.map(|p| PatientDto {
                date_of_birth: p.date_of_birth,
                sex: p.sex.as_str(),
                phone: p.phone,
            }),
            doctor: profile.doctor.map(DoctorDto::from),
        }
    }
}

/// A doctor's public profile.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(example = json!({"id": "01938d5e-7c1a-7b3e-9f00-000000000d0c", "full_name": "Dr Who", "specialty": "Cardiology", "license_number": "LIC-42", "consultation_fee": {"amount_cents": 5000, "currency": "EUR"}, "active": true, "bio": null}))]
pub struct DoctorDto {
    /// The doctor's user id.
    pub id: Uuid,
    /// Name.
    pub full_name: String,
    /// Specialty.
    pub specialty: String,
    /// Licence number.
    pub license_number: String,
    /// Fee per appointment.
    pub consultation_fee: MoneyDto,
    /// Takes patients.
    pub active: bool,
    /// Biography.
    pub bio: Option<String>,
}

impl From<Doctor> for DoctorDto {
    fn from(doctor: Doctor) -> Self {
        Self {
            id: doctor.id.as_uuid(),
            full_name: doctor.full_name,
            specialty: doctor.specialty,
            license_number: doctor.license_number,
            consultation_fee: doctor.consultation_fee.into(),
            active: doctor.active,
            bio: doctor.bio,
        }
    }
}

/// A slot.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(example = json!({"id": "01938d5e-7c1a-7b3e-9f00-0000000051a7", "doctor_id": "01938d5e-7c1a-7b3e-9f00-000000000d0c", "starts_at": "2027-01-04T09:00:00Z", "ends_at": "2027-01-04T09:30:00Z", "status": "free"}))]
pub struct SlotDto {
    /// Id.
    pub id: Uuid,
    /// Whose slot.
    pub doctor_id: Uuid,
    /// Start.
    pub starts_at: DateTime<Utc>,
    /// End (exclusive).
    pub ends_at: DateTime<Utc>,
    /// free | busy | busy-unavailable.
    pub status: &'static str,
    /// Set while a patient holds the free slot at checkout: until then only they can book it.
    pub held_until: Option<DateTime<Utc>>,
}

impl From<Slot> for SlotDto {
    fn from(slot: Slot) -> Self {
        Self {
            id: slot.id.as_uuid(),
            doctor_id: slot.doctor_id.as_uuid(),
            starts_at: slot.starts_at,
            ends_at: slot.ends_at,
            status: slot.status.as_str(),
            // a lapsed hold is no hold: the database ignores it too
            held_until: slot.held_until.filter(|until| *until > Utc::now()),
        }
    }
}

/// An appointment.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(example = json!({"id": "01938d5e-7c1a-7b3e-9f00-1a2b3c4d5e6f", "patient_id": "01938d5e-7c1a-7b3e-9f00-00000000a11c", "doctor_id": "01938d5e-7c1a-7b3e-9f00-000000000d0c", "slot_id": "01938d5e-7c1a-7b3e-9f00-0000000051a7", "starts_at": "2027-01-04T09:00:00Z", "ends_at": "2027-01-04T09:30:00Z", "reason": "check-up", "status": "booked", "cancel_reason": null, "cancelled_at": null, "created_at": "2026-12-04T10:00:00Z"}))]
pub struct AppointmentDto {
    /// Id.
    pub id: Uuid,
    /// Patient.
    pub patient_id: Uuid,
    /// Doctor.
    pub doctor_id: Uuid,
    /// Slot.
    pub slot_id: Uuid,
    /// Start.
    pub starts_at: DateTime<Utc>,
    /// End.
    pub ends_at: DateTime<Utc>,
    /// Why.
    pub reason: String,
    /// FHIR status.
    pub status: &'static str,
    /// Why it was cancelled.
    pub cancel_reason: Option<String>,
    /// When it was cancelled.
    pub cancelled_at: Option<DateTime<Utc>>,
    /// When it was booked.
    pub created_at: DateTime<Utc>,
}

impl From<Appointment> for AppointmentDto {
    fn from(a: Appointment) -> Self {
        Self {
            id: a.id.as_uuid(),
            patient_id: a.patient_id.as_uuid(),
            doctor_id: a.doctor_id.as_uuid(),
            slot_id: a.slot_id.as_uuid(),
            starts_at: a.starts_at,
            ends_at: a.ends_at,
            reason: a.reason,
            status: a.status.as_str(),
            cancel_reason: a.cancel_reason,
            cancelled_at: a.cancelled_at,
            created_at: a.created_at,
        }
    }
}

/// A payment.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(example = json!({"id": "01938d5e-7c1a-7b3e-9f00-0000000000a7", "appointment_id": "01938d5e-7c1a-7b3e-9f00-1a2b3c4d5e6f", "amount_cents": 5000, "currency": "EUR", "status": "pending", "refunded_cents": 0, "paid_at": null, "created_at": "2026-12-04T10:00:00Z"}))]
pub struct PaymentDto {
    /// Id.
    pub id: Uuid,
    /// The appointment paid for.
    pub appointment_id: Uuid,
    /// Amount, minor units.
    pub amount_cents: i64,
    /// ISO 4217.
    pub currency: String,
    /// pending | paid | partially_refunded | refunded | cancelled.
    pub status: &'static str,
    /// Refunded so far, minor units.
    pub refunded_cents: i64,
    /// When paid.
    pub paid_at: Option<DateTime<Utc>>,
    /// When created.
    pub created_at: DateTime<Utc>,
}

impl From<Payment> for PaymentDto {
    fn from(p: Payment) -> Self {
        Self {
            id: p.id.as_uuid(),
            appointment_id: p.appointment_id.as_uuid(),
            amount_cents: p.amount.amount_cents,
            currency: p.amount.currency,
            status: p.status.as_str(),
            refunded_cents: p.refunded_cents,
            paid_at: p.paid_at,
            created_at: p.created_at,
        }
    }
}

/// An appointment with its payment.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(example = json!({"appointment": {"id": "01938d5e-7c1a-7b3e-9f00-1a2b3c4d5e6f", "patient_id": "01938d5e-7c1a-7b3e-9f00-00000000a11c", "doctor_id": "01938d5e-7c1a-7b3e-9f00-000000000d0c", "slot_id": "01938d5e-7c1a-7b3e-9f00-0000000051a7", "starts_at": "2027-01-04T09:00:00Z", "ends_at": "2027-01-04T09:30:00Z", "reason": "check-up", "status": "booked", "cancel_reason": null, "cancelled_at": null, "created_at": "2026-12-04T10:00:00Z"}, "payment": {"id": "01938d5e-7c1a-7b3e-9f00-0000000000a7", "appointment_id": "01938d5e-7c1a-7b3e-9f00-1a2b3c4d5e6f", "amount_cents": 5000, "currency": "EUR", "status": "pending", "refunded_cents": 0, "paid_at": null, "created_at": "2026-12-04T10:00:00Z"}}))]
pub struct BookingDto {
    /// The appointment.
    pub appointment: AppointmentDto,
    /// Its payment.
    pub payment: PaymentDto,
}

impl From<Booking> for BookingDto {
    fn from(booking: Booking) -> Self {
        Self {
            appointment: booking.appointment.into(),
            payment: booking.payment.into(),
        }
    }
}

/// One attempt to pay (the card token is never echoed).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AttemptDto {
    /// Id, also the gateway idempotency key.
    pub id: Uuid,
    /// card | cash | insurance.
    pub method: &'static str,
    /// pending | succeeded | declined | failed.
    pub status: &'static str,
    /// The gateway's charge reference.
    pub gateway_reference: Option<String>,
    /// Why it was declined or failed.
    pub failure_reason: Option<String>,
    /// Started.
    pub created_at: DateTime<Utc>,
    /// Settled.
    pub settled_at: Option<DateTime<Utc>>,
}

impl From<PaymentAttempt> for AttemptDto {
    fn from(a: PaymentAttempt) -> Self {
        Self {
            id: a.id.as_uuid(),
            method: a.method.as_str(),
            status: a.status.as_str(),
            gateway_reference: a.gateway_reference,
            failure_reason: a.failure_reason,
            created_at: a.created_at,
            settled_at: a.settled_at,
        }
    }
}

/// A refund.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RefundDto {
    /// Id.
    pub id: Uuid,
    /// Amount, minor units.
    pub amount_cents: i64,
    /// Why.
    pub reason: String,
    /// Who refunded.
    pub created_by: Uuid,
    /// When.
    pub created_at: DateTime<Utc>,
}

impl From<Refund> for RefundDto {
    fn from(r: Refund) -> Self {
        Self {
            id: r.id.as_uuid(),
            amount_cents: r.amount_cents,
            reason: r.reason,
            created_by: r.created_by.as_uuid(),
            created_at: r.created_at,
        }
    }
}

/// A payment with its appointment's people and its ledger.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PaymentDetailsDto {
    /// The payment's own fields.
    #[serde(flatten)]
    pub payment: PaymentDto,
    /// The patient who pays.
    pub patient_id: Uuid,
    /// The doctor of the appointment.
    pub doctor_id: Uuid,
    /// Every attempt, oldest first.
    pub attempts: Vec<AttemptDto>,
    /// Every refund, oldest first.
    pub refunds: Vec<RefundDto>,
}

impl From<PaymentDetails> for PaymentDetailsDto {
    fn from(d: PaymentDetails) -> Self {
        Self {
            payment: d.payment.into(),
            patient_id: d.patient_id.as_uuid(),
            doctor_id: d.doctor_id.as_uuid(),
            attempts: d.attempts.into_iter().map(AttemptDto::from).collect(),
            refunds: d.refunds.into_iter().map(RefundDto::from).collect(),
        }
    }
}
