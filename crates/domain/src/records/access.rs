//! Who may read a patient's medical history (DESIGN §5), as a pure function of the caller,
//! the patient, the facts the service looked up, and the stated reason.
//!
//! - the patient themself: always;
//! - a doctor: only with a care relationship (an appointment with the patient that is not
//!   cancelled — booked, checked-in, fulfilled or no-show);
//! - an administrator: only with a stated reason (break-glass), which is audited;
//! - anyone else: the patient's records do not exist for them (404, nothing leaked).

use crate::actor::Actor;
use crate::ids::UserId;
use crate::user::Role;

/// Why a read is allowed; recorded with the audit event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadBasis {
    /// The patient reads their own data.
    Own,
    /// A doctor treating the patient.
    CareRelationship,
    /// An administrator, with the reason they gave.
    BreakGlass(String),
}

/// Why a read is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessRefusal {
    /// The caller may not know the records exist.
    NotFound,
    /// An administrator who can see the patient but stated no reason.
    ReasonRequired,
}

/// Decides a read of `patient`'s records or allergies.
///
/// `care_relationship` matters only for doctors and `patient_exists` only for
/// administrators (the service looks up just the fact the caller's role needs).
///
/// # Errors
/// The refusal.
pub fn read_basis(
    actor: &Actor,
    patient: UserId,
    care_relationship: bool,
    patient_exists: bool,
    reason: Option<String>,
) -> Result<ReadBasis, AccessRefusal> {
    match actor.role {
        Role::Patient if actor.is(patient) => Ok(ReadBasis::Own),
        Role::Doctor if care_relationship => Ok(ReadBasis::CareRelationship),
        Role::Admin if patient_exists => reason
            .map(ReadBasis::BreakGlass)
            .ok_or(AccessRefusal::ReasonRequired),
        Role::Patient | Role::Doctor | Role::Admin => Err(AccessRefusal::NotFound),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn actor(role: Role, user_id: UserId) -> Actor {
        Actor {
            user_id,
            role,
            session_id: None,
        }
    }

    #[test]
    fn the_permission_table_for_reading_history() {
        let patient = UserId::new();
        let other = UserId::new();
        let reason = || Some("audit of case 42".to_owned());
        // (who, care relationship, patient exists, reason) -> decision
        let cases = [
            (
                actor(Role::Patient, patient),
                false,
                true,
                None,
                Ok(ReadBasis::Own),
            ),
            (
                actor(Role::Patient, patient),
                false,
                true,
                reason(),
                Ok(ReadBasis::Own),
            ),
            (
                actor(Role::Patient, other),
                false,
                true,
                None,
                Err(AccessRefusal::NotFound),
            ),
            (
                actor(Role::Patient, other),
                true,
                true,
                reason(),
                Err(AccessRefusal::NotFound),
            ),
            (
                actor(Role::Doctor, other),
                true,
                true,
                None,
                Ok(ReadBasis::CareRelationship),
            ),
            (
                actor(Role::Doctor, other),
                false,
                true,
                None,
                Err(AccessRefusal::NotFound),
            ),
            (
                actor(Role::Doctor, other),
                false,
                true,
                reason(),
                Err(AccessRefusal::NotFound),
            ),
            (
                actor(Role::Admin, other),
                false,
                true,
                reason(),
                Ok(ReadBasis::BreakGlass("audit of case 42".into())),
            ),
            (
                actor(Role::Admin, other),
                false,
                true,
                None,
                Err(AccessRefusal::ReasonRequired),
            ),
            (
                actor(Role::Admin, other),
                false,
                false,
                reason(),
                Err(AccessRefusal::NotFound),
            ),
        ];
        for (who, care, exists, reason, expected) in cases {
            assert_eq!(
                read_basis(&who, patient, care, exists, reason.clone()),
                expected,
                "{who:?} care={care} exists={exists} reason={reason:?}"
            );
        }
    }
}
