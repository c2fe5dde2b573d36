//! The medical-records use cases: writing encounters, amendments and allergies, reading a
//! patient's history, and showing who accessed it.
//!
//! Writes are two steps so that authorization is decided before the body is validated
//! (DESIGN §6): `authorize_*` returns a grant (only this module can make one), and the write
//! consumes it together with the draft.

use super::access::{AccessRefusal, ReadBasis, read_basis};
use super::validate::break_glass_reason;
use super::{
    Allergy, AllergyDraft, AmendmentDraft, Attribution, AuditEvent, Encounter, EncounterDraft,
    EncounterRef, NewAllergy, NewAmendment, NewEncounter, PatientRecords, RecordRead,
};
use crate::actor::Actor;
use crate::appointment::{Appointment, AppointmentStatus, is_visible_to};
use crate::error::{Conflict, StoreError};
use crate::ids::{AllergyId, AmendmentId, AppointmentId, EncounterId, UserId};
use crate::page::{Page, PageRequest};
use crate::ports::{AppointmentRepository, RecordRepository};
use crate::services::{Adapters, Ports};
use crate::user::Role;
use crate::validation::ValidationErrors;

/// Longest request id kept in the audit trail (the client may choose it).
const MAX_REQUEST_ID_CHARS: usize = 200;
/// Longest client address kept.
const MAX_CLIENT_IP_CHARS: usize = 64;

/// Where a request comes from, for the audit trail.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestOrigin {
    /// The request's id.
    pub request_id: Option<String>,
    /// The client's address.
    pub client_ip: Option<String>,
}

impl RequestOrigin {
    fn attribute(&self, actor: &Actor) -> Attribution {
        let bounded = |value: &Option<String>, max: usize| {
            value
                .as_deref()
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(|v| v.chars().take(max).collect())
        };
        Attribution {
            actor_id: actor.user_id,
            actor_role: actor.role,
            request_id: bounded(&self.request_id, MAX_REQUEST_ID_CHARS),
            client_ip: bounded(&self.client_ip, MAX_CLIENT_IP_CHARS),
        }
    }
}

/// Why a medical-records operation failed.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// No such patient, appointment or encounter — or one the caller may not see.
    #[error("not found")]
    NotFound,
    /// The caller sees the object but may not do this.
    #[error("{0}")]
    Forbidden(&'static str),
    /// An administrator must state a reason to read a patient's records (break-glass).
    #[error(
        "state a reason (query parameter `reason`) to read a patient's records as an administrator"
    )]
    ReasonRequired,
    /// The request is invalid.
    #[error("invalid request: {0}")]
    Validation(ValidationErrors),
    /// Encounters are written once the patient has checked in.
    #[error("the appointment is {0}; an encounter is written once it is checked-in or fulfilled")]
    NotCheckedIn(&'static str),
    /// The appointment already has its encounter; correct it with an amendment.
    #[error("this appointment already has an encounter; amend it instead")]
    EncounterExists,
    /// Storage failure.
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for RecordError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound => Self::NotFound,
            StoreError::Conflict(Conflict::EncounterExists) => Self::EncounterExists,
            StoreError::Conflict(Conflict::AppointmentNotCheckedIn) => {
                Self::NotCheckedIn("no longer checked-in or fulfilled")
            }
            other => Self::Store(other),
        }
    }
}

impl From<AccessRefusal> for RecordError {
    fn from(refusal: AccessRefusal) -> Self {
        match refusal {
            AccessRefusal::NotFound => Self::NotFound,
            AccessRefusal::ReasonRequired => Self::ReasonRequired,
        }
    }
}

/// Permission to write the encounter of one appointment.
#[derive(Debug)]
pub struct EncounterGrant {
    actor: Actor,
    appointment: Appointment,
}

/// Permission to amend one encounter.
#[derive(Debug)]
pub struct AmendGrant {
    actor: Actor,
    encounter: EncounterRef,
}

/// Permission to record an allergy of one patient.
#[derive(Debug)]
pub struct AllergyGrant {
    actor: Actor,
    patient_id: UserId,
}

/// The medical-records use cases.
pub struct RecordService<P: Ports> {
    adapters: Adapters<P>,
}

impl<P: Ports> RecordService<P> {
    /// A service over the given adapters.
    #[must_use]
    pub fn new(adapters: Adapters<P>) -> Self {
        Self { adapters }
    }

