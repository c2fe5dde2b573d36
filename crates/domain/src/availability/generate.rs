//! Slot generation from weekly rules: pure, so that daylight-saving behaviour is tested
//! without a database.
//!
//! For each local date from `max(today, effective_from)` to
//! `min(today + horizon_days - 1, effective_until)` (today in the doctor's zone; a horizon of
//! one day is today only), and for each rule of that date's weekday, start times are stepped
//! on the local wall clock by `slot + buffer` while `start + slot <= end`. Each local start is
//! converted to UTC with the zone:
//!
//! * a local time that does not exist (the spring-forward gap, 02:30 in Europe/Berlin on
//!   2027-03-28) is skipped;
//! * an ambiguous one (the fall-back overlap) is taken once, at its earliest instant, so the
//!   repeated hour is not doubled;
//! * a 09:00 rule gives 09:00 local on both sides of a change (its UTC instant moves).
//!
//! A slot lasts `slot_minutes` of real time. Slots starting at or before `now` are left out,
//! and so is one that would overlap the previous slot of the same rule (possible only for a
//! slot spanning a spring-forward gap), so the output never overlaps itself.

use chrono::{DateTime, Datelike, Days, NaiveDate, TimeDelta, TimeZone, Utc};

use super::{Availability, WeeklyRule};
use crate::slot::SlotWindow;

/// The slots the schedule asks for, ordered by start, starting after `now`.
#[must_use]
pub fn generate(availability: &Availability, now: DateTime<Utc>) -> Vec<SlotWindow> {
    let zone = availability.time_zone();
    let today = now.with_timezone(&zone).date_naive();
    let first = today.max(availability.effective_from());
    let Some(horizon_end) = today.checked_add_days(Days::new(
        u64::from(availability.horizon_days()).saturating_sub(1),
    )) else {
        return Vec::new();
    };
    let last = availability
        .effective_until()
        .map_or(horizon_end, |until| until.min(horizon_end));
    let slot = TimeDelta::minutes(i64::from(availability.slot_minutes()));
    let step = slot + TimeDelta::minutes(i64::from(availability.buffer_minutes()));
    let mut windows = Vec::new();
    let mut date = first;
    while date <= last {
        for rule in availability
            .rules()
            .iter()
            .filter(|rule| rule.weekday == date.weekday())
        {
            day_slots(date, rule, slot, step, &zone, now, &mut windows);
        }
        let Some(next) = date.succ_opt() else { break };
        date = next;
    }
    windows.sort_by_key(SlotWindow::starts_at);
    // only a slot spanning a spring-forward gap can reach into the next one: keep the first
    let mut kept: Vec<SlotWindow> = Vec::with_capacity(windows.len());
    for window in windows {
        if kept
            .last()
            .is_none_or(|previous| previous.ends_at() <= window.starts_at())
        {
            kept.push(window);
        }
    }
    kept
}

