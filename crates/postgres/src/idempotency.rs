//! Idempotency keys: one atomic claim per (user, key); repeats replay the stored response.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Bool, Bytea, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::RunQueryDsl;
use shms_domain::StoreError;
use shms_domain::ids::UserId;
use shms_domain::ports::{IdempotencyRepository, IdempotencyStart};

use crate::schema::idempotency_keys;
use crate::{PgStore, map_diesel};

/// Inserts the claim, or takes over one whose owner died (still in progress since before
/// `$4`) or that is older than a day (keys are kept 24 hours). Returns a row only when
/// this call owns the key; concurrent claims serialize on the primary key.
const CLAIM: &str = "\
INSERT INTO idempotency_keys (user_id, key, fingerprint) VALUES ($1, $2, $3)
ON CONFLICT (user_id, key) DO UPDATE
   SET fingerprint = EXCLUDED.fingerprint, status = 'in_progress', response_status = NULL,
       response_body = NULL, created_at = now(), completed_at = NULL
 WHERE (idempotency_keys.status = 'in_progress' AND idempotency_keys.created_at < $4
        AND idempotency_keys.fingerprint = EXCLUDED.fingerprint)
    OR idempotency_keys.created_at < now() - interval '24 hours'
RETURNING true AS claimed";

#[derive(QueryableByName)]
struct Claimed {
    #[diesel(sql_type = Bool)]
    #[expect(dead_code, reason = "only the presence of the row matters")]
    claimed: bool,
}

impl IdempotencyRepository for PgStore {
    async fn begin(
        &self,
        user: UserId,
        key: String,
        fingerprint: [u8; 32],
        stale_before: DateTime<Utc>,
    ) -> Result<IdempotencyStart, StoreError> {
        let mut conn = self.conn().await?;
        let claimed = diesel::sql_query(CLAIM)
            .bind::<SqlUuid, _>(user.as_uuid())
            .bind::<Text, _>(&key)
            .bind::<Bytea, _>(fingerprint.as_slice())
            .bind::<Timestamptz, _>(stale_before)
            .get_result::<Claimed>(&mut conn)
            .await
            .optional()
            .map_err(map_diesel)?;
        if claimed.is_some() {
            return Ok(IdempotencyStart::Started);
        }
        let (stored_fingerprint, status, body) = idempotency_keys::table
            .find((user.as_uuid(), &key))
            .select((
                idempotency_keys::fingerprint,
                idempotency_keys::response_status,
                idempotency_keys::response_body,
            ))
            .first::<(Vec<u8>, Option<i32>, Option<Vec<u8>>)>(&mut conn)
            .await
            .map_err(map_diesel)?;
        Ok(match (stored_fingerprint == fingerprint, status, body) {
            (false, _, _) => IdempotencyStart::Mismatch,
            (true, Some(status), Some(body)) => IdempotencyStart::Replay {
                status: u16::try_from(status).unwrap_or(500),
                body,
            },
            (true, _, _) => IdempotencyStart::InProgress,
        })
    }

    async fn complete(
        &self,
        user: UserId,
        key: String,
        status: u16,
        body: Vec<u8>,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn().await?;
        diesel::update(idempotency_keys::table.find((user.as_uuid(), key)))
            .set((
                idempotency_keys::status.eq("completed"),
                idempotency_keys::response_status.eq(i32::from(status)),
                idempotency_keys::response_body.eq(body),
                idempotency_keys::completed_at.eq(Utc::now()),
            ))
            .execute(&mut conn)
            .await
            .map_err(map_diesel)?;
        Ok(())
    }

    async fn release(&self, user: UserId, key: String) -> Result<(), StoreError> {
        let mut conn = self.conn().await?;
        diesel::delete(
            idempotency_keys::table
                .find((user.as_uuid(), key))
                .filter(idempotency_keys::status.eq("in_progress")),
        )
        .execute(&mut conn)
        .await
        .map_err(map_diesel)?;
        Ok(())
    }
}