    /// Whether `doctor` treats `patient` (an appointment between them, not cancelled).
    async fn treats(&self, doctor: &Actor, patient: UserId) -> Result<bool, StoreError> {
        if doctor.role != Role::Doctor {
            return Ok(false);
        }
        self.adapters
            .records
            .care_relationship(patient, doctor.user_id)
            .await
    }

    /// Decides a read of a patient's data, looking up only the fact the caller's role needs.
    async fn read_access(
        &self,
        actor: &Actor,
        patient: UserId,
        reason: Option<&str>,
    ) -> Result<ReadBasis, RecordError> {
        let care = self.treats(actor, patient).await?;
        let (exists, reason) = if actor.is_admin() {
            let exists = self.adapters.records.patient_exists(patient).await?;
            let reason = if exists {
                break_glass_reason(reason).map_err(|message| {
                    RecordError::Validation(ValidationErrors::single("reason", message))
                })?
            } else {
                None
            };
            (exists, reason)
        } else {
            (false, None)
        };
        Ok(read_basis(actor, patient, care, exists, reason)?)
    }

    fn record_read(
        actor: &Actor,
        origin: &RequestOrigin,
        patient: UserId,
        basis: ReadBasis,
    ) -> RecordRead {
        RecordRead {
            patient_id: patient,
            attribution: origin.attribute(actor),
            reason: match basis {
                ReadBasis::BreakGlass(reason) => Some(reason),
                ReadBasis::Own | ReadBasis::CareRelationship => None,
            },
        }
    }

    /// A page of the patient's history (encounters newest first, all allergies). The read
    /// is audited in the transaction that performs it.
    ///
    /// # Errors
    /// `NotFound` unless the caller is the patient, a treating doctor or an administrator;
    /// `ReasonRequired` for an administrator without a reason; `Validation` for a reason
    /// that is too long.
    pub async fn read_records(
        &self,
        actor: &Actor,
        origin: &RequestOrigin,
        patient: UserId,
        reason: Option<&str>,
        page: PageRequest,
    ) -> Result<PatientRecords, RecordError> {
        let basis = self.read_access(actor, patient, reason).await?;
        let read = Self::record_read(actor, origin, patient, basis);
        Ok(self.adapters.records.read_records(read, page).await?)
    }

    /// The patient's allergies, newest first; audited like a records read.
    ///
    /// # Errors
    /// As for `read_records`.
    pub async fn read_allergies(
        &self,
        actor: &Actor,
        origin: &RequestOrigin,
        patient: UserId,
        reason: Option<&str>,
    ) -> Result<Vec<Allergy>, RecordError> {
        let basis = self.read_access(actor, patient, reason).await?;
        let read = Self::record_read(actor, origin, patient, basis);
        Ok(self.adapters.records.read_allergies(read).await?)
    }

    /// Checks that the caller may write the encounter of an appointment: its own doctor,
    /// once the patient has checked in.
    ///
    /// # Errors
    /// `NotFound` (no such appointment, or not the caller's); `Forbidden` (its patient, an
    /// administrator); `NotCheckedIn`.
    pub async fn authorize_encounter(
        &self,
        actor: &Actor,
        appointment: AppointmentId,
    ) -> Result<EncounterGrant, RecordError> {
        let appointment = self
            .adapters
            .appointments
            .get(appointment)
            .await?
            .appointment;
        if !is_visible_to(&appointment, actor) {
            return Err(RecordError::NotFound);
        }
        if actor.role != Role::Doctor {
            return Err(RecordError::Forbidden(
                "only the appointment's doctor writes its encounter",
            ));
        }
        if !matches!(
            appointment.status,
            AppointmentStatus::CheckedIn | AppointmentStatus::Fulfilled
        ) {
            return Err(RecordError::NotCheckedIn(appointment.status.as_str()));
        }
        Ok(EncounterGrant {
            actor: *actor,
            appointment,
        })
    }

    /// Writes the encounter — note, diagnoses, prescriptions and vitals — in one
    /// transaction, with its audit events.
    ///
    /// # Errors
    /// `Validation` listing every invalid field; `EncounterExists`; `NotCheckedIn` when the
    /// appointment was cancelled meanwhile.
    pub async fn write_encounter(
        &self,
        grant: EncounterGrant,
        origin: &RequestOrigin,
        draft: &EncounterDraft,
    ) -> Result<Encounter, RecordError> {
        let content = draft.validate().map_err(RecordError::Validation)?;
        let new = NewEncounter {
            id: EncounterId::new(),
            appointment_id: grant.appointment.id,
            patient_id: grant.appointment.patient_id,
            doctor_id: grant.appointment.doctor_id,
            note: content.note,
            diagnoses: content.diagnoses,
            prescriptions: content.prescriptions,
            vitals: content.vitals,
            attribution: origin.attribute(&grant.actor),
        };
        Ok(self.adapters.records.create_encounter(new).await?)
    }

