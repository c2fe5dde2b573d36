//! Weekly availability and time off through the API: slots generated in the doctor's zone
//! (across a real daylight-saving change), regeneration that keeps booked slots, time off
//! that answers 409 listing the appointments in the way, and the administrator's override
//! that cancels and refunds them.

use chrono::{DateTime, Days, NaiveDate, TimeDelta, TimeZone, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{Server, assert_problem};

async fn put(server: &Server, path: &str, token: Option<&str>, body: Value) -> (StatusCode, Value) {
    server.call(Method::PUT, path, token, Some(body)).await
}

fn today() -> NaiveDate {
    Utc::now().date_naive()
}

fn plus(days: u64) -> NaiveDate {
    today() + Days::new(days)
}

/// The doctor's slots starting in `[from, to)` as `(id, starts_at, status)`.
async fn slots_between(
    server: &Server,
    doctor: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Vec<(String, DateTime<Utc>, String)> {
    let (status, body) = server
        .get(
            &format!(
                "/doctors/{doctor}/slots?from={}&to={}&limit=200",
                from.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                to.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["id"].as_str().unwrap().to_owned(),
                s["starts_at"].as_str().unwrap().parse().unwrap(),
                s["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn every_day(start: &str, end: &str) -> Value {
    json!(
        ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
            .iter()
            .map(|d| json!({"weekday": d, "start": start, "end": end}))
            .collect::<Vec<_>>()
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn the_doctor_sets_weekly_rules_and_gets_slots_that_regeneration_never_takes_from_patients() {
    let server = Server::start().await;
    let admin = server.admin().await;
    let (doctor, doctor_id) = server.doctor(&admin).await;
    let (other_doctor, _) = server.doctor(&admin).await;
    let (patient, _) = server.patient().await;
    let path = format!("/doctors/{doctor_id}/availability");
    // a week of 09:00-10:00 UTC, two 30-minute slots a day
    let body = json!({"time_zone": "UTC", "slot_minutes": 30, "buffer_minutes": 0,
        "effective_from": plus(2), "effective_until": plus(8), "horizon_days": 14,
        "rules": every_day("09:00", "10:00")});

    let (status, problem) = put(&server, &path, None, body.clone()).await;
    assert_problem(status, &problem, StatusCode::UNAUTHORIZED, "unauthorized");
    for token in [&patient, &other_doctor] {
        let (status, problem) = put(&server, &path, Some(token), body.clone()).await;
        assert_problem(status, &problem, StatusCode::FORBIDDEN, "forbidden");
    }
    let (status, problem) = server.get(&path, None).await;
    assert_problem(status, &problem, StatusCode::NOT_FOUND, "not_found");

    let (status, done) = put(&server, &path, Some(&doctor), body.clone()).await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_eq!(done["generated"], 14, "{done}");
    assert_eq!(done["removed"], 0);
    assert_eq!(done["availability"]["time_zone"], "UTC");
    assert_eq!(done["availability"]["rules"].as_array().unwrap().len(), 7);
    let (status, stored) = server.get(&path, None).await;
    assert_eq!(status, StatusCode::OK, "{stored}");
    assert_eq!(stored, done["availability"]);

    let start = plus(2).and_hms_opt(0, 0, 0).unwrap().and_utc();
    let week = slots_between(&server, &doctor_id, start, start + TimeDelta::days(7)).await;
    assert_eq!(week.len(), 14);
    assert!(week.iter().all(|(_, _, status)| status == "free"));
    let (booked, _) = server.book(&patient, &week[0].0).await;

    // new rules: 09:30-11:00 with 30-minute slots; the booked 09:00 stays, the rest is rebuilt
    let mut changed = body.clone();
    changed["rules"] = every_day("09:30", "11:00");
    let (status, done) = put(&server, &path, Some(&admin), changed).await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_eq!(done["removed"], 13, "{done}");
    assert_eq!(done["generated"], 21, "{done}");
    assert_eq!(done["availability"]["revision"], 2);
    let week = slots_between(&server, &doctor_id, start, start + TimeDelta::days(7)).await;
    assert_eq!(week.len(), 22);
    assert_eq!(week[0].1, start + TimeDelta::hours(9));
    assert_eq!(week[0].2, "busy");
    let (status, appointment) = server
        .get(&format!("/appointments/{booked}"), Some(&patient))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(appointment["appointment"]["status"], "booked");
    assert!(server.violations().await.is_empty());
    assert!(server.shms_check());
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_rules_are_422_listing_every_field() {
    let server = Server::start().await;
    let admin = server.admin().await;
    let (doctor, doctor_id) = server.doctor(&admin).await;
    let (status, problem) = put(
        &server,
        &format!("/doctors/{doctor_id}/availability"),
        Some(&doctor),
        json!({"time_zone": "Europe/Atlantis", "slot_minutes": 3, "buffer_minutes": -5,
            "effective_from": "2027-03-01", "effective_until": "2027-02-01", "horizon_days": 401,
            "rules": [{"weekday": "mon", "start": "09:00", "end": "12:00"},
                      {"weekday": "mon", "start": "11:00", "end": "13:00"},
                      {"weekday": "funday", "start": "13:00", "end": "12:00"}]}),
    )
    .await;
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
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        [
            "time_zone",
            "slot_minutes",
            "buffer_minutes",
            "horizon_days",
            "effective_until",
            "rules[2].weekday",
            "rules[2].end",
            "rules[1]"
        ],
        "{problem}"
    );
    assert_eq!(server.count("SELECT count(*) AS n FROM slots").await, 0);
}

/// The first Sunday at least two days ahead on which `zone` changes its UTC offset.
fn next_change(zone: chrono_tz::Tz) -> NaiveDate {
    let offset = |day: NaiveDate| {
        let noon = day.and_hms_opt(12, 0, 0).unwrap().and_utc();
        noon.with_timezone(&zone).naive_local() - noon.naive_utc()
    };
    let mut day = plus(2);
    loop {
        if day.format("%a").to_string() == "Sun" && offset(day) != offset(day - Days::new(1)) {
            return day;
        }
        day = day + Days::new(1);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn generated_slots_follow_the_local_wall_clock_across_the_next_dst_change() {
    let server = Server::start().await;
    let admin = server.admin().await;
    let (doctor, doctor_id) = server.doctor(&admin).await;
    for (zone, start, end, minutes) in [
        (chrono_tz::America::New_York, "00:00", "04:00", 60),
        (chrono_tz::Europe::Berlin, "01:00", "04:00", 30),
    ] {
        let day = next_change(zone);
        let (status, done) = put(
            &server,
            &format!("/doctors/{doctor_id}/availability"),
            Some(&doctor),
            json!({"time_zone": zone.name(), "slot_minutes": minutes, "effective_from": day,
                "effective_until": day, "horizon_days": 400,
                "rules": [{"weekday": "sun", "start": start, "end": end}]}),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{done}");
        let midnight = day.and_hms_opt(0, 0, 0).unwrap().and_utc();
        let got: Vec<DateTime<Utc>> = slots_between(
            &server,
            &doctor_id,
            midnight - TimeDelta::hours(6),
            midnight + TimeDelta::hours(12),
        )
        .await
        .into_iter()
        .map(|(_, at, _)| at)
        .collect();
        let utc = |day_offset: i64, hour: u32, minute: u32| {
            Utc.from_utc_datetime(
                &(day + TimeDelta::days(day_offset))
                    .and_hms_opt(hour, minute, 0)
                    .unwrap(),
            )
        };
        let spring = day.format("%m").to_string().as_str() < "07";
        let expected = match (zone.name(), spring) {
            // 02:00 does not exist
            ("America/New_York", true) => vec![utc(0, 5, 0), utc(0, 6, 0), utc(0, 7, 0)],
            // 01:00 happens twice and is taken once (EDT); 01:00 EST gets no slot
            ("America/New_York", false) => {
                vec![utc(0, 4, 0), utc(0, 5, 0), utc(0, 7, 0), utc(0, 8, 0)]
            }
            // 02:00 and 02:30 do not exist
            ("Europe/Berlin", true) => {
                vec![utc(0, 0, 0), utc(0, 0, 30), utc(0, 1, 0), utc(0, 1, 30)]
            }
            // 02:00-03:00 happens twice and is covered once (CEST)
            _ => vec![
                utc(-1, 23, 0),
                utc(-1, 23, 30),
                utc(0, 0, 0),
                utc(0, 0, 30),
                utc(0, 2, 0),
                utc(0, 2, 30),
            ],
        };
        assert_eq!(got, expected, "{} on {day}", zone.name());
        assert_eq!(done["generated"], expected.len());
    }
    assert!(server.violations().await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn time_off_refuses_over_booked_appointments_unless_an_admin_cancels_and_refunds_them() {
    let server = Server::start().await;
    let admin = server.admin().await;
    let (doctor, doctor_id) = server.doctor(&admin).await;
    let (other_doctor, _) = server.doctor(&admin).await;
    let (patient, patient_id) = server.patient().await;
    let (status, done) = put(
        &server,
        &format!("/doctors/{doctor_id}/availability"),
        Some(&doctor),
        json!({"time_zone": "UTC", "slot_minutes": 30, "effective_from": plus(3),
            "effective_until": plus(3), "rules": every_day("09:00", "12:00")}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{done}");
    let day = plus(3).and_hms_opt(0, 0, 0).unwrap().and_utc();
    let slots = slots_between(&server, &doctor_id, day, day + TimeDelta::days(1)).await;
    assert_eq!(slots.len(), 6);
    let (appointment, payment) = server.book(&patient, &slots[1].0).await;
    let (status, paid) = server
        .post(
            &format!("/payments/{payment}/pay"),
            Some(&patient),
            json!({"method": "card", "card_token": "tok_visa"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{paid}");

    let path = format!("/doctors/{doctor_id}/time-off");
    let body = json!({"from": day, "to": day + TimeDelta::days(1), "reason": "conference"});
    let (status, problem) = server.post(&path, None, body.clone()).await;
    assert_problem(status, &problem, StatusCode::UNAUTHORIZED, "unauthorized");
    for token in [&patient, &other_doctor] {
        let (status, problem) = server.post(&path, Some(token), body.clone()).await;
        assert_problem(status, &problem, StatusCode::FORBIDDEN, "forbidden");
    }
    let (status, problem) = server
        .post(
            &path,
            Some(&doctor),
            json!({"from": day, "to": day, "reason": ""}),
        )
        .await;
    assert_problem(
        status,
        &problem,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );

    // the doctor: 409 listing the appointment, and nothing changes
    let (status, problem) = server.post(&path, Some(&doctor), body.clone()).await;
    assert_problem(status, &problem, StatusCode::CONFLICT, "time_off_conflict");
    assert_eq!(
        problem["conflicts"].as_array().unwrap().len(),
        1,
        "{problem}"
    );
    assert_eq!(problem["conflicts"][0]["appointment_id"], appointment);
    assert_eq!(problem["conflicts"][0]["patient_id"], patient_id);
    assert_eq!(
        problem["conflicts"][0]["starts_at"]
            .as_str()
            .unwrap()
            .parse::<DateTime<Utc>>()
            .unwrap(),
        slots[1].1
    );
    assert_eq!(
        server
            .count("SELECT count(*) AS n FROM slots WHERE status = 'free'")
            .await,
        5
    );
    assert_eq!(server.count("SELECT count(*) AS n FROM time_off").await, 0);

    // the doctor may not override; an admin may
    let mut override_body = body.clone();
    override_body["cancel_conflicts"] = json!(true);
    let (status, problem) = server
        .post(&path, Some(&doctor), override_body.clone())
        .await;
    assert_problem(status, &problem, StatusCode::FORBIDDEN, "forbidden");
    let (status, taken) = server.post(&path, Some(&admin), override_body).await;
    assert_eq!(status, StatusCode::OK, "{taken}");
    assert_eq!(taken["blocked"], 6, "{taken}");
    assert_eq!(taken["cancelled"], json!([appointment]));
    assert_eq!(taken["time_off"]["cancel_conflicts"], true);
    assert_eq!(taken["time_off"]["reason"], "conference");

    let (_, after) = server
        .get(&format!("/appointments/{appointment}"), Some(&patient))
        .await;
    assert_eq!(after["appointment"]["status"], "cancelled", "{after}");
    let (_, payment) = server
        .get(&format!("/payments/{payment}"), Some(&admin))
        .await;
    assert_eq!(payment["status"], "refunded", "{payment}");
    let blocked = slots_between(&server, &doctor_id, day, day + TimeDelta::days(1)).await;
    assert!(blocked.iter().all(|(_, _, s)| s == "busy-unavailable"));
    // booking a blocked slot is refused
    let (status, problem) = server
        .post(
            "/appointments",
            Some(&patient),
            json!({"slot_id": slots[2].0}),
        )
        .await;
    assert_problem(status, &problem, StatusCode::CONFLICT, "slot_unavailable");
    assert!(server.violations().await.is_empty());
    assert!(server.shms_check());
}
