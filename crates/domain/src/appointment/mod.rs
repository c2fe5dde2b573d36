//! Appointments: a patient's booking of one slot, with its state machine (DESIGN §3).

mod policy;
mod scheduling;
mod service;

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};

pub use policy::{CancellationPolicy, can_cancel, is_visible_to};
pub use scheduling::{MAX_SERIES, SeriesRequest};
pub use service::{AppointmentError, AppointmentService, BookRequest};

use crate::ids::{AppointmentId, PaymentId, SlotId, UserId};
use crate::payment::Payment;

/// Appointment status, as FHIR codes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppointmentStatus {
    /// Booked, not yet arrived.
    Booked,
    /// The patient has arrived.
    CheckedIn,
    /// The visit took place.
    Fulfilled,
    /// Called off.
    Cancelled,
    /// The patient did not come.
    NoShow,
}

impl AppointmentStatus {
    /// The FHIR code.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Booked => "booked",
            Self::CheckedIn => "checked-in",
            Self::Fulfilled => "fulfilled",
            Self::Cancelled => "cancelled",
            Self::NoShow => "noshow",
        }
    }

    /// Whether the state machine allows `self -> next`:
    /// booked→checked-in→fulfilled; booked→cancelled; checked-in→cancelled; booked→noshow.
    /// The database trigger `appointments_guard_update` enforces the same table.
    #[must_use]
    pub const fn can_become(self, next: Self) -> bool {
        matches!(
            (self, next),
            (
                Self::Booked,
                Self::CheckedIn | Self::Cancelled | Self::NoShow
            ) | (Self::CheckedIn, Self::Fulfilled | Self::Cancelled)
        )
    }

    /// Whether the appointment still occupies its slot (everything but cancelled).
    #[must_use]
    pub const fn is_active(self) -> bool {
        !matches!(self, Self::Cancelled)
    }
}

impl fmt::Display for AppointmentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AppointmentStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "booked" => Ok(Self::Booked),
            "checked-in" => Ok(Self::CheckedIn),
            "fulfilled" => Ok(Self::Fulfilled),
            "cancelled" => Ok(Self::Cancelled),
            "noshow" => Ok(Self::NoShow),
            _ => Err("must be one of booked, checked-in, fulfilled, cancelled, noshow".into()),
        }
    }
}

/// A booked visit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appointment {
    /// Its id.
    pub id: AppointmentId,
    /// Who is seen.
    pub patient_id: UserId,
    /// Who sees them.
    pub doctor_id: UserId,
    /// The slot it occupies.
    pub slot_id: SlotId,
    /// Start (the slot's).
    pub starts_at: DateTime<Utc>,
    /// End (the slot's).
    pub ends_at: DateTime<Utc>,
    /// Why the patient comes.
    pub reason: String,
    /// Where it is in its lifecycle.
    pub status: AppointmentStatus,
    /// Why it was cancelled.
    pub cancel_reason: Option<String>,
    /// When it was cancelled.
    pub cancelled_at: Option<DateTime<Utc>>,
    /// When it was booked.
    pub created_at: DateTime<Utc>,
}

/// An appointment with its payment: what booking and reading return.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Booking {
    /// The appointment.
    pub appointment: Appointment,
    /// Its payment.
    pub payment: Payment,
}

/// What the repository needs to book.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewBooking {
    /// Pre-generated appointment id.
    pub appointment_id: AppointmentId,
    /// Pre-generated payment id.
    pub payment_id: PaymentId,
    /// Who is seen.
    pub patient_id: UserId,
    /// The slot to take.
    pub slot_id: SlotId,
    /// Why.
    pub reason: String,
    /// Who booked (the patient or an admin).
    pub booked_by: UserId,
}

/// What booking a series came to: all of it, or nothing and the slots that stood in the way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SeriesOutcome {
    /// Every slot was booked, in the order requested.
    Booked(Vec<Booking>),
    /// Nothing was booked: these slots were taken, blocked, started, held by another patient
    /// or overlapped the patient's other appointments.
    Unavailable(Vec<SlotId>),
}

/// A cancellation to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cancellation {
    /// Which appointment.
    pub appointment_id: AppointmentId,
    /// Who cancels.
    pub cancelled_by: UserId,
    /// Why, if given.
    pub reason: Option<String>,
    /// When.
    pub at: DateTime<Utc>,
}

/// Filters of the appointment list; the service fills in the caller's scope.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppointmentFilter {
    /// Only this patient's.
    pub patient_id: Option<UserId>,
    /// Only this doctor's.
    pub doctor_id: Option<UserId>,
    /// Only this status.
    pub status: Option<AppointmentStatus>,
    /// Starting at or after.
    pub from: Option<DateTime<Utc>>,
    /// Starting before.
    pub to: Option<DateTime<Utc>>,
}

#[cfg(test)]
mod tests {
    use super::AppointmentStatus::{self, *};

    const ALL: [AppointmentStatus; 5] = [Booked, CheckedIn, Fulfilled, Cancelled, NoShow];

    #[test]
    fn state_machine_allows_exactly_the_designed_transitions() {
        let allowed: Vec<(AppointmentStatus, AppointmentStatus)> = ALL
            .iter()
            .flat_map(|from| ALL.iter().map(move |to| (*from, *to)))
            .filter(|(from, to)| from.can_become(*to))
            .collect();
        assert_eq!(
            allowed,
            vec![
                (Booked, CheckedIn),
                (Booked, Cancelled),
                (Booked, NoShow),
                (CheckedIn, Fulfilled),
                (CheckedIn, Cancelled)
            ]
        );
    }

    #[test]
    fn codes_round_trip() {
        for status in ALL {
            assert_eq!(status.as_str().parse::<AppointmentStatus>(), Ok(status));
        }
        assert!("done".parse::<AppointmentStatus>().is_err());
    }
}