    /// Checks that the caller may amend an encounter: only its author.
    ///
    /// # Errors
    /// `NotFound` when the caller may not see it; `Forbidden` for those who can read it
    /// (its patient, another treating doctor, an administrator) but are not its author.
    pub async fn authorize_amendment(
        &self,
        actor: &Actor,
        encounter: EncounterId,
    ) -> Result<AmendGrant, RecordError> {
        let encounter = self
            .adapters
            .records
            .encounter_ref(encounter)
            .await?
            .ok_or(RecordError::NotFound)?;
        if actor.role == Role::Doctor && actor.is(encounter.doctor_id) {
            return Ok(AmendGrant {
                actor: *actor,
                encounter,
            });
        }
        let sees_it = match actor.role {
            Role::Patient => actor.is(encounter.patient_id),
            Role::Doctor => self.treats(actor, encounter.patient_id).await?,
            Role::Admin => true,
        };
        if sees_it {
            Err(RecordError::Forbidden(
                "only the encounter's author amends it",
            ))
        } else {
            Err(RecordError::NotFound)
        }
    }

    /// Stores an amendment (the original stays) and returns the encounter with all its
    /// amendments.
    ///
    /// # Errors
    /// `Validation` listing every invalid field.
    pub async fn amend(
        &self,
        grant: AmendGrant,
        origin: &RequestOrigin,
        draft: &AmendmentDraft,
    ) -> Result<Encounter, RecordError> {
        let content = draft.validate().map_err(RecordError::Validation)?;
        let new = NewAmendment {
            id: AmendmentId::new(),
            encounter: grant.encounter,
            reason: content.reason,
            note: content.note,
            diagnoses: content.diagnoses,
            prescriptions: content.prescriptions,
            attribution: origin.attribute(&grant.actor),
        };
        Ok(self.adapters.records.amend_encounter(new).await?)
    }

    /// Checks that the caller may record an allergy of a patient: a treating doctor.
    ///
    /// # Errors
    /// `NotFound` when the caller may not see the patient; `Forbidden` for the patient
    /// themself and administrators.
    pub async fn authorize_allergy(
        &self,
        actor: &Actor,
        patient: UserId,
    ) -> Result<AllergyGrant, RecordError> {
        let visible = match actor.role {
            Role::Doctor => {
                if self.treats(actor, patient).await? {
                    return Ok(AllergyGrant {
                        actor: *actor,
                        patient_id: patient,
                    });
                }
                false
            }
            Role::Patient => actor.is(patient),
            Role::Admin => self.adapters.records.patient_exists(patient).await?,
        };
        if visible {
            Err(RecordError::Forbidden(
                "allergies are recorded by a treating doctor",
            ))
        } else {
            Err(RecordError::NotFound)
        }
    }

    /// Records an allergy, with its audit event.
    ///
    /// # Errors
    /// `Validation` listing every invalid field; `NotFound` when the care relationship
    /// ended meanwhile.
    pub async fn add_allergy(
        &self,
        grant: AllergyGrant,
        origin: &RequestOrigin,
        draft: &AllergyDraft,
    ) -> Result<Allergy, RecordError> {
        let content = draft.validate().map_err(RecordError::Validation)?;
        let new = NewAllergy {
            id: AllergyId::new(),
            patient_id: grant.patient_id,
            recorded_by: grant.actor.user_id,
            substance: content.substance,
            reaction: content.reaction,
            severity: content.severity,
            attribution: origin.attribute(&grant.actor),
        };
        Ok(self.adapters.records.add_allergy(new).await?)
    }

