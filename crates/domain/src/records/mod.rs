//! Medical history (DESIGN §3): encounters with their SOAP note, diagnoses, prescriptions and
//! vital signs; amendments that correct an encounter while keeping the original; allergies;
//! and the audit trail of who wrote or read a patient's data.
//!
//! Clinical data is append-only. The domain decides who may read and write (`access`); the
//! database refuses any UPDATE or DELETE and writes the audit event of every clinical row
//! in the writing transaction (migration `000003_medical_records`).

mod access;
mod service;
mod validate;
mod values;

use chrono::{DateTime, Utc};
use uuid::Uuid;

pub use access::{AccessRefusal, ReadBasis, read_basis};
pub use service::{
    AllergyGrant, AmendGrant, EncounterGrant, RecordError, RecordService, RequestOrigin,
};
pub use validate::{
    AllergyDraft, AmendmentDraft, DiagnosisDraft, EncounterDraft, MAX_BREAK_GLASS_REASON_CHARS,
    PrescriptionDraft, VitalDraft,
};
pub use values::{AuditAction, Icd10Code, Severity, VitalKind};

use crate::ids::{
    AllergyId, AmendmentId, AppointmentId, AuditEventId, DiagnosisId, EncounterId, PrescriptionId,
    UserId, VitalSignId,
};
use crate::page::Page;
use crate::user::Role;

/// Who writes or reads, and from where: what the audit trail records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribution {
    /// The acting user.
    pub actor_id: UserId,
    /// Their role at the time.
    pub actor_role: Role,
    /// The request's id (`x-request-id`), when there is one.
    pub request_id: Option<String>,
    /// The client's address, when known.
    pub client_ip: Option<String>,
}

/// The four parts of a clinical note.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SoapNote {
    /// What the patient reports.
    pub subjective: String,
    /// What the doctor observes and measures.
    pub objective: String,
    /// The doctor's assessment (never blank).
    pub assessment: String,
    /// What happens next.
    pub plan: String,
}

/// The parts of a note an amendment corrects; `None` leaves a part as it was.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SoapCorrection {
    /// Corrected subjective part.
    pub subjective: Option<String>,
    /// Corrected objective part.
    pub objective: Option<String>,
    /// Corrected assessment.
    pub assessment: Option<String>,
    /// Corrected plan.
    pub plan: Option<String>,
}

impl SoapCorrection {
    /// Whether no part is corrected.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.subjective.is_none()
            && self.objective.is_none()
            && self.assessment.is_none()
            && self.plan.is_none()
    }
}

/// A diagnosis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnosis {
    /// Its id.
    pub id: DiagnosisId,
    /// ICD-10 code.
    pub code: Icd10Code,
    /// Human description.
    pub description: String,
    /// Whether this is the primary diagnosis of its list (exactly one is).
    pub primary: bool,
}

/// A prescription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prescription {
    /// Its id.
    pub id: PrescriptionId,
    /// What to take.
    pub medication: String,
    /// How much per intake, e.g. "500 mg".
    pub dose: String,
    /// How often, e.g. "3x daily".
    pub frequency: String,
    /// For how many days (1..=365).
    pub duration_days: u16,
}

/// One measurement; its unit is the kind's.
#[derive(Debug, Clone, PartialEq)]
pub struct VitalSign {
    /// Its id.
    pub id: VitalSignId,
    /// What was measured.
    pub kind: VitalKind,
    /// The value, in `kind.unit()`.
    pub value: f64,
}

/// A correction of an encounter by its author. The original stays as it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Amendment {
    /// Its id.
    pub id: AmendmentId,
    /// Who amended (the encounter's doctor).
    pub author_id: UserId,
    /// Why.
    pub reason: String,
    /// Corrected note parts.
    pub note: SoapCorrection,
    /// When present, replaces the diagnoses in force before this amendment.
    pub diagnoses: Option<Vec<Diagnosis>>,
    /// When present, replaces the prescriptions in force before this amendment.
    pub prescriptions: Option<Vec<Prescription>>,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// The record of one visit, with its amendments oldest first.
