//! The waitlist: a patient asks to be offered the first slot of a doctor that becomes free
//! within a date range. The offer itself — a hold on the slot for the first waiting patient
//! and a notification — is made by the database in the transaction that frees the slot,
//! so no freed slot is missed and none is offered twice.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, TimeDelta, Utc};

use crate::actor::Actor;
use crate::clock::Clock;
use crate::error::StoreError;
use crate::ids::{NotificationId, SlotId, UserId, WaitlistEntryId};
use crate::page::{Page, PageRequest};
use crate::ports::{DoctorRepository, WaitlistRepository};
use crate::services::{Adapters, Ports};
use crate::user::Role;
use crate::validation::ValidationErrors;

/// Where an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitlistStatus {
    /// Waiting for a slot.
    Waiting,
    /// A slot was offered (and held) for the patient.
    Offered,
}

impl WaitlistStatus {
    /// The wire code.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Waiting => "waiting",
            Self::Offered => "offered",
        }
    }
}

impl fmt::Display for WaitlistStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for WaitlistStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "waiting" => Ok(Self::Waiting),
            "offered" => Ok(Self::Offered),
            _ => Err("must be waiting or offered".into()),
        }
    }
}

/// A patient's place on a doctor's waitlist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitlistEntry {
    /// Its id.
    pub id: WaitlistEntryId,
    /// Who waits.
    pub patient_id: UserId,
    /// For whom.
    pub doctor_id: UserId,
    /// A matching slot starts at or after this.
    pub from: DateTime<Utc>,
    /// A matching slot ends at or before this.
    pub to: DateTime<Utc>,
    /// Waiting or offered.
    pub status: WaitlistStatus,
    /// The slot offered, once offered.
    pub offered_slot_id: Option<SlotId>,
    /// When it was offered.
    pub offered_at: Option<DateTime<Utc>>,
    /// When the patient joined (the queue order).
    pub created_at: DateTime<Utc>,
}

/// An entry to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewWaitlistEntry {
    /// Pre-generated id.
    pub id: WaitlistEntryId,
    /// Who waits.
    pub patient_id: UserId,
    /// For whom.
    pub doctor_id: UserId,
    /// Range start.
    pub from: DateTime<Utc>,
    /// Range end.
    pub to: DateTime<Utc>,
}

/// A message of the outbox addressed to one user.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    /// Its id.
    pub id: NotificationId,
    /// What kind of message (`waitlist_offer`).
    pub kind: String,
    /// Its content, as the database wrote it.
    pub payload: serde_json::Value,
    /// When it was written.
    pub created_at: DateTime<Utc>,
    /// When a delivery worker sent it, if one did.
    pub delivered_at: Option<DateTime<Utc>>,
}

/// Why a waitlist operation failed.
#[derive(Debug, thiserror::Error)]
pub enum WaitlistError {
    /// No such doctor.
    #[error("not found")]
    NotFound,
    /// Only patients wait.
    #[error("only patients can join a waitlist")]
    Forbidden,
    /// The request is invalid.
    #[error("invalid request: {0}")]
    Validation(ValidationErrors),
    /// Storage failure.
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for WaitlistError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound => Self::NotFound,
            other => Self::Store(other),
        }
    }
}

/// The longest range one entry may cover.
pub const MAX_RANGE: TimeDelta = TimeDelta::days(400);

/// Joining the waitlist and reading one's offers.
pub struct WaitlistService<P: Ports> {
    adapters: Adapters<P>,
}

impl<P: Ports> WaitlistService<P> {
    /// A service over the given adapters.
    #[must_use]
    pub fn new(adapters: Adapters<P>) -> Self {
        Self { adapters }
    }

    /// Puts the calling patient on a doctor's waitlist for `[from, to)`.
    ///
    /// # Errors
    /// `Forbidden` (not a patient), `Validation` (reversed, past or too long range),
    /// `NotFound` (no such doctor).
    pub async fn join(
        &self,
        actor: &Actor,
        doctor_id: UserId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<WaitlistEntry, WaitlistError> {
        if actor.role != Role::Patient {
            return Err(WaitlistError::Forbidden);
        }
        let now = self.adapters.clock.now();
        let mut errors = ValidationErrors::new();
        if to <= from {
            errors.push("to", "must be after from");
        } else if to - from > MAX_RANGE {
            errors.push("to", "a waitlist entry spans at most 400 days");
        }
        if to <= now {
            errors.push("to", "must be in the future");
        }
        errors.into_result().map_err(WaitlistError::Validation)?;
        self.adapters.doctors.get(doctor_id).await?;
        let entry = NewWaitlistEntry {
            id: WaitlistEntryId::new(),
            patient_id: actor.user_id,
            doctor_id,
            from,
            to,
        };
        Ok(self.adapters.waitlist.join(entry).await?)
    }

    /// The calling patient's entries, newest first.
    ///
    /// # Errors
    /// `Forbidden` for anyone but a patient.
    pub async fn entries(
        &self,
        actor: &Actor,
        page: PageRequest,
    ) -> Result<Page<WaitlistEntry>, WaitlistError> {
        if actor.role != Role::Patient {
            return Err(WaitlistError::Forbidden);
        }
        Ok(self.adapters.waitlist.entries(actor.user_id, page).await?)
    }

    /// The notifications addressed to the caller, newest first (any user).
    ///
    /// # Errors
    /// Storage failures.
    pub async fn notifications(
        &self,
        actor: &Actor,
        page: PageRequest,
    ) -> Result<Page<Notification>, WaitlistError> {
        Ok(self
            .adapters
            .waitlist
            .notifications(actor.user_id, page)
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;

    use super::*;
    use crate::test_support::{Mocks, block_on, now};

    fn actor(role: Role) -> Actor {
        Actor {
            user_id: UserId::new(),
            role,
            session_id: None,
        }
    }

    #[test]
    fn only_patients_join_and_nothing_is_stored_for_others() {
        let service = WaitlistService::new(Mocks::at(now()).build());
        for role in [Role::Doctor, Role::Admin] {
            let result = block_on(service.join(
                &actor(role),
                UserId::new(),
                now() + TimeDelta::days(1),
                now() + TimeDelta::days(2),
            ));
            assert!(matches!(result, Err(WaitlistError::Forbidden)), "{role:?}");
        }
    }

    #[test]
    fn reversed_past_and_overlong_ranges_are_refused_before_storage() {
        let service = WaitlistService::new(Mocks::at(now()).build());
        let patient = actor(Role::Patient);
        for (from, to) in [
            (TimeDelta::days(2), TimeDelta::days(1)),
            (TimeDelta::days(-3), TimeDelta::days(-1)),
            (TimeDelta::days(1), TimeDelta::days(402)),
        ] {
            let result = block_on(service.join(&patient, UserId::new(), now() + from, now() + to));
            assert!(
                matches!(result, Err(WaitlistError::Validation(_))),
                "{from:?}..{to:?}"
            );
        }
    }

    #[test]
    fn a_patient_joins_for_themself() {
        let patient = actor(Role::Patient);
        let doctor_id = UserId::new();
        let mut mocks = Mocks::at(now());
        mocks
            .doctors
            .expect_get()
            .returning(|_| Box::pin(async { Err(StoreError::NotFound) }));
        let service = WaitlistService::new(mocks.build());
        let unknown = block_on(service.join(
            &patient,
            doctor_id,
            now() + TimeDelta::days(1),
            now() + TimeDelta::days(2),
        ));
        assert!(matches!(unknown, Err(WaitlistError::NotFound)));
    }
}
