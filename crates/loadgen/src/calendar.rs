//! The benchmark calendar of `sql/bench/generate.sql`, addressed by number: the ids are
//! computed here exactly as the generator's `bench_id(prefix, n)` makes them, so no lookup
//! query is needed before the load starts.

use chrono::{Days, NaiveDate};
use clap::Args;
use uuid::Uuid;

const DOCTOR: u128 = 0xd0c7_0000;
const SLOT: u128 = 0x5107_0000;

/// Slots per doctor and weekday (09:00-17:00, 30 minutes each).
pub const SLOTS_PER_DAY: u64 = 16;

/// `<prefix>-0000-4000-8000-<n as 12 hex digits>`.
fn bench_id(prefix: u128, n: u64) -> Uuid {
    Uuid::from_u128((prefix << 96) | (0x4000 << 64) | (0x8000 << 48) | u128::from(n))
}

/// The shape of the generated calendar (the generator's psql variables).
#[derive(Debug, Clone, Args)]
pub struct Calendar {
    /// Doctors generated.
    #[arg(long, default_value_t = 200)]
    pub doctors: u64,
    /// Patients generated.
    #[arg(long, default_value_t = 10_000)]
    pub patients: u64,
    /// Weeks of weekday slots generated.
    #[arg(long, default_value_t = 8)]
    pub weeks: u64,
    /// The calendar's first Monday (the generator prints it as first_slot).
    #[arg(long)]
    pub first_day: NaiveDate,
    /// The password of every generated account.
    #[arg(long, env = "SHMS_BENCH_PASSWORD", hide_env_values = true)]
    pub password: String,
}

impl Calendar {
    /// Slots per doctor.
    pub fn times(&self) -> u64 {
        self.weeks * 5 * SLOTS_PER_DAY
    }

    /// Weekdays in the calendar.
    pub fn days(&self) -> u64 {
        self.weeks * 5
    }

    /// Slot number `n` (1-based) is doctor `d`'s slot at position `t` in time.
    pub fn slot(&self, t: u64, doctor: u64) -> Uuid {
        bench_id(SLOT, t * self.doctors + doctor + 1)
    }

    pub fn doctor(&self, d: u64) -> Uuid {
        bench_id(DOCTOR, d)
    }

    pub fn patient_email(&self, p: u64) -> String {
        format!("patient{p}@bench.shms.test")
    }

    /// The calendar's weekday number `day` (0-based), as a date.
    pub fn day(&self, day: u64) -> NaiveDate {
        let offset = (day / 5) * 7 + day % 5;
        self.first_day
            .checked_add_days(Days::new(offset))
            .unwrap_or(self.first_day)
    }
}

/// A small, fast, seedable generator (SplitMix64): load patterns need spread, not secrecy.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed ^ 0x9e37_79b9_7f4a_7c15)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0; modulo bias is irrelevant at these sizes).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_match_the_generator() {
        assert_eq!(
            bench_id(SLOT, 1).to_string(),
            "51070000-0000-4000-8000-000000000001"
        );
        assert_eq!(
            bench_id(DOCTOR, 199).to_string(),
            "d0c70000-0000-4000-8000-0000000000c7"
        );
    }
}
