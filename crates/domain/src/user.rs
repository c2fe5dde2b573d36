//! Users, roles and the validated values a user is made of.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, Utc};

use crate::ids::UserId;

/// What a user may do (DESIGN §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Books and pays for their own care.
    Patient,
    /// Offers slots and treats patients.
    Doctor,
    /// Runs the clinic.
    Admin,
}

impl Role {
    /// The stable wire and storage name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Patient => "patient",
            Self::Doctor => "doctor",
            Self::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "patient" => Ok(Self::Patient),
            "doctor" => Ok(Self::Doctor),
            "admin" => Ok(Self::Admin),
            other => Err(format!("unknown role `{other}`")),
        }
    }
}

/// An e-mail address, trimmed and lower-cased (addresses are unique case-insensitively).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    /// Validates the shape `local@domain` (delivery is not checked).
    ///
    /// # Errors
    /// A message when the address is empty, too long or not of that shape.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let email = raw.trim().to_lowercase();
        let valid_shape = email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && !domain.is_empty() && !domain.contains('@')
        });
        if email.len() > 254 || !valid_shape || email.chars().any(char::is_whitespace) {
            return Err("must be an e-mail address such as name@example.org".into());
        }
        Ok(Self(email))
    }

    /// The normalized address.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A new password that satisfies the policy: 12 to 128 characters, no composition rules
/// (NIST SP 800-63B), and not guessable: the zxcvbn strength estimator, told about the
/// account's own e-mail and name, must score it at least [`Password::MIN_SCORE`] (of 4).
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    /// Shortest accepted password, in characters (NIST SP 800-63B recommends length over rules).
    pub const MIN_CHARS: usize = 12;
    /// Longest accepted password, bounding the hashing cost.
    pub const MAX_CHARS: usize = 128;
    /// Lowest accepted zxcvbn score: 3 means "safely unguessable" (about 10^10 guesses).
    pub const MIN_SCORE: u8 = 3;

    /// Checks a new password against the policy. `user_inputs` are what an attacker knows
    /// about the account (e-mail, name): a password built from them is refused.
    ///
    /// # Errors
    /// A message naming the broken rule: the length, or why the password is guessable
    /// (zxcvbn's warning and suggestions).
    pub fn new(raw: &str, user_inputs: &[&str]) -> Result<Self, String> {
        let chars = raw.chars().count();
        if !(Self::MIN_CHARS..=Self::MAX_CHARS).contains(&chars) {
            return Err(format!(
                "must be between {} and {} characters long",
                Self::MIN_CHARS,
                Self::MAX_CHARS
            ));
        }
        let inputs = guessable_inputs(user_inputs);
        let inputs: Vec<&str> = inputs.iter().map(String::as_str).collect();
        let estimate = zxcvbn::zxcvbn(raw, &inputs);
        let score = u8::from(estimate.score());
        if score < Self::MIN_SCORE {
            let why = estimate
                .feedback()
                .map(|feedback| feedback.to_string().trim().to_owned())
                .filter(|why| !why.is_empty())
                .unwrap_or_else(|| "Add another word or two; uncommon words are better.".into());
            return Err(format!(
                "is too easy to guess (strength {score} of 4, at least {} needed): {why}",
                Self::MIN_SCORE
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    /// The secret itself, for hashing only.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

/// The words of an e-mail and name that a password must not be built from.
fn guessable_inputs(user_inputs: &[&str]) -> Vec<String> {
    let mut words = Vec::new();
    for input in user_inputs {
        let input = input.trim().to_lowercase();
        if input.is_empty() {
            continue;
        }
        words.extend(
            input
                .split(|c: char| !c.is_alphanumeric())
                .filter(|word| word.chars().count() >= 3)
                .map(str::to_owned),
        );
        words.push(input);
    }
    words
}

/// A person's display name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FullName(String);

impl FullName {
    /// Trims and bounds a name.
    ///
    /// # Errors
    /// A message when the name is blank or longer than 200 characters.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let name = raw.trim();
        if name.is_empty() || name.chars().count() > 200 {
            return Err("must be between 1 and 200 characters".into());
        }
        Ok(Self(name.to_owned()))
    }

    /// The name.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Administrative gender, as FHIR codes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sex {
    /// `male`
    Male,
    /// `female`
    Female,
    /// `other`
    Other,
    /// `unknown`
    Unknown,
}

impl Sex {
    /// The FHIR code.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Male => "male",
            Self::Female => "female",
            Self::Other => "other",
            Self::Unknown => "unknown",
        }
    }
}

impl FromStr for Sex {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "male" => Ok(Self::Male),
            "female" => Ok(Self::Female),
            "other" => Ok(Self::Other),
            "unknown" => Ok(Self::Unknown),
            _ => Err("must be one of male, female, other, unknown".into()),
        }
    }
}

/// A phone number as the person wrote it (3 to 40 characters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Phone(String);

