//! Login sessions: stored by token hash, checked (and now and then touched) in one statement
//! per request.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Bytea, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::RunQueryDsl;
use shms_domain::accounts::{NewAccountEvent, SessionInfo};
use shms_domain::ids::{SessionId, UserId};
use shms_domain::page::{Page, PageRequest};
use shms_domain::ports::{NewSession, SessionRepository};
use shms_domain::{Actor, StoreError};
use uuid::Uuid;

use crate::schema::sessions;
use crate::{PgStore, map_diesel};

#[derive(QueryableByName)]
struct LiveSession {
    #[diesel(sql_type = SqlUuid)]
    session_id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    user_id: Uuid,
    #[diesel(sql_type = Text)]
    role: String,
}

/// One round trip validates the token, checks the user is enabled and slides the idle
/// window.
///
/// It runs on every authenticated request, so it writes only when the recorded use is
/// older than a tenth of the idle timeout (at most a minute): otherwise it is a plain read
/// (no row lock, no WAL, no commit flush). A busy session is written about once a minute
/// instead of once per request; the price is that `last_used_at` lags by up to that step,
/// so an idle session can end up to that step early (1 of the default 30 minutes).
/// `s.last_used_at < $2` keeps `last_used_at` monotonic when requests race: the UPDATE
/// re-checks it against the newest row version.
const TOUCH: &str = "\
WITH live AS (
    SELECT s.id, u.id AS user_id, u.role, s.last_used_at
      FROM sessions s JOIN users u ON u.id = s.user_id
     WHERE s.token_hash = $1 AND NOT u.disabled
       AND s.revoked_at IS NULL AND s.expires_at > $2 AND s.last_used_at > $3
), touched AS (
    UPDATE sessions s SET last_used_at = $2
      FROM live
     WHERE s.id = live.id AND s.last_used_at < $2
       AND live.last_used_at < $2 - LEAST(interval '1 minute', ($2 - $3) / 10)
)
SELECT live.id AS session_id, live.user_id, live.role FROM live";

impl SessionRepository for PgStore {
    async fn create(&self, session: NewSession) -> Result<(), StoreError> {
        let mut conn = self.conn().await?;
        diesel::insert_into(sessions::table)
            .values((
                sessions::id.eq(session.id.as_uuid()),
                sessions::user_id.eq(session.user_id.as_uuid()),
                sessions::token_hash.eq(session.token_hash.as_slice()),
                sessions::expires_at.eq(session.expires_at),
                sessions::client_ip.eq(session.client_ip),
                sessions::user_agent.eq(session.user_agent),
            ))
            .execute(&mut conn)
            .await
            .map_err(map_diesel)?;
        Ok(())
    }

    async fn touch(
        &self,
        token_hash: [u8; 32],
        now: DateTime<Utc>,
        idle_since: DateTime<Utc>,
    ) -> Result<Option<Actor>, StoreError> {
        let mut conn = self.conn().await?;
        let live = diesel::sql_query(TOUCH)
            .bind::<Bytea, _>(token_hash.as_slice())
            .bind::<Timestamptz, _>(now)
            .bind::<Timestamptz, _>(idle_since)
            .get_result::<LiveSession>(&mut conn)
            .await
            .optional()
            .map_err(map_diesel)?;
        live.map(|row| {
            Ok(Actor {
                user_id: UserId::from_uuid(row.user_id),
                role: row
                    .role
                    .parse()
                    .map_err(|e: String| StoreError::Other(e.into()))?,
                session_id: Some(SessionId::from_uuid(row.session_id)),
            })
        })
        .transpose()
    }

    async fn revoke(&self, id: SessionId, now: DateTime<Utc>) -> Result<(), StoreError> {
        let mut conn = self.conn().await?;
        diesel::update(
            sessions::table
                .filter(sessions::id.eq(id.as_uuid()))
                .filter(sessions::revoked_at.is_null()),
        )
        .set(sessions::revoked_at.eq(now))
        .execute(&mut conn)
        .await
        .map_err(map_diesel)?;
        Ok(())
    }

    async fn list_live(
        &self,
        user: UserId,
        now: DateTime<Utc>,
        page: PageRequest,
    ) -> Result<Page<SessionInfo>, StoreError> {
        crate::accounts::list_sessions(self, user, now, page).await
    }

    async fn revoke_own(
        &self,
        user: UserId,
        id: SessionId,
        now: DateTime<Utc>,
        event: NewAccountEvent,
    ) -> Result<(), StoreError> {
        crate::accounts::revoke_own(self, user, id, now, event).await
    }
}
