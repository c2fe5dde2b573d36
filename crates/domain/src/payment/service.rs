//! Paying, refunding and reading payments.
//!
//! Paying never holds a database transaction across the gateway call: the attempt is
//! recorded (one transaction), the gateway is called with the attempt's id as idempotency
//! key, and the outcome is settled (another transaction). An attempt left pending by a
//! crash is resumed with the same key, so the provider charges it at most once.

use chrono::{DateTime, TimeDelta, Utc};

use super::ledger::{LedgerOp, LedgerRefusal};
use super::{AttemptStatus, PaymentDetails, PaymentMethod, PaymentStatus, Refund};
use crate::actor::Actor;
use crate::clock::Clock;
use crate::error::{Conflict, StoreError};
use crate::ids::{AttemptId, PaymentId, RefundId, UserId};
use crate::page::{Page, PageRequest};
use crate::payment::Payment;
use crate::ports::{
    ChargeOutcome, ChargeRequest, GatewayError, NewAttempt, NewRefund, PaymentGateway,
    PaymentRepository, Settlement,
};
use crate::services::{Adapters, Ports};
use crate::user::Role;
use crate::validation::ValidationErrors;

/// An attempt pending this long is considered abandoned (its process died) and resumed.
pub const RESUME_AFTER: TimeDelta = TimeDelta::seconds(30);

/// A validated request to pay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayRequest {
    /// Card (patients), cash or insurance (admins).
    pub method: PaymentMethod,
    /// Required for cards.
    pub card_token: Option<String>,
}

/// A validated refund request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundRequest {
    /// How much, minor units, positive.
    pub amount_cents: i64,
    /// Why (1..=2000 characters).
    pub reason: String,
}

/// Filters of the payment list; the service fills in the caller's scope.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PaymentFilter {
    /// Only this patient's.
    pub patient_id: Option<UserId>,
    /// Only this doctor's appointments'.
    pub doctor_id: Option<UserId>,
    /// Only this status.
    pub status: Option<PaymentStatus>,
    /// Created at or after.
    pub from: Option<DateTime<Utc>>,
    /// Created before.
    pub to: Option<DateTime<Utc>>,
}

/// Why a payment operation failed.
#[derive(Debug, thiserror::Error)]
pub enum PaymentError {
    /// No such payment, or not the caller's.
    #[error("payment not found")]
    NotFound,
    /// The caller sees the payment but may not do this.
    #[error("{0}")]
    Forbidden(&'static str),
    /// The request is invalid.
    #[error("invalid request: {0}")]
    Validation(ValidationErrors),
    /// Paying a payment that is not pending.
    #[error("the payment is {0}; only pending payments can be paid")]
    NotPayable(PaymentStatus),
    /// Another attempt is in flight.
    #[error("a payment attempt is already in progress")]
    InProgress,
    /// The card was declined; the payment stays pending.
    #[error("the card was declined: {0}")]
    Declined(String),
    /// The card token is not valid.
    #[error("the card token is not valid")]
    InvalidCardToken,
    /// The gateway is unavailable; nothing was charged.
    #[error("the payment provider is unavailable; nothing was charged")]
    GatewayUnavailable,
    /// Refunding an unpaid payment.
    #[error("the payment is {0}; only paid payments can be refunded")]
    NotRefundable(PaymentStatus),
    /// The refund exceeds what is left.
    #[error("at most {refundable} can still be refunded")]
    RefundExceedsPaid {
        /// What is left to refund.
        refundable: i64,
    },
    /// Storage failure.
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for PaymentError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound => Self::NotFound,
            StoreError::Conflict(Conflict::PaymentInProgress) => Self::InProgress,
            other => Self::Store(other),
        }
    }
}

