//! Slots, booking, visibility and cancellation through the API.

use reqwest::StatusCode;
use serde_json::json;

use crate::harness::{Server, assert_problem, later, soon};

#[tokio::test(flavor = "multi_thread")]
async fn book_see_and_cancel_an_appointment() {
    let server = Server::start().await;
    let admin = server.admin().await;
    let (doctor, doctor_id) = server.doctor(&admin).await;
    let (other_doctor, _) = server.doctor(&admin).await;
    let (patient, patient_id) = server.patient().await;
    let (stranger, _) = server.patient().await;
    let slots = server
        .slots(&doctor, &doctor_id, &[later(18), later(19)])
        .await;

    // anyone lists free slots
    let (status, free) = server
        .get(&format!("/doctors/{doctor_id}/slots?status=free"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(free["items"].as_array().unwrap().len(), 2);

    let (status, problem) = server
        .post("/appointments", Some(&doctor), json!({"slot_id": slots[0]}))
        .await;
    assert_problem(status, &problem, StatusCode::FORBIDDEN, "forbidden");

    let (status, booked) = server
        .post(
            "/appointments",
            Some(&patient),
            json!({"slot_id": slots[0], "reason": "chest pain"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{booked}");
    let appointment = &booked["appointment"];
    assert_eq!(
        (
            appointment["status"].as_str(),
            appointment["patient_id"].as_str(),
            appointment["doctor_id"].as_str()
        ),
        (
            Some("booked"),
            Some(patient_id.as_str()),
            Some(doctor_id.as_str())
        )
    );
    assert_eq!(booked["payment"]["status"], "pending");
    assert_eq!(
        (
            booked["payment"]["amount_cents"].as_i64(),
            booked["payment"]["currency"].as_str()
        ),
        (Some(5000), Some("EUR"))
    );
    let id = appointment["id"].as_str().unwrap();

    let (_, busy) = server
        .get(&format!("/doctors/{doctor_id}/slots?status=busy"), None)
        .await;
    assert_eq!(busy["items"][0]["id"], slots[0]);

    // visibility: the patient, the doctor and admins; nobody else learns it exists
    for token in [&patient, &doctor, &admin] {
        let (status, seen) = server
            .get(&format!("/appointments/{id}"), Some(token))
            .await;
        assert_eq!(
            (status, seen["appointment"]["id"].as_str()),
            (StatusCode::OK, Some(id))
        );
    }
    for token in [&stranger, &other_doctor] {
        let (status, problem) = server
            .get(&format!("/appointments/{id}"), Some(token))
            .await;
        assert_problem(status, &problem, StatusCode::NOT_FOUND, "not_found");
        let (status, problem) = server
            .post(
                &format!("/appointments/{id}/cancel"),
                Some(token),
                json!({}),
            )
            .await;
        assert_problem(status, &problem, StatusCode::NOT_FOUND, "not_found");
    }
    let (_, mine) = server.get("/appointments", Some(&patient)).await;
    assert_eq!(mine["items"].as_array().unwrap().len(), 1);
    let (_, theirs) = server.get("/appointments", Some(&stranger)).await;
    assert!(theirs["items"].as_array().unwrap().is_empty());
    let (_, doctors_view) = server
        .get("/appointments?status=booked", Some(&doctor))
        .await;
    assert_eq!(doctors_view["items"].as_array().unwrap().len(), 1);

    let (status, cancelled) = server
        .post(
            &format!("/appointments/{id}/cancel"),
            Some(&patient),
            json!({"reason": "feeling better"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{cancelled}");
    assert_eq!(
        (
            cancelled["appointment"]["status"].as_str(),
            cancelled["payment"]["status"].as_str()
        ),
        (Some("cancelled"), Some("cancelled"))
    );
    let (_, free) = server
        .get(&format!("/doctors/{doctor_id}/slots?status=free"), None)
        .await;
    assert_eq!(
        free["items"].as_array().unwrap().len(),
        2,
        "the slot is free again"
    );
    let (status, problem) = server
        .post(
            &format!("/appointments/{id}/cancel"),
            Some(&patient),
            json!({}),
        )
        .await;
    assert_problem(status, &problem, StatusCode::CONFLICT, "invalid_transition");

    // the freed slot can be booked by someone else; an admin books for a named patient
    let (status, problem) = server
        .post("/appointments", Some(&admin), json!({"slot_id": slots[0]}))
        .await;
    assert_problem(
        status,
        &problem,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    let (_, stranger_me) = server.get("/me", Some(&stranger)).await;
    let (status, rebooked) = server
        .post(
            "/appointments",
            Some(&admin),
            json!({"slot_id": slots[0], "patient_id": stranger_me["id"]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{rebooked}");
    assert!(server.violations().await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn patients_cancel_only_before_the_cutoff_the_clinic_any_time() {
    let server = Server::start().await;
    let admin = server.admin().await;
    let (doctor, doctor_id) = server.doctor(&admin).await;
    let (patient, _) = server.patient().await;
    let slots = server
        .slots(&doctor, &doctor_id, &[soon(120), soon(180)])
        .await;
    let mut ids = Vec::new();
    for slot in &slots {
        let (status, booked) = server
            .post("/appointments", Some(&patient), json!({"slot_id": slot}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{booked}");
        ids.push(booked["appointment"]["id"].as_str().unwrap().to_owned());
    }
    let (status, problem) = server
        .post(
            &format!("/appointments/{}/cancel", ids[0]),
            Some(&patient),
            json!({}),
        )
        .await;
    assert_problem(
        status,
        &problem,
        StatusCode::CONFLICT,
        "cancellation_window_closed",
    );
    let (status, _) = server
        .post(
            &format!("/appointments/{}/cancel", ids[0]),
            Some(&doctor),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = server
        .post(
            &format!("/appointments/{}/cancel", ids[1]),
            Some(&admin),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cutoff_is_configurable() {
    let server = Server::start_with(&[("SHMS_CANCELLATION_CUTOFF_SECS", "3600")]).await;
    let admin = server.admin().await;
    let (doctor, doctor_id) = server.doctor(&admin).await;
    let (patient, _) = server.patient().await;
    let slots = server.slots(&doctor, &doctor_id, &[soon(120)]).await;
    let (_, booked) = server
        .post(
            "/appointments",
            Some(&patient),
            json!({"slot_id": slots[0]}),
        )
        .await;
    let id = booked["appointment"]["id"].as_str().unwrap();
    let (status, body) = server
        .post(
            &format!("/appointments/{id}/cancel"),
            Some(&patient),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn booking_conflicts_are_409_and_unknown_slots_404() {
    let server = Server::start().await;
    let admin = server.admin().await;
    let (doctor, doctor_id) = server.doctor(&admin).await;
    let (other, other_id) = server.doctor(&admin).await;
    let (patient, _) = server.patient().await;
    let (rival, _) = server.patient().await;
    let mine = server.slots(&doctor, &doctor_id, &[later(20)]).await;
    let same_time = server.slots(&other, &other_id, &[later(20)]).await;
    server
        .post("/appointments", Some(&patient), json!({"slot_id": mine[0]}))
        .await;

    let (status, problem) = server
        .post("/appointments", Some(&rival), json!({"slot_id": mine[0]}))
        .await;
    assert_problem(status, &problem, StatusCode::CONFLICT, "slot_unavailable");
    let (status, problem) = server
        .post(
            "/appointments",
            Some(&patient),
            json!({"slot_id": same_time[0]}),
        )
        .await;
    assert_problem(
        status,
        &problem,
        StatusCode::CONFLICT,
        "overlapping_appointment",
    );
    let unknown = uuid::Uuid::new_v4();
    let (status, problem) = server
        .post("/appointments", Some(&patient), json!({"slot_id": unknown}))
        .await;
    assert_problem(status, &problem, StatusCode::NOT_FOUND, "not_found");
    let (status, problem) = server
        .post(
            "/appointments",
            Some(&patient),
            json!({"slot_id": "not-a-uuid"}),
        )
        .await;
    assert_problem(
        status,
        &problem,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert_eq!(problem["errors"][0]["field"], "slot_id", "{problem}");
    assert_eq!(
        server.count("SELECT count(*) AS n FROM appointments").await,
        1
    );
    assert_eq!(server.count("SELECT count(*) AS n FROM payments").await, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn slot_management_is_for_the_doctor_and_admins() {
    let server = Server::start().await;
    let admin = server.admin().await;
    let (doctor, doctor_id) = server.doctor(&admin).await;
    let (other, _) = server.doctor(&admin).await;
    let (patient, _) = server.patient().await;
    let one = json!({"starts_at": later(10), "ends_at": later(11)});

    for token in [&other, &patient] {
        let (status, problem) = server
            .post(
                &format!("/doctors/{doctor_id}/slots"),
                Some(token),
                one.clone(),
            )
            .await;
        assert_problem(status, &problem, StatusCode::FORBIDDEN, "forbidden");
    }
    let (status, created) = server
        .post(
            &format!("/doctors/{doctor_id}/slots"),
            Some(&doctor),
            one.clone(),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["slots"][0]["status"], "free");
    let (status, problem) = server
        .post(&format!("/doctors/{doctor_id}/slots"), Some(&admin), one)
        .await;
    assert_problem(status, &problem, StatusCode::CONFLICT, "slot_overlap");

    let past = json!({"starts_at": soon(-60), "ends_at": soon(-30)});
    let (status, problem) = server
        .post(&format!("/doctors/{doctor_id}/slots"), Some(&doctor), past)
        .await;
    assert_problem(
        status,
        &problem,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    let reversed = json!({"slots": [{"starts_at": later(30), "ends_at": later(29)}]});
    let (status, problem) = server
        .post(
            &format!("/doctors/{doctor_id}/slots"),
            Some(&doctor),
            reversed,
        )
        .await;
    assert_problem(
        status,
        &problem,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert_eq!(problem["errors"][0]["field"], "slots[0].ends_at");
    let (status, problem) = server
        .post(
            &format!("/doctors/{}/slots", uuid::Uuid::new_v4()),
            Some(&admin),
            json!({"starts_at": later(40), "ends_at": later(41)}),
        )
        .await;
    assert_problem(status, &problem, StatusCode::NOT_FOUND, "not_found");

    // range and status filters, and cursor pages
    let batch: Vec<_> = (50..60).map(later).collect();
    server.slots(&doctor, &doctor_id, &batch).await;
    let mut seen = 0;
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!(
            "/doctors/{doctor_id}/slots?limit=4&from={}",
            later(50).to_rfc3339().replace('+', "%2B")
        );
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let (status, page) = server.get(&path, None).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        seen += page["items"].as_array().unwrap().len();
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, 10);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_doctor_checks_in_completes_and_marks_no_shows() {
    let server = Server::start().await;
    let admin = server.admin().await;
    let (doctor, doctor_id) = server.doctor(&admin).await;
    let (patient, _) = server.patient().await;
    let slots = server
        .slots(&doctor, &doctor_id, &[later(8), soon(1)])
        .await;
    let (visit, _) = server.book(&patient, &slots[0]).await;
    let (status, problem) = server
        .post(
            &format!("/appointments/{visit}/complete"),
            Some(&doctor),
            json!({}),
        )
        .await;
    assert_problem(status, &problem, StatusCode::CONFLICT, "invalid_transition");
    let (status, problem) = server
        .post(
            &format!("/appointments/{visit}/check-in"),
            Some(&patient),
            json!({}),
        )
        .await;
    assert_problem(status, &problem, StatusCode::FORBIDDEN, "forbidden");
    let (status, body) = server
        .post(
            &format!("/appointments/{visit}/check-in"),
            Some(&doctor),
            json!({}),
        )
        .await;
    assert_eq!(
        (status, body["appointment"]["status"].as_str()),
        (StatusCode::OK, Some("checked-in")),
        "{body}"
    );
    let (status, body) = server
        .post(
            &format!("/appointments/{visit}/complete"),
            Some(&admin),
            json!({}),
        )
        .await;
    assert_eq!(
        (status, body["appointment"]["status"].as_str()),
        (StatusCode::OK, Some("fulfilled")),
        "{body}"
    );
    // a no-show only once the start time has passed
    let (absent, _) = server.book(&patient, &slots[1]).await;
    let (status, problem) = server
        .post(
            &format!("/appointments/{absent}/no-show"),
            Some(&doctor),
            json!({}),
        )
        .await;
    assert_problem(status, &problem, StatusCode::CONFLICT, "invalid_transition");
    assert!(server.violations().await.is_empty());
}

/// A client that gives up mid-request (timeout) and retries with the same key gets the one
/// booking, never "in progress" for good and never a second booking: once the key is claimed
/// the work and the stored response finish without the client.
#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_gives_up_and_retries_with_its_key_gets_the_one_booking() {
    let server = Server::start().await;
    let admin = server.admin().await;
    let (doctor, doctor_id) = server.doctor(&admin).await;
    let starts: Vec<_> = (0..24).map(|n| later(2 * n)).collect();
    let slots = server.slots(&doctor, &doctor_id, &starts).await;
    let (patient, patient_id) = server.patient().await;
    for (n, slot) in slots.iter().enumerate() {
        let key = format!("give-up-{n}");
        // abandon after a few milliseconds: sometimes before the claim, sometimes after
        let abandoned = server
            .client
            .post(format!("{}/api/v1/appointments", server.base))
            .bearer_auth(&patient)
            .header("Idempotency-Key", &key)
            .timeout(std::time::Duration::from_millis(1 + (n as u64 % 6)))
            .json(&json!({"slot_id": slot}))
            .send()
            .await;
        drop(abandoned);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let (status, body) = loop {
            let (status, body, _) = server
                .post_keyed("/appointments", &patient, &key, json!({"slot_id": slot}))
                .await;
            let in_progress = body["code"] == "idempotency_request_in_progress";
            if !in_progress || std::time::Instant::now() > deadline {
                break (status, body);
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        };
        assert_eq!(status, StatusCode::CREATED, "slot {n}: {body}");
        assert_eq!(body["appointment"]["slot_id"], slot.as_str());
    }
    let booked = format!(
        "SELECT count(*) AS n FROM appointments WHERE patient_id = '{patient_id}' AND status = 'booked'"
    );
    assert_eq!(server.count(&booked).await, 24);
    assert_eq!(server.violations().await, vec![]);
}
