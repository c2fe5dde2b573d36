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

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;

    use super::*;
    use crate::appointment::{Appointment, CancellationPolicy};
    use crate::error::{Conflict, StoreError};
    use crate::slot::{Slot, SlotStatus};
    use crate::test_support::{Mocks, block_on, booking_for, free_slot, now};

    fn actor(role: Role) -> Actor {
        Actor {
            user_id: UserId::new(),
            role,
            session_id: None,
        }
    }

    fn booked(patient: &Actor, slot: &Slot) -> Booking {
        booking_for(
            &NewBooking {
                appointment_id: AppointmentId::new(),
                payment_id: PaymentId::new(),
                patient_id: patient.user_id,
                slot_id: slot.id,
                reason: String::new(),
                booked_by: patient.user_id,
            },
            slot,
        )
    }

    fn expect_get(mocks: &mut Mocks, booking: &Booking) {
        let found = booking.clone();
        mocks.appointments.expect_get().returning(move |_| {
            let found = found.clone();
            Box::pin(async move { Ok(found) })
        });
    }

    fn expect_find(mocks: &mut Mocks, slot: &Slot) {
        let found = slot.clone();
        mocks.slots.expect_find().returning(move |_| {
            let found = found.clone();
            Box::pin(async move { Ok(Some(found)) })
        });
    }

    fn service(mocks: Mocks) -> AppointmentService<crate::test_support::MockPorts> {
        AppointmentService::new(mocks.build(), CancellationPolicy::default())
    }

    fn same_doctor(slot: &Slot, starts_in: TimeDelta) -> Slot {
        Slot {
            doctor_id: slot.doctor_id,
            ..free_slot(starts_in)
        }
    }

    #[test]
    fn a_patient_moves_their_booking_to_a_free_slot_of_the_same_doctor() {
        let patient = actor(Role::Patient);
        let old = free_slot(TimeDelta::days(3));
        let new = same_doctor(&old, TimeDelta::days(4));
        let current = booked(&patient, &old);
        let mut mocks = Mocks::at(now());
        expect_get(&mut mocks, &current);
        expect_find(&mut mocks, &new);
        let moved = Booking {
            appointment: Appointment {
                slot_id: new.id,
                ..current.appointment.clone()
            },
            ..current.clone()
        };
        let (from, to) = (old.id, new.id);
        mocks
            .appointments
            .expect_reschedule()
            .withf(move |_, f, t| *f == from && t.id == to)
            .times(1)
            .returning(move |_, _, _| {
                let moved = moved.clone();
                Box::pin(async move { Ok(moved) })
            });
        let result = block_on(service(mocks).reschedule(&patient, current.appointment.id, new.id));
        assert_eq!(result.map(|b| b.appointment.slot_id).ok(), Some(new.id));
    }

    #[test]
    fn rescheduling_is_refused_before_writing_when_the_rules_say_no() {
        let patient = actor(Role::Patient);
        let old = free_slot(TimeDelta::days(3));
        let current = booked(&patient, &old);
        let cases: Vec<(Actor, Booking, Slot, &str)> = vec![
            (
                actor(Role::Doctor),
                Booking {
                    appointment: Appointment {
                        doctor_id: old.doctor_id,
                        ..current.appointment.clone()
                    },
                    ..current.clone()
                },
                same_doctor(&old, TimeDelta::days(4)),
                "forbidden",
            ),
            (
                patient,
                Booking {
                    appointment: Appointment {
                        status: AppointmentStatus::CheckedIn,
                        ..current.appointment.clone()
                    },
                    ..current.clone()
                },
                same_doctor(&old, TimeDelta::days(4)),
                "not reschedulable",
            ),
            (
                patient,
                booked(&patient, &free_slot(TimeDelta::hours(2))),
                same_doctor(&old, TimeDelta::days(4)),
                "window",
            ),
            (
                patient,
                current.clone(),
                free_slot(TimeDelta::days(4)),
                "other doctor",
            ),
            (
                patient,
                current.clone(),
                Slot {
                    status: SlotStatus::Busy,
                    ..same_doctor(&old, TimeDelta::days(4))
                },
                "taken",
            ),
            (
                patient,
                current.clone(),
                Slot {
                    held_by: Some(UserId::new()),
                    held_until: Some(now() + TimeDelta::minutes(3)),
                    ..same_doctor(&old, TimeDelta::days(4))
                },
                "held",
            ),
        ];
        for (caller, existing, target, case) in cases {
            let mut mocks = Mocks::at(now());
            // the doctor case: make the appointment theirs so it is visible
            let existing = if caller.role == Role::Doctor {
                Booking {
                    appointment: Appointment {
                        doctor_id: caller.user_id,
                        ..existing.appointment
                    },
                    ..existing
                }
            } else {
                existing
            };
            expect_get(&mut mocks, &existing);
            expect_find(&mut mocks, &target);
            let result =
                block_on(service(mocks).reschedule(&caller, existing.appointment.id, target.id));
            let expected = match case {
                "forbidden" => matches!(result, Err(AppointmentError::Forbidden)),
                "not reschedulable" => {
                    matches!(result, Err(AppointmentError::NotReschedulable(_)))
                }
                "window" => matches!(result, Err(AppointmentError::CancellationWindowClosed)),
                "other doctor" => matches!(result, Err(AppointmentError::Validation(_))),
                _ => matches!(result, Err(AppointmentError::SlotUnavailable(_))),
            };
            assert!(expected, "{case}: {result:?}");
        }
    }

    #[test]
    fn a_series_names_every_unavailable_slot_without_writing() {
        let patient = actor(Role::Patient);
        let free = free_slot(TimeDelta::days(7));
        let busy = Slot {
            status: SlotStatus::Busy,
            ..free_slot(TimeDelta::days(14))
        };
        let held = Slot {
            held_by: Some(UserId::new()),
            held_until: Some(now() + TimeDelta::minutes(1)),
            ..free_slot(TimeDelta::days(21))
        };
        let mut mocks = Mocks::at(now());
        let all = vec![free.clone(), busy.clone(), held.clone()];
        mocks.slots.expect_find_many().returning(move |_| {
            let all = all.clone();
            Box::pin(async move { Ok(all) })
        });
        let request = SeriesRequest {
            slot_ids: vec![held.id, free.id, busy.id],
            reason: String::new(),
            patient_id: None,
        };
        let result = block_on(service(mocks).book_series(&patient, request));
        match result {
            Err(AppointmentError::SeriesUnavailable(slots)) => {
                assert_eq!(slots, vec![held.id, busy.id]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_series_refuses_repeats_overlaps_and_unknown_slots() {
        let patient = actor(Role::Patient);
        let slot = free_slot(TimeDelta::days(7));
        let repeated = SeriesRequest {
            slot_ids: vec![slot.id, slot.id],
            reason: String::new(),
            patient_id: None,
        };
        let result = block_on(service(Mocks::at(now())).book_series(&patient, repeated));
        assert!(matches!(result, Err(AppointmentError::Validation(_))));

        let overlapping = free_slot(TimeDelta::days(7) + TimeDelta::minutes(15));
        let mut mocks = Mocks::at(now());
        let both = vec![slot.clone(), overlapping.clone()];
        mocks.slots.expect_find_many().returning(move |_| {
            let both = both.clone();
            Box::pin(async move { Ok(both) })
        });
        let request = SeriesRequest {
            slot_ids: vec![slot.id, overlapping.id],
            reason: String::new(),
            patient_id: None,
        };
        let result = block_on(service(mocks).book_series(&patient, request));
        assert!(
            matches!(result, Err(AppointmentError::Validation(_))),
            "{result:?}"
        );

        let mut mocks = Mocks::at(now());
        let one = vec![slot.clone()];
        mocks.slots.expect_find_many().returning(move |_| {
            let one = one.clone();
            Box::pin(async move { Ok(one) })
        });
        let request = SeriesRequest {
            slot_ids: vec![slot.id, SlotId::new()],
            reason: String::new(),
            patient_id: None,
        };
        let result = block_on(service(mocks).book_series(&patient, request));
        assert!(matches!(result, Err(AppointmentError::NotFound)));
    }

    #[test]
    fn a_series_lost_in_a_race_reports_the_slots_from_the_store() {
        let patient = actor(Role::Patient);
        let first = free_slot(TimeDelta::days(7));
        let second = free_slot(TimeDelta::days(14));
        let mut mocks = Mocks::at(now());
        let both = vec![first.clone(), second.clone()];
        mocks.slots.expect_find_many().returning(move |_| {
            let both = both.clone();
            Box::pin(async move { Ok(both) })
        });
        let lost = second.id;
        mocks
            .appointments
            .expect_book_series()
            .withf(|bookings| bookings.len() == 2)
            .times(1)
            .returning(move |_| {
                Box::pin(async move { Ok(SeriesOutcome::Unavailable(vec![lost])) })
            });
        let request = SeriesRequest {
            slot_ids: vec![first.id, second.id],
            reason: String::new(),
            patient_id: None,
        };
        let result = block_on(service(mocks).book_series(&patient, request));
        assert!(matches!(result, Err(AppointmentError::SeriesUnavailable(s)) if s == vec![lost]));

        let mut mocks = Mocks::at(now());
        let both = vec![first.clone(), second.clone()];
        mocks.slots.expect_find_many().returning(move |_| {
            let both = both.clone();
            Box::pin(async move { Ok(both) })
        });
        mocks
            .appointments
            .expect_book_series()
            .returning(|_| Box::pin(async { Err(StoreError::Conflict(Conflict::PatientOverlap)) }));
        let request = SeriesRequest {
            slot_ids: vec![first.id, second.id],
            reason: String::new(),
            patient_id: None,
        };
        let result = block_on(service(mocks).book_series(&patient, request));
        assert!(matches!(result, Err(AppointmentError::PatientOverlap)));
    }

    #[test]
    fn only_admins_read_no_show_counts() {
        let patient = UserId::new();
        let refused =
            block_on(service(Mocks::at(now())).no_show_count(&actor(Role::Doctor), patient));
        assert!(matches!(refused, Err(AppointmentError::Forbidden)));
        let mut mocks = Mocks::at(now());
        mocks
            .appointments
            .expect_count_for_patient()
            .withf(move |p, s| *p == patient && *s == AppointmentStatus::NoShow)
            .returning(|_, _| Box::pin(async { Ok(2) }));
        let count = block_on(service(mocks).no_show_count(&actor(Role::Admin), patient));
        assert_eq!(count.ok(), Some(2));
    }
}
