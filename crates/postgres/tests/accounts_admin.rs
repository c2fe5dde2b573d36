//! Account administration against a real PostgreSQL: disabling (sessions, a doctor's slots,
//! the last-admin trigger, also under concurrency), password changes, profile updates, the
//! session list and the append-only account events.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use chrono::{Duration, NaiveDate, Utc};
use common::{at, fixture, refused_by};
use diesel_async::SimpleAsyncConnection;
use shms_domain::accounts::{
    AccountAction, DoctorChanges, DoctorUpdate, NewAccountEvent, PasswordChange, ProfileChanges,
    ProfileUpdate, StatusChange, UserFilter,
};
use shms_domain::ids::{SessionId, UserId};
use shms_domain::page::PageRequest;
use shms_domain::payment::Money;
use shms_domain::ports::{DoctorRepository, NewSession, SessionRepository, UserRepository};
use shms_domain::user::{FullName, Phone, Role, Sex};
use shms_domain::{Conflict, StoreError};

fn event(actor: UserId, subject: UserId, action: AccountAction) -> NewAccountEvent {
    NewAccountEvent {
        actor: Some((actor, Role::Admin)),
        subject_id: Some(subject),
        action,
        attempted_email: None,
        request_id: Some("req".into()),
        client_ip: Some("198.51.100.1".into()),
        detail: None,
    }
}

fn status(admin: UserId, user: UserId, disabled: bool) -> StatusChange {
    StatusChange {
        user_id: user,
        disabled,
        now: Utc::now(),
        event: event(
            admin,
            user,
            if disabled {
                AccountAction::AccountDisabled
            } else {
                AccountAction::AccountEnabled
            },
        ),
    }
}

async fn session(f: &common::Fixture, user: UserId, tag: u8) -> SessionId {
    let id = SessionId::new();
    SessionRepository::create(
        &f.store,
        NewSession {
            id,
            user_id: user,
            token_hash: [tag; 32],
            expires_at: Utc::now() + Duration::hours(1),
            client_ip: Some("127.0.0.1".into()),
            user_agent: Some("test".into()),
        },
    )
    .await
    .unwrap();
    id
}

async fn live(f: &common::Fixture, tag: u8) -> bool {
    let now = Utc::now();
    f.store
        .touch([tag; 32], now, now - Duration::minutes(30))
        .await
        .unwrap()
        .is_some()
}