#[derive(Debug, Clone, PartialEq)]
pub struct Encounter {
    /// Its id.
    pub id: EncounterId,
    /// The visit.
    pub appointment_id: AppointmentId,
    /// Whose record it is.
    pub patient_id: UserId,
    /// Who wrote it (the appointment's doctor).
    pub doctor_id: UserId,
    /// The original note.
    pub note: SoapNote,
    /// The original diagnoses.
    pub diagnoses: Vec<Diagnosis>,
    /// The original prescriptions.
    pub prescriptions: Vec<Prescription>,
    /// The measurements.
    pub vitals: Vec<VitalSign>,
    /// Corrections, in the order they were made.
    pub amendments: Vec<Amendment>,
    /// When it was written.
    pub created_at: DateTime<Utc>,
}

/// The parties of an encounter: enough to decide who may amend it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncounterRef {
    /// The encounter.
    pub id: EncounterId,
    /// Whose record it is.
    pub patient_id: UserId,
    /// Its author.
    pub doctor_id: UserId,
}

/// A recorded allergy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allergy {
    /// Its id.
    pub id: AllergyId,
    /// Whose.
    pub patient_id: UserId,
    /// The doctor who recorded it.
    pub recorded_by: UserId,
    /// The substance, e.g. "penicillin".
    pub substance: String,
    /// The reaction observed (may be empty).
    pub reaction: String,
    /// How bad.
    pub severity: Severity,
    /// When it was recorded.
    pub created_at: DateTime<Utc>,
}

/// One entry of a patient's access log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    /// Its id.
    pub id: AuditEventId,
    /// When.
    pub occurred_at: DateTime<Utc>,
    /// Who.
    pub actor_id: UserId,
    /// Their role then.
    pub actor_role: Role,
    /// Their name, so a patient can recognise them.
    pub actor_name: String,
    /// Read or write.
    pub action: AuditAction,
    /// What kind of data (`encounter`, `diagnosis`, …, `records`, `allergies`).
    pub resource_type: String,
    /// The row written; `None` for reads.
    pub resource_id: Option<Uuid>,
    /// The stated reason of a break-glass read.
    pub reason: Option<String>,
    /// The request's id.
    pub request_id: Option<String>,
    /// The client's address.
    pub client_ip: Option<String>,
}

/// An encounter to store, all of it or nothing.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEncounter {
    /// Pre-generated id.
    pub id: EncounterId,
    /// The visit (checked-in or fulfilled).
    pub appointment_id: AppointmentId,
    /// The visit's patient.
    pub patient_id: UserId,
    /// The visit's doctor, who writes.
    pub doctor_id: UserId,
    /// The note.
    pub note: SoapNote,
    /// Diagnoses (exactly one primary when any).
    pub diagnoses: Vec<Diagnosis>,
    /// Prescriptions.
    pub prescriptions: Vec<Prescription>,
    /// Measurements.
    pub vitals: Vec<VitalSign>,
    /// For the audit trail.
    pub attribution: Attribution,
}

/// An amendment to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAmendment {
    /// Pre-generated id.
    pub id: AmendmentId,
    /// The encounter amended.
    pub encounter: EncounterRef,
    /// Why.
    pub reason: String,
    /// Corrected note parts.
    pub note: SoapCorrection,
    /// Replacement diagnoses.
    pub diagnoses: Option<Vec<Diagnosis>>,
    /// Replacement prescriptions.
    pub prescriptions: Option<Vec<Prescription>>,
    /// For the audit trail (the author).
    pub attribution: Attribution,
}

/// An allergy to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAllergy {
    /// Pre-generated id.
    pub id: AllergyId,
    /// Whose.
    pub patient_id: UserId,
    /// The treating doctor recording it.
    pub recorded_by: UserId,
    /// The substance.
    pub substance: String,
    /// The reaction.
    pub reaction: String,
    /// How bad.
    pub severity: Severity,
    /// For the audit trail.
    pub attribution: Attribution,
}

/// A read of a patient's data, to audit in the reading transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordRead {
    /// Whose data.
    pub patient_id: UserId,
    /// Who reads, from where.
    pub attribution: Attribution,
    /// The break-glass reason (administrators only; `None` for everyone else).
    pub reason: Option<String>,
}

/// A page of a patient's history: all allergies (safety information belongs on every
/// page) and encounters newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct PatientRecords {
    /// Every recorded allergy, newest first.
    pub allergies: Vec<Allergy>,
    /// Encounters, newest first, each with its amendments oldest first.
    pub encounters: Page<Encounter>,
}
