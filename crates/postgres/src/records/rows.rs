//! Clinical rows as stored, and their assembly into domain encounters. A row that does not
//! convert (an unknown vital kind) means the schema and the code disagree: `StoreError::Other`.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use shms_domain::StoreError;
use shms_domain::records::{
    Allergy, Amendment, AuditEvent, Diagnosis, Encounter, Icd10Code, Prescription, SoapCorrection,
    SoapNote, VitalSign,
};
use uuid::Uuid;

use crate::schema::{
    allergies, audit_events, diagnoses, encounter_amendments, encounters, prescriptions,
    vital_signs,
};

fn parse<T: std::str::FromStr<Err = String>>(raw: &str) -> Result<T, StoreError> {
    raw.parse()
        .map_err(|error: String| StoreError::Other(error.into()))
}

#[derive(Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = encounters, check_for_backend(diesel::pg::Pg))]
pub struct EncounterRow {
    pub id: Uuid,
    pub appointment_id: Uuid,
    pub patient_id: Uuid,
    pub doctor_id: Uuid,
    pub subjective: String,
    pub objective: String,
    pub assessment: String,
    pub plan: String,
    /// Set by the database; skipped on insert.
    #[diesel(skip_insertion)]
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = encounter_amendments, check_for_backend(diesel::pg::Pg))]
pub struct AmendmentRow {
    pub id: Uuid,
    pub encounter_id: Uuid,
    pub patient_id: Uuid,
    pub author_id: Uuid,
    pub reason: String,
    pub subjective: Option<String>,
    pub objective: Option<String>,
    pub assessment: Option<String>,
    pub plan: Option<String>,
    pub replaces_diagnoses: bool,
    pub replaces_prescriptions: bool,
    /// Set by the database; skipped on insert.
    #[diesel(skip_insertion)]
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = diagnoses, check_for_backend(diesel::pg::Pg))]
pub struct DiagnosisRow {
    pub id: Uuid,
    pub encounter_id: Uuid,
    pub patient_id: Uuid,
    pub amendment_id: Option<Uuid>,
    pub position: i32,
    pub code: String,
    pub description: String,
    pub is_primary: bool,
}

#[derive(Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = prescriptions, check_for_backend(diesel::pg::Pg))]
pub struct PrescriptionRow {
    pub id: Uuid,
    pub encounter_id: Uuid,
    pub patient_id: Uuid,
    pub amendment_id: Option<Uuid>,
    pub position: i32,
    pub medication: String,
    pub dose: String,
    pub frequency: String,
    pub duration_days: i32,
}

#[derive(Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = vital_signs, check_for_backend(diesel::pg::Pg))]
pub struct VitalRow {
    pub id: Uuid,
    pub encounter_id: Uuid,
    pub patient_id: Uuid,
    pub position: i32,
    pub kind: String,
    pub value: f64,
    pub unit: String,
}

#[derive(Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = allergies, check_for_backend(diesel::pg::Pg))]
pub struct AllergyRow {
    pub id: Uuid,
    pub patient_id: Uuid,
    pub recorded_by: Uuid,
    pub substance: String,
    pub reaction: String,
    pub severity: String,
    /// Set by the database; skipped on insert.
    #[diesel(skip_insertion)]
    pub created_at: DateTime<Utc>,
}

impl TryFrom<AllergyRow> for Allergy {
    type Error = StoreError;

    fn try_from(row: AllergyRow) -> Result<Self, Self::Error> {
        Ok(Self {
            id: row.id.into(),
            patient_id: row.patient_id.into(),
            recorded_by: row.recorded_by.into(),
            substance: row.substance,
            reaction: row.reaction,
            severity: parse(&row.severity)?,
            created_at: row.created_at,
        })
    }
}

/// An audit event with its actor's name.
#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = audit_events, check_for_backend(diesel::pg::Pg))]
pub struct AuditRow {
    pub id: Uuid,
    pub occurred_at: DateTime<Utc>,
    pub actor_id: Uuid,
    pub actor_role: String,
    pub action: String,
    pub resource_type: String,
    pub resource_id: Option<Uuid>,
    pub request_id: Option<String>,
    pub client_ip: Option<String>,
    pub reason: Option<String>,
}

/// Converts an audit row and its actor's name.
pub fn audit_event((row, actor_name): (AuditRow, String)) -> Result<AuditEvent, StoreError> {
    Ok(AuditEvent {
        id: row.id.into(),
        occurred_at: row.occurred_at,
        actor_id: row.actor_id.into(),
        actor_role: parse(&row.actor_role)?,
        actor_name,
        action: parse(&row.action)?,
        resource_type: row.resource_type,
        resource_id: row.resource_id,
        reason: row.reason,
        request_id: row.request_id,
        client_ip: row.client_ip,
    })
}

