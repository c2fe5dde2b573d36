//! Who is calling: the authenticated user behind a request (or a command-line operator).

use crate::ids::{SessionId, UserId};
use crate::user::Role;

/// The authenticated caller of a use case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Actor {
    /// The calling user.
    pub user_id: UserId,
    /// Their role, which the permission rules consult.
    pub role: Role,
    /// The session the request came in on; `None` for operator commands.
    pub session_id: Option<SessionId>,
}

impl Actor {
    /// Whether the caller is an administrator.
    #[must_use]
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// Whether the caller is the given user.
    #[must_use]
    pub fn is(&self, user: UserId) -> bool {
        self.user_id == user
    }
}
