//! `shms seed-demo`: a small demo clinic, created through the domain services (not SQL) so
//! that every rule applies to demo data too. Running it twice changes nothing.

use chrono::{Datelike, Days, NaiveDate, NaiveTime, TimeDelta, Utc, Weekday};
use shms_domain::appointment::{AppointmentStatus, BookRequest};
use shms_domain::auth::{AuthError, RegisterPatient};
use shms_domain::doctor::{CreateDoctor, DoctorError};
use shms_domain::payment::{Money, PayRequest, PaymentMethod};
use shms_domain::records::{
    DiagnosisDraft, EncounterDraft, PrescriptionDraft, RequestOrigin, VitalDraft,
};
use shms_domain::slot::SlotWindow;
use shms_domain::user::{Email, FullName, Password, Role, Sex};
use shms_domain::{Actor, Services};

use crate::wiring::PgPorts;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The demo accounts' shared password (printed by `make run`).
pub const DEMO_PASSWORD: &str = "demo-password-2026";

const DOCTORS: [(&str, &str, &str, &str, i64); 3] = [
    (
        "dr.house@demo.shms.local",
        "Gregory House",
        "Diagnostic Medicine",
        "LIC-DEMO-001",
        12_000,
    ),
    (
        "dr.grey@demo.shms.local",
        "Meredith Grey",
        "General Surgery",
        "LIC-DEMO-002",
        9_000,
    ),
    (
        "dr.quinn@demo.shms.local",
        "Michaela Quinn",
        "General Practice",
        "LIC-DEMO-003",
        5_000,
    ),
];

const PATIENTS: [(&str, &str, &str, Sex); 2] = [
    (
        "alice@demo.shms.local",
        "Alice Patient",
        "1988-03-14",
        Sex::Female,
    ),
    (
        "bob@demo.shms.local",
        "Bob Patient",
        "1975-11-02",
        Sex::Male,
    ),
];

fn invalid(field: &str, message: String) -> BoxError {
    format!("demo data: {field}: {message}").into()
}

/// Working days of the next two weeks, 09:00–12:00 UTC in 30-minute slots.
fn demo_windows(today: NaiveDate) -> Result<Vec<SlotWindow>, BoxError> {
    let mut windows = Vec::new();
    for offset in 1..=14 {
        let day = today
            .checked_add_days(Days::new(offset))
            .ok_or("date overflow")?;
        if matches!(day.weekday(), Weekday::Sat | Weekday::Sun) {
            continue;
        }
        for half_hour in 0..6 {
            let start = day
                .and_time(NaiveTime::from_hms_opt(9, 0, 0).ok_or("time")?)
                .and_utc()
                + TimeDelta::minutes(30 * half_hour);
            windows.push(
                SlotWindow::new(start, start + TimeDelta::minutes(30))
                    .map_err(|m| invalid("slot", m))?,
            );
        }
    }
    Ok(windows)
}

