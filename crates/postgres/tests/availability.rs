//! Weekly availability and time off against a real PostgreSQL: regeneration keeps what it
//! must, concurrent replacements do not interleave, time off changes nothing on conflict and
//! cancels with full refunds on an administrator's override.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use common::{Fixture, at, fixture};
use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Text};
use diesel_async::RunQueryDsl;
use shms_domain::appointment::{AppointmentStatus, Cancellation};
use shms_domain::availability::{
    Availability, AvailabilityInput, NewTimeOff, Regenerated, Replacement, RuleInput,
    TimeOffOutcome, TimeOffRequest, generate,
};
use shms_domain::ids::{AttemptId, RefundId, UserId};
use shms_domain::payment::{Money, PaymentMethod, PaymentStatus};
use shms_domain::ports::{
    AppointmentRepository, AvailabilityRepository, NewAttempt, NewRefund, PaymentRepository,
    SlotRepository,
};
use shms_domain::slot::SlotFilter;
use shms_domain::{Conflict, PageRequest, StoreError};

/// Before every slot of these tests (2030-01).
fn before() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2029, 12, 31, 0, 0, 0).unwrap()
}

fn day(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2030, 1, d).unwrap()
}

/// A UTC schedule for January 2030 (2030-01-07 is a Monday).
fn schedule(
    slot: i64,
    from: u32,
    until: u32,
    horizon: i64,
    rules: &[(&str, &str, &str)],
) -> Availability {
    Availability::parse(AvailabilityInput {
        time_zone: "UTC".into(),
        slot_minutes: slot,
        buffer_minutes: 0,
        effective_from: day(from),
        effective_until: Some(day(until)),
        horizon_days: horizon,
        rules: rules
            .iter()
            .map(|(weekday, start, end)| RuleInput {
                weekday: (*weekday).into(),
                start: (*start).into(),
                end: (*end).into(),
            })
            .collect(),
    })
    .unwrap()
}

async fn replace(
    f: &Fixture,
    doctor: UserId,
    availability: Availability,
    now: DateTime<Utc>,
) -> Result<Regenerated, StoreError> {
    let windows = generate(&availability, now);
    f.store
        .replace(Replacement {
            doctor_id: doctor,
            availability,
            windows,
            now,
            updated_by: doctor,
        })
        .await
}

