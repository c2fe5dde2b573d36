//! Typed identifiers. Every id is a UUID v7 (time-ordered, so inserts stay index-friendly);
//! the newtypes stop a slot id from being passed where an appointment id is expected.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A fresh, time-ordered id.
            #[must_use]
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            /// Wraps an existing UUID (from storage or a request path).
            #[must_use]
            pub const fn from_uuid(id: Uuid) -> Self {
                Self(id)
            }

            /// The underlying UUID.
            #[must_use]
            pub const fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }

        impl From<Uuid> for $name {
            fn from(id: Uuid) -> Self {
                Self(id)
            }
        }
    };
}

id_type!(
    /// A user's id; a patient's and a doctor's id are their user's id.
    UserId
);
id_type!(
    /// A login session's id (never the token).
    SessionId
);
id_type!(
    /// A bookable interval of one doctor.
    SlotId
);
id_type!(
    /// An appointment.
    AppointmentId
);
id_type!(
    /// The payment of one appointment.
    PaymentId
);
id_type!(
    /// One attempt to pay; also the idempotency key sent to the payment gateway.
    AttemptId
);
id_type!(
    /// A refund.
    RefundId
);
id_type!(
    /// The clinical note of one visit.
    EncounterId
);
id_type!(
    /// A correction of an encounter, kept beside the original.
    AmendmentId
);
id_type!(
    /// One diagnosis of an encounter or of an amendment.
    DiagnosisId
);
id_type!(
    /// One prescription of an encounter or of an amendment.
    PrescriptionId
);
id_type!(
    /// One vital-sign measurement of an encounter.
    VitalSignId
);
id_type!(
    /// A recorded allergy of a patient.
    AllergyId
);
id_type!(
    /// One entry of the audit trail.
    AuditEventId
);
id_type!(
    /// A patient's place on a doctor's waitlist.
    WaitlistEntryId
);
id_type!(
    /// One message of the notifications outbox.
    NotificationId
);
