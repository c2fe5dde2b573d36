//! Clinical writes. Each runs in one transaction that starts by naming the actor
//! (`set_config(..., true)` = `SET LOCAL`), so the migration's `audit_clinical_insert`
//! trigger writes the audit event of every row in that same transaction. A refusal by any
//! constraint rolls back the rows and their audit events together.

use diesel::prelude::*;
use diesel::sql_types::Text;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use shms_domain::records::{
    Attribution, Diagnosis, NewAllergy, NewAmendment, NewEncounter, Prescription,
};
use uuid::Uuid;

use super::rows::{
    AllergyRow, AmendmentRow, DiagnosisRow, EncounterRow, PrescriptionRow, VitalRow,
};
use crate::schema::{
    allergies, diagnoses, encounter_amendments, encounters, prescriptions, vital_signs,
};

/// Names the acting user for the rest of the transaction (read by the audit trigger).
/// Bound parameters, not string formatting: the request id comes from the client.
pub async fn attribute(conn: &mut AsyncPgConnection, who: &Attribution) -> QueryResult<()> {
    diesel::sql_query(
        "SELECT set_config('shms.actor_id', $1, true), set_config('shms.actor_role', $2, true), \
                set_config('shms.request_id', $3, true), set_config('shms.client_ip', $4, true)",
    )
    .bind::<Text, _>(who.actor_id.to_string())
    .bind::<Text, _>(who.actor_role.as_str())
    .bind::<Text, _>(who.request_id.as_deref().unwrap_or_default())
    .bind::<Text, _>(who.client_ip.as_deref().unwrap_or_default())
    .execute(conn)
    .await
    .map(|_| ())
}

/// Positions are small (the domain caps lists at 50), so the cast cannot truncate.
fn position(index: usize) -> i32 {
    i32::try_from(index).unwrap_or(i32::MAX)
}

async fn insert_diagnoses(
    conn: &mut AsyncPgConnection,
    (encounter, patient, amendment): (Uuid, Uuid, Option<Uuid>),
    list: &[Diagnosis],
) -> QueryResult<()> {
    if list.is_empty() {
        return Ok(());
    }
    let rows: Vec<DiagnosisRow> = list
        .iter()
        .enumerate()
        .map(|(i, d)| DiagnosisRow {
            id: d.id.as_uuid(),
            encounter_id: encounter,
            patient_id: patient,
            amendment_id: amendment,
            position: position(i),
            code: d.code.as_str().to_owned(),
            description: d.description.clone(),
            is_primary: d.primary,
        })
        .collect();
    diesel::insert_into(diagnoses::table)
        .values(rows)
        .execute(conn)
        .await
        .map(|_| ())
}

async fn insert_prescriptions(
    conn: &mut AsyncPgConnection,
    (encounter, patient, amendment): (Uuid, Uuid, Option<Uuid>),
    list: &[Prescription],
) -> QueryResult<()> {
    if list.is_empty() {
        return Ok(());
    }
    let rows: Vec<PrescriptionRow> = list
        .iter()
        .enumerate()
        .map(|(i, p)| PrescriptionRow {
            id: p.id.as_uuid(),
            encounter_id: encounter,
            patient_id: patient,
            amendment_id: amendment,
            position: position(i),
            medication: p.medication.clone(),
            dose: p.dose.clone(),
            frequency: p.frequency.clone(),
            duration_days: i32::from(p.duration_days),
        })
        .collect();
    diesel::insert_into(prescriptions::table)
        .values(rows)
        .execute(conn)
        .await
        .map(|_| ())
}

/// Inserts the encounter and all its lists. The caller owns the transaction.
pub async fn insert_encounter(conn: &mut AsyncPgConnection, new: &NewEncounter) -> QueryResult<()> {
    attribute(conn, &new.attribution).await?;
    let (id, patient) = (new.id.as_uuid(), new.patient_id.as_uuid());
    diesel::insert_into(encounters::table)
        .values(EncounterRow {
            id,
            appointment_id: new.appointment_id.as_uuid(),
            patient_id: patient,
            doctor_id: new.doctor_id.as_uuid(),
            subjective: new.note.subjective.clone(),
            objective: new.note.objective.clone(),
            assessment: new.note.assessment.clone(),
            plan: new.note.plan.clone(),
            created_at: chrono::DateTime::UNIX_EPOCH,
        })
        .execute(conn)
        .await?;
    insert_diagnoses(conn, (id, patient, None), &new.diagnoses).await?;
    insert_prescriptions(conn, (id, patient, None), &new.prescriptions).await?;
    if !new.vitals.is_empty() {
        let rows: Vec<VitalRow> = new
            .vitals
            .iter()
            .enumerate()
            .map(|(i, v)| VitalRow {
                id: v.id.as_uuid(),
                encounter_id: id,
                patient_id: patient,
                position: position(i),
                kind: v.kind.as_str().to_owned(),
                value: v.value,
                unit: v.kind.unit().to_owned(),
            })
            .collect();
        diesel::insert_into(vital_signs::table)
            .values(rows)
            .execute(conn)
            .await?;
    }
    Ok(())
}

/// Inserts an amendment and its replacement lists. The caller owns the transaction.
pub async fn insert_amendment(conn: &mut AsyncPgConnection, new: &NewAmendment) -> QueryResult<()> {
    attribute(conn, &new.attribution).await?;
    let encounter = new.encounter.id.as_uuid();
    let patient = new.encounter.patient_id.as_uuid();
    let id = new.id.as_uuid();
    diesel::insert_into(encounter_amendments::table)
        .values(AmendmentRow {
            id,
            encounter_id: encounter,
            patient_id: patient,
            // the acting user, so the by-author foreign key checks the caller, not a copy
            author_id: new.attribution.actor_id.as_uuid(),
            reason: new.reason.clone(),
            subjective: new.note.subjective.clone(),
            objective: new.note.objective.clone(),
            assessment: new.note.assessment.clone(),
            plan: new.note.plan.clone(),
            replaces_diagnoses: new.diagnoses.is_some(),
            replaces_prescriptions: new.prescriptions.is_some(),
            created_at: chrono::DateTime::UNIX_EPOCH,
        })
        .execute(conn)
        .await?;
    let key = (encounter, patient, Some(id));
    if let Some(list) = &new.diagnoses {
        insert_diagnoses(conn, key, list).await?;
    }
    if let Some(list) = &new.prescriptions {
        insert_prescriptions(conn, key, list).await?;
    }
    Ok(())
}

/// Inserts an allergy. The caller owns the transaction.
pub async fn insert_allergy(
    conn: &mut AsyncPgConnection,
    new: &NewAllergy,
) -> QueryResult<AllergyRow> {
    attribute(conn, &new.attribution).await?;
    diesel::insert_into(allergies::table)
        .values(AllergyRow {
            id: new.id.as_uuid(),
            patient_id: new.patient_id.as_uuid(),
            recorded_by: new.recorded_by.as_uuid(),
            substance: new.substance.clone(),
            reaction: new.reaction.clone(),
            severity: new.severity.as_str().to_owned(),
            created_at: chrono::DateTime::UNIX_EPOCH,
        })
        .returning(AllergyRow::as_returning())
        .get_result(conn)
        .await
}
