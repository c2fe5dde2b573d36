//! The payment ledger against a real PostgreSQL: attempts, refunds, the triggers that keep
//! the payment's state, cancellation meeting money, and idempotency claims.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use chrono::{Duration, Utc};
use common::{Fixture, at, fixture, refused_by};
use shms_domain::appointment::{AppointmentStatus, Booking, Cancellation};
use shms_domain::ids::{AttemptId, RefundId, UserId};
use shms_domain::payment::{AttemptStatus, Money, PaymentDetails, PaymentMethod, PaymentStatus};
use shms_domain::ports::{
    AppointmentRepository, IdempotencyRepository, IdempotencyStart, NewAttempt, NewRefund,
    PaymentRepository, Settlement,
};
use shms_domain::{Conflict, StoreError};

async fn booked(f: &Fixture) -> (Booking, UserId) {
    let doctor = f.doctor().await;
    let patient = f.patient().await;
    let slot = f.slot(doctor.id, at(15, 9, 0)).await;
    (f.book(patient, slot.id).await.unwrap(), patient)
}

fn attempt(booking: &Booking, by: UserId, method: PaymentMethod) -> NewAttempt {
    NewAttempt {
        id: AttemptId::new(),
        payment_id: booking.payment.id,
        method,
        card_token: (method == PaymentMethod::Card).then(|| "tok_visa".to_owned()),
        amount: booking.payment.amount.clone(),
        created_by: by,
        succeeded: method != PaymentMethod::Card,
    }
}

async fn pay_by_card(f: &Fixture, booking: &Booking, by: UserId) -> PaymentDetails {
    let new = attempt(booking, by, PaymentMethod::Card);
    let id = new.id;
    let pending = f.store.begin_attempt(new).await.unwrap();
    assert_eq!(
        pending.payment.status,
        PaymentStatus::Pending,
        "nothing is paid before the gateway answers"
    );
    f.store
        .settle_attempt(
            booking.payment.id,
            id,
            Settlement::Succeeded {
                reference: "ch_1".into(),
            },
        )
        .await
        .unwrap()
}

