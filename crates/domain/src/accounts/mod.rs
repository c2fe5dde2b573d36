//! Accounts an operator can run (issue 8): user administration (list, inspect, disable and
//! re-enable), own and doctor profiles, password changes, the session list, and the audit
//! trail of account events.
//!
//! Rules decided here; atomicity by the adapter: disabling an account revokes its sessions,
//! blocks a doctor's future free slots and writes the audit event in one transaction, and
//! the database refuses to disable the last active administrator (trigger
//! `users_last_active_admin`, migration `000004_accounts`) even when two administrators
//! disable each other at the same moment.

mod service;

use chrono::{DateTime, NaiveDate, Utc};

pub(crate) use service::bounded;
pub use service::{AccountError, AccountService, DoctorEditGrant};

use crate::appointment::Appointment;
use crate::ids::{AuditEventId, SessionId, UserId};
use crate::payment::Money;
use crate::user::{FullName, Phone, Role, Sex, UserProfile};

/// What happened to an account (the `action` of an account event).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AccountAction {
    /// A login succeeded; the subject is the user.
    LoginSucceeded,
    /// A login failed: unknown e-mail (no subject), wrong password or disabled account.
    LoginFailed,
    /// A session was ended by its user (logout).
    Logout,
    /// The user changed their password; their other sessions were revoked.
    PasswordChanged,
    /// A session was revoked from the session list.
    SessionRevoked,
    /// An administrator disabled the account.
    AccountDisabled,
    /// An administrator re-enabled the account.
    AccountEnabled,
    /// The user's own profile changed.
    ProfileUpdated,
    /// A doctor's public profile changed.
    DoctorProfileUpdated,
}

impl AccountAction {
    /// Every action, for documentation and tests.
    pub const ALL: [Self; 9] = [
        Self::LoginSucceeded,
        Self::LoginFailed,
        Self::Logout,
        Self::PasswordChanged,
        Self::SessionRevoked,
        Self::AccountDisabled,
        Self::AccountEnabled,
        Self::ProfileUpdated,
        Self::DoctorProfileUpdated,
    ];

    /// The stable wire and storage name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::LoginSucceeded => "login_succeeded",
            Self::LoginFailed => "login_failed",
            Self::Logout => "logout",
            Self::PasswordChanged => "password_changed",
            Self::SessionRevoked => "session_revoked",
            Self::AccountDisabled => "account_disabled",
            Self::AccountEnabled => "account_enabled",
            Self::ProfileUpdated => "profile_updated",
            Self::DoctorProfileUpdated => "doctor_profile_updated",
        }
    }
}

impl std::str::FromStr for AccountAction {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|action| action.as_str() == s)
            .ok_or_else(|| format!("unknown account action `{s}`"))
    }
}

/// An account event to store (in the transaction of the change it records).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAccountEvent {
    /// Who acted; `None` only for a failed login.
    pub actor: Option<(UserId, Role)>,
    /// Whose account; `None` for a failed login with an unknown e-mail.
    pub subject_id: Option<UserId>,
    /// What happened.
    pub action: AccountAction,
    /// The e-mail a login tried, lower-cased (failed logins only), so operators see
    /// password guessing even against unknown addresses.
    pub attempted_email: Option<String>,
    /// The request's id.
    pub request_id: Option<String>,
    /// The client's address.
    pub client_ip: Option<String>,
    /// A short machine detail: the changed fields, the revoked session, why a login failed.
    pub detail: Option<String>,
}

/// A stored account event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountEvent {
    /// Its id.
    pub id: AuditEventId,
    /// When.
    pub occurred_at: DateTime<Utc>,
    /// The event.
    pub event: NewAccountEvent,
}

/// Filters of the user list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserFilter {
    /// Only this role.
    pub role: Option<Role>,
    /// Part of the name or e-mail, case-insensitive.
    pub query: Option<String>,
}

