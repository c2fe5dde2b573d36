//! The authentication use cases.

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};

use super::token::{SessionToken, hash_token};
use crate::accounts::{AccountAction, NewAccountEvent};
use crate::actor::Actor;
use crate::clock::Clock;
use crate::error::{Conflict, StoreError};
use crate::ids::{SessionId, UserId};
use crate::ports::{NewSession, PasswordHasher, SessionRepository, UserRepository};
use crate::services::{Adapters, Ports};
use crate::user::{
    Email, FullName, NewPatient, NewUser, Password, PatientProfile, Phone, Role, Sex, User,
    UserProfile,
};

/// How long sessions live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionPolicy {
    /// A session unused this long is dead (default 30 minutes).
    pub idle_timeout: TimeDelta,
    /// A session is dead this long after login, used or not (default 12 hours).
    pub absolute_lifetime: TimeDelta,
}

impl Default for SessionPolicy {
    fn default() -> Self {
        Self {
            idle_timeout: TimeDelta::minutes(30),
            absolute_lifetime: TimeDelta::hours(12),
        }
    }
}

/// A validated self-registration.
#[derive(Debug, Clone)]
pub struct RegisterPatient {
    /// Login e-mail.
    pub email: Email,
    /// Password meeting the policy.
    pub password: Password,
    /// Display name.
    pub full_name: FullName,
    /// Date of birth (already checked for plausibility).
    pub date_of_birth: NaiveDate,
    /// Administrative gender.
    pub sex: Sex,
    /// Optional phone.
    pub phone: Option<Phone>,
}

/// Where a login comes from, for the session list and the audit trail.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    /// Client address.
    pub ip: Option<String>,
    /// Client user agent.
    pub user_agent: Option<String>,
    /// The request's id.
    pub request_id: Option<String>,
}

impl ClientInfo {
    fn event(
        &self,
        actor: Option<(UserId, Role)>,
        subject_id: Option<UserId>,
        action: AccountAction,
        detail: Option<String>,
    ) -> NewAccountEvent {
        use crate::accounts::bounded;
        NewAccountEvent {
            actor,
            subject_id,
            action,
            attempted_email: None,
            request_id: bounded(self.request_id.as_deref(), 200),
            client_ip: bounded(self.ip.as_deref(), 64),
            detail,
        }
    }
}

/// A successful login.
#[derive(Debug, Clone)]
pub struct LoginSession {
    /// The bearer token, shown once.
    pub token: SessionToken,
    /// Absolute expiry of the session.
    pub expires_at: DateTime<Utc>,
    /// Who logged in.
    pub user: User,
}

/// Why an authentication operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Unknown e-mail, wrong password or disabled account — deliberately indistinguishable.
    #[error("invalid e-mail or password")]
    InvalidCredentials,
    /// No valid session behind the token.
    #[error("authentication required")]
    Unauthenticated,
    /// The e-mail is in use.
    #[error("an account with this e-mail already exists")]
    EmailTaken,
    /// The bootstrap admin e-mail belongs to a non-admin account.
    #[error("the e-mail belongs to an existing {0} account")]
    NotAnAdmin(Role),
    /// Storage or hashing failure.
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for AuthError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Conflict(Conflict::EmailTaken) => Self::EmailTaken,
            other => Self::Store(other),
        }
    }
}

/// Registration, login, logout and token checks.
pub struct AuthService<P: Ports> {
    adapters: Adapters<P>,
    policy: SessionPolicy,
}

impl<P: Ports> AuthService<P> {
    /// A service over the given adapters.
    #[must_use]
    pub fn new(adapters: Adapters<P>, policy: SessionPolicy) -> Self {
        Self { adapters, policy }
    }

    /// The session lifetimes in force.
    #[must_use]
    pub fn policy(&self) -> SessionPolicy {
        self.policy
    }

    /// Creates a patient account with its profile.
    ///
    /// # Errors
    /// `EmailTaken`.
    pub async fn register(&self, request: RegisterPatient) -> Result<UserProfile, AuthError> {
        let password_hash = self
            .adapters
            .hasher
            .hash(request.password.expose().to_owned())
            .await?;
        let patient = NewPatient {
            user: NewUser {
                id: UserId::new(),
                email: request.email,
                password_hash,
                full_name: request.full_name,
                role: Role::Patient,
            },
            profile: PatientProfile {
                date_of_birth: request.date_of_birth,
                sex: request.sex,
                phone: request.phone.map(|phone| phone.as_str().to_owned()),
            },
        };
        Ok(self.adapters.users.create_patient(patient).await?)
    }