fn diagnosis(row: DiagnosisRow) -> Result<Diagnosis, StoreError> {
    Ok(Diagnosis {
        id: row.id.into(),
        code: Icd10Code::parse(&row.code).map_err(|e| StoreError::Other(e.into()))?,
        description: row.description,
        primary: row.is_primary,
    })
}

fn prescription(row: PrescriptionRow) -> Result<Prescription, StoreError> {
    Ok(Prescription {
        id: row.id.into(),
        medication: row.medication,
        dose: row.dose,
        frequency: row.frequency,
        duration_days: u16::try_from(row.duration_days)
            .map_err(|e| StoreError::Other(Box::new(e)))?,
    })
}

fn vital(row: VitalRow) -> Result<VitalSign, StoreError> {
    Ok(VitalSign {
        id: row.id.into(),
        kind: parse(&row.kind)?,
        value: row.value,
    })
}

/// Encounters and every child row of them, as loaded in one transaction.
#[derive(Debug, Default)]
pub struct EncounterRows {
    /// In the order to return them.
    pub encounters: Vec<EncounterRow>,
    /// Ordered by created_at, id.
    pub amendments: Vec<AmendmentRow>,
    /// Ordered by position.
    pub diagnoses: Vec<DiagnosisRow>,
    /// Ordered by position.
    pub prescriptions: Vec<PrescriptionRow>,
    /// Ordered by position.
    pub vitals: Vec<VitalRow>,
}

/// Child rows grouped by (encounter, amendment) — amendment `None` for the original list.
type Lists<T> = HashMap<(Uuid, Option<Uuid>), Vec<T>>;

fn group<R, T>(
    rows: Vec<R>,
    key: impl Fn(&R) -> (Uuid, Option<Uuid>),
    convert: impl Fn(R) -> Result<T, StoreError>,
) -> Result<Lists<T>, StoreError> {
    let mut lists: Lists<T> = HashMap::new();
    for row in rows {
        lists.entry(key(&row)).or_default().push(convert(row)?);
    }
    Ok(lists)
}

impl EncounterRows {
    /// Assembles the domain encounters, keeping the encounters' order.
    pub fn assemble(self) -> Result<Vec<Encounter>, StoreError> {
        let mut diagnoses = group(
            self.diagnoses,
            |d| (d.encounter_id, d.amendment_id),
            diagnosis,
        )?;
        let mut prescriptions = group(
            self.prescriptions,
            |p| (p.encounter_id, p.amendment_id),
            prescription,
        )?;
        let mut vitals = group(self.vitals, |v| (v.encounter_id, None), vital)?;
        let mut amendments: HashMap<Uuid, Vec<Amendment>> = HashMap::new();
        for row in self.amendments {
            let key = (row.encounter_id, Some(row.id));
            let amendment = Amendment {
                id: row.id.into(),
                author_id: row.author_id.into(),
                reason: row.reason,
                note: SoapCorrection {
                    subjective: row.subjective,
                    objective: row.objective,
                    assessment: row.assessment,
                    plan: row.plan,
                },
                diagnoses: row
                    .replaces_diagnoses
                    .then(|| diagnoses.remove(&key).unwrap_or_default()),
                prescriptions: row
                    .replaces_prescriptions
                    .then(|| prescriptions.remove(&key).unwrap_or_default()),
                created_at: row.created_at,
            };
            amendments
                .entry(row.encounter_id)
                .or_default()
                .push(amendment);
        }
        Ok(self
            .encounters
            .into_iter()
            .map(|row| {
                let original = (row.id, None);
                Encounter {
                    id: row.id.into(),
                    appointment_id: row.appointment_id.into(),
                    patient_id: row.patient_id.into(),
                    doctor_id: row.doctor_id.into(),
                    note: SoapNote {
                        subjective: row.subjective,
                        objective: row.objective,
                        assessment: row.assessment,
                        plan: row.plan,
                    },
                    diagnoses: diagnoses.remove(&original).unwrap_or_default(),
                    prescriptions: prescriptions.remove(&original).unwrap_or_default(),
                    vitals: vitals.remove(&original).unwrap_or_default(),
                    amendments: amendments.remove(&row.id).unwrap_or_default(),
                    created_at: row.created_at,
                }
            })
            .collect())
    }
}
