//! Users, sessions, doctors and slot listing against a real PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use chrono::{Duration, Utc};
use common::{at, fixture};
use diesel_async::SimpleAsyncConnection;
use shms_domain::doctor::DoctorFilter;
use shms_domain::ids::SessionId;
use shms_domain::page::PageRequest;
use shms_domain::ports::{
    DoctorRepository, NewSession, SessionRepository, SlotRepository, UserRepository,
};
use shms_domain::slot::{SlotFilter, SlotStatus};
use shms_domain::user::{Email, Role};
use shms_domain::{Conflict, StoreError};

#[tokio::test(flavor = "multi_thread")]
async fn emails_are_unique_case_insensitively() {
    let f = fixture().await;
    let patient = f.patient().await;
    let profile = f.store.profile(patient).await.unwrap();
    assert_eq!(profile.user.role, Role::Patient);
    assert!(profile.patient.is_some() && profile.doctor.is_none());
    let found = f
        .store
        .find_credentials(&Email::parse(&profile.user.email.to_uppercase()).unwrap())
        .await
        .unwrap();
    assert_eq!(found.map(|c| c.user.id), Some(patient));

    let mut conn = f.db.connect().await.unwrap();
    let duplicate = conn
        .batch_execute(&format!(
            "INSERT INTO users (id, email, password_hash, role, full_name) VALUES (gen_random_uuid(), '{}', 'x', 'admin', 'X')",
            profile.user.email.to_uppercase()
        ))
        .await
        .map_err(shms_postgres::map_diesel);
    assert!(
        matches!(duplicate, Err(StoreError::Conflict(Conflict::EmailTaken))),
        "{duplicate:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sessions_live_until_idle_expired_revoked_or_disabled() {
    let f = fixture().await;
    let user = f.patient().await;
    let now = Utc::now();
    let session = |hash: u8, expires_in: Duration| NewSession {
        id: SessionId::new(),
        user_id: user,
        token_hash: [hash; 32],
        expires_at: now + expires_in,
        client_ip: Some("127.0.0.1".into()),
        user_agent: Some("test".into()),
    };
    let live = session(1, Duration::hours(1));
    let live_id = live.id;
    SessionRepository::create(&f.store, live).await.unwrap();
    SessionRepository::create(&f.store, session(2, Duration::seconds(1)))
        .await
        .unwrap();

    let actor = f
        .store
        .touch([1; 32], now, now - Duration::minutes(30))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (actor.user_id, actor.role, actor.session_id),
        (user, Role::Patient, Some(live_id))
    );
    // unknown token
    assert!(
        f.store
            .touch([9; 32], now, now - Duration::minutes(30))
            .await
            .unwrap()
            .is_none()
    );
    // past the absolute expiry
    let later = now + Duration::seconds(5);
    assert!(
        f.store
            .touch([2; 32], later, later - Duration::minutes(30))
            .await
            .unwrap()
            .is_none()
    );
    // idle: last used before the idle window
    assert!(
        f.store
            .touch([1; 32], now, now + Duration::seconds(1))
            .await
            .unwrap()
            .is_none()
    );
    // disabled user
    let mut conn = f.db.connect().await.unwrap();
    conn.batch_execute(&format!(
        "UPDATE users SET disabled = true WHERE id = '{user}'"
    ))
    .await
    .unwrap();
    assert!(
        f.store
            .touch([1; 32], now, now - Duration::minutes(30))
            .await
            .unwrap()
            .is_none()
    );
    conn.batch_execute(&format!(
        "UPDATE users SET disabled = false WHERE id = '{user}'"
    ))
    .await
    .unwrap();
    // revoked
    f.store.revoke(live_id, now).await.unwrap();
    assert!(
        f.store
            .touch([1; 32], now, now - Duration::minutes(30))
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn doctors_are_listed_by_name_with_filters_and_stable_cursors() {
    let f = fixture().await;
    for (name, specialty) in [
        ("Ann Cardio", "Cardiology"),
        ("Bea Derm", "Dermatology"),
        ("Cid Cardio", "cardiology"),
    ] {
        f.doctor_named(name, specialty).await;
    }
    let cardiology = DoctorFilter {
        specialty: Some("CARDIOLOGY".into()),
        name_contains: None,
    };
    let page = DoctorRepository::list(&f.store, cardiology, PageRequest::default())
        .await
        .unwrap();
    let names: Vec<_> = page.items.iter().map(|d| d.full_name.as_str()).collect();
    assert_eq!(names, ["Ann Cardio", "Cid Cardio"]);

    let first = DoctorRepository::list(
        &f.store,
        DoctorFilter::default(),
        PageRequest::new(Some(2), None).unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(first.items.len(), 2);
    // a doctor inserted before the cursor position does not shift the next page
    f.doctor_named("Aaron Early", "Surgery").await;
    let second = DoctorRepository::list(
        &f.store,
        DoctorFilter::default(),
        PageRequest::new(Some(2), first.next.clone()).unwrap(),
    )
    .await
    .unwrap();
    let names: Vec<_> = second.items.iter().map(|d| d.full_name.as_str()).collect();
    assert_eq!(names, ["Cid Cardio"]);
    assert!(second.next.is_none());

    let search = DoctorFilter {
        specialty: None,
        name_contains: Some("derm".into()),
    };
    assert_eq!(
        DoctorRepository::list(&f.store, search, PageRequest::default())
            .await
            .unwrap()
            .items
            .len(),
        1
    );
    let wildcard = DoctorFilter {
        specialty: None,
        name_contains: Some("%".into()),
    };
    assert!(
        DoctorRepository::list(&f.store, wildcard, PageRequest::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );

    let license_taken = {
        let doctor = f.doctor().await;
        let mut conn = f.db.connect().await.unwrap();
        conn.batch_execute(&format!(
            "UPDATE doctors SET license_number = lower('{}') WHERE user_id <> '{}'",
            doctor.license_number, doctor.id
        ))
        .await
        .map_err(shms_postgres::map_diesel)
    };
    assert!(
        matches!(
            license_taken,
            Err(StoreError::Conflict(Conflict::LicenseTaken))
        ),
        "{license_taken:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn overlapping_slots_are_refused_and_a_batch_is_all_or_nothing() {
    let f = fixture().await;
    let doctor = f.doctor().await;
    f.slot(doctor.id, at(10, 9, 0)).await;
    let batch = [
        (at(10, 8, 0), at(10, 8, 30)),
        (at(10, 9, 15), at(10, 9, 45)),
    ];
    let refused = f.slots(doctor.id, &batch).await;
    assert!(
        matches!(refused, Err(StoreError::Conflict(Conflict::SlotOverlap))),
        "{refused:?}"
    );
    let within_batch = f
        .slots(
            doctor.id,
            &[(at(11, 8, 0), at(11, 9, 0)), (at(11, 8, 30), at(11, 9, 30))],
        )
        .await;
    assert!(matches!(
        within_batch,
        Err(StoreError::Conflict(Conflict::SlotOverlap))
    ));
    let all = SlotFilter {
        doctor_id: doctor.id,
        from: None,
        to: None,
        status: None,
    };
    assert_eq!(
        SlotRepository::list(&f.store, all, PageRequest::default())
            .await
            .unwrap()
            .items
            .len(),
        1
    );
    // another doctor may use the same time
    let other = f.doctor().await;
    f.slot(other.id, at(10, 9, 0)).await;
    // slots of an unknown doctor
    let unknown = f
        .slots(
            shms_domain::ids::UserId::new(),
            &[(at(12, 9, 0), at(12, 9, 30))],
        )
        .await;
    assert!(matches!(unknown, Err(StoreError::NotFound)), "{unknown:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn slot_pages_follow_time_then_id_and_filters() {
    let f = fixture().await;
    let doctor = f.doctor().await;
    let windows: Vec<_> = (0..7)
        .map(|i| {
            (
                at(14, 8, 0) + Duration::minutes(30 * i),
                at(14, 8, 30) + Duration::minutes(30 * i),
            )
        })
        .collect();
    let slots = f.slots(doctor.id, &windows).await.unwrap();
    f.book(f.patient().await, slots[1].id).await.unwrap();
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let filter = SlotFilter {
            doctor_id: doctor.id,
            from: Some(at(14, 8, 30)),
            to: None,
            status: Some(SlotStatus::Free),
        };
        let page =
            SlotRepository::list(&f.store, filter, PageRequest::new(Some(2), after).unwrap())
                .await
                .unwrap();
        seen.extend(page.items.iter().map(|s| s.starts_at));
        after = page.next;
        if after.is_none() {
            break;
        }
    }
    let expected: Vec<_> = windows.iter().skip(2).map(|(start, _)| *start).collect();
    assert_eq!(seen, expected);
}
