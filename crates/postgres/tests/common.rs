//! Fixtures for the adapter tests: a store over a private database and shortcuts to create
//! the rows a test needs through the adapter itself.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use shms_domain::StoreError;
use shms_domain::appointment::{Booking, NewBooking};
use shms_domain::doctor::{Doctor, NewDoctor};
use shms_domain::ids::{AppointmentId, PaymentId, SlotId, UserId};
use shms_domain::payment::Money;
use shms_domain::ports::{AppointmentRepository, DoctorRepository, SlotRepository, UserRepository};
use shms_domain::slot::{NewSlot, Slot, SlotWindow};
use shms_domain::user::{Email, FullName, NewPatient, NewUser, PatientProfile, Role, Sex};
use shms_postgres::{PgStore, PoolConfig, build_pool};
use shms_test_support::TestDb;

pub struct Fixture {
    pub db: TestDb,
    pub store: PgStore,
}

pub async fn fixture() -> Fixture {
    let db = TestDb::new().await.expect("test database");
    let mut config = PoolConfig::new(db.url());
    config.max_size = 70;
    config.acquire_timeout = std::time::Duration::from_secs(10);
    let store = PgStore::new(build_pool(&config).expect("pool"));
    Fixture { db, store }
}

pub fn at(day: u32, hour: u32, minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 1, day, hour, minute, 0)
        .single()
        .expect("valid time")
}

fn new_user(role: Role, tag: &str) -> NewUser {
    NewUser {
        id: UserId::new(),
        email: Email::parse(&format!(
            "{tag}-{}@example.org",
            uuid::Uuid::new_v4().simple()
        ))
        .unwrap(),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$not-a-real-hash".into(),
        full_name: FullName::parse(&format!("{tag} person")).unwrap(),
        role,
    }
}

impl Fixture {
    pub async fn patient(&self) -> UserId {
        let patient = NewPatient {
            user: new_user(Role::Patient, "patient"),
            profile: PatientProfile {
                date_of_birth: NaiveDate::from_ymd_opt(1990, 4, 1).unwrap(),
                sex: Sex::Female,
                phone: None,
            },
        };
        UserRepository::create_patient(&self.store, patient)
            .await
            .unwrap()
            .user
            .id
    }

    pub async fn admin(&self) -> UserId {
        UserRepository::create_user(&self.store, new_user(Role::Admin, "admin"))
            .await
            .unwrap()
            .user
            .id
    }

    pub async fn doctor_named(&self, name: &str, specialty: &str) -> Doctor {
        let mut user = new_user(Role::Doctor, "doctor");
        user.full_name = FullName::parse(name).unwrap();
        let doctor = NewDoctor {
            user,
            specialty: specialty.into(),
            license_number: format!("LIC-{}", uuid::Uuid::new_v4().simple()),
            consultation_fee: Money::new(5000, "EUR").unwrap(),
            bio: None,
        };
        DoctorRepository::create(&self.store, doctor).await.unwrap()
    }

    pub async fn doctor(&self) -> Doctor {
        self.doctor_named("Dr. Test", "General Practice").await
    }

    pub async fn slots(
        &self,
        doctor: UserId,
        windows: &[(DateTime<Utc>, DateTime<Utc>)],
    ) -> Result<Vec<Slot>, StoreError> {
        let new = windows
            .iter()
            .map(|(start, end)| NewSlot {
                id: SlotId::new(),
                doctor_id: doctor,
                window: SlotWindow::new(*start, *end).unwrap(),
            })
            .collect();
        self.store.create_many(new).await
    }

    pub async fn slot(&self, doctor: UserId, start: DateTime<Utc>) -> Slot {
        self.slots(doctor, &[(start, start + Duration::minutes(30))])
            .await
            .unwrap()
            .remove(0)
    }

    pub async fn book(&self, patient: UserId, slot: SlotId) -> Result<Booking, StoreError> {
        self.store
            .book(NewBooking {
                appointment_id: AppointmentId::new(),
                payment_id: PaymentId::new(),
                patient_id: patient,
                slot_id: slot,
                reason: "check-up".into(),
                booked_by: patient,
            })
            .await
    }

    pub async fn slot_status(&self, slot: SlotId) -> String {
        self.store
            .find(slot)
            .await
            .unwrap()
            .unwrap()
            .status
            .as_str()
            .to_owned()
    }

    pub async fn violations(&self) -> Vec<shms_postgres::invariants::Violation> {
        shms_postgres::invariants::check(self.db.url())
            .await
            .unwrap()
    }
}

/// Runs `sql` and returns the name of the constraint or trigger that refused it.
pub async fn refused_by(conn: &mut diesel_async::AsyncPgConnection, sql: &str) -> String {
    use diesel_async::SimpleAsyncConnection;
    match conn.batch_execute(sql).await {
        Ok(()) => panic!("the database accepted: {sql}"),
        Err(diesel::result::Error::DatabaseError(_, info)) => {
            info.constraint_name().unwrap_or(info.message()).to_owned()
        }
        Err(other) => panic!("unexpected error {other:?} for {sql}"),
    }
}
