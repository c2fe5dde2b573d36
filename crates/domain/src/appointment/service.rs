//! Booking, reading and cancelling appointments.

use super::policy::{CancelRefusal, CancellationPolicy, can_cancel, is_visible_to};
use super::{AppointmentFilter, AppointmentStatus, Booking, Cancellation, NewBooking};
use crate::actor::Actor;
use crate::clock::Clock;
use crate::error::{Conflict, StoreError};
use crate::ids::{AppointmentId, PaymentId, RefundId, SlotId, UserId};
use crate::page::{Page, PageRequest};
use crate::payment::Money;
use crate::ports::AppointmentRepository;
use crate::ports::NewRefund;
use crate::services::{Adapters, Ports};
use crate::user::Role;
use crate::validation::ValidationErrors;

use super::Appointment;

/// A validated booking request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookRequest {
    /// The slot to take.
    pub slot_id: SlotId,
    /// Why the patient comes (may be empty, at most 2000 characters).
    pub reason: String,
    /// For whom: required when an admin books, optional (= self) for a patient.
    pub patient_id: Option<UserId>,
}

/// Why an appointment operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AppointmentError {
    /// No such appointment, slot or patient — or one the caller may not see.
    #[error("not found")]
    NotFound,
    /// The caller sees the appointment but may not do this.
    #[error("not allowed for this user")]
    Forbidden,
    /// The request is invalid.
    #[error("invalid request: {0}")]
    Validation(ValidationErrors),
    /// The slot is taken, blocked or already started.
    #[error("slot unavailable: {0}")]
    SlotUnavailable(&'static str),
    /// The patient has another appointment at that time.
    #[error("the patient already has an appointment at that time")]
    PatientOverlap,
    /// A patient tried to cancel after the cut-off.
    #[error("the cancellation window has closed")]
    CancellationWindowClosed,
    /// The state machine refuses the change.
    #[error("cannot change an appointment from {from} to {to}")]
    InvalidTransition {
        /// Current status.
        from: AppointmentStatus,
        /// Requested status.
        to: AppointmentStatus,
    },
    /// Some slots of a series cannot be booked; nothing was booked.
    #[error("{} of the requested slots cannot be booked", .0.len())]
    SeriesUnavailable(Vec<SlotId>),
    /// Only a booked appointment moves to another slot.
    #[error("a {0} appointment cannot be rescheduled")]
    NotReschedulable(AppointmentStatus),
    /// An attempt to pay is in flight; cancel once it has settled.
    #[error("a payment for this appointment is in progress; retry shortly")]
    PaymentInProgress,
    /// The payment changed while cancelling (paid or refunded meanwhile); retry.
    #[error("the payment changed while cancelling; retry")]
    PaymentChanged,
    /// Storage failure.
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for AppointmentError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound => Self::NotFound,
            StoreError::Conflict(Conflict::SlotUnavailable | Conflict::DoctorOverlap) => {
                Self::SlotUnavailable(
                    "the slot is taken, blocked, held by another patient or already started",
                )
            }
            StoreError::Conflict(Conflict::PatientOverlap) => Self::PatientOverlap,
            other => Self::Store(other),
        }
    }
}

/// Whom a booking is for: a patient books for themself, an admin for a named patient.
///
/// # Errors
/// `Forbidden` (doctors; a patient naming someone else), `Validation` (an admin naming nobody).
pub(super) fn patient_for(
    actor: &Actor,
    requested: Option<UserId>,
) -> Result<UserId, AppointmentError> {
    match (actor.role, requested) {
        (Role::Doctor, _) => Err(AppointmentError::Forbidden),
        (Role::Patient, None) => Ok(actor.user_id),
        (Role::Patient, Some(patient)) if actor.is(patient) => Ok(patient),
        (Role::Patient, Some(_)) => Err(AppointmentError::Forbidden),
        (Role::Admin, Some(patient)) => Ok(patient),
        (Role::Admin, None) => Err(AppointmentError::Validation(ValidationErrors::single(
            "patient_id",
            "required when an administrator books",
        ))),
    }
}

/// Booking, reading and cancelling appointments.
pub struct AppointmentService<P: Ports> {
    pub(super) adapters: Adapters<P>,
    pub(super) policy: CancellationPolicy,
}

impl<P: Ports> AppointmentService<P> {
    /// A service over the given adapters.
    #[must_use]
    pub fn new(adapters: Adapters<P>, policy: CancellationPolicy) -> Self {
        Self { adapters, policy }
    }

