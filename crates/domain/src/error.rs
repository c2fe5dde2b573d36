//! The error every port returns. Use-case errors wrap it; adapters must map database
//! failures onto it by constraint, never by message text.

/// A rule the store refused to break. Each variant names one constraint or trigger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Conflict {
    /// The slot already has an active appointment or is blocked.
    #[error("the slot is no longer available")]
    SlotUnavailable,
    /// The patient already has an active appointment overlapping this one.
    #[error("the patient already has an appointment at that time")]
    PatientOverlap,
    /// The doctor already has an active appointment overlapping this one.
    #[error("the doctor already has an appointment at that time")]
    DoctorOverlap,
    /// A new slot overlaps another slot of the same doctor.
    #[error("the slot overlaps another slot of this doctor")]
    SlotOverlap,
    /// An account with this e-mail exists.
    #[error("an account with this e-mail already exists")]
    EmailTaken,
    /// A doctor with this licence number exists.
    #[error("a doctor with this licence number already exists")]
    LicenseTaken,
    /// The state machine refused the change (the status moved on concurrently).
    #[error("the status change is not allowed from the current status")]
    InvalidTransition,
    /// The payment is no longer pending (paid, cancelled or refunded meanwhile).
    #[error("the payment is not pending")]
    PaymentNotPending,
    /// Another attempt to pay is in flight.
    #[error("a payment attempt is already in progress")]
    PaymentInProgress,
    /// The payment is not paid, so there is nothing to refund.
    #[error("the payment is not paid")]
    PaymentNotRefundable,
    /// The refund would exceed what was paid.
    #[error("the refund exceeds what is left to refund")]
    RefundExceedsPaid,
    /// A cancellation would leave a paid payment without its refund.
    #[error("the payment changed while cancelling; retry")]
    PaymentNotSettled,
    /// The appointment already has its encounter.
    #[error("the appointment already has an encounter")]
    EncounterExists,
    /// The change would leave the clinic without an active administrator.
    #[error("the last active administrator cannot be disabled")]
    LastAdmin,
    /// An encounter is written only for a checked-in or fulfilled appointment.
    #[error("the appointment is not checked-in or fulfilled")]
    AppointmentNotCheckedIn,
}

/// Failure of a port call.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The referenced row does not exist.
    #[error("not found")]
    NotFound,
    /// A constraint or trigger refused the write; nothing was written.
    #[error(transparent)]
    Conflict(#[from] Conflict),
    /// The store cannot serve right now (pool exhausted, database down); retrying later may work.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    /// Anything else; the cause is kept for the logs, never shown to clients.
    #[error("storage failure: {0}")]
    Other(#[source] Box<dyn std::error::Error + Send + Sync>),
}