    /// Checks the password and opens a session. Unknown e-mail, wrong password and disabled
    /// account all answer `InvalidCredentials` after the same hashing work. Every attempt is
    /// an account event: a failure records the attempted e-mail (lower-cased) and, when the
    /// account exists, whose it is. A hash made with older parameters is replaced after a
    /// successful check (best effort: a failure to store it does not fail the login).
    ///
    /// # Errors
    /// `InvalidCredentials`.
    pub async fn login(
        &self,
        email: &str,
        password: String,
        client: ClientInfo,
    ) -> Result<LoginSession, AuthError> {
        let parsed = Email::parse(email);
        let credentials = match &parsed {
            Ok(email) => self.adapters.users.find_credentials(email).await?,
            Err(_) => None,
        };
        let hash = credentials
            .as_ref()
            .map(|found| found.password_hash.clone());
        let rehash = hash
            .as_deref()
            .is_some_and(|hash| self.adapters.hasher.needs_rehash(hash))
            .then(|| password.clone());
        let matches = self.adapters.hasher.verify(password, hash).await?;
        let (user, stored_hash) = match credentials {
            Some(found) if matches && !found.user.disabled => (found.user, found.password_hash),
            other => {
                let (subject, why) = match other {
                    None => (None, "unknown_account"),
                    Some(found) if found.user.disabled => (Some(found.user.id), "account_disabled"),
                    Some(found) => (Some(found.user.id), "wrong_password"),
                };
                let mut event =
                    client.event(None, subject, AccountAction::LoginFailed, Some(why.into()));
                event.attempted_email = Some(match parsed {
                    Ok(email) => email.as_str().to_owned(),
                    Err(_) => email.trim().to_lowercase().chars().take(254).collect(),
                });
                self.adapters.users.record_event(event).await?;
                return Err(AuthError::InvalidCredentials);
            }
        };
        let token = SessionToken::generate()?;
        let now = self.adapters.clock.now();
        let expires_at = now + self.policy.absolute_lifetime;
        let session_id = SessionId::new();
        let event = client.event(
            Some((user.id, user.role)),
            Some(user.id),
            AccountAction::LoginSucceeded,
            Some(format!("session {session_id}")),
        );
        let session = NewSession {
            id: session_id,
            user_id: user.id,
            token_hash: token.hash(),
            expires_at,
            client_ip: client.ip,
            user_agent: client.user_agent,
        };
        self.adapters.sessions.create(session).await?;
        self.adapters.users.record_event(event).await?;
        if let Some(password) = rehash {
            // best effort: the old hash still verifies, so the next login tries again
            if let Ok(new_hash) = self.adapters.hasher.hash(password).await {
                let _replaced = self
                    .adapters
                    .users
                    .rehash_password(user.id, stored_hash, new_hash)
                    .await;
            }
        }
        Ok(LoginSession {
            token,
            expires_at,
            user,
        })
    }

    /// Resolves a bearer token to its caller and records the use (sliding idle timeout).
    ///
    /// # Errors
    /// `Unauthenticated` for unknown, revoked, expired or idle tokens and disabled users.
    pub async fn authenticate(&self, token: &str) -> Result<Actor, AuthError> {
        if token.is_empty() || token.len() > 256 {
            return Err(AuthError::Unauthenticated);
        }
        let now = self.adapters.clock.now();
        let idle_since = now - self.policy.idle_timeout;
        self.adapters
            .sessions
            .touch(hash_token(token), now, idle_since)
            .await?
            .ok_or(AuthError::Unauthenticated)
    }

    /// Revokes the caller's session, with its audit event.
    ///
    /// # Errors
    /// Storage failures only.
    pub async fn logout(&self, actor: &Actor, client: &ClientInfo) -> Result<(), AuthError> {
        if let Some(session) = actor.session_id {
            let event = client.event(
                Some((actor.user_id, actor.role)),
                Some(actor.user_id),
                AccountAction::Logout,
                Some(format!("session {session}")),
            );
            let now = self.adapters.clock.now();
            match self
                .adapters
                .sessions
                .revoke_own(actor.user_id, session, now, event)
                .await
            {
                // revoked concurrently (the session list, a password change): logged out
                Ok(()) | Err(StoreError::NotFound) => {}
                Err(other) => return Err(other.into()),
            }
        }
        Ok(())
    }

    /// The caller's account and profile.
    ///
    /// # Errors
    /// `Unauthenticated` if the account vanished.
    pub async fn me(&self, actor: &Actor) -> Result<UserProfile, AuthError> {
        self.adapters
            .users
            .profile(actor.user_id)
            .await
            .map_err(|error| match error {
                StoreError::NotFound => AuthError::Unauthenticated,
                other => other.into(),
            })
    }