    /// Who read or wrote the patient's data, newest first: for the patient and
    /// administrators.
    ///
    /// # Errors
    /// `NotFound` for other patients, doctors without a care relationship and unknown
    /// patients; `Forbidden` for a treating doctor (who can see the patient but not the log).
    pub async fn access_log(
        &self,
        actor: &Actor,
        patient: UserId,
        page: PageRequest,
    ) -> Result<Page<AuditEvent>, RecordError> {
        let allowed = match actor.role {
            Role::Patient => actor.is(patient),
            Role::Admin => self.adapters.records.patient_exists(patient).await?,
            Role::Doctor => {
                return Err(if self.treats(actor, patient).await? {
                    RecordError::Forbidden(
                        "the access log is shown to the patient and administrators",
                    )
                } else {
                    RecordError::NotFound
                });
            }
        };
        if !allowed {
            return Err(RecordError::NotFound);
        }
        Ok(self.adapters.records.access_log(patient, page).await?)
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;

    use super::*;
    use crate::appointment::Booking;
    use crate::ids::{PaymentId, SlotId};
    use crate::payment::{Money, Payment, PaymentStatus};
    use crate::records::{EncounterRef, SoapNote};
    use crate::test_support::{Mocks, block_on, now};

    fn actor(role: Role, user_id: UserId) -> Actor {
        Actor {
            user_id,
            role,
            session_id: None,
        }
    }

    /// What the store knows about the caller and the patient.
    #[derive(Clone, Copy, Debug)]
    struct World {
        /// The caller (a doctor) has a non-cancelled appointment with the patient.
        care: bool,
        /// The patient exists.
        exists: bool,
    }

    /// Mocks that answer the relationship questions, and (when `expect_read`) one audited
    /// read that must carry `reason`.
    fn mocks(world: World, expect_read: Option<Option<&'static str>>, of_allergies: bool) -> Mocks {
        let mut mocks = Mocks::at(now());
        mocks
            .records
            .expect_care_relationship()
            .returning(move |_, _| Box::pin(async move { Ok(world.care) }));
        mocks
            .records
            .expect_patient_exists()
            .returning(move |_| Box::pin(async move { Ok(world.exists) }));
        let times = usize::from(expect_read.is_some());
        let reason = expect_read.flatten();
        mocks
            .records
            .expect_read_records()
            .withf(move |read, _| read.reason.as_deref() == reason)
            .times(if of_allergies { 0 } else { times })
            .returning(|_, _| {
                Box::pin(async {
                    Ok(PatientRecords {
                        allergies: vec![],
                        encounters: Page {
                            items: vec![],
                            next: None,
                        },
                    })
                })
            });
        mocks
            .records
            .expect_read_allergies()
            .withf(move |read| read.reason.as_deref() == reason)
            .times(if of_allergies { times } else { 0 })
            .returning(|_| Box::pin(async { Ok(vec![]) }));
        mocks
    }

    /// (caller, what the store knows, reason given, audited reason, expected)
    type ReadCase<'a> = (
        Actor,
        World,
        Option<&'a str>,
        Option<Option<&'static str>>,
        Outcome,
    );

    #[derive(Debug, PartialEq)]
    enum Outcome {
        Read,
        NotFound,
        ReasonRequired,
        Invalid,
    }

