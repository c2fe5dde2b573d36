//! Login throttling: per account and per client address, so password guessing is slow
//! whether an attacker tries many passwords on one account or one password on many.
//! Limits are per process (GCRA, via `governor`); with several replicas each enforces its
//! own, which still bounds guessing to replicas × limit.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// Attempts allowed per minute.
#[derive(Debug, Clone, Copy)]
pub struct LoginLimits {
    /// Per account (e-mail), default 10.
    pub per_account: NonZeroU32,
    /// Per client address, default 60.
    pub per_address: NonZeroU32,
}

impl Default for LoginLimits {
    fn default() -> Self {
        Self {
            per_account: NonZeroU32::MIN.saturating_add(9),
            per_address: NonZeroU32::MIN.saturating_add(59),
        }
    }
}

/// The two keyed limiters.
pub struct LoginThrottle {
    per_account: DefaultKeyedRateLimiter<String>,
    per_address: DefaultKeyedRateLimiter<IpAddr>,
    checks: AtomicU64,
}

impl LoginThrottle {
    /// Limiters for these limits.
    #[must_use]
    pub fn new(limits: LoginLimits) -> Self {
        Self {
            per_account: RateLimiter::keyed(Quota::per_minute(limits.per_account)),
            per_address: RateLimiter::keyed(Quota::per_minute(limits.per_address)),
            checks: AtomicU64::new(0),
        }
    }

    /// Counts one attempt; `Err(wait)` when it is over a limit.
    ///
    /// # Errors
    /// How long to wait before the next attempt may pass.
    pub fn check(&self, account: &str, address: Option<IpAddr>) -> Result<(), Duration> {
        // forget idle keys now and then, so rotating keys cannot grow memory without bound
        if self.checks.fetch_add(1, Ordering::Relaxed) % 4096 == 4095 {
            self.per_account.retain_recent();
            self.per_address.retain_recent();
        }
        let now = DefaultClock::default().now();
        if let Some(address) = address {
            self.per_address
                .check_key(&address)
                .map_err(|denied| denied.wait_time_from(now))?;
        }
        self.per_account
            .check_key(&account.trim().to_lowercase())
            .map_err(|denied| denied.wait_time_from(now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_apply_per_account_and_per_address() {
        let limits = LoginLimits {
            per_account: NonZeroU32::MIN.saturating_add(1),
            per_address: NonZeroU32::MIN.saturating_add(3),
        };
        let throttle = LoginThrottle::new(limits);
        let home: IpAddr = [10, 0, 0, 1].into();
        assert!(throttle.check("ann@example.org", Some(home)).is_ok());
        assert!(throttle.check(" ANN@example.org", Some(home)).is_ok());
        let wait = throttle.check("ann@example.org", Some(home));
        assert!(
            wait.is_err_and(|d| d > Duration::ZERO),
            "the third attempt on one account waits"
        );
        assert!(
            throttle.check("bob@example.org", Some(home)).is_ok(),
            "other accounts are unaffected"
        );
        // the address has now made 4 attempts: a fifth on a fresh account waits too
        assert!(throttle.check("eve@example.org", Some(home)).is_err());
        assert!(
            throttle
                .check("eve@example.org", Some([10, 0, 0, 2].into()))
                .is_ok()
        );
    }
}
