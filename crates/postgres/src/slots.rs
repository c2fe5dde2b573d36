//! Slots. Overlaps are refused by the `slots_no_overlap` exclusion constraint; a batch is
//! one INSERT statement, so it lands whole or not at all.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use shms_domain::StoreError;
use shms_domain::ids::SlotId;
use shms_domain::page::{Cursor, Page, PageRequest};
use shms_domain::ports::SlotRepository;
use shms_domain::slot::{NewSlot, Slot, SlotFilter};

use crate::rows::SlotRow;
use crate::schema::slots;
use crate::{PgStore, detached, map_diesel};

/// A time cursor's key: RFC 3339 with microseconds, as PostgreSQL stores it.
pub(crate) fn time_key(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// Reads a time cursor's key back. The HTTP layer only hands out keys made by `time_key`.
pub(crate) fn parse_time_key(key: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(key)
        .map(|at| at.with_timezone(&Utc))
        .map_err(|error| StoreError::Other(format!("bad cursor key: {error}").into()))
}

impl SlotRepository for PgStore {
    async fn create_many(&self, new_slots: Vec<NewSlot>) -> Result<Vec<Slot>, StoreError> {
        let store = self.clone();
        detached(async move {
            let mut conn = store.conn().await?;
            let values: Vec<_> = new_slots
                .iter()
                .map(|slot| {
                    (
                        slots::id.eq(slot.id.as_uuid()),
                        slots::doctor_id.eq(slot.doctor_id.as_uuid()),
                        slots::starts_at.eq(slot.window.starts_at()),
                        slots::ends_at.eq(slot.window.ends_at()),
                    )
                })
                .collect();
            let rows = diesel::insert_into(slots::table)
                .values(values)
                .returning(SlotRow::as_returning())
                .get_results(&mut conn)
                .await
                .map_err(map_diesel)?;
            let mut created = rows
                .into_iter()
                .map(Slot::try_from)
                .collect::<Result<Vec<_>, _>>()?;
            created.sort_by_key(|slot| (slot.starts_at, slot.id));
            Ok(created)
        })
        .await
    }

    async fn find(&self, id: SlotId) -> Result<Option<Slot>, StoreError> {
        let mut conn = self.conn().await?;
        slots::table
            .find(id.as_uuid())
            .select(SlotRow::as_select())
            .first(&mut conn)
            .await
            .optional()
            .map_err(map_diesel)?
            .map(Slot::try_from)
            .transpose()
    }

    async fn list(&self, filter: SlotFilter, page: PageRequest) -> Result<Page<Slot>, StoreError> {
        let mut conn = self.conn().await?;
        let mut query = slots::table
            .filter(slots::doctor_id.eq(filter.doctor_id.as_uuid()))
            .select(SlotRow::as_select())
            .order((slots::starts_at.asc(), slots::id.asc()))
            .limit(i64::from(page.limit) + 1)
            .into_boxed();
        if let Some(from) = filter.from {
            query = query.filter(slots::starts_at.ge(from));
        }
        if let Some(to) = filter.to {
            query = query.filter(slots::starts_at.lt(to));
        }
        if let Some(status) = filter.status {
            query = query.filter(slots::status.eq(status.as_str()));
        }
        if let Some(Cursor { key, id }) = page.after {
            let at = parse_time_key(&key)?;
            query = query.filter(
                slots::starts_at
                    .gt(at)
                    .or(slots::starts_at.eq(at).and(slots::id.gt(id))),
            );
        }
        let rows = query.load(&mut conn).await.map_err(map_diesel)?;
        let items = rows
            .into_iter()
            .map(Slot::try_from)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_overfetch(items, page.limit, |slot: &Slot| {
            Cursor {
                key: time_key(slot.starts_at),
                id: slot.id.as_uuid(),
            }
        }))
    }
}
