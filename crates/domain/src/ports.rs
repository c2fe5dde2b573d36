//! The ports: what the domain needs from the outside world.
//!
//! Every method returns `impl Future + Send` so services run on any executor and adapters
//! can be async. Each method documents its `# Errors` contract, which adapters must honour:
//! the services translate those variants into use-case errors, so an adapter that returns
//! `StoreError::Other` where `Conflict(..)` is promised turns a 409 into a 500.
//!
//! A method that must be atomic is one method (`AppointmentRepository::book`), run by the
//! adapter in one transaction.

use std::future::Future;

use chrono::{DateTime, Utc};

use crate::accounts::{
    AccountEvent, DoctorUpdate, NewAccountEvent, PasswordChange, ProfileUpdate, SessionInfo,
    StatusChange, StatusOutcome, UserFilter,
};
use crate::actor::Actor;
use crate::appointment::{
    Appointment, AppointmentFilter, AppointmentStatus, Booking, Cancellation, NewBooking,
    SeriesOutcome,
};
use crate::availability::{NewTimeOff, Regenerated, Replacement, Schedule, TimeOffOutcome};
use crate::doctor::{Doctor, DoctorFilter, NewDoctor};
use crate::error::StoreError;
use crate::ids::{AppointmentId, AttemptId, EncounterId, PaymentId, SessionId, SlotId, UserId};
use crate::page::{Page, PageRequest};
use crate::payment::{Money, Payment, PaymentDetails, PaymentFilter, PaymentMethod};
use crate::records::{
    Allergy, AuditEvent, Encounter, EncounterRef, NewAllergy, NewAmendment, NewEncounter,
    PatientRecords, RecordRead,
};
use crate::slot::{NewSlot, Slot, SlotFilter, SlotSearch, SlotWindow};
use crate::user::{Credentials, Email, NewPatient, NewUser, User, UserProfile};
use crate::waitlist::{NewWaitlistEntry, Notification, WaitlistEntry};