impl Phone {
    /// Trims and bounds a phone number.
    ///
    /// # Errors
    /// A message when it is shorter than 3 or longer than 40 characters.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let phone = raw.trim();
        if !(3..=40).contains(&phone.chars().count()) {
            return Err("must be between 3 and 40 characters".into());
        }
        Ok(Self(phone.to_owned()))
    }

    /// The number.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Validates a date of birth: not in the future, not before 1880.
///
/// # Errors
/// A message when the date is implausible.
pub fn validate_date_of_birth(date: NaiveDate, today: NaiveDate) -> Result<NaiveDate, String> {
    let earliest = NaiveDate::from_ymd_opt(1880, 1, 1).unwrap_or(NaiveDate::MIN);
    if date > today || date < earliest {
        return Err("must be a date between 1880-01-01 and today".into());
    }
    Ok(date)
}

/// A user account as the rest of the system sees it (never with its password hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The id, shared with the patient or doctor profile.
    pub id: UserId,
    /// Normalized e-mail address.
    pub email: String,
    /// What the user may do.
    pub role: Role,
    /// Display name.
    pub full_name: String,
    /// Disabled accounts cannot log in.
    pub disabled: bool,
    /// When the account was created.
    pub created_at: DateTime<Utc>,
}

/// What the login check needs: the user and their stored password hash.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// The account.
    pub user: User,
    /// The PHC-format argon2 hash.
    pub password_hash: String,
}

/// A patient's own details.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatientProfile {
    /// Date of birth.
    pub date_of_birth: NaiveDate,
    /// FHIR administrative gender.
    pub sex: Sex,
    /// Optional phone number.
    pub phone: Option<String>,
}

/// A user with the profile of their role (`GET /me`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserProfile {
    /// The account.
    pub user: User,
    /// Set for patients.
    pub patient: Option<PatientProfile>,
    /// Set for doctors.
    pub doctor: Option<crate::doctor::Doctor>,
}

/// Everything needed to store a new account.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// Pre-generated id.
    pub id: UserId,
    /// Normalized e-mail.
    pub email: Email,
    /// The argon2id PHC string (never the password).
    pub password_hash: String,
    /// Display name.
    pub full_name: FullName,
    /// The account's role.
    pub role: Role,
}

/// A patient account with its profile, stored in one transaction.
#[derive(Debug, Clone)]
pub struct NewPatient {
    /// The account.
    pub user: NewUser,
    /// The profile.
    pub profile: PatientProfile,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_is_normalized_and_checked() {
        assert_eq!(
            Email::parse("  Ann@Example.ORG ").map(|e| e.0),
            Ok("ann@example.org".into())
        );
        for bad in ["", "ann", "@x.org", "ann@", "a b@x.org", "a@b@c"] {
            assert!(Email::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn password_length_policy() {
        assert!(Password::new("short", &[]).is_err());
        assert!(Password::new(&"x".repeat(129), &[]).is_err());
        assert!(Password::new("Tall-Orange-Kettle-42!", &[]).is_ok());
        assert_eq!(
            format!("{:?}", Password::new("Tall-Orange-Kettle-42!", &[])),
            "Ok(Password(***))"
        );
    }

    #[test]
    fn guessable_passwords_are_refused_with_the_reason() {
        for weak in [
            "password1234",
            "qwertyuiopasdf",
            "aaaaaaaaaaaaaaaa",
            "123456789012",
            "iloveyou2026",
        ] {
            let refused = Password::new(weak, &[]);
            assert!(
                refused
                    .as_ref()
                    .is_err_and(|why| why.starts_with("is too easy to guess")),
                "{weak}: {refused:?}"
            );
        }
        // strong on its own, weak when it is the account's own e-mail and name
        assert!(Password::new("annabelle.lovelace@example.org", &[]).is_ok());
        assert!(
            Password::new(
                "annabelle.lovelace@example.org",
                &["annabelle.lovelace@example.org", "Annabelle Lovelace"]
            )
            .is_err()
        );
    }

    #[test]
    fn project_fixture_passwords_meet_the_policy() {
        // the passwords of the e2e harness, the demo seed and the unit tests
        for strong in [
            "e2e-password-long-enough",
            "demo-password-2026",
            "admin-demo-password-2026",
            "long enough secret",
            "Tall-Orange-Kettle-42!",
            "Brisk-Violet-Harbour-97?",
            "Quiet-Copper-Lantern-58#",
        ] {
            assert!(Password::new(strong, &[]).is_ok(), "{strong}");
        }
    }

    #[test]
    fn date_of_birth_is_plausible() {
        let today = NaiveDate::from_ymd_opt(2026, 12, 4).unwrap_or_default();
        let future = NaiveDate::from_ymd_opt(2027, 1, 1).unwrap_or_default();
        assert!(validate_date_of_birth(future, today).is_err());
        let ok = NaiveDate::from_ymd_opt(1990, 4, 1).unwrap_or_default();
        assert_eq!(validate_date_of_birth(ok, today), Ok(ok));
    }
}