impl From<LedgerRefusal> for PaymentError {
    fn from(refusal: LedgerRefusal) -> Self {
        match refusal {
            LedgerRefusal::NotPending(status) => Self::NotPayable(status),
            LedgerRefusal::NotRefundable(status) => Self::NotRefundable(status),
            LedgerRefusal::ExceedsPaid { refundable } => Self::RefundExceedsPaid { refundable },
            LedgerRefusal::NonPositive => {
                Self::Validation(ValidationErrors::single("amount_cents", "must be positive"))
            }
        }
    }
}

/// Whether the caller may see a payment: the appointment's patient and doctor, and admins.
#[must_use]
pub fn is_visible_to(details: &PaymentDetails, actor: &Actor) -> bool {
    match actor.role {
        Role::Admin => true,
        Role::Patient => actor.is(details.patient_id),
        Role::Doctor => actor.is(details.doctor_id),
    }
}

/// Payments.
pub struct PaymentService<P: Ports> {
    adapters: Adapters<P>,
}

impl<P: Ports> PaymentService<P> {
    /// A service over the given adapters.
    #[must_use]
    pub fn new(adapters: Adapters<P>) -> Self {
        Self { adapters }
    }

    /// A payment with its attempts and refunds, if the caller may see it.
    ///
    /// # Errors
    /// `NotFound`.
    pub async fn get(&self, actor: &Actor, id: PaymentId) -> Result<PaymentDetails, PaymentError> {
        let details = self.adapters.payments.get(id).await?;
        if !is_visible_to(&details, actor) {
            return Err(PaymentError::NotFound);
        }
        Ok(details)
    }

    /// The caller's payments: a patient's own, a doctor's appointments', all for admins.
    ///
    /// # Errors
    /// Storage failures only.
    pub async fn list(
        &self,
        actor: &Actor,
        mut filter: PaymentFilter,
        page: PageRequest,
    ) -> Result<Page<Payment>, PaymentError> {
        match actor.role {
            Role::Patient => filter.patient_id = Some(actor.user_id),
            Role::Doctor => filter.doctor_id = Some(actor.user_id),
            Role::Admin => {}
        }
        Ok(self.adapters.payments.list(filter, page).await?)
    }

    /// Checks who may pay how: the patient by card, an admin recording cash or insurance.
    ///
    /// # Errors
    /// `Forbidden`, `Validation`.
    pub fn authorize_pay(actor: &Actor, request: &PayRequest) -> Result<(), PaymentError> {
        match (actor.role, request.method) {
            (Role::Doctor, _) => Err(PaymentError::Forbidden(
                "doctors cannot pay or record payments",
            )),
            (Role::Patient, PaymentMethod::Card)
            | (Role::Admin, PaymentMethod::Cash | PaymentMethod::Insurance) => {
                if request.method == PaymentMethod::Card && request.card_token.is_none() {
                    return Err(PaymentError::Validation(ValidationErrors::single(
                        "card_token",
                        "required for card payments",
                    )));
                }
                Ok(())
            }
            (Role::Patient, _) => Err(PaymentError::Forbidden(
                "only the clinic records cash or insurance payments",
            )),
            (Role::Admin, PaymentMethod::Card) => Err(PaymentError::Forbidden(
                "card payments are made by the patient; record cash or insurance",
            )),
        }
    }

    /// Pays a pending payment.
    ///
    /// # Errors
    /// `NotFound`, `Forbidden`, `Validation`, `NotPayable`, `InProgress`, `Declined`,
    /// `InvalidCardToken`, `GatewayUnavailable`.
    pub async fn pay(
        &self,
        actor: &Actor,
        id: PaymentId,
        request: PayRequest,
    ) -> Result<PaymentDetails, PaymentError> {
        let details = self.get(actor, id).await?;
        Self::authorize_pay(actor, &request)?;
        let now = self.adapters.clock.now();
        if let Some(stale) = details
            .attempts
            .iter()
            .find(|a| a.status == AttemptStatus::Pending)
        {
            if stale.created_at > now - RESUME_AFTER {
                return Err(PaymentError::InProgress);
            }
            let token = stale.card_token.clone().unwrap_or_default();
            return self.charge_and_settle(&details, stale.id, token).await;
        }
        details.payment.apply(LedgerOp::Pay, now)?;
        let attempt = NewAttempt {
            id: AttemptId::new(),
            payment_id: id,
            method: request.method,
            card_token: request.card_token.clone(),
            amount: details.payment.amount.clone(),
            created_by: actor.user_id,
            succeeded: request.method != PaymentMethod::Card,
        };
        let attempt_id = attempt.id;
        let recorded = self
            .adapters
            .payments
            .begin_attempt(attempt)
            .await
            .map_err(|error| match error {
                StoreError::Conflict(Conflict::PaymentNotPending) => {
                    PaymentError::NotPayable(details.payment.status)
                }
                other => other.into(),
            })?;
        match request.card_token {
            Some(token) if request.method == PaymentMethod::Card => {
                self.charge_and_settle(&recorded, attempt_id, token).await
            }
            _ => Ok(recorded),
        }
    }

