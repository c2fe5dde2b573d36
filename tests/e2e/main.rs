//! Black-box end-to-end tests: the real `shms` binary, real HTTP, real PostgreSQL (one
//! private database per server). Cargo builds the binary once for all of them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod accounts;
mod auth;
mod authorization;
mod availability;
mod booking;
mod errors;
mod harness;
mod payments;
mod race;
mod records;
mod scheduling;
mod surface;
