//! Booking and cancelling. Each is one transaction; the triggers of the core migration turn
//! the slot busy or free and cancel an unpaid payment inside that same transaction.
//!
//! Round trips per booking: BEGIN, the appointment INSERT … SELECT … FOR UPDATE (locks the
//! slot, copies its doctor and interval, fires the slot trigger), the payment INSERT … SELECT
//! (copies the fee), COMMIT.
//!
//! A series locks its slots (in id order, so two overlapping series cannot deadlock), asks
//! the database which of them this patient cannot take, and books all of them only if none.

use diesel::prelude::*;
use diesel::sql_types::{Array, Text, Uuid as SqlUuid};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use shms_domain::appointment::{
    Appointment, AppointmentFilter, AppointmentStatus, Booking, Cancellation, NewBooking,
    SeriesOutcome,
};
use shms_domain::ids::{AppointmentId, SlotId, UserId};
use shms_domain::page::{Cursor, Page, PageRequest};
use shms_domain::ports::{AppointmentRepository, NewRefund};
use shms_domain::slot::Slot;
use shms_domain::{Conflict, StoreError};
use uuid::Uuid;

use crate::payments::insert_refund;
use crate::rows::{AppointmentRow, PaymentRow, booking};
use crate::schema::{appointments, doctors, payments, slots};
use crate::slots::{parse_time_key, time_key};
use crate::{PgStore, detached, map_diesel, retry_rollbacks};

async fn insert_booking(
    conn: &mut AsyncPgConnection,
    new: &NewBooking,
) -> QueryResult<Option<(AppointmentRow, PaymentRow)>> {
    let appointment = diesel::insert_into(appointments::table)
        .values(
            slots::table
                .filter(slots::id.eq(new.slot_id.as_uuid()))
                .select((
                    new.appointment_id.as_uuid().into_sql::<SqlUuid>(),
                    new.patient_id.as_uuid().into_sql::<SqlUuid>(),
                    slots::doctor_id,
                    slots::id,
                    slots::starts_at,
                    slots::ends_at,
                    new.reason.as_str().into_sql::<Text>(),
                    new.booked_by.as_uuid().into_sql::<SqlUuid>(),
                ))
                // racing bookings of one slot queue on its row here, before any of them
                // inserts: two uncommitted conflicting rows would make the exclusion
                // constraints wait on each other (a deadlock PostgreSQL breaks by aborting one)
                .for_update(),
        )
        .into_columns((
            appointments::id,
            appointments::patient_id,
            appointments::doctor_id,
            appointments::slot_id,
            appointments::starts_at,
            appointments::ends_at,
            appointments::reason,
            appointments::booked_by,
        ))
        .returning(AppointmentRow::as_returning())
        .get_result(conn)
        .await
        .optional()?;
    let Some(appointment) = appointment else {
        return Ok(None);
    };
    let payment = diesel::insert_into(payments::table)
        .values(
            doctors::table
                .filter(doctors::user_id.eq(appointment.doctor_id))
                .select((
                    new.payment_id.as_uuid().into_sql::<SqlUuid>(),
                    appointment.id.into_sql::<SqlUuid>(),
                    doctors::fee_cents,
                    doctors::currency,
                )),
        )
        .into_columns((
            payments::id,
            payments::appointment_id,
            payments::amount_cents,
            payments::currency,
        ))
        .returning(PaymentRow::as_returning())
        .get_result(conn)
        .await?;
    Ok(Some((appointment, payment)))
}

async fn load(
    conn: &mut AsyncPgConnection,
    id: AppointmentId,
) -> QueryResult<(AppointmentRow, PaymentRow)> {
    appointments::table
        .inner_join(payments::table.on(payments::appointment_id.eq(appointments::id)))
        .filter(appointments::id.eq(id.as_uuid()))
        .select((AppointmentRow::as_select(), PaymentRow::as_select()))
        .first(conn)
        .await
}

/// The slots among `$1` that patient `$2` cannot take now: not free, started, held by
/// someone else, or overlapping one of the patient's active appointments.
const UNAVAILABLE_FOR_PATIENT: &str = "\
    SELECT s.id FROM slots s \
     WHERE s.id = ANY($1) \
       AND (s.status <> 'free' OR s.starts_at <= now() \
            OR (s.held_until > now() AND s.held_by <> $2) \
            OR EXISTS (SELECT 1 FROM appointments a \
                        WHERE a.patient_id = $2 AND a.status <> 'cancelled' \
                          AND tstzrange(a.starts_at, a.ends_at) && tstzrange(s.starts_at, s.ends_at)))";

#[derive(QueryableByName)]
struct SlotIdRow {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
}

