//! The authorization matrix: `tests/e2e/authorization.json` lists every documented route ×
//! caller {anonymous, patient (own object), patient (someone else's), doctor (own), doctor
//! (someone else's), admin} with the status DESIGN §5 expects, and this test calls every
//! cell against the real server. Writes are probed with a body no route accepts, so an
//! allowed caller gets 422 (authorization is decided before validation) and nothing
//! changes. A route in the OpenAPI document without its row fails the test.

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::harness::{Server, later};

const MATRIX: &str = include_str!("authorization.json");
const CALLERS: [&str; 6] = [
    "anonymous",
    "patient_own",
    "patient_other",
    "doctor_own",
    "doctor_other",
    "admin",
];

#[derive(Debug, Serialize, Deserialize)]
struct Row {
    route: String,
    anonymous: u16,
    patient_own: u16,
    patient_other: u16,
    doctor_own: u16,
    doctor_other: u16,
    admin: u16,
}

impl Row {
    fn expected(&self, caller: &str) -> u16 {
        match caller {
            "anonymous" => self.anonymous,
            "patient_own" => self.patient_own,
            "patient_other" => self.patient_other,
            "doctor_own" => self.doctor_own,
            "doctor_other" => self.doctor_other,
            _ => self.admin,
        }
    }
}

/// The objects the `{id}` of each path stands for, owned by "own" callers.
struct Objects {
    doctor: String,
    /// Checked-in, with an encounter.
    appointment: String,
    /// Booked for later: completing it or marking a no-show is refused by the state machine
    /// (409) once authorization has passed, so probing changes nothing.
    booked: String,
    payment: String,
    patient: String,
    encounter: String,
}

impl Objects {
    fn fill(&self, path: &str) -> String {
        let id = if path.ends_with("/complete") || path.ends_with("/no-show") {
            &self.booked
        } else if path.starts_with("/api/v1/doctors/") {
            &self.doctor
        } else if path.starts_with("/api/v1/appointments/") {
            &self.appointment
        } else if path.starts_with("/api/v1/payments/") {
            &self.payment
        } else if path.starts_with("/api/v1/patients/") || path.starts_with("/api/v1/users/") {
            &self.patient
        } else if path.starts_with("/api/v1/encounters/") {
            &self.encounter
        } else {
            "00000000-0000-0000-0000-000000000000"
        };
        path.replace("{id}", id)
    }
}

fn documented_operations() -> BTreeSet<String> {
    let doc: serde_json::Value =
        serde_json::from_str(shms_http::openapi::document()).unwrap_or_default();
    let mut routes = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        for method in ["get", "post", "put", "patch", "delete"] {
            if item.get(method).is_some()
                && path.starts_with("/api/v1/")
                && path != "/api/v1/openapi.json"
            {
                routes.insert(format!("{} {path}", method.to_uppercase()));
            }
        }
    }
    routes
}

/// Follows a local `$ref` of the document.
fn resolve<'a>(doc: &'a serde_json::Value, value: &'a serde_json::Value) -> &'a serde_json::Value {
    match value
        .get("$ref")
        .and_then(|r| r.as_str())
        .and_then(|r| r.strip_prefix('#'))
    {
        Some(pointer) => doc.pointer(pointer).unwrap_or(&serde_json::Value::Null),
        None => value,
    }
}

