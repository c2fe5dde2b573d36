//! The payment rules as pure functions: what paying, refunding and cancelling do to a
//! payment. The services check them before writing, and the database triggers of the
//! payments migration enforce the same rules on the stored rows.

use chrono::{DateTime, Utc};

use super::{Payment, PaymentStatus};

/// An operation on a payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LedgerOp {
    /// A successful charge of the full amount.
    Pay,
    /// A refund of this many minor units.
    Refund(i64),
    /// The appointment was cancelled before payment.
    Cancel,
}

/// Why an operation does not apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LedgerRefusal {
    /// Only a pending payment can be paid or cancelled.
    #[error("the payment is {0}, not pending")]
    NotPending(PaymentStatus),
    /// Only a paid (or partially refunded) payment can be refunded.
    #[error("the payment is {0}; only paid payments can be refunded")]
    NotRefundable(PaymentStatus),
    /// The refund is larger than what is left to refund.
    #[error("at most {refundable} can still be refunded")]
    ExceedsPaid {
        /// What is left.
        refundable: i64,
    },
    /// Refunds are positive.
    #[error("a refund must be positive")]
    NonPositive,
}

/// Whether the payment state machine allows `from -> to` (mirrors the SQL function
/// `payment_transition_allowed`).
#[must_use]
pub const fn transition_allowed(from: PaymentStatus, to: PaymentStatus) -> bool {
    use PaymentStatus::{Cancelled, Paid, PartiallyRefunded, Pending, Refunded};
    matches!(
        (from, to),
        (Pending, Paid | Cancelled) | (Paid | PartiallyRefunded, PartiallyRefunded | Refunded)
    )
}

impl Payment {
    /// What can still be refunded: the paid amount minus earlier refunds (0 unless paid).
    #[must_use]
    pub fn refundable_cents(&self) -> i64 {
        match self.status {
            PaymentStatus::Paid | PaymentStatus::PartiallyRefunded => {
                self.amount.amount_cents - self.refunded_cents
            }
            _ => 0,
        }
    }

    /// The payment after `op`, or why `op` does not apply.
    ///
    /// # Errors
    /// The refusal.
    pub fn apply(&self, op: LedgerOp, at: DateTime<Utc>) -> Result<Self, LedgerRefusal> {
        let mut next = self.clone();
        match op {
            LedgerOp::Pay | LedgerOp::Cancel if self.status != PaymentStatus::Pending => {
                return Err(LedgerRefusal::NotPending(self.status));
            }
            LedgerOp::Pay => {
                next.status = PaymentStatus::Paid;
                next.paid_at = Some(at);
            }
            LedgerOp::Cancel => next.status = PaymentStatus::Cancelled,
            LedgerOp::Refund(amount) => {
                if !matches!(
                    self.status,
                    PaymentStatus::Paid | PaymentStatus::PartiallyRefunded
                ) {
                    return Err(LedgerRefusal::NotRefundable(self.status));
                }
                if amount <= 0 {
                    return Err(LedgerRefusal::NonPositive);
                }
                let refundable = self.refundable_cents();
                if amount > refundable {
                    return Err(LedgerRefusal::ExceedsPaid { refundable });
                }
                next.refunded_cents += amount;
                next.status = if next.refunded_cents == next.amount.amount_cents {
                    PaymentStatus::Refunded
                } else {
                    PaymentStatus::PartiallyRefunded
                };
            }
        }
        Ok(next)
    }

    /// Whether status and amounts agree (the `payments_status_matches_amounts` CHECK).
    #[must_use]
    pub fn is_consistent(&self) -> bool {
        let refunded = self.refunded_cents;
        let amount = self.amount.amount_cents;
        let amounts_ok = match self.status {
            PaymentStatus::Pending | PaymentStatus::Paid | PaymentStatus::Cancelled => {
                refunded == 0
            }
            PaymentStatus::PartiallyRefunded => refunded > 0 && refunded < amount,
            PaymentStatus::Refunded => refunded == amount,
        };
        let paid_at_ok = matches!(
            self.status,
            PaymentStatus::Pending | PaymentStatus::Cancelled
        ) == self.paid_at.is_none();
        amounts_ok && paid_at_ok && amount > 0
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::ids::{AppointmentId, PaymentId};
    use crate::payment::Money;

    fn pending(amount_cents: i64) -> Payment {
        Payment {
            id: PaymentId::new(),
            appointment_id: AppointmentId::new(),
            amount: Money {
                amount_cents,
                currency: "EUR".into(),
            },
            status: PaymentStatus::Pending,
            refunded_cents: 0,
            paid_at: None,
            created_at: DateTime::<Utc>::UNIX_EPOCH,
        }
    }

    fn op() -> impl Strategy<Value = LedgerOp> {
        prop_oneof![
            Just(LedgerOp::Pay),
            Just(LedgerOp::Cancel),
            (-100_i64..12_000).prop_map(LedgerOp::Refund),
        ]
    }

    proptest! {
        /// Random sequences of pay/refund/cancel never reach a state the rules forbid.
        #[test]
        fn random_operations_keep_the_ledger_consistent(
            amount in 1_i64..10_000,
            ops in proptest::collection::vec(op(), 0..40),
        ) {
            let mut payment = pending(amount);
            for op in ops {
                // a refused operation leaves the payment as it was
                if let Ok(next) = payment.apply(op, DateTime::<Utc>::UNIX_EPOCH) {
                    prop_assert!(next.status == payment.status || transition_allowed(payment.status, next.status),
                        "{:?} -> {:?} by {op:?}", payment.status, next.status);
                    prop_assert!(next.refunded_cents >= payment.refunded_cents);
                    payment = next;
                }
                prop_assert!(payment.is_consistent(), "{payment:?}");
                prop_assert!(payment.amount.amount_cents - payment.refunded_cents >= 0);
            }
        }
    }

    #[test]
    fn refunds_up_to_and_past_the_paid_amount() {
        let paid = pending(5000)
            .apply(LedgerOp::Pay, DateTime::<Utc>::UNIX_EPOCH)
            .unwrap_or_else(|e| panic!("{e}"));
        let partial = paid.apply(LedgerOp::Refund(2000), DateTime::<Utc>::UNIX_EPOCH);
        assert_eq!(
            partial.as_ref().map(|p| p.status),
            Ok(PaymentStatus::PartiallyRefunded)
        );
        let partial = partial.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            partial.apply(LedgerOp::Refund(3001), DateTime::<Utc>::UNIX_EPOCH),
            Err(LedgerRefusal::ExceedsPaid { refundable: 3000 })
        );
        let full = partial.apply(LedgerOp::Refund(3000), DateTime::<Utc>::UNIX_EPOCH);
        assert_eq!(
            full.as_ref().map(|p| (p.status, p.refunded_cents)),
            Ok((PaymentStatus::Refunded, 5000))
        );
        assert_eq!(
            pending(5000).apply(LedgerOp::Refund(1), DateTime::<Utc>::UNIX_EPOCH),
            Err(LedgerRefusal::NotRefundable(PaymentStatus::Pending))
        );
        assert_eq!(
            paid.apply(LedgerOp::Pay, DateTime::<Utc>::UNIX_EPOCH),
            Err(LedgerRefusal::NotPending(PaymentStatus::Paid))
        );
        assert_eq!(
            paid.apply(LedgerOp::Refund(0), DateTime::<Utc>::UNIX_EPOCH),
            Err(LedgerRefusal::NonPositive)
        );
    }
}