/// Either every booking (Ok) or the slots that stand in the way (Err); nothing is written
/// in the second case.
async fn insert_series(
    conn: &mut AsyncPgConnection,
    bookings: &[NewBooking],
) -> QueryResult<Result<Vec<(AppointmentRow, PaymentRow)>, Vec<Uuid>>> {
    let Some(patient) = bookings.first().map(|b| b.patient_id.as_uuid()) else {
        return Ok(Ok(Vec::new()));
    };
    let mut ids: Vec<Uuid> = bookings.iter().map(|b| b.slot_id.as_uuid()).collect();
    ids.sort_unstable();
    slots::table
        .filter(slots::id.eq_any(&ids))
        .order(slots::id)
        .select(slots::id)
        .for_update()
        .load::<Uuid>(conn)
        .await?;
    let unavailable: Vec<Uuid> = diesel::sql_query(UNAVAILABLE_FOR_PATIENT)
        .bind::<Array<SqlUuid>, _>(&ids)
        .bind::<SqlUuid, _>(patient)
        .load::<SlotIdRow>(conn)
        .await?
        .into_iter()
        .map(|row| row.id)
        .collect();
    if !unavailable.is_empty() {
        return Ok(Err(unavailable));
    }
    let mut booked = Vec::with_capacity(bookings.len());
    for booking in bookings {
        match insert_booking(conn, booking).await? {
            Some(rows) => booked.push(rows),
            // the slot vanished between the lock and the insert: impossible while locked,
            // but never half-book
            None => return Err(diesel::result::Error::NotFound),
        }
    }
    Ok(Ok(booked))
}

impl AppointmentRepository for PgStore {
    async fn count_for_patient(
        &self,
        patient: UserId,
        status: AppointmentStatus,
    ) -> Result<u64, StoreError> {
        let mut conn = self.conn().await?;
        let count: i64 = appointments::table
            .filter(appointments::patient_id.eq(patient.as_uuid()))
            .filter(appointments::status.eq(status.as_str()))
            .count()
            .get_result(&mut conn)
            .await
            .map_err(map_diesel)?;
        Ok(u64::try_from(count).unwrap_or_default())
    }

    async fn book_series(&self, bookings: Vec<NewBooking>) -> Result<SeriesOutcome, StoreError> {
        let store = self.clone();
        detached(async move {
            let mut conn = store.conn().await?;
            let outcome = retry_rollbacks!({
                let conn = &mut *conn;
                conn.transaction(async |conn| insert_series(conn, &bookings).await)
                    .await
            })
            .map_err(map_diesel)?;
            match outcome {
                Ok(rows) => Ok(SeriesOutcome::Booked(
                    rows.into_iter().map(booking).collect::<Result<_, _>>()?,
                )),
                Err(unavailable) => {
                    // report them in the order the caller asked for them
                    let taken = bookings
                        .iter()
                        .map(|b| b.slot_id)
                        .filter(|slot| unavailable.contains(&slot.as_uuid()))
                        .collect();
                    Ok(SeriesOutcome::Unavailable(taken))
                }
            }
        })
        .await
    }

    async fn reschedule(
        &self,
        id: AppointmentId,
        from: SlotId,
        to: Slot,
    ) -> Result<Booking, StoreError> {
        let store = self.clone();
        detached(async move {
            let mut conn = store.conn().await?;
            // one statement: appointments_move_slot takes the new slot and frees the old one
            // inside it, and the composite foreign key checks the copied interval
            let moved = retry_rollbacks!({
                let conn = &mut *conn;
                conn.transaction(async |conn| {
                    // the new slot's row first, as a booking takes it (see insert_booking)
                    slots::table
                        .filter(slots::id.eq(to.id.as_uuid()))
                        .select(slots::id)
                        .for_update()
                        .load::<Uuid>(conn)
                        .await?;
                    diesel::update(
                        appointments::table
                            .filter(appointments::id.eq(id.as_uuid()))
                            .filter(appointments::status.eq(AppointmentStatus::Booked.as_str()))
                            .filter(appointments::slot_id.eq(from.as_uuid())),
                    )
                    .set((
                        appointments::slot_id.eq(to.id.as_uuid()),
                        appointments::starts_at.eq(to.starts_at),
                        appointments::ends_at.eq(to.ends_at),
                    ))
                    .execute(conn)
                    .await
                })
                .await
            })
            .map_err(map_diesel)?;
            if moved == 0 {
                return Err(StoreError::Conflict(Conflict::InvalidTransition));
            }
            booking(load(&mut conn, id).await.map_err(map_diesel)?)
        })
        .await
    }