/// Checks a response against the operation's documented response for its status: the
/// status is documented, the media type matches, and the body validates against the schema.
fn conforms(
    doc: &serde_json::Value,
    path: &str,
    method: &str,
    status: u16,
    content_type: &str,
    body: &[u8],
) -> Result<(), String> {
    let operation = &doc["paths"][path][method.to_lowercase()];
    let documented = operation["responses"]
        .get(status.to_string())
        .ok_or("status not documented")?;
    let documented = resolve(doc, documented);
    let Some(content) = documented.get("content").and_then(|c| c.as_object()) else {
        return if body.is_empty() {
            Ok(())
        } else {
            Err("a body where none is documented".into())
        };
    };
    let media = content_type.split(';').next().unwrap_or("").trim();
    let entry = content
        .get(media)
        .ok_or_else(|| format!("media type {media} not documented ({:?})", content.keys()))?;
    let Some(schema) = entry.get("schema") else {
        return Ok(());
    };
    let mut root = schema.clone();
    if let Some(object) = root.as_object_mut() {
        object.insert("components".into(), doc["components"].clone());
    }
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    let validator = jsonschema::validator_for(&root).map_err(|e| format!("bad schema: {e}"))?;
    let errors: Vec<String> = validator
        .iter_errors(&value)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; "))
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_route_answers_every_caller_as_the_matrix_says() {
    let rows: Vec<Row> = serde_json::from_str(MATRIX).expect("authorization.json parses");
    let listed: BTreeSet<String> = rows.iter().map(|r| r.route.clone()).collect();
    let documented = documented_operations();
    let missing: Vec<_> = documented.difference(&listed).collect();
    assert!(
        missing.is_empty(),
        "routes without rows in tests/e2e/authorization.json: {missing:?}"
    );
    let stale: Vec<_> = listed.difference(&documented).collect();
    assert!(
        stale.is_empty(),
        "rows for routes that do not exist: {stale:?}"
    );

    let server = Server::start().await;
    let admin = server.admin().await;
    let (doctor_own, doctor_id) = server.doctor(&admin).await;
    let (doctor_other, _) = server.doctor(&admin).await;
    let (patient_own, patient_id) = server.patient().await;
    let (patient_other, _) = server.patient().await;
    let slots = server
        .slots(&doctor_own, &doctor_id, &[later(4), later(6)])
        .await;
    let (appointment, payment) = server.book(&patient_own, &slots[0]).await;
    let (booked, _) = server.book(&patient_own, &slots[1]).await;
    let mut conn = server.db.connect().await.unwrap();
    diesel_async::SimpleAsyncConnection::batch_execute(
        &mut conn,
        &format!("UPDATE appointments SET status = 'checked-in' WHERE id = '{appointment}'"),
    )
    .await
    .unwrap();
    let (status, written) = server
        .post(
            &format!("/appointments/{appointment}/encounter"),
            Some(&doctor_own),
            json!({"subjective": "s", "objective": "o", "assessment": "a", "plan": "p"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{written}");
    let objects = Objects {
        doctor: doctor_id,
        appointment,
        booked,
        payment,
        patient: patient_id,
        encounter: written["encounter"]["id"].as_str().unwrap().to_owned(),
    };

    let doc: serde_json::Value =
        serde_json::from_str(shms_http::openapi::document()).unwrap_or_default();
    // the checker itself rejects what breaks a schema
    let broken = conforms(
        &doc,
        "/api/v1/doctors",
        "GET",
        200,
        "application/json",
        br#"{"items": "nope"}"#,
    );
    assert!(broken.is_err(), "the schema check accepts anything");
    let problem_as_list = conforms(
        &doc,
        "/api/v1/me",
        "GET",
        401,
        "application/problem+json",
        br#"{"items": []}"#,
    );
    assert!(
        problem_as_list.is_err(),
        "problem responses are not checked"
    );
    let mut failures = Vec::new();
    let mut observed = Vec::new();
    for row in &rows {
        let (method, path) = row.route.split_once(' ').unwrap();
        let mut statuses = Vec::new();
        for caller in CALLERS {
            let token = match caller {
                "anonymous" => None,
                // logging out revokes the token: use a fresh session for that cell
                _ if path.ends_with("/logout") => Some(match caller {
                    "admin" => server.admin().await,
                    _ => {
                        let mut fresh = server.patient().await.0;
                        if caller.starts_with("doctor") {
                            fresh = server.doctor(&admin).await.0;
                        }
                        fresh
                    }
                }),
                "patient_own" => Some(patient_own.clone()),
                "patient_other" => Some(patient_other.clone()),
                "doctor_own" => Some(doctor_own.clone()),
                "doctor_other" => Some(doctor_other.clone()),
                _ => Some(admin.clone()),
            };
            let method = Method::from_bytes(method.as_bytes()).unwrap();
            let mut request = server.client.request(
                method.clone(),
                format!("{}{}", server.base, objects.fill(path)),
            );
            if let Some(token) = &token {
                request = request.bearer_auth(token);
            }
            if method != Method::GET && method != Method::DELETE {
                request = request.json(&json!({"__matrix_probe__": true}));
            }
            let response = request.send().await.unwrap();
            let got = response.status().as_u16();
            let content_type = response
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned();
            let body = response.bytes().await.unwrap();
            if let Err(why) = conforms(&doc, path, method.as_str(), got, &content_type, &body) {
                failures.push(format!(
                    "{} as {caller}: the {got} response breaks its documented schema: {why}",
                    row.route
                ));
            }
            statuses.push(got);
            if got != row.expected(caller) {
                failures.push(format!(
                    "{} as {caller}: expected {}, got {got}",
                    row.route,
                    row.expected(caller)
                ));
            }
        }
        observed.push(Row {
            route: row.route.clone(),
            anonymous: statuses[0],
            patient_own: statuses[1],
            patient_other: statuses[2],
            doctor_own: statuses[3],
            doctor_other: statuses[4],
            admin: statuses[5],
        });
    }
    if std::env::var("SHMS_PRINT_MATRIX").is_ok() {
        println!(
            "{}",
            serde_json::to_string_pretty(&observed).unwrap_or_default()
        );
    }
    assert!(
        failures.is_empty(),
        "authorization matrix violations:\n{}",
        failures.join("\n")
    );
    // nothing the probes did changed the objects
    assert_eq!(
        server
            .count("SELECT count(*) AS n FROM appointments WHERE status = 'checked-in'")
            .await,
        1
    );
    assert_eq!(
        server
            .count("SELECT count(*) AS n FROM appointments WHERE status = 'booked'")
            .await,
        1
    );
    assert_eq!(
        server
            .count("SELECT count(*) AS n FROM payments WHERE status = 'pending'")
            .await,
        2
    );
}
