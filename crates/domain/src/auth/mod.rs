//! Identity: registration, login, opaque bearer sessions and the admin bootstrap.

mod service;
mod token;

pub use service::{
    AuthError, AuthService, ClientInfo, LoginSession, RegisterPatient, SessionPolicy,
};
pub use token::{SessionToken, hash_token};
