//! Booking and cancelling. Each is one transaction; the triggers of the core migration turn
//! the slot busy or free and cancel an unpaid payment inside that same transaction.
//!
//! Round trips per booking: one. `BOOK` locks the slot, inserts the appointment and its
//! payment in a single statement, atomic by itself; the triggers refuse a taken, blocked,
//! started or held slot.
//!
//! A series locks its slots (in id order, so two overlapping series cannot deadlock), asks
//! the database which of them this patient cannot take, and books all of them only if none.

use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
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
use crate::schema::{appointments, payments, slots};
use crate::slots::{parse_time_key, time_key};
use crate::statement::parts;
use crate::{PgStore, detached, map_diesel, retry_rollbacks};

/// One booking as one statement: the slot row is locked, the appointment inserted (copying
/// the slot's doctor and interval) and its payment inserted (copying the doctor's fee).
/// One statement is atomic on its own, so a single booking needs no BEGIN/COMMIT round
/// trips; the triggers (slot busy, holds, started slots) run at its end.
///
/// The slot's row lock comes first so that racing bookings of one slot queue on it before
/// any of them inserts: two uncommitted conflicting rows would make the exclusion
/// constraints wait on each other (a deadlock PostgreSQL breaks by aborting one).
const BOOK: &str = "\
    WITH slot AS ( \
        SELECT id, doctor_id, starts_at, ends_at FROM slots WHERE id = $? FOR UPDATE \
    ), appointment AS ( \
        INSERT INTO appointments (id, patient_id, doctor_id, slot_id, starts_at, ends_at, reason, booked_by) \
        SELECT $?, $?, slot.doctor_id, slot.id, slot.starts_at, slot.ends_at, $?, $? FROM slot \
        RETURNING id, patient_id, doctor_id, slot_id, starts_at, ends_at, reason, status, \
                  cancel_reason, cancelled_at, created_at \
    ), payment AS ( \
        INSERT INTO payments (id, appointment_id, amount_cents, currency) \
        SELECT $?, appointment.id, d.fee_cents, d.currency \
          FROM appointment JOIN doctors d ON d.user_id = appointment.doctor_id \
        RETURNING id, appointment_id, amount_cents, currency, status, refunded_cents, paid_at, \
                  created_at \
    ) \
    SELECT a.id, a.patient_id, a.doctor_id, a.slot_id, a.starts_at, a.ends_at, a.reason, \
           a.status, a.cancel_reason, a.cancelled_at, a.created_at, \
           p.id, p.appointment_id, p.amount_cents, p.currency, p.status, p.refunded_cents, \
           p.paid_at, p.created_at \
      FROM appointment a JOIN payment p ON p.appointment_id = a.id";

/// `BOOK` with its binds; prepared once per connection (see `crate::statement`).
struct BookStatement {
    slot: Uuid,
    appointment: Uuid,
    patient: Uuid,
    reason: String,
    booked_by: Uuid,
    payment: Uuid,
}

// one SQL text per type: the type is the statement cache key
impl QueryId for BookStatement {
    type QueryId = Self;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl QueryFragment<Pg> for BookStatement {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        let [p0, p1, p2, p3, p4, p5, p6] = parts::<7>(BOOK)?;
        out.push_sql(p0);
        out.push_bind_param::<SqlUuid, _>(&self.slot)?;
        out.push_sql(p1);
        out.push_bind_param::<SqlUuid, _>(&self.appointment)?;
        out.push_sql(p2);
        out.push_bind_param::<SqlUuid, _>(&self.patient)?;
        out.push_sql(p3);
        out.push_bind_param::<Text, _>(&self.reason)?;
        out.push_sql(p4);
        out.push_bind_param::<SqlUuid, _>(&self.booked_by)?;
        out.push_sql(p5);
        out.push_bind_param::<SqlUuid, _>(&self.payment)?;
        out.push_sql(p6);
        Ok(())
    }
}

impl Query for BookStatement {
    type SqlType = (
        <<AppointmentRow as Selectable<Pg>>::SelectExpression as Expression>::SqlType,
        <<PaymentRow as Selectable<Pg>>::SelectExpression as Expression>::SqlType,
    );
}

impl<Conn> RunQueryDsl<Conn> for BookStatement {}

/// Books one slot (see `BOOK`); `None` when the slot does not exist.
async fn insert_booking(
    conn: &mut AsyncPgConnection,
    new: &NewBooking,
) -> QueryResult<Option<(AppointmentRow, PaymentRow)>> {
    BookStatement {
        slot: new.slot_id.as_uuid(),
        appointment: new.appointment_id.as_uuid(),
        patient: new.patient_id.as_uuid(),
        reason: new.reason.clone(),
        booked_by: new.booked_by.as_uuid(),
        payment: new.payment_id.as_uuid(),
    }
    .get_result::<(AppointmentRow, PaymentRow)>(conn)
    .await
    .optional()
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
            let rows =
                retry_rollbacks!(insert_booking(&mut conn, &new).await).map_err(map_diesel)?;
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