fn day_slots<Z: TimeZone>(
    date: NaiveDate,
    rule: &WeeklyRule,
    slot: TimeDelta,
    step: TimeDelta,
    zone: &Z,
    now: DateTime<Utc>,
    out: &mut Vec<SlotWindow>,
) {
    let end = date.and_time(rule.end);
    let mut local = date.and_time(rule.start);
    while local + slot <= end {
        // None = the gap of a spring-forward change: that wall-clock time does not exist
        if let Some(start) = zone.from_local_datetime(&local).earliest() {
            let start = start.with_timezone(&Utc);
            if start > now
                && let Ok(window) = SlotWindow::new(start, start + slot)
            {
                out.push(window);
            }
        }
        local += step;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use chrono::{NaiveDate, TimeZone, Utc};

    use super::*;
    use crate::availability::{AvailabilityInput, RuleInput};

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn date(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    fn schedule(
        zone: &str,
        slot: i64,
        buffer: i64,
        from: &str,
        until: Option<&str>,
        horizon: i64,
        rules: &[(&str, &str, &str)],
    ) -> Availability {
        Availability::parse(AvailabilityInput {
            time_zone: zone.into(),
            slot_minutes: slot,
            buffer_minutes: buffer,
            effective_from: date(from),
            effective_until: until.map(date),
            horizon_days: horizon,
            rules: rules
                .iter()
                .map(|(weekday, start, end)| RuleInput {
                    weekday: (*weekday).into(),
                    start: (*start).into(),
                    end: (*end).into(),
                })
                .collect(),
        })
        .unwrap()
    }

    fn starts(windows: &[SlotWindow]) -> Vec<String> {
        windows
            .iter()
            .map(|w| {
                w.starts_at()
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            })
            .collect()
    }

    /// Generates for one local day: `now` is the evening before in UTC, the horizon two days.
    fn one_day(zone: &str, day: &str, slot: i64, rules: &[(&str, &str, &str)]) -> Vec<String> {
        let availability = schedule(zone, slot, 0, day, Some(day), 400, rules);
        let now =
            utc(&format!("{}T00:00:00Z", date(day).pred_opt().unwrap())) - TimeDelta::hours(12);
        starts(&generate(&availability, now))
    }

    #[test]
    fn a_plain_week_steps_by_slot_and_buffer_within_each_rule() {
        // Monday 2027-01-04, Berlin is UTC+1 in winter
        let availability = schedule(
            "Europe/Berlin",
            30,
            10,
            "2027-01-04",
            Some("2027-01-10"),
            56,
            &[("mon", "09:00", "11:00"), ("wed", "14:00", "15:00")],
        );
        let windows = generate(&availability, utc("2027-01-01T12:00:00Z"));
        assert_eq!(
            starts(&windows),
            [
                "2027-01-04T08:00:00Z",
                "2027-01-04T08:40:00Z",
                "2027-01-04T09:20:00Z",
                // 10:00 + 30 = 10:30 fits; 10:40 + 30 = 11:10 does not
                "2027-01-06T13:00:00Z",
            ]
        );
        assert!(
            windows
                .iter()
                .all(|w| w.ends_at() - w.starts_at() == TimeDelta::minutes(30))
        );
    }

    #[test]
    fn berlin_spring_forward_skips_the_missing_hour() {
        // 2027-03-28 02:00 CET becomes 03:00 CEST: 02:00 and 02:30 do not exist
        assert_eq!(
            one_day(
                "Europe/Berlin",
                "2027-03-28",
                30,
                &[("sun", "01:00", "04:00")]
            ),
            [
                "2027-03-28T00:00:00Z", // 01:00 CET
                "2027-03-28T00:30:00Z", // 01:30 CET
                "2027-03-28T01:00:00Z", // 03:00 CEST
                "2027-03-28T01:30:00Z", // 03:30 CEST
            ]
        );
    }

    #[test]
    fn berlin_fall_back_does_not_double_the_repeated_hour() {
        // 2027-10-31 03:00 CEST becomes 02:00 CET: 02:00-03:00 local happens twice
        assert_eq!(
            one_day(
                "Europe/Berlin",
                "2027-10-31",
                30,
                &[("sun", "01:00", "04:00")]
            ),
            [
                "2027-10-30T23:00:00Z", // 01:00 CEST
                "2027-10-30T23:30:00Z", // 01:30 CEST
                "2027-10-31T00:00:00Z", // 02:00 CEST, the first of the two
                "2027-10-31T00:30:00Z", // 02:30 CEST
                "2027-10-31T02:00:00Z", // 03:00 CET; 01:00-02:00 UTC (02:00-03:00 CET) stays empty
                "2027-10-31T02:30:00Z", // 03:30 CET
            ]
        );
    }

    #[test]
    fn new_york_spring_forward_skips_two_oclock() {
        // 2027-03-14 02:00 EST becomes 03:00 EDT
        assert_eq!(
            one_day(
                "America/New_York",
                "2027-03-14",
                60,
                &[("sun", "00:00", "04:00")]
            ),
            [
                "2027-03-14T05:00:00Z", // 00:00 EST
                "2027-03-14T06:00:00Z", // 01:00 EST
                "2027-03-14T07:00:00Z", // 03:00 EDT (02:00 does not exist)
            ]
        );
    }

    #[test]
    fn new_york_fall_back_takes_one_oclock_once() {
        // 2027-11-07 02:00 EDT becomes 01:00 EST: 01:00-02:00 local happens twice
        assert_eq!(
            one_day(
                "America/New_York",
                "2027-11-07",
                30,
                &[("sun", "00:00", "03:00")]
            ),
            [
                "2027-11-07T04:00:00Z", // 00:00 EDT
                "2027-11-07T04:30:00Z", // 00:30 EDT
                "2027-11-07T05:00:00Z", // 01:00 EDT, the first of the two
                "2027-11-07T05:30:00Z", // 01:30 EDT
                "2027-11-07T07:00:00Z", // 02:00 EST; 06:00-07:00 UTC (01:00-02:00 EST) stays empty
                "2027-11-07T07:30:00Z", // 02:30 EST
            ]
        );
    }

    #[test]
    fn a_nine_oclock_monday_slot_stays_nine_local_across_the_berlin_changes() {
        let availability = schedule(
            "Europe/Berlin",
            30,
            0,
            "2027-03-01",
            None,
            400,
            &[("mon", "09:00", "09:30")],
        );
        let windows = generate(&availability, utc("2027-03-01T00:00:00Z"));
        let all = starts(&windows);
        for expected in [
            "2027-03-22T08:00:00Z", // last Monday of CET
            "2027-03-29T07:00:00Z", // first Monday of CEST
            "2027-10-25T07:00:00Z", // last Monday of CEST
            "2027-11-01T08:00:00Z", // first Monday of CET again
        ] {
            assert!(all.iter().any(|s| s == expected), "{expected} missing");
        }
        let zone: chrono_tz::Tz = "Europe/Berlin".parse().unwrap();
        for window in &windows {
            let local = window.starts_at().with_timezone(&zone);
            assert_eq!(local.format("%a %H:%M").to_string(), "Mon 09:00");
        }
    }

    #[test]
    fn a_nine_oclock_monday_slot_stays_nine_local_across_the_new_york_changes() {
        let availability = schedule(
            "America/New_York",
            30,
            0,
            "2027-03-01",
            None,
            400,
            &[("mon", "09:00", "09:30")],
        );
        let all = starts(&generate(&availability, utc("2027-03-01T00:00:00Z")));
        for expected in [
            "2027-03-08T14:00:00Z", // EST
            "2027-03-15T13:00:00Z", // EDT
            "2027-11-01T13:00:00Z", // EDT
            "2027-11-08T14:00:00Z", // EST
        ] {
            assert!(all.iter().any(|s| s == expected), "{expected} missing");
        }
        // today is Sunday 2027-02-28 in New York: Mondays from 2027-03-01 to 2028-04-02
        assert_eq!(all.len(), 57);
    }

    #[test]
    fn whole_dst_weeks_have_the_same_local_times_every_day() {
        // the Berlin spring week: Mon 2027-03-22 .. Mon 2027-03-29, daily 08:00-10:00
        let availability = schedule(
            "Europe/Berlin",
            60,
            0,
            "2027-03-22",
            Some("2027-03-29"),
            400,
            &[
                ("mon", "08:00", "10:00"),
                ("tue", "08:00", "10:00"),
                ("wed", "08:00", "10:00"),
                ("thu", "08:00", "10:00"),
                ("fri", "08:00", "10:00"),
                ("sat", "08:00", "10:00"),
                ("sun", "08:00", "10:00"),
            ],
        );
        let windows = generate(&availability, utc("2027-03-20T00:00:00Z"));
        assert_eq!(windows.len(), 16);
        let sunday = starts(&windows[12..14]);
        assert_eq!(sunday, ["2027-03-28T06:00:00Z", "2027-03-28T07:00:00Z"]);
        let saturday = starts(&windows[10..12]);
        assert_eq!(saturday, ["2027-03-27T07:00:00Z", "2027-03-27T08:00:00Z"]);
    }

    #[test]
    fn a_slot_spanning_the_gap_keeps_its_length_and_the_next_overlapping_start_is_skipped() {
        // 90-minute slots from 01:45 CET: 01:45 CET lasts until 04:15 CEST; 03:15 CEST would
        // overlap it and is skipped; 04:45 CEST follows
        let got = one_day(
            "Europe/Berlin",
            "2027-03-28",
            90,
            &[("sun", "01:45", "06:15")],
        );
        assert_eq!(
            got,
            ["2027-03-28T00:45:00Z", "2027-03-28T02:45:00Z"],
            "{got:?}"
        );
    }

    #[test]
    fn the_horizon_counts_from_today_in_the_doctors_zone_and_past_slots_are_left_out() {
        let availability = schedule(
            "America/New_York",
            60,
            0,
            "2020-01-01",
            None,
            2,
            &[
                ("mon", "09:00", "12:00"),
                ("tue", "09:00", "12:00"),
                ("wed", "09:00", "12:00"),
            ],
        );
        // Tuesday 2027-01-05 03:00 UTC is still Monday 22:00 in New York: today = Monday
        let windows = generate(&availability, utc("2027-01-05T03:00:00Z"));
        assert_eq!(
            starts(&windows),
            [
                "2027-01-05T14:00:00Z",
                "2027-01-05T15:00:00Z",
                "2027-01-05T16:00:00Z"
            ],
            "Monday's slots are past; Wednesday is beyond a two-day horizon"
        );
        // Tuesday 10:00 in New York: today is Tuesday, so the horizon now reaches Wednesday,
        // and of Tuesday's slots only the one still to come is left
        let windows = generate(&availability, utc("2027-01-05T15:00:00Z"));
        assert_eq!(
            starts(&windows),
            [
                "2027-01-05T16:00:00Z",
                "2027-01-06T14:00:00Z",
                "2027-01-06T15:00:00Z",
                "2027-01-06T16:00:00Z"
            ]
        );
    }

    #[test]
    fn effective_dates_bound_the_days() {
        let availability = schedule(
            "UTC",
            60,
            0,
            "2027-01-05",
            Some("2027-01-06"),
            56,
            &[
                ("mon", "09:00", "10:00"),
                ("tue", "09:00", "10:00"),
                ("wed", "09:00", "10:00"),
                ("thu", "09:00", "10:00"),
            ],
        );
        let windows = generate(&availability, utc("2027-01-01T00:00:00Z"));
        assert_eq!(
            starts(&windows),
            ["2027-01-05T09:00:00Z", "2027-01-06T09:00:00Z"]
        );
        let ended = schedule(
            "UTC",
            60,
            0,
            "2026-01-01",
            Some("2026-06-01"),
            56,
            &[("mon", "09:00", "10:00")],
        );
        assert!(generate(&ended, utc("2027-01-01T00:00:00Z")).is_empty());
    }

    #[test]
    fn generated_slots_never_overlap_and_are_ordered() {
        for zone in [
            "Europe/Berlin",
            "America/New_York",
            "Australia/Lord_Howe",
            "UTC",
        ] {
            let availability = schedule(
                zone,
                25,
                5,
                "2027-01-01",
                None,
                400,
                &[
                    ("sun", "00:00", "06:00"),
                    ("sun", "06:00", "23:59"),
                    ("sat", "01:00", "03:30"),
                ],
            );
            let windows = generate(
                &availability,
                Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap(),
            );
            assert!(!windows.is_empty());
            for pair in windows.windows(2) {
                assert!(pair[0].ends_at() <= pair[1].starts_at(), "{zone}: {pair:?}");
            }
        }
    }
}
