//! Account administration, profile updates, password changes, the session list and the
//! account audit trail. Each change is one transaction that also writes its account event;
//! the last-administrator rule is the `users_keep_an_admin` trigger (migration 000004).
//!
//! Lock order inside `set_status` (same as booking's appointments -> slots, so they do not
//! deadlock): users -> sessions -> doctors -> slots; appointments are only read.

use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use diesel::result::Error as DieselError;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use shms_domain::StoreError;
use shms_domain::accounts::{
    AccountEvent, DoctorUpdate, NewAccountEvent, PasswordChange, ProfileUpdate, SessionInfo,
    StatusChange, StatusOutcome, UserFilter,
};
use shms_domain::appointment::Appointment;
use shms_domain::doctor::Doctor;
use shms_domain::ids::{SessionId, UserId};
use shms_domain::page::{Cursor, Page, PageRequest};
use shms_domain::user::{Role, User, UserProfile};
use uuid::Uuid;

use crate::doctors::like_pattern;
use crate::rows::{AppointmentRow, DoctorRow, UserRow};
use crate::schema::{account_events, appointments, doctors, patients, sessions, slots, users};
use crate::slots::{parse_time_key, time_key};
use crate::users::load_profile;
use crate::{PgStore, detached, map_diesel};

fn parse<T: std::str::FromStr<Err = String>>(raw: &str) -> Result<T, StoreError> {
    raw.parse()
        .map_err(|error: String| StoreError::Other(error.into()))
}

/// Inserts an account event; call it inside the transaction of the change it records.
pub(crate) async fn insert_event(
    conn: &mut AsyncPgConnection,
    event: &NewAccountEvent,
) -> QueryResult<usize> {
    diesel::insert_into(account_events::table)
        .values((
            account_events::actor_id.eq(event.actor.map(|(id, _)| id.as_uuid())),
            account_events::actor_role.eq(event.actor.map(|(_, role)| role.as_str())),
            account_events::subject_id.eq(event.subject_id.map(|id| id.as_uuid())),
            account_events::action.eq(event.action.as_str()),
            account_events::attempted_email.eq(event.attempted_email.as_deref()),
            account_events::request_id.eq(event.request_id.as_deref()),
            account_events::client_ip.eq(event.client_ip.as_deref()),
            account_events::detail.eq(event.detail.as_deref()),
        ))
        .execute(conn)
        .await
}

#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = account_events, check_for_backend(diesel::pg::Pg))]
struct AccountEventRow {
    id: Uuid,
    occurred_at: DateTime<Utc>,
    actor_id: Option<Uuid>,
    actor_role: Option<String>,
    subject_id: Option<Uuid>,
    action: String,
    attempted_email: Option<String>,
    request_id: Option<String>,
    client_ip: Option<String>,
    detail: Option<String>,
}

impl TryFrom<AccountEventRow> for AccountEvent {
    type Error = StoreError;

    fn try_from(row: AccountEventRow) -> Result<Self, Self::Error> {
        let actor = match (row.actor_id, row.actor_role) {
            (Some(id), Some(role)) => Some((UserId::from_uuid(id), parse::<Role>(&role)?)),
            _ => None,
        };
        Ok(Self {
            id: row.id.into(),
            occurred_at: row.occurred_at,
            event: NewAccountEvent {
                actor,
                subject_id: row.subject_id.map(UserId::from_uuid),
                action: parse(&row.action)?,
                attempted_email: row.attempted_email,
                request_id: row.request_id,
                client_ip: row.client_ip,
                detail: row.detail,
            },
        })
    }
}

