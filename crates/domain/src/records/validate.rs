//! Drafts: clinical input as the client sent it, and its validation into the values the
//! repository stores. Every field is checked and every error reported at once, under the
//! client's field name (`diagnoses[1].code`). The limits mirror the migration's CHECKs.

use super::values::{Icd10Code, Severity, VitalKind};
use super::{Diagnosis, Prescription, SoapCorrection, SoapNote, VitalSign};
use crate::ids::{DiagnosisId, PrescriptionId, VitalSignId};
use crate::validation::{ValidationErrors, bounded_text};

/// Longest part of a SOAP note, in characters.
const MAX_NOTE_CHARS: usize = 20_000;
/// Most diagnoses, prescriptions or vitals in one request.
const MAX_ITEMS: usize = 50;
/// Longest amendment reason.
const MAX_AMENDMENT_REASON_CHARS: usize = 2000;
/// Longest break-glass reason (the `audit_events_reason_length` CHECK).
pub const MAX_BREAK_GLASS_REASON_CHARS: usize = 500;

/// A diagnosis as sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiagnosisDraft {
    /// ICD-10 code.
    pub code: String,
    /// Description.
    pub description: String,
    /// Marked primary.
    pub primary: bool,
}

/// A prescription as sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PrescriptionDraft {
    /// Medication.
    pub medication: String,
    /// Dose.
    pub dose: String,
    /// Frequency.
    pub frequency: String,
    /// Duration in days.
    pub duration_days: i64,
}

/// A vital sign as sent.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VitalDraft {
    /// Kind name.
    pub kind: String,
    /// Value.
    pub value: f64,
    /// Unit, if the client states it (must then be the kind's).
    pub unit: Option<String>,
}

/// An encounter as sent.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EncounterDraft {
    /// S.
    pub subjective: String,
    /// O.
    pub objective: String,
    /// A.
    pub assessment: String,
    /// P.
    pub plan: String,
    /// Diagnoses.
    pub diagnoses: Vec<DiagnosisDraft>,
    /// Prescriptions.
    pub prescriptions: Vec<PrescriptionDraft>,
    /// Vitals.
    pub vitals: Vec<VitalDraft>,
}

/// An amendment as sent: a reason and at least one corrected part.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AmendmentDraft {
    /// Why the correction is made.
    pub reason: String,
    /// Corrected S.
    pub subjective: Option<String>,
    /// Corrected O.
    pub objective: Option<String>,
    /// Corrected A.
    pub assessment: Option<String>,
    /// Corrected P.
    pub plan: Option<String>,
    /// Replacement diagnoses.
    pub diagnoses: Option<Vec<DiagnosisDraft>>,
    /// Replacement prescriptions.
    pub prescriptions: Option<Vec<PrescriptionDraft>>,
}

/// An allergy as sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllergyDraft {
    /// Substance.
    pub substance: String,
    /// Reaction (optional).
    pub reaction: Option<String>,
    /// Severity name.
    pub severity: String,
}

/// The validated content of an encounter.
pub(crate) struct EncounterContent {
    pub note: SoapNote,
    pub diagnoses: Vec<Diagnosis>,
    pub prescriptions: Vec<Prescription>,
    pub vitals: Vec<VitalSign>,
}

/// The validated content of an amendment.
pub(crate) struct AmendmentContent {
    pub reason: String,
    pub note: SoapCorrection,
    pub diagnoses: Option<Vec<Diagnosis>>,
    pub prescriptions: Option<Vec<Prescription>>,
}

/// The validated content of an allergy.
pub(crate) struct AllergyContent {
    pub substance: String,
    pub reaction: String,
    pub severity: Severity,
}

/// A note part: trimmed, at most `MAX_NOTE_CHARS`; the assessment must not be blank.
fn note_part(raw: &str, field: &str) -> Result<String, String> {
    if field == "assessment" {
        return bounded_text(raw, MAX_NOTE_CHARS);
    }
    let text = raw.trim();
    if text.chars().count() > MAX_NOTE_CHARS {
        return Err(format!("must be at most {MAX_NOTE_CHARS} characters"));
    }
    Ok(text.to_owned())
}

fn too_many<T>(items: &[T], field: &str, errors: &mut ValidationErrors) {
    if items.len() > MAX_ITEMS {
        errors.push(field, format!("at most {MAX_ITEMS} entries"));
    }
}

fn diagnoses(
    drafts: &[DiagnosisDraft],
    field: &str,
    errors: &mut ValidationErrors,
) -> Vec<Diagnosis> {
    too_many(drafts, field, errors);
    let primaries = drafts.iter().filter(|d| d.primary).count();
    if !drafts.is_empty() && primaries != 1 {
        errors.push(
            field,
            format!("exactly one diagnosis must be marked primary (found {primaries})"),
        );
    }
    drafts
        .iter()
        .enumerate()
        .filter_map(|(i, d)| {
            let code = errors.check(&format!("{field}[{i}].code"), Icd10Code::parse(&d.code));
            let description = errors.check(
                &format!("{field}[{i}].description"),
                bounded_text(&d.description, 500),
            );
            Some(Diagnosis {
                id: DiagnosisId::new(),
                code: code?,
                description: description?,
                primary: d.primary,
            })
        })
        .collect()
}

