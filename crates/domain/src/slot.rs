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
    /// Storage failure.
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for SlotError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound => Self::NotFound,
            StoreError::Conflict(conflict) => Self::Conflict(conflict),
            other => Self::Store(other),
        }
    }
}

/// The largest batch of slots one request may create.
pub const MAX_BATCH: usize = 500;

/// Slot management and listing.
pub struct SlotService<P: Ports> {
    adapters: Adapters<P>,
}

impl<P: Ports> SlotService<P> {
    /// A service over the given adapters.
    #[must_use]
    pub fn new(adapters: Adapters<P>) -> Self {
        Self { adapters }
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
}
