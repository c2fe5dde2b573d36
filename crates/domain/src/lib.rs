#![doc = include_str!("../README.md")]

pub mod accounts;
pub mod actor;
pub mod appointment;
pub mod auth;
pub mod availability;
pub mod clock;
pub mod doctor;
pub mod error;
pub mod idempotency;
pub mod ids;
pub mod page;
pub mod payment;
pub mod ports;
pub mod records;
pub mod services;
pub mod slot;
pub mod user;
pub mod validation;
pub mod waitlist;

#[cfg(test)]
mod test_support;

pub use actor::Actor;
pub use error::{Conflict, StoreError};
pub use ids::{
    AppointmentId, AttemptId, EncounterId, PaymentId, RefundId, SessionId, SlotId, UserId,
};
pub use page::{Cursor, Page, PageRequest};
pub use services::Services;
pub use services::{Adapters, Policies, Ports};
pub use validation::{FieldError, ValidationErrors};