fn prescriptions(
    drafts: &[PrescriptionDraft],
    field: &str,
    errors: &mut ValidationErrors,
) -> Vec<Prescription> {
    too_many(drafts, field, errors);
    drafts
        .iter()
        .enumerate()
        .filter_map(|(i, p)| {
            let at = |name: &str| format!("{field}[{i}].{name}");
            let medication = errors.check(&at("medication"), bounded_text(&p.medication, 200));
            let dose = errors.check(&at("dose"), bounded_text(&p.dose, 100));
            let frequency = errors.check(&at("frequency"), bounded_text(&p.frequency, 100));
            let duration = errors.check(
                &at("duration_days"),
                u16::try_from(p.duration_days)
                    .ok()
                    .filter(|days| (1..=365).contains(days))
                    .ok_or_else(|| "must be between 1 and 365".to_owned()),
            );
            Some(Prescription {
                id: PrescriptionId::new(),
                medication: medication?,
                dose: dose?,
                frequency: frequency?,
                duration_days: duration?,
            })
        })
        .collect()
}

fn vitals(drafts: &[VitalDraft], errors: &mut ValidationErrors) -> Vec<VitalSign> {
    too_many(drafts, "vitals", errors);
    drafts
        .iter()
        .enumerate()
        .filter_map(|(i, v)| {
            let kind = errors.check(&format!("vitals[{i}].kind"), v.kind.parse::<VitalKind>())?;
            if let Some(unit) = v.unit.as_deref().filter(|unit| *unit != kind.unit()) {
                errors.push(
                    format!("vitals[{i}].unit"),
                    format!(
                        "a {} is given in {}, not {unit}",
                        kind.as_str(),
                        kind.unit()
                    ),
                );
                return None;
            }
            let value = errors.check(&format!("vitals[{i}].value"), kind.check(v.value))?;
            Some(VitalSign {
                id: VitalSignId::new(),
                kind,
                value,
            })
        })
        .collect()
}

impl EncounterDraft {
    /// Validates every field.
    pub(crate) fn validate(&self) -> Result<EncounterContent, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let mut part = |raw: &str, field: &str| errors.check(field, note_part(raw, field));
        let note = (
            part(&self.subjective, "subjective"),
            part(&self.objective, "objective"),
            part(&self.assessment, "assessment"),
            part(&self.plan, "plan"),
        );
        let diagnoses = diagnoses(&self.diagnoses, "diagnoses", &mut errors);
        let prescriptions = prescriptions(&self.prescriptions, "prescriptions", &mut errors);
        let vitals = vitals(&self.vitals, &mut errors);
        match note {
            (Some(subjective), Some(objective), Some(assessment), Some(plan))
                if errors.is_empty() =>
            {
                Ok(EncounterContent {
                    note: SoapNote {
                        subjective,
                        objective,
                        assessment,
                        plan,
                    },
                    diagnoses,
                    prescriptions,
                    vitals,
                })
            }
            _ => Err(errors),
        }
    }
}

impl AmendmentDraft {
    /// Validates every field; an amendment must correct something.
    pub(crate) fn validate(&self) -> Result<AmendmentContent, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let reason = errors.check(
            "reason",
            bounded_text(&self.reason, MAX_AMENDMENT_REASON_CHARS),
        );
        let mut part = |raw: Option<&String>, field: &str| {
            raw.and_then(|raw| errors.check(field, note_part(raw, field)))
        };
        let note = SoapCorrection {
            subjective: part(self.subjective.as_ref(), "subjective"),
            objective: part(self.objective.as_ref(), "objective"),
            assessment: part(self.assessment.as_ref(), "assessment"),
            plan: part(self.plan.as_ref(), "plan"),
        };
        let diagnoses = self
            .diagnoses
            .as_ref()
            .map(|list| diagnoses(list, "diagnoses", &mut errors));
        let prescriptions = self
            .prescriptions
            .as_ref()
            .map(|list| prescriptions(list, "prescriptions", &mut errors));
        let corrects_nothing = self.subjective.is_none()
            && self.objective.is_none()
            && self.assessment.is_none()
            && self.plan.is_none()
            && self.diagnoses.is_none()
            && self.prescriptions.is_none();
        if corrects_nothing {
            errors.push(
                "body",
                "an amendment corrects at least one of subjective, objective, assessment, plan, diagnoses, prescriptions",
            );
        }
        match reason {
            Some(reason) if errors.is_empty() => Ok(AmendmentContent {
                reason,
                note,
                diagnoses,
                prescriptions,
            }),
            _ => Err(errors),
        }
    }
}

