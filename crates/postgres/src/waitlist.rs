//! The waitlist and the notifications outbox. Offers are not made here: the database makes
//! them (migration 000006, `waitlist_offer`) in the transaction that frees a slot.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use shms_domain::StoreError;
use shms_domain::ids::UserId;
use shms_domain::page::{Cursor, Page, PageRequest};
use shms_domain::ports::WaitlistRepository;
use shms_domain::waitlist::{NewWaitlistEntry, Notification, WaitlistEntry};
use uuid::Uuid;

use crate::rows::parse;
use crate::schema::{notifications, waitlist_entries};
use crate::slots::{parse_time_key, time_key};
use crate::{PgStore, detached, map_diesel};

#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = waitlist_entries, check_for_backend(diesel::pg::Pg))]
struct EntryRow {
    id: Uuid,
    patient_id: Uuid,
    doctor_id: Uuid,
    from_at: DateTime<Utc>,
    to_at: DateTime<Utc>,
    status: String,
    offered_slot_id: Option<Uuid>,
    offered_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
}

impl TryFrom<EntryRow> for WaitlistEntry {
    type Error = StoreError;

    fn try_from(row: EntryRow) -> Result<Self, Self::Error> {
        Ok(Self {
            id: row.id.into(),
            patient_id: row.patient_id.into(),
            doctor_id: row.doctor_id.into(),
            from: row.from_at,
            to: row.to_at,
            status: parse(&row.status)?,
            offered_slot_id: row.offered_slot_id.map(Into::into),
            offered_at: row.offered_at,
            created_at: row.created_at,
        })
    }
}

#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = notifications, check_for_backend(diesel::pg::Pg))]
struct NotificationRow {
    id: Uuid,
    kind: String,
    payload: serde_json::Value,
    created_at: DateTime<Utc>,
    delivered_at: Option<DateTime<Utc>>,
}

impl From<NotificationRow> for Notification {
    fn from(row: NotificationRow) -> Self {
        Self {
            id: row.id.into(),
            kind: row.kind,
            payload: row.payload,
            created_at: row.created_at,
            delivered_at: row.delivered_at,
        }
    }
}

impl WaitlistRepository for PgStore {
    async fn join(&self, entry: NewWaitlistEntry) -> Result<WaitlistEntry, StoreError> {
        let store = self.clone();
        detached(async move {
            let mut conn = store.conn().await?;
            diesel::insert_into(waitlist_entries::table)
                .values((
                    waitlist_entries::id.eq(entry.id.as_uuid()),
                    waitlist_entries::patient_id.eq(entry.patient_id.as_uuid()),
                    waitlist_entries::doctor_id.eq(entry.doctor_id.as_uuid()),
                    waitlist_entries::from_at.eq(entry.from),
                    waitlist_entries::to_at.eq(entry.to),
                ))
                .returning(EntryRow::as_returning())
                .get_result(&mut conn)
                .await
                .map_err(map_diesel)?
                .try_into()
        })
        .await
    }

    async fn entries(
        &self,
        patient: UserId,
        page: PageRequest,
    ) -> Result<Page<WaitlistEntry>, StoreError> {
        let mut conn = self.conn().await?;
        let mut query = waitlist_entries::table
            .filter(waitlist_entries::patient_id.eq(patient.as_uuid()))
            .select(EntryRow::as_select())
            .order((
                waitlist_entries::created_at.desc(),
                waitlist_entries::id.desc(),
            ))
            .limit(i64::from(page.limit) + 1)
            .into_boxed();
        if let Some(Cursor { key, id }) = page.after {
            let at = parse_time_key(&key)?;
            query = query.filter(
                waitlist_entries::created_at
                    .lt(at)
                    .or(waitlist_entries::created_at
                        .eq(at)
                        .and(waitlist_entries::id.lt(id))),
            );
        }
        let rows = query.load(&mut conn).await.map_err(map_diesel)?;
        let items = rows
            .into_iter()
            .map(WaitlistEntry::try_from)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_overfetch(
            items,
            page.limit,
            |entry: &WaitlistEntry| Cursor {
                key: time_key(entry.created_at),
                id: entry.id.as_uuid(),
            },
        ))
    }

    async fn notifications(
        &self,
        user: UserId,
        page: PageRequest,
    ) -> Result<Page<Notification>, StoreError> {
        let mut conn = self.conn().await?;
        let mut query = notifications::table
            .filter(notifications::user_id.eq(user.as_uuid()))
            .select(NotificationRow::as_select())
            .order((notifications::created_at.desc(), notifications::id.desc()))
            .limit(i64::from(page.limit) + 1)
            .into_boxed();
        if let Some(Cursor { key, id }) = page.after {
            let at = parse_time_key(&key)?;
            query = query.filter(
                notifications::created_at
                    .lt(at)
                    .or(notifications::created_at
                        .eq(at)
                        .and(notifications::id.lt(id))),
            );
        }
        let rows = query.load(&mut conn).await.map_err(map_diesel)?;
        let items = rows.into_iter().map(Notification::from).collect();
        Ok(Page::from_overfetch(
            items,
            page.limit,
            |n: &Notification| Cursor {
                key: time_key(n.created_at),
                id: n.id.as_uuid(),
            },
        ))
    }
}
