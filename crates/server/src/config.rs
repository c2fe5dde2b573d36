//! Configuration from the environment. Every variable has a default except `DATABASE_URL`;
//! an invalid value stops start-up with an error naming the variable. The table lives in
//! `docs/operations.md`.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::str::FromStr;
use std::time::Duration;

use chrono::TimeDelta;
use shms_domain::Policies;
use shms_domain::appointment::CancellationPolicy;
use shms_domain::auth::SessionPolicy;
use shms_domain::slot::HoldPolicy;
use shms_http::LoginLimits;

/// A configuration error, naming the variable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A required variable is missing.
    #[error("environment variable {0} is required")]
    Missing(&'static str),
    /// A variable has a value that does not parse.
    #[error("environment variable {name}={value:?} is invalid: expected {expected}")]
    Invalid {
        /// The variable.
        name: &'static str,
        /// Its value.
        value: String,
        /// What would have been valid.
        expected: &'static str,
    },
}

fn var<T: FromStr>(
    name: &'static str,
    default: T,
    expected: &'static str,
) -> Result<T, ConfigError> {
    match std::env::var(name) {
        Ok(value) if !value.trim().is_empty() => {
            value.trim().parse().map_err(|_| ConfigError::Invalid {
                name,
                value,
                expected,
            })
        }
        _ => Ok(default),
    }
}

fn positive(name: &'static str, default: u64, expected: &'static str) -> Result<u64, ConfigError> {
    let value = var(name, default, expected)?;
    if value == 0 {
        return Err(ConfigError::Invalid {
            name,
            value: "0".into(),
            expected,
        });
    }
    Ok(value)
}

fn millis(name: &'static str, default: u64) -> Result<Duration, ConfigError> {
    positive(name, default, "a positive number of milliseconds").map(Duration::from_millis)
}

fn seconds(name: &'static str, default: u64) -> Result<TimeDelta, ConfigError> {
    positive(name, default, "a positive number of seconds").map(delta)
}

fn per_minute(name: &'static str, default: u32) -> Result<NonZeroU32, ConfigError> {
    let expected = "a positive number of attempts per minute";
    let value = var(name, default, expected)?;
    NonZeroU32::new(value).ok_or(ConfigError::Invalid {
        name,
        value: value.to_string(),
        expected,
    })
}

fn delta(secs: u64) -> TimeDelta {
    TimeDelta::seconds(i64::try_from(secs).unwrap_or(i64::MAX / 1000))
}

/// Everything the server reads from its environment.
#[derive(Debug, Clone)]
pub struct Config {
    /// `DATABASE_URL`.
    pub database_url: String,
    /// `SHMS_BIND`, default 127.0.0.1:8080.
    pub bind: SocketAddr,
    /// `SHMS_DB_POOL_SIZE`, default 16.
    pub pool_size: usize,
    /// `SHMS_DB_ACQUIRE_TIMEOUT_MS`, default 2000.
    pub acquire_timeout: Duration,
    /// `SHMS_DB_STATEMENT_TIMEOUT_MS`, default 5000.
    pub statement_timeout: Duration,
    /// `SHMS_REQUEST_TIMEOUT_MS`, default 10000.
    pub request_timeout: Duration,
    /// `SHMS_HASH_CONCURRENCY`, default: the number of CPUs.
    pub hash_concurrency: usize,
    /// Session and cancellation policies.
    pub policies: Policies,
    /// `SHMS_ADMIN_EMAIL` and `SHMS_ADMIN_PASSWORD`, both or neither.
    pub bootstrap_admin: Option<(String, String)>,
    /// `SHMS_LOG_FORMAT=json` for JSON logs.
    pub json_logs: bool,
    /// `SHMS_CORS_ORIGINS`: comma-separated origins allowed from browsers (`*` for any).
    pub cors_origins: Vec<String>,
    /// `SHMS_LOGIN_PER_ACCOUNT_PER_MINUTE` (10) and `SHMS_LOGIN_PER_ADDRESS_PER_MINUTE` (60).
    pub login_limits: LoginLimits,
    /// `SHMS_HOLD_SWEEP_MS`, default 15000: how often lapsed holds are offered to the waitlist.
    pub hold_sweep_interval: Duration,
}

