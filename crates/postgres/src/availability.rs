//! Weekly schedules, generated slots and time off (migration 000005).
//!
//! Every write runs in one transaction that first takes `availability_lock(doctor)`, the
//! doctor's transaction-scoped advisory lock: two replacements, an extension and a time off
//! for one doctor never interleave, and the slot insert trigger takes the same lock, so no
//! slot is created free inside a time off being committed.
//!
//! Generated slots are inserted with `INSERT … SELECT FROM unnest(…) … ON CONFLICT DO
//! NOTHING`: without a conflict target, PostgreSQL skips a row that the `slots_no_overlap`
//! exclusion constraint refuses, so slots that already exist (booked, blocked, manual, or
//! generated earlier) win, and the whole batch is one statement.

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, Timestamptz, Uuid as SqlUuid};
use diesel::upsert::excluded;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use shms_domain::availability::{
    Availability, AvailabilityInput, ConflictingAppointment, NewTimeOff, Regenerated, Replacement,
    RuleInput, Schedule, TimeOff, TimeOffOutcome, TimeOffTaken,
};
use shms_domain::ids::{AppointmentId, RefundId, UserId};
use shms_domain::payment::Money;
use shms_domain::ports::{AvailabilityRepository, NewRefund};
use shms_domain::slot::SlotWindow;
use shms_domain::{Conflict, StoreError};
use uuid::Uuid;

use crate::payments::insert_refund;
use crate::schema::{
    appointments, availability, availability_rules, doctors, payments, time_off,
    time_off_cancellations,
};
use crate::{PgStore, detached, map_diesel};

/// Takes the doctor's availability lock until the transaction ends.
async fn lock(conn: &mut AsyncPgConnection, doctor: Uuid) -> QueryResult<()> {
    diesel::sql_query("SELECT availability_lock($1)")
        .bind::<SqlUuid, _>(doctor)
        .execute(conn)
        .await
        .map(|_| ())
}

/// Whether the doctor exists, and is active.
async fn doctor_active(conn: &mut AsyncPgConnection, doctor: Uuid) -> QueryResult<Option<bool>> {
    doctors::table
        .find(doctor)
        .select(doctors::active)
        .first(conn)
        .await
        .optional()
}

/// Inserts free generated slots, skipping overlaps with existing slots and time off.
async fn insert_generated(
    conn: &mut AsyncPgConnection,
    doctor: Uuid,
    windows: &[SlotWindow],
) -> QueryResult<u64> {
    if windows.is_empty() {
        return Ok(0);
    }
    let ids: Vec<Uuid> = windows.iter().map(|_| Uuid::now_v7()).collect();
    let starts: Vec<DateTime<Utc>> = windows.iter().map(SlotWindow::starts_at).collect();
    let ends: Vec<DateTime<Utc>> = windows.iter().map(SlotWindow::ends_at).collect();
    let inserted = diesel::sql_query(
        "INSERT INTO slots (id, doctor_id, starts_at, ends_at, source)
         SELECT u.id, $1, u.starts_at, u.ends_at, 'generated'
           FROM unnest($2::uuid[], $3::timestamptz[], $4::timestamptz[]) AS u (id, starts_at, ends_at)
          WHERE NOT EXISTS (SELECT 1 FROM time_off t
                             WHERE t.doctor_id = $1
                               AND tstzrange(t.starts_at, t.ends_at) && tstzrange(u.starts_at, u.ends_at))
         ON CONFLICT DO NOTHING",
    )
    .bind::<SqlUuid, _>(doctor)
    .bind::<Array<SqlUuid>, _>(ids)
    .bind::<Array<Timestamptz>, _>(starts)
    .bind::<Array<Timestamptz>, _>(ends)
    .execute(conn)
    .await?;
    Ok(u64::try_from(inserted).unwrap_or_default())
}