/// Accounts and their profiles.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
pub trait UserRepository: Send + Sync + 'static {
    /// Stores a patient account and its profile together.
    ///
    /// # Errors
    /// `Conflict(EmailTaken)` when the e-mail is in use.
    fn create_patient(
        &self,
        patient: NewPatient,
    ) -> impl Future<Output = Result<UserProfile, StoreError>> + Send;

    /// Stores an account without a profile (administrators).
    ///
    /// # Errors
    /// `Conflict(EmailTaken)` when the e-mail is in use.
    fn create_user(
        &self,
        user: NewUser,
    ) -> impl Future<Output = Result<UserProfile, StoreError>> + Send;

    /// The account and password hash behind an e-mail, if any (disabled accounts included).
    ///
    /// # Errors
    /// Only infrastructure failures.
    fn find_credentials(
        &self,
        email: &Email,
    ) -> impl Future<Output = Result<Option<Credentials>, StoreError>> + Send;

    /// A user with the profile of their role.
    ///
    /// # Errors
    /// `NotFound` when there is no such user.
    fn profile(&self, id: UserId) -> impl Future<Output = Result<UserProfile, StoreError>> + Send;

    /// The account and password hash of a user id, if any (disabled accounts included).
    ///
    /// # Errors
    /// Only infrastructure failures.
    fn credentials_of(
        &self,
        id: UserId,
    ) -> impl Future<Output = Result<Option<Credentials>, StoreError>> + Send;

    /// Accounts ordered by name, then id.
    ///
    /// # Errors
    /// Only infrastructure failures.
    fn list(
        &self,
        filter: UserFilter,
        page: PageRequest,
    ) -> impl Future<Output = Result<Page<User>, StoreError>> + Send;

    /// Disables or re-enables an account in one transaction with its audit event. Disabling
    /// revokes every session of the user; for a doctor it also marks the profile inactive,
    /// turns their free slots starting after `now` `busy-unavailable` and returns their
    /// future booked or checked-in appointments. Re-enabling marks a doctor active again and
    /// re-opens nothing. Setting the state the account already has changes nothing but
    /// is still audited.
    ///
    /// # Errors
    /// `NotFound`; `Conflict(LastAdmin)` when it would leave no active administrator (the
    /// database decides, so concurrent disables cannot both pass). Nothing is written on error.
    fn set_status(
        &self,
        change: StatusChange,
    ) -> impl Future<Output = Result<StatusOutcome, StoreError>> + Send;

    /// Updates the user's own profile with its audit event, in one transaction.
    ///
    /// # Errors
    /// `NotFound` when the user (or, for patient fields, the patient profile) does not exist.
    fn update_profile(
        &self,
        update: ProfileUpdate,
    ) -> impl Future<Output = Result<UserProfile, StoreError>> + Send;

    /// Stores a new password hash, revokes every other live session of the user and writes
    /// the audit event, in one transaction. Returns how many sessions were revoked.
    ///
    /// # Errors
    /// `NotFound`.
    fn change_password(
        &self,
        change: PasswordChange,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Replaces a hash made with older parameters by `new_hash`, only if the stored hash is
    /// still `old_hash` (a concurrent password change wins). Returns whether it replaced it.
    ///
    /// # Errors
    /// Only infrastructure failures.
    fn rehash_password(
        &self,
        id: UserId,
        old_hash: String,
        new_hash: String,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Stores an account event on its own (login attempts).
    ///
    /// # Errors
    /// Only infrastructure failures.
    fn record_event(
        &self,
        event: NewAccountEvent,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The account events whose subject or actor is the user, newest first.
    ///
    /// # Errors
    /// Only infrastructure failures.
    fn events(
        &self,
        user: UserId,
        page: PageRequest,
    ) -> impl Future<Output = Result<Page<AccountEvent>, StoreError>> + Send;
}

/// A session to store at login.
#[derive(Debug, Clone)]
pub struct NewSession {
    /// Its id.
    pub id: SessionId,
    /// Whose session it is.
    pub user_id: UserId,
    /// SHA-256 of the bearer token; the token itself is never stored.
    pub token_hash: [u8; 32],
    /// Absolute expiry.
    pub expires_at: DateTime<Utc>,
    /// The client's address, for the user's session list.
    pub client_ip: Option<String>,
    /// The client's user agent, for the user's session list.
    pub user_agent: Option<String>,
}

/// Login sessions.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
pub trait SessionRepository: Send + Sync + 'static {
    /// Stores a new session.
    ///
    /// # Errors
    /// Only infrastructure failures.
    fn create(&self, session: NewSession) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Finds the live session of a token hash and marks it used, in one step: a session is
    /// live when it is not revoked, `now` is before its absolute expiry, it was last used
    /// after `idle_since`, and its user is not disabled. Returns the caller, or `None`.
    ///
    /// # Errors
    /// Only infrastructure failures.
    fn touch(
        &self,
        token_hash: [u8; 32],
        now: DateTime<Utc>,
        idle_since: DateTime<Utc>,
    ) -> impl Future<Output = Result<Option<Actor>, StoreError>> + Send;

    /// Revokes a session (idempotent).
    ///
    /// # Errors
    /// Only infrastructure failures.
    fn revoke(
        &self,
        id: SessionId,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The user's sessions that are neither revoked nor past their absolute expiry at
    /// `now`, newest first.
    ///
    /// # Errors
    /// Only infrastructure failures.
    fn list_live(
        &self,
        user: UserId,
        now: DateTime<Utc>,
        page: PageRequest,
    ) -> impl Future<Output = Result<Page<SessionInfo>, StoreError>> + Send;

    /// Revokes one session of the user (idempotent for an already revoked one) and writes
    /// the audit event, in one transaction.
    ///
    /// # Errors
    /// `NotFound` when the user has no session with this id (another user's session is
    /// not found either).
    fn revoke_own(
        &self,
        user: UserId,
        id: SessionId,
        now: DateTime<Utc>,
        event: NewAccountEvent,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Doctors and their profiles.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
pub trait DoctorRepository: Send + Sync + 'static {
    /// Stores a doctor account and profile together.
    ///
    /// # Errors
    /// `Conflict(EmailTaken)` or `Conflict(LicenseTaken)`.
    fn create(&self, doctor: NewDoctor) -> impl Future<Output = Result<Doctor, StoreError>> + Send;

    /// One doctor.
    ///
    /// # Errors
    /// `NotFound` when there is no such doctor.
    fn get(&self, id: UserId) -> impl Future<Output = Result<Doctor, StoreError>> + Send;

    /// Doctors ordered by name, then id.
    ///
    /// # Errors
    /// Only infrastructure failures.
    fn list(
        &self,
        filter: DoctorFilter,
        page: PageRequest,
    ) -> impl Future<Output = Result<Page<Doctor>, StoreError>> + Send;

    /// Updates a doctor's profile with its audit event, in one transaction.
    ///
    /// # Errors
    /// `NotFound`; `Conflict(LicenseTaken)`. Nothing is written on error.
    fn update(
        &self,
        update: DoctorUpdate,
    ) -> impl Future<Output = Result<Doctor, StoreError>> + Send;
}

/// Doctors' bookable slots.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
pub trait SlotRepository: Send + Sync + 'static {
    /// Stores all the slots or none.
    ///
    /// # Errors
    /// `Conflict(SlotOverlap)` when one overlaps another slot of the doctor (or another of
    /// the batch); `NotFound` when the doctor does not exist.
    fn create_many(
        &self,
        slots: Vec<NewSlot>,
    ) -> impl Future<Output = Result<Vec<Slot>, StoreError>> + Send;

    /// One slot, if it exists.
    ///
    /// # Errors
    /// Only infrastructure failures.
    fn find(&self, id: SlotId) -> impl Future<Output = Result<Option<Slot>, StoreError>> + Send;

    /// A doctor's slots ordered by start, then id.
    ///
    /// # Errors
    /// Only infrastructure failures.
    fn list(
        &self,
        filter: SlotFilter,
        page: PageRequest,
    ) -> impl Future<Output = Result<Page<Slot>, StoreError>> + Send;

    /// The slots among `ids` that exist, in any order.
    ///
    /// # Errors
    /// Only infrastructure failures.
    fn find_many(
        &self,
        ids: Vec<SlotId>,
    ) -> impl Future<Output = Result<Vec<Slot>, StoreError>> + Send;

    /// Bookable slots across active doctors — free, not started, not held at the store's
    /// current time — ordered by start, then id.
    ///
    /// # Errors
    /// Only infrastructure failures.
    fn search(
        &self,
        search: SlotSearch,
        page: PageRequest,
    ) -> impl Future<Output = Result<Page<Slot>, StoreError>> + Send;

    /// Holds the slot for `patient` until `until`, if it is free, not started, and not held
    /// by another patient at the store's current time (a hold of one's own is renewed).
    ///
    /// # Errors
    /// `NotFound` when there is no such slot; `Conflict(SlotUnavailable)` otherwise.
    fn hold(
        &self,
        slot: SlotId,
        patient: UserId,
        until: DateTime<Utc>,
    ) -> impl Future<Output = Result<Slot, StoreError>> + Send;

    /// Clears lapsed holds and offers each such slot to its doctor's waitlist, atomically per
    /// slot; returns how many offers were made.
    ///
    /// # Errors
    /// Only infrastructure failures.
    fn offer_lapsed_holds(&self) -> impl Future<Output = Result<u32, StoreError>> + Send;
}

/// The waitlist and the notifications outbox.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
pub trait WaitlistRepository: Send + Sync + 'static {
    /// Adds a patient to a doctor's waitlist.
    ///
    /// # Errors
    /// `NotFound` when the patient or doctor does not exist.
    fn join(
        &self,
        entry: NewWaitlistEntry,
    ) -> impl Future<Output = Result<WaitlistEntry, StoreError>> + Send;

    /// A patient's waitlist entries, newest first.
    ///
    /// # Errors
    /// Only infrastructure failures.
    fn entries(
        &self,
        patient: UserId,
        page: PageRequest,
    ) -> impl Future<Output = Result<Page<WaitlistEntry>, StoreError>> + Send;

    /// The notifications addressed to a user, newest first.
    ///
    /// # Errors
    /// Only infrastructure failures.
    fn notifications(
        &self,
        user: UserId,
        page: PageRequest,
    ) -> impl Future<Output = Result<Page<Notification>, StoreError>> + Send;
}

/// Appointments and the payments created with them.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
pub trait AppointmentRepository: Send + Sync + 'static {
    /// Books atomically: inserts the appointment (copying the slot's doctor and interval),
    /// the slot turns busy, and a pending payment for the doctor's fee is created.
    ///
    /// # Errors
    /// `NotFound` when the slot or patient does not exist; `Conflict(SlotUnavailable)` when
    /// the slot is taken or blocked; `Conflict(PatientOverlap)` / `Conflict(DoctorOverlap)`
    /// when an active appointment overlaps. Nothing is written on error.
    fn book(&self, booking: NewBooking)
    -> impl Future<Output = Result<Booking, StoreError>> + Send;

    /// How many of a patient's appointments are in `status`.
    ///
    /// # Errors
    /// Only infrastructure failures.
    fn count_for_patient(
        &self,
        patient: UserId,
        status: AppointmentStatus,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Books every booking or none, in one transaction. The slots are locked first; if any
    /// is not free, has started, is held by another patient, or overlaps an active
    /// appointment of its patient, nothing is written and those slots are returned.
    ///
    /// # Errors
    /// `NotFound` when a slot or patient does not exist; the conflicts of `book` when a
    /// concurrent writer wins a race the up-front check could not see.
    fn book_series(
        &self,
        bookings: Vec<NewBooking>,
    ) -> impl Future<Output = Result<SeriesOutcome, StoreError>> + Send;

    /// Moves a booked appointment to another slot of its doctor, in place: the new slot is
    /// taken, the old one freed, the payment stays with the appointment — or nothing changes.
    ///
    /// # Errors
    /// `Conflict(InvalidTransition)` when the appointment is no longer booked on `from`;
    /// `Conflict(SlotUnavailable)` when the new slot is taken, blocked or held by another
    /// patient; `Conflict(PatientOverlap)`; `NotFound` when the slot does not exist.
    fn reschedule(
        &self,
        id: AppointmentId,
        from: SlotId,
        to: Slot,
    ) -> impl Future<Output = Result<Booking, StoreError>> + Send;

    /// An appointment with its payment.
    ///
    /// # Errors
    /// `NotFound` when there is no such appointment.
    fn get(&self, id: AppointmentId) -> impl Future<Output = Result<Booking, StoreError>> + Send;

    /// Appointments matching the filter, ordered by start, then id.
    ///
    /// # Errors
    /// Only infrastructure failures.
    fn list(
        &self,
        filter: AppointmentFilter,
        page: PageRequest,
    ) -> impl Future<Output = Result<Page<Appointment>, StoreError>> + Send;

    /// Cancels the appointment if it is still in `expected` status; the slot is freed and a
    /// pending payment cancelled in the same transaction. A paid payment is refunded by
    /// `refund` first, in that same transaction.
    ///
    /// # Errors
    /// `Conflict(InvalidTransition)` when the status is no longer `expected`;
    /// `Conflict(PaymentInProgress)` while an attempt to pay is in flight;
    /// `Conflict(PaymentNotSettled)` when the payment was paid meanwhile and no refund was
    /// given; the refund's conflicts; `NotFound`.
    fn cancel(
        &self,
        cancellation: Cancellation,
        expected: AppointmentStatus,
        refund: Option<NewRefund>,
    ) -> impl Future<Output = Result<Booking, StoreError>> + Send;

    /// Moves the appointment from `expected` to `next` (check-in, complete, no-show).
    ///
    /// # Errors
    /// `Conflict(InvalidTransition)` when the status is no longer `expected` (or the
    /// database's state machine refuses); `NotFound`.
    fn transition(
        &self,
        id: AppointmentId,
        expected: AppointmentStatus,
        next: AppointmentStatus,
    ) -> impl Future<Output = Result<Booking, StoreError>> + Send;
}

/// Weekly schedules, the slots generated from them, and time off. Every write takes the
/// doctor's availability lock first, so writes for one doctor never interleave.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
pub trait AvailabilityRepository: Send + Sync + 'static {
    /// The doctor's stored schedule, if any.
    ///
    /// # Errors
    /// Only infrastructure failures.
    fn schedule(
        &self,
        doctor: UserId,
    ) -> impl Future<Output = Result<Option<Schedule>, StoreError>> + Send;

    /// Every stored schedule (for the periodic extension).
    ///
    /// # Errors
    /// Only infrastructure failures.
    fn schedules(&self) -> impl Future<Output = Result<Vec<Schedule>, StoreError>> + Send;

    /// In one transaction: stores the schedule (bumping its revision), deletes the doctor's
    /// generated slots starting after `now` that are free and have no appointment rows, then
    /// inserts `windows` as free generated slots, skipping any that overlap an existing slot
    /// of the doctor or their time off. Booked, blocked and manual slots are never touched.
    /// A doctor who is not active gets the schedule stored but no slots.
    ///
    /// # Errors
    /// `NotFound` when the doctor does not exist. Nothing is written on error.
    fn replace(
        &self,
        replacement: Replacement,
    ) -> impl Future<Output = Result<Regenerated, StoreError>> + Send;

    /// Inserts the missing `windows` as free generated slots (skipping overlaps with existing
    /// slots and time off), only if the doctor is active and the stored schedule is still at
    /// `revision`; returns how many were inserted.
    ///
    /// # Errors
    /// Only infrastructure failures.
    fn extend(
        &self,
        doctor: UserId,
        revision: i64,
        windows: Vec<SlotWindow>,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// In one transaction: blocks the doctor's free slots overlapping the range, finds the
    /// booked or checked-in appointments overlapping it; if there are any and the request
    /// does not cancel conflicts, rolls back and returns them. Otherwise cancels them (each
    /// paid amount refunded in full first), blocks the slots they freed, stores the time
    /// off and the audit rows of the cancellations.
    ///
    /// # Errors
    /// `Conflict(PaymentInProgress)` when a conflicting appointment's payment has an attempt
    /// in flight; `Conflict(PaymentNotSettled | RefundExceedsPaid)` when a payment changed
    /// meanwhile; `NotFound`. Nothing is written on error.
    fn take_time_off(
        &self,
        time_off: NewTimeOff,
    ) -> impl Future<Output = Result<TimeOffOutcome, StoreError>> + Send;
}

/// Medical records and their audit trail. Every write runs in one transaction that first
/// sets the acting user (`attribution`) for the database's audit trigger; every read
/// inserts its audit event in the transaction that reads.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
pub trait RecordRepository: Send + Sync + 'static {
    /// Whether the doctor has an appointment with the patient that is not cancelled.
    ///
    /// # Errors
    /// Only infrastructure failures.
    fn care_relationship(
        &self,
        patient: UserId,
        doctor: UserId,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Whether a patient with this id exists.
    ///
    /// # Errors
    /// Only infrastructure failures.
    fn patient_exists(
        &self,
        patient: UserId,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// The parties of an encounter, if it exists.
    ///
    /// # Errors
    /// Only infrastructure failures.
    fn encounter_ref(
        &self,
        id: EncounterId,
    ) -> impl Future<Output = Result<Option<EncounterRef>, StoreError>> + Send;

    /// Stores an encounter with all its diagnoses, prescriptions and vitals, and (by
    /// trigger) their audit events, in one transaction.
    ///
    /// # Errors
    /// `Conflict(EncounterExists)` when the appointment has one; `Conflict(AppointmentNotCheckedIn)`
    /// when the appointment is not checked-in or fulfilled; `NotFound` when the appointment
    /// does not match. Nothing is written on error.
    fn create_encounter(
        &self,
        encounter: NewEncounter,
    ) -> impl Future<Output = Result<Encounter, StoreError>> + Send;

    /// Stores an amendment with its replacement lists and audit events, in one
    /// transaction; returns the encounter with every amendment.
    ///
    /// # Errors
    /// `NotFound` when the encounter does not exist or the author is not its doctor.
    fn amend_encounter(
        &self,
        amendment: NewAmendment,
    ) -> impl Future<Output = Result<Encounter, StoreError>> + Send;

    /// Stores an allergy and its audit event.
    ///
    /// # Errors
    /// `NotFound` when the doctor no longer has a care relationship with the patient.
    fn add_allergy(
        &self,
        allergy: NewAllergy,
    ) -> impl Future<Output = Result<Allergy, StoreError>> + Send;

    /// Audits the read, then reads a page of encounters (newest first) and every allergy,
    /// in one transaction: no unaudited read.
    ///
    /// # Errors
    /// Only infrastructure failures.
    fn read_records(
        &self,
        read: RecordRead,
        page: PageRequest,
    ) -> impl Future<Output = Result<PatientRecords, StoreError>> + Send;

    /// Audits the read, then reads every allergy (newest first), in one transaction.
    ///
    /// # Errors
    /// Only infrastructure failures.
    fn read_allergies(
        &self,
        read: RecordRead,
    ) -> impl Future<Output = Result<Vec<Allergy>, StoreError>> + Send;

    /// The patient's audit events, newest first.
    ///
    /// # Errors
    /// Only infrastructure failures.
    fn access_log(
        &self,
        patient: UserId,
        page: PageRequest,
    ) -> impl Future<Output = Result<Page<AuditEvent>, StoreError>> + Send;
}

/// Password hashing (argon2id in production). Implementations must keep the cost off any
/// latency-sensitive thread.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
pub trait PasswordHasher: Send + Sync + 'static {
    /// A PHC-format hash of the password with a fresh salt.
    ///
    /// # Errors
    /// `StoreError::Unavailable` when the hashing capacity is exhausted; `Other` on failure.
    fn hash(&self, password: String) -> impl Future<Output = Result<String, StoreError>> + Send;

    /// Whether the password matches the hash. With `None` (unknown account) it spends the
    /// same effort as a real check and answers `false`, so timing does not reveal accounts.
    ///
    /// # Errors
    /// As for `hash`.
    fn verify(
        &self,
        password: String,
        hash: Option<String>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Whether a stored hash was made with other parameters (or another algorithm) than
    /// new hashes are, so that it should be replaced after the next successful login.
    fn needs_rehash(&self, hash: &str) -> bool;
}

/// A new attempt to pay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAttempt {
    /// Its id, also the gateway idempotency key.
    pub id: AttemptId,
    /// The payment.
    pub payment_id: PaymentId,
    /// How.
    pub method: PaymentMethod,
    /// For card attempts.
    pub card_token: Option<String>,
    /// The payment's full amount.
    pub amount: Money,
    /// Who pays (or records the payment).
    pub created_by: UserId,
    /// Cash and insurance are recorded as already succeeded; card attempts start pending.
    pub succeeded: bool,
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settlement {
    /// Charged; the gateway's reference.
    Succeeded {
        /// The gateway's charge id.
        reference: String,
    },
    /// The card was declined.
    Declined {
        /// The gateway's reason.
        reason: String,
    },
    /// The request failed; nothing was charged.
    Failed {
        /// Why.
        reason: String,
    },
}

/// A refund to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRefund {
    /// Its id.
    pub id: crate::ids::RefundId,
    /// The payment refunded.
    pub payment_id: PaymentId,
    /// How much, in the payment's currency.
    pub amount: Money,
    /// Why.
    pub reason: String,
    /// Who refunds.
    pub created_by: UserId,
}

/// Payments and their ledger (attempts and refunds).
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
pub trait PaymentRepository: Send + Sync + 'static {
    /// A payment with its appointment's people, attempts and refunds.
    ///
    /// # Errors
    /// `NotFound`.
    fn get(&self, id: PaymentId)
    -> impl Future<Output = Result<PaymentDetails, StoreError>> + Send;

    /// Payments matching the filter, newest first (by creation, then id).
    ///
    /// # Errors
    /// Only infrastructure failures.
    fn list(
        &self,
        filter: PaymentFilter,
        page: PageRequest,
    ) -> impl Future<Output = Result<Page<Payment>, StoreError>> + Send;

    /// Records a new attempt (pending, or succeeded for cash/insurance, which pays the
    /// payment in the same transaction).
    ///
    /// # Errors
    /// `Conflict(PaymentNotPending)`; `Conflict(PaymentInProgress)` when another attempt is
    /// in flight; `NotFound`.
    fn begin_attempt(
        &self,
        attempt: NewAttempt,
    ) -> impl Future<Output = Result<PaymentDetails, StoreError>> + Send;

    /// Settles a pending attempt; a success pays the payment in the same transaction.
    ///
    /// # Errors
    /// `Conflict(InvalidTransition)` when the attempt is already settled; `NotFound`.
    fn settle_attempt(
        &self,
        payment: PaymentId,
        attempt: AttemptId,
        settlement: Settlement,
    ) -> impl Future<Output = Result<PaymentDetails, StoreError>> + Send;

    /// Records a refund; the payment's refunded amount and status follow in the same
    /// transaction.
    ///
    /// # Errors
    /// `Conflict(PaymentNotRefundable)`, `Conflict(RefundExceedsPaid)`, `NotFound`.
    fn refund(
        &self,
        refund: NewRefund,
    ) -> impl Future<Output = Result<PaymentDetails, StoreError>> + Send;
}

