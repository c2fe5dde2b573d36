//! Slots: a doctor's bookable intervals `[starts_at, ends_at)`. The database guarantees that
//! one doctor's slots never overlap; this module decides who may create them.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, TimeDelta, Utc};

use crate::actor::Actor;
use crate::clock::Clock;
use crate::error::{Conflict, StoreError};
use crate::ids::{SlotId, UserId};
use crate::page::{Page, PageRequest};
use crate::ports::{DoctorRepository, SlotRepository};
use crate::services::{Adapters, Ports};
use crate::user::Role;
use crate::validation::ValidationErrors;

/// Slot status, as FHIR codes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotStatus {
    /// Bookable.
    Free,
    /// Has an active appointment.
    Busy,
    /// Blocked by the clinic (time off, disabled doctor).
    BusyUnavailable,
}

impl SlotStatus {
    /// The FHIR code.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Free => "free",
            Self::Busy => "busy",
            Self::BusyUnavailable => "busy-unavailable",
        }
    }
}

impl fmt::Display for SlotStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SlotStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "free" => Ok(Self::Free),
            "busy" => Ok(Self::Busy),
            "busy-unavailable" => Ok(Self::BusyUnavailable),
            _ => Err("must be one of free, busy, busy-unavailable".into()),
        }
    }
}

/// A doctor's bookable interval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    /// Its id.
    pub id: SlotId,
    /// Whose slot it is.
    pub doctor_id: UserId,
    /// Start, inclusive.
    pub starts_at: DateTime<Utc>,
    /// End, exclusive.
    pub ends_at: DateTime<Utc>,
    /// Whether it can be booked.
    pub status: SlotStatus,
    /// The patient holding it while they check out, if a hold was taken.
    pub held_by: Option<UserId>,
    /// When that hold lapses; a hold in the past is no hold at all.
    pub held_until: Option<DateTime<Utc>>,
}

impl Slot {
    /// Whether someone other than `patient` holds the slot at `now`.
    #[must_use]
    pub fn is_held_against(&self, patient: UserId, now: DateTime<Utc>) -> bool {
        match (self.held_by, self.held_until) {
            (Some(holder), Some(until)) => until > now && holder != patient,
            _ => false,
        }
    }

    /// Why `patient` cannot take this slot at `now`, if they cannot.
    #[must_use]
    pub fn unavailable_to(&self, patient: UserId, now: DateTime<Utc>) -> Option<&'static str> {
        if self.status != SlotStatus::Free {
            Some("the slot is not free")
        } else if self.starts_at <= now {
            Some("the slot has already started")
        } else if self.is_held_against(patient, now) {
            Some("the slot is held by another patient")
        } else {
            None
        }
    }
}

/// A patient's short claim on a free slot while they check out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotHold {
    /// The held slot.
    pub slot_id: SlotId,
    /// Who holds it.
    pub patient_id: UserId,
    /// When it lapses by itself.
    pub expires_at: DateTime<Utc>,
}

/// How long a hold lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HoldPolicy {
    /// Default 5 minutes.
    pub ttl: TimeDelta,
}

impl Default for HoldPolicy {
    fn default() -> Self {
        Self {
            ttl: TimeDelta::minutes(5),
        }
    }
}

/// Filters of the cross-doctor search for bookable slots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotSearch {
    /// Only doctors of this specialty (case-insensitive).
    pub specialty: Option<String>,
    /// Slots starting at or after (the service defaults it to now).
    pub from: DateTime<Utc>,
    /// Slots starting before.
    pub to: Option<DateTime<Utc>>,
}

/// A requested interval, validated: it ends after it starts and lasts at most a day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotWindow {
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
}

impl SlotWindow {
    /// The longest slot accepted.
    pub const MAX_LENGTH: TimeDelta = TimeDelta::hours(24);

    /// Validates an interval.
    ///
    /// # Errors
    /// A message when the interval is empty, reversed or longer than a day.
    pub fn new(starts_at: DateTime<Utc>, ends_at: DateTime<Utc>) -> Result<Self, String> {
        if ends_at <= starts_at {
            return Err("ends_at must be after starts_at".into());
        }
        if ends_at - starts_at > Self::MAX_LENGTH {
            return Err("a slot lasts at most 24 hours".into());
        }
        Ok(Self { starts_at, ends_at })
    }

    /// Start.
    #[must_use]
    pub const fn starts_at(&self) -> DateTime<Utc> {
        self.starts_at
    }

    /// End.
    #[must_use]
    pub const fn ends_at(&self) -> DateTime<Utc> {
        self.ends_at
    }
}

/// A slot to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSlot {
    /// Pre-generated id.
    pub id: SlotId,
    /// Whose slot.
    pub doctor_id: UserId,
    /// The interval.
    pub window: SlotWindow,
}

/// Filters of a doctor's slot list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotFilter {
    /// Whose slots.
    pub doctor_id: UserId,
    /// Slots starting at or after.
    pub from: Option<DateTime<Utc>>,
    /// Slots starting before.
    pub to: Option<DateTime<Utc>>,
    /// Only this status.
    pub status: Option<SlotStatus>,
}

