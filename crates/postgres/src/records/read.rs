//! Clinical reads. A read of a patient's data first inserts its audit event, in the same
//! transaction as the queries: if the audit cannot be written, nothing is read.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use shms_domain::records::{AuditAction, RecordRead};
use uuid::Uuid;

use super::rows::{
    AllergyRow, AmendmentRow, DiagnosisRow, EncounterRow, EncounterRows, PrescriptionRow, VitalRow,
};
use crate::schema::{
    allergies, audit_events, diagnoses, encounter_amendments, encounters, prescriptions,
    vital_signs,
};

/// Records who read which part of a patient's data, and why (break-glass).
pub async fn audit_read(
    conn: &mut AsyncPgConnection,
    read: &RecordRead,
    resource_type: &str,
) -> QueryResult<()> {
    let who = &read.attribution;
    diesel::insert_into(audit_events::table)
        .values((
            audit_events::actor_id.eq(who.actor_id.as_uuid()),
            audit_events::actor_role.eq(who.actor_role.as_str()),
            audit_events::action.eq(AuditAction::Read.as_str()),
            audit_events::resource_type.eq(resource_type),
            audit_events::patient_id.eq(read.patient_id.as_uuid()),
            audit_events::request_id.eq(who.request_id.as_deref()),
            audit_events::client_ip.eq(who.client_ip.as_deref()),
            audit_events::reason.eq(read.reason.as_deref()),
        ))
        .execute(conn)
        .await
        .map(|_| ())
}

/// A patient's allergies, newest first.
pub async fn allergies_of(
    conn: &mut AsyncPgConnection,
    patient: Uuid,
) -> QueryResult<Vec<AllergyRow>> {
    allergies::table
        .filter(allergies::patient_id.eq(patient))
        .order((allergies::created_at.desc(), allergies::id.desc()))
        .select(AllergyRow::as_select())
        .load(conn)
        .await
}

/// Up to `limit` encounters of a patient, newest first, after the cursor.
pub async fn encounter_page(
    conn: &mut AsyncPgConnection,
    patient: Uuid,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> QueryResult<Vec<EncounterRow>> {
    let mut query = encounters::table
        .filter(encounters::patient_id.eq(patient))
        .order((encounters::created_at.desc(), encounters::id.desc()))
        .limit(limit)
        .select(EncounterRow::as_select())
        .into_boxed();
    if let Some((at, id)) = after {
        query = query.filter(
            encounters::created_at
                .lt(at)
                .or(encounters::created_at.eq(at).and(encounters::id.lt(id))),
        );
    }
    query.load(conn).await
}

/// The encounters with every child row.
pub async fn with_children(
    conn: &mut AsyncPgConnection,
    encounters: Vec<EncounterRow>,
) -> QueryResult<EncounterRows> {
    let ids: Vec<Uuid> = encounters.iter().map(|e| e.id).collect();
    if ids.is_empty() {
        return Ok(EncounterRows::default());
    }
    let amendments = encounter_amendments::table
        .filter(encounter_amendments::encounter_id.eq_any(&ids))
        .order((
            encounter_amendments::created_at.asc(),
            encounter_amendments::id.asc(),
        ))
        .select(AmendmentRow::as_select())
        .load(conn)
        .await?;
    let diagnoses = diagnoses::table
        .filter(diagnoses::encounter_id.eq_any(&ids))
        .order(diagnoses::position.asc())
        .select(DiagnosisRow::as_select())
        .load(conn)
        .await?;
    let prescriptions = prescriptions::table
        .filter(prescriptions::encounter_id.eq_any(&ids))
        .order(prescriptions::position.asc())
        .select(PrescriptionRow::as_select())
        .load(conn)
        .await?;
    let vitals = vital_signs::table
        .filter(vital_signs::encounter_id.eq_any(&ids))
        .order(vital_signs::position.asc())
        .select(VitalRow::as_select())
        .load(conn)
        .await?;
    Ok(EncounterRows {
        encounters,
        amendments,
        diagnoses,
        prescriptions,
        vitals,
    })
}

/// One encounter with every child row.
pub async fn encounter_by_id(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<EncounterRows> {
    let encounter = encounters::table
        .find(id)
        .select(EncounterRow::as_select())
        .first(conn)
        .await?;
    with_children(conn, vec![encounter]).await
}
