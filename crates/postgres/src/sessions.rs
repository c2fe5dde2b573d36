//! Login sessions: stored by token hash, checked (and now and then touched) in one statement
//! per request.

use chrono::{DateTime, Utc};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{Bytea, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::RunQueryDsl;
use shms_domain::accounts::{NewAccountEvent, SessionInfo};
use shms_domain::ids::{SessionId, UserId};
use shms_domain::page::{Page, PageRequest};
use shms_domain::ports::{NewSession, SessionRepository};
use shms_domain::{Actor, StoreError};
use uuid::Uuid;

use crate::schema::sessions;
use crate::statement::parts;
use crate::{PgStore, map_diesel};

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
     WHERE s.token_hash = $? AND NOT u.disabled
       AND s.revoked_at IS NULL AND s.expires_at > $? AND s.last_used_at > $?
), touched AS (
    UPDATE sessions s SET last_used_at = $?
      FROM live
     WHERE s.id = live.id AND s.last_used_at < $?
       AND live.last_used_at < $? - LEAST(interval '1 minute', ($? - $?) / 10)
)
SELECT live.id AS session_id, live.user_id, live.role FROM live";

/// `TOUCH` with its binds (`now` and `idle_since` recur); prepared once per connection (see
/// `crate::statement`).
struct TouchStatement {
    token_hash: Vec<u8>,
    now: DateTime<Utc>,
    idle_since: DateTime<Utc>,
}

// one SQL text per type: the type is the statement cache key
impl QueryId for TouchStatement {
    type QueryId = Self;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl QueryFragment<Pg> for TouchStatement {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        let [p0, p1, p2, p3, p4, p5, p6, p7, p8] = parts::<9>(TOUCH)?;
        out.push_sql(p0);
        out.push_bind_param::<Bytea, _>(&self.token_hash)?;
        for (part, value) in [
            (p1, &self.now),
            (p2, &self.idle_since),
            (p3, &self.now),
            (p4, &self.now),
            (p5, &self.now),
            (p6, &self.now),
            (p7, &self.idle_since),
        ] {
            out.push_sql(part);
            out.push_bind_param::<Timestamptz, _>(value)?;
        }
        out.push_sql(p8);
        Ok(())
    }
}

impl Query for TouchStatement {
    type SqlType = (SqlUuid, SqlUuid, Text);
}

impl<Conn> RunQueryDsl<Conn> for TouchStatement {}

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
        let live = TouchStatement {
            token_hash: token_hash.to_vec(),
            now,
            idle_since,
        }
        .get_result::<(Uuid, Uuid, String)>(&mut conn)
        .await
        .optional()
        .map_err(map_diesel)?;
        live.map(|(session_id, user_id, role)| {
            Ok(Actor {
                user_id: UserId::from_uuid(user_id),
                role: role
                    .parse()
                    .map_err(|e: String| StoreError::Other(e.into()))?,
                session_id: Some(SessionId::from_uuid(session_id)),
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