    /// Books a free, future slot: a patient for themself, an admin for any patient. The
    /// appointment, the busy slot and the pending payment are written atomically; the store
    /// refuses a slot that is taken, blocked, started or held by another patient.
    ///
    /// # Errors
    /// `Forbidden` (doctors; a patient booking for someone else), `Validation` (an admin
    /// without `patient_id`), `NotFound` (slot or patient), `SlotUnavailable`, `PatientOverlap`.
    pub async fn book(
        &self,
        actor: &Actor,
        request: BookRequest,
    ) -> Result<Booking, AppointmentError> {
        let patient_id = patient_for(actor, request.patient_id)?;
        // whether the slot can be taken (free, not started, not held by someone else) is
        // decided by the store in the booking's own statement: reading it first would cost
        // a round trip and could be stale by the time of the insert anyway
        let booking = NewBooking {
            appointment_id: AppointmentId::new(),
            payment_id: PaymentId::new(),
            patient_id,
            slot_id: request.slot_id,
            reason: request.reason,
            booked_by: actor.user_id,
        };
        Ok(self.adapters.appointments.book(booking).await?)
    }

    /// One appointment with its payment, if the caller may see it.
    ///
    /// # Errors
    /// `NotFound` when it does not exist or is not the caller's.
    pub async fn get(&self, actor: &Actor, id: AppointmentId) -> Result<Booking, AppointmentError> {
        let booking = self.adapters.appointments.get(id).await?;
        if !is_visible_to(&booking.appointment, actor) {
            return Err(AppointmentError::NotFound);
        }
        Ok(booking)
    }

    /// The caller's appointments: a patient's own, a doctor's own, or any for an admin.
    ///
    /// # Errors
    /// Storage failures only.
    pub async fn list(
        &self,
        actor: &Actor,
        mut filter: AppointmentFilter,
        page: PageRequest,
    ) -> Result<Page<Appointment>, AppointmentError> {
        match actor.role {
            Role::Patient => filter.patient_id = Some(actor.user_id),
            Role::Doctor => filter.doctor_id = Some(actor.user_id),
            Role::Admin => {}
        }
        Ok(self.adapters.appointments.list(filter, page).await?)
    }

    /// Cancels an appointment: the slot turns free and an unpaid payment is cancelled, in one
    /// transaction. Patients may cancel their own booked appointments until the cut-off;
    /// the doctor and admins at any time before it is finished.
    ///
    /// # Errors
    /// `NotFound`, `InvalidTransition`, `CancellationWindowClosed`, `PaymentInProgress`,
    /// `PaymentChanged`.
    pub async fn cancel(
        &self,
        actor: &Actor,
        id: AppointmentId,
        reason: Option<String>,
    ) -> Result<Booking, AppointmentError> {
        let booking = self.get(actor, id).await?;
        let current = &booking.appointment;
        let now = self.adapters.clock.now();
        can_cancel(current, actor, now, self.policy).map_err(|refusal| match refusal {
            CancelRefusal::WindowClosed => AppointmentError::CancellationWindowClosed,
            CancelRefusal::InvalidTransition => AppointmentError::InvalidTransition {
                from: current.status,
                to: AppointmentStatus::Cancelled,
            },
        })?;
        // a paid appointment is refunded in full in the cancelling transaction (docs/payments.md)
        let refundable = booking.payment.refundable_cents();
        let refund = (refundable > 0).then(|| NewRefund {
            id: RefundId::new(),
            payment_id: booking.payment.id,
            amount: Money {
                amount_cents: refundable,
                currency: booking.payment.amount.currency.clone(),
            },
            reason: format!("appointment cancelled by the {}", actor.role),
            created_by: actor.user_id,
        });
        let cancellation = Cancellation {
            appointment_id: id,
            cancelled_by: actor.user_id,
            reason,
            at: now,
        };
        let from = current.status;
        self.adapters
            .appointments
            .cancel(cancellation, from, refund)
            .await
            .map_err(|error| match error {
                // the status moved on between our read and the update
                StoreError::Conflict(Conflict::InvalidTransition) => {
                    AppointmentError::InvalidTransition {
                        from,
                        to: AppointmentStatus::Cancelled,
                    }
                }
                StoreError::Conflict(Conflict::PaymentInProgress) => {
                    AppointmentError::PaymentInProgress
                }
                StoreError::Conflict(
                    Conflict::PaymentNotSettled
                    | Conflict::RefundExceedsPaid
                    | Conflict::PaymentNotRefundable,
                ) => AppointmentError::PaymentChanged,
                other => other.into(),
            })
    }
}

