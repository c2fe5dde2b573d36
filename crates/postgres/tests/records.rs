//! Medical records on a real database: encounters are written whole or not at all, every
//! clinical row leaves exactly its audit event, reads are audited, and neither clinical
//! rows nor audit events can be changed or removed — not even with raw SQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Fixture, at, fixture};
use diesel::QueryableByName;
use diesel::result::Error as DieselError;
use diesel::sql_types::BigInt;
use diesel_async::{AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use shms_domain::ids::{
    AllergyId, AmendmentId, AppointmentId, DiagnosisId, EncounterId, PrescriptionId, UserId,
    VitalSignId,
};
use shms_domain::page::PageRequest;
use shms_domain::ports::RecordRepository;
use shms_domain::records::{
    Attribution, AuditAction, Diagnosis, EncounterRef, Icd10Code, NewAllergy, NewAmendment,
    NewEncounter, Prescription, RecordRead, Severity, SoapCorrection, SoapNote, VitalKind,
    VitalSign,
};
use shms_domain::user::Role;
use shms_domain::{Conflict, StoreError};

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

async fn count(conn: &mut AsyncPgConnection, sql: &str) -> i64 {
    diesel::sql_query(sql)
        .get_result::<Count>(conn)
        .await
        .expect("count")
        .n
}

const CLINICAL_TABLES: [&str; 6] = [
    "encounters",
    "encounter_amendments",
    "diagnoses",
    "prescriptions",
    "vital_signs",
    "allergies",
];

/// Rows in every clinical table and in the audit trail.
async fn totals(conn: &mut AsyncPgConnection) -> Vec<(&'static str, i64)> {
    let mut totals = Vec::new();
    for table in CLINICAL_TABLES.into_iter().chain(["audit_events"]) {
        totals.push((
            table,
            count(conn, &format!("SELECT count(*) AS n FROM {table}")).await,
        ));
    }
    totals
}

fn by(user: UserId, role: Role) -> Attribution {
    Attribution {
        actor_id: user,
        actor_role: role,
        request_id: Some("req-42".into()),
        client_ip: Some("192.0.2.7".into()),
    }
}

/// A patient, their doctor, and a checked-in appointment between them.
struct Visit {
    patient: UserId,
    doctor: UserId,
    appointment: AppointmentId,
}

async fn checked_in_visit(f: &Fixture, day: u32) -> Visit {
    let doctor = f.doctor().await.id;
    let patient = f.patient().await;
    let slot = f.slot(doctor, at(day, 9, 0)).await;
    let appointment = f.book(patient, slot.id).await.unwrap().appointment.id;
    let mut conn = f.db.connect().await.unwrap();
    // there is no check-in route yet; the state machine allows booked -> checked-in
    conn.batch_execute(&format!(
        "UPDATE appointments SET status = 'checked-in' WHERE id = '{appointment}'"
    ))
    .await
    .unwrap();
    Visit {
        patient,
        doctor,
        appointment,
    }
}

fn diagnosis(code: &str, primary: bool) -> Diagnosis {
    Diagnosis {
        id: DiagnosisId::new(),
        code: Icd10Code::parse(code).unwrap(),
        description: format!("diagnosis {code}"),
        primary,
    }
}

fn prescription(medication: &str) -> Prescription {
    Prescription {
        id: PrescriptionId::new(),
        medication: medication.into(),
        dose: "500 mg".into(),
        frequency: "3x daily".into(),
        duration_days: 5,
    }
}

fn vital(kind: VitalKind, value: f64) -> VitalSign {
    VitalSign {
        id: VitalSignId::new(),
        kind,
        value,
    }
}

fn encounter(visit: &Visit) -> NewEncounter {
    NewEncounter {
        id: EncounterId::new(),
        appointment_id: visit.appointment,
        patient_id: visit.patient,
        doctor_id: visit.doctor,
        note: SoapNote {
            subjective: "cough for three days".into(),
            objective: "throat red".into(),
            assessment: "viral URI".into(),
            plan: "rest, fluids".into(),
        },
        diagnoses: vec![diagnosis("J06.9", true), diagnosis("R05", false)],
        prescriptions: vec![prescription("Paracetamol")],
        vitals: vec![
            vital(VitalKind::Temperature, 38.2),
            vital(VitalKind::HeartRate, 88.0),
        ],
        attribution: by(visit.doctor, Role::Doctor),
    }
}

#[derive(QueryableByName, Debug, PartialEq, Eq)]
struct AuditLine {
    #[diesel(sql_type = diesel::sql_types::Text)]
    line: String,
}

/// The audit trail as `action resource_type role request_id client_ip reason`, in order.
async fn audit_lines(conn: &mut AsyncPgConnection) -> Vec<String> {
    diesel::sql_query(
        "SELECT concat_ws(' ', action, resource_type, actor_role, request_id, client_ip, reason) AS line \
           FROM audit_events ORDER BY occurred_at, resource_type",
    )
    .load::<AuditLine>(conn)
    .await
    .unwrap()
    .into_iter()
    .map(|l| l.line)
    .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_encounter_is_written_whole_with_one_audit_event_per_row() {
    let f = fixture().await;
    let visit = checked_in_visit(&f, 7).await;
    let new = encounter(&visit);
    let written = f.store.create_encounter(new.clone()).await.unwrap();
    assert_eq!(
        (
            written.id,
            written.note.clone(),
            written.diagnoses.clone(),
            written.prescriptions.len(),
            written.vitals.clone(),
        ),
        (new.id, new.note, new.diagnoses, 1, new.vitals)
    );

    let mut conn = f.db.connect().await.unwrap();
    let mut lines = audit_lines(&mut conn).await;
    lines.sort();
    let doctor = "doctor req-42 192.0.2.7";
    assert_eq!(
        lines,
        vec![
            format!("create diagnosis {doctor}"),
            format!("create diagnosis {doctor}"),
            format!("create encounter {doctor}"),
            format!("create prescription {doctor}"),
            format!("create vital_sign {doctor}"),
            format!("create vital_sign {doctor}"),
        ]
    );
    let attributed = count(
        &mut conn,
        &format!(
            "SELECT count(*) AS n FROM audit_events WHERE actor_id = '{}' AND patient_id = '{}'",
            visit.doctor, visit.patient
        ),
    )
    .await;
    assert_eq!(attributed, 6);
    assert_eq!(f.violations().await, vec![]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_encounter_write_leaves_no_rows_and_no_audit_event() {
    let f = fixture().await;
    let visit = checked_in_visit(&f, 7).await;
    let mut conn = f.db.connect().await.unwrap();
    let empty = totals(&mut conn).await;

    // one implausible vital among valid rows: the CHECK refuses it, everything rolls back
    let mut bad_vital = encounter(&visit);
    bad_vital.vitals.push(vital(VitalKind::Temperature, 375.0));
    let error = f.store.create_encounter(bad_vital).await.unwrap_err();
    assert!(matches!(error, StoreError::Other(_)), "{error:?}");
    assert_eq!(totals(&mut conn).await, empty);

    // no primary diagnosis: refused at COMMIT by the deferred trigger, after every row was in
    let mut no_primary = encounter(&visit);
    no_primary.diagnoses = vec![diagnosis("J06.9", false)];
    assert!(f.store.create_encounter(no_primary).await.is_err());
    assert_eq!(totals(&mut conn).await, empty);

    // two primaries: the unique index refuses the second
    let mut two_primaries = encounter(&visit);
    two_primaries.diagnoses = vec![diagnosis("J06.9", true), diagnosis("R05", true)];
    assert!(f.store.create_encounter(two_primaries).await.is_err());
    assert_eq!(totals(&mut conn).await, empty);

    // and then the valid one goes through
    f.store.create_encounter(encounter(&visit)).await.unwrap();
    assert_eq!(f.violations().await, vec![]);
}

#[tokio::test(flavor = "multi_thread")]
async fn encounters_need_a_checked_in_visit_its_doctor_and_are_written_once() {
    let f = fixture().await;
    let visit = checked_in_visit(&f, 7).await;
    let booked_slot = f.slot(visit.doctor, at(8, 9, 0)).await;
    let booked = f.book(visit.patient, booked_slot.id).await.unwrap();

    let mut early = encounter(&visit);
    early.appointment_id = booked.appointment.id;
    assert!(matches!(
        f.store.create_encounter(early).await,
        Err(StoreError::Conflict(Conflict::AppointmentNotCheckedIn))
    ));

    // another doctor cannot write it, even naming themself as the actor
    let stranger = f.doctor().await.id;
    let mut foreign = encounter(&visit);
    foreign.doctor_id = stranger;
    foreign.attribution = by(stranger, Role::Doctor);
    assert!(matches!(
        f.store.create_encounter(foreign).await,
        Err(StoreError::NotFound)
    ));
    // nor can the right doctor's row be written under someone else's name
    let mut impersonated = encounter(&visit);
    impersonated.attribution = by(stranger, Role::Doctor);
    assert!(f.store.create_encounter(impersonated).await.is_err());

    f.store.create_encounter(encounter(&visit)).await.unwrap();
    assert!(matches!(
        f.store.create_encounter(encounter(&visit)).await,
        Err(StoreError::Conflict(Conflict::EncounterExists))
    ));
    assert_eq!(f.violations().await, vec![]);
}

#[tokio::test(flavor = "multi_thread")]
async fn amendments_keep_the_original_and_come_in_order() {
    let f = fixture().await;
    let visit = checked_in_visit(&f, 7).await;
    let original = f.store.create_encounter(encounter(&visit)).await.unwrap();
    let target = EncounterRef {
        id: original.id,
        patient_id: visit.patient,
        doctor_id: visit.doctor,
    };
    let first = NewAmendment {
        id: AmendmentId::new(),
        encounter: target,
        reason: "wrong code".into(),
        note: SoapCorrection {
            assessment: Some("bacterial pharyngitis".into()),
            ..SoapCorrection::default()
        },
        diagnoses: Some(vec![diagnosis("J02.9", true)]),
        prescriptions: None,
        attribution: by(visit.doctor, Role::Doctor),
    };
    f.store.amend_encounter(first.clone()).await.unwrap();
    let second = NewAmendment {
        id: AmendmentId::new(),
        reason: "no antibiotics after all".into(),
        note: SoapCorrection::default(),
        diagnoses: None,
        prescriptions: Some(vec![]),
        ..first.clone()
    };
    let amended = f.store.amend_encounter(second.clone()).await.unwrap();

    assert_eq!(amended.note, original.note, "the original is kept");
    assert_eq!(amended.diagnoses, original.diagnoses);
    let summary: Vec<_> = amended
        .amendments
        .iter()
        .map(|a| {
            (
                a.id,
                a.reason.as_str(),
                a.note.assessment.as_deref(),
                a.diagnoses.as_ref().map(|d| d[0].code.as_str().to_owned()),
                a.prescriptions.as_ref().map(Vec::len),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (
                first.id,
                "wrong code",
                Some("bacterial pharyngitis"),
                Some("J02.9".into()),
                None
            ),
            (second.id, "no antibiotics after all", None, None, Some(0)),
        ]
    );

    // only the author amends: the composite foreign key refuses anyone else
    let stranger = f.doctor().await.id;
    let foreign = NewAmendment {
        id: AmendmentId::new(),
        attribution: by(stranger, Role::Doctor),
        ..first
    };
    assert!(matches!(
        f.store.amend_encounter(foreign).await,
        Err(StoreError::NotFound)
    ));
    let mut conn = f.db.connect().await.unwrap();
    let amendment_events = count(
        &mut conn,
        "SELECT count(*) AS n FROM audit_events WHERE resource_type = 'encounter_amendment'",
    )
    .await;
    assert_eq!(amendment_events, 2);
    assert_eq!(f.violations().await, vec![]);
}

#[tokio::test(flavor = "multi_thread")]
async fn allergies_need_a_care_relationship_that_is_not_cancelled() {
    let f = fixture().await;
    let visit = checked_in_visit(&f, 7).await;
    let allergy = |doctor: UserId| NewAllergy {
        id: AllergyId::new(),
        patient_id: visit.patient,
        recorded_by: doctor,
        substance: "penicillin".into(),
        reaction: "hives".into(),
        severity: Severity::Severe,
        attribution: by(doctor, Role::Doctor),
    };
    let stored = f.store.add_allergy(allergy(visit.doctor)).await.unwrap();
    assert_eq!(
        (stored.substance.as_str(), stored.severity),
        ("penicillin", Severity::Severe)
    );
    assert!(
        f.store
            .care_relationship(visit.patient, visit.doctor)
            .await
            .unwrap()
    );

    // a doctor whose only appointment with the patient was cancelled treats nobody
    let former = f.doctor().await.id;
    let slot = f.slot(former, at(9, 9, 0)).await;
    let booking = f.book(visit.patient, slot.id).await.unwrap();
    assert!(
        f.store
            .care_relationship(visit.patient, former)
            .await
            .unwrap()
    );
    let mut conn = f.db.connect().await.unwrap();
    conn.batch_execute(&format!(
        "UPDATE appointments SET status = 'cancelled', cancelled_at = now() WHERE id = '{}'",
        booking.appointment.id
    ))
    .await
    .unwrap();
    assert!(
        !f.store
            .care_relationship(visit.patient, former)
            .await
            .unwrap()
    );
    assert!(matches!(
        f.store.add_allergy(allergy(former)).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(
        count(&mut conn, "SELECT count(*) AS n FROM audit_events").await,
        1,
        "only the stored allergy is audited"
    );
    assert!(f.store.patient_exists(visit.patient).await.unwrap());
    assert!(!f.store.patient_exists(visit.doctor).await.unwrap());
}

#[tokio::test(flavor = "multi_thread")]
async fn reads_are_audited_and_shown_in_the_access_log() {
    let f = fixture().await;
    let visit = checked_in_visit(&f, 7).await;
    f.store.create_encounter(encounter(&visit)).await.unwrap();
    // a second visit with its own encounter, for pagination
    let slot = f.slot(visit.doctor, at(8, 9, 0)).await;
    let later = f.book(visit.patient, slot.id).await.unwrap().appointment.id;
    let mut conn = f.db.connect().await.unwrap();
    conn.batch_execute(&format!(
        "UPDATE appointments SET status = 'checked-in' WHERE id = '{later}'"
    ))
    .await
    .unwrap();
    let second = NewEncounter {
        appointment_id: later,
        id: EncounterId::new(),
        ..encounter(&visit)
    };
    f.store.create_encounter(second.clone()).await.unwrap();
    let writes = count(&mut conn, "SELECT count(*) AS n FROM audit_events").await;

    let admin = f.admin().await;
    let doctor_read = RecordRead {
        patient_id: visit.patient,
        attribution: by(visit.doctor, Role::Doctor),
        reason: None,
    };
    let page = PageRequest::new(Some(1), None).unwrap();
    let first_page = f
        .store
        .read_records(doctor_read.clone(), page)
        .await
        .unwrap();
    assert_eq!(first_page.encounters.items[0].id, second.id, "newest first");
    let next = PageRequest::new(Some(1), first_page.encounters.next.clone()).unwrap();
    let second_page = f
        .store
        .read_records(doctor_read.clone(), next)
        .await
        .unwrap();
    assert_eq!(second_page.encounters.items.len(), 1);
    assert_ne!(second_page.encounters.items[0].id, second.id);
    assert_eq!(second_page.encounters.next, None);

    let break_glass = RecordRead {
        patient_id: visit.patient,
        attribution: by(admin, Role::Admin),
        reason: Some("billing dispute 17".into()),
    };
    f.store.read_allergies(break_glass).await.unwrap();

    let reads = count(&mut conn, "SELECT count(*) AS n FROM audit_events").await - writes;
    assert_eq!(reads, 3, "two record pages and one allergy list");
    let log = f
        .store
        .access_log(visit.patient, PageRequest::default())
        .await
        .unwrap();
    let newest = &log.items[0];
    assert_eq!(
        (
            newest.action,
            newest.resource_type.as_str(),
            newest.actor_id,
            newest.actor_role,
            newest.reason.as_deref(),
            newest.request_id.as_deref(),
        ),
        (
            AuditAction::Read,
            "allergies",
            admin,
            Role::Admin,
            Some("billing dispute 17"),
            Some("req-42")
        )
    );
    assert_eq!(log.items.len() as i64, writes + reads);
    assert!(
        log.items
            .windows(2)
            .all(|w| w[0].occurred_at >= w[1].occurred_at)
    );

    // a break-glass read without a reason cannot even be recorded
    let no_reason = RecordRead {
        patient_id: visit.patient,
        attribution: by(admin, Role::Admin),
        reason: None,
    };
    assert!(f.store.read_allergies(no_reason).await.is_err());
    assert_eq!(f.violations().await, vec![]);
}

/// Runs `sql` and returns the name of the constraint or trigger that refused it.
async fn refused_by(conn: &mut AsyncPgConnection, sql: &str) -> String {
    match conn.batch_execute(sql).await {
        Ok(()) => panic!("the database accepted: {sql}"),
        Err(DieselError::DatabaseError(_, info)) => {
            info.constraint_name().unwrap_or(info.message()).to_owned()
        }
        Err(other) => panic!("unexpected error {other:?} for {sql}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn clinical_rows_and_audit_events_cannot_be_changed_or_removed() {
    let f = fixture().await;
    let visit = checked_in_visit(&f, 7).await;
    let written = f.store.create_encounter(encounter(&visit)).await.unwrap();
    f.store
        .amend_encounter(NewAmendment {
            id: AmendmentId::new(),
            encounter: EncounterRef {
                id: written.id,
                patient_id: visit.patient,
                doctor_id: visit.doctor,
            },
            reason: "typo".into(),
            note: SoapCorrection {
                plan: Some("rest".into()),
                ..SoapCorrection::default()
            },
            diagnoses: None,
            prescriptions: None,
            attribution: by(visit.doctor, Role::Doctor),
        })
        .await
        .unwrap();
    f.store
        .add_allergy(NewAllergy {
            id: AllergyId::new(),
            patient_id: visit.patient,
            recorded_by: visit.doctor,
            substance: "latex".into(),
            reaction: String::new(),
            severity: Severity::Mild,
            attribution: by(visit.doctor, Role::Doctor),
        })
        .await
        .unwrap();
    let mut conn = f.db.connect().await.unwrap();
    let before = totals(&mut conn).await;
    assert!(before.iter().all(|(_, n)| *n > 0), "{before:?}");

    for table in CLINICAL_TABLES.into_iter().chain(["audit_events"]) {
        let guard = format!("{table}_append_only");
        // even a superuser in psql, with the actor set
        let update = format!(
            "BEGIN; SELECT set_config('shms.actor_id', '{}', true), set_config('shms.actor_role', 'doctor', true); \
             UPDATE {table} SET id = id; COMMIT;",
            visit.doctor
        );
        assert_eq!(
            refused_by(&mut conn, &update).await,
            guard,
            "UPDATE {table}"
        );
        conn.batch_execute("ROLLBACK").await.unwrap();
        assert_eq!(
            refused_by(&mut conn, &format!("DELETE FROM {table}")).await,
            guard,
            "DELETE {table}"
        );
        assert_eq!(
            refused_by(&mut conn, &format!("TRUNCATE {table} CASCADE")).await,
            guard,
            "TRUNCATE {table}"
        );
    }
    assert_eq!(totals(&mut conn).await, before);
}

#[tokio::test(flavor = "multi_thread")]
async fn clinical_rows_are_never_written_anonymously() {
    let f = fixture().await;
    let visit = checked_in_visit(&f, 7).await;
    let mut conn = f.db.connect().await.unwrap();
    let sql = format!(
        "INSERT INTO allergies (id, patient_id, recorded_by, substance, reaction, severity) \
         VALUES (gen_random_uuid(), '{}', '{}', 'nuts', '', 'mild')",
        visit.patient, visit.doctor
    );
    // without the actor, the allergy guard (actor = recorder) refuses first
    assert_eq!(
        refused_by(&mut conn, &sql).await,
        "allergies_recorded_by_actor"
    );
    let sql = format!(
        "INSERT INTO encounters (id, appointment_id, patient_id, doctor_id, subjective, objective, assessment, plan) \
         VALUES (gen_random_uuid(), '{}', '{}', '{}', '', '', 'a', '')",
        visit.appointment, visit.patient, visit.doctor
    );
    assert_eq!(
        refused_by(&mut conn, &sql).await,
        "encounters_written_by_doctor"
    );
    // with an actor id but no role, the audit trigger refuses
    let sql = format!(
        "BEGIN; SELECT set_config('shms.actor_id', '{}', true); {sql}; COMMIT;",
        visit.doctor
    );
    assert_eq!(refused_by(&mut conn, &sql).await, "audit_actor_required");
    conn.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(
        count(&mut conn, "SELECT count(*) AS n FROM encounters").await,
        0
    );
}
