//! Translating database failures into the domain's `StoreError`, by constraint name and
//! SQLSTATE — never by message text. Every constraint and trigger in `migrations/` that a
//! request can trip has an entry here; anything else is a bug and surfaces as `Other`.

use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel_async::pooled_connection::PoolError as ConnectionPoolError;
use diesel_async::pooled_connection::deadpool::PoolError;
use shms_domain::{Conflict, StoreError};

/// The domain meaning of a named constraint or trigger refusal.
fn conflict_for(constraint: &str) -> Option<StoreError> {
    let conflict = match constraint {
        "appointments_one_per_slot" | "slots_unavailable" | "slots_held" | "slots_started" => {
            Conflict::SlotUnavailable
        }
        "appointments_no_doctor_overlap" => Conflict::DoctorOverlap,
        "appointments_no_patient_overlap" => Conflict::PatientOverlap,
        "slots_no_overlap" => Conflict::SlotOverlap,
        "users_email_key" => Conflict::EmailTaken,
        "users_last_active_admin" => Conflict::LastAdmin,
        "doctors_license_number_key" => Conflict::LicenseTaken,
        "appointments_status_transition"
        | "payments_status_transition"
        | "slots_status_consistency"
        | "payment_attempts_status_transition" => Conflict::InvalidTransition,
        "payments_not_pending" | "payment_attempts_one_success" => Conflict::PaymentNotPending,
        "payment_attempts_one_in_flight" | "payments_in_progress" => Conflict::PaymentInProgress,
        "refunds_payment_not_paid" => Conflict::PaymentNotRefundable,
        "refunds_within_paid" | "payments_refund_within_amount" => Conflict::RefundExceedsPaid,
        "payments_not_settled_on_cancel" => Conflict::PaymentNotSettled,
        "encounters_appointment_key" => Conflict::EncounterExists,
        // the appointment was cancelled (or never checked in) behind the domain's check
        "encounters_appointment_checked_in" => Conflict::AppointmentNotCheckedIn,
        // the writer lost the relationship that entitled them to write (a concurrent
        // cancellation), or the referenced encounter/appointment does not match: to the
        // caller it does not exist
        "encounters_match_appointment"
        | "encounter_amendments_by_author"
        | "allergies_care_relationship"
        | "allergies_patient_id_fkey" => {
            return Some(StoreError::NotFound);
        }
        // a referenced patient, doctor or slot does not exist (or has the wrong role)
        "appointments_patient_id_fkey"
        | "appointments_slot_fkey"
        | "slots_doctor_id_fkey"
        | "waitlist_entries_patient_id_fkey"
        | "waitlist_entries_doctor_id_fkey" => {
            return Some(StoreError::NotFound);
        }
        _ => return None,
    };
    Some(StoreError::Conflict(conflict))
}

/// SQLSTATE classes that mean "the database cannot serve now", not "the request is wrong":
/// connection exceptions (08), a transaction rolled back to break a deadlock or
/// serialization conflict that persisted through the retries (40), insufficient resources
/// (53), operator intervention (57), and a query cancelled by `statement_timeout` (57014 is
/// in class 57).
fn is_transient(sqlstate: &str) -> bool {
    ["08", "40", "53", "57"]
        .iter()
        .any(|class| sqlstate.starts_with(class))
}

/// Whether the database rolled the transaction back to resolve a conflict between
/// concurrent transactions (class 40: serialization failure, deadlock): safe to run again.
#[must_use]
pub fn is_rollback(error: &DieselError) -> bool {
    match error {
        DieselError::DatabaseError(DatabaseErrorKind::SerializationFailure, _) => true,
        DieselError::DatabaseError(_, info) => info
            .sqlstate()
            .is_some_and(|state| state.as_str().starts_with("40")),
        _ => false,
    }
}

/// Maps a diesel error to the domain's storage error.
#[must_use]
pub fn map_diesel(error: DieselError) -> StoreError {
    match error {
        DieselError::NotFound => StoreError::NotFound,
        DieselError::DatabaseError(kind, info) => {
            if let Some(mapped) = info.constraint_name().and_then(conflict_for) {
                return mapped;
            }
            let sqlstate = info
                .sqlstate()
                .map(|state| state.as_str().to_owned())
                .unwrap_or_default();
            if matches!(
                kind,
                DatabaseErrorKind::UnableToSendCommand | DatabaseErrorKind::ClosedConnection
            ) || is_transient(&sqlstate)
            {
                return StoreError::Unavailable(info.message().to_owned());
            }
            StoreError::Other(format!("{kind:?} [{sqlstate}] {}", info.message()).into())
        }
        DieselError::BrokenTransactionManager => {
            StoreError::Unavailable("connection lost mid-transaction".into())
        }
        other => StoreError::Other(Box::new(other)),
    }
}

/// Maps a pool checkout failure: a timeout or an unreachable database is `Unavailable`.
#[must_use]
pub fn map_pool(error: PoolError) -> StoreError {
    match error {
        PoolError::Timeout(kind) => {
            StoreError::Unavailable(format!("no database connection free ({kind:?} timeout)"))
        }
        PoolError::Backend(ConnectionPoolError::ConnectionError(e)) => {
            StoreError::Unavailable(e.to_string())
        }
        PoolError::Backend(ConnectionPoolError::QueryError(e)) => map_diesel(e),
        other => StoreError::Unavailable(other.to_string()),
    }
}
