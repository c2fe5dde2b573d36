//! Accounts an operator can run (issue 8), through the real binary: administration,
//! profiles, passwords, sessions and the account audit trail.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{PASSWORD, Server, assert_problem, later};

const NEW_PASSWORD: &str = "Tall-Orange-Kettle-42!";

async fn patch(server: &Server, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
    server
        .call(Method::PATCH, path, Some(token), Some(body))
        .await
}

async fn delete(server: &Server, path: &str, token: &str) -> (StatusCode, Value) {
    server.call(Method::DELETE, path, Some(token), None).await
}

async fn login_status(server: &Server, email: &str, password: &str) -> (StatusCode, Value) {
    server
        .post(
            "/auth/login",
            None,
            json!({"email": email, "password": password}),
        )
        .await
}

async fn email_of(server: &Server, token: &str) -> String {
    let (_, me) = server.get("/me", Some(token)).await;
    me["email"].as_str().unwrap().to_owned()
}

/// Creates another administrator with the `shms create-admin` command; returns their token.
async fn second_admin(server: &Server) -> (String, String) {
    let email = format!("admin-{}@e2e.test", uuid::Uuid::new_v4().simple());
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_shms"))
        .args(["create-admin", "--email", &email, "--password", PASSWORD])
        .env("DATABASE_URL", server.db.url())
        .stdout(std::process::Stdio::null())
        .status()
        .expect("create-admin");
    assert!(status.success());
    let token = server.login(&email, PASSWORD).await;
    let (_, me) = server.get("/me", Some(&token)).await;
    (token, me["id"].as_str().unwrap().to_owned())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_disabled_users_token_stops_working_at_once_and_their_login_fails_like_a_wrong_password()
{
    let server = Server::start().await;
    let admin = server.admin().await;
    let (patient, patient_id) = server.patient().await;
    let email = email_of(&server, &patient).await;
    let other_session = server.login(&email, PASSWORD).await;

    let (status, body) = patch(
        &server,
        &format!("/users/{patient_id}"),
        &admin,
        json!({"disabled": true}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["user"]["disabled"], true);
    assert_eq!(body["revoked_sessions"], 2);
    // the very next request with either token
    for token in [&patient, &other_session] {
        let (status, problem) = server.get("/me", Some(token)).await;
        assert_problem(status, &problem, StatusCode::UNAUTHORIZED, "unauthorized");
    }
    // same answer as a wrong password
    let (status, disabled) = login_status(&server, &email, PASSWORD).await;
    assert_problem(
        status,
        &disabled,
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    );
    let (_, wrong) = login_status(&server, &email, "Wrong-Password-Entirely-9").await;
    assert_eq!(disabled, wrong);

    // re-enabled: can log in again; the admin sees the account and its events
    let (status, body) = patch(
        &server,
        &format!("/users/{patient_id}"),
        &admin,
        json!({"disabled": false}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    server.login(&email, PASSWORD).await;
    let (status, user) = server
        .get(&format!("/users/{patient_id}"), Some(&admin))
        .await;
    assert_eq!(status, StatusCode::OK, "{user}");
    assert_eq!(user["disabled"], false);
    assert!(user["patient"].is_object());
    // a bad body after authorization is 422
    let (status, problem) = patch(
        &server,
        &format!("/users/{patient_id}"),
        &admin,
        json!({"disabled": "no"}),
    )
    .await;
    assert_problem(
        status,
        &problem,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn disabling_a_doctor_blocks_free_slots_and_lists_the_booked_appointments() {
    let server = Server::start().await;
    let admin = server.admin().await;
    let (doctor, doctor_id) = server.doctor(&admin).await;
    let (patient, _) = server.patient().await;
    let slots = server
        .slots(&doctor, &doctor_id, &[later(20), later(21), later(22)])
        .await;
    let (appointment, _) = server.book(&patient, &slots[0]).await;

    let (status, body) = patch(
        &server,
        &format!("/users/{doctor_id}"),
        &admin,
        json!({"disabled": true}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["blocked_slots"], 2);
    assert_eq!(body["open_appointments"][0]["id"], appointment.as_str());
    assert_eq!(body["open_appointments"][0]["status"], "booked");
    assert_eq!(body["user"]["doctor"]["active"], false);
    let (_, free) = server
        .get(&format!("/doctors/{doctor_id}/slots?status=free"), None)
        .await;
    assert_eq!(free["items"].as_array().unwrap().len(), 0, "{free}");
    let (status, problem) = server
        .post(
            "/appointments",
            Some(&patient),
            json!({"slot_id": slots[1], "reason": "x"}),
        )
        .await;
    assert_problem(status, &problem, StatusCode::CONFLICT, "slot_unavailable");
    // the booked appointment is still there for the clinic to act on
    let (_, booked) = server
        .get(&format!("/appointments/{appointment}"), Some(&admin))
        .await;
    assert_eq!(booked["appointment"]["status"], "booked", "{booked}");

    // re-enabling re-opens nothing
    let (status, _) = patch(
        &server,
        &format!("/users/{doctor_id}"),
        &admin,
        json!({"disabled": false}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (_, free) = server
        .get(&format!("/doctors/{doctor_id}/slots?status=free"), None)
        .await;
    assert_eq!(free["items"].as_array().unwrap().len(), 0, "{free}");
    assert!(server.violations().await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_last_admin_cannot_be_disabled_even_by_two_admins_at_once() {
    let server = Server::start().await;
    let admin = server.admin().await;
    let (_, me) = server.get("/me", Some(&admin)).await;
    let admin_id = me["id"].as_str().unwrap().to_owned();
    let (status, problem) = patch(
        &server,
        &format!("/users/{admin_id}"),
        &admin,
        json!({"disabled": true}),
    )
    .await;
    assert_problem(status, &problem, StatusCode::CONFLICT, "last_admin");

    for _ in 0..5 {
        let (first, first_id) = second_admin(&server).await;
        let (second, second_id) = second_admin(&server).await;
        // leave exactly these two active, then let them disable each other at once
        let mut conn = server.db.connect().await.unwrap();
        diesel_async::SimpleAsyncConnection::batch_execute(
            &mut conn,
            &format!(
                "UPDATE users SET disabled = true WHERE role = 'admin' AND NOT disabled \
                 AND id NOT IN ('{first_id}', '{second_id}')"
            ),
        )
        .await
        .unwrap();
        let (first_path, second_path) =
            (format!("/users/{first_id}"), format!("/users/{second_id}"));
        let (a, b) = tokio::join!(
            patch(&server, &second_path, &first, json!({"disabled": true})),
            patch(&server, &first_path, &second, json!({"disabled": true})),
        );
        let succeeded = [&a, &b]
            .iter()
            .filter(|(status, _)| *status == StatusCode::OK)
            .count();
        assert!(succeeded <= 1, "{a:?} {b:?}");
        for (status, body) in [&a, &b] {
            // the loser is refused (409), or its session was revoked first (401)
            assert!(
                [
                    StatusCode::OK,
                    StatusCode::CONFLICT,
                    StatusCode::UNAUTHORIZED
                ]
                .contains(status),
                "{status} {body}"
            );
            if *status == StatusCode::CONFLICT {
                assert_eq!(body["code"], "last_admin");
            }
        }
        let active = server
            .count("SELECT count(*) AS n FROM users WHERE role = 'admin' AND NOT disabled")
            .await;
        assert_eq!(active, 1);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_password_change_kills_the_other_sessions_but_not_the_current_one() {
    let server = Server::start().await;
    let (current, _) = server.patient().await;
    let email = email_of(&server, &current).await;
    let other = server.login(&email, PASSWORD).await;

    // wrong current password: 422 naming it, nothing changes
    let (status, problem) = server
        .post(
            "/me/password",
            Some(&current),
            json!({"current_password": "Not-The-Password-77", "new_password": NEW_PASSWORD}),
        )
        .await;
    assert_problem(
        status,
        &problem,
        StatusCode::UNPROCESSABLE_ENTITY,
        "current_password_incorrect",
    );
    assert_eq!(problem["errors"][0]["field"], "current_password");
    // a guessable new password: 422 naming it, saying why
    for weak in ["password12345", "qwertyuiop123", email.as_str()] {
        let (status, problem) = server
            .post(
                "/me/password",
                Some(&current),
                json!({"current_password": PASSWORD, "new_password": weak}),
            )
            .await;
        assert_problem(
            status,
            &problem,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        );
        assert_eq!(problem["errors"][0]["field"], "new_password", "{problem}");
        assert!(
            problem["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains("too easy to guess"),
            "{problem}"
        );
    }
    let (status, _) = server.get("/me", Some(&other)).await;
    assert_eq!(status, StatusCode::OK, "refused changes revoke nothing");

    let (status, body) = server
        .post(
            "/me/password",
            Some(&current),
            json!({"current_password": PASSWORD, "new_password": NEW_PASSWORD}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["revoked_sessions"], 1);
    let (status, _) = server.get("/me", Some(&current)).await;
    assert_eq!(status, StatusCode::OK);
    let (status, problem) = server.get("/me", Some(&other)).await;
    assert_problem(status, &problem, StatusCode::UNAUTHORIZED, "unauthorized");
    let (status, _) = login_status(&server, &email, PASSWORD).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    server.login(&email, NEW_PASSWORD).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_weak_password_is_refused_at_registration_with_the_reason() {
    let server = Server::start().await;
    for (password, why) in [
        ("short", "between 12 and 128"),
        ("password1234", "too easy to guess"),
        ("jane.doe@e2e.test", "too easy to guess"),
    ] {
        let (status, problem) = server
            .post(
                "/auth/register",
                None,
                json!({"email": "jane.doe@e2e.test", "password": password, "full_name": "Jane Doe",
                       "date_of_birth": "1990-04-01", "sex": "female"}),
            )
            .await;
        assert_problem(
            status,
            &problem,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        );
        assert_eq!(problem["errors"][0]["field"], "password");
        assert!(
            problem["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains(why),
            "{problem}"
        );
    }
    assert_eq!(
        server
            .count("SELECT count(*) AS n FROM users WHERE email = 'jane.doe@e2e.test'")
            .await,
        0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_patient_cannot_raise_their_role_or_touch_another_users_profile() {
    let server = Server::start().await;
    let admin = server.admin().await;
    let (patient, patient_id) = server.patient().await;
    let (_, other_id) = server.patient().await;
    let (_, doctor_id) = server.doctor(&admin).await;

    let (status, problem) = patch(&server, "/me", &patient, json!({"role": "admin"})).await;
    assert_problem(
        status,
        &problem,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert_eq!(problem["errors"][0]["field"], "role", "{problem}");
    let (status, problem) = patch(
        &server,
        "/me",
        &patient,
        json!({"full_name": "Pat New", "favourite_colour": "blue"}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        problem["errors"][0]["field"], "favourite_colour",
        "{problem}"
    );
    let (_, me) = server.get("/me", Some(&patient)).await;
    assert_eq!(me["role"], "patient");
    assert_eq!(me["full_name"], "Pat Ient", "refused calls change nothing");

    // another user's account: not found, before the body is even read
    for body in [
        json!({"disabled": true}),
        json!({"full_name": "X"}),
        json!("garbage"),
    ] {
        let (status, problem) = patch(&server, &format!("/users/{other_id}"), &patient, body).await;
        assert_problem(status, &problem, StatusCode::NOT_FOUND, "not_found");
    }
    let (status, problem) = server
        .get(&format!("/users/{other_id}"), Some(&patient))
        .await;
    assert_problem(status, &problem, StatusCode::NOT_FOUND, "not_found");
    // their own account through the admin routes, and the list: forbidden
    let (status, problem) = patch(
        &server,
        &format!("/users/{patient_id}"),
        &patient,
        json!({"disabled": false}),
    )
    .await;
    assert_problem(status, &problem, StatusCode::FORBIDDEN, "forbidden");
    let (status, problem) = server.get("/users", Some(&patient)).await;
    assert_problem(status, &problem, StatusCode::FORBIDDEN, "forbidden");
    // a doctor's public profile: visible, not theirs to edit
    let (status, problem) = patch(
        &server,
        &format!("/doctors/{doctor_id}"),
        &patient,
        json!({"bio": "hacked"}),
    )
    .await;
    assert_problem(status, &problem, StatusCode::FORBIDDEN, "forbidden");

    // their own profile: name, phone, date of birth and sex
    let (status, me) = patch(
        &server,
        "/me",
        &patient,
        json!({"full_name": "Pat New", "phone": "+49 30 1234", "date_of_birth": "1991-02-03", "sex": "other"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["full_name"], "Pat New");
    assert_eq!(me["patient"]["phone"], "+49 30 1234");
    assert_eq!(me["patient"]["sex"], "other");
    let (status, me) = patch(&server, "/me", &patient, json!({"phone": null})).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["patient"]["phone"], Value::Null);
}

#[tokio::test(flavor = "multi_thread")]
async fn doctors_edit_specialty_and_bio_and_only_admins_the_fee_and_licence() {
    let server = Server::start().await;
    let admin = server.admin().await;
    let (doctor, doctor_id) = server.doctor(&admin).await;
    let (other_doctor, _) = server.doctor(&admin).await;
    let path = format!("/doctors/{doctor_id}");

    let (status, body) = patch(
        &server,
        &path,
        &doctor,
        json!({"specialty": "Neurology", "bio": "Headaches and more."}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["specialty"], "Neurology");
    let (status, problem) = patch(
        &server,
        &path,
        &doctor,
        json!({"consultation_fee": {"amount_cents": 1, "currency": "EUR"}, "license_number": "MINE"}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    let fields: Vec<_> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(fields, ["consultation_fee", "license_number"]);
    let (status, problem) = patch(&server, &path, &doctor, json!({"role": "admin"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["errors"][0]["field"], "role");
    let (status, problem) = patch(&server, &path, &other_doctor, json!({"bio": "x"})).await;
    assert_problem(status, &problem, StatusCode::FORBIDDEN, "forbidden");
    // a doctor's own /me takes no patient fields
    let (status, problem) = patch(&server, "/me", &doctor, json!({"sex": "male"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["errors"][0]["field"], "sex");

    let (status, body) = patch(
        &server,
        &path,
        &admin,
        json!({"consultation_fee": {"amount_cents": 7000, "currency": "EUR"}, "license_number": "LIC-NEW-1"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["consultation_fee"]["amount_cents"], 7000);
    assert_eq!(body["license_number"], "LIC-NEW-1");
    assert_eq!(body["specialty"], "Neurology");
    let (status, problem) = patch(
        &server,
        &format!("/doctors/{}", uuid::Uuid::new_v4()),
        &admin,
        json!({"bio": "x"}),
    )
    .await;
    assert_problem(status, &problem, StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test(flavor = "multi_thread")]
async fn sessions_are_listed_without_tokens_and_revoked_one_by_one() {
    let server = Server::start().await;
    let (patient, _) = server.patient().await;
    let email = email_of(&server, &patient).await;
    let laptop = server.login(&email, PASSWORD).await;
    assert_ne!(laptop, patient, "every login issues a new token");
    let (intruder, _) = server.patient().await;

    let (status, list) = server.get("/me/sessions", Some(&patient)).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(list["next_cursor"], Value::Null);
    for item in items {
        let keys: Vec<_> = item.as_object().unwrap().keys().cloned().collect();
        assert_eq!(
            keys.len(),
            7,
            "id, created_at, last_used_at, expires_at, client_ip, user_agent, current: {keys:?}"
        );
        assert_eq!(item["client_ip"], "127.0.0.1");
        let text = item.to_string();
        assert!(!text.contains(&patient) && !text.contains(&laptop));
    }
    let current: Vec<_> = items.iter().filter(|s| s["current"] == true).collect();
    assert_eq!(current.len(), 1);
    let other_id = items.iter().find(|s| s["current"] == false).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // someone else's session id is not found, and stays alive
    let (status, problem) = delete(&server, &format!("/me/sessions/{other_id}"), &intruder).await;
    assert_problem(status, &problem, StatusCode::NOT_FOUND, "not_found");
    let (status, _) = server.get("/me", Some(&laptop)).await;
    assert_eq!(status, StatusCode::OK);

    let (status, body) = delete(&server, &format!("/me/sessions/{other_id}"), &patient).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, _) = server.get("/me", Some(&laptop)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (_, list) = server.get("/me/sessions", Some(&patient)).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn account_events_record_who_whom_and_from_where_for_admins_only() {
    let server = Server::start().await;
    let admin = server.admin().await;
    let (patient, patient_id) = server.patient().await;
    let email = email_of(&server, &patient).await;
    let (status, _) = login_status(&server, &email, "Wrong-Password-Entirely-9").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = login_status(&server, "Nobody@E2E.test", "Wrong-Password-Entirely-9").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    patch(
        &server,
        "/me",
        &patient,
        json!({"full_name": "Pat Renamed"}),
    )
    .await;
    server
        .post(
            "/me/password",
            Some(&patient),
            json!({"current_password": PASSWORD, "new_password": NEW_PASSWORD}),
        )
        .await;
    let (status, _) = server.post("/auth/logout", Some(&patient), json!({})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    patch(
        &server,
        &format!("/users/{patient_id}"),
        &admin,
        json!({"disabled": true}),
    )
    .await;

    let (status, events) = server
        .get(&format!("/users/{patient_id}/events"), Some(&admin))
        .await;
    assert_eq!(status, StatusCode::OK, "{events}");
    let actions: Vec<_> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        actions,
        [
            "account_disabled",
            "logout",
            "password_changed",
            "profile_updated",
            "login_failed",
            "login_succeeded",
        ]
    );
    let items = events["items"].as_array().unwrap();
    assert_eq!(items[0]["actor_role"], "admin");
    assert_eq!(items[0]["subject_id"], patient_id.as_str());
    assert_eq!(items[0]["client_ip"], "127.0.0.1");
    assert!(items[0]["request_id"].is_string());
    assert_eq!(items[3]["detail"], "full_name");
    assert_eq!(items[4]["actor_id"], Value::Null);
    assert_eq!(items[4]["attempted_email"], email.as_str());
    assert_eq!(items[4]["detail"], "wrong_password");
    // a failed login for an unknown e-mail is kept without a subject, e-mail lower-cased
    assert_eq!(
        server
            .count(
                "SELECT count(*) AS n FROM account_events WHERE action = 'login_failed' \
                 AND subject_id IS NULL AND attempted_email = 'nobody@e2e.test'"
            )
            .await,
        1
    );
    // the admin's own trail shows what they did
    let (_, me) = server.get("/me", Some(&admin)).await;
    let (_, own) = server
        .get(
            &format!("/users/{}/events?limit=1", me["id"].as_str().unwrap()),
            Some(&admin),
        )
        .await;
    assert_eq!(own["items"][0]["action"], "account_disabled");
    assert!(own["next_cursor"].is_string());

    // only administrators read the trail
    let (other, other_id) = server.patient().await;
    let (status, problem) = server
        .get(&format!("/users/{other_id}/events"), Some(&other))
        .await;
    assert_problem(status, &problem, StatusCode::FORBIDDEN, "forbidden");
    let (status, problem) = server
        .get(&format!("/users/{patient_id}/events"), Some(&other))
        .await;
    assert_problem(status, &problem, StatusCode::NOT_FOUND, "not_found");

    // the user list finds the patient by name and role
    let (status, list) = server
        .get("/users?role=patient&q=renamed", Some(&admin))
        .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    assert_eq!(list["items"][0]["disabled"], true);
    let (status, problem) = server.get("/users?role=owner", Some(&admin)).await;
    assert_problem(
        status,
        &problem,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
}
