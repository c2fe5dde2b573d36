//! The medical-records port: encounters, amendments and allergies (append-only, audited by
//! trigger), audited reads, and the access log. Writes and audited reads run detached, each
//! in one transaction.

mod read;
mod rows;
mod write;

use diesel::dsl::exists;
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use shms_domain::StoreError;
use shms_domain::ids::{EncounterId, UserId};
use shms_domain::page::{Cursor, Page, PageRequest};
use shms_domain::ports::RecordRepository;
use shms_domain::records::{
    Allergy, AuditEvent, Encounter, EncounterRef, NewAllergy, NewAmendment, NewEncounter,
    PatientRecords, RecordRead,
};

use self::rows::{AuditRow, audit_event};
use crate::schema::{appointments, audit_events, encounters, patients, users};
use crate::slots::{parse_time_key, time_key};
use crate::{PgStore, detached, map_diesel};

fn single(encounters: Vec<Encounter>) -> Result<Encounter, StoreError> {
    encounters.into_iter().next().ok_or(StoreError::NotFound)
}

fn time_cursor(
    after: Option<Cursor>,
) -> Result<Option<(chrono::DateTime<chrono::Utc>, uuid::Uuid)>, StoreError> {
    after
        .map(|Cursor { key, id }| parse_time_key(&key).map(|at| (at, id)))
        .transpose()
}

impl RecordRepository for PgStore {
    async fn care_relationship(&self, patient: UserId, doctor: UserId) -> Result<bool, StoreError> {
        let mut conn = self.conn().await?;
        diesel::select(exists(
            appointments::table
                .filter(appointments::patient_id.eq(patient.as_uuid()))
                .filter(appointments::doctor_id.eq(doctor.as_uuid()))
                .filter(appointments::status.ne("cancelled")),
        ))
        .get_result(&mut conn)
        .await
        .map_err(map_diesel)
    }

    async fn patient_exists(&self, patient: UserId) -> Result<bool, StoreError> {
        let mut conn = self.conn().await?;
        diesel::select(exists(patients::table.find(patient.as_uuid())))
            .get_result(&mut conn)
            .await
            .map_err(map_diesel)
    }

    async fn encounter_ref(&self, id: EncounterId) -> Result<Option<EncounterRef>, StoreError> {
        let mut conn = self.conn().await?;
        let row: Option<(uuid::Uuid, uuid::Uuid, uuid::Uuid)> = encounters::table
            .find(id.as_uuid())
            .select((
                encounters::id,
                encounters::patient_id,
                encounters::doctor_id,
            ))
            .first(&mut conn)
            .await
            .optional()
            .map_err(map_diesel)?;
        Ok(row.map(|(id, patient, doctor)| EncounterRef {
            id: id.into(),
            patient_id: patient.into(),
            doctor_id: doctor.into(),
        }))
    }

    async fn create_encounter(&self, new: NewEncounter) -> Result<Encounter, StoreError> {
        let store = self.clone();
        detached(async move {
            let mut conn = store.conn().await?;
            let rows = conn
                .transaction(async |conn| {
                    write::insert_encounter(conn, &new).await?;
                    read::encounter_by_id(conn, new.id.as_uuid()).await
                })
                .await
                .map_err(map_diesel)?;
            single(rows.assemble()?)
        })
        .await
    }

    async fn amend_encounter(&self, new: NewAmendment) -> Result<Encounter, StoreError> {
        let store = self.clone();
        detached(async move {
            let mut conn = store.conn().await?;
            let rows = conn
                .transaction(async |conn| {
                    write::insert_amendment(conn, &new).await?;
                    read::encounter_by_id(conn, new.encounter.id.as_uuid()).await
                })
                .await
                .map_err(map_diesel)?;
            single(rows.assemble()?)
        })
        .await
    }

    async fn add_allergy(&self, new: NewAllergy) -> Result<Allergy, StoreError> {
        let store = self.clone();
        detached(async move {
            let mut conn = store.conn().await?;
            conn.transaction(async |conn| write::insert_allergy(conn, &new).await)
                .await
                .map_err(map_diesel)?
                .try_into()
        })
        .await
    }

    async fn read_records(
        &self,
        read: RecordRead,
        page: PageRequest,
    ) -> Result<PatientRecords, StoreError> {
        let after = time_cursor(page.after)?;
        let store = self.clone();
        detached(async move {
            let mut conn = store.conn().await?;
            let patient = read.patient_id.as_uuid();
            let (allergies, rows) = conn
                .transaction(async |conn| {
                    read::audit_read(conn, &read, "records").await?;
                    let allergies = read::allergies_of(conn, patient).await?;
                    let page_rows =
                        read::encounter_page(conn, patient, after, i64::from(page.limit) + 1)
                            .await?;
                    Ok::<_, diesel::result::Error>((
                        allergies,
                        read::with_children(conn, page_rows).await?,
                    ))
                })
                .await
                .map_err(map_diesel)?;
            let allergies = allergies
                .into_iter()
                .map(Allergy::try_from)
                .collect::<Result<Vec<_>, _>>()?;
            let encounters =
                Page::from_overfetch(rows.assemble()?, page.limit, |e: &Encounter| Cursor {
                    key: time_key(e.created_at),
                    id: e.id.as_uuid(),
                });
            Ok(PatientRecords {
                allergies,
                encounters,
            })
        })
        .await
    }

    async fn read_allergies(&self, read: RecordRead) -> Result<Vec<Allergy>, StoreError> {
        let store = self.clone();
        detached(async move {
            let mut conn = store.conn().await?;
            let patient = read.patient_id.as_uuid();
            conn.transaction(async |conn| {
                read::audit_read(conn, &read, "allergies").await?;
                read::allergies_of(conn, patient).await
            })
            .await
            .map_err(map_diesel)?
            .into_iter()
            .map(Allergy::try_from)
            .collect()
        })
        .await
    }

    async fn access_log(
        &self,
        patient: UserId,
        page: PageRequest,
    ) -> Result<Page<AuditEvent>, StoreError> {
        let after = time_cursor(page.after)?;
        let mut conn = self.conn().await?;
        let mut query = audit_events::table
            .inner_join(users::table)
            .filter(audit_events::patient_id.eq(patient.as_uuid()))
            .order((audit_events::occurred_at.desc(), audit_events::id.desc()))
            .limit(i64::from(page.limit) + 1)
            .select((AuditRow::as_select(), users::full_name))
            .into_boxed();
        if let Some((at, id)) = after {
            query = query.filter(
                audit_events::occurred_at
                    .lt(at)
                    .or(audit_events::occurred_at
                        .eq(at)
                        .and(audit_events::id.lt(id))),
            );
        }
        let rows = query.load(&mut conn).await.map_err(map_diesel)?;
        let events = rows
            .into_iter()
            .map(audit_event)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_overfetch(
            events,
            page.limit,
            |e: &AuditEvent| Cursor {
                key: time_key(e.occurred_at),
                id: e.id.as_uuid(),
            },
        ))
    }
}
