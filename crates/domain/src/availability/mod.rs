//! Weekly availability and time off (issue 5, points 1 and 2).
//!
//! A doctor's schedule is a set of weekly rules in local wall-clock time with an IANA time
//! zone; [`generate`] turns it into slots for a horizon. Replacing the schedule stores the
//! rules and regenerates in one transaction that never touches booked, blocked or manually
//! created slots (see `AvailabilityRepository::replace`). Time off blocks the free slots in a
//! range; booked appointments in the range refuse it unless an administrator asks for them to
//! be cancelled and refunded in the same transaction.

mod generate;

use std::str::FromStr;

use chrono::{DateTime, NaiveDate, NaiveTime, TimeDelta, Utc, Weekday};
use chrono_tz::Tz;
use uuid::Uuid;

use crate::actor::Actor;
use crate::clock::Clock;
use crate::error::{Conflict, StoreError};
use crate::ids::{AppointmentId, UserId};
use crate::ports::{AvailabilityRepository, DoctorRepository};
use crate::services::{Adapters, Ports};
use crate::slot::SlotWindow;
use crate::validation::{ValidationErrors, bounded_text};

pub use generate::generate;

/// Slot length bounds, in minutes.
pub const SLOT_MINUTES: std::ops::RangeInclusive<i64> = 5..=480;
/// Buffer bounds, in minutes.
pub const BUFFER_MINUTES: std::ops::RangeInclusive<i64> = 0..=480;
/// Horizon bounds, in days counted from today (DESIGN §6).
pub const HORIZON_DAYS: std::ops::RangeInclusive<i64> = 1..=400;
/// The horizon when none is given: eight weeks.
pub const DEFAULT_HORIZON_DAYS: i64 = 56;
/// Most rules one schedule may have.
pub const MAX_RULES: usize = 100;
/// Most slots one schedule may generate over its horizon (keeps a regeneration short).
pub const MAX_GENERATED: usize = 20_000;
/// Longest time off accepted at once.
pub const MAX_TIME_OFF: TimeDelta = TimeDelta::days(366);

/// Parses `mon` … `sun`.
///
/// # Errors
/// A message for anything else.
pub fn parse_weekday(raw: &str) -> Result<Weekday, String> {
    match raw {
        "mon" => Ok(Weekday::Mon),
        "tue" => Ok(Weekday::Tue),
        "wed" => Ok(Weekday::Wed),
        "thu" => Ok(Weekday::Thu),
        "fri" => Ok(Weekday::Fri),
        "sat" => Ok(Weekday::Sat),
        "sun" => Ok(Weekday::Sun),
        _ => Err("must be one of mon, tue, wed, thu, fri, sat, sun".into()),
    }
}

/// `mon` … `sun`.
#[must_use]
pub const fn weekday_code(weekday: Weekday) -> &'static str {
    match weekday {
        Weekday::Mon => "mon",
        Weekday::Tue => "tue",
        Weekday::Wed => "wed",
        Weekday::Thu => "thu",
        Weekday::Fri => "fri",
        Weekday::Sat => "sat",
        Weekday::Sun => "sun",
    }
}

/// Parses a wall-clock time `HH:MM`.
///
/// # Errors
/// A message for anything else.
pub fn parse_clock(raw: &str) -> Result<NaiveTime, String> {
    if raw.len() != 5 {
        return Err("must be a time HH:MM such as 09:30".into());
    }
    NaiveTime::parse_from_str(raw, "%H:%M").map_err(|_| "must be a time HH:MM such as 09:30".into())
}

/// One weekly interval of work, in the doctor's local wall-clock time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WeeklyRule {
    /// The day of the week.
    pub weekday: Weekday,
    /// First possible slot start (local).
    pub start: NaiveTime,
    /// No slot ends after this (local); after `start`.
    pub end: NaiveTime,
}

/// A rule as the client sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleInput {
    /// `mon` … `sun`.
    pub weekday: String,
    /// `HH:MM`.
    pub start: String,
    /// `HH:MM`.
    pub end: String,
}

