//! Booking and cancelling against a real PostgreSQL: atomicity, the exclusion constraints
//! and the slot/payment triggers.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use chrono::{Duration, Utc};
use common::{at, fixture};
use diesel_async::SimpleAsyncConnection;
use shms_domain::appointment::{AppointmentStatus, Cancellation};
use shms_domain::ids::SlotId;
use shms_domain::payment::PaymentStatus;
use shms_domain::ports::AppointmentRepository;
use shms_domain::{Conflict, StoreError};

#[tokio::test(flavor = "multi_thread")]
async fn booking_writes_appointment_busy_slot_and_pending_payment_for_the_fee() {
    let f = fixture().await;
    let doctor = f.doctor().await;
    let patient = f.patient().await;
    let slot = f.slot(doctor.id, at(7, 9, 0)).await;

    let booking = f.book(patient, slot.id).await.unwrap();

    assert_eq!(booking.appointment.status, AppointmentStatus::Booked);
    assert_eq!(
        (booking.appointment.doctor_id, booking.appointment.starts_at),
        (doctor.id, slot.starts_at)
    );
    assert_eq!(booking.payment.status, PaymentStatus::Pending);
    assert_eq!(booking.payment.amount, doctor.consultation_fee);
    assert_eq!(f.slot_status(slot.id).await, "busy");
    assert_eq!(f.store.get(booking.appointment.id).await.unwrap(), booking);
    assert!(f.violations().await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_taken_slot_is_refused_and_nothing_is_written() {
    let f = fixture().await;
    let doctor = f.doctor().await;
    let slot = f.slot(doctor.id, at(7, 9, 0)).await;
    let (first, second) = (f.patient().await, f.patient().await);
    f.book(first, slot.id).await.unwrap();

    let refused = f.book(second, slot.id).await;

    assert!(
        matches!(
            refused,
            Err(StoreError::Conflict(Conflict::SlotUnavailable))
        ),
        "{refused:?}"
    );
    let mut conn = f.db.connect().await.unwrap();
    conn.batch_execute(
        "DO $$ BEGIN IF (SELECT count(*) FROM appointments) <> 1 OR (SELECT count(*) FROM payments) <> 1 \
         THEN RAISE EXCEPTION 'partial write'; END IF; END $$",
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_patient_cannot_hold_two_overlapping_appointments() {
    let f = fixture().await;
    let (a, b) = (f.doctor().await, f.doctor().await);
    let patient = f.patient().await;
    let first = f.slot(a.id, at(7, 9, 0)).await;
    let overlapping = f.slot(b.id, at(7, 9, 15)).await;
    f.book(patient, first.id).await.unwrap();

    let refused = f.book(patient, overlapping.id).await;

    assert!(
        matches!(refused, Err(StoreError::Conflict(Conflict::PatientOverlap))),
        "{refused:?}"
    );
    assert_eq!(f.slot_status(overlapping.id).await, "free");
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_slot_or_patient_is_not_found() {
    let f = fixture().await;
    let doctor = f.doctor().await;
    let slot = f.slot(doctor.id, at(7, 9, 0)).await;
    let patient = f.patient().await;
    assert!(matches!(
        f.book(patient, SlotId::new()).await,
        Err(StoreError::NotFound)
    ));
    // a doctor's id is not a patient's
    assert!(matches!(
        f.book(doctor.id, slot.id).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(f.slot_status(slot.id).await, "free");
}

#[tokio::test(flavor = "multi_thread")]
async fn cancelling_frees_the_slot_and_cancels_the_pending_payment() {
    let f = fixture().await;
    let doctor = f.doctor().await;
    let patient = f.patient().await;
    let slot = f.slot(doctor.id, at(7, 9, 0)).await;
    let booking = f.book(patient, slot.id).await.unwrap();
    let cancellation = Cancellation {
        appointment_id: booking.appointment.id,
        cancelled_by: patient,
        reason: Some("sick".into()),
        at: Utc::now(),
    };

    let cancelled = f
        .store
        .cancel(cancellation.clone(), AppointmentStatus::Booked, None)
        .await
        .unwrap();

    assert_eq!(cancelled.appointment.status, AppointmentStatus::Cancelled);
    assert_eq!(cancelled.appointment.cancel_reason.as_deref(), Some("sick"));
    assert_eq!(cancelled.payment.status, PaymentStatus::Cancelled);
    assert_eq!(f.slot_status(slot.id).await, "free");
    // a stale expectation (already cancelled) is refused, not applied twice
    let again = f
        .store
        .cancel(cancellation, AppointmentStatus::Booked, None)
        .await;
    assert!(
        matches!(
            again,
            Err(StoreError::Conflict(Conflict::InvalidTransition))
        ),
        "{again:?}"
    );
    // the freed slot can be booked again
    let rebooked = f.book(f.patient().await, slot.id).await.unwrap();
    assert_eq!(rebooked.appointment.status, AppointmentStatus::Booked);
    assert!(f.violations().await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_blocked_slot_cannot_be_booked() {
    let f = fixture().await;
    let doctor = f.doctor().await;
    let slot = f.slot(doctor.id, at(7, 9, 0)).await;
    let mut conn = f.db.connect().await.unwrap();
    conn.batch_execute(&format!(
        "UPDATE slots SET status = 'busy-unavailable' WHERE id = '{}'",
        slot.id
    ))
    .await
    .unwrap();
    let refused = f.book(f.patient().await, slot.id).await;
    assert!(
        matches!(
            refused,
            Err(StoreError::Conflict(Conflict::SlotUnavailable))
        ),
        "{refused:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sixty_four_concurrent_bookings_of_one_slot_make_exactly_one_appointment() {
    let f = fixture().await;
    let doctor = f.doctor().await;
    let slot = f.slot(doctor.id, at(7, 9, 0)).await;
    let mut patients = Vec::new();
    for _ in 0..64 {
        patients.push(f.patient().await);
    }
    let attempts = patients.into_iter().map(|patient| {
        let store = f.store.clone();
        tokio::spawn(async move {
            store
                .book(shms_domain::appointment::NewBooking {
                    appointment_id: shms_domain::ids::AppointmentId::new(),
                    payment_id: shms_domain::ids::PaymentId::new(),
                    patient_id: patient,
                    slot_id: slot.id,
                    reason: String::new(),
                    booked_by: patient,
                })
                .await
        })
    });
    let results: Vec<_> = futures_join(attempts).await;
    let won = results.iter().filter(|r| r.is_ok()).count();
    let lost = results
        .iter()
        .filter(|r| matches!(r, Err(StoreError::Conflict(Conflict::SlotUnavailable))))
        .count();
    assert_eq!((won, lost), (1, 63));
    assert!(f.violations().await.is_empty());
}

async fn futures_join<T: Send + 'static>(
    handles: impl Iterator<Item = tokio::task::JoinHandle<T>>,
) -> Vec<T> {
    let mut results = Vec::new();
    for handle in handles.collect::<Vec<_>>() {
        results.push(handle.await.expect("task"));
    }
    results
}

/// The exclusion constraints, not the trigger or the application, are what stop a double
/// booking: with them dropped, the very same calls double-book the slot. This is the check
/// that the race tests would fail without the constraints.
#[tokio::test(flavor = "multi_thread")]
async fn without_the_exclusion_constraints_the_same_calls_double_book() {
    let f = fixture().await;
    let doctor = f.doctor().await;
    let slot = f.slot(doctor.id, at(7, 9, 0)).await;
    let mut conn = f.db.connect().await.unwrap();
    conn.batch_execute(
        "ALTER TABLE appointments DROP CONSTRAINT appointments_one_per_slot, \
         DROP CONSTRAINT appointments_no_doctor_overlap",
    )
    .await
    .unwrap();

    f.book(f.patient().await, slot.id).await.unwrap();
    let second = f.book(f.patient().await, slot.id).await;

    assert!(
        second.is_ok(),
        "with the constraints dropped the second booking must go through: {second:?}"
    );
    let kinds: Vec<String> = f
        .violations()
        .await
        .into_iter()
        .map(|v| v.violation)
        .collect();
    assert!(
        kinds.contains(&"slot_double_booked".to_owned()),
        "{kinds:?}"
    );
    assert!(kinds.contains(&"doctor_overlap".to_owned()), "{kinds:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn appointments_keep_their_slot_interval_even_if_slots_are_long() {
    let f = fixture().await;
    let doctor = f.doctor().await;
    let slots = f
        .slots(
            doctor.id,
            &[
                (at(8, 9, 0), at(8, 10, 0)),
                (at(8, 10, 0), at(8, 10, 0) + Duration::minutes(15)),
            ],
        )
        .await
        .unwrap();
    let booking = f.book(f.patient().await, slots[0].id).await.unwrap();
    assert_eq!(
        (booking.appointment.starts_at, booking.appointment.ends_at),
        (at(8, 9, 0), at(8, 10, 0))
    );
    // adjacent (touching) intervals are not overlaps
    f.book(f.patient().await, slots[1].id).await.unwrap();
}