impl AllergyDraft {
    /// Validates every field.
    pub(crate) fn validate(&self) -> Result<AllergyContent, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let substance = errors.check("substance", bounded_text(&self.substance, 200));
        let reaction = self.reaction.as_deref().unwrap_or_default().trim();
        if reaction.chars().count() > 1000 {
            errors.push("reaction", "must be at most 1000 characters");
        }
        let severity = errors.check("severity", self.severity.parse::<Severity>());
        match (substance, severity) {
            (Some(substance), Some(severity)) if errors.is_empty() => Ok(AllergyContent {
                substance,
                reaction: reaction.to_owned(),
                severity,
            }),
            _ => Err(errors),
        }
    }
}

/// A break-glass reason: blank counts as none; too long is invalid.
///
/// # Errors
/// A message when it is longer than the limit.
pub(crate) fn break_glass_reason(raw: Option<&str>) -> Result<Option<String>, String> {
    let Some(reason) = raw.map(str::trim).filter(|r| !r.is_empty()) else {
        return Ok(None);
    };
    if reason.chars().count() > MAX_BREAK_GLASS_REASON_CHARS {
        return Err(format!(
            "must be at most {MAX_BREAK_GLASS_REASON_CHARS} characters"
        ));
    }
    Ok(Some(reason.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> EncounterDraft {
        EncounterDraft {
            subjective: "cough for 3 days".into(),
            objective: String::new(),
            assessment: "viral URI".into(),
            plan: "rest".into(),
            diagnoses: vec![DiagnosisDraft {
                code: "j06.9".into(),
                description: "Acute upper respiratory infection".into(),
                primary: true,
            }],
            prescriptions: vec![PrescriptionDraft {
                medication: "Paracetamol".into(),
                dose: "500 mg".into(),
                frequency: "3x daily".into(),
                duration_days: 5,
            }],
            vitals: vec![VitalDraft {
                kind: "temperature".into(),
                value: 38.2,
                unit: Some("Cel".into()),
            }],
        }
    }

    fn fields(errors: &ValidationErrors) -> Vec<&str> {
        errors.fields().iter().map(|e| e.field.as_str()).collect()
    }

    #[test]
    fn a_complete_encounter_validates() {
        let content = valid().validate().map_err(|e| e.to_string());
        let content = content
            .as_ref()
            .map(|c| (c.diagnoses[0].code.as_str(), c.vitals.len()));
        assert_eq!(content, Ok(("J06.9", 1)));
    }

    #[test]
    fn every_invalid_field_is_listed() {
        let mut draft = valid();
        draft.assessment = "  ".into();
        draft.diagnoses.push(DiagnosisDraft {
            code: "bad".into(),
            description: "x".into(),
            primary: true,
        });
        draft.prescriptions[0].duration_days = 0;
        draft.vitals.push(VitalDraft {
            kind: "heart_rate".into(),
            value: 900.0,
            unit: None,
        });
        draft.vitals.push(VitalDraft {
            kind: "temperature".into(),
            value: 99.0,
            unit: Some("F".into()),
        });
        let errors = draft.validate().err().unwrap_or_default();
        assert_eq!(
            fields(&errors),
            vec![
                "assessment",
                "diagnoses",
                "diagnoses[1].code",
                "prescriptions[0].duration_days",
                "vitals[1].value",
                "vitals[2].unit"
            ]
        );
    }

    #[test]
    fn diagnoses_need_exactly_one_primary() {
        let mut draft = valid();
        draft.diagnoses[0].primary = false;
        assert!(draft.validate().is_err());
        draft.diagnoses.clear();
        assert!(draft.validate().is_ok(), "no diagnoses at all is fine");
    }

    #[test]
    fn an_amendment_needs_a_reason_and_a_correction() {
        let errors = AmendmentDraft::default()
            .validate()
            .err()
            .unwrap_or_default();
        assert_eq!(fields(&errors), vec!["reason", "body"]);
        let amendment = AmendmentDraft {
            reason: "typo".into(),
            diagnoses: Some(vec![]),
            ..AmendmentDraft::default()
        };
        assert!(
            amendment.validate().is_ok(),
            "clearing the diagnoses is a correction"
        );
    }

    #[test]
    fn allergies_and_reasons_are_checked() {
        let bad = AllergyDraft {
            substance: " ".into(),
            reaction: None,
            severity: "deadly".into(),
        };
        let errors = bad.validate().err().unwrap_or_default();
        assert_eq!(fields(&errors), vec!["substance", "severity"]);
        assert_eq!(break_glass_reason(Some("   ")), Ok(None));
        assert_eq!(
            break_glass_reason(Some(" audit ")),
            Ok(Some("audit".into()))
        );
        assert!(break_glass_reason(Some(&"x".repeat(501))).is_err());
    }
}