/// A charge to send to the payment provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChargeRequest {
    /// The provider charges at most once per key: retrying an attempt reuses its key.
    pub idempotency_key: AttemptId,
    /// What to charge.
    pub amount: Money,
    /// The card token from the client-side tokenization.
    pub card_token: String,
}

/// A definitive answer from the provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChargeOutcome {
    /// Charged.
    Succeeded {
        /// The provider's charge id.
        reference: String,
    },
    /// Declined by the issuer; nothing charged.
    Declined {
        /// The provider's reason code.
        reason: String,
    },
}

/// The provider could not give a definitive answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GatewayError {
    /// The card token is unknown to the provider.
    #[error("the card token is not valid")]
    InvalidToken,
    /// The provider is unreachable or failed transiently. Adapters return this only when
    /// nothing was charged (an ambiguous timeout must be resolved by looking the charge up
    /// by its idempotency key first).
    #[error("the payment provider is unavailable: {0}")]
    Unavailable(String),
}

/// The payment provider (a simulated one by default; a real one plugs in here).
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
pub trait PaymentGateway: Send + Sync + 'static {
    /// Charges a card, idempotently per key.
    ///
    /// # Errors
    /// `InvalidToken`, `Unavailable`.
    fn charge(
        &self,
        request: ChargeRequest,
    ) -> impl Future<Output = Result<ChargeOutcome, GatewayError>> + Send;
}