/// Blocks the doctor's free slots that overlap `[from, to)`.
async fn block_free(
    conn: &mut AsyncPgConnection,
    doctor: Uuid,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> QueryResult<u64> {
    let blocked = diesel::sql_query(
        "UPDATE slots SET status = 'busy-unavailable'
          WHERE doctor_id = $1 AND status = 'free'
            AND tstzrange(starts_at, ends_at) && tstzrange($2, $3)",
    )
    .bind::<SqlUuid, _>(doctor)
    .bind::<Timestamptz, _>(from)
    .bind::<Timestamptz, _>(to)
    .execute(conn)
    .await?;
    Ok(u64::try_from(blocked).unwrap_or_default())
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = availability, check_for_backend(diesel::pg::Pg))]
struct AvailabilityRow {
    doctor_id: Uuid,
    time_zone: String,
    slot_minutes: i32,
    buffer_minutes: i32,
    effective_from: NaiveDate,
    effective_until: Option<NaiveDate>,
    horizon_days: i32,
    revision: i64,
    updated_at: DateTime<Utc>,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = availability_rules, check_for_backend(diesel::pg::Pg))]
struct RuleRow {
    doctor_id: Uuid,
    weekday: i16,
    starts: NaiveTime,
    ends: NaiveTime,
}

const WEEKDAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// Rebuilds a schedule from its rows through the domain's validation: a row the domain would
/// refuse is a storage failure, not a silently different schedule.
fn schedule_of(row: AvailabilityRow, rules: &[RuleRow]) -> Result<Schedule, StoreError> {
    let rules = rules
        .iter()
        .filter(|rule| rule.doctor_id == row.doctor_id)
        .map(|rule| RuleInput {
            weekday: usize::try_from(rule.weekday - 1)
                .ok()
                .and_then(|index| WEEKDAYS.get(index))
                .map_or_else(String::new, |day| (*day).to_owned()),
            start: rule.starts.format("%H:%M").to_string(),
            end: rule.ends.format("%H:%M").to_string(),
        })
        .collect();
    let availability = Availability::parse(AvailabilityInput {
        time_zone: row.time_zone,
        slot_minutes: i64::from(row.slot_minutes),
        buffer_minutes: i64::from(row.buffer_minutes),
        effective_from: row.effective_from,
        effective_until: row.effective_until,
        horizon_days: i64::from(row.horizon_days),
        rules,
    })
    .map_err(|errors| StoreError::Other(format!("stored schedule is invalid: {errors}").into()))?;
    Ok(Schedule {
        doctor_id: UserId::from_uuid(row.doctor_id),
        availability,
        revision: row.revision,
        updated_at: row.updated_at,
    })
}

async fn load_schedule(
    conn: &mut AsyncPgConnection,
    doctor: Uuid,
) -> QueryResult<Option<(AvailabilityRow, Vec<RuleRow>)>> {
    let Some(row) = availability::table
        .find(doctor)
        .select(AvailabilityRow::as_select())
        .first(conn)
        .await
        .optional()?
    else {
        return Ok(None);
    };
    let rules = availability_rules::table
        .filter(availability_rules::doctor_id.eq(doctor))
        .order((availability_rules::weekday, availability_rules::starts))
        .select(RuleRow::as_select())
        .load(conn)
        .await?;
    Ok(Some((row, rules)))
}

/// Stores the schedule row (revision + 1) and replaces its rules.
async fn store_schedule(
    conn: &mut AsyncPgConnection,
    replacement: &Replacement,
) -> QueryResult<()> {
    let doctor = replacement.doctor_id.as_uuid();
    let a = &replacement.availability;
    let to_i32 = |value: u32| i32::try_from(value).unwrap_or(i32::MAX);
    diesel::insert_into(availability::table)
        .values((
            availability::doctor_id.eq(doctor),
            availability::time_zone.eq(a.time_zone().name()),
            availability::slot_minutes.eq(to_i32(a.slot_minutes())),
            availability::buffer_minutes.eq(to_i32(a.buffer_minutes())),
            availability::effective_from.eq(a.effective_from()),
            availability::effective_until.eq(a.effective_until()),
            availability::horizon_days.eq(to_i32(a.horizon_days())),
            availability::updated_by.eq(replacement.updated_by.as_uuid()),
            availability::updated_at.eq(replacement.now),
        ))
        .on_conflict(availability::doctor_id)
        .do_update()
        .set((
            availability::time_zone.eq(excluded(availability::time_zone)),
            availability::slot_minutes.eq(excluded(availability::slot_minutes)),
            availability::buffer_minutes.eq(excluded(availability::buffer_minutes)),
            availability::effective_from.eq(excluded(availability::effective_from)),
            availability::effective_until.eq(excluded(availability::effective_until)),
            availability::horizon_days.eq(excluded(availability::horizon_days)),
            availability::updated_by.eq(excluded(availability::updated_by)),
            availability::updated_at.eq(excluded(availability::updated_at)),
            availability::revision.eq(availability::revision + 1),
        ))
        .execute(conn)
        .await?;
    diesel::delete(availability_rules::table.filter(availability_rules::doctor_id.eq(doctor)))
        .execute(conn)
        .await?;
    let rules: Vec<_> = a
        .rules()
        .iter()
        .map(|rule| {
            (
                availability_rules::doctor_id.eq(doctor),
                availability_rules::weekday
                    .eq(i16::try_from(rule.weekday.number_from_monday()).unwrap_or_default()),
                availability_rules::starts.eq(rule.start),
                availability_rules::ends.eq(rule.end),
            )
        })
        .collect();
    if !rules.is_empty() {
        diesel::insert_into(availability_rules::table)
            .values(rules)
            .execute(conn)
            .await?;
    }
    Ok(())
}