pub(crate) async fn list_users(
    store: &PgStore,
    filter: UserFilter,
    page: PageRequest,
) -> Result<Page<User>, StoreError> {
    let mut conn = store.conn().await?;
    let mut query = users::table
        .select(UserRow::as_select())
        .order((users::full_name.asc(), users::id.asc()))
        .limit(i64::from(page.limit) + 1)
        .into_boxed();
    if let Some(role) = filter.role {
        query = query.filter(users::role.eq(role.as_str()));
    }
    if let Some(text) = filter.query {
        let pattern = like_pattern(&text);
        query = query.filter(
            users::full_name
                .ilike(pattern.clone())
                .or(users::email.ilike(pattern)),
        );
    }
    if let Some(Cursor { key, id }) = page.after {
        query = query.filter(
            users::full_name
                .gt(key.clone())
                .or(users::full_name.eq(key).and(users::id.gt(id))),
        );
    }
    let rows = query.load(&mut conn).await.map_err(map_diesel)?;
    let items = rows
        .into_iter()
        .map(User::try_from)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Page::from_overfetch(items, page.limit, |user: &User| {
        Cursor {
            key: user.full_name.clone(),
            id: user.id.as_uuid(),
        }
    }))
}

/// What the status transaction found, before the profile is reloaded.
struct StatusRows {
    revoked: usize,
    blocked: usize,
    open: Vec<AppointmentRow>,
}

pub(crate) async fn set_status(
    store: &PgStore,
    change: StatusChange,
) -> Result<StatusOutcome, StoreError> {
    let store = store.clone();
    detached(async move {
        let mut conn = store.conn().await?;
        let id = change.user_id.as_uuid();
        let rows = conn
            .transaction(async |conn| {
                // the last-admin trigger fires here
                let user = diesel::update(users::table.find(id))
                    .set((
                        users::disabled.eq(change.disabled),
                        users::updated_at.eq(change.now),
                    ))
                    .returning(UserRow::as_returning())
                    .get_result(conn)
                    .await?;
                let mut rows = StatusRows {
                    revoked: 0,
                    blocked: 0,
                    open: Vec::new(),
                };
                if change.disabled {
                    rows.revoked = diesel::update(
                        sessions::table
                            .filter(sessions::user_id.eq(id))
                            .filter(sessions::revoked_at.is_null()),
                    )
                    .set(sessions::revoked_at.eq(change.now))
                    .execute(conn)
                    .await?;
                }
                if user.role == Role::Doctor.as_str() {
                    diesel::update(doctors::table.find(id))
                        .set(doctors::active.eq(!change.disabled))
                        .execute(conn)
                        .await?;
                    if change.disabled {
                        // the slot trigger allows free -> busy-unavailable (no appointment)
                        rows.blocked = diesel::update(
                            slots::table
                                .filter(slots::doctor_id.eq(id))
                                .filter(slots::status.eq("free"))
                                .filter(slots::starts_at.gt(change.now)),
                        )
                        .set(slots::status.eq("busy-unavailable"))
                        .execute(conn)
                        .await?;
                        rows.open = appointments::table
                            .filter(appointments::doctor_id.eq(id))
                            .filter(appointments::status.eq_any(["booked", "checked-in"]))
                            .filter(appointments::ends_at.gt(change.now))
                            .order((appointments::starts_at.asc(), appointments::id.asc()))
                            .select(AppointmentRow::as_select())
                            .load(conn)
                            .await?;
                    }
                }
                insert_event(conn, &change.event).await?;
                Ok::<_, DieselError>(rows)
            })
            .await
            .map_err(map_diesel)?;
        let user = load_profile(&mut conn, change.user_id).await?;
        Ok(StatusOutcome {
            user,
            revoked_sessions: rows.revoked as u64,
            blocked_slots: rows.blocked as u64,
            open_appointments: rows
                .open
                .into_iter()
                .map(Appointment::try_from)
                .collect::<Result<Vec<_>, _>>()?,
        })
    })
    .await
}

#[derive(AsChangeset)]
#[diesel(table_name = patients)]
struct PatientChangeset {
    date_of_birth: Option<NaiveDate>,
    sex: Option<&'static str>,
    phone: Option<Option<String>>,
}

