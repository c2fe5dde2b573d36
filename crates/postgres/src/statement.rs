//! Hand-written statements that diesel prepares once per connection and reuses.
//!
//! `diesel::sql_query` marks its SQL unsafe to cache, so PostgreSQL parses and plans it on
//! every call — for the two statements every booking runs (the token check and the booking
//! itself) that was most of the database's extra work per API request over pgbench. A
//! `QueryFragment` that pushes fixed SQL and its binds is cached by its SQL text.

use diesel::QueryResult;
use diesel::result::Error;

/// Marks a bind in the SQL of a prepared statement, in push order.
pub(crate) const BIND: &str = "$?";

/// The SQL around the binds: `N` binds make `N + 1` parts.
pub(crate) fn parts<const N: usize>(sql: &'static str) -> QueryResult<[&'static str; N]> {
    let split: Vec<&'static str> = sql.split(BIND).collect();
    split.try_into().map_err(|_: Vec<&str>| {
        Error::QueryBuilderError(format!("a statement has the wrong number of {BIND} marks").into())
    })
}