/// What a repeated request with an idempotency key should do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotencyStart {
    /// First use of the key: do the work, then `complete` or `release`.
    Started,
    /// Already done: answer with the stored response.
    Replay {
        /// Stored HTTP status.
        status: u16,
        /// Stored body.
        body: Vec<u8>,
    },
    /// The key was used with a different request.
    Mismatch,
    /// The first request with this key is still running.
    InProgress,
}

/// Idempotency keys, scoped to the user, kept at least 24 hours.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
pub trait IdempotencyRepository: Send + Sync + 'static {
    /// Claims `(user, key)` for a request with this fingerprint, atomically: of concurrent
    /// claims exactly one gets `Started`. A claim still in progress from before
    /// `stale_before` (its process died) is taken over.
    ///
    /// # Errors
    /// Only infrastructure failures.
    fn begin(
        &self,
        user: UserId,
        key: String,
        fingerprint: [u8; 32],
        stale_before: DateTime<Utc>,
    ) -> impl Future<Output = Result<IdempotencyStart, StoreError>> + Send;

    /// Stores the response of a claimed key.
    ///
    /// # Errors
    /// Only infrastructure failures.
    fn complete(
        &self,
        user: UserId,
        key: String,
        status: u16,
        body: Vec<u8>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Gives a claim up (the work failed transiently and may be retried with the key).
    ///
    /// # Errors
    /// Only infrastructure failures.
    fn release(
        &self,
        user: UserId,
        key: String,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}
