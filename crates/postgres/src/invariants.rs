//! Runs `sql/invariants.sql`: every query returns the rows that break one invariant.

use diesel::QueryableByName;
use diesel::sql_types::Text;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

/// The invariant queries, one per statement.
pub const INVARIANTS_SQL: &str = include_str!("../../../sql/invariants.sql");

/// One violating row: which invariant, and the offending row's id.
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct Violation {
    /// The invariant's label (first column of its query).
    #[diesel(sql_type = Text)]
    pub violation: String,
    /// The offending row.
    #[diesel(sql_type = Text)]
    pub subject: String,
}

/// The statements of the invariants file, without comments.
fn statements() -> Vec<String> {
    let code: Vec<&str> = INVARIANTS_SQL
        .lines()
        .filter(|line| !line.trim_start().starts_with("--"))
        .collect();
    code.join("\n")
        .split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Runs every invariant query; an empty result means the database is consistent.
///
/// # Errors
/// When the database is unreachable or a query fails.
pub async fn check(url: &str) -> Result<Vec<Violation>, diesel::result::Error> {
    let mut conn = AsyncPgConnection::establish(url)
        .await
        .map_err(|e| diesel::result::Error::QueryBuilderError(Box::new(e)))?;
    let mut violations = Vec::new();
    for statement in statements() {
        violations.extend(
            diesel::sql_query(statement)
                .load::<Violation>(&mut conn)
                .await?,
        );
    }
    Ok(violations)
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_invariant_statement_is_found() {
        let count = super::statements().len();
        assert_eq!(count, super::INVARIANTS_SQL.matches("AS violation").count());
        assert!(count >= 8);
    }
}
