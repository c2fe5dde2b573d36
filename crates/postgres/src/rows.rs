//! Row structs as stored, and their conversion into domain entities. A row that does not
//! convert (an unknown status text) means the schema and the code disagree: a bug, reported
//! as `StoreError::Other`.

use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use shms_domain::StoreError;
use shms_domain::appointment::{Appointment, Booking};
use shms_domain::doctor::Doctor;
use shms_domain::payment::{Money, Payment, PaymentAttempt, Refund};
use shms_domain::slot::Slot;
use shms_domain::user::{PatientProfile, User};
use uuid::Uuid;

use crate::schema::{
    appointments, doctors, patients, payment_attempts, payments, refunds, slots, users,
};

pub(crate) fn parse<T: std::str::FromStr<Err = String>>(raw: &str) -> Result<T, StoreError> {
    raw.parse()
        .map_err(|error: String| StoreError::Other(error.into()))
}

#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = users, check_for_backend(diesel::pg::Pg))]
pub struct UserRow {
    pub id: Uuid,
    pub email: String,
    pub role: String,
    pub full_name: String,
    pub disabled: bool,
    pub created_at: DateTime<Utc>,
}

impl TryFrom<UserRow> for User {
    type Error = StoreError;

    fn try_from(row: UserRow) -> Result<Self, Self::Error> {
        Ok(Self {
            id: row.id.into(),
            email: row.email,
            role: parse(&row.role)?,
            full_name: row.full_name,
            disabled: row.disabled,
            created_at: row.created_at,
        })
    }
}

#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = patients, check_for_backend(diesel::pg::Pg))]
pub struct PatientRow {
    pub date_of_birth: NaiveDate,
    pub sex: String,
    pub phone: Option<String>,
}

impl TryFrom<PatientRow> for PatientProfile {
    type Error = StoreError;

    fn try_from(row: PatientRow) -> Result<Self, Self::Error> {
        Ok(Self {
            date_of_birth: row.date_of_birth,
            sex: parse(&row.sex)?,
            phone: row.phone,
        })
    }
}

#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = doctors, check_for_backend(diesel::pg::Pg))]
pub struct DoctorRow {
    pub user_id: Uuid,
    pub specialty: String,
    pub license_number: String,
    pub fee_cents: i64,
    pub currency: String,
    pub active: bool,
    pub bio: Option<String>,
}

impl DoctorRow {
    /// The public profile, named after its user.
    pub fn into_doctor(self, full_name: String) -> Doctor {
        Doctor {
            id: self.user_id.into(),
            full_name,
            specialty: self.specialty,
            license_number: self.license_number,
            consultation_fee: Money {
                amount_cents: self.fee_cents,
                currency: self.currency,
            },
            active: self.active,
            bio: self.bio,
        }
    }
}

#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = slots, check_for_backend(diesel::pg::Pg))]
pub struct SlotRow {
    pub id: Uuid,
    pub doctor_id: Uuid,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub status: String,
    pub held_by: Option<Uuid>,
    pub held_until: Option<DateTime<Utc>>,
}

impl TryFrom<SlotRow> for Slot {
    type Error = StoreError;

    fn try_from(row: SlotRow) -> Result<Self, Self::Error> {
        Ok(Self {
            id: row.id.into(),
            doctor_id: row.doctor_id.into(),
            starts_at: row.starts_at,
            ends_at: row.ends_at,
            status: parse(&row.status)?,
            held_by: row.held_by.map(Into::into),
            held_until: row.held_until,
        })
    }
}

#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = appointments, check_for_backend(diesel::pg::Pg))]
pub struct AppointmentRow {
    pub id: Uuid,
    pub patient_id: Uuid,
    pub doctor_id: Uuid,
    pub slot_id: Uuid,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub reason: String,
    pub status: String,
    pub cancel_reason: Option<String>,
    pub cancelled_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl TryFrom<AppointmentRow> for Appointment {
    type Error = StoreError;

    fn try_from(row: AppointmentRow) -> Result<Self, Self::Error> {
        Ok(Self {
            id: row.id.into(),
            patient_id: row.patient_id.into(),
            doctor_id: row.doctor_id.into(),
            slot_id: row.slot_id.into(),
            starts_at: row.starts_at,
            ends_at: row.ends_at,
            reason: row.reason,
            status: parse(&row.status)?,
            cancel_reason: row.cancel_reason,
            cancelled_at: row.cancelled_at,
            created_at: row.created_at,
        })
    }
}

#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = payments, check_for_backend(diesel::pg::Pg))]
pub struct PaymentRow {
    pub id: Uuid,
    pub appointment_id: Uuid,
    pub amount_cents: i64,
    pub currency: String,
    pub status: String,
    pub refunded_cents: i64,
    pub paid_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl TryFrom<PaymentRow> for Payment {
    type Error = StoreError;

    fn try_from(row: PaymentRow) -> Result<Self, Self::Error> {
        Ok(Self {
            id: row.id.into(),
            appointment_id: row.appointment_id.into(),
            amount: Money {
                amount_cents: row.amount_cents,
                currency: row.currency,
            },
            status: parse(&row.status)?,
            refunded_cents: row.refunded_cents,
            paid_at: row.paid_at,
            created_at: row.created_at,
        })
    }
}

/// An appointment row with its payment row.
pub fn booking(rows: (AppointmentRow, PaymentRow)) -> Result<Booking, StoreError> {
    Ok(Booking {
        appointment: rows.0.try_into()?,
        payment: rows.1.try_into()?,
    })
}

#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = payment_attempts, check_for_backend(diesel::pg::Pg))]
pub struct AttemptRow {
    pub id: Uuid,
    pub method: String,
    pub card_token: Option<String>,
    pub status: String,
    pub gateway_reference: Option<String>,
    pub failure_reason: Option<String>,
    pub created_by: Uuid,
    pub created_at: DateTime<Utc>,
    pub settled_at: Option<DateTime<Utc>>,
}

impl TryFrom<AttemptRow> for PaymentAttempt {
    type Error = StoreError;

    fn try_from(row: AttemptRow) -> Result<Self, Self::Error> {
        Ok(Self {
            id: row.id.into(),
            method: parse(&row.method)?,
            card_token: row.card_token,
            status: parse(&row.status)?,
            gateway_reference: row.gateway_reference,
            failure_reason: row.failure_reason,
            created_by: row.created_by.into(),
            created_at: row.created_at,
            settled_at: row.settled_at,
        })
    }
}

#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = refunds, check_for_backend(diesel::pg::Pg))]
pub struct RefundRow {
    pub id: Uuid,
    pub amount_cents: i64,
    pub reason: String,
    pub created_by: Uuid,
    pub created_at: DateTime<Utc>,
}

impl From<RefundRow> for Refund {
    fn from(row: RefundRow) -> Self {
        Self {
            id: row.id.into(),
            amount_cents: row.amount_cents,
            reason: row.reason,
            created_by: row.created_by.into(),
            created_at: row.created_at,
        }
    }
}