/// A schedule as the client sent it, to validate with [`Availability::parse`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvailabilityInput {
    /// IANA time zone name (`Europe/Berlin`).
    pub time_zone: String,
    /// Slot length in minutes.
    pub slot_minutes: i64,
    /// Gap after each slot in minutes.
    pub buffer_minutes: i64,
    /// First local date the rules apply.
    pub effective_from: NaiveDate,
    /// Last local date the rules apply (inclusive), or open-ended.
    pub effective_until: Option<NaiveDate>,
    /// How many days ahead, counted from today, slots exist.
    pub horizon_days: i64,
    /// The weekly rules.
    pub rules: Vec<RuleInput>,
}

/// A validated weekly schedule: a known IANA zone, bounded lengths, ordered effective dates,
/// and rules that do not overlap on any weekday (touching is fine).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Availability {
    time_zone: Tz,
    slot_minutes: u32,
    buffer_minutes: u32,
    effective_from: NaiveDate,
    effective_until: Option<NaiveDate>,
    horizon_days: u32,
    rules: Vec<WeeklyRule>,
}

fn bounded(
    errors: &mut ValidationErrors,
    field: &str,
    value: i64,
    range: &std::ops::RangeInclusive<i64>,
) -> u32 {
    if range.contains(&value) {
        u32::try_from(value).unwrap_or_default()
    } else {
        errors.push(
            field,
            format!("must be between {} and {}", range.start(), range.end()),
        );
        0
    }
}

impl Availability {
    /// Validates a schedule, reporting every invalid field.
    ///
    /// # Errors
    /// Every invalid field: `time_zone`, `slot_minutes`, `buffer_minutes`, `horizon_days`,
    /// `effective_until`, `rules`, `rules[i].weekday|start|end`.
    pub fn parse(input: AvailabilityInput) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let time_zone = errors.check(
            "time_zone",
            Tz::from_str(input.time_zone.trim())
                .map_err(|_| "must be an IANA time zone name such as Europe/Berlin".to_owned()),
        );
        let slot_minutes = bounded(
            &mut errors,
            "slot_minutes",
            input.slot_minutes,
            &SLOT_MINUTES,
        );
        let buffer_minutes = bounded(
            &mut errors,
            "buffer_minutes",
            input.buffer_minutes,
            &BUFFER_MINUTES,
        );
        let horizon_days = bounded(
            &mut errors,
            "horizon_days",
            input.horizon_days,
            &HORIZON_DAYS,
        );
        if input
            .effective_until
            .is_some_and(|until| until < input.effective_from)
        {
            errors.push("effective_until", "must not be before effective_from");
        }
        if input.rules.len() > MAX_RULES {
            errors.push("rules", format!("at most {MAX_RULES} rules"));
        }
        let mut rules: Vec<(usize, WeeklyRule)> = Vec::with_capacity(input.rules.len());
        for (index, raw) in input.rules.iter().enumerate() {
            let weekday = errors.check(
                &format!("rules[{index}].weekday"),
                parse_weekday(&raw.weekday),
            );
            let start = errors.check(&format!("rules[{index}].start"), parse_clock(&raw.start));
            let end = errors.check(&format!("rules[{index}].end"), parse_clock(&raw.end));
            if let (Some(start), Some(end)) = (start, end)
                && start >= end
            {
                errors.push(format!("rules[{index}].end"), "must be after start");
            } else if let (Some(weekday), Some(start), Some(end)) = (weekday, start, end) {
                rules.push((
                    index,
                    WeeklyRule {
                        weekday,
                        start,
                        end,
                    },
                ));
            }
        }
        rules.sort_by_key(|(_, rule)| (rule.weekday.number_from_monday(), rule.start));
        for pair in rules.windows(2) {
            let ((earlier_index, earlier), (index, later)) = (&pair[0], &pair[1]);
            if earlier.weekday == later.weekday && later.start < earlier.end {
                errors.push(
                    format!("rules[{index}]"),
                    format!("overlaps rules[{earlier_index}] on the same weekday"),
                );
            }
        }
        errors.into_result()?;
        let Some(time_zone) = time_zone else {
            return Err(ValidationErrors::single("time_zone", "missing"));
        };
        Ok(Self {
            time_zone,
            slot_minutes,
            buffer_minutes,
            effective_from: input.effective_from,
            effective_until: input.effective_until,
            horizon_days,
            rules: rules.into_iter().map(|(_, rule)| rule).collect(),
        })
    }

    /// The zone.
    #[must_use]
    pub const fn time_zone(&self) -> Tz {
        self.time_zone
    }

    /// Slot length, minutes.
    #[must_use]
    pub const fn slot_minutes(&self) -> u32 {
        self.slot_minutes
    }

    /// Gap after each slot, minutes.
    #[must_use]
    pub const fn buffer_minutes(&self) -> u32 {
        self.buffer_minutes
    }

    /// First local date.
    #[must_use]
    pub const fn effective_from(&self) -> NaiveDate {
        self.effective_from
    }

    /// Last local date, inclusive.
    #[must_use]
    pub const fn effective_until(&self) -> Option<NaiveDate> {
        self.effective_until
    }

    /// Days ahead from today.
    #[must_use]
    pub const fn horizon_days(&self) -> u32 {
        self.horizon_days
    }

    /// The rules, by weekday (Monday first), then start.
    #[must_use]
    pub fn rules(&self) -> &[WeeklyRule] {
        &self.rules
    }
}