/// Why a slot operation failed.
#[derive(Debug, thiserror::Error)]
pub enum SlotError {
    /// No such doctor (or slot).
    #[error("not found")]
    NotFound,
    /// The caller may not manage this doctor's slots.
    #[error("only the doctor themself or an administrator may manage these slots")]
    Forbidden,
    /// The request is invalid.
    #[error("invalid request: {0}")]
    Validation(ValidationErrors),
    /// A slot overlaps another.
    #[error(transparent)]
    Conflict(Conflict),
    /// The slot cannot be held: taken, blocked, started or held by someone else.
    #[error("slot unavailable: {0}")]
    Unavailable(&'static str),
    /// Storage failure.
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for SlotError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound => Self::NotFound,
            StoreError::Conflict(Conflict::SlotUnavailable) => {
                Self::Unavailable("the slot has just been taken or held by someone else")
            }
            StoreError::Conflict(conflict) => Self::Conflict(conflict),
            other => Self::Store(other),
        }
    }
}

/// The largest batch of slots one request may create.
pub const MAX_BATCH: usize = 500;

/// The longest range one search may span.
pub const MAX_SEARCH_SPAN: TimeDelta = TimeDelta::days(400);

/// Slot management, listing, search and holds.
pub struct SlotService<P: Ports> {
    adapters: Adapters<P>,
    holds: HoldPolicy,
}

impl<P: Ports> SlotService<P> {
    /// A service over the given adapters.
    #[must_use]
    pub fn new(adapters: Adapters<P>, holds: HoldPolicy) -> Self {
        Self { adapters, holds }
    }

    /// Creates slots for a doctor, all or none: the doctor themself or an administrator.
    ///
    /// # Errors
    /// `NotFound` (no such doctor), `Forbidden`, `Validation` (empty, too many, or starting in
    /// the past), `Conflict(SlotOverlap)`.
    pub async fn create(
        &self,
        actor: &Actor,
        doctor_id: UserId,
        windows: Vec<SlotWindow>,
    ) -> Result<Vec<Slot>, SlotError> {
        self.adapters.doctors.get(doctor_id).await?;
        if !(actor.is_admin() || actor.is(doctor_id)) {
            return Err(SlotError::Forbidden);
        }
        let now = self.adapters.clock.now();
        let mut errors = ValidationErrors::new();
        if windows.is_empty() {
            errors.push("slots", "at least one slot is required");
        }
        if windows.len() > MAX_BATCH {
            errors.push("slots", format!("at most {MAX_BATCH} slots per request"));
        }
        for (index, window) in windows.iter().enumerate() {
            if window.starts_at() <= now {
                errors.push(format!("slots[{index}].starts_at"), "must be in the future");
            }
        }
        errors.into_result().map_err(SlotError::Validation)?;
        let slots = windows
            .into_iter()
            .map(|window| NewSlot {
                id: SlotId::new(),
                doctor_id,
                window,
            })
            .collect();
        Ok(self.adapters.slots.create_many(slots).await?)
    }

    /// A doctor's slots (anyone).
    ///
    /// # Errors
    /// `NotFound` when the doctor does not exist.
    pub async fn list(
        &self,
        filter: SlotFilter,
        page: PageRequest,
    ) -> Result<Page<Slot>, SlotError> {
        self.adapters.doctors.get(filter.doctor_id).await?;
        Ok(self.adapters.slots.list(filter, page).await?)
    }

    /// Bookable slots across doctors, by start time (anyone): free, not started, and not
    /// held. `from` defaults to now.
    ///
    /// # Errors
    /// `Validation` for a reversed or too long range or an overlong specialty.
    pub async fn search(
        &self,
        specialty: Option<String>,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
        page: PageRequest,
    ) -> Result<Page<Slot>, SlotError> {
        let now = self.adapters.clock.now();
        let from = from.map_or(now, |from| from.max(now));
        let mut errors = ValidationErrors::new();
        let specialty = specialty
            .and_then(|raw| errors.check("specialty", crate::validation::bounded_text(&raw, 100)));
        if let Some(to) = to {
            if to <= from {
                errors.push("to", "must be after from (and after now)");
            } else if to - from > MAX_SEARCH_SPAN {
                errors.push("to", "a search spans at most 400 days");
            }
        }
        errors.into_result().map_err(SlotError::Validation)?;
        let search = SlotSearch {
            specialty: specialty.filter(|s| !s.is_empty()),
            from,
            to,
        };
        Ok(self.adapters.slots.search(search, page).await?)
    }