    fn outcome<T>(result: Result<T, RecordError>) -> Outcome {
        match result {
            Ok(_) => Outcome::Read,
            Err(RecordError::NotFound) => Outcome::NotFound,
            Err(RecordError::ReasonRequired) => Outcome::ReasonRequired,
            Err(RecordError::Validation(_)) => Outcome::Invalid,
            Err(other) => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn reading_history_for_every_role_and_relationship() {
        let patient = UserId::new();
        let long = "x".repeat(501);
        let with = |care, exists| World { care, exists };
        // (caller, what the store knows, reason given, audited reason, expected)
        let cases: Vec<ReadCase<'_>> = vec![
            // the patient themself, with or without a reason (ignored, not stored)
            (
                actor(Role::Patient, patient),
                with(false, true),
                None,
                Some(None),
                Outcome::Read,
            ),
            (
                actor(Role::Patient, patient),
                with(false, true),
                Some("curious"),
                Some(None),
                Outcome::Read,
            ),
            // another patient, whatever they claim
            (
                actor(Role::Patient, UserId::new()),
                with(false, true),
                None,
                None,
                Outcome::NotFound,
            ),
            (
                actor(Role::Patient, UserId::new()),
                with(false, true),
                Some("please"),
                None,
                Outcome::NotFound,
            ),
            // a treating doctor (an appointment that is not cancelled)
            (
                actor(Role::Doctor, UserId::new()),
                with(true, true),
                None,
                Some(None),
                Outcome::Read,
            ),
            // a doctor without one — including one whose only appointments were cancelled,
            // which the store reports as no care relationship
            (
                actor(Role::Doctor, UserId::new()),
                with(false, true),
                None,
                None,
                Outcome::NotFound,
            ),
            (
                actor(Role::Doctor, UserId::new()),
                with(false, true),
                Some("urgent"),
                None,
                Outcome::NotFound,
            ),
            // an administrator: only with a reason, which is audited
            (
                actor(Role::Admin, UserId::new()),
                with(false, true),
                Some(" court order 7 "),
                Some(Some("court order 7")),
                Outcome::Read,
            ),
            (
                actor(Role::Admin, UserId::new()),
                with(false, true),
                None,
                None,
                Outcome::ReasonRequired,
            ),
            (
                actor(Role::Admin, UserId::new()),
                with(false, true),
                Some("   "),
                None,
                Outcome::ReasonRequired,
            ),
            (
                actor(Role::Admin, UserId::new()),
                with(false, true),
                Some(&long),
                None,
                Outcome::Invalid,
            ),
            (
                actor(Role::Admin, UserId::new()),
                with(false, false),
                Some("audit"),
                None,
                Outcome::NotFound,
            ),
        ];
        for (who, world, reason, audited, expected) in cases {
            let service = RecordService::new(mocks(world, audited, false).build());
            let origin = RequestOrigin::default();
            let records = block_on(service.read_records(
                &who,
                &origin,
                patient,
                reason,
                PageRequest::default(),
            ));
            assert_eq!(
                outcome(records),
                expected,
                "records: {who:?} {world:?} {reason:?}"
            );
            let service = RecordService::new(mocks(world, audited, true).build());
            let allergies = block_on(service.read_allergies(&who, &origin, patient, reason));
            assert_eq!(
                outcome(allergies),
                expected,
                "allergies: {who:?} {world:?} {reason:?}"
            );
        }
    }

    #[test]
    fn the_audited_read_names_the_caller_and_origin() {
        let patient = UserId::new();
        let doctor = actor(Role::Doctor, UserId::new());
        let mut mocks = Mocks::at(now());
        mocks
            .records
            .expect_care_relationship()
            .withf(move |p, d| *p == patient && *d == doctor.user_id)
            .returning(|_, _| Box::pin(async { Ok(true) }));
        mocks
            .records
            .expect_read_allergies()
            .withf(move |read| {
                read.patient_id == patient
                    && read.attribution.actor_id == doctor.user_id
                    && read.attribution.actor_role == Role::Doctor
                    && read.attribution.request_id.as_deref() == Some("req-1")
                    && read.attribution.client_ip.as_deref() == Some("10.0.0.1")
            })
            .times(1)
            .returning(|_| Box::pin(async { Ok(vec![]) }));
        let service = RecordService::new(mocks.build());
        let origin = RequestOrigin {
            request_id: Some("req-1".into()),
            client_ip: Some("10.0.0.1".into()),
        };
        assert!(block_on(service.read_allergies(&doctor, &origin, patient, None)).is_ok());
    }

    fn appointment(status: AppointmentStatus) -> Appointment {
        Appointment {
            id: AppointmentId::new(),
            patient_id: UserId::new(),
            doctor_id: UserId::new(),
            slot_id: SlotId::new(),
            starts_at: now(),
            ends_at: now() + TimeDelta::minutes(30),
            reason: String::new(),
            status,
            cancel_reason: None,
            cancelled_at: None,
            created_at: now(),
        }
    }

    fn booking(appointment: &Appointment) -> Booking {
        Booking {
            appointment: appointment.clone(),
            payment: Payment {
                id: PaymentId::new(),
                appointment_id: appointment.id,
                amount: Money {
                    amount_cents: 5000,
                    currency: "EUR".into(),
                },
                status: PaymentStatus::Pending,
                refunded_cents: 0,
                paid_at: None,
                created_at: now(),
            },
        }
    }

    fn authorize_encounter(who: &Actor, appt: &Appointment) -> Result<EncounterGrant, RecordError> {
        let mut mocks = Mocks::at(now());
        let found = booking(appt);
        mocks.appointments.expect_get().returning(move |_| {
            let found = found.clone();
            Box::pin(async move { Ok(found) })
        });
        let service = RecordService::new(mocks.build());
        block_on(service.authorize_encounter(who, appt.id))
    }

    #[test]
    fn only_the_appointments_doctor_writes_after_check_in() {
        let appt = appointment(AppointmentStatus::CheckedIn);
        let own_doctor = actor(Role::Doctor, appt.doctor_id);
        assert!(authorize_encounter(&own_doctor, &appt).is_ok());
        let fulfilled = Appointment {
            status: AppointmentStatus::Fulfilled,
            ..appt.clone()
        };
        assert!(authorize_encounter(&own_doctor, &fulfilled).is_ok());
        for status in [
            AppointmentStatus::Booked,
            AppointmentStatus::Cancelled,
            AppointmentStatus::NoShow,
        ] {
            let appt = Appointment {
                status,
                ..appt.clone()
            };
            assert!(matches!(
                authorize_encounter(&own_doctor, &appt),
                Err(RecordError::NotCheckedIn(_))
            ));
        }
        for (who, forbidden) in [
            (actor(Role::Doctor, UserId::new()), false),
            (actor(Role::Patient, UserId::new()), false),
            (actor(Role::Patient, appt.patient_id), true),
            (actor(Role::Admin, UserId::new()), true),
        ] {
            let result = authorize_encounter(&who, &appt);
            if forbidden {
                assert!(matches!(result, Err(RecordError::Forbidden(_))), "{who:?}");
            } else {
                assert!(matches!(result, Err(RecordError::NotFound)), "{who:?}");
            }
        }
    }

    #[test]
    fn the_encounter_is_validated_before_storing_and_stored_whole() {
        let appt = appointment(AppointmentStatus::CheckedIn);
        let doctor = actor(Role::Doctor, appt.doctor_id);
        let mut mocks = Mocks::at(now());
        let found = booking(&appt);
        mocks.appointments.expect_get().returning(move |_| {
            let found = found.clone();
            Box::pin(async move { Ok(found) })
        });
        let (patient, doctor_id) = (appt.patient_id, appt.doctor_id);
        mocks
            .records
            .expect_create_encounter()
            .withf(move |new| {
                new.patient_id == patient
                    && new.doctor_id == doctor_id
                    && new.attribution.actor_id == doctor_id
                    && new.vitals.len() == 1
            })
            .times(1)
            .returning(|new| {
                Box::pin(async move {
                    Ok(Encounter {
                        id: new.id,
                        appointment_id: new.appointment_id,
                        patient_id: new.patient_id,
                        doctor_id: new.doctor_id,
                        note: new.note,
                        diagnoses: new.diagnoses,
                        prescriptions: new.prescriptions,
                        vitals: new.vitals,
                        amendments: vec![],
                        created_at: now(),
                    })
                })
            });
        let service = RecordService::new(mocks.build());
        let origin = RequestOrigin::default();
        let mut draft = EncounterDraft {
            assessment: "well".into(),
            vitals: vec![crate::records::VitalDraft {
                kind: "spo2".into(),
                value: 101.0,
                unit: None,
            }],
            ..EncounterDraft::default()
        };
        // invalid: refused before the store is called (times(1) counts only the valid one)
        let grant = block_on(service.authorize_encounter(&doctor, appt.id));
        let refused = grant.map(|g| block_on(service.write_encounter(g, &origin, &draft)));
        assert!(matches!(refused, Ok(Err(RecordError::Validation(_)))));
        draft.vitals[0].value = 97.0;
        let grant = block_on(service.authorize_encounter(&doctor, appt.id));
        let written = grant.map(|g| block_on(service.write_encounter(g, &origin, &draft)));
        assert!(
            matches!(written, Ok(Ok(e)) if e.note == SoapNote { assessment: "well".into(), ..SoapNote::default() })
        );
    }

    fn amend_with(
        who: &Actor,
        encounter: EncounterRef,
        care: bool,
    ) -> Result<AmendGrant, RecordError> {
        let mut mocks = Mocks::at(now());
        mocks
            .records
            .expect_encounter_ref()
            .returning(move |_| Box::pin(async move { Ok(Some(encounter)) }));
        mocks
            .records
            .expect_care_relationship()
            .returning(move |_, _| Box::pin(async move { Ok(care) }));
        block_on(RecordService::new(mocks.build()).authorize_amendment(who, encounter.id))
    }

    #[test]
    fn only_the_author_amends() {
        let encounter = EncounterRef {
            id: EncounterId::new(),
            patient_id: UserId::new(),
            doctor_id: UserId::new(),
        };
        assert!(amend_with(&actor(Role::Doctor, encounter.doctor_id), encounter, true).is_ok());
        // those who may read the encounter learn they may not amend it
        for (who, care) in [
            (actor(Role::Patient, encounter.patient_id), false),
            (actor(Role::Doctor, UserId::new()), true),
            (actor(Role::Admin, UserId::new()), false),
        ] {
            assert!(
                matches!(
                    amend_with(&who, encounter, care),
                    Err(RecordError::Forbidden(_))
                ),
                "{who:?}"
            );
        }
        // everyone else does not learn it exists
        for (who, care) in [
            (actor(Role::Patient, UserId::new()), false),
            (actor(Role::Doctor, UserId::new()), false),
            // the author's id in the patient role is someone else
            (actor(Role::Patient, encounter.doctor_id), false),
        ] {
            assert!(
                matches!(
                    amend_with(&who, encounter, care),
                    Err(RecordError::NotFound)
                ),
                "{who:?}"
            );
        }
        let mut mocks = Mocks::at(now());
        mocks
            .records
            .expect_encounter_ref()
            .returning(|_| Box::pin(async { Ok(None) }));
        let unknown = block_on(
            RecordService::new(mocks.build())
                .authorize_amendment(&actor(Role::Doctor, UserId::new()), EncounterId::new()),
        );
        assert!(matches!(unknown, Err(RecordError::NotFound)));
    }

    #[test]
    fn allergies_are_written_by_a_treating_doctor_only() {
        let patient = UserId::new();
        let cases = [
            (
                actor(Role::Doctor, UserId::new()),
                World {
                    care: true,
                    exists: true,
                },
                "ok",
            ),
            (
                actor(Role::Doctor, UserId::new()),
                World {
                    care: false,
                    exists: true,
                },
                "404",
            ),
            (
                actor(Role::Patient, patient),
                World {
                    care: false,
                    exists: true,
                },
                "403",
            ),
            (
                actor(Role::Patient, UserId::new()),
                World {
                    care: false,
                    exists: true,
                },
                "404",
            ),
            (
                actor(Role::Admin, UserId::new()),
                World {
                    care: false,
                    exists: true,
                },
                "403",
            ),
            (
                actor(Role::Admin, UserId::new()),
                World {
                    care: false,
                    exists: false,
                },
                "404",
            ),
        ];
        for (who, world, expected) in cases {
            let service = RecordService::new(mocks(world, None, false).build());
            let got = match block_on(service.authorize_allergy(&who, patient)) {
                Ok(_) => "ok",
                Err(RecordError::NotFound) => "404",
                Err(RecordError::Forbidden(_)) => "403",
                Err(other) => panic!("{other:?}"),
            };
            assert_eq!(got, expected, "{who:?} {world:?}");
        }
    }

    #[test]
    fn the_access_log_is_for_the_patient_and_administrators() {
        let patient = UserId::new();
        let cases = [
            (
                actor(Role::Patient, patient),
                World {
                    care: false,
                    exists: true,
                },
                "ok",
            ),
            (
                actor(Role::Admin, UserId::new()),
                World {
                    care: false,
                    exists: true,
                },
                "ok",
            ),
            (
                actor(Role::Admin, UserId::new()),
                World {
                    care: false,
                    exists: false,
                },
                "404",
            ),
            (
                actor(Role::Patient, UserId::new()),
                World {
                    care: false,
                    exists: true,
                },
                "404",
            ),
            (
                actor(Role::Doctor, UserId::new()),
                World {
                    care: true,
                    exists: true,
                },
                "403",
            ),
            (
                actor(Role::Doctor, UserId::new()),
                World {
                    care: false,
                    exists: true,
                },
                "404",
            ),
        ];
        for (who, world, expected) in cases {
            let mut mocks = mocks(world, None, false);
            mocks
                .records
                .expect_access_log()
                .times(usize::from(expected == "ok"))
                .returning(|_, _| {
                    Box::pin(async {
                        Ok(Page {
                            items: vec![],
                            next: None,
                        })
                    })
                });
            let service = RecordService::new(mocks.build());
            let got = match block_on(service.access_log(&who, patient, PageRequest::default())) {
                Ok(_) => "ok",
                Err(RecordError::NotFound) => "404",
                Err(RecordError::Forbidden(_)) => "403",
                Err(other) => panic!("{other:?}"),
            };
            assert_eq!(got, expected, "{who:?} {world:?}");
        }
    }
}
