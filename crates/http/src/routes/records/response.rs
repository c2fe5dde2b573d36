//! Response bodies of the record routes. Field names are part of the API contract.

use chrono::{DateTime, Utc};
use serde::Serialize;
use shms_domain::records::{
    Allergy, Amendment, AuditEvent, Diagnosis, Encounter, Prescription, VitalSign,
};
use uuid::Uuid;

/// A diagnosis.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DiagnosisDto {
    id: Uuid,
    code: String,
    description: String,
    primary: bool,
}

impl From<Diagnosis> for DiagnosisDto {
    fn from(d: Diagnosis) -> Self {
        Self {
            id: d.id.as_uuid(),
            code: d.code.as_str().to_owned(),
            description: d.description,
            primary: d.primary,
        }
    }
}

/// A prescription.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PrescriptionDto {
    id: Uuid,
    medication: String,
    dose: String,
    frequency: String,
    duration_days: u16,
}

impl From<Prescription> for PrescriptionDto {
    fn from(p: Prescription) -> Self {
        Self {
            id: p.id.as_uuid(),
            medication: p.medication,
            dose: p.dose,
            frequency: p.frequency,
            duration_days: p.duration_days,
        }
    }
}

/// A vital sign with its unit.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct VitalDto {
    id: Uuid,
    kind: &'static str,
    value: f64,
    unit: &'static str,
}

impl From<VitalSign> for VitalDto {
    fn from(v: VitalSign) -> Self {
        Self {
            id: v.id.as_uuid(),
            kind: v.kind.as_str(),
            value: v.value,
            unit: v.kind.unit(),
        }
    }
}

fn list<D, T: From<D>>(items: Vec<D>) -> Vec<T> {
    items.into_iter().map(T::from).collect()
}

/// An amendment: `null` parts and lists are unchanged.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AmendmentDto {
    id: Uuid,
    author_id: Uuid,
    reason: String,
    subjective: Option<String>,
    objective: Option<String>,
    assessment: Option<String>,
    plan: Option<String>,
    diagnoses: Option<Vec<DiagnosisDto>>,
    prescriptions: Option<Vec<PrescriptionDto>>,
    created_at: DateTime<Utc>,
}

impl From<Amendment> for AmendmentDto {
    fn from(a: Amendment) -> Self {
        Self {
            id: a.id.as_uuid(),
            author_id: a.author_id.as_uuid(),
            reason: a.reason,
            subjective: a.note.subjective,
            objective: a.note.objective,
            assessment: a.note.assessment,
            plan: a.note.plan,
            diagnoses: a.diagnoses.map(list),
            prescriptions: a.prescriptions.map(list),
            created_at: a.created_at,
        }
    }
}

/// An encounter as originally written, with its amendments oldest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EncounterDto {
    id: Uuid,
    appointment_id: Uuid,
    patient_id: Uuid,
    doctor_id: Uuid,
    subjective: String,
    objective: String,
    assessment: String,
    plan: String,
    diagnoses: Vec<DiagnosisDto>,
    prescriptions: Vec<PrescriptionDto>,
    vitals: Vec<VitalDto>,
    amendments: Vec<AmendmentDto>,
    created_at: DateTime<Utc>,
}

impl From<Encounter> for EncounterDto {
    fn from(e: Encounter) -> Self {
        Self {
            id: e.id.as_uuid(),
            appointment_id: e.appointment_id.as_uuid(),
            patient_id: e.patient_id.as_uuid(),
            doctor_id: e.doctor_id.as_uuid(),
            subjective: e.note.subjective,
            objective: e.note.objective,
            assessment: e.note.assessment,
            plan: e.note.plan,
            diagnoses: list(e.diagnoses),
            prescriptions: list(e.prescriptions),
            vitals: list(e.vitals),
            amendments: list(e.amendments),
            created_at: e.created_at,
        }
    }
}

/// `{"encounter": {...}}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EncounterResponse {
    /// The encounter.
    pub encounter: EncounterDto,
}

/// An allergy.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AllergyDto {
    id: Uuid,
    patient_id: Uuid,
    recorded_by: Uuid,
    substance: String,
    reaction: String,
    severity: &'static str,
    created_at: DateTime<Utc>,
}

impl From<Allergy> for AllergyDto {
    fn from(a: Allergy) -> Self {
        Self {
            id: a.id.as_uuid(),
            patient_id: a.patient_id.as_uuid(),
            recorded_by: a.recorded_by.as_uuid(),
            substance: a.substance,
            reaction: a.reaction,
            severity: a.severity.as_str(),
            created_at: a.created_at,
        }
    }
}

/// `{"allergy": {...}}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AllergyResponse {
    /// The allergy.
    pub allergy: AllergyDto,
}

/// A page of the patient's history: every allergy, and encounters newest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RecordsResponse {
    /// Whose records.
    pub patient_id: Uuid,
    /// Every allergy, newest first, on every page (safety information is never paged away).
    pub allergies: Vec<AllergyDto>,
    /// Encounters, newest first.
    pub items: Vec<EncounterDto>,
    /// The cursor of the next page of encounters.
    pub next_cursor: Option<String>,
}

/// One access-log entry.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AuditEventDto {
    id: Uuid,
    occurred_at: DateTime<Utc>,
    actor_id: Uuid,
    actor_role: &'static str,
    actor_name: String,
    action: &'static str,
    resource_type: String,
    resource_id: Option<Uuid>,
    reason: Option<String>,
    request_id: Option<String>,
    client_ip: Option<String>,
}

impl From<AuditEvent> for AuditEventDto {
    fn from(e: AuditEvent) -> Self {
        Self {
            id: e.id.as_uuid(),
            occurred_at: e.occurred_at,
            actor_id: e.actor_id.as_uuid(),
            actor_role: e.actor_role.as_str(),
            actor_name: e.actor_name,
            action: e.action.as_str(),
            resource_type: e.resource_type,
            resource_id: e.resource_id,
            reason: e.reason,
            request_id: e.request_id,
            client_ip: e.client_ip,
        }
    }
}