impl<P: Ports> AppointmentService<P> {
    /// Moves an appointment along its lifecycle: check-in and completion by its doctor or
    /// an admin; no-show likewise, and only once the start time has passed.
    ///
    /// # Errors
    /// `NotFound` (not visible), `Forbidden` (patients), `InvalidTransition`.
    pub async fn advance(
        &self,
        actor: &Actor,
        id: AppointmentId,
        next: AppointmentStatus,
    ) -> Result<Booking, AppointmentError> {
        let booking = self.get(actor, id).await?;
        if actor.role == Role::Patient {
            return Err(AppointmentError::Forbidden);
        }
        let from = booking.appointment.status;
        let refused = AppointmentError::InvalidTransition { from, to: next };
        if next == AppointmentStatus::Cancelled || !from.can_become(next) {
            return Err(refused);
        }
        if next == AppointmentStatus::NoShow
            && self.adapters.clock.now() < booking.appointment.starts_at
        {
            return Err(refused);
        }
        self.adapters
            .appointments
            .transition(id, from, next)
            .await
            .map_err(|error| match error {
                StoreError::Conflict(Conflict::InvalidTransition) => {
                    AppointmentError::InvalidTransition { from, to: next }
                }
                other => other.into(),
            })
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;

    use super::*;
    use crate::payment::PaymentStatus;
    use crate::slot::Slot;
    use crate::test_support::{Mocks, block_on, booking_for, free_slot, now};

    fn actor(role: Role) -> Actor {
        Actor {
            user_id: UserId::new(),
            role,
            session_id: None,
        }
    }

    fn expect_slot(mocks: &mut Mocks, slot: &Slot) {
        let found = slot.clone();
        mocks.slots.expect_find().returning(move |_| {
            let found = found.clone();
            Box::pin(async move { Ok(Some(found)) })
        });
    }

    fn request(slot: &Slot, patient_id: Option<UserId>) -> BookRequest {
        BookRequest {
            slot_id: slot.id,
            reason: "cough".into(),
            patient_id,
        }
    }

    #[test]
    fn patient_books_a_free_future_slot_for_themself() {
        let patient = actor(Role::Patient);
        let slot = free_slot(TimeDelta::days(2));
        let mut mocks = Mocks::at(now());
        expect_slot(&mut mocks, &slot);
        let booked_slot = slot.clone();
        let patient_id = patient.user_id;
        mocks
            .appointments
            .expect_book()
            .withf(move |new| {
                new.patient_id == patient_id && new.booked_by == patient_id && new.reason == "cough"
            })
            .times(1)
            .returning(move |new| {
                let booking = booking_for(&new, &booked_slot);
                Box::pin(async move { Ok(booking) })
            });
        let service = AppointmentService::new(mocks.build(), CancellationPolicy::default());
        let result = block_on(service.book(&patient, request(&slot, None)));
        let booking = result.map_err(|e| e.to_string());
        assert_eq!(
            booking.map(|b| (b.appointment.patient_id, b.payment.status)),
            Ok((patient_id, PaymentStatus::Pending))
        );
    }

    #[test]
    fn doctors_cannot_book_and_patients_cannot_book_for_others() {
        let slot = free_slot(TimeDelta::days(2));
        // no expectations: any port call would panic, so the refusal happens before storage
        let service =
            AppointmentService::new(Mocks::at(now()).build(), CancellationPolicy::default());
        let doctor = block_on(service.book(&actor(Role::Doctor), request(&slot, None)));
        assert!(matches!(doctor, Err(AppointmentError::Forbidden)));
        let other =
            block_on(service.book(&actor(Role::Patient), request(&slot, Some(UserId::new()))));
        assert!(matches!(other, Err(AppointmentError::Forbidden)));
        let admin = block_on(service.book(&actor(Role::Admin), request(&slot, None)));
        assert!(
            matches!(admin, Err(AppointmentError::Validation(e)) if e.fields()[0].field == "patient_id")
        );
    }

    #[test]
    fn admin_books_for_a_named_patient() {
        let admin = actor(Role::Admin);
        let patient_id = UserId::new();
        let slot = free_slot(TimeDelta::hours(1));
        let mut mocks = Mocks::at(now());
        expect_slot(&mut mocks, &slot);
        let booked_slot = slot.clone();
        let admin_id = admin.user_id;
        mocks
            .appointments
            .expect_book()
            .withf(move |new| new.patient_id == patient_id && new.booked_by == admin_id)
            .times(1)
            .returning(move |new| {
                let booking = booking_for(&new, &booked_slot);
                Box::pin(async move { Ok(booking) })
            });
        let service = AppointmentService::new(mocks.build(), CancellationPolicy::default());
        assert!(block_on(service.book(&admin, request(&slot, Some(patient_id)))).is_ok());
    }

    #[test]
    fn an_unknown_slot_is_not_found_and_nothing_but_the_booking_is_asked() {
        let patient = actor(Role::Patient);
        // no slot expectations: the service must not read the slot first (a round trip)
        let mut mocks = Mocks::at(now());
        mocks
            .appointments
            .expect_book()
            .times(1)
            .returning(|_| Box::pin(async { Err(StoreError::NotFound) }));
        let service = AppointmentService::new(mocks.build(), CancellationPolicy::default());
        let unknown =
            block_on(service.book(&patient, request(&free_slot(TimeDelta::days(1)), None)));
        assert!(matches!(unknown, Err(AppointmentError::NotFound)));
    }

    #[test]
    fn losing_a_race_in_the_store_is_a_conflict_not_a_failure() {
        let patient = actor(Role::Patient);
        let slot = free_slot(TimeDelta::days(1));
        for (conflict, expect_overlap) in [
            (Conflict::SlotUnavailable, false),
            (Conflict::DoctorOverlap, false),
            (Conflict::PatientOverlap, true),
        ] {
            let mut mocks = Mocks::at(now());
            expect_slot(&mut mocks, &slot);
            mocks
                .appointments
                .expect_book()
                .returning(move |_| Box::pin(async move { Err(conflict.into()) }));
            let service = AppointmentService::new(mocks.build(), CancellationPolicy::default());
            let result = block_on(service.book(&patient, request(&slot, None)));
            if expect_overlap {
                assert!(matches!(result, Err(AppointmentError::PatientOverlap)));
            } else {
                assert!(matches!(result, Err(AppointmentError::SlotUnavailable(_))));
            }
        }
    }

    fn cancel_with(
        actor: &Actor,
        booking: &Booking,
        at: DateTime<Utc>,
        expect_store: bool,
    ) -> Result<Booking, AppointmentError> {
        let mut mocks = Mocks::at(at);
        let existing = booking.clone();
        mocks.appointments.expect_get().returning(move |_| {
            let existing = existing.clone();
            Box::pin(async move { Ok(existing) })
        });
        let cancelled = booking.clone();
        let by = actor.user_id;
        mocks
            .appointments
            .expect_cancel()
            .withf(move |c, expected, refund| {
                c.cancelled_by == by && *expected == AppointmentStatus::Booked && refund.is_none()
            })
            .times(usize::from(expect_store))
            .returning(move |_, _, _| {
                let mut cancelled = cancelled.clone();
                cancelled.appointment.status = AppointmentStatus::Cancelled;
                Box::pin(async move { Ok(cancelled) })
            });
        let service = AppointmentService::new(mocks.build(), CancellationPolicy::default());
        block_on(service.cancel(actor, booking.appointment.id, Some("sick".into())))
    }

    use chrono::{DateTime, Utc};

    #[test]
    fn cancel_applies_visibility_and_cutoff() {
        let slot = free_slot(TimeDelta::days(3));
        let new = NewBooking {
            appointment_id: AppointmentId::new(),
            payment_id: PaymentId::new(),
            patient_id: UserId::new(),
            slot_id: slot.id,
            reason: String::new(),
            booked_by: UserId::new(),
        };
        let booking = booking_for(&new, &slot);
        let owner = Actor {
            user_id: new.patient_id,
            role: Role::Patient,
            session_id: None,
        };
        let stranger = actor(Role::Patient);
        let other_doctor = actor(Role::Doctor);
        let own_doctor = Actor {
            user_id: slot.doctor_id,
            role: Role::Doctor,
            session_id: None,
        };

        assert!(matches!(
            cancel_with(&stranger, &booking, now(), false),
            Err(AppointmentError::NotFound)
        ));
        assert!(matches!(
            cancel_with(&other_doctor, &booking, now(), false),
            Err(AppointmentError::NotFound)
        ));
        let late = slot.starts_at - TimeDelta::hours(1);
        assert!(matches!(
            cancel_with(&owner, &booking, late, false),
            Err(AppointmentError::CancellationWindowClosed)
        ));
        assert!(cancel_with(&own_doctor, &booking, late, true).is_ok());
        assert!(cancel_with(&owner, &booking, now(), true).is_ok());
    }

    #[test]
    fn cancelling_a_paid_appointment_refunds_what_is_left_in_the_same_call() {
        let slot = free_slot(TimeDelta::days(3));
        let new = NewBooking {
            appointment_id: AppointmentId::new(),
            payment_id: PaymentId::new(),
            patient_id: UserId::new(),
            slot_id: slot.id,
            reason: String::new(),
            booked_by: UserId::new(),
        };
        let mut booking = booking_for(&new, &slot);
        booking.payment.status = PaymentStatus::PartiallyRefunded;
        booking.payment.refunded_cents = 1000;
        booking.payment.paid_at = Some(now());
        let admin = actor(Role::Admin);
        let mut mocks = Mocks::at(now());
        let existing = booking.clone();
        mocks.appointments.expect_get().returning(move |_| {
            let existing = existing.clone();
            Box::pin(async move { Ok(existing) })
        });
        let payment_id = booking.payment.id;
        let by = admin.user_id;
        let after = booking.clone();
        mocks
            .appointments
            .expect_cancel()
            .withf(move |_, _, refund| {
                refund.as_ref().is_some_and(|r| {
                    r.payment_id == payment_id
                        && r.amount.amount_cents == 4000
                        && r.amount.currency == "EUR"
                        && r.created_by == by
                })
            })
            .times(1)
            .returning(move |_, _, _| {
                let after = after.clone();
                Box::pin(async move { Ok(after) })
            });
        let service = AppointmentService::new(mocks.build(), CancellationPolicy::default());
        assert!(block_on(service.cancel(&admin, booking.appointment.id, None)).is_ok());
    }

    #[test]
    fn lifecycle_rules_who_and_when() {
        let slot = free_slot(TimeDelta::days(1));
        let new = NewBooking {
            appointment_id: AppointmentId::new(),
            payment_id: PaymentId::new(),
            patient_id: UserId::new(),
            slot_id: slot.id,
            reason: String::new(),
            booked_by: UserId::new(),
        };
        let booking = booking_for(&new, &slot);
        let doctor = Actor {
            user_id: slot.doctor_id,
            role: Role::Doctor,
            session_id: None,
        };
        let patient = Actor {
            user_id: new.patient_id,
            role: Role::Patient,
            session_id: None,
        };
        let run = |actor: Actor, next: AppointmentStatus, at: DateTime<Utc>, stored: bool| {
            let mut mocks = Mocks::at(at);
            let existing = booking.clone();
            mocks.appointments.expect_get().returning(move |_| {
                let existing = existing.clone();
                Box::pin(async move { Ok(existing) })
            });
            let after = booking.clone();
            mocks
                .appointments
                .expect_transition()
                .withf(move |_, from, to| *from == AppointmentStatus::Booked && *to == next)
                .times(usize::from(stored))
                .returning(move |_, _, _| {
                    let after = after.clone();
                    Box::pin(async move { Ok(after) })
                });
            let service = AppointmentService::new(mocks.build(), CancellationPolicy::default());
            block_on(service.advance(&actor, booking.appointment.id, next))
        };
        assert!(run(doctor, AppointmentStatus::CheckedIn, now(), true).is_ok());
        assert!(matches!(
            run(patient, AppointmentStatus::CheckedIn, now(), false),
            Err(AppointmentError::Forbidden)
        ));
        // no-show only after the start; fulfilled only after check-in; cancel has its own route
        assert!(matches!(
            run(doctor, AppointmentStatus::NoShow, now(), false),
            Err(AppointmentError::InvalidTransition { .. })
        ));
        assert!(
            run(
                doctor,
                AppointmentStatus::NoShow,
                slot.starts_at + TimeDelta::minutes(1),
                true
            )
            .is_ok()
        );
        assert!(matches!(
            run(doctor, AppointmentStatus::Fulfilled, now(), false),
            Err(AppointmentError::InvalidTransition { .. })
        ));
        assert!(matches!(
            run(doctor, AppointmentStatus::Cancelled, now(), false),
            Err(AppointmentError::InvalidTransition { .. })
        ));
        let stranger = Actor {
            user_id: UserId::new(),
            role: Role::Doctor,
            session_id: None,
        };
        assert!(matches!(
            run(stranger, AppointmentStatus::CheckedIn, now(), false),
            Err(AppointmentError::NotFound)
        ));
    }
}