/// The doctor's slots as `(start, status)`, by start.
async fn slots(f: &Fixture, doctor: UserId) -> Vec<(DateTime<Utc>, String)> {
    let page = SlotRepository::list(
        &f.store,
        SlotFilter {
            doctor_id: doctor,
            from: None,
            to: None,
            status: None,
        },
        PageRequest::new(Some(200), None).unwrap(),
    )
    .await
    .unwrap();
    page.items
        .into_iter()
        .map(|s| (s.starts_at, s.status.as_str().to_owned()))
        .collect()
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

async fn count(f: &Fixture, sql: &str) -> i64 {
    let mut conn = f.db.connect().await.unwrap();
    diesel::sql_query(sql)
        .get_result::<Count>(&mut conn)
        .await
        .unwrap()
        .n
}

#[derive(QueryableByName)]
struct Source {
    #[diesel(sql_type = Text)]
    source: String,
}

fn time_off(
    doctor: UserId,
    by: UserId,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    cancel: bool,
) -> NewTimeOff {
    NewTimeOff {
        id: uuid::Uuid::now_v7(),
        doctor_id: doctor,
        request: TimeOffRequest::new(from, to, "conference", cancel).unwrap(),
        created_by: by,
        at: Utc::now(),
        cancel_reason: "doctor's time off: conference".into(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn regeneration_replaces_only_free_never_booked_generated_slots() {
    let f = fixture().await;
    let doctor = f.doctor().await.id;
    let patient = f.patient().await;

    let first = replace(
        &f,
        doctor,
        schedule(30, 7, 7, 400, &[("mon", "09:00", "12:00")]),
        before(),
    )
    .await
    .unwrap();
    assert_eq!(
        (first.generated, first.removed, first.schedule.revision),
        (6, 0, 1)
    );
    let generated = slots(&f, doctor).await;
    assert_eq!(generated.len(), 6);
    let mut conn = f.db.connect().await.unwrap();
    let sources: Vec<Source> = diesel::sql_query("SELECT DISTINCT source FROM slots")
        .load(&mut conn)
        .await
        .unwrap();
    assert_eq!(sources.len(), 1);
    assert_eq!(sources[0].source, "generated");

    // 09:30 booked; 11:00 booked and cancelled (free, but it has an appointment row); a
    // manual slot on the next Monday
    let page = SlotRepository::list(
        &f.store,
        SlotFilter {
            doctor_id: doctor,
            from: Some(at(7, 9, 30)),
            to: Some(at(7, 11, 1)),
            status: None,
        },
        PageRequest::new(Some(10), None).unwrap(),
    )
    .await
    .unwrap();
    let by_start = |t: DateTime<Utc>| page.items.iter().find(|s| s.starts_at == t).unwrap().id;
    f.book(patient, by_start(at(7, 9, 30))).await.unwrap();
    let cancelled = f.book(patient, by_start(at(7, 11, 0))).await.unwrap();
    f.store
        .cancel(
            Cancellation {
                appointment_id: cancelled.appointment.id,
                cancelled_by: patient,
                reason: None,
                at: Utc::now(),
            },
            AppointmentStatus::Booked,
            None,
        )
        .await
        .unwrap();
    f.slots(doctor, &[(at(14, 10, 30), at(14, 11, 0))])
        .await
        .unwrap();

    let second = replace(
        &f,
        doctor,
        schedule(60, 7, 14, 400, &[("mon", "10:00", "13:00")]),
        before(),
    )
    .await
    .unwrap();
    // removed: 09:00, 10:00, 10:30, 11:30; new: 7th 10:00 and 12:00 (11:00 overlaps the
    // kept 11:00), 14th 11:00 and 12:00 (10:00 overlaps the manual slot)
    assert_eq!(
        (second.generated, second.removed, second.schedule.revision),
        (4, 4, 2)
    );
    assert_eq!(
        slots(&f, doctor).await,
        vec![
            (at(7, 9, 30), "busy".to_owned()),
            (at(7, 10, 0), "free".to_owned()),
            (at(7, 11, 0), "free".to_owned()),
            (at(7, 12, 0), "free".to_owned()),
            (at(14, 10, 30), "free".to_owned()),
            (at(14, 11, 0), "free".to_owned()),
            (at(14, 12, 0), "free".to_owned()),
        ]
    );
    assert_eq!(
        count(
            &f,
            "SELECT count(*) AS n FROM slots WHERE source = 'manual'"
        )
        .await,
        1
    );
    let stored = f.store.schedule(doctor).await.unwrap().unwrap();
    assert_eq!(stored.availability, second.schedule.availability);
    assert_eq!(stored.availability.slot_minutes(), 60);
    assert!(
        f.violations().await.is_empty(),
        "{:?}",
        f.violations().await
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_doctor_is_not_found_and_no_schedule_is_none() {
    let f = fixture().await;
    let nobody = UserId::new();
    let result = replace(&f, nobody, schedule(30, 7, 7, 400, &[]), before()).await;
    assert!(matches!(result, Err(StoreError::NotFound)), "{result:?}");
    assert!(f.store.schedule(nobody).await.unwrap().is_none());
    let result = f
        .store
        .take_time_off(time_off(nobody, nobody, at(1, 0, 0), at(2, 0, 0), false))
        .await;
    assert!(matches!(result, Err(StoreError::NotFound)), "{result:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_replacements_never_interleave() {
    let f = fixture().await;
    let doctor = f.doctor().await.id;
    let a = schedule(
        30,
        7,
        28,
        400,
        &[("mon", "09:00", "12:00"), ("wed", "09:00", "12:00")],
    );
    let b = schedule(
        45,
        7,
        28,
        400,
        &[("mon", "09:10", "12:10"), ("thu", "08:00", "11:00")],
    );
    for round in 0..6 {
        let (x, y) = if round % 2 == 0 { (&a, &b) } else { (&b, &a) };
        let (left, right) = tokio::join!(
            replace(&f, doctor, x.clone(), before()),
            replace(&f, doctor, y.clone(), before()),
        );
        let (left, right) = (left.unwrap(), right.unwrap());
        assert_ne!(left.schedule.revision, right.schedule.revision);
        let last = if left.schedule.revision > right.schedule.revision {
            left
        } else {
            right
        };
        let expected: Vec<_> = generate(&last.schedule.availability, before())
            .iter()
            .map(|w| (w.starts_at(), "free".to_owned()))
            .collect();
        assert_eq!(
            slots(&f, doctor).await,
            expected,
            "round {round}: the slots are exactly the last schedule's"
        );
    }
    assert!(f.violations().await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn time_off_with_booked_appointments_changes_nothing_and_lists_them() {
    let f = fixture().await;
    let doctor = f.doctor().await.id;
    let patient = f.patient().await;
    let made = f
        .slots(
            doctor,
            &[
                (at(15, 9, 0), at(15, 9, 30)),
                (at(15, 9, 30), at(15, 10, 0)),
                (at(15, 10, 0), at(15, 10, 30)),
            ],
        )
        .await
        .unwrap();
    let booking = f.book(patient, made[1].id).await.unwrap();

    let outcome = f
        .store
        .take_time_off(time_off(doctor, doctor, at(15, 8, 0), at(15, 12, 0), false))
        .await
        .unwrap();
    let TimeOffOutcome::Conflicts(conflicts) = outcome else {
        panic!("{outcome:?}");
    };
    assert_eq!(conflicts.len(), 1);
    assert_eq!(conflicts[0].appointment_id, booking.appointment.id);
    assert_eq!(conflicts[0].patient_id, patient);
    assert_eq!(conflicts[0].starts_at, at(15, 9, 30));
    // nothing changed: the free slots are still free, no time off stored
    assert_eq!(
        slots(&f, doctor).await,
        vec![
            (at(15, 9, 0), "free".to_owned()),
            (at(15, 9, 30), "busy".to_owned()),
            (at(15, 10, 0), "free".to_owned()),
        ]
    );
    assert_eq!(count(&f, "SELECT count(*) AS n FROM time_off").await, 0);

    // a range that only touches the appointment is fine: it blocks the overlapping free slot
    let outcome = f
        .store
        .take_time_off(time_off(
            doctor,
            doctor,
            at(15, 10, 0),
            at(15, 12, 0),
            false,
        ))
        .await
        .unwrap();
    let TimeOffOutcome::Taken(taken) = outcome else {
        panic!("{outcome:?}");
    };
    assert_eq!((taken.blocked, taken.cancelled.len()), (1, 0));
    assert_eq!(f.slot_status(made[2].id).await, "busy-unavailable");
    // a slot created later inside the time off is created blocked, and generation skips it
    let late = f.slot(doctor, at(15, 11, 0)).await;
    assert_eq!(late.status.as_str(), "busy-unavailable");
    let regenerated = replace(
        &f,
        doctor,
        schedule(30, 15, 15, 400, &[("tue", "11:30", "13:00")]),
        before(),
    )
    .await
    .unwrap();
    assert_eq!(
        regenerated.generated, 2,
        "11:30 is inside the time off; 12:00 and 12:30 are not"
    );
    assert!(
        f.violations().await.is_empty(),
        "{:?}",
        f.violations().await
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_override_cancels_and_fully_refunds_in_one_transaction() {
    let f = fixture().await;
    let doctor = f.doctor().await.id;
    let admin = f.admin().await;
    let (alice, bob) = (f.patient().await, f.patient().await);
    let made = f
        .slots(
            doctor,
            &[
                (at(16, 9, 0), at(16, 9, 30)),
                (at(16, 9, 30), at(16, 10, 0)),
                (at(16, 10, 0), at(16, 10, 30)),
            ],
        )
        .await
        .unwrap();
    let paid = f.book(alice, made[0].id).await.unwrap();
    let pending = f.book(bob, made[1].id).await.unwrap();
    f.store
        .begin_attempt(NewAttempt {
            id: AttemptId::new(),
            payment_id: paid.payment.id,
            method: PaymentMethod::Cash,
            card_token: None,
            amount: paid.payment.amount.clone(),
            created_by: admin,
            succeeded: true,
        })
        .await
        .unwrap();
    f.store
        .refund(NewRefund {
            id: RefundId::new(),
            payment_id: paid.payment.id,
            amount: Money::new(1000, "EUR").unwrap(),
            reason: "goodwill".into(),
            created_by: admin,
        })
        .await
        .unwrap();

    let outcome = f
        .store
        .take_time_off(time_off(doctor, admin, at(16, 0, 0), at(17, 0, 0), true))
        .await
        .unwrap();
    let TimeOffOutcome::Taken(taken) = outcome else {
        panic!("{outcome:?}");
    };
    assert_eq!(
        taken.cancelled,
        vec![paid.appointment.id, pending.appointment.id]
    );
    assert_eq!(
        taken.blocked, 3,
        "the free slot, then the two the cancellations freed"
    );
    let paid_after = AppointmentRepository::get(&f.store, paid.appointment.id)
        .await
        .unwrap();
    assert_eq!(paid_after.appointment.status, AppointmentStatus::Cancelled);
    assert_eq!(
        paid_after.appointment.cancel_reason.as_deref(),
        Some("doctor's time off: conference")
    );
    assert_eq!(paid_after.payment.status, PaymentStatus::Refunded);
    assert_eq!(paid_after.payment.refunded_cents, 5000);
    let pending_after = AppointmentRepository::get(&f.store, pending.appointment.id)
        .await
        .unwrap();
    assert_eq!(pending_after.payment.status, PaymentStatus::Cancelled);
    for slot in &made {
        assert_eq!(f.slot_status(slot.id).await, "busy-unavailable");
    }
    // the audit of the override: who, which appointments, how much was refunded
    assert_eq!(
        count(
            &f,
            &format!(
                "SELECT count(*) AS n FROM time_off WHERE cancel_conflicts AND created_by = '{admin}'"
            )
        )
        .await,
        1
    );
    assert_eq!(
        count(
            &f,
            "SELECT coalesce(sum(refunded_cents), 0)::bigint AS n FROM time_off_cancellations"
        )
        .await,
        4000
    );
    assert_eq!(
        count(&f, "SELECT count(*) AS n FROM time_off_cancellations").await,
        2
    );
    assert!(
        f.violations().await.is_empty(),
        "{:?}",
        f.violations().await
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_payment_in_flight_refuses_the_override_and_nothing_changes() {
    let f = fixture().await;
    let doctor = f.doctor().await.id;
    let admin = f.admin().await;
    let patient = f.patient().await;
    let made = f
        .slots(
            doctor,
            &[
                (at(17, 9, 0), at(17, 9, 30)),
                (at(17, 9, 30), at(17, 10, 0)),
            ],
        )
        .await
        .unwrap();
    let booking = f.book(patient, made[0].id).await.unwrap();
    f.store
        .begin_attempt(NewAttempt {
            id: AttemptId::new(),
            payment_id: booking.payment.id,
            method: PaymentMethod::Card,
            card_token: Some("tok_visa".into()),
            amount: booking.payment.amount.clone(),
            created_by: patient,
            succeeded: false,
        })
        .await
        .unwrap();

    let result = f
        .store
        .take_time_off(time_off(doctor, admin, at(17, 0, 0), at(18, 0, 0), true))
        .await;
    assert!(
        matches!(
            result,
            Err(StoreError::Conflict(Conflict::PaymentInProgress))
        ),
        "{result:?}"
    );
    assert_eq!(
        AppointmentRepository::get(&f.store, booking.appointment.id)
            .await
            .unwrap()
            .appointment
            .status,
        AppointmentStatus::Booked
    );
    assert_eq!(f.slot_status(made[0].id).await, "busy");
    assert_eq!(f.slot_status(made[1].id).await, "free");
    assert_eq!(count(&f, "SELECT count(*) AS n FROM time_off").await, 0);
    assert!(f.violations().await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn time_off_and_bookings_racing_never_leave_an_appointment_inside_the_time_off() {
    let f = fixture().await;
    let doctor = f.doctor().await.id;
    let mut patients = Vec::new();
    for _ in 0..8 {
        patients.push(f.patient().await);
    }
    let windows: Vec<_> = (0..8)
        .map(|i| {
            (
                at(18, 9, 0) + Duration::minutes(30 * i),
                at(18, 9, 30) + Duration::minutes(30 * i),
            )
        })
        .collect();
    let made = f.slots(doctor, &windows).await.unwrap();
    let store = f.store.clone();
    let mut bookings = Vec::new();
    for (slot, patient) in made.iter().zip(&patients) {
        let store = store.clone();
        let (slot, patient) = (slot.id, *patient);
        bookings.push(tokio::spawn(async move {
            store
                .book(shms_domain::appointment::NewBooking {
                    appointment_id: shms_domain::ids::AppointmentId::new(),
                    payment_id: shms_domain::ids::PaymentId::new(),
                    patient_id: patient,
                    slot_id: slot,
                    reason: "race".into(),
                    booked_by: patient,
                })
                .await
        }));
    }
    let outcome = f
        .store
        .take_time_off(time_off(doctor, doctor, at(18, 0, 0), at(19, 0, 0), false))
        .await
        .unwrap();
    let mut booked = 0;
    for booking in bookings {
        if booking.await.unwrap().is_ok() {
            booked += 1;
        }
    }
    match outcome {
        TimeOffOutcome::Taken(taken) => {
            assert_eq!(
                booked, 0,
                "a booking won after the time off blocked its slot"
            );
            assert_eq!(taken.blocked, 8);
        }
        TimeOffOutcome::Conflicts(conflicts) => {
            assert!(!conflicts.is_empty() && conflicts.len() <= booked);
            assert_eq!(count(&f, "SELECT count(*) AS n FROM time_off").await, 0);
        }
    }
    assert!(
        f.violations().await.is_empty(),
        "{:?}",
        f.violations().await
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_extension_rolls_the_horizon_forward_for_the_current_revision_only() {
    let f = fixture().await;
    let doctor = f.doctor().await.id;
    // a 7-day horizon from 2029-12-31 reaches Sunday 2030-01-06: no Monday yet
    let availability = schedule(60, 1, 31, 7, &[("mon", "09:00", "11:00")]);
    let done = replace(&f, doctor, availability.clone(), before())
        .await
        .unwrap();
    assert_eq!(done.generated, 0);
    let stored = f.store.schedules().await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].doctor_id, doctor);

    // a week later the horizon reaches Monday the 7th... and Monday the 14th is out of it
    let later = before() + Duration::days(7);
    let windows = generate(&availability, later);
    assert_eq!(windows.len(), 2);
    assert_eq!(f.store.extend(doctor, 1, windows.clone()).await.unwrap(), 2);
    assert_eq!(
        f.store.extend(doctor, 1, windows.clone()).await.unwrap(),
        0,
        "idempotent"
    );
    assert_eq!(
        f.store
            .extend(
                doctor,
                0,
                generate(&availability, later + Duration::days(7))
            )
            .await
            .unwrap(),
        0,
        "a stale revision adds nothing"
    );
    assert_eq!(slots(&f, doctor).await.len(), 2);
    assert!(f.violations().await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_schedule_change_wins_over_a_hold_on_a_free_generated_slot() {
    let f = fixture().await;
    let doctor = f.doctor().await.id;
    let patient = f.patient().await;
    replace(
        &f,
        doctor,
        schedule(30, 7, 13, 400, &[("mon", "09:00", "10:00")]),
        before(),
    )
    .await
    .unwrap();
    let held = SlotRepository::list(
        &f.store,
        SlotFilter {
            doctor_id: doctor,
            from: None,
            to: None,
            status: None,
        },
        PageRequest::new(Some(1), None).unwrap(),
    )
    .await
    .unwrap()
    .items
    .remove(0);
    f.store
        .hold(held.id, patient, Utc::now() + Duration::minutes(5))
        .await
        .unwrap();

    // the rules move to Tuesday: the Monday slots go, held or not (a hold is a checkout, not
    // a booking); the holder's booking then finds no slot
    replace(
        &f,
        doctor,
        schedule(30, 7, 13, 400, &[("tue", "09:00", "10:00")]),
        before(),
    )
    .await
    .unwrap();
    let after = slots(&f, doctor).await;
    assert_eq!(after.len(), 2, "{after:?}");
    assert!(
        after.iter().all(|(start, _)| *start != held.starts_at),
        "{after:?}"
    );
    assert!(matches!(
        f.book(patient, held.id).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(f.violations().await, vec![]);
}
