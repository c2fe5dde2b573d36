//! Slots. Overlaps are refused by the `slots_no_overlap` exclusion constraint; a batch is
//! one INSERT statement, so it lands whole or not at all.

use chrono::{DateTime, Utc};
use diesel::dsl::now;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use shms_domain::ids::SlotId;
use shms_domain::ids::UserId;
use shms_domain::page::{Cursor, Page, PageRequest};
use shms_domain::ports::SlotRepository;
use shms_domain::slot::{NewSlot, Slot, SlotFilter, SlotSearch};
use shms_domain::{Conflict, StoreError};

use crate::rows::SlotRow;
use crate::schema::{doctors, slots};
use crate::sql::lower;
use crate::{PgStore, detached, map_diesel, retry_rollbacks};

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

    async fn find_many(&self, ids: Vec<SlotId>) -> Result<Vec<Slot>, StoreError> {
        let mut conn = self.conn().await?;
        let ids: Vec<_> = ids.iter().map(SlotId::as_uuid).collect();
        slots::table
            .filter(slots::id.eq_any(ids))
            .select(SlotRow::as_select())
            .load(&mut conn)
            .await
            .map_err(map_diesel)?
            .into_iter()
            .map(Slot::try_from)
            .collect()
    }

    async fn search(
        &self,
        search: SlotSearch,
        page: PageRequest,
    ) -> Result<Page<Slot>, StoreError> {
        let mut conn = self.conn().await?;
        // walks slots_free_search_idx in (starts_at, id) order and stops after one page; the
        // plan is in docs/scheduling.md
        let mut query = slots::table
            .inner_join(doctors::table)
            // a literal, not a bind: a generic prepared plan must still match the partial index
            .filter(diesel::dsl::sql::<diesel::sql_types::Bool>(
                "\"slots\".\"status\" = 'free'",
            ))
            .filter(slots::starts_at.ge(search.from))
            .filter(slots::starts_at.gt(now))
            .filter(slots::held_until.is_null().or(slots::held_until.le(now)))
            .filter(doctors::active.eq(true))
            .select(SlotRow::as_select())
            .order((slots::starts_at.asc(), slots::id.asc()))
            .limit(i64::from(page.limit) + 1)
            .into_boxed();
        if let Some(specialty) = search.specialty {
            query = query.filter(lower(doctors::specialty).eq(specialty.to_lowercase()));
        }
        if let Some(to) = search.to {
            query = query.filter(slots::starts_at.lt(to));
        }
        if let Some(Cursor { key, id }) = page.after {
            let at = parse_time_key(&key)?;
            // the plain lower bound lets the index scan start at the cursor instead of
            // walking and discarding every earlier row
            query = query.filter(slots::starts_at.ge(at)).filter(
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

    async fn hold(
        &self,
        slot: SlotId,
        patient: UserId,
        until: DateTime<Utc>,
    ) -> Result<Slot, StoreError> {
        let store = self.clone();
        detached(async move {
            let mut conn = store.conn().await?;
            // one statement: the row lock orders it against a concurrent booking's
            // occupy_slot(), and the conditions are re-checked on the row that won
            let held = retry_rollbacks!({
                let conn = &mut *conn;
                diesel::update(
                    slots::table
                        .filter(slots::id.eq(slot.as_uuid()))
                        .filter(slots::status.eq("free"))
                        .filter(slots::starts_at.gt(now))
                        .filter(
                            slots::held_until
                                .is_null()
                                .or(slots::held_until.le(now))
                                .or(slots::held_by.eq(patient.as_uuid())),
                        ),
                )
                .set((
                    slots::held_by.eq(patient.as_uuid()),
                    slots::held_until.eq(until),
                ))
                .returning(SlotRow::as_returning())
                .get_result(conn)
                .await
                .optional()
            })
            .map_err(map_diesel)?;
            match held {
                Some(row) => Slot::try_from(row),
                None => {
                    let exists = diesel::select(diesel::dsl::exists(
                        slots::table.filter(slots::id.eq(slot.as_uuid())),
                    ))
                    .get_result::<bool>(&mut conn)
                    .await
                    .map_err(map_diesel)?;
                    Err(if exists {
                        StoreError::Conflict(Conflict::SlotUnavailable)
                    } else {
                        StoreError::NotFound
                    })
                }
            }
        })
        .await
    }

    async fn offer_lapsed_holds(&self) -> Result<u32, StoreError> {
        let store = self.clone();
        detached(async move {
            let mut conn = store.conn().await?;
            let offered = diesel::select(offer_lapsed_holds())
                .get_result::<i32>(&mut conn)
                .await
                .map_err(map_diesel)?;
            Ok(u32::try_from(offered).unwrap_or_default())
        })
        .await
    }
}

diesel::define_sql_function! {
    /// Migration 000006's sweep of lapsed holds.
    fn offer_lapsed_holds() -> diesel::sql_types::Integer;
}