fn refund(booking: &Booking, cents: i64, by: UserId) -> NewRefund {
    NewRefund {
        id: RefundId::new(),
        payment_id: booking.payment.id,
        amount: Money {
            amount_cents: cents,
            currency: booking.payment.amount.currency.clone(),
        },
        reason: "goodwill".into(),
        created_by: by,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_succeeded_attempt_pays_and_refunds_move_the_status() {
    let f = fixture().await;
    let (booking, patient) = booked(&f).await;
    let paid = pay_by_card(&f, &booking, patient).await;
    assert_eq!(paid.payment.status, PaymentStatus::Paid);
    assert!(paid.payment.paid_at.is_some());
    assert_eq!(paid.attempts.len(), 1);
    assert_eq!(paid.attempts[0].status, AttemptStatus::Succeeded);

    let partial = f
        .store
        .refund(refund(&booking, 2000, patient))
        .await
        .unwrap();
    assert_eq!(
        (partial.payment.status, partial.payment.refunded_cents),
        (PaymentStatus::PartiallyRefunded, 2000)
    );
    let too_much = f.store.refund(refund(&booking, 3001, patient)).await;
    assert!(
        matches!(
            too_much,
            Err(StoreError::Conflict(Conflict::RefundExceedsPaid))
        ),
        "{too_much:?}"
    );
    let full = f
        .store
        .refund(refund(&booking, 3000, patient))
        .await
        .unwrap();
    assert_eq!(
        (
            full.payment.status,
            full.payment.refunded_cents,
            full.refunds.len()
        ),
        (PaymentStatus::Refunded, 5000, 2)
    );
    let after = f.store.refund(refund(&booking, 1, patient)).await;
    assert!(
        matches!(
            after,
            Err(StoreError::Conflict(Conflict::PaymentNotRefundable))
        ),
        "{after:?}"
    );
    assert!(f.violations().await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn declined_and_failed_attempts_leave_the_payment_pending_and_retryable() {
    let f = fixture().await;
    let (booking, patient) = booked(&f).await;
    for settlement in [
        Settlement::Declined {
            reason: "card_declined".into(),
        },
        Settlement::Failed {
            reason: "outage".into(),
        },
    ] {
        let new = attempt(&booking, patient, PaymentMethod::Card);
        let id = new.id;
        f.store.begin_attempt(new).await.unwrap();
        let after = f
            .store
            .settle_attempt(booking.payment.id, id, settlement)
            .await
            .unwrap();
        assert_eq!(after.payment.status, PaymentStatus::Pending);
        // settling twice is refused
        let again = f
            .store
            .settle_attempt(
                booking.payment.id,
                id,
                Settlement::Succeeded {
                    reference: "x".into(),
                },
            )
            .await;
        assert!(
            matches!(
                again,
                Err(StoreError::Conflict(Conflict::InvalidTransition))
            ),
            "{again:?}"
        );
    }
    let paid = pay_by_card(&f, &booking, patient).await;
    assert_eq!(
        paid.attempts.iter().map(|a| a.status).collect::<Vec<_>>(),
        [
            AttemptStatus::Declined,
            AttemptStatus::Failed,
            AttemptStatus::Succeeded
        ]
    );
    // a paid payment takes no new attempt
    let late = f
        .store
        .begin_attempt(attempt(&booking, patient, PaymentMethod::Card))
        .await;
    assert!(
        matches!(late, Err(StoreError::Conflict(Conflict::PaymentNotPending))),
        "{late:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn one_attempt_in_flight_at_a_time_and_cash_pays_at_once() {
    let f = fixture().await;
    let (booking, patient) = booked(&f).await;
    f.store
        .begin_attempt(attempt(&booking, patient, PaymentMethod::Card))
        .await
        .unwrap();
    let second = f
        .store
        .begin_attempt(attempt(&booking, patient, PaymentMethod::Card))
        .await;
    assert!(
        matches!(
            second,
            Err(StoreError::Conflict(Conflict::PaymentInProgress))
        ),
        "{second:?}"
    );
    let cash = f
        .store
        .begin_attempt(attempt(&booking, patient, PaymentMethod::Cash))
        .await;
    assert!(
        matches!(cash, Err(StoreError::Conflict(Conflict::PaymentInProgress))),
        "{cash:?}"
    );
    // an appointment whose payment is being charged cannot be cancelled meanwhile
    let cancelled = f
        .store
        .cancel(
            Cancellation {
                appointment_id: booking.appointment.id,
                cancelled_by: patient,
                reason: None,
                at: Utc::now(),
            },
            AppointmentStatus::Booked,
            None,
        )
        .await;
    assert!(
        matches!(
            cancelled,
            Err(StoreError::Conflict(Conflict::PaymentInProgress))
        ),
        "{cancelled:?}"
    );

    let (other, other_patient) = booked(&f).await;
    let paid = f
        .store
        .begin_attempt(attempt(&other, other_patient, PaymentMethod::Cash))
        .await
        .unwrap();
    assert_eq!(paid.payment.status, PaymentStatus::Paid);
}

#[tokio::test(flavor = "multi_thread")]
async fn cancelling_a_paid_appointment_needs_its_refund_in_the_same_transaction() {
    let f = fixture().await;
    let (booking, patient) = booked(&f).await;
    pay_by_card(&f, &booking, patient).await;
    let cancellation = Cancellation {
        appointment_id: booking.appointment.id,
        cancelled_by: patient,
        reason: None,
        at: Utc::now(),
    };

    let without_refund = f
        .store
        .cancel(cancellation.clone(), AppointmentStatus::Booked, None)
        .await;
    assert!(
        matches!(
            without_refund,
            Err(StoreError::Conflict(Conflict::PaymentNotSettled))
        ),
        "{without_refund:?}"
    );
    // a stale expectation rolls the refund back with the cancel
    let stale = f
        .store
        .cancel(
            cancellation.clone(),
            AppointmentStatus::CheckedIn,
            Some(refund(&booking, 5000, patient)),
        )
        .await;
    assert!(
        matches!(
            stale,
            Err(StoreError::Conflict(Conflict::InvalidTransition))
        ),
        "{stale:?}"
    );
    assert_eq!(
        PaymentRepository::get(&f.store, booking.payment.id)
            .await
            .unwrap()
            .refunds
            .len(),
        0
    );

    let cancelled = f
        .store
        .cancel(
            cancellation,
            AppointmentStatus::Booked,
            Some(refund(&booking, 5000, patient)),
        )
        .await
        .unwrap();
    assert_eq!(
        (cancelled.appointment.status, cancelled.payment.status),
        (AppointmentStatus::Cancelled, PaymentStatus::Refunded)
    );
    assert_eq!(f.slot_status(booking.appointment.slot_id).await, "free");
    assert!(f.violations().await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_refunds_never_exceed_the_paid_amount() {
    let f = fixture().await;
    let (booking, patient) = booked(&f).await;
    pay_by_card(&f, &booking, patient).await;
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let store = f.store.clone();
            let new = refund(&booking, 1500, patient);
            tokio::spawn(async move { store.refund(new).await })
        })
        .collect();
    let mut ok = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => ok += 1,
            Err(StoreError::Conflict(
                Conflict::RefundExceedsPaid | Conflict::PaymentNotRefundable,
            )) => {}
            Err(other) => panic!("{other:?}"),
        }
    }
    assert_eq!(ok, 3, "3 × 15.00 fit in 50.00, a fourth does not");
    let details = PaymentRepository::get(&f.store, booking.payment.id)
        .await
        .unwrap();
    assert_eq!(
        (details.payment.refunded_cents, details.payment.status),
        (4500, PaymentStatus::PartiallyRefunded)
    );
    assert!(f.violations().await.is_empty());
}

async fn refused(f: &Fixture, sql: &str) -> String {
    refused_by(&mut f.db.connect().await.unwrap(), sql).await
}

#[tokio::test(flavor = "multi_thread")]
async fn raw_sql_cannot_break_invariant_five() {
    let f = fixture().await;
    let (booking, patient) = booked(&f).await;
    let payment = booking.payment.id;
    assert_eq!(
        refused(
            &f,
            &format!("UPDATE payments SET status = 'paid', paid_at = now() WHERE id = '{payment}'")
        )
        .await,
        "payments_status_transition"
    );
    assert_eq!(
        refused(
            &f,
            &format!("UPDATE payments SET amount_cents = 1 WHERE id = '{payment}'")
        )
        .await,
        "payments_immutable_columns"
    );
    assert_eq!(
        refused(&f, &format!("INSERT INTO refunds (id, payment_id, amount_cents, currency, reason, created_by) VALUES (gen_random_uuid(), '{payment}', 100, 'EUR', 'x', '{patient}')")).await,
        "refunds_payment_not_paid"
    );
    assert_eq!(
        refused(&f, &format!("INSERT INTO payment_attempts (id, payment_id, idempotency_key, method, card_token, amount_cents, currency, status, created_by) VALUES (gen_random_uuid(), '{payment}', gen_random_uuid(), 'card', 'tok', 1, 'EUR', 'pending', '{patient}')")).await,
        "payment_attempts_amount_matches"
    );
    assert_eq!(
        refused(&f, &format!("INSERT INTO payment_attempts (id, payment_id, idempotency_key, method, card_token, amount_cents, currency, status, created_by) VALUES (gen_random_uuid(), '{payment}', gen_random_uuid(), 'card', 'tok', 5000, 'EUR', 'succeeded', '{patient}')")).await,
        "payment_attempts_status_transition"
    );
    pay_by_card(&f, &booking, patient).await;
    assert_eq!(refused(&f, &format!("UPDATE payments SET refunded_cents = 100, status = 'partially_refunded' WHERE id = '{payment}'")).await, "payments_status_transition");
    assert_eq!(
        refused(
            &f,
            &format!(
                "UPDATE payments SET status = 'pending', paid_at = NULL WHERE id = '{payment}'"
            )
        )
        .await,
        "payments_status_transition"
    );
    assert_eq!(
        refused(
            &f,
            &format!(
                "UPDATE payment_attempts SET status = 'failed' WHERE payment_id = '{payment}'"
            )
        )
        .await,
        "payment_attempts_status_transition"
    );
    assert_eq!(
        refused(
            &f,
            &format!("DELETE FROM payment_attempts WHERE payment_id = '{payment}'")
        )
        .await,
        "payment_attempts_append_only"
    );
    assert_eq!(
        refused(&f, &format!("INSERT INTO refunds (id, payment_id, amount_cents, currency, reason, created_by) VALUES (gen_random_uuid(), '{payment}', 5001, 'EUR', 'x', '{patient}')")).await,
        "refunds_within_paid"
    );
    assert_eq!(
        refused(&f, &format!("INSERT INTO refunds (id, payment_id, amount_cents, currency, reason, created_by) VALUES (gen_random_uuid(), '{payment}', 100, 'USD', 'x', '{patient}')")).await,
        "refunds_currency_matches"
    );
    assert_eq!(
        refused(&f, &format!("INSERT INTO refunds (id, payment_id, amount_cents, currency, reason, created_by) VALUES (gen_random_uuid(), '{payment}', -5, 'EUR', 'x', '{patient}')")).await,
        "refunds_amount_positive"
    );
    f.store
        .refund(refund(&booking, 100, patient))
        .await
        .unwrap();
    assert_eq!(
        refused(
            &f,
            &format!("UPDATE refunds SET amount_cents = 1 WHERE payment_id = '{payment}'")
        )
        .await,
        "refunds_append_only"
    );
    assert_eq!(
        refused(
            &f,
            &format!("DELETE FROM refunds WHERE payment_id = '{payment}'")
        )
        .await,
        "refunds_append_only"
    );
    assert_eq!(
        refused(&f, &format!("UPDATE appointments SET status = 'cancelled', cancelled_at = now() WHERE id = '{}'", booking.appointment.id)).await,
        "payments_not_settled_on_cancel"
    );
    assert!(f.violations().await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn idempotency_claims_are_exclusive_replayable_and_scoped() {
    let f = fixture().await;
    let user = f.patient().await;
    let other = f.patient().await;
    let stale_before = Utc::now() - Duration::minutes(5);
    let claims: Vec<_> = (0..16)
        .map(|_| {
            let store = f.store.clone();
            tokio::spawn(async move {
                store
                    .begin(user, "key-1".into(), [7; 32], stale_before)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut started = 0;
    for claim in claims {
        match claim.await.unwrap() {
            IdempotencyStart::Started => started += 1,
            IdempotencyStart::InProgress => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(started, 1, "exactly one concurrent claim does the work");
    f.store
        .complete(user, "key-1".into(), 201, b"{\"ok\":true}".to_vec())
        .await
        .unwrap();
    assert_eq!(
        f.store
            .begin(user, "key-1".into(), [7; 32], stale_before)
            .await
            .unwrap(),
        IdempotencyStart::Replay {
            status: 201,
            body: b"{\"ok\":true}".to_vec()
        }
    );
    assert_eq!(
        f.store
            .begin(user, "key-1".into(), [8; 32], stale_before)
            .await
            .unwrap(),
        IdempotencyStart::Mismatch
    );
    // keys are per user
    assert_eq!(
        f.store
            .begin(other, "key-1".into(), [8; 32], stale_before)
            .await
            .unwrap(),
        IdempotencyStart::Started
    );
    // a released claim can be taken again; an abandoned one is taken over
    f.store.release(other, "key-1".into()).await.unwrap();
    assert_eq!(
        f.store
            .begin(other, "key-1".into(), [8; 32], stale_before)
            .await
            .unwrap(),
        IdempotencyStart::Started
    );
    assert_eq!(
        f.store
            .begin(other, "key-1".into(), [8; 32], stale_before)
            .await
            .unwrap(),
        IdempotencyStart::InProgress
    );
    assert_eq!(
        f.store
            .begin(
                other,
                "key-1".into(),
                [8; 32],
                Utc::now() + Duration::seconds(1)
            )
            .await
            .unwrap(),
        IdempotencyStart::Started
    );
}
