//! Identity: registration, login, sessions, roles.

use reqwest::StatusCode;
use serde_json::json;

use crate::harness::{ADMIN_EMAIL, PASSWORD, Server, assert_problem};

#[tokio::test(flavor = "multi_thread")]
async fn register_login_me_and_logout() {
    let server = Server::start().await;
    let body = json!({"email": "Ann@Example.org", "password": PASSWORD, "full_name": " Ann Smith ",
                      "date_of_birth": "1990-04-01", "sex": "female", "phone": "+49 30 1234"});
    let (status, user) = server.post("/auth/register", None, body.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{user}");
    assert_eq!(
        (
            user["email"].as_str(),
            user["role"].as_str(),
            user["full_name"].as_str()
        ),
        (Some("ann@example.org"), Some("patient"), Some("Ann Smith"))
    );
    assert_eq!(user["patient"]["sex"], "female");
    assert!(user.get("password_hash").is_none() && !user.to_string().contains("argon2"));

    let (status, problem) = server.post("/auth/register", None, body).await;
    assert_problem(status, &problem, StatusCode::CONFLICT, "email_taken");

    let (status, login) = server
        .post(
            "/auth/login",
            None,
            json!({"email": "ANN@example.org", "password": PASSWORD}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{login}");
    assert_eq!(login["token_type"], "Bearer");
    assert_eq!(login["user"]["role"], "patient");
    let token = login["access_token"].as_str().unwrap().to_owned();
    assert!(token.len() >= 43, "at least 256 bits");

    // the token is stored only as its hash
    let hash = hex(&shms_domain::auth::hash_token(&token));
    assert_eq!(
        server
            .count(&format!(
                "SELECT count(*) AS n FROM sessions WHERE token_hash = '\\x{hash}'"
            ))
            .await,
        1
    );
    assert_eq!(server.count(&format!("SELECT count(*) AS n FROM sessions WHERE encode(token_hash, 'escape') LIKE '%{token}%'")).await, 0);

    let (status, me) = server.get("/me", Some(&token)).await;
    assert_eq!(
        (status, me["id"].clone()),
        (StatusCode::OK, user["id"].clone())
    );

    // a new login is a new session with its own token
    let second = server.login("ann@example.org", PASSWORD).await;
    assert_ne!(second, token);

    let (status, _) = server.post("/auth/logout", Some(&token), json!({})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, problem) = server.get("/me", Some(&token)).await;
    assert_problem(status, &problem, StatusCode::UNAUTHORIZED, "unauthorized");
    // logging out one session leaves the other alive
    assert_eq!(server.get("/me", Some(&second)).await.0, StatusCode::OK);
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_credentials_answer_identically() {
    let server = Server::start().await;
    server.patient().await;
    let (unknown_status, unknown) = server
        .post(
            "/auth/login",
            None,
            json!({"email": "nobody@e2e.test", "password": PASSWORD}),
        )
        .await;
    let (wrong_status, wrong) = server
        .post(
            "/auth/login",
            None,
            json!({"email": ADMIN_EMAIL, "password": "not the password at all"}),
        )
        .await;
    assert_problem(
        unknown_status,
        &unknown,
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    );
    assert_eq!((unknown_status, &unknown), (wrong_status, &wrong));
    let (status, malformed) = server
        .post(
            "/auth/login",
            None,
            json!({"email": "not-an-email", "password": "x"}),
        )
        .await;
    assert_eq!((status, &malformed), (wrong_status, &wrong));
}

#[tokio::test(flavor = "multi_thread")]
async fn registration_validates_every_field_at_once() {
    let server = Server::start().await;
    let (status, problem) = server
        .post(
            "/auth/register",
            None,
            json!({"email": "nope", "password": "short", "full_name": "  ", "date_of_birth": "2999-01-01", "sex": "robot"}),
        )
        .await;
    assert_problem(
        status,
        &problem,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    let mut fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        ["date_of_birth", "email", "full_name", "password", "sex"]
    );
    let (status, problem) = server
        .post(
            "/auth/register",
            None,
            json!({"email": "a@b.org", "password": PASSWORD, "full_name": "A", "sex": "male"}),
        )
        .await;
    assert_problem(
        status,
        &problem,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("date_of_birth"),
        "{problem}"
    );
    assert_eq!(
        server
            .count("SELECT count(*) AS n FROM users WHERE role = 'patient'")
            .await,
        0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sessions_expire_when_idle_and_at_their_absolute_lifetime() {
    let server = Server::start_with(&[
        ("SHMS_SESSION_IDLE_TIMEOUT_SECS", "2"),
        ("SHMS_SESSION_MAX_LIFETIME_SECS", "4"),
    ])
    .await;
    let (busy, _) = server.patient().await;
    let (idle, _) = server.patient().await;
    let started = std::time::Instant::now();
    // `busy` is used every half second: the idle timeout never hits it, the lifetime does
    while started.elapsed() < std::time::Duration::from_millis(3000) {
        assert_eq!(server.get("/me", Some(&busy)).await.0, StatusCode::OK);
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    assert_eq!(
        server.get("/me", Some(&idle)).await.0,
        StatusCode::UNAUTHORIZED,
        "idle session survived"
    );
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_eq!(
        server.get("/me", Some(&busy)).await.0,
        StatusCode::UNAUTHORIZED,
        "session outlived its lifetime"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn only_admins_create_doctors_and_roles_are_enforced() {
    let server = Server::start().await;
    let admin = server.admin().await;
    let (patient, _) = server.patient().await;
    let body = json!({"email": "doc@e2e.test", "password": PASSWORD, "full_name": "Doc", "specialty": "Cardiology",
                      "license_number": "L-1", "consultation_fee": {"amount_cents": 5000, "currency": "EUR"}});
    let (status, problem) = server.post("/doctors", None, body.clone()).await;
    assert_problem(status, &problem, StatusCode::UNAUTHORIZED, "unauthorized");
    let (status, problem) = server
        .post("/doctors", Some("not-a-token"), body.clone())
        .await;
    assert_problem(status, &problem, StatusCode::UNAUTHORIZED, "unauthorized");
    let (status, problem) = server.post("/doctors", Some(&patient), body.clone()).await;
    assert_problem(status, &problem, StatusCode::FORBIDDEN, "forbidden");
    // authorization is decided before the body is validated
    let (status, problem) = server
        .post("/doctors", Some(&patient), json!({"nonsense": true}))
        .await;
    assert_problem(status, &problem, StatusCode::FORBIDDEN, "forbidden");

    let (status, doctor) = server.post("/doctors", Some(&admin), body.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{doctor}");
    assert_eq!(
        doctor["consultation_fee"],
        json!({"amount_cents": 5000, "currency": "EUR"})
    );
    let mut again = body.clone();
    again["email"] = json!("other@e2e.test");
    again["license_number"] = json!("l-1");
    let (status, problem) = server.post("/doctors", Some(&admin), again).await;
    assert_problem(status, &problem, StatusCode::CONFLICT, "license_taken");

    let doctor_token = server.login("doc@e2e.test", PASSWORD).await;
    let (status, me) = server.get("/me", Some(&doctor_token)).await;
    assert_eq!(
        (
            status,
            me["role"].as_str(),
            me["doctor"]["specialty"].as_str()
        ),
        (StatusCode::OK, Some("doctor"), Some("Cardiology"))
    );
    let (status, problem) = server.post("/doctors", Some(&doctor_token), body).await;
    assert_problem(status, &problem, StatusCode::FORBIDDEN, "forbidden");

    // the directory is public
    let (status, list) = server.get("/doctors?specialty=cardiology", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    let id = doctor["id"].as_str().unwrap();
    assert_eq!(
        server.get(&format!("/doctors/{id}"), None).await.1["full_name"],
        "Doc"
    );
}

/// Password hashing runs on the blocking pool with bounded concurrency: while a burst of
/// logins queues for the hasher, other requests are still served.
#[tokio::test(flavor = "multi_thread")]
async fn a_burst_of_logins_does_not_stall_other_requests() {
    let server = std::sync::Arc::new(Server::start_with(&[("SHMS_HASH_CONCURRENCY", "1")]).await);
    let logins: Vec<_> = (0..24)
        .map(|_| {
            let server = server.clone();
            tokio::spawn(async move {
                let body = json!({"email": ADMIN_EMAIL, "password": PASSWORD});
                let status = server.post("/auth/login", None, body).await.0;
                (status, std::time::Instant::now())
            })
        })
        .collect();
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let (status, doctors) = server.get("/doctors", None).await;
    let served_at = std::time::Instant::now();
    assert_eq!(status, StatusCode::OK, "{doctors}");
    let mut finished_later = 0;
    for login in logins {
        let (status, done_at) = login.await.unwrap();
        assert_eq!(status, StatusCode::OK);
        if done_at > served_at {
            finished_later += 1;
        }
    }
    // the directory answered while most of the burst was still waiting for the hasher
    assert!(
        finished_later >= 12,
        "only {finished_later} of 24 logins finished after the other request"
    );
}