/// Disabling or re-enabling an account, to run in one transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusChange {
    /// Whose account.
    pub user_id: UserId,
    /// The new state.
    pub disabled: bool,
    /// The time of the change: sessions are revoked at it, and a disabled doctor's free
    /// slots starting after it are blocked.
    pub now: DateTime<Utc>,
    /// The audit event.
    pub event: NewAccountEvent,
}

/// What disabling or re-enabling did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusOutcome {
    /// The account as it is now.
    pub user: UserProfile,
    /// Sessions revoked (disabling only).
    pub revoked_sessions: u64,
    /// Free future slots of a disabled doctor now `busy-unavailable`. Re-enabling does not
    /// re-open them: the doctor or an administrator publishes availability again.
    pub blocked_slots: u64,
    /// A disabled doctor's future appointments that are still booked or checked-in; they
    /// stay in place for the clinic to reschedule or cancel.
    pub open_appointments: Vec<Appointment>,
}

/// Changes to one's own profile; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProfileChanges {
    /// New display name.
    pub full_name: Option<FullName>,
    /// New phone (`Some(None)` clears it); patients only.
    pub phone: Option<Option<Phone>>,
    /// New date of birth; patients only.
    pub date_of_birth: Option<NaiveDate>,
    /// New administrative gender; patients only.
    pub sex: Option<Sex>,
}

impl ProfileChanges {
    /// The names of the fields that change, in wire spelling.
    #[must_use]
    pub fn fields(&self) -> Vec<&'static str> {
        let mut fields = Vec::new();
        if self.full_name.is_some() {
            fields.push("full_name");
        }
        if self.phone.is_some() {
            fields.push("phone");
        }
        if self.date_of_birth.is_some() {
            fields.push("date_of_birth");
        }
        if self.sex.is_some() {
            fields.push("sex");
        }
        fields
    }
}

/// A profile update to store with its audit event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileUpdate {
    /// Whose profile.
    pub user_id: UserId,
    /// The changes (already allowed for the user's role).
    pub changes: ProfileChanges,
    /// The audit event.
    pub event: NewAccountEvent,
}

/// Changes to a doctor's profile; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DoctorChanges {
    /// Specialty (1..=100 characters).
    pub specialty: Option<String>,
    /// Biography (`Some(None)` clears it).
    pub bio: Option<Option<String>>,
    /// Fee (administrators only).
    pub consultation_fee: Option<Money>,
    /// Licence number (administrators only).
    pub license_number: Option<String>,
}

impl DoctorChanges {
    /// The names of the fields that change, in wire spelling.
    #[must_use]
    pub fn fields(&self) -> Vec<&'static str> {
        let mut fields = Vec::new();
        if self.specialty.is_some() {
            fields.push("specialty");
        }
        if self.bio.is_some() {
            fields.push("bio");
        }
        if self.consultation_fee.is_some() {
            fields.push("consultation_fee");
        }
        if self.license_number.is_some() {
            fields.push("license_number");
        }
        fields
    }
}

/// A doctor profile update to store with its audit event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DoctorUpdate {
    /// The doctor.
    pub doctor_id: UserId,
    /// The changes (already allowed for the caller).
    pub changes: DoctorChanges,
    /// The audit event.
    pub event: NewAccountEvent,
}

/// A new password hash to store; every other session of the user is revoked with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordChange {
    /// Whose password.
    pub user_id: UserId,
    /// The new PHC hash.
    pub password_hash: String,
    /// The session the change came from, which stays alive.
    pub keep_session: Option<SessionId>,
    /// When; the other sessions are revoked at this time.
    pub now: DateTime<Utc>,
    /// The audit event.
    pub event: NewAccountEvent,
}

/// One of a user's sessions, for their session list (never the token or its hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// The session's id.
    pub id: SessionId,
    /// When it was opened (login).
    pub created_at: DateTime<Utc>,
    /// When it was last used.
    pub last_used_at: DateTime<Utc>,
    /// Its absolute expiry.
    pub expires_at: DateTime<Utc>,
    /// The client's address at login.
    pub client_ip: Option<String>,
    /// The client's user agent at login.
    pub user_agent: Option<String>,
}