/// A doctor's stored schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    /// Whose.
    pub doctor_id: UserId,
    /// The rules.
    pub availability: Availability,
    /// Bumped by every replacement.
    pub revision: i64,
    /// When it was last replaced.
    pub updated_at: DateTime<Utc>,
}

/// A replacement to store, with the slots it generates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replacement {
    /// Whose schedule.
    pub doctor_id: UserId,
    /// The new rules.
    pub availability: Availability,
    /// The slots generated from them (all starting after `now`).
    pub windows: Vec<SlotWindow>,
    /// Generated slots starting after this and still free are replaced.
    pub now: DateTime<Utc>,
    /// Who replaces it.
    pub updated_by: UserId,
}

/// What a replacement did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Regenerated {
    /// The stored schedule.
    pub schedule: Schedule,
    /// New free slots inserted.
    pub generated: u64,
    /// Free generated slots removed (future, never booked).
    pub removed: u64,
}

/// What the periodic extension did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Extension {
    /// Schedules looked at.
    pub schedules: u64,
    /// Slots added.
    pub generated: u64,
}

/// A validated request for time off `[from, to)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeOffRequest {
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    reason: String,
    cancel_conflicts: bool,
}

impl TimeOffRequest {
    /// Validates the range (non-empty, at most [`MAX_TIME_OFF`]) and the reason.
    ///
    /// # Errors
    /// Every invalid field: `to`, `reason`.
    pub fn new(
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        reason: &str,
        cancel_conflicts: bool,
    ) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        if to <= from {
            errors.push("to", "must be after from");
        } else if to - from > MAX_TIME_OFF {
            errors.push("to", "time off lasts at most 366 days per request");
        }
        let reason = errors.check("reason", bounded_text(reason, 500));
        errors.into_result()?;
        Ok(Self {
            from,
            to,
            reason: reason.unwrap_or_default(),
            cancel_conflicts,
        })
    }

    /// Start, inclusive.
    #[must_use]
    pub const fn from(&self) -> DateTime<Utc> {
        self.from
    }

    /// End, exclusive.
    #[must_use]
    pub const fn to(&self) -> DateTime<Utc> {
        self.to
    }

    /// Why.
    #[must_use]
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// Whether conflicting appointments are to be cancelled (administrators only).
    #[must_use]
    pub const fn cancel_conflicts(&self) -> bool {
        self.cancel_conflicts
    }
}

/// Time off to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTimeOff {
    /// Its id.
    pub id: Uuid,
    /// Whose.
    pub doctor_id: UserId,
    /// The range and reason.
    pub request: TimeOffRequest,
    /// Who asks.
    pub created_by: UserId,
    /// When; also the cancellation time of conflicting appointments.
    pub at: DateTime<Utc>,
    /// Reason recorded on cancelled appointments and their refunds.
    pub cancel_reason: String,
}

/// Stored time off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeOff {
    /// Its id.
    pub id: Uuid,
    /// Whose.
    pub doctor_id: UserId,
    /// Start, inclusive.
    pub from: DateTime<Utc>,
    /// End, exclusive.
    pub to: DateTime<Utc>,
    /// Why.
    pub reason: String,
    /// Whether conflicting appointments were cancelled.
    pub cancel_conflicts: bool,
    /// Who took it.
    pub created_by: UserId,
}

/// An active appointment in the way of time off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConflictingAppointment {
    /// The appointment.
    pub appointment_id: AppointmentId,
    /// Its patient.
    pub patient_id: UserId,
    /// Start.
    pub starts_at: DateTime<Utc>,
    /// End.
    pub ends_at: DateTime<Utc>,
}