#[tokio::test(flavor = "multi_thread")]
async fn disabling_a_doctor_revokes_sessions_blocks_future_free_slots_and_lists_bookings() {
    let f = fixture().await;
    let admin = f.admin().await;
    let doctor = f.doctor().await;
    let patient = f.patient().await;
    session(&f, doctor.id, 1).await;
    session(&f, doctor.id, 2).await;
    let booked = f.slot(doctor.id, at(7, 9, 0)).await;
    let free = f.slot(doctor.id, at(7, 10, 0)).await;
    let other_free = f.slot(doctor.id, at(8, 10, 0)).await;
    let booking = f.book(patient, booked.id).await.unwrap();

    let outcome = f
        .store
        .set_status(status(admin, doctor.id, true))
        .await
        .unwrap();
    assert!(outcome.user.user.disabled);
    assert_eq!(outcome.revoked_sessions, 2);
    assert_eq!(outcome.blocked_slots, 2);
    let open: Vec<_> = outcome.open_appointments.iter().map(|a| a.id).collect();
    assert_eq!(open, [booking.appointment.id]);
    assert!(!outcome.user.doctor.as_ref().unwrap().active);
    // the very next use of an old token fails
    assert!(!live(&f, 1).await && !live(&f, 2).await);
    assert_eq!(f.slot_status(free.id).await, "busy-unavailable");
    assert_eq!(f.slot_status(other_free.id).await, "busy-unavailable");
    // the booked appointment stays in place, its slot busy
    assert_eq!(f.slot_status(booked.id).await, "busy");

    // re-enabling does not re-open the blocked slots
    let outcome = f
        .store
        .set_status(status(admin, doctor.id, false))
        .await
        .unwrap();
    assert!(!outcome.user.user.disabled);
    assert!(outcome.user.doctor.as_ref().unwrap().active);
    assert_eq!(outcome.blocked_slots, 0);
    assert_eq!(f.slot_status(free.id).await, "busy-unavailable");

    let events = f
        .store
        .events(doctor.id, PageRequest::default())
        .await
        .unwrap();
    let actions: Vec<_> = events.items.iter().map(|e| e.event.action).collect();
    assert_eq!(
        actions,
        [
            AccountAction::AccountEnabled,
            AccountAction::AccountDisabled
        ]
    );
    assert!(f.violations().await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_last_active_admin_cannot_be_disabled_demoted_or_deleted() {
    let f = fixture().await;
    let admin = f.admin().await;
    let refused = f.store.set_status(status(admin, admin, true)).await;
    assert!(
        matches!(refused, Err(StoreError::Conflict(Conflict::LastAdmin))),
        "{refused:?}"
    );
    // nothing was written: no event, still enabled
    assert!(
        f.store
            .events(admin, PageRequest::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    let mut conn = f.db.connect().await.unwrap();
    for sql in [
        format!("UPDATE users SET disabled = true WHERE id = '{admin}'"),
        format!("UPDATE users SET role = 'patient' WHERE id = '{admin}'"),
        format!("DELETE FROM users WHERE id = '{admin}'"),
    ] {
        assert_eq!(refused_by(&mut conn, &sql).await, "users_last_active_admin");
    }
    // with a second active admin, one of them may go
    let second = f.admin().await;
    f.store
        .set_status(status(second, admin, true))
        .await
        .unwrap();
    let refused = f.store.set_status(status(second, second, true)).await;
    assert!(matches!(
        refused,
        Err(StoreError::Conflict(Conflict::LastAdmin))
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn two_admins_disabling_each_other_at_once_leave_one_active() {
    let f = fixture().await;
    let mut survivor = f.admin().await;
    for _ in 0..12 {
        let other = f.admin().await;
        let (a, b) = tokio::join!(
            f.store.set_status(status(survivor, other, true)),
            f.store.set_status(status(other, survivor, true)),
        );
        let succeeded = usize::from(a.is_ok()) + usize::from(b.is_ok());
        assert_eq!(succeeded, 1, "{a:?} {b:?}");
        for result in [&a, &b] {
            assert!(
                matches!(
                    result,
                    Ok(_) | Err(StoreError::Conflict(Conflict::LastAdmin))
                ),
                "{result:?}"
            );
        }
        if a.is_ok() {
            // `other` is disabled; `survivor` stays
        } else {
            survivor = other;
        }
        let active = UserRepository::list(
            &f.store,
            UserFilter {
                role: Some(Role::Admin),
                query: None,
            },
            PageRequest::default(),
        )
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|u| !u.disabled)
        .map(|u| u.id)
        .collect::<Vec<_>>();
        assert_eq!(active, [survivor]);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_password_change_revokes_the_other_sessions_but_not_the_current_one() {
    let f = fixture().await;
    let patient = f.patient().await;
    let current = session(&f, patient, 11).await;
    session(&f, patient, 12).await;
    session(&f, patient, 13).await;
    let revoked = f
        .store
        .change_password(PasswordChange {
            user_id: patient,
            password_hash: "$argon2id$v=19$m=19456,t=2,p=1$new".into(),
            keep_session: Some(current),
            now: Utc::now(),
            event: event(patient, patient, AccountAction::PasswordChanged),
        })
        .await
        .unwrap();
    assert_eq!(revoked, 2);
    assert!(live(&f, 11).await);
    assert!(!live(&f, 12).await && !live(&f, 13).await);
    let credentials = f.store.credentials_of(patient).await.unwrap().unwrap();
    assert_eq!(
        credentials.password_hash,
        "$argon2id$v=19$m=19456,t=2,p=1$new"
    );
    // an upgrade of the hash only replaces the hash it read
    assert!(
        !f.store
            .rehash_password(patient, "stale".into(), "$argon2id$x".into())
            .await
            .unwrap()
    );
    assert!(
        f.store
            .rehash_password(
                patient,
                credentials.password_hash.clone(),
                "$argon2id$upgraded".into()
            )
            .await
            .unwrap()
    );
    let missing = f
        .store
        .change_password(PasswordChange {
            user_id: UserId::new(),
            password_hash: "x".into(),
            keep_session: None,
            now: Utc::now(),
            event: event(patient, patient, AccountAction::PasswordChanged),
        })
        .await;
    assert!(matches!(missing, Err(StoreError::NotFound)), "{missing:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn profiles_and_doctor_profiles_update_with_their_audit_events() {
    let f = fixture().await;
    let patient = f.patient().await;
    let profile = f
        .store
        .update_profile(ProfileUpdate {
            user_id: patient,
            changes: ProfileChanges {
                full_name: Some(FullName::parse("Pat New").unwrap()),
                phone: Some(Some(Phone::parse("+49 30 1234").unwrap())),
                date_of_birth: NaiveDate::from_ymd_opt(1985, 5, 5),
                sex: Some(Sex::Other),
            },
            event: event(patient, patient, AccountAction::ProfileUpdated),
        })
        .await
        .unwrap();
    assert_eq!(profile.user.full_name, "Pat New");
    let details = profile.patient.unwrap();
    assert_eq!(details.phone.as_deref(), Some("+49 30 1234"));
    assert_eq!(details.sex, Sex::Other);
    // clearing the phone
    let profile = f
        .store
        .update_profile(ProfileUpdate {
            user_id: patient,
            changes: ProfileChanges {
                phone: Some(None),
                ..ProfileChanges::default()
            },
            event: event(patient, patient, AccountAction::ProfileUpdated),
        })
        .await
        .unwrap();
    assert_eq!(profile.patient.unwrap().phone, None);
    assert_eq!(profile.user.full_name, "Pat New");

    let admin = f.admin().await;
    let doctor = f.doctor().await;
    let other = f.doctor_named("Dr. Other", "Dermatology").await;
    let updated = f
        .store
        .update(DoctorUpdate {
            doctor_id: doctor.id,
            changes: DoctorChanges {
                specialty: Some("Neurology".into()),
                bio: Some(Some("Twenty years of practice.".into())),
                consultation_fee: Some(Money::new(7500, "EUR").unwrap()),
                license_number: None,
            },
            event: event(admin, doctor.id, AccountAction::DoctorProfileUpdated),
        })
        .await
        .unwrap();
    assert_eq!(updated.specialty, "Neurology");
    assert_eq!(updated.consultation_fee.amount_cents, 7500);
    assert_eq!(updated.bio.as_deref(), Some("Twenty years of practice."));
    assert_eq!(updated.license_number, doctor.license_number);
    let taken = f
        .store
        .update(DoctorUpdate {
            doctor_id: doctor.id,
            changes: DoctorChanges {
                license_number: Some(other.license_number.to_lowercase()),
                ..DoctorChanges::default()
            },
            event: event(admin, doctor.id, AccountAction::DoctorProfileUpdated),
        })
        .await;
    assert!(
        matches!(taken, Err(StoreError::Conflict(Conflict::LicenseTaken))),
        "{taken:?}"
    );
    // the refused update wrote no event
    let events = f
        .store
        .events(doctor.id, PageRequest::default())
        .await
        .unwrap();
    assert_eq!(events.items.len(), 1);
    assert_eq!(
        events.items[0].event.action,
        AccountAction::DoctorProfileUpdated
    );
    assert_eq!(events.items[0].event.actor, Some((admin, Role::Admin)));
    let events = f
        .store
        .events(patient, PageRequest::default())
        .await
        .unwrap();
    assert_eq!(events.items.len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn account_events_are_append_only_and_failed_logins_need_no_subject() {
    let f = fixture().await;
    f.store
        .record_event(NewAccountEvent {
            actor: None,
            subject_id: None,
            action: AccountAction::LoginFailed,
            attempted_email: Some("nobody@example.org".into()),
            request_id: None,
            client_ip: Some("203.0.113.9".into()),
            detail: Some("unknown_account".into()),
        })
        .await
        .unwrap();
    let mut conn = f.db.connect().await.unwrap();
    for sql in [
        "UPDATE account_events SET detail = 'x'",
        "DELETE FROM account_events",
        "TRUNCATE account_events",
    ] {
        assert_eq!(
            refused_by(&mut conn, sql).await,
            "account_events_append_only"
        );
    }
    // anything but a failed login has an actor; a failed login has the attempted e-mail
    assert_eq!(
        refused_by(
            &mut conn,
            "INSERT INTO account_events (action) VALUES ('logout')"
        )
        .await,
        "account_events_actor_present"
    );
    assert_eq!(
        refused_by(
            &mut conn,
            "INSERT INTO account_events (action) VALUES ('login_failed')"
        )
        .await,
        "account_events_failed_login_email"
    );
    conn.batch_execute("SELECT 1").await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_session_list_shows_live_own_sessions_and_revoking_is_scoped_to_the_owner() {
    let f = fixture().await;
    let patient = f.patient().await;
    let stranger = f.patient().await;
    let first = session(&f, patient, 21).await;
    let second = session(&f, patient, 22).await;
    let theirs = session(&f, stranger, 23).await;
    let now = Utc::now();
    let listed = f
        .store
        .list_live(patient, now, PageRequest::default())
        .await
        .unwrap();
    let mut ids: Vec<_> = listed.items.iter().map(|s| s.id).collect();
    ids.sort();
    let mut expected = vec![first, second];
    expected.sort();
    assert_eq!(ids, expected);

    let revoke = |session| {
        f.store.revoke_own(
            patient,
            session,
            Utc::now(),
            event(patient, patient, AccountAction::SessionRevoked),
        )
    };
    assert!(matches!(revoke(theirs).await, Err(StoreError::NotFound)));
    assert!(live(&f, 23).await);
    revoke(second).await.unwrap();
    // idempotent for one's own revoked session
    revoke(second).await.unwrap();
    assert!(!live(&f, 22).await);
    let listed = f
        .store
        .list_live(patient, Utc::now(), PageRequest::default())
        .await
        .unwrap();
    assert_eq!(
        listed.items.iter().map(|s| s.id).collect::<Vec<_>>(),
        [first]
    );
    let events = f
        .store
        .events(patient, PageRequest::default())
        .await
        .unwrap();
    assert_eq!(events.items.len(), 1, "one event per actual revocation");
}

#[tokio::test(flavor = "multi_thread")]
async fn users_are_listed_by_name_filtered_by_role_and_name_or_email() {
    let f = fixture().await;
    f.admin().await;
    f.patient().await;
    f.patient().await;
    f.doctor_named("Zed Surgeon", "Surgery").await;
    let all = UserRepository::list(&f.store, UserFilter::default(), PageRequest::default())
        .await
        .unwrap();
    assert_eq!(all.items.len(), 4);
    let patients = UserRepository::list(
        &f.store,
        UserFilter {
            role: Some(Role::Patient),
            query: None,
        },
        PageRequest::new(Some(1), None).unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(patients.items.len(), 1);
    let rest = UserRepository::list(
        &f.store,
        UserFilter {
            role: Some(Role::Patient),
            query: None,
        },
        PageRequest::new(Some(1), patients.next.clone()).unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(rest.items.len(), 1);
    assert_ne!(rest.items[0].id, patients.items[0].id);
    assert!(rest.next.is_none());
    let by_name = UserRepository::list(
        &f.store,
        UserFilter {
            role: None,
            query: Some("zed".into()),
        },
        PageRequest::default(),
    )
    .await
    .unwrap();
    assert_eq!(by_name.items.len(), 1);
    assert_eq!(by_name.items[0].role, Role::Doctor);
    let by_email = UserRepository::list(
        &f.store,
        UserFilter {
            role: None,
            query: Some("ADMIN-".into()),
        },
        PageRequest::default(),
    )
    .await
    .unwrap();
    assert_eq!(by_email.items.len(), 1);
    assert_eq!(by_email.items[0].role, Role::Admin);
}
