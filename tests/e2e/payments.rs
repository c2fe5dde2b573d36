//! Paying, refunding and idempotency through the API, with the simulated gateway.

use reqwest::StatusCode;
use serde_json::json;

use crate::harness::{Server, assert_problem, later, soon};

struct Clinic {
    server: std::sync::Arc<Server>,
    admin: String,
    doctor: String,
    doctor_id: String,
    patient: String,
}

async fn clinic() -> Clinic {
    let server = std::sync::Arc::new(Server::start().await);
    let admin = server.admin().await;
    let (doctor, doctor_id) = server.doctor(&admin).await;
    let (patient, _) = server.patient().await;
    Clinic {
        server,
        admin,
        doctor,
        doctor_id,
        patient,
    }
}

impl Clinic {
    /// Books the n-th later slot for the patient; returns (appointment, payment).
    async fn booking(&self, n: i64) -> (String, String) {
        let slot = self
            .server
            .slots(&self.doctor, &self.doctor_id, &[later(n)])
            .await
            .remove(0);
        self.server.book(&self.patient, &slot).await
    }

    async fn pay(&self, payment: &str, token: &str) -> (StatusCode, serde_json::Value) {
        self.server
            .post(
                &format!("/payments/{payment}/pay"),
                Some(&self.patient),
                json!({"method": "card", "card_token": token}),
            )
            .await
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn decline_gateway_error_and_bad_token_leave_the_payment_pending_then_it_pays_once() {
    let c = clinic().await;
    let (_, payment) = c.booking(2).await;

    let (status, problem) = c.pay(&payment, "tok_chargeDeclined").await;
    assert_problem(
        status,
        &problem,
        StatusCode::PAYMENT_REQUIRED,
        "payment_declined",
    );
    let (status, problem, _) = c
        .server
        .post_keyed(
            &format!("/payments/{payment}/pay"),
            &c.patient,
            "gw-err",
            json!({"method": "card", "card_token": "tok_gateway_error"}),
        )
        .await;
    assert_problem(
        status,
        &problem,
        StatusCode::SERVICE_UNAVAILABLE,
        "gateway_unavailable",
    );
    assert_eq!(problem["__retry_after"], true, "503 carries Retry-After");
    let (status, problem) = c.pay(&payment, "tok_unknown").await;
    assert_problem(
        status,
        &problem,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert_eq!(problem["errors"][0]["field"], "card_token");

    let (_, details) = c
        .server
        .get(&format!("/payments/{payment}"), Some(&c.patient))
        .await;
    assert_eq!(details["status"], "pending");
    let statuses: Vec<_> = details["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["status"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(statuses, ["declined", "failed", "failed"]);
    assert!(
        !details.to_string().contains("tok_"),
        "card tokens are never echoed"
    );

    // the 503 was not stored: retrying the same key does the work
    let (status, paid, replayed) = c
        .server
        .post_keyed(
            &format!("/payments/{payment}/pay"),
            &c.patient,
            "gw-err",
            json!({"method": "card", "card_token": "tok_gateway_error"}),
        )
        .await;
    assert_eq!(
        (status, replayed),
        (StatusCode::SERVICE_UNAVAILABLE, false),
        "{paid}"
    );

    let (status, paid) = c.pay(&payment, "tok_visa").await;
    assert_eq!(status, StatusCode::OK, "{paid}");
    assert_eq!(paid["payment"]["status"], "paid");
    assert!(paid["payment"]["paid_at"].is_string());
    let (status, problem) = c.pay(&payment, "tok_visa").await;
    assert_problem(
        status,
        &problem,
        StatusCode::CONFLICT,
        "payment_not_pending",
    );
    assert_eq!(
        c.server
            .count("SELECT count(*) AS n FROM payment_attempts WHERE status = 'succeeded'")
            .await,
        1
    );
    assert!(c.server.violations().await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn who_may_pay_refund_and_read() {
    let c = clinic().await;
    let (_, payment) = c.booking(2).await;
    let (stranger, _) = c.server.patient().await;
    let (other_doctor, _) = c.server.doctor(&c.admin).await;
    let path = format!("/payments/{payment}/pay");
    for token in [&stranger, &other_doctor] {
        let (status, problem) = c
            .server
            .post(
                &path,
                Some(token),
                json!({"method": "card", "card_token": "tok_visa"}),
            )
            .await;
        assert_problem(status, &problem, StatusCode::NOT_FOUND, "not_found");
        let (status, problem) = c
            .server
            .get(&format!("/payments/{payment}"), Some(token))
            .await;
        assert_problem(status, &problem, StatusCode::NOT_FOUND, "not_found");
    }
    // the appointment's doctor reads but does not pay
    assert_eq!(
        c.server
            .get(&format!("/payments/{payment}"), Some(&c.doctor))
            .await
            .0,
        StatusCode::OK
    );
    let (status, problem) = c
        .server
        .post(&path, Some(&c.doctor), json!({"bogus": 1}))
        .await;
    assert_problem(status, &problem, StatusCode::FORBIDDEN, "forbidden");
    // patients pay by card only; admins record cash or insurance only
    let (status, problem) = c
        .server
        .post(&path, Some(&c.patient), json!({"method": "cash"}))
        .await;
    assert_problem(status, &problem, StatusCode::FORBIDDEN, "forbidden");
    let (status, problem) = c
        .server
        .post(&path, Some(&c.patient), json!({"method": "card"}))
        .await;
    assert_problem(
        status,
        &problem,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    let (status, problem) = c
        .server
        .post(&path, Some(&c.patient), json!({"method": "bitcoin"}))
        .await;
    assert_problem(
        status,
        &problem,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    let (status, paid) = c
        .server
        .post(&path, Some(&c.admin), json!({"method": "insurance"}))
        .await;
    assert_eq!(
        (status, paid["payment"]["status"].as_str()),
        (StatusCode::OK, Some("paid")),
        "{paid}"
    );

    let refunds = format!("/payments/{payment}/refunds");
    let (status, problem) = c
        .server
        .post(
            &refunds,
            Some(&c.patient),
            json!({"amount_cents": 100, "reason": "x"}),
        )
        .await;
    assert_problem(status, &problem, StatusCode::FORBIDDEN, "forbidden");
    let (status, problem) = c
        .server
        .post(
            &refunds,
            Some(&stranger),
            json!({"amount_cents": 100, "reason": "x"}),
        )
        .await;
    assert_problem(status, &problem, StatusCode::NOT_FOUND, "not_found");

    // listing is scoped
    let (_, mine) = c.server.get("/payments", Some(&c.patient)).await;
    assert_eq!(mine["items"].as_array().unwrap().len(), 1);
    let (_, theirs) = c.server.get("/payments", Some(&stranger)).await;
    assert!(theirs["items"].as_array().unwrap().is_empty());
    let (_, all_paid) = c.server.get("/payments?status=paid", Some(&c.admin)).await;
    assert_eq!(all_paid["items"].as_array().unwrap().len(), 1);
    let (_, none_pending) = c
        .server
        .get("/payments?status=pending", Some(&c.admin))
        .await;
    assert!(none_pending["items"].as_array().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn refunds_up_to_and_past_the_paid_amount() {
    let c = clinic().await;
    let (_, payment) = c.booking(2).await;
    let refunds = format!("/payments/{payment}/refunds");
    let (status, problem) = c
        .server
        .post(
            &refunds,
            Some(&c.admin),
            json!({"amount_cents": 100, "reason": "early"}),
        )
        .await;
    assert_problem(
        status,
        &problem,
        StatusCode::CONFLICT,
        "payment_not_refundable",
    );
    c.pay(&payment, "tok_visa").await;

    let (status, body) = c
        .server
        .post(
            &refunds,
            Some(&c.admin),
            json!({"amount_cents": 2000, "reason": "goodwill"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(
        (
            body["refund"]["amount_cents"].as_i64(),
            body["payment"]["status"].as_str()
        ),
        (Some(2000), Some("partially_refunded"))
    );
    let (status, problem) = c
        .server
        .post(
            &refunds,
            Some(&c.admin),
            json!({"amount_cents": 3001, "reason": "too much"}),
        )
        .await;
    assert_problem(
        status,
        &problem,
        StatusCode::CONFLICT,
        "refund_exceeds_payment",
    );
    for bad in [
        json!({"amount_cents": 0, "reason": "zero"}),
        json!({"amount_cents": 10, "reason": " "}),
        json!({"amount_cents": 10}),
    ] {
        let (status, problem) = c.server.post(&refunds, Some(&c.admin), bad).await;
        assert_problem(
            status,
            &problem,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        );
    }
    let (status, body) = c
        .server
        .post(
            &refunds,
            Some(&c.admin),
            json!({"amount_cents": 3000, "reason": "rest"}),
        )
        .await;
    assert_eq!(
        (
            status,
            body["payment"]["status"].as_str(),
            body["payment"]["refunded_cents"].as_i64()
        ),
        (StatusCode::CREATED, Some("refunded"), Some(5000))
    );
    let (_, details) = c
        .server
        .get(&format!("/payments/{payment}"), Some(&c.patient))
        .await;
    assert_eq!(details["refunds"].as_array().unwrap().len(), 2);
    assert!(c.server.violations().await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn cancelling_a_paid_appointment_refunds_it_in_full() {
    let c = clinic().await;
    // clinic-side cancellation, any time
    let slot = c
        .server
        .slots(&c.doctor, &c.doctor_id, &[soon(90)])
        .await
        .remove(0);
    let (late, late_payment) = c.server.book(&c.patient, &slot).await;
    c.pay(&late_payment, "tok_visa").await;
    let (status, problem) = c
        .server
        .post(
            &format!("/appointments/{late}/cancel"),
            Some(&c.patient),
            json!({}),
        )
        .await;
    assert_problem(
        status,
        &problem,
        StatusCode::CONFLICT,
        "cancellation_window_closed",
    );
    let (status, body) = c
        .server
        .post(
            &format!("/appointments/{late}/cancel"),
            Some(&c.doctor),
            json!({"reason": "doctor ill"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (
            body["payment"]["status"].as_str(),
            body["payment"]["refunded_cents"].as_i64()
        ),
        (Some("refunded"), Some(5000))
    );

    // patient cancellation before the cut-off, after a partial refund: the rest comes back
    let (early, payment) = c.booking(4).await;
    c.pay(&payment, "tok_visa").await;
    c.server
        .post(
            &format!("/payments/{payment}/refunds"),
            Some(&c.admin),
            json!({"amount_cents": 1000, "reason": "discount"}),
        )
        .await;
    let (status, body) = c
        .server
        .post(
            &format!("/appointments/{early}/cancel"),
            Some(&c.patient),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["payment"]["status"], "refunded");
    let (_, details) = c
        .server
        .get(&format!("/payments/{payment}"), Some(&c.admin))
        .await;
    let amounts: Vec<_> = details["refunds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["amount_cents"].as_i64().unwrap())
        .collect();
    assert_eq!(amounts, [1000, 4000]);
    assert!(c.server.violations().await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn idempotency_keys_replay_refuse_reuse_and_do_the_work_once() {
    let c = clinic().await;
    let slots = c
        .server
        .slots(&c.doctor, &c.doctor_id, &[later(2), later(3)])
        .await;

    let body = json!({"slot_id": slots[0], "reason": "check-up"});
    let (first_status, first, replayed) = c
        .server
        .post_keyed("/appointments", &c.patient, "book-1", body.clone())
        .await;
    assert_eq!(
        (first_status, replayed),
        (StatusCode::CREATED, false),
        "{first}"
    );
    // the same key and body, even formatted differently: the same answer, no second booking
    let reordered = json!({"reason": "check-up", "slot_id": slots[0]});
    let (status, again, replayed) = c
        .server
        .post_keyed("/appointments", &c.patient, "book-1", reordered)
        .await;
    assert_eq!(
        (status, replayed, &again),
        (StatusCode::CREATED, true, &first)
    );
    let (status, problem, _) = c
        .server
        .post_keyed(
            "/appointments",
            &c.patient,
            "book-1",
            json!({"slot_id": slots[1]}),
        )
        .await;
    assert_problem(
        status,
        &problem,
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency_key_reused",
    );
    assert_eq!(
        c.server
            .count("SELECT count(*) AS n FROM appointments")
            .await,
        1
    );
    // keys are scoped to the user: another patient's "book-1" is a fresh request
    let (other, _) = c.server.patient().await;
    let (status, _, replayed) = c
        .server
        .post_keyed(
            "/appointments",
            &other,
            "book-1",
            json!({"slot_id": slots[1]}),
        )
        .await;
    assert_eq!((status, replayed), (StatusCode::CREATED, false));

    // 16 concurrent pays with one key: one charge, everybody gets the one answer or a 409
    let payment = first["payment"]["id"].as_str().unwrap().to_owned();
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let (server, token, path) = (
                c.server.clone(),
                c.patient.clone(),
                format!("/payments/{payment}/pay"),
            );
            tokio::spawn(async move {
                server
                    .post_keyed(
                        &path,
                        &token,
                        "pay-1",
                        json!({"method": "card", "card_token": "tok_visa"}),
                    )
                    .await
            })
        })
        .collect();
    for task in tasks {
        let (status, body, _) = task.await.unwrap();
        match status {
            StatusCode::OK => assert_eq!(body["payment"]["status"], "paid"),
            StatusCode::CONFLICT => assert!(
                ["idempotency_request_in_progress", "payment_in_progress"]
                    .contains(&body["code"].as_str().unwrap()),
                "{body}"
            ),
            other => panic!("{other}: {body}"),
        }
    }
    assert_eq!(
        c.server
            .count("SELECT count(*) AS n FROM payment_attempts")
            .await,
        1,
        "the work was done once"
    );
    let (status, replay, replayed) = c
        .server
        .post_keyed(
            &format!("/payments/{payment}/pay"),
            &c.patient,
            "pay-1",
            json!({"method": "card", "card_token": "tok_visa"}),
        )
        .await;
    assert_eq!(
        (status, replayed, replay["payment"]["status"].as_str()),
        (StatusCode::OK, true, Some("paid"))
    );

    // refunds too
    let path = format!("/payments/{payment}/refunds");
    let refund = json!({"amount_cents": 1000, "reason": "goodwill"});
    let (first_status, first, _) = c
        .server
        .post_keyed(&path, &c.admin, "refund-1", refund.clone())
        .await;
    let (status, again, replayed) = c
        .server
        .post_keyed(&path, &c.admin, "refund-1", refund)
        .await;
    assert_eq!(
        (first_status, status, replayed, &again),
        (StatusCode::CREATED, StatusCode::CREATED, true, &first)
    );
    assert_eq!(c.server.count("SELECT count(*) AS n FROM refunds").await, 1);
    let (status, problem, _) = c
        .server
        .post_keyed(
            &path,
            &c.admin,
            &"k".repeat(300),
            json!({"amount_cents": 1, "reason": "x"}),
        )
        .await;
    assert_problem(
        status,
        &problem,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert!(c.server.violations().await.is_empty());
}
