//! The account use cases. Authorization is decided before the request body is looked at
//! (DESIGN §6): the routes that take a body call an `authorize_*` method first.
//!
//! Visibility (DESIGN §5): accounts are visible to administrators only, so another user's
//! account is 404 to a patient or doctor, and one's own account through an administrator
//! route is 403 (it is visible through `/me`). Doctor profiles are public, so editing
//! another doctor's profile is 403.

use super::{
    AccountAction, AccountEvent, DoctorChanges, DoctorUpdate, NewAccountEvent, PasswordChange,
    ProfileChanges, ProfileUpdate, SessionInfo, StatusChange, StatusOutcome, UserFilter,
};
use crate::actor::Actor;
use crate::clock::Clock;
use crate::doctor::Doctor;
use crate::error::{Conflict, StoreError};
use crate::ids::{SessionId, UserId};
use crate::page::{Page, PageRequest};
use crate::ports::{DoctorRepository, PasswordHasher, SessionRepository, UserRepository};
use crate::records::RequestOrigin;
use crate::services::{Adapters, Ports};
use crate::user::{Password, Role, User, UserProfile};
use crate::validation::ValidationErrors;

/// Longest request id kept in an account event (the client may choose it).
const MAX_REQUEST_ID_CHARS: usize = 200;
/// Longest client address kept.
const MAX_CLIENT_IP_CHARS: usize = 64;

/// Why an account operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// No such account (or one the caller may not see).
    #[error("not found")]
    NotFound,
    /// The caller sees the object but may not do this.
    #[error("{0}")]
    Forbidden(&'static str),
    /// The request is invalid, or changes a field the caller may not change.
    #[error("invalid request: {0}")]
    Validation(ValidationErrors),
    /// The current password given to change it is wrong.
    #[error("the current password is not correct")]
    WrongPassword,
    /// Disabling would leave no active administrator.
    #[error("the last active administrator cannot be disabled")]
    LastAdmin,
    /// Another store conflict (a licence number in use).
    #[error(transparent)]
    Conflict(Conflict),
    /// Storage failure.
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for AccountError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound => Self::NotFound,
            StoreError::Conflict(Conflict::LastAdmin) => Self::LastAdmin,
            StoreError::Conflict(conflict) => Self::Conflict(conflict),
            other => Self::Store(other),
        }
    }
}

/// Permission to edit one doctor's profile; only `authorize_doctor_edit` makes one.
#[derive(Debug)]
pub struct DoctorEditGrant {
    actor: Actor,
    doctor_id: UserId,
}

/// Builds the audit event of an action of `actor` on `subject`.
pub(crate) fn account_event(
    actor: &Actor,
    origin: &RequestOrigin,
    subject: UserId,
    action: AccountAction,
    detail: Option<String>,
) -> NewAccountEvent {
    NewAccountEvent {
        actor: Some((actor.user_id, actor.role)),
        subject_id: Some(subject),
        action,
        attempted_email: None,
        request_id: bounded(origin.request_id.as_deref(), MAX_REQUEST_ID_CHARS),
        client_ip: bounded(origin.client_ip.as_deref(), MAX_CLIENT_IP_CHARS),
        detail,
    }
}

/// Trims a client-supplied value and caps its length; blank is `None`.
pub(crate) fn bounded(value: Option<&str>, max_chars: usize) -> Option<String> {
    value
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(|v| v.chars().take(max_chars).collect())
}

/// The user words a new password must not be built from.
pub(crate) fn password_inputs(user: &User) -> [&str; 2] {
    [user.email.as_str(), user.full_name.as_str()]
}

/// Administration, profiles, passwords and sessions.
pub struct AccountService<P: Ports> {
    adapters: Adapters<P>,
}

impl<P: Ports> AccountService<P> {
    /// A service over the given adapters.
    #[must_use]
    pub fn new(adapters: Adapters<P>) -> Self {
        Self { adapters }
    }

