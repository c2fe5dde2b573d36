//! Invariants 3 and 4 hold even against raw SQL: each statement below is refused by a
//! trigger or constraint of the database, whatever the application does.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{at, fixture, refused_by};
use diesel_async::SimpleAsyncConnection;

#[tokio::test(flavor = "multi_thread")]
async fn illegal_status_changes_are_refused_in_plain_sql() {
    let f = fixture().await;
    let doctor = f.doctor().await;
    let slot = f.slot(doctor.id, at(9, 9, 0)).await;
    let other_slot = f.slot(doctor.id, at(9, 10, 0)).await;
    let booking = f.book(f.patient().await, slot.id).await.unwrap();
    let (appointment, payment) = (booking.appointment.id, booking.payment.id);
    let mut conn = f.db.connect().await.unwrap();

    // booked -> fulfilled skips check-in
    let sql = format!("UPDATE appointments SET status = 'fulfilled' WHERE id = '{appointment}'");
    assert_eq!(
        refused_by(&mut conn, &sql).await,
        "appointments_status_transition"
    );
    // a payment cannot be refunded before it was paid
    let sql = format!("UPDATE payments SET status = 'refunded' WHERE id = '{payment}'");
    assert_eq!(
        refused_by(&mut conn, &sql).await,
        "payments_status_transition"
    );
    // a booked slot cannot be freed or blocked behind the appointment's back
    let sql = format!("UPDATE slots SET status = 'free' WHERE id = '{}'", slot.id);
    assert_eq!(
        refused_by(&mut conn, &sql).await,
        "slots_status_consistency"
    );
    let sql = format!(
        "UPDATE slots SET status = 'busy-unavailable' WHERE id = '{}'",
        slot.id
    );
    assert_eq!(
        refused_by(&mut conn, &sql).await,
        "slots_status_consistency"
    );
    // a free slot cannot be marked busy without an appointment
    let sql = format!(
        "UPDATE slots SET status = 'busy' WHERE id = '{}'",
        other_slot.id
    );
    assert_eq!(
        refused_by(&mut conn, &sql).await,
        "slots_status_consistency"
    );
    // an appointment cannot move to another patient
    let other_patient = f.patient().await;
    let sql = format!(
        "UPDATE appointments SET patient_id = '{other_patient}' WHERE id = '{appointment}'"
    );
    assert_eq!(
        refused_by(&mut conn, &sql).await,
        "appointments_immutable_columns"
    );
    // history is not deleted
    let sql = format!("DELETE FROM payments WHERE id = '{payment}'");
    assert_eq!(refused_by(&mut conn, &sql).await, "payments_append_only");
    let sql = format!("DELETE FROM appointments WHERE id = '{appointment}'");
    assert_eq!(
        refused_by(&mut conn, &sql).await,
        "appointments_append_only"
    );

    // cancelled is final
    conn.batch_execute(&format!(
        "UPDATE appointments SET status = 'cancelled', cancelled_at = now() WHERE id = '{appointment}'"
    ))
    .await
    .unwrap();
    let sql = format!(
        "UPDATE appointments SET status = 'booked', cancelled_at = NULL WHERE id = '{appointment}'"
    );
    assert_eq!(
        refused_by(&mut conn, &sql).await,
        "appointments_status_transition"
    );
    let sql = format!("UPDATE payments SET status = 'pending' WHERE id = '{payment}'");
    assert_eq!(
        refused_by(&mut conn, &sql).await,
        "payments_status_transition"
    );
    assert!(f.violations().await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn legal_transitions_pass_the_trigger() {
    let f = fixture().await;
    let doctor = f.doctor().await;
    let slot = f.slot(doctor.id, at(9, 9, 0)).await;
    let booking = f.book(f.patient().await, slot.id).await.unwrap();
    let id = booking.appointment.id;
    let mut conn = f.db.connect().await.unwrap();
    conn.batch_execute(&format!(
        "UPDATE appointments SET status = 'checked-in' WHERE id = '{id}'; \
         UPDATE appointments SET status = 'fulfilled' WHERE id = '{id}';"
    ))
    .await
    .unwrap();
    // a fulfilled visit still occupies its slot
    assert_eq!(f.slot_status(slot.id).await, "busy");
    assert!(f.violations().await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn rows_that_break_the_model_are_refused_at_insert() {
    let f = fixture().await;
    let doctor = f.doctor().await;
    let patient = f.patient().await;
    let slot = f.slot(doctor.id, at(9, 9, 0)).await;
    let mut conn = f.db.connect().await.unwrap();
    let sql = format!(
        "INSERT INTO slots (id, doctor_id, starts_at, ends_at, status) \
         VALUES (gen_random_uuid(), '{}', '2030-02-01 09:00Z', '2030-02-01 09:30Z', 'busy')",
        doctor.id
    );
    assert_eq!(
        refused_by(&mut conn, &sql).await,
        "slots_status_consistency"
    );
    // an appointment must copy its slot's doctor and interval
    let sql = format!(
        "INSERT INTO appointments (id, patient_id, doctor_id, slot_id, starts_at, ends_at, reason, booked_by) \
         VALUES (gen_random_uuid(), '{patient}', '{}', '{}', '2030-01-09 09:00Z', '2030-01-09 11:00Z', '', '{patient}')",
        doctor.id, slot.id
    );
    assert_eq!(refused_by(&mut conn, &sql).await, "appointments_slot_fkey");
    // a new appointment starts booked
    let sql = format!(
        "INSERT INTO appointments (id, patient_id, doctor_id, slot_id, starts_at, ends_at, reason, booked_by, status) \
         VALUES (gen_random_uuid(), '{patient}', '{}', '{}', '{}', '{}', '', '{patient}', 'fulfilled')",
        doctor.id,
        slot.id,
        slot.starts_at.to_rfc3339(),
        slot.ends_at.to_rfc3339()
    );
    assert_eq!(
        refused_by(&mut conn, &sql).await,
        "appointments_status_transition"
    );
    // a patient profile cannot belong to a doctor account
    let sql = format!(
        "INSERT INTO patients (user_id, date_of_birth, sex) VALUES ('{}', '1990-01-01', 'male')",
        doctor.id
    );
    assert_eq!(refused_by(&mut conn, &sql).await, "patients_user_fkey");
    assert!(f.violations().await.is_empty());
}