    async fn book(&self, new: NewBooking) -> Result<Booking, StoreError> {
        let store = self.clone();
        detached(async move {
            let mut conn = store.conn().await?;
            let rows = retry_rollbacks!({
                let conn = &mut *conn;
                conn.transaction(async |conn| insert_booking(conn, &new).await)
                    .await
            })
            .map_err(map_diesel)?;
            booking(rows.ok_or(StoreError::NotFound)?)
        })
        .await
    }

    async fn get(&self, id: AppointmentId) -> Result<Booking, StoreError> {
        let mut conn = self.conn().await?;
        booking(load(&mut conn, id).await.map_err(map_diesel)?)
    }

    async fn list(
        &self,
        filter: AppointmentFilter,
        page: PageRequest,
    ) -> Result<Page<Appointment>, StoreError> {
        let mut conn = self.conn().await?;
        let mut query = appointments::table
            .select(AppointmentRow::as_select())
            .order((appointments::starts_at.asc(), appointments::id.asc()))
            .limit(i64::from(page.limit) + 1)
            .into_boxed();
        if let Some(patient) = filter.patient_id {
            query = query.filter(appointments::patient_id.eq(patient.as_uuid()));
        }
        if let Some(doctor) = filter.doctor_id {
            query = query.filter(appointments::doctor_id.eq(doctor.as_uuid()));
        }
        if let Some(status) = filter.status {
            query = query.filter(appointments::status.eq(status.as_str()));
        }
        if let Some(from) = filter.from {
            query = query.filter(appointments::starts_at.ge(from));
        }
        if let Some(to) = filter.to {
            query = query.filter(appointments::starts_at.lt(to));
        }
        if let Some(Cursor { key, id }) = page.after {
            let at = parse_time_key(&key)?;
            query = query.filter(
                appointments::starts_at
                    .gt(at)
                    .or(appointments::starts_at.eq(at).and(appointments::id.gt(id))),
            );
        }
        let rows = query.load(&mut conn).await.map_err(map_diesel)?;
        let items = rows
            .into_iter()
            .map(Appointment::try_from)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_overfetch(
            items,
            page.limit,
            |a: &Appointment| Cursor {
                key: time_key(a.starts_at),
                id: a.id.as_uuid(),
            },
        ))
    }

    async fn cancel(
        &self,
        cancellation: Cancellation,
        expected: AppointmentStatus,
        refund: Option<NewRefund>,
    ) -> Result<Booking, StoreError> {
        let store = self.clone();
        detached(async move {
            let mut conn = store.conn().await?;
            let id = cancellation.appointment_id;
            let updated = conn
                .transaction(async |conn| {
                    // the refund first: the cancel trigger checks that a paid payment is refunded
                    if let Some(refund) = &refund {
                        insert_refund(conn, refund).await?;
                    }
                    let changed = diesel::update(
                        appointments::table
                            .filter(appointments::id.eq(id.as_uuid()))
                            .filter(appointments::status.eq(expected.as_str())),
                    )
                    .set((
                        appointments::status.eq(AppointmentStatus::Cancelled.as_str()),
                        appointments::cancelled_at.eq(cancellation.at),
                        appointments::cancelled_by.eq(cancellation.cancelled_by.as_uuid()),
                        appointments::cancel_reason.eq(cancellation.reason.as_deref()),
                    ))
                    .execute(conn)
                    .await?;
                    if changed == 0 {
                        // the status moved on since the service read it: undo the refund too
                        return Err(diesel::result::Error::RollbackTransaction);
                    }
                    load(conn, id).await
                })
                .await;
            match updated {
                Ok(rows) => booking(rows),
                Err(diesel::result::Error::RollbackTransaction) => {
                    Err(StoreError::Conflict(Conflict::InvalidTransition))
                }
                Err(other) => Err(map_diesel(other)),
            }
        })
        .await
    }

    async fn transition(
        &self,
        id: AppointmentId,
        expected: AppointmentStatus,
        next: AppointmentStatus,
    ) -> Result<Booking, StoreError> {
        let store = self.clone();
        detached(async move {
            let mut conn = store.conn().await?;
            let changed = diesel::update(
                appointments::table
                    .filter(appointments::id.eq(id.as_uuid()))
                    .filter(appointments::status.eq(expected.as_str())),
            )
            .set(appointments::status.eq(next.as_str()))
            .execute(&mut conn)
            .await
            .map_err(map_diesel)?;
            if changed == 0 {
                return Err(StoreError::Conflict(Conflict::InvalidTransition));
            }
            booking(load(&mut conn, id).await.map_err(map_diesel)?)
        })
        .await
    }
}
