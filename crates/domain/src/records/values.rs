//! Validated clinical values: ICD-10 codes, vital-sign kinds with their units and plausible
//! ranges, allergy severities. The migration's CHECK constraints repeat these rules, so a
//! value the domain accepts is never refused by the database (no request can cause a 500).

use std::fmt;
use std::str::FromStr;

/// An ICD-10 code such as `J06.9` or `U07.1`: a letter, two characters (the second a digit
/// or letter), and optionally a dot and one to four more. Stored upper-case.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Icd10Code(String);

impl Icd10Code {
    /// Validates the shape of a code (not its presence in a code list).
    ///
    /// # Errors
    /// A message when the code is not of the ICD-10 shape.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let code = raw.trim().to_ascii_uppercase();
        if is_icd10(&code) {
            Ok(Self(code))
        } else {
            Err("must be an ICD-10 code such as J06.9".into())
        }
    }

    /// The code.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Same pattern as the `diagnoses_code_icd10` CHECK: `^[A-Z][0-9][0-9A-Z](\.[0-9A-Z]{1,4})?$`.
fn is_icd10(code: &str) -> bool {
    let bytes = code.as_bytes();
    let alnum = |b: &u8| b.is_ascii_digit() || b.is_ascii_uppercase();
    let category = bytes.len() >= 3
        && bytes[0].is_ascii_uppercase()
        && bytes[1].is_ascii_digit()
        && alnum(&bytes[2]);
    let extension = match bytes.get(3..) {
        None | Some([]) => true,
        Some([b'.', rest @ ..]) => (1..=4).contains(&rest.len()) && rest.iter().all(alnum),
        Some(_) => false,
    };
    category && extension
}

impl fmt::Display for Icd10Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a vital sign measures. Each kind has one unit (UCUM) and a plausible range; the
/// table `vital_signs` checks both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VitalKind {
    /// Beats per minute.
    HeartRate,
    /// Systolic blood pressure.
    BloodPressureSystolic,
    /// Diastolic blood pressure.
    BloodPressureDiastolic,
    /// Body temperature.
    Temperature,
    /// Body weight.
    Weight,
    /// Body height.
    Height,
    /// Oxygen saturation.
    Spo2,
}

impl VitalKind {
    /// Every kind, in wire order.
    pub const ALL: [Self; 7] = [
        Self::HeartRate,
        Self::BloodPressureSystolic,
        Self::BloodPressureDiastolic,
        Self::Temperature,
        Self::Weight,
        Self::Height,
        Self::Spo2,
    ];

    /// The wire and storage name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::HeartRate => "heart_rate",
            Self::BloodPressureSystolic => "blood_pressure_systolic",
            Self::BloodPressureDiastolic => "blood_pressure_diastolic",
            Self::Temperature => "temperature",
            Self::Weight => "weight",
            Self::Height => "height",
            Self::Spo2 => "spo2",
        }
    }

    /// The UCUM unit every value of this kind is given in.
    #[must_use]
    pub const fn unit(self) -> &'static str {
        match self {
            Self::HeartRate => "/min",
            Self::BloodPressureSystolic | Self::BloodPressureDiastolic => "mm[Hg]",
            Self::Temperature => "Cel",
            Self::Weight => "kg",
            Self::Height => "cm",
            Self::Spo2 => "%",
        }
    }

    /// The inclusive plausible range; outside it a value is a typo, not a patient.
    #[must_use]
    pub const fn plausible_range(self) -> (f64, f64) {
        match self {
            Self::HeartRate => (20.0, 300.0),
            Self::BloodPressureSystolic => (40.0, 300.0),
            Self::BloodPressureDiastolic => (20.0, 200.0),
            Self::Temperature => (25.0, 45.0),
            Self::Weight => (0.2, 700.0),
            Self::Height => (20.0, 280.0),
            Self::Spo2 => (50.0, 100.0),
        }
    }

    /// Checks a measured value against the plausible range.
    ///
    /// # Errors
    /// A message giving the range and unit.
    pub fn check(self, value: f64) -> Result<f64, String> {
        let (low, high) = self.plausible_range();
        if value.is_finite() && (low..=high).contains(&value) {
            Ok(value)
        } else {
            Err(format!(
                "a {} must be between {low} and {high} {}",
                self.as_str(),
                self.unit()
            ))
        }
    }
}

impl FromStr for VitalKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|k| k.as_str()).collect();
                format!("must be one of {}", names.join(", "))
            })
    }
}

/// How bad an allergic reaction is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Severity {
    /// Mild.
    Mild,
    /// Moderate.
    Moderate,
    /// Severe (anaphylaxis and the like).
    Severe,
}

impl Severity {
    /// The wire and storage name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Mild => "mild",
            Self::Moderate => "moderate",
            Self::Severe => "severe",
        }
    }
}

impl FromStr for Severity {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "mild" => Ok(Self::Mild),
            "moderate" => Ok(Self::Moderate),
            "severe" => Ok(Self::Severe),
            _ => Err("must be one of mild, moderate, severe".into()),
        }
    }
}

/// What an audit event records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuditAction {
    /// A clinical row was written (by the database trigger).
    Create,
    /// A patient's records or allergies were read (by the application).
    Read,
}

impl AuditAction {
    /// The storage name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Read => "read",
        }
    }
}

impl FromStr for AuditAction {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "create" => Ok(Self::Create),
            "read" => Ok(Self::Read),
            _ => Err(format!("unknown audit action `{s}`")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn icd10_codes_are_checked_by_shape() {
        for good in [
            "J06.9", "j06.9", " E11 ", "U07.1", "S72.001A", "A00", "M54.5",
        ] {
            assert!(Icd10Code::parse(good).is_ok(), "{good}");
        }
        assert_eq!(
            Icd10Code::parse("j06.9").map(|c| c.to_string()),
            Ok("J06.9".into())
        );
        for bad in [
            "",
            "J6",
            "06.9",
            "J06.",
            "J06.12345",
            "JJ6.9",
            "J06-9",
            "J06.9 x",
            "Ä06",
        ] {
            assert!(Icd10Code::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn vital_kinds_have_units_and_ranges() {
        for kind in VitalKind::ALL {
            assert_eq!(kind.as_str().parse::<VitalKind>(), Ok(kind));
            let (low, high) = kind.plausible_range();
            assert!(kind.check(low).is_ok() && kind.check(high).is_ok());
            assert!(kind.check(high + 1.0).is_err() && kind.check(low - 0.1).is_err());
            assert!(kind.check(f64::NAN).is_err());
        }
        assert_eq!(VitalKind::Temperature.unit(), "Cel");
        assert!("pulse".parse::<VitalKind>().is_err());
    }
}