    async fn charge_and_settle(
        &self,
        details: &PaymentDetails,
        attempt: AttemptId,
        card_token: String,
    ) -> Result<PaymentDetails, PaymentError> {
        let charge = ChargeRequest {
            idempotency_key: attempt,
            amount: details.payment.amount.clone(),
            card_token,
        };
        let outcome = self.adapters.gateway.charge(charge).await;
        let settlement = match &outcome {
            Ok(ChargeOutcome::Succeeded { reference }) => Settlement::Succeeded {
                reference: reference.clone(),
            },
            Ok(ChargeOutcome::Declined { reason }) => Settlement::Declined {
                reason: reason.clone(),
            },
            Err(error) => Settlement::Failed {
                reason: error.to_string(),
            },
        };
        let settled = self
            .adapters
            .payments
            .settle_attempt(details.payment.id, attempt, settlement)
            .await?;
        match outcome {
            Ok(ChargeOutcome::Succeeded { .. }) => Ok(settled),
            Ok(ChargeOutcome::Declined { reason }) => Err(PaymentError::Declined(reason)),
            Err(GatewayError::InvalidToken) => Err(PaymentError::InvalidCardToken),
            Err(GatewayError::Unavailable(_)) => Err(PaymentError::GatewayUnavailable),
        }
    }

