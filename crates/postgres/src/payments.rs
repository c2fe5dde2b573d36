//! Payments and their ledger. Attempts and refunds are inserted here; the triggers of the
//! payments migration keep the payment's status and amounts, in the same transaction.

use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use shms_domain::ids::{AttemptId, PaymentId};
use shms_domain::page::{Cursor, Page, PageRequest};
use shms_domain::payment::{
    AttemptStatus, Payment, PaymentAttempt, PaymentDetails, PaymentFilter, Refund,
};
use shms_domain::ports::{NewAttempt, NewRefund, PaymentRepository, Settlement};
use shms_domain::{Conflict, StoreError};
use uuid::Uuid;

use crate::rows::{AttemptRow, PaymentRow, RefundRow};
use crate::schema::{appointments, payment_attempts, payments, refunds};
use crate::slots::{parse_time_key, time_key};
use crate::{PgStore, detached, map_diesel};

/// Loads a payment with whose it is and its ledger (three indexed lookups).
pub(crate) async fn load_details(
    conn: &mut AsyncPgConnection,
    id: PaymentId,
) -> Result<PaymentDetails, StoreError> {
    let (payment, patient_id, doctor_id) = payments::table
        .inner_join(appointments::table.on(appointments::id.eq(payments::appointment_id)))
        .filter(payments::id.eq(id.as_uuid()))
        .select((
            PaymentRow::as_select(),
            appointments::patient_id,
            appointments::doctor_id,
        ))
        .first::<(PaymentRow, Uuid, Uuid)>(conn)
        .await
        .map_err(map_diesel)?;
    let attempts = payment_attempts::table
        .filter(payment_attempts::payment_id.eq(id.as_uuid()))
        .order((
            payment_attempts::created_at.asc(),
            payment_attempts::id.asc(),
        ))
        .select(AttemptRow::as_select())
        .load(conn)
        .await
        .map_err(map_diesel)?;
    let refund_rows = refunds::table
        .filter(refunds::payment_id.eq(id.as_uuid()))
        .order((refunds::created_at.asc(), refunds::id.asc()))
        .select(RefundRow::as_select())
        .load(conn)
        .await
        .map_err(map_diesel)?;
    Ok(PaymentDetails {
        payment: payment.try_into()?,
        patient_id: patient_id.into(),
        doctor_id: doctor_id.into(),
        attempts: attempts
            .into_iter()
            .map(PaymentAttempt::try_from)
            .collect::<Result<_, _>>()?,
        refunds: refund_rows.into_iter().map(Refund::from).collect(),
    })
}

/// Inserts a refund; the `refunds_apply` trigger checks it and the payment follows.
pub(crate) async fn insert_refund(
    conn: &mut AsyncPgConnection,
    refund: &NewRefund,
) -> QueryResult<usize> {
    diesel::insert_into(refunds::table)
        .values((
            refunds::id.eq(refund.id.as_uuid()),
            refunds::payment_id.eq(refund.payment_id.as_uuid()),
            refunds::amount_cents.eq(refund.amount.amount_cents),
            refunds::currency.eq(&refund.amount.currency),
            refunds::reason.eq(&refund.reason),
            refunds::created_by.eq(refund.created_by.as_uuid()),
        ))
        .execute(conn)
        .await
}

impl PaymentRepository for PgStore {
    async fn get(&self, id: PaymentId) -> Result<PaymentDetails, StoreError> {
        let mut conn = self.conn().await?;
        load_details(&mut conn, id).await
    }