pub(crate) async fn update_profile(
    store: &PgStore,
    update: ProfileUpdate,
) -> Result<UserProfile, StoreError> {
    let store = store.clone();
    detached(async move {
        let mut conn = store.conn().await?;
        let id = update.user_id.as_uuid();
        let changes = update.changes;
        conn.transaction(async |conn| {
            let touched = diesel::update(users::table.find(id))
                .set(users::updated_at.eq(diesel::dsl::now))
                .execute(conn)
                .await?;
            if touched == 0 {
                return Err(DieselError::NotFound);
            }
            if let Some(name) = &changes.full_name {
                diesel::update(users::table.find(id))
                    .set(users::full_name.eq(name.as_str()))
                    .execute(conn)
                    .await?;
            }
            let patient = PatientChangeset {
                date_of_birth: changes.date_of_birth,
                sex: changes.sex.map(|sex| sex.as_str()),
                phone: changes
                    .phone
                    .as_ref()
                    .map(|phone| phone.as_ref().map(|p| p.as_str().to_owned())),
            };
            if patient.date_of_birth.is_some() || patient.sex.is_some() || patient.phone.is_some() {
                let changed = diesel::update(patients::table.find(id))
                    .set(&patient)
                    .execute(conn)
                    .await?;
                if changed == 0 {
                    return Err(DieselError::NotFound);
                }
            }
            insert_event(conn, &update.event).await?;
            Ok(())
        })
        .await
        .map_err(map_diesel)?;
        load_profile(&mut conn, update.user_id).await
    })
    .await
}

#[derive(AsChangeset)]
#[diesel(table_name = doctors)]
struct DoctorChangeset {
    specialty: Option<String>,
    bio: Option<Option<String>>,
    fee_cents: Option<i64>,
    currency: Option<String>,
    license_number: Option<String>,
}

pub(crate) async fn update_doctor(
    store: &PgStore,
    update: DoctorUpdate,
) -> Result<Doctor, StoreError> {
    let store = store.clone();
    detached(async move {
        let mut conn = store.conn().await?;
        let id = update.doctor_id.as_uuid();
        let changes = update.changes;
        let (fee_cents, currency) = match changes.consultation_fee {
            Some(fee) => (Some(fee.amount_cents), Some(fee.currency)),
            None => (None, None),
        };
        let changeset = DoctorChangeset {
            specialty: changes.specialty,
            bio: changes.bio,
            fee_cents,
            currency,
            license_number: changes.license_number,
        };
        let (row, name) = conn
            .transaction(async |conn| {
                let row = diesel::update(doctors::table.find(id))
                    .set(&changeset)
                    .returning(DoctorRow::as_returning())
                    .get_result(conn)
                    .await?;
                let name = users::table
                    .find(id)
                    .select(users::full_name)
                    .first::<String>(conn)
                    .await?;
                insert_event(conn, &update.event).await?;
                Ok::<_, DieselError>((row, name))
            })
            .await
            .map_err(map_diesel)?;
        Ok(row.into_doctor(name))
    })
    .await
}

pub(crate) async fn change_password(
    store: &PgStore,
    change: PasswordChange,
) -> Result<u64, StoreError> {
    let store = store.clone();
    detached(async move {
        let mut conn = store.conn().await?;
        let id = change.user_id.as_uuid();
        let revoked = conn
            .transaction(async |conn| {
                let changed = diesel::update(users::table.find(id))
                    .set((
                        users::password_hash.eq(&change.password_hash),
                        users::updated_at.eq(change.now),
                    ))
                    .execute(conn)
                    .await?;
                if changed == 0 {
                    return Err(DieselError::NotFound);
                }
                let keep = change.keep_session.map(|session| session.as_uuid());
                let mut others = sessions::table
                    .filter(sessions::user_id.eq(id))
                    .filter(sessions::revoked_at.is_null())
                    .into_boxed();
                if let Some(keep) = keep {
                    others = others.filter(sessions::id.ne(keep));
                }
                let ids = others.select(sessions::id).load::<Uuid>(conn).await?;
                let revoked = diesel::update(sessions::table.filter(sessions::id.eq_any(&ids)))
                    .set(sessions::revoked_at.eq(change.now))
                    .execute(conn)
                    .await?;
                insert_event(conn, &change.event).await?;
                Ok::<_, DieselError>(revoked)
            })
            .await
            .map_err(map_diesel)?;
        Ok(revoked as u64)
    })
    .await
}