    /// Decides a call to an administrator route about `target` (or the collection): admins
    /// pass; anyone else gets 403 for the collection or their own account, 404 for another
    /// account (whose existence is not revealed).
    ///
    /// # Errors
    /// `Forbidden`, `NotFound`.
    pub fn authorize_admin(actor: &Actor, target: Option<UserId>) -> Result<(), AccountError> {
        match target {
            _ if actor.is_admin() => Ok(()),
            Some(user) if !actor.is(user) => Err(AccountError::NotFound),
            _ => Err(AccountError::Forbidden(
                "only administrators may manage accounts",
            )),
        }
    }

    /// Accounts by name, filtered by role and a name or e-mail fragment (administrators).
    ///
    /// # Errors
    /// `Forbidden` for non-admins.
    pub async fn list_users(
        &self,
        actor: &Actor,
        filter: UserFilter,
        page: PageRequest,
    ) -> Result<Page<User>, AccountError> {
        Self::authorize_admin(actor, None)?;
        Ok(self.adapters.users.list(filter, page).await?)
    }

    /// One account with its profile (administrators).
    ///
    /// # Errors
    /// `NotFound`; `Forbidden` for a non-admin asking about themself.
    pub async fn user(&self, actor: &Actor, id: UserId) -> Result<UserProfile, AccountError> {
        Self::authorize_admin(actor, Some(id))?;
        Ok(self.adapters.users.profile(id).await?)
    }

    /// Disables or re-enables an account (administrators). Disabling revokes every session
    /// at once; for a doctor it blocks their future free slots and lists the appointments
    /// still booked with them. Re-enabling re-opens no slot.
    ///
    /// # Errors
    /// `NotFound`; `Forbidden`; `LastAdmin` when this would leave no active administrator.
    pub async fn set_disabled(
        &self,
        actor: &Actor,
        origin: &RequestOrigin,
        id: UserId,
        disabled: bool,
    ) -> Result<StatusOutcome, AccountError> {
        Self::authorize_admin(actor, Some(id))?;
        let action = if disabled {
            AccountAction::AccountDisabled
        } else {
            AccountAction::AccountEnabled
        };
        let change = StatusChange {
            user_id: id,
            disabled,
            now: self.adapters.clock.now(),
            event: account_event(actor, origin, id, action, None),
        };
        Ok(self.adapters.users.set_status(change).await?)
    }

    /// The account events of a user, as subject or actor, newest first (administrators).
    ///
    /// # Errors
    /// `NotFound`; `Forbidden`.
    pub async fn events(
        &self,
        actor: &Actor,
        id: UserId,
        page: PageRequest,
    ) -> Result<Page<AccountEvent>, AccountError> {
        Self::authorize_admin(actor, Some(id))?;
        // 404 for an unknown user rather than an empty list
        self.adapters.users.profile(id).await?;
        Ok(self.adapters.users.events(id, page).await?)
    }

    /// Changes the caller's own profile. Everyone may change their name; phone, date of
    /// birth and sex belong to the patient profile (DESIGN §3) and are refused, naming the
    /// field, for doctors and administrators.
    ///
    /// # Errors
    /// `Validation` for nothing to change or a field the caller's role does not have;
    /// `NotFound` if the account vanished.
    pub async fn update_me(
        &self,
        actor: &Actor,
        origin: &RequestOrigin,
        changes: ProfileChanges,
    ) -> Result<UserProfile, AccountError> {
        let fields = changes.fields();
        let mut errors = ValidationErrors::new();
        if fields.is_empty() {
            errors.push("body", "names no field to change");
        }
        if actor.role != Role::Patient {
            for field in ["phone", "date_of_birth", "sex"] {
                if fields.contains(&field) {
                    errors.push(field, "only patients have this profile field");
                }
            }
        }
        errors.into_result().map_err(AccountError::Validation)?;
        let update = ProfileUpdate {
            user_id: actor.user_id,
            event: account_event(
                actor,
                origin,
                actor.user_id,
                AccountAction::ProfileUpdated,
                Some(fields.join(",")),
            ),
            changes,
        };
        Ok(self.adapters.users.update_profile(update).await?)
    }

