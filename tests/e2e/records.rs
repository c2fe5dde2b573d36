//! Medical records through the API: who may write and read, what the audit trail records,
//! and that refused or invalid requests leave nothing behind.

use diesel_async::SimpleAsyncConnection;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{Server, assert_problem, later};

/// A clinic with a checked-in visit between `patient` and `doctor`, plus outsiders.
struct Clinic {
    server: Server,
    admin: String,
    doctor: String,
    patient: String,
    patient_id: String,
    appointment: String,
    stranger_doctor: String,
    other_patient: String,
}

async fn sql(server: &Server, statement: &str) {
    let mut conn = server.db.connect().await.expect("connect");
    conn.batch_execute(statement).await.expect("sql");
}

async fn book(server: &Server, patient: &str, slot: &str) -> String {
    let (status, body) = server
        .post("/appointments", Some(patient), json!({"slot_id": slot}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["appointment"]["id"].as_str().expect("id").to_owned()
}

async fn clinic() -> Clinic {
    let server = Server::start().await;
    let admin = server.admin().await;
    let (doctor, doctor_id) = server.doctor(&admin).await;
    let (stranger_doctor, _) = server.doctor(&admin).await;
    let (patient, patient_id) = server.patient().await;
    let (other_patient, _) = server.patient().await;
    let slots = server.slots(&doctor, &doctor_id, &[later(18)]).await;
    let appointment = book(&server, &patient, &slots[0]).await;
    // no check-in route yet (lifecycle routes are another issue); the trigger allows it
    sql(
        &server,
        &format!("UPDATE appointments SET status = 'checked-in' WHERE id = '{appointment}'"),
    )
    .await;
    Clinic {
        server,
        admin,
        doctor,
        patient,
        patient_id,
        appointment,
        stranger_doctor,
        other_patient,
    }
}

const SECRET: &str = "acute streptococcal pharyngitis";

fn encounter_body() -> Value {
    json!({
        "subjective": "sore throat for 3 days",
        "objective": "tonsils swollen",
        "assessment": SECRET,
        "plan": "antibiotics, review in a week",
        "diagnoses": [
            {"code": "J02.0", "description": "Streptococcal pharyngitis", "primary": true},
            {"code": "R50.9", "description": "Fever"}
        ],
        "prescriptions": [
            {"medication": "Amoxicillin", "dose": "500 mg", "frequency": "3x daily", "duration_days": 10}
        ],
        "vitals": [
            {"kind": "temperature", "value": 38.6, "unit": "Cel"},
            {"kind": "heart_rate", "value": 96},
            {"kind": "spo2", "value": 98}
        ]
    })
}

/// Audit events as `action resource_type actor_role`, sorted, for exact comparison.
async fn audit_trail(server: &Server) -> Vec<String> {
    #[derive(diesel::QueryableByName)]
    struct Line {
        #[diesel(sql_type = diesel::sql_types::Text)]
        line: String,
    }
    use diesel_async::RunQueryDsl;
    let mut conn = server.db.connect().await.expect("connect");
    let mut lines: Vec<String> = diesel::sql_query(
        "SELECT concat_ws(' ', action, resource_type, actor_role) AS line FROM audit_events",
    )
    .load::<Line>(&mut conn)
    .await
    .expect("audit")
    .into_iter()
    .map(|l| l.line)
    .collect();
    lines.sort();
    lines
}

fn strings(items: &[&str]) -> Vec<String> {
    let mut lines: Vec<String> = items.iter().map(|s| (*s).to_owned()).collect();
    lines.sort();
    lines
}

#[tokio::test(flavor = "multi_thread")]
async fn the_doctor_writes_amends_and_the_patient_reads_with_every_access_audited() {
    let c = clinic().await;
    let s = &c.server;
    let path = format!("/appointments/{}/encounter", c.appointment);

    let (status, body) = s.post(&path, Some(&c.doctor), encounter_body()).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let encounter = &body["encounter"];
    let encounter_id = encounter["id"].as_str().unwrap().to_owned();
    assert_eq!(encounter["assessment"], SECRET);
    assert_eq!(encounter["patient_id"], c.patient_id.as_str());
    assert_eq!(encounter["diagnoses"][0]["code"], "J02.0");
    assert_eq!(encounter["diagnoses"][1]["primary"], false);
    assert_eq!(encounter["vitals"][1]["unit"], "/min");
    assert_eq!(encounter["amendments"], json!([]));

    // one encounter per visit
    let (status, problem) = s.post(&path, Some(&c.doctor), encounter_body()).await;
    assert_problem(status, &problem, StatusCode::CONFLICT, "encounter_exists");

    let (status, body) = s
        .post(
            &format!("/encounters/{encounter_id}/amendments"),
            Some(&c.doctor),
            json!({"reason": "culture came back negative", "assessment": "viral pharyngitis",
                   "diagnoses": [{"code": "J02.9", "description": "Acute pharyngitis", "primary": true}],
                   "prescriptions": []}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(
        body["encounter"]["assessment"], SECRET,
        "the original is kept"
    );
    let amendment = &body["encounter"]["amendments"][0];
    assert_eq!(
        (
            &amendment["reason"],
            &amendment["assessment"],
            &amendment["plan"],
            &amendment["diagnoses"][0]["code"],
            &amendment["prescriptions"]
        ),
        (
            &json!("culture came back negative"),
            &json!("viral pharyngitis"),
            &Value::Null,
            &json!("J02.9"),
            &json!([])
        )
    );

    let (status, body) = s
        .post(
            &format!("/patients/{}/allergies", c.patient_id),
            Some(&c.doctor),
            json!({"substance": "Penicillin", "reaction": "hives", "severity": "severe"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["allergy"]["severity"], "severe");

    // the patient reads their history: the encounter with its amendment, and the allergy
    let (status, records) = s
        .get(
            &format!("/patients/{}/records", c.patient_id),
            Some(&c.patient),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{records}");
    assert_eq!(records["items"][0]["id"], encounter_id.as_str());
    assert_eq!(
        records["items"][0]["amendments"][0]["assessment"],
        "viral pharyngitis"
    );
    assert_eq!(records["allergies"][0]["substance"], "Penicillin");
    assert_eq!(records["next_cursor"], Value::Null);

    // the treating doctor reads the allergies; an admin breaks the glass with a reason
    let (status, allergies) = s
        .get(
            &format!("/patients/{}/allergies", c.patient_id),
            Some(&c.doctor),
        )
        .await;
    assert_eq!(
        (status, allergies["items"].as_array().map(Vec::len)),
        (StatusCode::OK, Some(1))
    );
    let response = s
        .client
        .get(format!(
            "{}/api/v1/patients/{}/records?reason=complaint%20%2312",
            s.base, c.patient_id
        ))
        .bearer_auth(&c.admin)
        .header("x-request-id", "trace-abc")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    // exactly these audit events: one per clinical row written, one per read
    assert_eq!(
        audit_trail(s).await,
        strings(&[
            "create encounter doctor",
            "create diagnosis doctor",
            "create diagnosis doctor",
            "create prescription doctor",
            "create vital_sign doctor",
            "create vital_sign doctor",
            "create vital_sign doctor",
            "create encounter_amendment doctor",
            "create diagnosis doctor",
            "create allergy doctor",
            "read records patient",
            "read allergies doctor",
            "read records admin",
        ])
    );

    // the patient sees who accessed their data, newest first, with the break-glass reason
    let (status, log) = s
        .get(
            &format!("/patients/{}/access-log", c.patient_id),
            Some(&c.patient),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{log}");
    let newest = &log["items"][0];
    assert_eq!(
        (
            &newest["action"],
            &newest["resource_type"],
            &newest["actor_role"],
            &newest["reason"],
            &newest["request_id"],
            &newest["client_ip"]
        ),
        (
            &json!("read"),
            &json!("records"),
            &json!("admin"),
            &json!("complaint #12"),
            &json!("trace-abc"),
            &json!("127.0.0.1")
        )
    );
    assert_eq!(newest["actor_name"], "Administrator");
    assert_eq!(log["items"].as_array().map(Vec::len), Some(13));
    // reading the access log is not itself a read of clinical data: nothing added
    assert_eq!(audit_trail(s).await.len(), 13);
    let (status, _) = s
        .get(
            &format!("/patients/{}/access-log", c.patient_id),
            Some(&c.admin),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(s.violations().await, vec![]);
}

#[tokio::test(flavor = "multi_thread")]
async fn foreign_tokens_get_404_or_403_and_never_the_data() {
    let c = clinic().await;
    let s = &c.server;
    let (status, body) = s
        .post(
            &format!("/appointments/{}/encounter", c.appointment),
            Some(&c.doctor),
            encounter_body(),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let encounter = body["encounter"]["id"].as_str().unwrap().to_owned();
    let patient = &c.patient_id;

    // a doctor whose only appointment with the patient was cancelled has no care relationship
    let (former, former_id) = s.doctor(&c.admin).await;
    let slot = s.slots(&former, &former_id, &[later(20)]).await;
    let cancelled = book(s, &c.patient, &slot[0]).await;
    let (status, _) = s
        .post(
            &format!("/appointments/{cancelled}/cancel"),
            Some(&c.patient),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let events_before = audit_trail(s).await.len();

    let post = |path: String, body: Value| (Method::POST, path, Some(body));
    let get = |path: String| (Method::GET, path, None);
    let encounter_write = || {
        post(
            format!("/appointments/{}/encounter", c.appointment),
            encounter_body(),
        )
    };
    let amendment = || {
        post(
            format!("/encounters/{encounter}/amendments"),
            json!({"reason": "x", "plan": "y"}),
        )
    };
    let allergy_write = || {
        post(
            format!("/patients/{patient}/allergies"),
            json!({"substance": "nuts", "severity": "mild"}),
        )
    };
    let records = || get(format!("/patients/{patient}/records"));
    let allergies = || get(format!("/patients/{patient}/allergies"));
    let log = || get(format!("/patients/{patient}/access-log"));

    let nf = (StatusCode::NOT_FOUND, "not_found");
    let fb = (StatusCode::FORBIDDEN, "forbidden");
    let reason = (StatusCode::FORBIDDEN, "reason_required");
    let cases = [
        // (who, request, expected)
        (&c.stranger_doctor, encounter_write(), nf),
        (&c.other_patient, encounter_write(), nf),
        (&former, encounter_write(), nf),
        (&c.patient, encounter_write(), fb),
        (&c.admin, encounter_write(), fb),
        (&c.stranger_doctor, amendment(), nf),
        (&c.other_patient, amendment(), nf),
        (&former, amendment(), nf),
        (&c.patient, amendment(), fb),
        (&c.admin, amendment(), fb),
        (&c.stranger_doctor, allergy_write(), nf),
        (&c.other_patient, allergy_write(), nf),
        (&former, allergy_write(), nf),
        (&c.patient, allergy_write(), fb),
        (&c.admin, allergy_write(), fb),
        (&c.stranger_doctor, records(), nf),
        (&c.other_patient, records(), nf),
        (&former, records(), nf),
        (&c.admin, records(), reason),
        (&c.stranger_doctor, allergies(), nf),
        (&c.other_patient, allergies(), nf),
        (&former, allergies(), nf),
        (&c.admin, allergies(), reason),
        (&c.stranger_doctor, log(), nf),
        (&c.other_patient, log(), nf),
        (&former, log(), nf),
        (&c.doctor, log(), fb),
    ];
    for (token, (method, path, body), (expected, code)) in cases {
        let (status, problem) = s.call(method.clone(), &path, Some(token), body).await;
        assert_problem(status, &problem, expected, code);
        assert!(
            !problem.to_string().contains(SECRET),
            "{method} {path} leaked {problem}"
        );
    }
    // no token at all
    for (method, path, body) in [
        encounter_write(),
        amendment(),
        allergy_write(),
        records(),
        allergies(),
        log(),
    ] {
        let (status, problem) = s.call(method, &path, None, body).await;
        assert_problem(status, &problem, StatusCode::UNAUTHORIZED, "unauthorized");
    }
    // unknown and malformed ids are 404 for everyone
    for path in [
        format!("/patients/{}/records", uuid::Uuid::now_v7()),
        "/patients/not-a-uuid/records".to_owned(),
    ] {
        let (status, problem) = s.get(&format!("{path}?reason=audit"), Some(&c.admin)).await;
        assert_problem(status, &problem, StatusCode::NOT_FOUND, "not_found");
    }
    let (status, problem) = s
        .post(
            &format!("/encounters/{}/amendments", uuid::Uuid::now_v7()),
            Some(&c.doctor),
            json!({"reason": "x", "plan": "y"}),
        )
        .await;
    assert_problem(status, &problem, StatusCode::NOT_FOUND, "not_found");

    // refusals write nothing and are not recorded as reads
    assert_eq!(audit_trail(s).await.len(), events_before);
    assert_eq!(
        s.count("SELECT count(*) AS n FROM encounter_amendments")
            .await,
        0
    );
    assert_eq!(s.count("SELECT count(*) AS n FROM allergies").await, 0);
    assert_eq!(s.violations().await, vec![]);
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_encounters_are_422_after_authorization_and_leave_nothing() {
    let c = clinic().await;
    let s = &c.server;
    let path = format!("/appointments/{}/encounter", c.appointment);

    // one implausible vital: 422 naming it; nothing stored, nothing audited
    let mut body = encounter_body();
    body["vitals"][2]["value"] = json!(150);
    let (status, problem) = s.post(&path, Some(&c.doctor), body.clone()).await;
    assert_problem(
        status,
        &problem,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert_eq!(problem["errors"][0]["field"], "vitals[2].value");
    // a foreign doctor with the same invalid body learns nothing: 404 before 422
    let (status, problem) = s.post(&path, Some(&c.stranger_doctor), body).await;
    assert_problem(status, &problem, StatusCode::NOT_FOUND, "not_found");

    let mut many = encounter_body();
    many["diagnoses"][1]["primary"] = json!(true);
    many["diagnoses"][0]["code"] = json!("streptococcus");
    many["prescriptions"][0]["duration_days"] = json!(0);
    many["vitals"][0]["unit"] = json!("[degF]");
    many["assessment"] = json!("  ");
    let (status, problem) = s.post(&path, Some(&c.doctor), many).await;
    assert_problem(
        status,
        &problem,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["field"].as_str())
        .collect();
    assert_eq!(
        fields,
        vec![
            "assessment",
            "diagnoses",
            "diagnoses[0].code",
            "prescriptions[0].duration_days",
            "vitals[0].unit"
        ]
    );

    // odd shapes are 4xx, never 500
    let shapes = [
        json!({}),
        json!([]),
        json!({"assessment": 1}),
        json!({"assessment": "a", "vitals": [{"kind": "temperature", "value": "hot"}]}),
        json!({"assessment": "a", "vitals": [{"kind": "temperature", "value": 1e308}]}),
        json!({"assessment": "a", "prescriptions": [{"medication": "m", "dose": "d", "frequency": "f", "duration_days": 99999999999999_i64}]}),
        json!({"assessment": "a", "diagnoses": {"code": "J06.9"}}),
        json!({"assessment": "a", "diagnoses": [{"code": "J06.9", "description": "x", "primary": true}], "extra": 1}),
        json!({"assessment": "a".repeat(20_001)}),
    ];
    for shape in shapes {
        let (status, problem) = s.post(&path, Some(&c.doctor), shape.clone()).await;
        assert!(status.is_client_error(), "{shape}: {status} {problem}");
    }
    assert_eq!(s.count("SELECT count(*) AS n FROM encounters").await, 0);
    assert_eq!(s.count("SELECT count(*) AS n FROM vital_signs").await, 0);
    assert_eq!(s.count("SELECT count(*) AS n FROM audit_events").await, 0);

    // a cancelled visit gets no encounter (neither does one that is only booked)
    sql(
        s,
        &format!(
            "UPDATE appointments SET status = 'cancelled', cancelled_at = now() WHERE id = '{}'",
            c.appointment
        ),
    )
    .await;
    let (status, problem) = s.post(&path, Some(&c.doctor), encounter_body()).await;
    assert_problem(
        status,
        &problem,
        StatusCode::CONFLICT,
        "appointment_not_checked_in",
    );

    // break-glass reasons are bounded
    let long = "x".repeat(501);
    let (status, problem) = s
        .get(
            &format!("/patients/{}/records?reason={long}", c.patient_id),
            Some(&c.admin),
        )
        .await;
    assert_problem(
        status,
        &problem,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert_eq!(s.count("SELECT count(*) AS n FROM audit_events").await, 0);
    assert_eq!(s.violations().await, vec![]);
}
