//! Scheduling over HTTP: cross-doctor search, holds, rescheduling, series, the waitlist and
//! its notifications, and the no-show count — each followed by the invariant queries.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{Server, assert_problem, later};

fn ids(body: &Value) -> Vec<String> {
    body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|slot| slot["id"].as_str().expect("id").to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn search_lists_bookable_slots_of_a_specialty_in_time_order() {
    let server = Server::start().await;
    let admin = server.admin().await;
    let (cardio, cardio_id) = server.doctor(&admin).await;
    let (derma, derma_id) = server.doctor(&admin).await;
    let (status, body) = server
        .call(
            reqwest::Method::PATCH,
            &format!("/doctors/{derma_id}"),
            Some(&admin),
            Some(json!({"specialty": "Dermatology"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let derm_slots = server
        .slots(
            &derma,
            &derma_id,
            &[later(18), later(20), later(22), later(24)],
        )
        .await;
    server.slots(&cardio, &cardio_id, &[later(19)]).await;
    let (patient, _) = server.patient().await;
    let (holder, _) = server.patient().await;
    server.book(&patient, &derm_slots[2]).await; // later(22)
    let (status, _) = server
        .post(
            &format!("/slots/{}/hold", derm_slots[3]),
            Some(&holder),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);

    let window = format!(
        "from={}&to={}",
        later(0).format("%Y-%m-%dT%H:%M:%SZ"),
        later(40).format("%Y-%m-%dT%H:%M:%SZ")
    );
    let (status, body) = server
        .get(&format!("/slots?specialty=dermatology&{window}"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // free, not held, this specialty only, by start: later(18) then later(20)
    assert_eq!(ids(&body), derm_slots[..2].to_vec());
    let (_, all) = server.get(&format!("/slots?{window}"), None).await;
    assert_eq!(ids(&all).len(), 3, "{all}");

    // one per page, following the cursor
    let (_, first) = server
        .get(
            &format!("/slots?specialty=Dermatology&limit=1&{window}"),
            None,
        )
        .await;
    assert_eq!(ids(&first), vec![derm_slots[0].clone()]);
    let cursor = first["next_cursor"].as_str().expect("cursor");
    let (_, second) = server
        .get(
            &format!("/slots?specialty=Dermatology&limit=1&cursor={cursor}&{window}"),
            None,
        )
        .await;
    assert_eq!(ids(&second), vec![derm_slots[1].clone()]);

    let (status, body) = server
        .get(
            &format!(
                "/slots?from={}&to={}",
                later(10).format("%Y-%m-%dT%H:%M:%SZ"),
                later(2).format("%Y-%m-%dT%H:%M:%SZ")
            ),
            None,
        )
        .await;
    assert_problem(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hold_admits_only_its_holder_lapses_by_itself_and_then_goes_to_the_waitlist() {
    let server =
        Server::start_with(&[("SHMS_HOLD_TTL_SECS", "1"), ("SHMS_HOLD_SWEEP_MS", "200")]).await;
    let admin = server.admin().await;
    let (doctor, doctor_id) = server.doctor(&admin).await;
    let slots = server
        .slots(&doctor, &doctor_id, &[later(4), later(6)])
        .await;
    let (holder, holder_id) = server.patient().await;
    let (other, _) = server.patient().await;
    let (waiting, _) = server.patient().await;

    let (status, body) = server
        .post(
            &format!("/slots/{}/hold", slots[0]),
            Some(&holder),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["hold"]["slot_id"], slots[0].as_str());
    assert_eq!(body["hold"]["patient_id"], holder_id.as_str());
    let (status, body) = server
        .post("/appointments", Some(&other), json!({"slot_id": slots[0]}))
        .await;
    assert_problem(status, &body, StatusCode::CONFLICT, "slot_unavailable");
    let (status, body) = server
        .post(
            &format!("/slots/{}/hold", slots[0]),
            Some(&other),
            json!({}),
        )
        .await;
    assert_problem(status, &body, StatusCode::CONFLICT, "slot_unavailable");
    let (status, body) = server
        .post(
            &format!("/slots/{}/hold", slots[0]),
            Some(&doctor),
            json!({}),
        )
        .await;
    assert_problem(status, &body, StatusCode::FORBIDDEN, "forbidden");
    // the holder books through their own hold
    server.book(&holder, &slots[0]).await;

    // the second slot: held, then left to lapse while a patient waits for this doctor
    let (status, body) = server
        .post(
            "/waitlist",
            Some(&waiting),
            json!({"doctor_id": doctor_id, "from": later(0), "to": later(48)}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["status"], "waiting");
    let (status, _) = server
        .post(
            &format!("/slots/{}/hold", slots[1]),
            Some(&holder),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    // lapsed: the sweep has offered it to the waiting patient, who now holds it
    let (status, notes) = server.get("/me/notifications", Some(&waiting)).await;
    assert_eq!(status, StatusCode::OK, "{notes}");
    assert_eq!(notes["items"].as_array().map(Vec::len), Some(1), "{notes}");
    assert_eq!(notes["items"][0]["kind"], "waitlist_offer");
    assert_eq!(notes["items"][0]["payload"]["slot_id"], slots[1].as_str());
    let (status, body) = server
        .post("/appointments", Some(&other), json!({"slot_id": slots[1]}))
        .await;
    assert_problem(status, &body, StatusCode::CONFLICT, "slot_unavailable");
    server.book(&waiting, &slots[1]).await;
    assert_eq!(server.violations().await, vec![]);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_hold_does_not_block_booking() {
    let server = Server::start_with(&[("SHMS_HOLD_TTL_SECS", "1")]).await;
    let admin = server.admin().await;
    let (doctor, doctor_id) = server.doctor(&admin).await;
    let slots = server.slots(&doctor, &doctor_id, &[later(4)]).await;
    let (holder, _) = server.patient().await;
    let (other, _) = server.patient().await;
    let (status, _) = server
        .post(
            &format!("/slots/{}/hold", slots[0]),
            Some(&holder),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    server.book(&other, &slots[0]).await;
    assert_eq!(server.violations().await, vec![]);
}

#[tokio::test(flavor = "multi_thread")]
async fn rescheduling_moves_the_appointment_with_its_payment_or_changes_nothing() {
    let server = Server::start().await;
    let admin = server.admin().await;
    let (doctor, doctor_id) = server.doctor(&admin).await;
    let (other_doctor, other_doctor_id) = server.doctor(&admin).await;
    let slots = server
        .slots(&doctor, &doctor_id, &[later(4), later(6), later(8)])
        .await;
    let elsewhere = server
        .slots(&other_doctor, &other_doctor_id, &[later(10)])
        .await;
    let (patient, _) = server.patient().await;
    let (other, _) = server.patient().await;
    let (appointment, payment) = server.book(&patient, &slots[0]).await;
    server.book(&other, &slots[2]).await;
    let (status, body) = server
        .post(
            &format!("/payments/{payment}/pay"),
            Some(&patient),
            json!({"method": "card", "card_token": "tok_visa"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let path = format!("/appointments/{appointment}/reschedule");
    let (status, body) = server
        .post(&path, Some(&patient), json!({"slot_id": slots[1]}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["appointment"]["id"], appointment.as_str());
    assert_eq!(body["appointment"]["slot_id"], slots[1].as_str());
    assert_eq!(body["payment"]["id"], payment.as_str());
    assert_eq!(body["payment"]["status"], "paid");
    let (_, free) = server
        .get(&format!("/doctors/{doctor_id}/slots?status=free"), None)
        .await;
    assert_eq!(ids(&free), vec![slots[0].clone()]);

    let (status, body) = server
        .post(&path, Some(&patient), json!({"slot_id": slots[2]}))
        .await;
    assert_problem(status, &body, StatusCode::CONFLICT, "slot_unavailable");
    let (status, body) = server
        .post(&path, Some(&patient), json!({"slot_id": elsewhere[0]}))
        .await;
    assert_problem(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    let (status, body) = server
        .post(&path, Some(&doctor), json!({"slot_id": slots[0]}))
        .await;
    assert_problem(status, &body, StatusCode::FORBIDDEN, "forbidden");
    let (_, still) = server
        .get(&format!("/appointments/{appointment}"), Some(&patient))
        .await;
    assert_eq!(still["appointment"]["slot_id"], slots[1].as_str());
    assert_eq!(server.violations().await, vec![]);
    assert!(server.shms_check());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_series_books_all_or_nothing_and_names_the_taken_slots() {
    let server = Server::start().await;
    let admin = server.admin().await;
    let (doctor, doctor_id) = server.doctor(&admin).await;
    // four weekly visits
    let starts: Vec<_> = (0..4).map(|week| later(4 + 48 * 7 * week)).collect();
    let slots = server.slots(&doctor, &doctor_id, &starts).await;
    let (patient, patient_id) = server.patient().await;
    let (other, _) = server.patient().await;
    server.book(&other, &slots[2]).await;

    let (status, body) = server
        .post(
            "/appointments/series",
            Some(&patient),
            json!({"slot_ids": slots, "reason": "physiotherapy"}),
        )
        .await;
    assert_problem(status, &body, StatusCode::CONFLICT, "slot_unavailable");
    assert_eq!(body["slot_ids"], json!([slots[2]]));
    let mine = format!("SELECT count(*) AS n FROM appointments WHERE patient_id = '{patient_id}'");
    assert_eq!(server.count(&mine).await, 0);

    let wanted = [&slots[0], &slots[1], &slots[3]];
    let (status, body) = server
        .post(
            "/appointments/series",
            Some(&patient),
            json!({"slot_ids": wanted, "reason": "physiotherapy"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let booked: Vec<_> = body["appointments"]
        .as_array()
        .expect("appointments")
        .iter()
        .map(|a| a["slot_id"].as_str().expect("slot").to_owned())
        .collect();
    assert_eq!(booked, wanted.map(String::clone));
    assert_eq!(body["payments"].as_array().map(Vec::len), Some(3));
    assert_eq!(server.count(&mine).await, 3);

    let (status, body) = server
        .post(
            "/appointments/series",
            Some(&patient),
            json!({"slot_ids": [slots[0], slots[0]]}),
        )
        .await;
    assert_problem(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert_eq!(server.violations().await, vec![]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cancellation_produces_exactly_one_offer_for_the_first_waiting_patient() {
    let server = Server::start().await;
    let admin = server.admin().await;
    let (doctor, doctor_id) = server.doctor(&admin).await;
    let slots = server.slots(&doctor, &doctor_id, &[later(4)]).await;
    let (booker, _) = server.patient().await;
    let (first, _) = server.patient().await;
    let (second, _) = server.patient().await;
    let (appointment, _) = server.book(&booker, &slots[0]).await;
    for waiting in [&first, &second] {
        let (status, body) = server
            .post(
                "/waitlist",
                Some(waiting),
                json!({"doctor_id": doctor_id, "from": later(0), "to": later(48)}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let (status, body) = server
        .post(
            &format!("/appointments/{appointment}/cancel"),
            Some(&booker),
            json!({"reason": "cannot come"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let (_, offers) = server.get("/me/notifications", Some(&first)).await;
    assert_eq!(
        offers["items"].as_array().map(Vec::len),
        Some(1),
        "{offers}"
    );
    assert_eq!(offers["items"][0]["payload"]["slot_id"], slots[0].as_str());
    let (_, none) = server.get("/me/notifications", Some(&second)).await;
    assert_eq!(none["items"], json!([]));
    let (_, entries) = server.get("/me/waitlist", Some(&first)).await;
    assert_eq!(entries["items"][0]["status"], "offered");
    assert_eq!(entries["items"][0]["offered_slot_id"], slots[0].as_str());
    let (_, entries) = server.get("/me/waitlist", Some(&second)).await;
    assert_eq!(entries["items"][0]["status"], "waiting");
    let (status, body) = server
        .post("/appointments", Some(&second), json!({"slot_id": slots[0]}))
        .await;
    assert_problem(status, &body, StatusCode::CONFLICT, "slot_unavailable");
    server.book(&first, &slots[0]).await;
    assert_eq!(
        server
            .count("SELECT count(*) AS n FROM notifications")
            .await,
        1
    );
    let (status, body) = server
        .post(
            "/waitlist",
            Some(&doctor),
            json!({"doctor_id": doctor_id, "from": later(0), "to": later(48)}),
        )
        .await;
    assert_problem(status, &body, StatusCode::FORBIDDEN, "forbidden");
    assert_eq!(server.violations().await, vec![]);
    assert!(server.shms_check());
}

#[tokio::test(flavor = "multi_thread")]
async fn admins_see_a_patients_no_show_count() {
    let server = Server::start().await;
    let admin = server.admin().await;
    let (doctor, doctor_id) = server.doctor(&admin).await;
    let slots = server
        .slots(&doctor, &doctor_id, &[later(4), later(6)])
        .await;
    let (patient, patient_id) = server.patient().await;
    let (missed, _) = server.book(&patient, &slots[0]).await;
    server.book(&patient, &slots[1]).await;
    // the start has not come yet over HTTP; the state machine allows booked -> noshow
    let mut conn = server.db.connect().await.expect("connect");
    diesel_async::SimpleAsyncConnection::batch_execute(
        &mut conn,
        &format!("UPDATE appointments SET status = 'noshow' WHERE id = '{missed}'"),
    )
    .await
    .expect("mark no-show");
    let (status, body) = server
        .get(&format!("/users/{patient_id}"), Some(&admin))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["no_show_count"], 1, "{body}");
    let (_, me) = server.get("/me", Some(&patient)).await;
    assert!(me.get("no_show_count").is_none(), "{me}");
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_holds_and_bookings_on_one_slot_have_one_winner() {
    let server = Server::start().await;
    let admin = server.admin().await;
    let (doctor, doctor_id) = server.doctor(&admin).await;
    let starts: Vec<_> = (0..8).map(|n| later(2 * n)).collect();
    let slots = server.slots(&doctor, &doctor_id, &starts).await;
    let mut patients = Vec::new();
    for _ in 0..16 {
        patients.push(server.patient().await.0);
    }
    let server = std::sync::Arc::new(server);
    for slot in &slots {
        let mut racers = Vec::new();
        for (n, token) in patients.iter().enumerate() {
            let (server, token, slot) = (server.clone(), token.clone(), slot.clone());
            racers.push(tokio::spawn(async move {
                if n % 2 == 0 {
                    server
                        .post(&format!("/slots/{slot}/hold"), Some(&token), json!({}))
                        .await
                } else {
                    server
                        .post("/appointments", Some(&token), json!({"slot_id": slot}))
                        .await
                }
            }));
        }
        let mut winners = 0;
        for racer in racers {
            let (status, body) = racer.await.expect("racer");
            match status {
                StatusCode::CREATED => winners += 1,
                _ => assert_problem(status, &body, StatusCode::CONFLICT, "slot_unavailable"),
            }
        }
        assert_eq!(winners, 1, "slot {slot}");
    }
    assert_eq!(server.violations().await, vec![]);
    assert!(server.shms_check());
}