    /// Decides an edit of a doctor's profile: administrators any, a doctor their own.
    ///
    /// # Errors
    /// `NotFound` when there is no such doctor; `Forbidden` for anyone else.
    pub async fn authorize_doctor_edit(
        &self,
        actor: &Actor,
        id: UserId,
    ) -> Result<DoctorEditGrant, AccountError> {
        self.adapters.doctors.get(id).await?;
        if actor.is_admin() || (actor.role == Role::Doctor && actor.is(id)) {
            Ok(DoctorEditGrant {
                actor: *actor,
                doctor_id: id,
            })
        } else {
            Err(AccountError::Forbidden(
                "only the doctor themself or an administrator may edit this profile",
            ))
        }
    }

    /// Changes a doctor's profile. The doctor may change specialty and biography; the fee
    /// and licence number only administrators (refused naming the field otherwise).
    ///
    /// # Errors
    /// `Validation`; `Conflict(LicenseTaken)`; `NotFound`.
    pub async fn update_doctor(
        &self,
        grant: DoctorEditGrant,
        origin: &RequestOrigin,
        changes: DoctorChanges,
    ) -> Result<Doctor, AccountError> {
        let fields = changes.fields();
        let mut errors = ValidationErrors::new();
        if fields.is_empty() {
            errors.push("body", "names no field to change");
        }
        if !grant.actor.is_admin() {
            for field in ["consultation_fee", "license_number"] {
                if fields.contains(&field) {
                    errors.push(field, "only administrators may change this field");
                }
            }
        }
        errors.into_result().map_err(AccountError::Validation)?;
        let update = DoctorUpdate {
            doctor_id: grant.doctor_id,
            event: account_event(
                &grant.actor,
                origin,
                grant.doctor_id,
                AccountAction::DoctorProfileUpdated,
                Some(fields.join(",")),
            ),
            changes,
        };
        Ok(self.adapters.doctors.update(update).await?)
    }

    /// Changes the caller's password after checking the current one, and revokes every
    /// other session of theirs (the one the request came in on stays). Returns how many
    /// sessions were revoked.
    ///
    /// # Errors
    /// `Validation` naming `new_password` when it breaks the policy or equals the current
    /// one; `WrongPassword`; `NotFound` if the account vanished.
    pub async fn change_password(
        &self,
        actor: &Actor,
        origin: &RequestOrigin,
        current_password: String,
        new_password: &str,
    ) -> Result<u64, AccountError> {
        let credentials = self
            .adapters
            .users
            .credentials_of(actor.user_id)
            .await?
            .ok_or(AccountError::NotFound)?;
        let new = Password::new(new_password, &password_inputs(&credentials.user)).map_err(
            |message| AccountError::Validation(ValidationErrors::single("new_password", message)),
        )?;
        let same = current_password == new.expose();
        let matches = self
            .adapters
            .hasher
            .verify(current_password, Some(credentials.password_hash))
            .await?;
        if !matches {
            return Err(AccountError::WrongPassword);
        }
        if same {
            return Err(AccountError::Validation(ValidationErrors::single(
                "new_password",
                "must differ from the current password",
            )));
        }
        let password_hash = self.adapters.hasher.hash(new.expose().to_owned()).await?;
        let change = PasswordChange {
            user_id: actor.user_id,
            password_hash,
            keep_session: actor.session_id,
            now: self.adapters.clock.now(),
            event: account_event(
                actor,
                origin,
                actor.user_id,
                AccountAction::PasswordChanged,
                None,
            ),
        };
        Ok(self.adapters.users.change_password(change).await?)
    }

    /// The caller's live sessions (not revoked, not expired), newest first.
    ///
    /// # Errors
    /// Storage failures only.
    pub async fn sessions(
        &self,
        actor: &Actor,
        page: PageRequest,
    ) -> Result<Page<SessionInfo>, AccountError> {
        let now = self.adapters.clock.now();
        Ok(self
            .adapters
            .sessions
            .list_live(actor.user_id, now, page)
            .await?)
    }

