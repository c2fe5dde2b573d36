//! Moving an appointment to another slot, and booking a recurring series all or none.

use std::collections::HashSet;

use super::policy::{CancelRefusal, can_cancel};
use super::service::{AppointmentError, AppointmentService, patient_for};
use super::{AppointmentStatus, Booking, NewBooking, SeriesOutcome};
use crate::actor::Actor;
use crate::clock::Clock;
use crate::ids::{AppointmentId, PaymentId, SlotId, UserId};
use crate::ports::{AppointmentRepository, SlotRepository};
use crate::services::Ports;
use crate::user::Role;
use crate::validation::ValidationErrors;

/// The most appointments one series may book (a year of weekly visits).
pub const MAX_SERIES: usize = 52;

/// A validated request to book several slots at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeriesRequest {
    /// The slots, in the order the patient wants them.
    pub slot_ids: Vec<SlotId>,
    /// Why the patient comes (the same for every visit).
    pub reason: String,
    /// For whom: required when an admin books, optional (= self) for a patient.
    pub patient_id: Option<UserId>,
}

impl<P: Ports> AppointmentService<P> {
    /// How often a patient did not come (administrators).
    ///
    /// # Errors
    /// `Forbidden` for anyone but an administrator.
    pub async fn no_show_count(
        &self,
        actor: &Actor,
        patient: UserId,
    ) -> Result<u64, AppointmentError> {
        if !actor.is_admin() {
            return Err(AppointmentError::Forbidden);
        }
        Ok(self
            .adapters
            .appointments
            .count_for_patient(patient, AppointmentStatus::NoShow)
            .await?)
    }

    /// Moves a booked appointment to another free slot of the same doctor, atomically: the
    /// old slot is freed, the new one taken, and the payment stays with the appointment.
    /// Patients move their own appointments until the cancellation cut-off; admins any.
    ///
    /// # Errors
    /// `NotFound` (appointment or slot), `Forbidden` (doctors), `NotReschedulable`,
    /// `CancellationWindowClosed`, `Validation` (same slot, another doctor's slot),
    /// `SlotUnavailable`, `PatientOverlap`.
    pub async fn reschedule(
        &self,
        actor: &Actor,
        id: AppointmentId,
        slot_id: SlotId,
    ) -> Result<Booking, AppointmentError> {
        let current = self.get(actor, id).await?.appointment;
        if actor.role == Role::Doctor {
            return Err(AppointmentError::Forbidden);
        }
        if current.status != AppointmentStatus::Booked {
            return Err(AppointmentError::NotReschedulable(current.status));
        }
        let now = self.adapters.clock.now();
        // moving frees the old slot: the same cut-off as cancelling it
        if let Err(CancelRefusal::WindowClosed) = can_cancel(&current, actor, now, self.policy) {
            return Err(AppointmentError::CancellationWindowClosed);
        }
        let slot = self
            .adapters
            .slots
            .find(slot_id)
            .await?
            .ok_or(AppointmentError::NotFound)?;
        if slot.id == current.slot_id {
            return Err(AppointmentError::Validation(ValidationErrors::single(
                "slot_id",
                "is the appointment's current slot",
            )));
        }
        // the payment was created for this doctor's fee; another doctor means a new booking
        if slot.doctor_id != current.doctor_id {
            return Err(AppointmentError::Validation(ValidationErrors::single(
                "slot_id",
                "must be a slot of the same doctor; book another doctor separately",
            )));
        }
        if let Some(reason) = slot.unavailable_to(current.patient_id, now) {
            return Err(AppointmentError::SlotUnavailable(reason));
        }
        Ok(self
            .adapters
            .appointments
            .reschedule(id, current.slot_id, slot)
            .await?)
    }

    /// Books several slots for one patient, all or none.
    ///
    /// # Errors
    /// `Forbidden`, `Validation` (empty, too many, repeated or mutually overlapping slots),
    /// `NotFound` (a slot), `SeriesUnavailable` listing every slot that stands in the way.
    pub async fn book_series(
        &self,
        actor: &Actor,
        request: SeriesRequest,
    ) -> Result<Vec<Booking>, AppointmentError> {
        let patient_id = patient_for(actor, request.patient_id)?;
        let mut errors = ValidationErrors::new();
        if request.slot_ids.is_empty() {
            errors.push("slot_ids", "at least one slot is required");
        }
        if request.slot_ids.len() > MAX_SERIES {
            errors.push("slot_ids", format!("at most {MAX_SERIES} slots per series"));
        }
        let mut seen = HashSet::new();
        for (index, slot) in request.slot_ids.iter().enumerate() {
            if !seen.insert(*slot) {
                errors.push(format!("slot_ids[{index}]"), "appears twice");
            }
        }
        errors.into_result().map_err(AppointmentError::Validation)?;

        let mut slots = self
            .adapters
            .slots
            .find_many(request.slot_ids.clone())
            .await?;
        if slots.len() != request.slot_ids.len() {
            return Err(AppointmentError::NotFound);
        }
        slots.sort_by_key(|slot| (slot.starts_at, slot.id));
        let mut errors = ValidationErrors::new();
        for pair in slots.windows(2) {
            if let [earlier, later] = pair
                && later.starts_at < earlier.ends_at
            {
                errors.push(
                    "slot_ids",
                    format!("slots {} and {} overlap", earlier.id, later.id),
                );
            }
        }
        errors.into_result().map_err(AppointmentError::Validation)?;
        let now = self.adapters.clock.now();
        let unavailable: Vec<SlotId> = request
            .slot_ids
            .iter()
            .filter(|id| {
                slots
                    .iter()
                    .find(|slot| slot.id == **id)
                    .is_some_and(|slot| slot.unavailable_to(patient_id, now).is_some())
            })
            .copied()
            .collect();
        if !unavailable.is_empty() {
            return Err(AppointmentError::SeriesUnavailable(unavailable));
        }

        let bookings = request
            .slot_ids
            .iter()
            .map(|slot_id| NewBooking {
                appointment_id: AppointmentId::new(),
                payment_id: PaymentId::new(),
                patient_id,
                slot_id: *slot_id,
                reason: request.reason.clone(),
                booked_by: actor.user_id,
            })
            .collect();
        match self.adapters.appointments.book_series(bookings).await? {
            SeriesOutcome::Booked(booked) => Ok(booked),
            SeriesOutcome::Unavailable(slots) => Err(AppointmentError::SeriesUnavailable(slots)),
        }
    }
}