pub(crate) async fn events(
    store: &PgStore,
    user: UserId,
    page: PageRequest,
) -> Result<Page<AccountEvent>, StoreError> {
    let mut conn = store.conn().await?;
    let id = user.as_uuid();
    let mut query = account_events::table
        .filter(
            account_events::subject_id
                .eq(id)
                .or(account_events::actor_id.eq(id)),
        )
        .select(AccountEventRow::as_select())
        .order((
            account_events::occurred_at.desc(),
            account_events::id.desc(),
        ))
        .limit(i64::from(page.limit) + 1)
        .into_boxed();
    if let Some(Cursor { key, id }) = page.after {
        let at = parse_time_key(&key)?;
        query = query.filter(
            account_events::occurred_at
                .lt(at)
                .or(account_events::occurred_at
                    .eq(at)
                    .and(account_events::id.lt(id))),
        );
    }
    let rows = query.load(&mut conn).await.map_err(map_diesel)?;
    let items = rows
        .into_iter()
        .map(AccountEvent::try_from)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Page::from_overfetch(
        items,
        page.limit,
        |event: &AccountEvent| Cursor {
            key: time_key(event.occurred_at),
            id: event.id.as_uuid(),
        },
    ))
}

#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = sessions, check_for_backend(diesel::pg::Pg))]
struct SessionRow {
    id: Uuid,
    created_at: DateTime<Utc>,
    last_used_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    client_ip: Option<String>,
    user_agent: Option<String>,
}

pub(crate) async fn list_sessions(
    store: &PgStore,
    user: UserId,
    now: DateTime<Utc>,
    page: PageRequest,
) -> Result<Page<SessionInfo>, StoreError> {
    let mut conn = store.conn().await?;
    let mut query = sessions::table
        .filter(sessions::user_id.eq(user.as_uuid()))
        .filter(sessions::revoked_at.is_null())
        .filter(sessions::expires_at.gt(now))
        .select(SessionRow::as_select())
        .order((sessions::created_at.desc(), sessions::id.desc()))
        .limit(i64::from(page.limit) + 1)
        .into_boxed();
    if let Some(Cursor { key, id }) = page.after {
        let at = parse_time_key(&key)?;
        query = query.filter(
            sessions::created_at
                .lt(at)
                .or(sessions::created_at.eq(at).and(sessions::id.lt(id))),
        );
    }
    let rows = query.load(&mut conn).await.map_err(map_diesel)?;
    let items = rows
        .into_iter()
        .map(|row| SessionInfo {
            id: SessionId::from_uuid(row.id),
            created_at: row.created_at,
            last_used_at: row.last_used_at,
            expires_at: row.expires_at,
            client_ip: row.client_ip,
            user_agent: row.user_agent,
        })
        .collect();
    Ok(Page::from_overfetch(
        items,
        page.limit,
        |session: &SessionInfo| Cursor {
            key: time_key(session.created_at),
            id: session.id.as_uuid(),
        },
    ))
}

pub(crate) async fn revoke_own(
    store: &PgStore,
    user: UserId,
    id: SessionId,
    now: DateTime<Utc>,
    event: NewAccountEvent,
) -> Result<(), StoreError> {
    let store = store.clone();
    detached(async move {
        let mut conn = store.conn().await?;
        conn.transaction(async |conn| {
            let own = sessions::table
                .filter(sessions::id.eq(id.as_uuid()))
                .filter(sessions::user_id.eq(user.as_uuid()));
            let revoked = diesel::update(own.filter(sessions::revoked_at.is_null()))
                .set(sessions::revoked_at.eq(now))
                .execute(conn)
                .await?;
            if revoked > 0 {
                insert_event(conn, &event).await?;
                return Ok(());
            }
            // already revoked is fine; another user's (or no) session is not found
            own.select(sessions::id).first::<Uuid>(conn).await?;
            Ok(())
        })
        .await
        .map_err(map_diesel)
    })
    .await
}