    async fn list(
        &self,
        filter: PaymentFilter,
        page: PageRequest,
    ) -> Result<Page<Payment>, StoreError> {
        let mut conn = self.conn().await?;
        let mut query = payments::table
            .inner_join(appointments::table.on(appointments::id.eq(payments::appointment_id)))
            .select(PaymentRow::as_select())
            .order((payments::created_at.desc(), payments::id.desc()))
            .limit(i64::from(page.limit) + 1)
            .into_boxed();
        if let Some(patient) = filter.patient_id {
            query = query.filter(appointments::patient_id.eq(patient.as_uuid()));
        }
        if let Some(doctor) = filter.doctor_id {
            query = query.filter(appointments::doctor_id.eq(doctor.as_uuid()));
        }
        if let Some(status) = filter.status {
            query = query.filter(payments::status.eq(status.as_str()));
        }
        if let Some(from) = filter.from {
            query = query.filter(payments::created_at.ge(from));
        }
        if let Some(to) = filter.to {
            query = query.filter(payments::created_at.lt(to));
        }
        if let Some(Cursor { key, id }) = page.after {
            let at = parse_time_key(&key)?;
            query = query.filter(
                payments::created_at
                    .lt(at)
                    .or(payments::created_at.eq(at).and(payments::id.lt(id))),
            );
        }
        let rows = query.load(&mut conn).await.map_err(map_diesel)?;
        let items = rows
            .into_iter()
            .map(Payment::try_from)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_overfetch(items, page.limit, |p: &Payment| {
            Cursor {
                key: time_key(p.created_at),
                id: p.id.as_uuid(),
            }
        }))
    }

    async fn begin_attempt(&self, attempt: NewAttempt) -> Result<PaymentDetails, StoreError> {
        let store = self.clone();
        detached(async move {
            let mut conn = store.conn().await?;
            let status = if attempt.succeeded {
                AttemptStatus::Succeeded
            } else {
                AttemptStatus::Pending
            };
            diesel::insert_into(payment_attempts::table)
                .values((
                    payment_attempts::id.eq(attempt.id.as_uuid()),
                    payment_attempts::payment_id.eq(attempt.payment_id.as_uuid()),
                    payment_attempts::idempotency_key.eq(attempt.id.as_uuid()),
                    payment_attempts::method.eq(attempt.method.as_str()),
                    payment_attempts::card_token.eq(attempt.card_token.as_deref()),
                    payment_attempts::amount_cents.eq(attempt.amount.amount_cents),
                    payment_attempts::currency.eq(&attempt.amount.currency),
                    payment_attempts::status.eq(status.as_str()),
                    payment_attempts::created_by.eq(attempt.created_by.as_uuid()),
                ))
                .execute(&mut conn)
                .await
                .map_err(map_diesel)?;
            load_details(&mut conn, attempt.payment_id).await
        })
        .await
    }

    async fn settle_attempt(
        &self,
        payment: PaymentId,
        attempt: AttemptId,
        settlement: Settlement,
    ) -> Result<PaymentDetails, StoreError> {
        let store = self.clone();
        detached(async move {
            let mut conn = store.conn().await?;
            let (status, reference, reason) = match settlement {
                Settlement::Succeeded { reference } => {
                    (AttemptStatus::Succeeded, Some(reference), None)
                }
                Settlement::Declined { reason } => (AttemptStatus::Declined, None, Some(reason)),
                Settlement::Failed { reason } => (AttemptStatus::Failed, None, Some(reason)),
            };
            let changed = diesel::update(
                payment_attempts::table
                    .filter(payment_attempts::id.eq(attempt.as_uuid()))
                    .filter(payment_attempts::payment_id.eq(payment.as_uuid()))
                    .filter(payment_attempts::status.eq(AttemptStatus::Pending.as_str())),
            )
            .set((
                payment_attempts::status.eq(status.as_str()),
                payment_attempts::gateway_reference.eq(reference),
                payment_attempts::failure_reason.eq(reason),
            ))
            .execute(&mut conn)
            .await
            .map_err(map_diesel)?;
            if changed == 0 {
                // settled by a concurrent resume of the same attempt
                return Err(StoreError::Conflict(Conflict::InvalidTransition));
            }
            load_details(&mut conn, payment).await
        })
        .await
    }

    async fn refund(&self, refund: NewRefund) -> Result<PaymentDetails, StoreError> {
        let store = self.clone();
        detached(async move {
            let mut conn = store.conn().await?;
            conn.transaction(async |conn| insert_refund(conn, &refund).await)
                .await
                .map_err(map_diesel)?;
            load_details(&mut conn, refund.payment_id).await
        })
        .await
    }
}
