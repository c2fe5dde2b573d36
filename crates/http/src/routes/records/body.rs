//! Request bodies of the record routes, and their conversion into domain drafts. Unknown
//! fields are refused (422 naming them) so a misspelt `asessment` is not silently dropped.

use serde::Deserialize;
use shms_domain::records::{
    AllergyDraft, AmendmentDraft, DiagnosisDraft, EncounterDraft, PrescriptionDraft, VitalDraft,
};

/// A diagnosis.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DiagnosisBody {
    code: String,
    description: String,
    #[serde(default)]
    primary: bool,
}

impl From<DiagnosisBody> for DiagnosisDraft {
    fn from(body: DiagnosisBody) -> Self {
        Self {
            code: body.code,
            description: body.description,
            primary: body.primary,
        }
    }
}

/// A prescription.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PrescriptionBody {
    medication: String,
    dose: String,
    frequency: String,
    duration_days: i64,
}

impl From<PrescriptionBody> for PrescriptionDraft {
    fn from(body: PrescriptionBody) -> Self {
        Self {
            medication: body.medication,
            dose: body.dose,
            frequency: body.frequency,
            duration_days: body.duration_days,
        }
    }
}

/// A vital sign; `unit` may be omitted (it is fixed by the kind).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VitalBody {
    kind: String,
    value: f64,
    #[serde(default)]
    unit: Option<String>,
}

impl From<VitalBody> for VitalDraft {
    fn from(body: VitalBody) -> Self {
        Self {
            kind: body.kind,
            value: body.value,
            unit: body.unit,
        }
    }
}

fn drafts<B, D: From<B>>(bodies: Vec<B>) -> Vec<D> {
    bodies.into_iter().map(D::from).collect()
}

/// `POST /appointments/{id}/encounter`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EncounterBody {
    #[serde(default)]
    subjective: String,
    #[serde(default)]
    objective: String,
    assessment: String,
    #[serde(default)]
    plan: String,
    #[serde(default)]
    diagnoses: Vec<DiagnosisBody>,
    #[serde(default)]
    prescriptions: Vec<PrescriptionBody>,
    #[serde(default)]
    vitals: Vec<VitalBody>,
}

impl From<EncounterBody> for EncounterDraft {
    fn from(body: EncounterBody) -> Self {
        Self {
            subjective: body.subjective,
            objective: body.objective,
            assessment: body.assessment,
            plan: body.plan,
            diagnoses: drafts(body.diagnoses),
            prescriptions: drafts(body.prescriptions),
            vitals: drafts(body.vitals),
        }
    }
}

/// `POST /encounters/{id}/amendments`: a reason and the corrected parts.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AmendmentBody {
    reason: String,
    #[serde(default)]
    subjective: Option<String>,
    #[serde(default)]
    objective: Option<String>,
    #[serde(default)]
    assessment: Option<String>,
    #[serde(default)]
    plan: Option<String>,
    #[serde(default)]
    diagnoses: Option<Vec<DiagnosisBody>>,
    #[serde(default)]
    prescriptions: Option<Vec<PrescriptionBody>>,
}

impl From<AmendmentBody> for AmendmentDraft {
    fn from(body: AmendmentBody) -> Self {
        Self {
            reason: body.reason,
            subjective: body.subjective,
            objective: body.objective,
            assessment: body.assessment,
            plan: body.plan,
            diagnoses: body.diagnoses.map(drafts),
            prescriptions: body.prescriptions.map(drafts),
        }
    }
}

/// `POST /patients/{id}/allergies`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AllergyBody {
    substance: String,
    #[serde(default)]
    reaction: Option<String>,
    severity: String,
}

impl From<AllergyBody> for AllergyDraft {
    fn from(body: AllergyBody) -> Self {
        Self {
            substance: body.substance,
            reaction: body.reaction,
            severity: body.severity,
        }
    }
}