    /// Revokes one of the caller's sessions (the current one too: that is a logout).
    ///
    /// # Errors
    /// `NotFound` when the caller has no such session.
    pub async fn revoke_session(
        &self,
        actor: &Actor,
        origin: &RequestOrigin,
        id: SessionId,
    ) -> Result<(), AccountError> {
        let event = account_event(
            actor,
            origin,
            actor.user_id,
            AccountAction::SessionRevoked,
            Some(format!("session {id}")),
        );
        let now = self.adapters.clock.now();
        Ok(self
            .adapters
            .sessions
            .revoke_own(actor.user_id, id, now, event)
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{Mocks, block_on, now};
    use crate::user::{Credentials, FullName, Phone, Sex};
    use chrono::NaiveDate;

    fn actor(role: Role) -> Actor {
        Actor {
            user_id: UserId::new(),
            role,
            session_id: Some(SessionId::new()),
        }
    }

    fn origin() -> RequestOrigin {
        RequestOrigin {
            request_id: Some("req-1".into()),
            client_ip: Some("203.0.113.7".into()),
        }
    }

    fn profile(id: UserId, role: Role) -> UserProfile {
        UserProfile {
            user: User {
                id,
                email: "ann@example.org".into(),
                role,
                full_name: "Ann Example".into(),
                disabled: false,
                created_at: now(),
            },
            patient: None,
            doctor: None,
        }
    }

    #[test]
    fn only_admins_reach_the_admin_routes_and_others_are_not_told_who_exists() {
        let patient = actor(Role::Patient);
        let doctor = actor(Role::Doctor);
        let admin = actor(Role::Admin);
        let other = UserId::new();
        type S = AccountService<crate::test_support::MockPorts>;
        assert!(S::authorize_admin(&admin, Some(other)).is_ok());
        assert!(S::authorize_admin(&admin, None).is_ok());
        for caller in [patient, doctor] {
            assert!(matches!(
                S::authorize_admin(&caller, Some(other)),
                Err(AccountError::NotFound)
            ));
            assert!(matches!(
                S::authorize_admin(&caller, Some(caller.user_id)),
                Err(AccountError::Forbidden(_))
            ));
            assert!(matches!(
                S::authorize_admin(&caller, None),
                Err(AccountError::Forbidden(_))
            ));
        }
    }

    #[test]
    fn a_patient_cannot_disable_anyone_and_nothing_is_stored() {
        // no expectation on the user repository: any call panics
        let service = AccountService::new(Mocks::at(now()).build());
        let result =
            block_on(service.set_disabled(&actor(Role::Patient), &origin(), UserId::new(), true));
        assert!(matches!(result, Err(AccountError::NotFound)));
    }

    #[test]
    fn disabling_is_one_audited_store_call_and_the_last_admin_conflict_surfaces() {
        let admin = actor(Role::Admin);
        let target = UserId::new();
        let mut mocks = Mocks::at(now());
        mocks
            .users
            .expect_set_status()
            .withf(move |change| {
                change.user_id == target
                    && change.disabled
                    && change.now == now()
                    && change.event.action == AccountAction::AccountDisabled
                    && change.event.actor == Some((admin.user_id, Role::Admin))
                    && change.event.subject_id == Some(target)
                    && change.event.client_ip.as_deref() == Some("203.0.113.7")
            })
            .times(1)
            .returning(|_| Box::pin(async { Err(StoreError::Conflict(Conflict::LastAdmin)) }));
        let service = AccountService::new(mocks.build());
        let result = block_on(service.set_disabled(&admin, &origin(), target, true));
        assert!(matches!(result, Err(AccountError::LastAdmin)), "{result:?}");
    }

    #[test]
    fn profile_fields_of_another_role_are_refused_by_name() {
        let doctor = actor(Role::Doctor);
        let service = AccountService::new(Mocks::at(now()).build());
        let changes = ProfileChanges {
            full_name: FullName::parse("Dr. New").ok(),
            phone: Some(Phone::parse("+49 30 123").ok()),
            date_of_birth: NaiveDate::from_ymd_opt(1980, 1, 1),
            sex: Some(Sex::Other),
        };
        match block_on(service.update_me(&doctor, &origin(), changes)) {
            Err(AccountError::Validation(errors)) => {
                let fields: Vec<_> = errors.fields().iter().map(|e| e.field.as_str()).collect();
                assert_eq!(fields, ["phone", "date_of_birth", "sex"]);
            }
            other => panic!("expected a validation error, got {other:?}"),
        }
        // nothing to change is refused too
        let service = AccountService::new(Mocks::at(now()).build());
        assert!(matches!(
            block_on(service.update_me(&doctor, &origin(), ProfileChanges::default())),
            Err(AccountError::Validation(_))
        ));
    }

    #[test]
    fn a_patient_updates_their_own_profile_with_an_audit_event_naming_the_fields() {
        let patient = actor(Role::Patient);
        let mut mocks = Mocks::at(now());
        mocks
            .users
            .expect_update_profile()
            .withf(move |update| {
                update.user_id == patient.user_id
                    && update.event.action == AccountAction::ProfileUpdated
                    && update.event.detail.as_deref() == Some("full_name,sex")
            })
            .times(1)
            .returning(move |update| {
                let stored = profile(update.user_id, Role::Patient);
                Box::pin(async move { Ok(stored) })
            });
        let service = AccountService::new(mocks.build());
        let changes = ProfileChanges {
            full_name: FullName::parse("Ann New").ok(),
            sex: Some(Sex::Female),
            ..ProfileChanges::default()
        };
        assert!(block_on(service.update_me(&patient, &origin(), changes)).is_ok());
    }

    fn doctor_lookup(mocks: &mut Mocks) {
        mocks.doctors.expect_get().returning(|id| {
            let doctor = Doctor {
                id,
                full_name: "Dr. Who".into(),
                specialty: "Cardiology".into(),
                license_number: "LIC-1".into(),
                consultation_fee: crate::payment::Money {
                    amount_cents: 5000,
                    currency: "EUR".into(),
                },
                active: true,
                bio: None,
            };
            Box::pin(async move { Ok(doctor) })
        });
    }

    #[test]
    fn doctors_edit_only_their_own_profile_and_never_fee_or_licence() {
        let doctor = actor(Role::Doctor);
        let mut mocks = Mocks::at(now());
        doctor_lookup(&mut mocks);
        let service = AccountService::new(mocks.build());
        // another doctor's profile: visible (public) but not theirs
        assert!(matches!(
            block_on(service.authorize_doctor_edit(&doctor, UserId::new())),
            Err(AccountError::Forbidden(_))
        ));
        assert!(matches!(
            block_on(service.authorize_doctor_edit(&actor(Role::Patient), doctor.user_id)),
            Err(AccountError::Forbidden(_))
        ));
        let grant = block_on(service.authorize_doctor_edit(&doctor, doctor.user_id));
        let Ok(grant) = grant else {
            panic!("own profile refused: {grant:?}")
        };
        let changes = DoctorChanges {
            specialty: Some("Neurology".into()),
            consultation_fee: Some(crate::payment::Money {
                amount_cents: 1,
                currency: "EUR".into(),
            }),
            license_number: Some("LIC-2".into()),
            ..DoctorChanges::default()
        };
        match block_on(service.update_doctor(grant, &origin(), changes)) {
            Err(AccountError::Validation(errors)) => {
                let fields: Vec<_> = errors.fields().iter().map(|e| e.field.as_str()).collect();
                assert_eq!(fields, ["consultation_fee", "license_number"]);
            }
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn admins_change_a_doctors_fee_and_licence() {
        let admin = actor(Role::Admin);
        let doctor_id = UserId::new();
        let mut mocks = Mocks::at(now());
        doctor_lookup(&mut mocks);
        mocks
            .doctors
            .expect_update()
            .withf(move |update| {
                update.doctor_id == doctor_id
                    && update.event.detail.as_deref() == Some("consultation_fee,license_number")
                    && update.event.action == AccountAction::DoctorProfileUpdated
            })
            .times(1)
            .returning(|_| Box::pin(async { Err(StoreError::Conflict(Conflict::LicenseTaken)) }));
        let service = AccountService::new(mocks.build());
        let Ok(grant) = block_on(service.authorize_doctor_edit(&admin, doctor_id)) else {
            panic!("admin refused")
        };
        let changes = DoctorChanges {
            consultation_fee: Some(crate::payment::Money {
                amount_cents: 7000,
                currency: "EUR".into(),
            }),
            license_number: Some("LIC-2".into()),
            ..DoctorChanges::default()
        };
        assert!(matches!(
            block_on(service.update_doctor(grant, &origin(), changes)),
            Err(AccountError::Conflict(Conflict::LicenseTaken))
        ));
    }

    fn with_credentials(mocks: &mut Mocks, id: UserId) {
        mocks.users.expect_credentials_of().returning(move |_| {
            let credentials = Credentials {
                user: profile(id, Role::Patient).user,
                password_hash: "$argon2id$stored".into(),
            };
            Box::pin(async move { Ok(Some(credentials)) })
        });
    }

    #[test]
    fn password_change_checks_the_current_password_and_keeps_the_current_session() {
        let patient = actor(Role::Patient);
        let mut mocks = Mocks::at(now());
        with_credentials(&mut mocks, patient.user_id);
        mocks
            .hasher
            .expect_verify()
            .withf(|password, hash| {
                password == "Old-Granite-Meadow-11" && hash.as_deref() == Some("$argon2id$stored")
            })
            .returning(|_, _| Box::pin(async { Ok(true) }));
        mocks
            .hasher
            .expect_hash()
            .withf(|password| password == "Brisk-Violet-Harbour-97?")
            .returning(|_| Box::pin(async { Ok("$argon2id$new".into()) }));
        mocks
            .users
            .expect_change_password()
            .withf(move |change| {
                change.user_id == patient.user_id
                    && change.password_hash == "$argon2id$new"
                    && change.keep_session == patient.session_id
                    && change.event.action == AccountAction::PasswordChanged
            })
            .times(1)
            .returning(|_| Box::pin(async { Ok(2) }));
        let service = AccountService::new(mocks.build());
        let revoked = block_on(service.change_password(
            &patient,
            &origin(),
            "Old-Granite-Meadow-11".into(),
            "Brisk-Violet-Harbour-97?",
        ));
        assert_eq!(revoked.map_err(|e| e.to_string()), Ok(2));
    }

    #[test]
    fn password_change_refuses_a_wrong_current_or_weak_new_password_without_storing() {
        let patient = actor(Role::Patient);
        let mut mocks = Mocks::at(now());
        with_credentials(&mut mocks, patient.user_id);
        mocks
            .hasher
            .expect_verify()
            .returning(|_, _| Box::pin(async { Ok(false) }));
        let service = AccountService::new(mocks.build());
        assert!(matches!(
            block_on(service.change_password(
                &patient,
                &origin(),
                "wrong".into(),
                "Brisk-Violet-Harbour-97?"
            )),
            Err(AccountError::WrongPassword)
        ));
        for weak in ["password123456", "ann@example.org", "Ann Example 1"] {
            match block_on(service.change_password(&patient, &origin(), "x".into(), weak)) {
                Err(AccountError::Validation(errors)) => {
                    assert_eq!(errors.fields()[0].field, "new_password", "{weak}");
                }
                other => panic!("{weak} accepted: {other:?}"),
            }
        }
    }

    #[test]
    fn revoking_a_session_is_scoped_to_the_caller_and_audited() {
        let doctor = actor(Role::Doctor);
        let session = SessionId::new();
        let mut mocks = Mocks::at(now());
        mocks
            .sessions
            .expect_revoke_own()
            .withf(move |user, id, at, event| {
                *user == doctor.user_id
                    && *id == session
                    && *at == now()
                    && event.action == AccountAction::SessionRevoked
            })
            .times(1)
            .returning(|_, _, _, _| Box::pin(async { Err(StoreError::NotFound) }));
        let service = AccountService::new(mocks.build());
        assert!(matches!(
            block_on(service.revoke_session(&doctor, &origin(), session)),
            Err(AccountError::NotFound)
        ));
    }

    #[test]
    fn account_actions_round_trip() {
        for action in AccountAction::ALL {
            assert_eq!(action.as_str().parse::<AccountAction>(), Ok(action));
        }
        assert!("dance".parse::<AccountAction>().is_err());
    }
}
