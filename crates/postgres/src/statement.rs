//! Hand-written statements that diesel prepares once per connection and reuses.
//!
//! `diesel::sql_query` marks its SQL unsafe to cache, so PostgreSQL parses and plans it on
//! every call — for the two statements every booking runs (the token check and the booking
//! itself) that was most of the database's extra work per API request over pgbench. A
//! `QueryFragment` that pushes fixed SQL and its binds, with its own type as static query id,
//! is cached by that type.

use diesel::QueryResult;
use diesel::result::Error;

/// Marks a bind in the SQL of a prepared statement, in push order.
pub(crate) const BIND: &str = "$?";

/// The SQL around the binds: `N` binds make `N + 1` parts. Runs on every execution (diesel
/// walks the statement to collect its binds), so it splits without allocating.
pub(crate) fn parts<const N: usize>(sql: &'static str) -> QueryResult<[&'static str; N]> {
    let wrong = || {
        Error::QueryBuilderError(format!("a statement has the wrong number of {BIND} marks").into())
    };
    let mut split = sql.split(BIND);
    let mut parts = [""; N];
    for part in &mut parts {
        *part = split.next().ok_or_else(wrong)?;
    }
    if split.next().is_some() {
        return Err(wrong());
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::parts;

    #[test]
    fn parts_match_the_marks_exactly() {
        assert_eq!(parts::<3>("a $? b $? c").ok(), Some(["a ", " b ", " c"]));
        assert!(parts::<2>("a $? b $? c").is_err());
        assert!(parts::<4>("a $? b $? c").is_err());
    }
}