/// Time off that was stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeOffTaken {
    /// The stored row.
    pub time_off: TimeOff,
    /// Free slots turned `busy-unavailable`.
    pub blocked: u64,
    /// Appointments cancelled (and refunded) by the override.
    pub cancelled: Vec<AppointmentId>,
}

/// How a time-off request ended at the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimeOffOutcome {
    /// Stored.
    Taken(TimeOffTaken),
    /// Nothing changed: these active appointments overlap and cancelling was not asked for.
    Conflicts(Vec<ConflictingAppointment>),
}

/// Why an availability or time-off request failed.
#[derive(Debug, thiserror::Error)]
pub enum AvailabilityError {
    /// No such doctor, or no schedule stored.
    #[error("not found")]
    NotFound,
    /// The caller may not do this.
    #[error("{0}")]
    Forbidden(&'static str),
    /// Invalid fields.
    #[error("invalid request: {0}")]
    Validation(ValidationErrors),
    /// Active appointments overlap the time off; nothing changed.
    #[error("{} booked appointment(s) overlap the time off", .0.len())]
    TimeOffConflict(Vec<ConflictingAppointment>),
    /// A conflicting appointment's payment is being charged; nothing changed.
    #[error("a payment attempt is in progress")]
    PaymentInProgress,
    /// A conflicting appointment's payment changed meanwhile; nothing changed, retry.
    #[error("a payment changed while cancelling; retry")]
    PaymentChanged,
    /// Another rule refused the change.
    #[error(transparent)]
    Conflict(Conflict),
    /// Storage failure.
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for AvailabilityError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound => Self::NotFound,
            StoreError::Conflict(Conflict::PaymentInProgress) => Self::PaymentInProgress,
            StoreError::Conflict(
                Conflict::PaymentNotSettled
                | Conflict::RefundExceedsPaid
                | Conflict::PaymentNotRefundable,
            ) => Self::PaymentChanged,
            StoreError::Conflict(conflict) => Self::Conflict(conflict),
            other => Self::Store(other),
        }
    }
}

const FORBIDDEN_MANAGE: &str =
    "only the doctor themself or an administrator may manage this doctor's availability";
const FORBIDDEN_OVERRIDE: &str =
    "only an administrator may cancel booked appointments to take time off";

/// Weekly schedules, their slots, and time off.
pub struct AvailabilityService<P: Ports> {
    adapters: Adapters<P>,
}

impl<P: Ports> AvailabilityService<P> {
    /// A service over the given adapters.
    #[must_use]
    pub fn new(adapters: Adapters<P>) -> Self {
        Self { adapters }
    }

    async fn authorize(&self, actor: &Actor, doctor_id: UserId) -> Result<(), AvailabilityError> {
        self.adapters.doctors.get(doctor_id).await?;
        if actor.is_admin() || actor.is(doctor_id) {
            Ok(())
        } else {
            Err(AvailabilityError::Forbidden(FORBIDDEN_MANAGE))
        }
    }

    /// A doctor's schedule (anyone: the slots it makes are public).
    ///
    /// # Errors
    /// `NotFound` when the doctor does not exist or has no schedule.
    pub async fn get(&self, doctor_id: UserId) -> Result<Schedule, AvailabilityError> {
        self.adapters.doctors.get(doctor_id).await?;
        self.adapters
            .availability
            .schedule(doctor_id)
            .await?
            .ok_or(AvailabilityError::NotFound)
    }

    /// Replaces a doctor's schedule and regenerates their free slots (the doctor themself or
    /// an administrator). Booked, blocked and manually created slots stay.
    ///
    /// # Errors
    /// `NotFound`, `Forbidden`, `Validation` (the rules would generate more than
    /// [`MAX_GENERATED`] slots).
    pub async fn replace(
        &self,
        actor: &Actor,
        doctor_id: UserId,
        availability: Availability,
    ) -> Result<Regenerated, AvailabilityError> {
        self.authorize(actor, doctor_id).await?;
        let now = self.adapters.clock.now();
        let windows = generate(&availability, now);
        if windows.len() > MAX_GENERATED {
            return Err(AvailabilityError::Validation(ValidationErrors::single(
                "horizon_days",
                format!(
                    "the rules make {} slots over the horizon, more than {MAX_GENERATED}; shorten the horizon or lengthen the slots",
                    windows.len()
                ),
            )));
        }
        Ok(self
            .adapters
            .availability
            .replace(Replacement {
                doctor_id,
                availability,
                windows,
                now,
                updated_by: actor.user_id,
            })
            .await?)
    }