impl Config {
    /// Reads the environment.
    ///
    /// # Errors
    /// The first missing or invalid variable.
    pub fn from_env() -> Result<Self, ConfigError> {
        let database_url = std::env::var("DATABASE_URL")
            .ok()
            .filter(|url| !url.trim().is_empty())
            .ok_or(ConfigError::Missing("DATABASE_URL"))?;
        let cpus = std::thread::available_parallelism().map_or(2, usize::from);
        let pool_size = var(
            "SHMS_DB_POOL_SIZE",
            16_usize,
            "a pool size between 2 and 1000",
        )?;
        if !(2..=1000).contains(&pool_size) {
            return Err(ConfigError::Invalid {
                name: "SHMS_DB_POOL_SIZE",
                value: pool_size.to_string(),
                expected: "a pool size between 2 and 1000",
            });
        }
        let admin_email = std::env::var("SHMS_ADMIN_EMAIL")
            .ok()
            .filter(|v| !v.is_empty());
        let admin_password = std::env::var("SHMS_ADMIN_PASSWORD")
            .ok()
            .filter(|v| !v.is_empty());
        let bootstrap_admin = match (admin_email, admin_password) {
            (Some(email), Some(password)) => Some((email, password)),
            (None, None) => None,
            (Some(_), None) => return Err(ConfigError::Missing("SHMS_ADMIN_PASSWORD")),
            (None, Some(_)) => return Err(ConfigError::Missing("SHMS_ADMIN_EMAIL")),
        };
        let log_format: String = var("SHMS_LOG_FORMAT", "text".to_owned(), "text or json")?;
        if log_format != "text" && log_format != "json" {
            return Err(ConfigError::Invalid {
                name: "SHMS_LOG_FORMAT",
                value: log_format,
                expected: "text or json",
            });
        }
        Ok(Self {
            database_url,
            bind: var(
                "SHMS_BIND",
                SocketAddr::from(([127, 0, 0, 1], 8080)),
                "an address such as 127.0.0.1:8080",
            )?,
            pool_size,
            acquire_timeout: millis("SHMS_DB_ACQUIRE_TIMEOUT_MS", 2000)?,
            statement_timeout: millis("SHMS_DB_STATEMENT_TIMEOUT_MS", 5000)?,
            request_timeout: millis("SHMS_REQUEST_TIMEOUT_MS", 10_000)?,
            hash_concurrency: var(
                "SHMS_HASH_CONCURRENCY",
                cpus,
                "a number of concurrent password hashes",
            )?
            .max(1),
            policies: Policies {
                sessions: SessionPolicy {
                    idle_timeout: seconds("SHMS_SESSION_IDLE_TIMEOUT_SECS", 30 * 60)?,
                    absolute_lifetime: seconds("SHMS_SESSION_MAX_LIFETIME_SECS", 12 * 3600)?,
                },
                cancellation: CancellationPolicy {
                    patient_cutoff: delta(var(
                        "SHMS_CANCELLATION_CUTOFF_SECS",
                        24 * 3600,
                        "a number of seconds",
                    )?),
                },
                holds: HoldPolicy {
                    ttl: delta(var("SHMS_HOLD_TTL_SECS", 300, "a number of seconds")?.max(1)),
                },
            },
            bootstrap_admin,
            json_logs: log_format == "json",
            cors_origins: std::env::var("SHMS_CORS_ORIGINS")
                .unwrap_or_default()
                .split(',')
                .map(|origin| origin.trim().trim_end_matches('/').to_owned())
                .filter(|origin| !origin.is_empty())
                .collect(),
            login_limits: LoginLimits {
                per_account: per_minute("SHMS_LOGIN_PER_ACCOUNT_PER_MINUTE", 10)?,
                per_address: per_minute("SHMS_LOGIN_PER_ADDRESS_PER_MINUTE", 60)?,
            },
            hold_sweep_interval: millis("SHMS_HOLD_SWEEP_MS", 15_000)?
                .max(Duration::from_millis(10)),
        })
    }
}
