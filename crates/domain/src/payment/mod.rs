//! Payments: one per appointment, created pending at booking for the doctor's fee, paid
//! through attempts and reduced by refunds. The database keeps the status from the ledger
//! (attempts, refunds); `ledger.rs` holds the same rules as pure functions.

mod ledger;
mod service;

pub use ledger::{LedgerOp, LedgerRefusal, transition_allowed};
pub use service::{PayRequest, PaymentError, PaymentFilter, PaymentService, RefundRequest};

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};

use crate::ids::{AppointmentId, AttemptId, PaymentId, RefundId, UserId};

/// An amount of money in minor units of an ISO 4217 currency. Never a float.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Money {
    /// Minor units (cents), strictly positive for fees and payments.
    pub amount_cents: i64,
    /// ISO 4217 code, upper case.
    pub currency: String,
}

impl Money {
    /// Validates a positive amount and a three-letter currency code.
    ///
    /// # Errors
    /// A message naming the broken rule.
    pub fn new(amount_cents: i64, currency: &str) -> Result<Self, String> {
        if amount_cents <= 0 {
            return Err("amount_cents must be positive".into());
        }
        if currency.len() != 3 || !currency.chars().all(|c| c.is_ascii_uppercase()) {
            return Err("currency must be an ISO 4217 code such as EUR".into());
        }
        Ok(Self {
            amount_cents,
            currency: currency.to_owned(),
        })
    }
}

/// Payment lifecycle (DESIGN §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentStatus {
    /// Created at booking, not paid yet.
    Pending,
    /// Fully paid.
    Paid,
    /// Some of it refunded.
    PartiallyRefunded,
    /// All of it refunded.
    Refunded,
    /// The appointment was cancelled before it was paid.
    Cancelled,
}

impl PaymentStatus {
    /// The stable wire and storage name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Paid => "paid",
            Self::PartiallyRefunded => "partially_refunded",
            Self::Refunded => "refunded",
            Self::Cancelled => "cancelled",
        }
    }
}

impl fmt::Display for PaymentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for PaymentStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "pending" => Ok(Self::Pending),
            "paid" => Ok(Self::Paid),
            "partially_refunded" => Ok(Self::PartiallyRefunded),
            "refunded" => Ok(Self::Refunded),
            "cancelled" => Ok(Self::Cancelled),
            other => Err(format!("unknown payment status `{other}`")),
        }
    }
}

/// The payment of one appointment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    /// Its id.
    pub id: PaymentId,
    /// The appointment it pays for.
    pub appointment_id: AppointmentId,
    /// What is owed.
    pub amount: Money,
    /// Where it is in its lifecycle.
    pub status: PaymentStatus,
    /// How much has been refunded, in minor units.
    pub refunded_cents: i64,
    /// When it was paid.
    pub paid_at: Option<DateTime<Utc>>,
    /// When it was created (at booking).
    pub created_at: DateTime<Utc>,
}

/// How a payment is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentMethod {
    /// A card, charged through the payment gateway with a card token.
    Card,
    /// Cash at the desk, recorded by an admin.
    Cash,
    /// Billed to insurance, recorded by an admin.
    Insurance,
}

impl PaymentMethod {
    /// The wire and storage name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Card => "card",
            Self::Cash => "cash",
            Self::Insurance => "insurance",
        }
    }
}

impl FromStr for PaymentMethod {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "card" => Ok(Self::Card),
            "cash" => Ok(Self::Cash),
            "insurance" => Ok(Self::Insurance),
            _ => Err("must be one of card, cash, insurance".into()),
        }
    }
}

/// Outcome of one attempt to pay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptStatus {
    /// Sent to the gateway, no answer recorded yet.
    Pending,
    /// Charged.
    Succeeded,
    /// The card was declined; nothing charged.
    Declined,
    /// The gateway failed or refused the request; nothing charged.
    Failed,
}

impl AttemptStatus {
    /// The wire and storage name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Succeeded => "succeeded",
            Self::Declined => "declined",
            Self::Failed => "failed",
        }
    }
}

impl FromStr for AttemptStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "pending" => Ok(Self::Pending),
            "succeeded" => Ok(Self::Succeeded),
            "declined" => Ok(Self::Declined),
            "failed" => Ok(Self::Failed),
            other => Err(format!("unknown attempt status `{other}`")),
        }
    }
}

/// One attempt to pay a payment (the ledger keeps every one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentAttempt {
    /// Its id; also the gateway idempotency key.
    pub id: AttemptId,
    /// Card, cash or insurance.
    pub method: PaymentMethod,
    /// The card token used, for resuming an interrupted attempt.
    pub card_token: Option<String>,
    /// Where it stands.
    pub status: AttemptStatus,
    /// The gateway's charge reference.
    pub gateway_reference: Option<String>,
    /// Why it was declined or failed.
    pub failure_reason: Option<String>,
    /// Who made it.
    pub created_by: UserId,
    /// When it started.
    pub created_at: DateTime<Utc>,
    /// When it settled.
    pub settled_at: Option<DateTime<Utc>>,
}

/// A refund (append-only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refund {
    /// Its id.
    pub id: RefundId,
    /// How much, minor units.
    pub amount_cents: i64,
    /// Why.
    pub reason: String,
    /// Who refunded.
    pub created_by: UserId,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// A payment with whose it is and its ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentDetails {
    /// The payment.
    pub payment: Payment,
    /// The appointment's patient (who pays).
    pub patient_id: UserId,
    /// The appointment's doctor (may read).
    pub doctor_id: UserId,
    /// Every attempt, oldest first.
    pub attempts: Vec<PaymentAttempt>,
    /// Every refund, oldest first.
    pub refunds: Vec<Refund>,
}
