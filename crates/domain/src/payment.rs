//! Payments: one per appointment, created pending at booking for the doctor's fee.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};

use crate::ids::{AppointmentId, PaymentId};

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