    /// Rolls every schedule's horizon forward to today + horizon: adds the slots that are
    /// missing, never removes any. Meant to run periodically (`shms serve` does it hourly);
    /// safe to run concurrently with itself and with replacements.
    ///
    /// # Errors
    /// Storage failures; schedules before the failing one keep their new slots.
    pub async fn extend_all(&self) -> Result<Extension, AvailabilityError> {
        let now = self.adapters.clock.now();
        let mut extension = Extension::default();
        for schedule in self.adapters.availability.schedules().await? {
            let windows = generate(&schedule.availability, now);
            let windows = windows.into_iter().take(MAX_GENERATED).collect();
            extension.generated += self
                .adapters
                .availability
                .extend(schedule.doctor_id, schedule.revision, windows)
                .await?;
            extension.schedules += 1;
        }
        Ok(extension)
    }

    /// Takes time off: free slots overlapping the range turn `busy-unavailable`. Booked or
    /// checked-in appointments overlapping it refuse the request (nothing changes) unless an
    /// administrator asks to cancel them, which cancels and fully refunds them in the same
    /// transaction.
    ///
    /// # Errors
    /// `NotFound`, `Forbidden` (another doctor; a doctor asking to cancel appointments),
    /// `Validation` (the range has ended), `TimeOffConflict`, `PaymentInProgress`,
    /// `PaymentChanged`.
    pub async fn take_time_off(
        &self,
        actor: &Actor,
        doctor_id: UserId,
        request: TimeOffRequest,
    ) -> Result<TimeOffTaken, AvailabilityError> {
        self.authorize(actor, doctor_id).await?;
        if request.cancel_conflicts() && !actor.is_admin() {
            return Err(AvailabilityError::Forbidden(FORBIDDEN_OVERRIDE));
        }
        let now = self.adapters.clock.now();
        if request.to() <= now {
            return Err(AvailabilityError::Validation(ValidationErrors::single(
                "to",
                "must be in the future",
            )));
        }
        let cancel_reason = format!("doctor's time off: {}", request.reason());
        let outcome = self
            .adapters
            .availability
            .take_time_off(NewTimeOff {
                id: Uuid::now_v7(),
                doctor_id,
                request,
                created_by: actor.user_id,
                at: now,
                cancel_reason,
            })
            .await?;
        match outcome {
            TimeOffOutcome::Taken(taken) => Ok(taken),
            TimeOffOutcome::Conflicts(conflicts) => {
                Err(AvailabilityError::TimeOffConflict(conflicts))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use chrono::{NaiveDate, TimeDelta};

    use super::*;
    use crate::doctor::Doctor;
    use crate::payment::Money;
    use crate::test_support::{Mocks, block_on, now};
    use crate::user::Role;

    fn input() -> AvailabilityInput {
        AvailabilityInput {
            time_zone: "Europe/Berlin".into(),
            slot_minutes: 30,
            buffer_minutes: 0,
            effective_from: NaiveDate::from_ymd_opt(2027, 1, 4).unwrap(),
            effective_until: None,
            horizon_days: 56,
            rules: vec![RuleInput {
                weekday: "mon".into(),
                start: "09:00".into(),
                end: "12:00".into(),
            }],
        }
    }

    fn fields(errors: &ValidationErrors) -> Vec<&str> {
        errors.fields().iter().map(|f| f.field.as_str()).collect()
    }

    fn actor(role: Role) -> Actor {
        Actor {
            user_id: UserId::new(),
            role,
            session_id: None,
        }
    }

    fn doctor(id: UserId) -> Doctor {
        Doctor {
            id,
            full_name: "Dr. Who".into(),
            specialty: "General".into(),
            license_number: "L-1".into(),
            consultation_fee: Money::new(5000, "EUR").unwrap(),
            active: true,
            bio: None,
        }
    }

    fn with_doctor(mocks: &mut Mocks, id: UserId) {
        mocks
            .doctors
            .expect_get()
            .returning(move |id| Box::pin(async move { Ok(doctor(id)) }))
            .withf(move |asked| *asked == id);
    }

    #[test]
    fn a_valid_schedule_parses_with_its_rules_ordered() {
        let mut raw = input();
        raw.rules.insert(
            0,
            RuleInput {
                weekday: "sun".into(),
                start: "08:00".into(),
                end: "09:00".into(),
            },
        );
        raw.rules.push(RuleInput {
            weekday: "mon".into(),
            start: "12:00".into(),
            end: "13:00".into(),
        });
        let availability = Availability::parse(raw).unwrap();
        assert_eq!(availability.time_zone(), chrono_tz::Europe::Berlin);
        let order: Vec<_> = availability
            .rules()
            .iter()
            .map(|r| (weekday_code(r.weekday), r.start.format("%H:%M").to_string()))
            .collect();
        assert_eq!(
            order,
            [
                ("mon", "09:00".to_owned()),
                ("mon", "12:00".to_owned()),
                ("sun", "08:00".to_owned())
            ]
        );
    }

    #[test]
    fn every_invalid_field_is_reported_at_once() {
        let raw = AvailabilityInput {
            time_zone: "Mars/Olympus".into(),
            slot_minutes: 4,
            buffer_minutes: -1,
            effective_from: NaiveDate::from_ymd_opt(2027, 3, 1).unwrap(),
            effective_until: NaiveDate::from_ymd_opt(2027, 2, 1),
            horizon_days: 401,
            rules: vec![
                RuleInput {
                    weekday: "monday".into(),
                    start: "9".into(),
                    end: "12:00".into(),
                },
                RuleInput {
                    weekday: "tue".into(),
                    start: "12:00".into(),
                    end: "12:00".into(),
                },
                RuleInput {
                    weekday: "wed".into(),
                    start: "25:00".into(),
                    end: "12:60".into(),
                },
            ],
        };
        let errors = Availability::parse(raw).unwrap_err();
        assert_eq!(
            fields(&errors),
            [
                "time_zone",
                "slot_minutes",
                "buffer_minutes",
                "horizon_days",
                "effective_until",
                "rules[0].weekday",
                "rules[0].start",
                "rules[1].end",
                "rules[2].start",
                "rules[2].end",
            ]
        );
    }

    #[test]
    fn overlapping_rules_on_one_weekday_are_refused_but_touching_ones_are_not() {
        let mut raw = input();
        raw.rules.push(RuleInput {
            weekday: "mon".into(),
            start: "11:30".into(),
            end: "13:00".into(),
        });
        raw.rules.push(RuleInput {
            weekday: "tue".into(),
            start: "11:30".into(),
            end: "13:00".into(),
        });
        let errors = Availability::parse(raw.clone()).unwrap_err();
        assert_eq!(fields(&errors), ["rules[1]"]);
        assert!(errors.fields()[0].message.contains("rules[0]"));
        raw.rules[1].start = "12:00".into();
        assert!(Availability::parse(raw).is_ok());
    }

    #[test]
    fn bounds_are_inclusive() {
        for (slot, buffer, horizon) in [(5, 0, 1), (480, 480, 400)] {
            let mut raw = input();
            raw.slot_minutes = slot;
            raw.buffer_minutes = buffer;
            raw.horizon_days = horizon;
            assert!(
                Availability::parse(raw).is_ok(),
                "{slot} {buffer} {horizon}"
            );
        }
        let mut raw = input();
        raw.effective_until = Some(raw.effective_from);
        raw.rules.clear();
        assert!(Availability::parse(raw).is_ok(), "one day, no rules");
    }

    #[test]
    fn time_off_needs_a_range_and_a_reason() {
        let from = now();
        let errors = TimeOffRequest::new(from, from, "  ", false).unwrap_err();
        assert_eq!(fields(&errors), ["to", "reason"]);
        let errors = TimeOffRequest::new(from, from + TimeDelta::days(367), "sabbatical", false)
            .unwrap_err();
        assert_eq!(fields(&errors), ["to"]);
        let request = TimeOffRequest::new(from, from + TimeDelta::days(1), " flu ", true).unwrap();
        assert_eq!(request.reason(), "flu");
        assert!(request.cancel_conflicts());
    }

    #[test]
    fn only_the_doctor_or_an_admin_may_replace_the_schedule() {
        let doctor_id = UserId::new();
        for role in [Role::Patient, Role::Doctor] {
            let mut mocks = Mocks::at(now());
            with_doctor(&mut mocks, doctor_id);
            let service = AvailabilityService::new(mocks.build());
            let availability = Availability::parse(input()).unwrap();
            let result = block_on(service.replace(&actor(role), doctor_id, availability));
            assert!(
                matches!(result, Err(AvailabilityError::Forbidden(_))),
                "{role:?}"
            );
        }
    }

    #[test]
    fn an_unknown_doctor_is_not_found_before_anything_else() {
        let mut mocks = Mocks::at(now());
        mocks
            .doctors
            .expect_get()
            .returning(|_| Box::pin(async { Err(StoreError::NotFound) }));
        let service = AvailabilityService::new(mocks.build());
        let availability = Availability::parse(input()).unwrap();
        let result = block_on(service.replace(&actor(Role::Patient), UserId::new(), availability));
        assert!(matches!(result, Err(AvailabilityError::NotFound)));
    }

    #[test]
    fn the_doctor_replaces_their_schedule_with_the_generated_slots() {
        let doctor_id = UserId::new();
        let mut mocks = Mocks::at(now());
        with_doctor(&mut mocks, doctor_id);
        let availability = Availability::parse(input()).unwrap();
        let expected = generate(&availability, now());
        assert_eq!(expected.len(), 8 * 6, "eight Mondays of six slots");
        mocks
            .availability
            .expect_replace()
            .withf(move |r| {
                r.doctor_id == doctor_id
                    && r.updated_by == doctor_id
                    && r.now == now()
                    && r.windows == expected
            })
            .returning(|r| {
                Box::pin(async move {
                    Ok(Regenerated {
                        generated: r.windows.len() as u64,
                        removed: 0,
                        schedule: Schedule {
                            doctor_id: r.doctor_id,
                            availability: r.availability,
                            revision: 1,
                            updated_at: r.now,
                        },
                    })
                })
            });
        let service = AvailabilityService::new(mocks.build());
        let caller = Actor {
            user_id: doctor_id,
            role: Role::Doctor,
            session_id: None,
        };
        let done = block_on(service.replace(&caller, doctor_id, availability)).unwrap();
        assert_eq!(done.generated, 48);
    }

    #[test]
    fn a_schedule_making_too_many_slots_is_refused_without_storing() {
        let doctor_id = UserId::new();
        let mut mocks = Mocks::at(now());
        with_doctor(&mut mocks, doctor_id);
        let mut raw = input();
        raw.slot_minutes = 5;
        raw.horizon_days = 400;
        raw.rules = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
            .iter()
            .map(|day| RuleInput {
                weekday: (*day).into(),
                start: "00:00".into(),
                end: "23:55".into(),
            })
            .collect();
        let service = AvailabilityService::new(mocks.build());
        let result = block_on(service.replace(
            &actor(Role::Admin),
            doctor_id,
            Availability::parse(raw).unwrap(),
        ));
        let Err(AvailabilityError::Validation(errors)) = result else {
            panic!("{result:?}");
        };
        assert_eq!(fields(&errors), ["horizon_days"]);
    }

    #[test]
    fn a_doctor_may_not_override_conflicts_but_an_admin_may() {
        let doctor_id = UserId::new();
        let request =
            TimeOffRequest::new(now(), now() + TimeDelta::days(1), "conference", true).unwrap();
        let mut mocks = Mocks::at(now());
        with_doctor(&mut mocks, doctor_id);
        let service = AvailabilityService::new(mocks.build());
        let caller = Actor {
            user_id: doctor_id,
            role: Role::Doctor,
            session_id: None,
        };
        let result = block_on(service.take_time_off(&caller, doctor_id, request.clone()));
        assert!(matches!(
            result,
            Err(AvailabilityError::Forbidden(FORBIDDEN_OVERRIDE))
        ));

        let mut mocks = Mocks::at(now());
        with_doctor(&mut mocks, doctor_id);
        let admin = actor(Role::Admin);
        let admin_id = admin.user_id;
        mocks
            .availability
            .expect_take_time_off()
            .withf(move |t| {
                t.doctor_id == doctor_id
                    && t.created_by == admin_id
                    && t.request.cancel_conflicts()
                    && t.cancel_reason == "doctor's time off: conference"
            })
            .returning(|t| {
                Box::pin(async move {
                    Ok(TimeOffOutcome::Taken(TimeOffTaken {
                        time_off: TimeOff {
                            id: t.id,
                            doctor_id: t.doctor_id,
                            from: t.request.from(),
                            to: t.request.to(),
                            reason: t.request.reason().to_owned(),
                            cancel_conflicts: true,
                            created_by: t.created_by,
                        },
                        blocked: 3,
                        cancelled: vec![AppointmentId::new()],
                    }))
                })
            });
        let service = AvailabilityService::new(mocks.build());
        let taken = block_on(service.take_time_off(&admin, doctor_id, request)).unwrap();
        assert_eq!((taken.blocked, taken.cancelled.len()), (3, 1));
    }

    #[test]
    fn conflicts_and_payment_refusals_become_their_errors() {
        let doctor_id = UserId::new();
        let conflict = ConflictingAppointment {
            appointment_id: AppointmentId::new(),
            patient_id: UserId::new(),
            starts_at: now() + TimeDelta::hours(2),
            ends_at: now() + TimeDelta::hours(3),
        };
        let cases: Vec<(Result<TimeOffOutcome, StoreError>, &str)> = vec![
            (
                Ok(TimeOffOutcome::Conflicts(vec![conflict.clone()])),
                "conflict",
            ),
            (
                Err(StoreError::Conflict(Conflict::PaymentInProgress)),
                "in progress",
            ),
            (
                Err(StoreError::Conflict(Conflict::RefundExceedsPaid)),
                "changed",
            ),
        ];
        for (answer, expected) in cases {
            let mut mocks = Mocks::at(now());
            with_doctor(&mut mocks, doctor_id);
            let answer = std::sync::Mutex::new(Some(answer));
            mocks
                .availability
                .expect_take_time_off()
                .returning(move |_| {
                    let answer = answer.lock().unwrap().take().unwrap();
                    Box::pin(async move { answer })
                });
            let service = AvailabilityService::new(mocks.build());
            let request =
                TimeOffRequest::new(now(), now() + TimeDelta::days(1), "flu", false).unwrap();
            let result = block_on(service.take_time_off(&actor(Role::Admin), doctor_id, request));
            let ok = match (&result, expected) {
                (Err(AvailabilityError::TimeOffConflict(list)), "conflict") => {
                    list == &vec![conflict.clone()]
                }
                (Err(AvailabilityError::PaymentInProgress), "in progress")
                | (Err(AvailabilityError::PaymentChanged), "changed") => true,
                _ => false,
            };
            assert!(ok, "{expected}: {result:?}");
        }
    }

    #[test]
    fn time_off_that_has_already_ended_is_refused() {
        let doctor_id = UserId::new();
        let mut mocks = Mocks::at(now());
        with_doctor(&mut mocks, doctor_id);
        let service = AvailabilityService::new(mocks.build());
        let request = TimeOffRequest::new(
            now() - TimeDelta::days(2),
            now() - TimeDelta::days(1),
            "flu",
            false,
        )
        .unwrap();
        let result = block_on(service.take_time_off(&actor(Role::Admin), doctor_id, request));
        assert!(matches!(result, Err(AvailabilityError::Validation(_))));
    }

    #[test]
    fn extension_generates_each_schedule_for_its_revision() {
        let mut mocks = Mocks::at(now());
        let schedules: Vec<Schedule> = (1..=2)
            .map(|revision| Schedule {
                doctor_id: UserId::new(),
                availability: Availability::parse(input()).unwrap(),
                revision,
                updated_at: now(),
            })
            .collect();
        let listed = schedules.clone();
        mocks.availability.expect_schedules().returning(move || {
            let listed = listed.clone();
            Box::pin(async move { Ok(listed) })
        });
        let pairs: Vec<(UserId, i64)> = schedules
            .iter()
            .map(|s| (s.doctor_id, s.revision))
            .collect();
        mocks
            .availability
            .expect_extend()
            .times(2)
            .withf(move |doctor, revision, windows| {
                pairs.contains(&(*doctor, *revision)) && windows.len() == 48
            })
            .returning(|_, _, _| Box::pin(async { Ok(5) }));
        let service = AvailabilityService::new(mocks.build());
        let done = block_on(service.extend_all()).unwrap();
        assert_eq!(
            done,
            Extension {
                schedules: 2,
                generated: 10
            }
        );
    }
}