    /// Refunds part or all of a paid payment (admins).
    ///
    /// # Errors
    /// `NotFound`, `Forbidden`, `Validation`, `NotRefundable`, `RefundExceedsPaid`.
    pub async fn refund(
        &self,
        actor: &Actor,
        id: PaymentId,
        request: RefundRequest,
    ) -> Result<(Refund, PaymentDetails), PaymentError> {
        let details = self.get(actor, id).await?;
        if !actor.is_admin() {
            return Err(PaymentError::Forbidden(
                "only administrators refund payments",
            ));
        }
        let request_amount = request.amount_cents;
        details
            .payment
            .apply(LedgerOp::Refund(request_amount), self.adapters.clock.now())?;
        let refund = NewRefund {
            id: RefundId::new(),
            payment_id: id,
            amount: crate::payment::Money {
                amount_cents: request.amount_cents,
                currency: details.payment.amount.currency.clone(),
            },
            reason: request.reason,
            created_by: actor.user_id,
        };
        let refund_id = refund.id;
        let updated = match self.adapters.payments.refund(refund).await {
            Ok(updated) => updated,
            // a concurrent refund got there first: report what is left now
            Err(StoreError::Conflict(
                Conflict::RefundExceedsPaid | Conflict::PaymentNotRefundable,
            )) => {
                let fresh = self.adapters.payments.get(id).await?.payment;
                return Err(fresh
                    .apply(LedgerOp::Refund(request_amount), self.adapters.clock.now())
                    .err()
                    .map_or(
                        PaymentError::RefundExceedsPaid {
                            refundable: fresh.refundable_cents(),
                        },
                        PaymentError::from,
                    ));
            }
            Err(other) => return Err(other.into()),
        };
        let recorded = updated
            .refunds
            .iter()
            .find(|r| r.id == refund_id)
            .cloned()
            .ok_or_else(|| {
                PaymentError::Store(StoreError::Other("refund not returned by the store".into()))
            })?;
        Ok((recorded, updated))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::ids::AppointmentId;
    use crate::payment::{Money, PaymentAttempt};
    use crate::test_support::{Mocks, block_on, now};

    fn details(status: PaymentStatus, patient: UserId) -> PaymentDetails {
        let refunded_cents = if status == PaymentStatus::Refunded {
            5000
        } else {
            0
        };
        PaymentDetails {
            payment: Payment {
                id: PaymentId::new(),
                appointment_id: AppointmentId::new(),
                amount: Money {
                    amount_cents: 5000,
                    currency: "EUR".into(),
                },
                status,
                refunded_cents,
                paid_at: None,
                created_at: now(),
            },
            patient_id: patient,
            doctor_id: UserId::new(),
            attempts: Vec::new(),
            refunds: Vec::new(),
        }
    }

    fn actor(role: Role) -> Actor {
        Actor {
            user_id: UserId::new(),
            role,
            session_id: None,
        }
    }

    fn expect_get(mocks: &mut Mocks, found: &PaymentDetails) {
        let found = found.clone();
        mocks.payments.expect_get().returning(move |_| {
            let found = found.clone();
            Box::pin(async move { Ok(found) })
        });
    }

    fn card(token: &str) -> PayRequest {
        PayRequest {
            method: PaymentMethod::Card,
            card_token: Some(token.into()),
        }
    }

    /// A patient pays by card: attempt recorded, gateway called with the attempt's id, outcome
    /// settled; returns the settlement the store received.
    fn pay_with_gateway(
        answer: Result<ChargeOutcome, GatewayError>,
    ) -> (Result<PaymentDetails, PaymentError>, Option<Settlement>) {
        let patient = actor(Role::Patient);
        let pending = details(PaymentStatus::Pending, patient.user_id);
        let mut mocks = Mocks::at(now());
        expect_get(&mut mocks, &pending);
        let attempt_id = Arc::new(Mutex::new(None));
        let seen = Arc::clone(&attempt_id);
        let recorded = pending.clone();
        mocks
            .payments
            .expect_begin_attempt()
            .times(1)
            .returning(move |attempt| {
                assert!(!attempt.succeeded && attempt.method == PaymentMethod::Card);
                if let Ok(mut slot) = seen.lock() {
                    *slot = Some(attempt.id);
                }
                let recorded = recorded.clone();
                Box::pin(async move { Ok(recorded) })
            });
        let keyed = Arc::clone(&attempt_id);
        mocks
            .gateway
            .expect_charge()
            .times(1)
            .returning(move |charge| {
                assert_eq!(
                    Some(charge.idempotency_key),
                    keyed.lock().ok().and_then(|k| *k),
                    "the attempt id is the key"
                );
                assert_eq!(charge.amount.amount_cents, 5000);
                let answer = answer.clone();
                Box::pin(async move { answer })
            });
        let settled = Arc::new(Mutex::new(None));
        let sink = Arc::clone(&settled);
        let after = pending.clone();
        mocks
            .payments
            .expect_settle_attempt()
            .times(1)
            .returning(move |_, _, settlement| {
                if let Ok(mut slot) = sink.lock() {
                    *slot = Some(settlement);
                }
                let after = after.clone();
                Box::pin(async move { Ok(after) })
            });
        let service = PaymentService::new(mocks.build());
        let result = block_on(service.pay(&patient, pending.payment.id, card("tok")));
        let settlement = settled.lock().ok().and_then(|s| s.clone());
        (result, settlement)
    }

    #[test]
    fn a_successful_charge_is_settled_as_succeeded() {
        let (result, settlement) = pay_with_gateway(Ok(ChargeOutcome::Succeeded {
            reference: "ch_1".into(),
        }));
        assert!(result.is_ok());
        assert_eq!(
            settlement,
            Some(Settlement::Succeeded {
                reference: "ch_1".into()
            })
        );
    }

    #[test]
    fn a_decline_is_settled_and_reported() {
        let (result, settlement) = pay_with_gateway(Ok(ChargeOutcome::Declined {
            reason: "card_declined".into(),
        }));
        assert!(matches!(result, Err(PaymentError::Declined(reason)) if reason == "card_declined"));
        assert_eq!(
            settlement,
            Some(Settlement::Declined {
                reason: "card_declined".into()
            })
        );
    }

    #[test]
    fn gateway_failures_settle_the_attempt_as_failed() {
        let (result, settlement) =
            pay_with_gateway(Err(GatewayError::Unavailable("timeout".into())));
        assert!(matches!(result, Err(PaymentError::GatewayUnavailable)));
        assert!(matches!(settlement, Some(Settlement::Failed { .. })));
        let (result, settlement) = pay_with_gateway(Err(GatewayError::InvalidToken));
        assert!(matches!(result, Err(PaymentError::InvalidCardToken)));
        assert!(matches!(settlement, Some(Settlement::Failed { .. })));
    }

    #[test]
    fn who_may_pay_how() {
        let cash = PayRequest {
            method: PaymentMethod::Cash,
            card_token: None,
        };
        let no_token = PayRequest {
            method: PaymentMethod::Card,
            card_token: None,
        };
        assert!(matches!(
            PaymentService::<crate::test_support::MockPorts>::authorize_pay(
                &actor(Role::Doctor),
                &card("t")
            ),
            Err(PaymentError::Forbidden(_))
        ));
        assert!(matches!(
            PaymentService::<crate::test_support::MockPorts>::authorize_pay(
                &actor(Role::Patient),
                &cash
            ),
            Err(PaymentError::Forbidden(_))
        ));
        assert!(matches!(
            PaymentService::<crate::test_support::MockPorts>::authorize_pay(
                &actor(Role::Admin),
                &card("t")
            ),
            Err(PaymentError::Forbidden(_))
        ));
        assert!(matches!(
            PaymentService::<crate::test_support::MockPorts>::authorize_pay(
                &actor(Role::Patient),
                &no_token
            ),
            Err(PaymentError::Validation(_))
        ));
        assert!(
            PaymentService::<crate::test_support::MockPorts>::authorize_pay(
                &actor(Role::Admin),
                &cash
            )
            .is_ok()
        );
        assert!(
            PaymentService::<crate::test_support::MockPorts>::authorize_pay(
                &actor(Role::Patient),
                &card("t")
            )
            .is_ok()
        );
    }

    #[test]
    fn an_admin_records_cash_without_the_gateway() {
        let admin = actor(Role::Admin);
        let pending = details(PaymentStatus::Pending, UserId::new());
        let mut mocks = Mocks::at(now());
        expect_get(&mut mocks, &pending);
        let recorded = pending.clone();
        mocks
            .payments
            .expect_begin_attempt()
            .withf(|a| a.succeeded && a.method == PaymentMethod::Cash && a.card_token.is_none())
            .times(1)
            .returning(move |_| {
                let recorded = recorded.clone();
                Box::pin(async move { Ok(recorded) })
            });
        let service = PaymentService::new(mocks.build());
        let cash = PayRequest {
            method: PaymentMethod::Cash,
            card_token: None,
        };
        assert!(block_on(service.pay(&admin, pending.payment.id, cash)).is_ok());
    }

    #[test]
    fn only_pending_payments_are_paid_and_strangers_see_nothing() {
        for status in [
            PaymentStatus::Paid,
            PaymentStatus::Cancelled,
            PaymentStatus::Refunded,
        ] {
            let patient = actor(Role::Patient);
            let found = details(status, patient.user_id);
            let mut mocks = Mocks::at(now());
            expect_get(&mut mocks, &found);
            let service = PaymentService::new(mocks.build());
            let result = block_on(service.pay(&patient, found.payment.id, card("tok_visa")));
            assert!(matches!(result, Err(PaymentError::NotPayable(s)) if s == status));
        }
        let found = details(PaymentStatus::Pending, UserId::new());
        let mut mocks = Mocks::at(now());
        expect_get(&mut mocks, &found);
        let service = PaymentService::new(mocks.build());
        for stranger in [actor(Role::Patient), actor(Role::Doctor)] {
            assert!(matches!(
                block_on(service.pay(&stranger, found.payment.id, card("t"))),
                Err(PaymentError::NotFound)
            ));
        }
    }

    fn with_pending_attempt(started: DateTime<Utc>, patient: UserId) -> PaymentDetails {
        let mut found = details(PaymentStatus::Pending, patient);
        found.attempts.push(PaymentAttempt {
            id: AttemptId::new(),
            method: PaymentMethod::Card,
            card_token: Some("tok_visa".into()),
            status: AttemptStatus::Pending,
            gateway_reference: None,
            failure_reason: None,
            created_by: patient,
            created_at: started,
            settled_at: None,
        });
        found
    }

    #[test]
    fn an_attempt_in_flight_blocks_a_second_one_until_it_is_abandoned() {
        let patient = actor(Role::Patient);
        let fresh = with_pending_attempt(now() - TimeDelta::seconds(5), patient.user_id);
        let mut mocks = Mocks::at(now());
        expect_get(&mut mocks, &fresh);
        let service = PaymentService::new(mocks.build());
        assert!(matches!(
            block_on(service.pay(&patient, fresh.payment.id, card("tok_visa"))),
            Err(PaymentError::InProgress)
        ));

        // abandoned: resumed with the SAME attempt id, so the provider charges at most once
        let stale = with_pending_attempt(
            now() - RESUME_AFTER - TimeDelta::seconds(1),
            patient.user_id,
        );
        let stale_attempt = stale.attempts[0].id;
        let mut mocks = Mocks::at(now());
        expect_get(&mut mocks, &stale);
        mocks
            .gateway
            .expect_charge()
            .withf(move |c| c.idempotency_key == stale_attempt && c.card_token == "tok_visa")
            .times(1)
            .returning(|_| {
                Box::pin(async {
                    Ok(ChargeOutcome::Succeeded {
                        reference: "ch".into(),
                    })
                })
            });
        let settled = stale.clone();
        mocks
            .payments
            .expect_settle_attempt()
            .withf(move |_, a, _| *a == stale_attempt)
            .times(1)
            .returning(move |_, _, _| {
                let settled = settled.clone();
                Box::pin(async move { Ok(settled) })
            });
        let service = PaymentService::new(mocks.build());
        assert!(block_on(service.pay(&patient, stale.payment.id, card("tok_other"))).is_ok());
    }

    #[test]
    fn only_admins_refund_and_never_more_than_paid() {
        let patient = actor(Role::Patient);
        let mut paid = details(PaymentStatus::Paid, patient.user_id);
        paid.payment.paid_at = Some(now());
        let mut mocks = Mocks::at(now());
        expect_get(&mut mocks, &paid);
        let service = PaymentService::new(mocks.build());
        let request = |amount_cents| RefundRequest {
            amount_cents,
            reason: "goodwill".into(),
        };
        assert!(matches!(
            block_on(service.refund(&patient, paid.payment.id, request(100))),
            Err(PaymentError::Forbidden(_))
        ));
        let admin = actor(Role::Admin);
        assert!(matches!(
            block_on(service.refund(&admin, paid.payment.id, request(5001))),
            Err(PaymentError::RefundExceedsPaid { refundable: 5000 })
        ));
        let pending = details(PaymentStatus::Pending, patient.user_id);
        let mut mocks = Mocks::at(now());
        expect_get(&mut mocks, &pending);
        let service = PaymentService::new(mocks.build());
        assert!(matches!(
            block_on(service.refund(&admin, pending.payment.id, request(100))),
            Err(PaymentError::NotRefundable(PaymentStatus::Pending))
        ));
    }
}
