//! The production surface: the OpenAPI document and its page, throttling, metrics,
//! security headers, CORS, and logs that never carry secrets.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::harness::{ADMIN_EMAIL, PASSWORD, Server, assert_problem, later};

#[tokio::test(flavor = "multi_thread")]
async fn the_openapi_document_and_its_offline_page_are_served() {
    let server = Server::start().await;
    let response = server
        .client
        .get(format!("{}/api/v1/openapi.json", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let doc: serde_json::Value = response.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    assert!(doc["paths"]["/api/v1/appointments"]["post"].is_object());

    let page = server
        .client
        .get(format!("{}/docs", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains("/docs/redoc.standalone.js") && html.contains("/api/v1/openapi.json"));
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "nothing is fetched from elsewhere"
    );
    let script = server
        .client
        .get(format!("{}/docs/redoc.standalone.js", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(script.status(), StatusCode::OK);
    assert_eq!(script.headers()["content-type"], "application/javascript");
    assert!(script.bytes().await.unwrap().len() > 100_000);
}

#[tokio::test(flavor = "multi_thread")]
async fn password_guessing_is_throttled_per_account() {
    let server = Server::start_with(&[("SHMS_LOGIN_PER_ACCOUNT_PER_MINUTE", "3")]).await;
    let guess = json!({"email": ADMIN_EMAIL, "password": "a wrong guess here"});
    for _ in 0..3 {
        let (status, problem) = server.post("/auth/login", None, guess.clone()).await;
        assert_problem(
            status,
            &problem,
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
        );
    }
    let response = server
        .client
        .post(format!("{}/api/v1/auth/login", server.base))
        .json(&guess)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=61).contains(&wait), "{wait}");
    let problem: serde_json::Value = response.json().await.unwrap();
    assert_eq!(problem["code"], "too_many_requests");
    // even the right password waits: the throttle does not reveal which guess was right
    let (status, _) = server
        .post(
            "/auth/login",
            None,
            json!({"email": ADMIN_EMAIL, "password": PASSWORD}),
        )
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    // another account is not affected
    server.patient().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_count_requests_bookings_and_the_pool() {
    let server = Server::start().await;
    let admin = server.admin().await;
    let (doctor, doctor_id) = server.doctor(&admin).await;
    let (patient, _) = server.patient().await;
    let slot = server
        .slots(&doctor, &doctor_id, &[later(1)])
        .await
        .remove(0);
    server.book(&patient, &slot).await;
    server.get("/doctors", None).await;
    let text = server
        .client
        .get(format!("{}/metrics", server.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains(
            "shms_http_requests_total{method=\"GET\",route=\"/api/v1/doctors\",status=\"200\"} 1"
        ),
        "{text}"
    );
    assert!(
        text.contains("shms_http_request_duration_seconds"),
        "{text}"
    );
    assert!(
        text.contains("shms_bookings_total{outcome=\"booked\"} 1"),
        "{text}"
    );
    assert!(text.contains("shms_db_pool_max 24"), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn security_headers_and_cors_from_the_environment() {
    let server = Server::start_with(&[("SHMS_CORS_ORIGINS", "https://app.example")]).await;
    let response = server
        .client
        .get(format!("{}/api/v1/doctors", server.base))
        .send()
        .await
        .unwrap();
    for (name, value) in [
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
        ("cache-control", "no-store"),
        (
            "content-security-policy",
            "default-src 'none'; frame-ancestors 'none'",
        ),
    ] {
        assert_eq!(response.headers()[name], value, "{name}");
    }
    let preflight = |origin: &'static str| {
        server
            .client
            .request(
                Method::OPTIONS,
                format!("{}/api/v1/appointments", server.base),
            )
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization, content-type, idempotency-key",
            )
            .send()
    };
    let allowed = preflight("https://app.example").await.unwrap();
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://app.example"
    );
    let other = preflight("https://evil.example").await.unwrap();
    assert!(!other.headers().contains_key("access-control-allow-origin"));
}

#[tokio::test(flavor = "multi_thread")]
async fn logs_never_carry_passwords_tokens_or_clinical_text() {
    let server = Server::start_with(&[("RUST_LOG", "trace"), ("SHMS_LOG_FORMAT", "json")]).await;
    let admin = server.admin().await;
    let (doctor, doctor_id) = server.doctor(&admin).await;
    let (patient, patient_id) = server.patient().await;
    let slot = server
        .slots(&doctor, &doctor_id, &[later(1)])
        .await
        .remove(0);
    let (status, booked) = server
        .post(
            "/appointments",
            Some(&patient),
            json!({"slot_id": slot, "reason": "embarrassing-symptom-xyzzy"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let payment = booked["payment"]["id"].as_str().unwrap();
    server
        .post(
            &format!("/payments/{payment}/pay"),
            Some(&patient),
            json!({"method": "card", "card_token": "tok_visa"}),
        )
        .await;
    server
        .post(
            "/auth/login",
            None,
            json!({"email": ADMIN_EMAIL, "password": "wrong-password-plugh"}),
        )
        .await;
    let _ = patient_id;
    // give the writer a moment to flush
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let log = std::fs::read_to_string(&server.log).unwrap();
    assert!(
        log.lines().count() > 10,
        "trace logging produced little: {log}"
    );
    assert!(log.lines().all(|line| line.starts_with('{')), "JSON logs");
    for secret in [
        PASSWORD,
        "wrong-password-plugh",
        admin.as_str(),
        patient.as_str(),
        doctor.as_str(),
        "tok_visa",
        "embarrassing-symptom-xyzzy",
    ] {
        assert!(!log.contains(secret), "the log contains {secret}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn seed_demo_loads_a_consistent_clinic_once() {
    let server = Server::start().await;
    let seed = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_shms"))
            .arg("seed-demo")
            .env("DATABASE_URL", server.db.url())
            .env_remove("SHMS_ADMIN_EMAIL")
            .env_remove("SHMS_ADMIN_PASSWORD")
            .output()
            .unwrap()
    };
    let first = seed();
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let printed = String::from_utf8_lossy(&first.stdout);
    assert!(
        printed.contains("alice@demo.shms.local") && printed.contains("dr.house@demo.shms.local"),
        "{printed}"
    );
    assert_eq!(server.count("SELECT count(*) AS n FROM doctors").await, 3);
    assert_eq!(
        server
            .count("SELECT count(DISTINCT specialty) AS n FROM doctors")
            .await,
        3
    );
    assert_eq!(
        server.count("SELECT count(*) AS n FROM appointments").await,
        3
    );
    assert_eq!(
        server
            .count("SELECT count(*) AS n FROM payments WHERE status = 'paid'")
            .await,
        1
    );
    assert_eq!(
        server.count("SELECT count(*) AS n FROM encounters").await,
        1
    );
    assert!(
        server.count("SELECT count(*) AS n FROM audit_events").await >= 4,
        "the demo visit is audited"
    );
    assert!(server.count("SELECT count(*) AS n FROM slots").await >= 3 * 50);
    let second = seed();
    assert!(second.status.success());
    assert_eq!(
        server.count("SELECT count(*) AS n FROM appointments").await,
        3,
        "a second run changes nothing"
    );
    assert!(server.shms_check());
    // the demo logins work against the running server
    server
        .login("alice@demo.shms.local", "demo-password-2026")
        .await;
}

/// An exhausted pool answers 503 with `Retry-After` after the acquire timeout — not a hang.
#[tokio::test(flavor = "multi_thread")]
async fn an_exhausted_pool_answers_503_not_a_hang() {
    use diesel_async::SimpleAsyncConnection;
    let server = std::sync::Arc::new(
        Server::start_with(&[
            ("SHMS_DB_POOL_SIZE", "2"),
            ("SHMS_DB_ACQUIRE_TIMEOUT_MS", "300"),
        ])
        .await,
    );
    // hold a lock that makes directory reads wait, each holding a pooled connection
    let mut blocker = server.db.connect().await.unwrap();
    blocker
        .batch_execute("BEGIN; LOCK TABLE doctors IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let stuck: Vec<_> = (0..2)
        .map(|_| {
            let server = server.clone();
            tokio::spawn(async move { server.get("/doctors", None).await.0 })
        })
        .collect();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let started = std::time::Instant::now();
    let response = server
        .client
        .get(format!("{}/api/v1/doctors", server.base))
        .send()
        .await
        .unwrap();
    assert!(
        started.elapsed() < std::time::Duration::from_secs(3),
        "answered promptly"
    );
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(response.headers().contains_key("retry-after"));
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let problem: serde_json::Value = response.json().await.unwrap();
    assert_eq!(problem["code"], "service_unavailable");
    blocker.batch_execute("COMMIT").await.unwrap();
    for request in stuck {
        assert_eq!(
            request.await.unwrap(),
            StatusCode::OK,
            "the waiting requests complete once the lock is gone"
        );
    }
}

/// SIGTERM: stop accepting, finish what is in flight, close the pool, exit cleanly.
#[tokio::test(flavor = "multi_thread")]
async fn sigterm_finishes_in_flight_requests_then_exits_cleanly() {
    use diesel_async::SimpleAsyncConnection;
    let mut server = Server::start().await;
    let mut blocker = server.db.connect().await.unwrap();
    blocker
        .batch_execute("BEGIN; LOCK TABLE doctors IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let client = server.client.clone();
    let url = format!("{}/api/v1/doctors", server.base);
    let in_flight = tokio::spawn(async move { client.get(url).send().await.map(|r| r.status()) });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(server.terminate(), "SIGTERM delivered");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    // the listener is closed: new connections are refused while the old request waits
    let refused = reqwest::Client::new()
        .get(format!("{}/health/live", server.base))
        .send()
        .await;
    assert!(
        refused.is_err(),
        "a new connection was accepted during shutdown"
    );
    blocker.batch_execute("COMMIT").await.unwrap();
    assert_eq!(
        in_flight.await.unwrap().unwrap(),
        StatusCode::OK,
        "the in-flight request finished"
    );
    let status = server.wait_exit(std::time::Duration::from_secs(10));
    assert_eq!(status, Some(0), "the process exits cleanly");
}

#[test]
fn an_invalid_setting_stops_start_up_naming_the_variable() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_shms"))
        .arg("serve")
        .env("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")
        .env("SHMS_DB_POOL_SIZE", "lots")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("SHMS_DB_POOL_SIZE") && stderr.contains("lots"),
        "{stderr}"
    );
    let missing = std::process::Command::new(env!("CARGO_BIN_EXE_shms"))
        .arg("check")
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("DATABASE_URL"));
}
