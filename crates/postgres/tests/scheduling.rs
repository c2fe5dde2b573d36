//! Holds, series, rescheduling and the waitlist against a real PostgreSQL (migration 000006).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use chrono::{Duration, Utc};
use common::{at, fixture};
use diesel_async::RunQueryDsl;
use shms_domain::appointment::{AppointmentStatus, Cancellation, NewBooking, SeriesOutcome};
use shms_domain::ids::{AppointmentId, PaymentId, SlotId, UserId, WaitlistEntryId};
use shms_domain::page::PageRequest;
use shms_domain::ports::{AppointmentRepository, SlotRepository, WaitlistRepository};
use shms_domain::waitlist::{NewWaitlistEntry, WaitlistStatus};
use shms_domain::{Conflict, StoreError};

fn booking(patient: UserId, slot: SlotId) -> NewBooking {
    NewBooking {
        appointment_id: AppointmentId::new(),
        payment_id: PaymentId::new(),
        patient_id: patient,
        slot_id: slot,
        reason: "series".into(),
        booked_by: patient,
    }
}

fn unavailable(result: &Result<impl std::fmt::Debug, StoreError>) -> bool {
    matches!(result, Err(StoreError::Conflict(Conflict::SlotUnavailable)))
}

async fn count(fx: &common::Fixture, sql: &str) -> i64 {
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let mut conn = fx.db.connect().await.unwrap();
    diesel::sql_query(sql)
        .get_result::<Count>(&mut conn)
        .await
        .unwrap()
        .n
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hold_keeps_others_out_until_it_lapses_and_the_holder_books_through_it() {
    let fx = fixture().await;
    let doctor = fx.doctor().await.id;
    let (holder, other) = (fx.patient().await, fx.patient().await);
    let slot = fx.slot(doctor, at(7, 9, 0)).await;

    let held = fx
        .store
        .hold(slot.id, holder, Utc::now() + Duration::minutes(5))
        .await
        .unwrap();
    assert_eq!(held.held_by, Some(holder));
    assert!(unavailable(&fx.book(other, slot.id).await));
    assert!(unavailable(
        &fx.store
            .hold(slot.id, other, Utc::now() + Duration::minutes(5))
            .await
    ));
    // the holder renews, then books: the hold is consumed with the booking
    fx.store
        .hold(slot.id, holder, Utc::now() + Duration::minutes(5))
        .await
        .unwrap();
    fx.book(holder, slot.id).await.unwrap();
    let taken = fx.store.find(slot.id).await.unwrap().unwrap();
    assert_eq!((taken.held_by, taken.held_until), (None, None));
    assert!(unavailable(
        &fx.store
            .hold(slot.id, other, Utc::now() + Duration::minutes(5))
            .await
    ));

    // an expired hold blocks nobody: the database compares it with its own clock
    let lapsed = fx.slot(doctor, at(7, 10, 0)).await;
    fx.store
        .hold(lapsed.id, holder, Utc::now() - Duration::seconds(1))
        .await
        .unwrap();
    fx.book(other, lapsed.id).await.unwrap();
    assert!(matches!(
        fx.store
            .hold(SlotId::new(), holder, Utc::now() + Duration::minutes(5))
            .await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(fx.violations().await, vec![]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_concurrent_hold_and_booking_on_one_slot_never_both_win() {
    let fx = fixture().await;
    let doctor = fx.doctor().await.id;
    let (holder, booker) = (fx.patient().await, fx.patient().await);
    for round in 0..24 {
        let slot = fx
            .slot(doctor, at(8, 8, 0) + Duration::minutes(30 * round))
            .await;
        let (store_a, store_b) = (fx.store.clone(), fx.store.clone());
        let hold = tokio::spawn(async move {
            store_a
                .hold(slot.id, holder, Utc::now() + Duration::minutes(5))
                .await
        });
        let book = tokio::spawn(async move { store_b.book(booking(booker, slot.id)).await });
        let (hold, book) = (hold.await.unwrap(), book.await.unwrap());
        assert!(
            hold.is_ok() != book.is_ok(),
            "round {round}: hold {hold:?}, book {book:?}"
        );
        assert!(hold.is_ok() || unavailable(&hold));
        assert!(book.is_ok() || unavailable(&book));
    }
    assert_eq!(fx.violations().await, vec![]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_series_that_collides_books_nothing_and_names_every_slot_in_the_way() {
    let fx = fixture().await;
    let doctor = fx.doctor().await.id;
    let (patient, other, holder) = (fx.patient().await, fx.patient().await, fx.patient().await);
    let mut slots = Vec::new();
    for week in 0..4 {
        slots.push(fx.slot(doctor, at(7 + 7 * week, 9, 0)).await.id);
    }
    fx.book(other, slots[1]).await.unwrap();
    fx.store
        .hold(slots[2], holder, Utc::now() + Duration::minutes(5))
        .await
        .unwrap();

    let outcome = fx
        .store
        .book_series(slots.iter().map(|s| booking(patient, *s)).collect())
        .await
        .unwrap();
    assert_eq!(
        outcome,
        SeriesOutcome::Unavailable(vec![slots[1], slots[2]])
    );
    let mine = format!("SELECT count(*) AS n FROM appointments WHERE patient_id = '{patient}'");
    assert_eq!(count(&fx, &mine).await, 0);
    assert_eq!(fx.slot_status(slots[0]).await, "free");
    assert_eq!(fx.slot_status(slots[3]).await, "free");

    let SeriesOutcome::Booked(booked) = fx
        .store
        .book_series(vec![booking(patient, slots[0]), booking(patient, slots[3])])
        .await
        .unwrap()
    else {
        panic!("the free slots book");
    };
    assert_eq!(booked.len(), 2);
    assert_eq!(booked[0].appointment.slot_id, slots[0]);
    assert_eq!(booked[1].appointment.slot_id, slots[3]);
    assert_eq!(count(&fx, &mine).await, 2);
    assert_eq!(fx.violations().await, vec![]);
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_series_over_shared_slots_never_both_book_and_never_deadlock() {
    let fx = fixture().await;
    let doctor = fx.doctor().await.id;
    for round in 0..10 {
        let base = at(10, 8, 0) + Duration::hours(2 * round);
        let a = fx.slot(doctor, base).await.id;
        let b = fx.slot(doctor, base + Duration::minutes(30)).await.id;
        let c = fx.slot(doctor, base + Duration::minutes(60)).await.id;
        let (first, second) = (fx.patient().await, fx.patient().await);
        let (s1, s2) = (fx.store.clone(), fx.store.clone());
        let one = tokio::spawn(async move {
            s1.book_series(vec![booking(first, a), booking(first, b)])
                .await
        });
        let two = tokio::spawn(async move {
            s2.book_series(vec![booking(second, c), booking(second, b)])
                .await
        });
        let outcomes = [one.await.unwrap().unwrap(), two.await.unwrap().unwrap()];
        let booked = outcomes
            .iter()
            .filter(|o| matches!(o, SeriesOutcome::Booked(_)))
            .count();
        assert_eq!(booked, 1, "round {round}: {outcomes:?}");
    }
    assert_eq!(fx.violations().await, vec![]);
}

#[tokio::test(flavor = "multi_thread")]
async fn rescheduling_moves_the_appointment_and_its_payment_or_changes_nothing() {
    let fx = fixture().await;
    let doctor = fx.doctor().await.id;
    let (patient, other) = (fx.patient().await, fx.patient().await);
    let old = fx.slot(doctor, at(7, 9, 0)).await;
    let new = fx.slot(doctor, at(7, 10, 0)).await;
    let taken = fx.slot(doctor, at(7, 11, 0)).await;
    let booked = fx.book(patient, old.id).await.unwrap();
    fx.book(other, taken.id).await.unwrap();
    let id = booked.appointment.id;

    let moved = fx.store.reschedule(id, old.id, new.clone()).await.unwrap();
    assert_eq!(moved.appointment.id, id);
    assert_eq!(moved.appointment.slot_id, new.id);
    assert_eq!(moved.appointment.starts_at, new.starts_at);
    assert_eq!(moved.payment.id, booked.payment.id);
    assert_eq!(fx.slot_status(old.id).await, "free");
    assert_eq!(fx.slot_status(new.id).await, "busy");

    // into a taken slot: refused, and the appointment stays where it was
    assert!(unavailable(
        &fx.store.reschedule(id, new.id, taken.clone()).await
    ));
    // a stale `from` (the appointment moved meanwhile) is refused too
    assert!(matches!(
        fx.store.reschedule(id, old.id, old.clone()).await,
        Err(StoreError::Conflict(Conflict::InvalidTransition))
    ));
    let now = fx.store.get(id).await.unwrap();
    assert_eq!(now.appointment.slot_id, new.id);
    assert_eq!(fx.slot_status(new.id).await, "busy");
    assert_eq!(fx.slot_status(taken.id).await, "busy");
    assert_eq!(fx.violations().await, vec![]);
}

async fn join(fx: &common::Fixture, patient: UserId, doctor: UserId, days: (u32, u32)) {
    fx.store
        .join(NewWaitlistEntry {
            id: WaitlistEntryId::new(),
            patient_id: patient,
            doctor_id: doctor,
            from: at(days.0, 0, 0),
            to: at(days.1, 0, 0),
        })
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cancellation_offers_the_slot_once_to_the_first_waiting_patient() {
    let fx = fixture().await;
    let doctor = fx.doctor().await.id;
    let elsewhere = fx.doctor().await.id;
    let (booker, first, second, outside, wrong_doctor) = (
        fx.patient().await,
        fx.patient().await,
        fx.patient().await,
        fx.patient().await,
        fx.patient().await,
    );
    let slot = fx.slot(doctor, at(7, 9, 0)).await;
    let booked = fx.book(booker, slot.id).await.unwrap();
    join(&fx, outside, doctor, (8, 9)).await;
    join(&fx, wrong_doctor, elsewhere, (1, 28)).await;
    join(&fx, first, doctor, (6, 8)).await;
    join(&fx, second, doctor, (1, 28)).await;

    fx.store
        .cancel(
            Cancellation {
                appointment_id: booked.appointment.id,
                cancelled_by: booker,
                reason: None,
                at: Utc::now(),
            },
            AppointmentStatus::Booked,
            None,
        )
        .await
        .unwrap();

    let page = PageRequest::new(None, None).unwrap();
    let offers = fx
        .store
        .notifications(first, page.clone())
        .await
        .unwrap()
        .items;
    assert_eq!(offers.len(), 1);
    assert_eq!(offers[0].kind, "waitlist_offer");
    assert_eq!(offers[0].payload["slot_id"], slot.id.to_string());
    for nobody in [second, outside, wrong_doctor, booker] {
        assert!(
            fx.store
                .notifications(nobody, page.clone())
                .await
                .unwrap()
                .items
                .is_empty()
        );
    }
    let entry = fx.store.entries(first, page.clone()).await.unwrap().items;
    assert_eq!(entry[0].status, WaitlistStatus::Offered);
    assert_eq!(entry[0].offered_slot_id, Some(slot.id));
    let second_entry = fx.store.entries(second, page).await.unwrap().items;
    assert_eq!(second_entry[0].status, WaitlistStatus::Waiting);

    // the offer is a hold: only the offered patient can book it now
    let held = fx.store.find(slot.id).await.unwrap().unwrap();
    assert_eq!(held.held_by, Some(first));
    assert!(unavailable(&fx.book(second, slot.id).await));
    fx.book(first, slot.id).await.unwrap();
    assert_eq!(
        count(&fx, "SELECT count(*) AS n FROM notifications").await,
        1
    );
    assert_eq!(fx.violations().await, vec![]);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sweep_offers_slots_whose_holds_lapsed() {
    let fx = fixture().await;
    let doctor = fx.doctor().await.id;
    let (holder, waiting) = (fx.patient().await, fx.patient().await);
    let slot = fx.slot(doctor, at(7, 9, 0)).await;
    join(&fx, waiting, doctor, (1, 28)).await;
    fx.store
        .hold(slot.id, holder, Utc::now() - Duration::seconds(1))
        .await
        .unwrap();
    assert_eq!(fx.store.offer_lapsed_holds().await.unwrap(), 1);
    let held = fx.store.find(slot.id).await.unwrap().unwrap();
    assert_eq!(held.held_by, Some(waiting));
    assert!(held.held_until.unwrap() > Utc::now());
    // nothing lapsed any more: a second sweep offers nothing
    assert_eq!(fx.store.offer_lapsed_holds().await.unwrap(), 0);
    assert_eq!(fx.violations().await, vec![]);
}