/// Seeds the demo clinic; prints the logins.
///
/// # Errors
/// Storage failures.
pub async fn seed(services: &Services<PgPorts>, admin: &Actor) -> Result<(), BoxError> {
    let password = Password::new(DEMO_PASSWORD, &[]).map_err(|m| invalid("password", m))?;
    let mut created_doctors = Vec::new();
    for (email, name, specialty, license, fee) in DOCTORS {
        let request = CreateDoctor {
            email: Email::parse(email).map_err(|m| invalid("email", m))?,
            password: password.clone(),
            full_name: FullName::parse(name).map_err(|m| invalid("name", m))?,
            specialty: specialty.to_owned(),
            license_number: license.to_owned(),
            consultation_fee: Money::new(fee, "EUR").map_err(|m| invalid("fee", m))?,
            bio: None,
        };
        match services.doctors.create(admin, request).await {
            Ok(doctor) => created_doctors.push(doctor),
            Err(DoctorError::Conflict(_)) => {}
            Err(other) => return Err(other.into()),
        }
    }
    let mut first_patient = None;
    for (email, name, born, sex) in PATIENTS {
        let request = RegisterPatient {
            email: Email::parse(email).map_err(|m| invalid("email", m))?,
            password: password.clone(),
            full_name: FullName::parse(name).map_err(|m| invalid("name", m))?,
            date_of_birth: born
                .parse()
                .map_err(|e: chrono::ParseError| invalid("date_of_birth", e.to_string()))?,
            sex,
            phone: None,
        };
        match services.auth.register(request).await {
            Ok(profile) => {
                first_patient.get_or_insert(profile.user.id);
            }
            Err(AuthError::EmailTaken) => {}
            Err(other) => return Err(other.into()),
        }
    }
    let windows = demo_windows(Utc::now().date_naive())?;
    for doctor in &created_doctors {
        let slots = services
            .slots
            .create(admin, doctor.id, windows.clone())
            .await?;
        // one booked appointment per new doctor, so the demo has something to cancel or pay
        if let (Some(patient), Some(slot)) = (
            first_patient,
            slots.get(doctor_index(&created_doctors, doctor)),
        ) {
            let patient = Actor {
                user_id: patient,
                role: Role::Patient,
                session_id: None,
            };
            let request = BookRequest {
                slot_id: slot.id,
                reason: "Demo check-up".into(),
                patient_id: None,
            };
            let booking = services.appointments.book(&patient, request).await?;
            match doctor_index(&created_doctors, doctor) {
                // the first doctor's patient paid at the desk
                0 => {
                    let cash = PayRequest {
                        method: PaymentMethod::Cash,
                        card_token: None,
                    };
                    services
                        .payments
                        .pay(admin, booking.payment.id, cash)
                        .await?;
                }
                // the second doctor has seen their patient: checked in, with a written encounter
                1 => write_demo_visit(services, admin, doctor.id, booking.appointment.id).await?,
                _ => {}
            }
        }
    }
    if created_doctors.is_empty() {
        println!("demo data already present");
    } else {
        println!(
            "demo data loaded: {} doctors with {} slots each",
            created_doctors.len(),
            windows.len()
        );
    }
    println!("demo logins (password for all: {DEMO_PASSWORD}):");
    for (email, name, specialty, ..) in DOCTORS {
        println!("  doctor   {email:<28} {name} ({specialty})");
    }
    for (email, name, ..) in PATIENTS {
        println!("  patient  {email:<28} {name}");
    }
    Ok(())
}

/// Different doctors' demo appointments use different slot times, so the one demo patient
/// never overlaps themself.
fn doctor_index(
    doctors: &[shms_domain::doctor::Doctor],
    doctor: &shms_domain::doctor::Doctor,
) -> usize {
    doctors.iter().position(|d| d.id == doctor.id).unwrap_or(0)
}

/// Checks a demo appointment in and writes its encounter, as the doctor would.
async fn write_demo_visit(
    services: &Services<PgPorts>,
    admin: &Actor,
    doctor: shms_domain::UserId,
    appointment: shms_domain::AppointmentId,
) -> Result<(), BoxError> {
    services
        .appointments
        .advance(admin, appointment, AppointmentStatus::CheckedIn)
        .await?;
    let doctor = Actor {
        user_id: doctor,
        role: Role::Doctor,
        session_id: None,
    };
    let grant = services
        .records
        .authorize_encounter(&doctor, appointment)
        .await?;
    let draft = EncounterDraft {
        subjective: "Sore throat and fever for three days.".into(),
        objective: "Tonsils swollen with exudate; no cough.".into(),
        assessment: "Streptococcal pharyngitis.".into(),
        plan: "Antibiotics for ten days; return if not better in three.".into(),
        diagnoses: vec![DiagnosisDraft {
            code: "J02.0".into(),
            description: "Streptococcal pharyngitis".into(),
            primary: true,
        }],
        prescriptions: vec![PrescriptionDraft {
            medication: "Amoxicillin".into(),
            dose: "500 mg".into(),
            frequency: "three times daily".into(),
            duration_days: 10,
        }],
        vitals: vec![
            VitalDraft {
                kind: "temperature".into(),
                value: 38.6,
                unit: None,
            },
            VitalDraft {
                kind: "heart_rate".into(),
                value: 96.0,
                unit: None,
            },
        ],
    };
    let origin = RequestOrigin {
        request_id: Some("seed-demo".into()),
        client_ip: None,
    };
    services
        .records
        .write_encounter(grant, &origin, &draft)
        .await?;
    Ok(())
}