    /// Holds a free slot for the calling patient while they check out. Holding a slot one
    /// already holds renews the hold. Booking by the holder consumes it; otherwise it lapses
    /// by itself at `expires_at`.
    ///
    /// # Errors
    /// `Forbidden` (not a patient), `NotFound`, `Conflict(SlotUnavailable)` when the slot is
    /// taken, blocked, started or held by another patient.
    pub async fn hold(&self, actor: &Actor, slot_id: SlotId) -> Result<SlotHold, SlotError> {
        if actor.role != Role::Patient {
            return Err(SlotError::Forbidden);
        }
        let slot = self
            .adapters
            .slots
            .find(slot_id)
            .await?
            .ok_or(SlotError::NotFound)?;
        let now = self.adapters.clock.now();
        if let Some(reason) = slot.unavailable_to(actor.user_id, now) {
            return Err(SlotError::Unavailable(reason));
        }
        let expires_at = now + self.holds.ttl;
        let held = self
            .adapters
            .slots
            .hold(slot_id, actor.user_id, expires_at)
            .await?;
        Ok(SlotHold {
            slot_id: held.id,
            patient_id: actor.user_id,
            expires_at,
        })
    }

    /// Clears lapsed holds and offers those slots to the waitlist; returns the offers made.
    /// Holds lapse without it; this only tidies up and notifies.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn sweep_lapsed_holds(&self) -> Result<u32, SlotError> {
        Ok(self.adapters.slots.offer_lapsed_holds().await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{MockPorts, Mocks, block_on, free_slot, now};

    fn actor(role: Role) -> Actor {
        Actor {
            user_id: UserId::new(),
            role,
            session_id: None,
        }
    }

    fn service(mocks: Mocks) -> SlotService<MockPorts> {
        SlotService::new(mocks.build(), HoldPolicy::default())
    }

    fn expect_find(mocks: &mut Mocks, slot: &Slot) {
        let found = slot.clone();
        mocks.slots.expect_find().returning(move |_| {
            let found = found.clone();
            Box::pin(async move { Ok(Some(found)) })
        });
    }

    #[test]
    fn only_patients_hold_and_only_bookable_slots() {
        let slot = free_slot(TimeDelta::days(1));
        for role in [Role::Doctor, Role::Admin] {
            let result = block_on(service(Mocks::at(now())).hold(&actor(role), slot.id));
            assert!(matches!(result, Err(SlotError::Forbidden)), "{role:?}");
        }
        let patient = actor(Role::Patient);
        for unbookable in [
            Slot {
                status: SlotStatus::Busy,
                ..slot.clone()
            },
            Slot {
                status: SlotStatus::BusyUnavailable,
                ..slot.clone()
            },
            free_slot(TimeDelta::minutes(-1)),
            Slot {
                held_by: Some(UserId::new()),
                held_until: Some(now() + TimeDelta::seconds(30)),
                ..slot.clone()
            },
        ] {
            let mut mocks = Mocks::at(now());
            expect_find(&mut mocks, &unbookable);
            let result = block_on(service(mocks).hold(&patient, unbookable.id));
            assert!(
                matches!(result, Err(SlotError::Unavailable(_))),
                "{unbookable:?}"
            );
        }
    }

    #[test]
    fn a_hold_lasts_the_policy_and_a_lapsed_or_own_hold_does_not_stand_in_the_way() {
        let patient = actor(Role::Patient);
        for slot in [
            free_slot(TimeDelta::days(1)),
            Slot {
                held_by: Some(UserId::new()),
                held_until: Some(now()),
                ..free_slot(TimeDelta::days(1))
            },
            Slot {
                held_by: Some(patient.user_id),
                held_until: Some(now() + TimeDelta::minutes(4)),
                ..free_slot(TimeDelta::days(1))
            },
        ] {
            let mut mocks = Mocks::at(now());
            expect_find(&mut mocks, &slot);
            let expires = now() + TimeDelta::minutes(5);
            let holder = patient.user_id;
            let held = slot.clone();
            mocks
                .slots
                .expect_hold()
                .withf(move |_, p, until| *p == holder && *until == expires)
                .times(1)
                .returning(move |_, _, _| {
                    let held = held.clone();
                    Box::pin(async move { Ok(held) })
                });
            let hold = block_on(service(mocks).hold(&patient, slot.id));
            assert_eq!(hold.ok().map(|h| h.expires_at), Some(expires));
        }
    }

    #[test]
    fn search_defaults_to_now_and_refuses_reversed_or_endless_ranges() {
        let page = PageRequest::new(None, None).unwrap_or_default();
        for (from, to) in [
            (
                Some(now() + TimeDelta::days(2)),
                Some(now() + TimeDelta::days(1)),
            ),
            (None, Some(now() - TimeDelta::days(1))),
            (None, Some(now() + TimeDelta::days(401))),
        ] {
            let result = block_on(service(Mocks::at(now())).search(None, from, to, page.clone()));
            assert!(
                matches!(result, Err(SlotError::Validation(_))),
                "{from:?}..{to:?}"
            );
        }
        let mut mocks = Mocks::at(now());
        mocks
            .slots
            .expect_search()
            .withf(|search, _| {
                search.from == now() && search.specialty.as_deref() == Some("Cardiology")
            })
            .times(1)
            .returning(|_, _| {
                Box::pin(async {
                    Ok(Page {
                        items: Vec::new(),
                        next: None,
                    })
                })
            });
        let result = block_on(service(mocks).search(
            Some(" Cardiology ".into()),
            Some(now() - TimeDelta::days(3)),
            None,
            page,
        ));
        assert!(result.is_ok());
    }
}