/// Failures inside the time-off transaction that must roll it back.
enum TimeOffAbort {
    Db(diesel::result::Error),
    NoDoctor,
    Conflicts(Vec<ConflictingAppointment>),
}

impl From<diesel::result::Error> for TimeOffAbort {
    fn from(error: diesel::result::Error) -> Self {
        Self::Db(error)
    }
}

#[derive(QueryableByName)]
struct ConflictRow {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    patient_id: Uuid,
    #[diesel(sql_type = Timestamptz)]
    starts_at: DateTime<Utc>,
    #[diesel(sql_type = Timestamptz)]
    ends_at: DateTime<Utc>,
    #[diesel(sql_type = diesel::sql_types::Text)]
    status: String,
}

/// The doctor's booked or checked-in appointments overlapping the range, locked.
async fn active_overlapping(
    conn: &mut AsyncPgConnection,
    doctor: Uuid,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> QueryResult<Vec<ConflictRow>> {
    diesel::sql_query(
        "SELECT id, patient_id, starts_at, ends_at, status FROM appointments
          WHERE doctor_id = $1 AND status IN ('booked', 'checked-in')
            AND tstzrange(starts_at, ends_at) && tstzrange($2, $3)
          ORDER BY starts_at, id
            FOR UPDATE",
    )
    .bind::<SqlUuid, _>(doctor)
    .bind::<Timestamptz, _>(from)
    .bind::<Timestamptz, _>(to)
    .load(conn)
    .await
}

/// Cancels one conflicting appointment, refunding what was paid first (the cancel trigger
/// checks that a paid payment ends refunded in full). Returns the amount refunded.
async fn cancel_conflict(
    conn: &mut AsyncPgConnection,
    conflict: &ConflictRow,
    time_off: &NewTimeOff,
) -> QueryResult<i64> {
    let (payment_id, amount_cents, refunded_cents, currency, status) = payments::table
        .filter(payments::appointment_id.eq(conflict.id))
        .select((
            payments::id,
            payments::amount_cents,
            payments::refunded_cents,
            payments::currency,
            payments::status,
        ))
        .for_update()
        .first::<(Uuid, i64, i64, String, String)>(conn)
        .await?;
    let refundable = amount_cents - refunded_cents;
    let refunded = if matches!(status.as_str(), "paid" | "partially_refunded") && refundable > 0 {
        insert_refund(
            conn,
            &NewRefund {
                id: RefundId::new(),
                payment_id: payment_id.into(),
                amount: Money {
                    amount_cents: refundable,
                    currency,
                },
                reason: time_off.cancel_reason.clone(),
                created_by: time_off.created_by,
            },
        )
        .await?;
        refundable
    } else {
        0
    };
    let changed = diesel::update(
        appointments::table
            .filter(appointments::id.eq(conflict.id))
            .filter(appointments::status.eq(&conflict.status)),
    )
    .set((
        appointments::status.eq("cancelled"),
        appointments::cancelled_at.eq(time_off.at),
        appointments::cancelled_by.eq(time_off.created_by.as_uuid()),
        appointments::cancel_reason.eq(&time_off.cancel_reason),
    ))
    .execute(conn)
    .await?;
    if changed == 0 {
        // impossible while the row is locked; refuse rather than report a cancellation
        return Err(diesel::result::Error::RollbackTransaction);
    }
    Ok(refunded)
}

async fn take_time_off_tx(
    conn: &mut AsyncPgConnection,
    new: &NewTimeOff,
) -> Result<TimeOffTaken, TimeOffAbort> {
    let doctor = new.doctor_id.as_uuid();
    let (from, to) = (new.request.from(), new.request.to());
    lock(conn, doctor).await?;
    if doctor_active(conn, doctor).await?.is_none() {
        return Err(TimeOffAbort::NoDoctor);
    }
    // first block the free slots: a booking still in flight on one of them waits for this
    // transaction and then finds it blocked; one that committed before shows up below
    let mut blocked = block_free(conn, doctor, from, to).await?;
    let conflicts = active_overlapping(conn, doctor, from, to).await?;
    if !conflicts.is_empty() && !new.request.cancel_conflicts() {
        return Err(TimeOffAbort::Conflicts(
            conflicts
                .into_iter()
                .map(|row| ConflictingAppointment {
                    appointment_id: AppointmentId::from_uuid(row.id),
                    patient_id: UserId::from_uuid(row.patient_id),
                    starts_at: row.starts_at,
                    ends_at: row.ends_at,
                })
                .collect(),
        ));
    }
    let mut cancelled = Vec::with_capacity(conflicts.len());
    for conflict in &conflicts {
        let refunded = cancel_conflict(conn, conflict, new).await?;
        cancelled.push((conflict.id, refunded));
    }
    // the cancellations freed their slots (and a concurrent cancel may have freed others)
    blocked += block_free(conn, doctor, from, to).await?;
    diesel::insert_into(time_off::table)
        .values((
            time_off::id.eq(new.id),
            time_off::doctor_id.eq(doctor),
            time_off::starts_at.eq(from),
            time_off::ends_at.eq(to),
            time_off::reason.eq(new.request.reason()),
            time_off::cancel_conflicts.eq(new.request.cancel_conflicts()),
            time_off::created_by.eq(new.created_by.as_uuid()),
            time_off::created_at.eq(new.at),
        ))
        .execute(conn)
        .await?;
    if !cancelled.is_empty() {
        let audit: Vec<_> = cancelled
            .iter()
            .map(|(appointment, refunded)| {
                (
                    time_off_cancellations::time_off_id.eq(new.id),
                    time_off_cancellations::appointment_id.eq(*appointment),
                    time_off_cancellations::refunded_cents.eq(*refunded),
                )
            })
            .collect();
        diesel::insert_into(time_off_cancellations::table)
            .values(audit)
            .execute(conn)
            .await?;
    }
    Ok(TimeOffTaken {
        time_off: TimeOff {
            id: new.id,
            doctor_id: new.doctor_id,
            from,
            to,
            reason: new.request.reason().to_owned(),
            cancel_conflicts: new.request.cancel_conflicts(),
            created_by: new.created_by,
        },
        blocked,
        cancelled: cancelled
            .into_iter()
            .map(|(id, _)| AppointmentId::from_uuid(id))
            .collect(),
    })
}

impl AvailabilityRepository for PgStore {
    async fn schedule(&self, doctor: UserId) -> Result<Option<Schedule>, StoreError> {
        let mut conn = self.conn().await?;
        let loaded = load_schedule(&mut conn, doctor.as_uuid())
            .await
            .map_err(map_diesel)?;
        loaded
            .map(|(row, rules)| schedule_of(row, &rules))
            .transpose()
    }

    async fn schedules(&self) -> Result<Vec<Schedule>, StoreError> {
        let mut conn = self.conn().await?;
        let rows = availability::table
            .order(availability::doctor_id)
            .select(AvailabilityRow::as_select())
            .load(&mut conn)
            .await
            .map_err(map_diesel)?;
        let rules = availability_rules::table
            .order((
                availability_rules::doctor_id,
                availability_rules::weekday,
                availability_rules::starts,
            ))
            .select(RuleRow::as_select())
            .load(&mut conn)
            .await
            .map_err(map_diesel)?;
        rows.into_iter()
            .map(|row| schedule_of(row, &rules))
            .collect()
    }

    async fn replace(&self, replacement: Replacement) -> Result<Regenerated, StoreError> {
        let store = self.clone();
        detached(async move {
            let mut conn = store.conn().await?;
            let doctor = replacement.doctor_id.as_uuid();
            let done = conn
                .transaction(async |conn| {
                    lock(conn, doctor).await?;
                    let Some(active) = doctor_active(conn, doctor).await? else {
                        return Ok(None);
                    };
                    store_schedule(conn, &replacement).await?;
                    let removed = diesel::sql_query(
                        "DELETE FROM slots s
                          WHERE s.doctor_id = $1 AND s.source = 'generated' AND s.status = 'free'
                            AND s.starts_at > $2
                            AND NOT EXISTS (SELECT 1 FROM appointments a WHERE a.slot_id = s.id)",
                    )
                    .bind::<SqlUuid, _>(doctor)
                    .bind::<Timestamptz, _>(replacement.now)
                    .execute(conn)
                    .await?;
                    let generated = if active {
                        insert_generated(conn, doctor, &replacement.windows).await?
                    } else {
                        0
                    };
                    let stored = load_schedule(conn, doctor).await?;
                    Ok::<_, diesel::result::Error>(
                        stored.map(|stored| (stored, generated, removed)),
                    )
                })
                .await
                .map_err(map_diesel)?;
            let ((row, rules), generated, removed) = done.ok_or(StoreError::NotFound)?;
            Ok(Regenerated {
                schedule: schedule_of(row, &rules)?,
                generated,
                removed: u64::try_from(removed).unwrap_or_default(),
            })
        })
        .await
    }

    async fn extend(
        &self,
        doctor: UserId,
        revision: i64,
        windows: Vec<SlotWindow>,
    ) -> Result<u64, StoreError> {
        let store = self.clone();
        detached(async move {
            let mut conn = store.conn().await?;
            let doctor = doctor.as_uuid();
            conn.transaction(async |conn| {
                lock(conn, doctor).await?;
                let current: Option<i64> = availability::table
                    .find(doctor)
                    .select(availability::revision)
                    .first(conn)
                    .await
                    .optional()?;
                let active = doctor_active(conn, doctor).await? == Some(true);
                if !active {
                    return Ok(0);
                }
                if current != Some(revision) {
                    // replaced meanwhile (its own slots are in place), or the doctor is inactive
                    return Ok(0);
                }
                insert_generated(conn, doctor, &windows).await
            })
            .await
            .map_err(map_diesel)
        })
        .await
    }

    async fn take_time_off(&self, new: NewTimeOff) -> Result<TimeOffOutcome, StoreError> {
        let store = self.clone();
        detached(async move {
            let mut conn = store.conn().await?;
            let result = conn
                .transaction(async |conn| take_time_off_tx(conn, &new).await)
                .await;
            match result {
                Ok(taken) => Ok(TimeOffOutcome::Taken(taken)),
                Err(TimeOffAbort::Conflicts(conflicts)) => Ok(TimeOffOutcome::Conflicts(conflicts)),
                Err(TimeOffAbort::NoDoctor) => Err(StoreError::NotFound),
                Err(TimeOffAbort::Db(diesel::result::Error::RollbackTransaction)) => {
                    Err(StoreError::Conflict(Conflict::InvalidTransition))
                }
                Err(TimeOffAbort::Db(error)) => Err(map_diesel(error)),
            }
        })
        .await
    }
}

/// The weekday numbering is ISO (1 = Monday), as `availability_rules_weekday_valid` says.
#[cfg(test)]
mod tests {
    use super::WEEKDAYS;
    use chrono::Weekday;
    use shms_domain::availability::weekday_code;

    #[test]
    fn weekday_numbers_are_iso() {
        for (index, day) in [
            Weekday::Mon,
            Weekday::Tue,
            Weekday::Wed,
            Weekday::Thu,
            Weekday::Fri,
            Weekday::Sat,
            Weekday::Sun,
        ]
        .into_iter()
        .enumerate()
        {
            assert_eq!(WEEKDAYS[index], weekday_code(day));
            assert_eq!(
                usize::try_from(day.number_from_monday()).ok(),
                Some(index + 1)
            );
        }
    }
}
