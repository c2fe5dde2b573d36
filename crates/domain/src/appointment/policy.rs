//! Who may see and cancel an appointment (DESIGN §5), as pure functions.

use chrono::{DateTime, TimeDelta, Utc};

use super::{Appointment, AppointmentStatus};
use crate::actor::Actor;
use crate::user::Role;

/// How late a patient may still cancel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CancellationPolicy {
    /// Patients may cancel until this long before the start (default 24 h).
    pub patient_cutoff: TimeDelta,
}

impl Default for CancellationPolicy {
    fn default() -> Self {
        Self {
            patient_cutoff: TimeDelta::hours(24),
        }
    }
}

/// Whether the caller may see the appointment: its patient, its doctor, or an admin.
#[must_use]
pub fn is_visible_to(appointment: &Appointment, actor: &Actor) -> bool {
    match actor.role {
        Role::Admin => true,
        Role::Patient => actor.is(appointment.patient_id),
        Role::Doctor => actor.is(appointment.doctor_id),
    }
}

/// Why a visible appointment cannot be cancelled by this caller now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelRefusal {
    /// The state machine forbids it (already cancelled, fulfilled, no-show; or a patient
    /// after check-in, which only the clinic may cancel).
    InvalidTransition,
    /// A patient is past the cut-off.
    WindowClosed,
}

/// Decides whether `actor` (who can see the appointment) may cancel it at `now`.
///
/// # Errors
/// The reason for refusing.
pub fn can_cancel(
    appointment: &Appointment,
    actor: &Actor,
    now: DateTime<Utc>,
    policy: CancellationPolicy,
) -> Result<(), CancelRefusal> {
    if !appointment.status.can_become(AppointmentStatus::Cancelled) {
        return Err(CancelRefusal::InvalidTransition);
    }
    if actor.role == Role::Patient {
        if appointment.status != AppointmentStatus::Booked {
            return Err(CancelRefusal::InvalidTransition);
        }
        if now > appointment.starts_at - policy.patient_cutoff {
            return Err(CancelRefusal::WindowClosed);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::ids::{AppointmentId, SlotId, UserId};

    fn appointment(status: AppointmentStatus, starts_at: DateTime<Utc>) -> Appointment {
        Appointment {
            id: AppointmentId::new(),
            patient_id: UserId::new(),
            doctor_id: UserId::new(),
            slot_id: SlotId::new(),
            starts_at,
            ends_at: starts_at + TimeDelta::minutes(30),
            reason: "check-up".into(),
            status,
            cancel_reason: None,
            cancelled_at: None,
            created_at: starts_at - TimeDelta::days(7),
        }
    }

    fn actor(role: Role, user_id: UserId) -> Actor {
        Actor {
            user_id,
            role,
            session_id: None,
        }
    }

    fn start() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2027, 1, 4, 9, 0, 0)
            .single()
            .unwrap_or_default()
    }

    #[test]
    fn visibility_follows_the_permission_table() {
        let appt = appointment(AppointmentStatus::Booked, start());
        assert!(is_visible_to(&appt, &actor(Role::Patient, appt.patient_id)));
        assert!(is_visible_to(&appt, &actor(Role::Doctor, appt.doctor_id)));
        assert!(is_visible_to(&appt, &actor(Role::Admin, UserId::new())));
        assert!(!is_visible_to(&appt, &actor(Role::Patient, UserId::new())));
        assert!(!is_visible_to(&appt, &actor(Role::Doctor, UserId::new())));
        // a doctor id in the patient role is still someone else
        assert!(!is_visible_to(&appt, &actor(Role::Patient, appt.doctor_id)));
    }

    #[test]
    fn patient_cancels_only_before_the_cutoff() {
        let appt = appointment(AppointmentStatus::Booked, start());
        let patient = actor(Role::Patient, appt.patient_id);
        let policy = CancellationPolicy::default();
        let just_in_time = start() - TimeDelta::hours(24);
        assert_eq!(can_cancel(&appt, &patient, just_in_time, policy), Ok(()));
        let too_late = just_in_time + TimeDelta::seconds(1);
        assert_eq!(
            can_cancel(&appt, &patient, too_late, policy),
            Err(CancelRefusal::WindowClosed)
        );
        let custom = CancellationPolicy {
            patient_cutoff: TimeDelta::hours(2),
        };
        assert_eq!(can_cancel(&appt, &patient, too_late, custom), Ok(()));
    }

    #[test]
    fn clinic_cancels_late_and_after_check_in() {
        let policy = CancellationPolicy::default();
        let late = start() - TimeDelta::minutes(5);
        for status in [AppointmentStatus::Booked, AppointmentStatus::CheckedIn] {
            let appt = appointment(status, start());
            assert_eq!(
                can_cancel(&appt, &actor(Role::Doctor, appt.doctor_id), late, policy),
                Ok(())
            );
            assert_eq!(
                can_cancel(&appt, &actor(Role::Admin, UserId::new()), late, policy),
                Ok(())
            );
        }
        let checked_in = appointment(AppointmentStatus::CheckedIn, start());
        let early = start() - TimeDelta::days(3);
        assert_eq!(
            can_cancel(
                &checked_in,
                &actor(Role::Patient, checked_in.patient_id),
                early,
                policy
            ),
            Err(CancelRefusal::InvalidTransition)
        );
    }

    #[test]
    fn finished_appointments_cannot_be_cancelled() {
        let policy = CancellationPolicy::default();
        for status in [
            AppointmentStatus::Cancelled,
            AppointmentStatus::Fulfilled,
            AppointmentStatus::NoShow,
        ] {
            let appt = appointment(status, start());
            let admin = actor(Role::Admin, UserId::new());
            assert_eq!(
                can_cancel(&appt, &admin, start() - TimeDelta::days(3), policy),
                Err(CancelRefusal::InvalidTransition)
            );
        }
    }
}