    /// Makes sure an admin account with this e-mail exists; returns it and whether it was
    /// created. An existing admin keeps its password (bootstrap never overwrites).
    ///
    /// # Errors
    /// `NotAnAdmin` when the e-mail belongs to a patient or doctor.
    pub async fn ensure_admin(
        &self,
        email: Email,
        password: Password,
        full_name: FullName,
    ) -> Result<(User, bool), AuthError> {
        if let Some(existing) = self.adapters.users.find_credentials(&email).await? {
            return match existing.user.role {
                Role::Admin => Ok((existing.user, false)),
                other => Err(AuthError::NotAnAdmin(other)),
            };
        }
        let password_hash = self
            .adapters
            .hasher
            .hash(password.expose().to_owned())
            .await?;
        let user = NewUser {
            id: UserId::new(),
            email,
            password_hash,
            full_name,
            role: Role::Admin,
        };
        Ok((self.adapters.users.create_user(user).await?.user, true))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{Mocks, block_on, now};
    use crate::user::Credentials;

    fn user(role: Role, disabled: bool) -> User {
        User {
            id: UserId::new(),
            email: "ann@example.org".into(),
            role,
            full_name: "Ann".into(),
            disabled,
            created_at: now(),
        }
    }

    fn with_account(mocks: &mut Mocks, account: Option<User>) {
        mocks.users.expect_find_credentials().returning(move |_| {
            let found = account.clone().map(|user| Credentials {
                user,
                password_hash: "$argon2id$stored".into(),
            });
            Box::pin(async move { Ok(found) })
        });
    }

    #[test]
    fn unknown_email_and_wrong_password_answer_alike_after_hashing() {
        for (account, password_ok) in [
            (None, false),
            (Some(user(Role::Patient, false)), false),
            (Some(user(Role::Patient, true)), true),
        ] {
            let mut mocks = Mocks::at(now());
            let known = account.is_some();
            with_account(&mut mocks, account);
            mocks.hasher.expect_needs_rehash().return_const(false);
            // every failure is audited with the attempted e-mail, lower-cased
            mocks
                .users
                .expect_record_event()
                .withf(move |event| {
                    event.action == AccountAction::LoginFailed
                        && event.actor.is_none()
                        && event.subject_id.is_some() == known
                        && event.attempted_email.as_deref() == Some("ann@example.org")
                })
                .times(1)
                .returning(|_| Box::pin(async { Ok(()) }));
            // the hash is verified in every case, against the stored hash or none at all
            mocks
                .hasher
                .expect_verify()
                .withf(move |_, hash| hash.is_some() == known)
                .times(1)
                .returning(move |_, _| Box::pin(async move { Ok(password_ok) }));
            let service = AuthService::new(mocks.build(), SessionPolicy::default());
            let result =
                block_on(service.login("Ann@example.org", "guess".into(), ClientInfo::default()));
            assert!(matches!(result, Err(AuthError::InvalidCredentials)));
        }
    }

    #[test]
    fn login_stores_only_the_token_hash_with_absolute_expiry() {
        let account = user(Role::Doctor, false);
        let user_id = account.id;
        let mut mocks = Mocks::at(now());
        with_account(&mut mocks, Some(account));
        mocks.hasher.expect_needs_rehash().return_const(false);
        mocks
            .hasher
            .expect_verify()
            .returning(|_, _| Box::pin(async { Ok(true) }));
        mocks
            .users
            .expect_record_event()
            .withf(move |event| {
                event.action == AccountAction::LoginSucceeded && event.subject_id == Some(user_id)
            })
            .times(1)
            .returning(|_| Box::pin(async { Ok(()) }));
        let stored = std::sync::Arc::new(std::sync::Mutex::new(None));
        let sink = std::sync::Arc::clone(&stored);
        mocks
            .sessions
            .expect_create()
            .times(1)
            .returning(move |session| {
                if let Ok(mut slot) = sink.lock() {
                    *slot = Some(session);
                }
                Box::pin(async { Ok(()) })
            });
        let policy = SessionPolicy::default();
        let service = AuthService::new(mocks.build(), policy);
        let login =
            block_on(service.login(" Ann@Example.org", "right".into(), ClientInfo::default()));
        let login = login.map_err(|e| e.to_string());
        let session = stored.lock().map(|s| s.clone()).ok().flatten();
        match (login, session) {
            (Ok(login), Some(session)) => {
                assert_eq!(session.user_id, user_id);
                assert_eq!(session.token_hash, login.token.hash());
                assert_eq!(login.expires_at, now() + policy.absolute_lifetime);
                assert_eq!(session.expires_at, login.expires_at);
            }
            other => panic!("login failed: {other:?}"),
        }
    }

    #[test]
    fn a_hash_with_old_parameters_is_replaced_after_a_successful_login_only() {
        for password_ok in [true, false] {
            let account = user(Role::Patient, false);
            let user_id = account.id;
            let mut mocks = Mocks::at(now());
            with_account(&mut mocks, Some(account));
            mocks
                .hasher
                .expect_needs_rehash()
                .withf(|hash| hash == "$argon2id$stored")
                .return_const(true);
            mocks
                .hasher
                .expect_verify()
                .returning(move |_, _| Box::pin(async move { Ok(password_ok) }));
            mocks
                .users
                .expect_record_event()
                .returning(|_| Box::pin(async { Ok(()) }));
            if password_ok {
                mocks
                    .sessions
                    .expect_create()
                    .returning(|_| Box::pin(async { Ok(()) }));
                mocks
                    .hasher
                    .expect_hash()
                    .withf(|password| password == "right")
                    .times(1)
                    .returning(|_| Box::pin(async { Ok("$argon2id$current".into()) }));
                mocks
                    .users
                    .expect_rehash_password()
                    .withf(move |id, old, new| {
                        *id == user_id && old == "$argon2id$stored" && new == "$argon2id$current"
                    })
                    .times(1)
                    .returning(|_, _, _| Box::pin(async { Ok(true) }));
            }
            let service = AccountlessAuth::new(mocks.build(), SessionPolicy::default());
            let result =
                block_on(service.login("ann@example.org", "right".into(), ClientInfo::default()));
            assert_eq!(result.is_ok(), password_ok);
        }
    }

    type AccountlessAuth = AuthService<crate::test_support::MockPorts>;

    #[test]
    fn authenticate_uses_the_idle_window_and_hash() {
        let mut mocks = Mocks::at(now());
        let policy = SessionPolicy {
            idle_timeout: TimeDelta::minutes(10),
            absolute_lifetime: TimeDelta::hours(1),
        };
        let expected_hash = hash_token("abc");
        mocks
            .sessions
            .expect_touch()
            .withf(move |hash, at, idle_since| {
                *hash == expected_hash
                    && *at == now()
                    && *idle_since == now() - TimeDelta::minutes(10)
            })
            .returning(|_, _, _| Box::pin(async { Ok(None) }));
        let service = AuthService::new(mocks.build(), policy);
        assert!(matches!(
            block_on(service.authenticate("abc")),
            Err(AuthError::Unauthenticated)
        ));
        assert!(matches!(
            block_on(service.authenticate("")),
            Err(AuthError::Unauthenticated)
        ));
    }

    #[test]
    fn admin_bootstrap_is_idempotent_and_refuses_other_roles() {
        let email = || Email::parse("root@example.org").map_err(|e| e.to_string());
        let password = || Password::new("long enough secret", &[]).map_err(|e| e.to_string());
        let name = || FullName::parse("Root").map_err(|e| e.to_string());
        let (Ok(_), Ok(_), Ok(_)) = (email(), password(), name()) else {
            panic!("fixtures")
        };
        for (existing, expected) in [
            (Some(Role::Admin), Some(false)),
            (Some(Role::Patient), None),
            (None, Some(true)),
        ] {
            let mut mocks = Mocks::at(now());
            with_account(&mut mocks, existing.map(|role| user(role, false)));
            if existing.is_none() {
                mocks
                    .hasher
                    .expect_hash()
                    .returning(|_| Box::pin(async { Ok("$argon2id$new".into()) }));
                mocks
                    .users
                    .expect_create_user()
                    .withf(|u| u.role == Role::Admin && u.password_hash == "$argon2id$new")
                    .times(1)
                    .returning(|u| {
                        let profile = UserProfile {
                            user: User {
                                id: u.id,
                                email: u.email.as_str().into(),
                                role: u.role,
                                full_name: "Root".into(),
                                disabled: false,
                                created_at: now(),
                            },
                            patient: None,
                            doctor: None,
                        };
                        Box::pin(async move { Ok(profile) })
                    });
            }
            let service = AuthService::new(mocks.build(), SessionPolicy::default());
            let (Ok(e), Ok(p), Ok(n)) = (email(), password(), name()) else {
                panic!("fixtures")
            };
            let result = block_on(service.ensure_admin(e, p, n));
            match expected {
                Some(created) => assert_eq!(
                    result
                        .map(|(user, new)| (user.role, new))
                        .map_err(|e| e.to_string()),
                    Ok((Role::Admin, created))
                ),
                None => assert!(matches!(result, Err(AuthError::NotAnAdmin(Role::Patient)))),
            }
        }
    }
}
