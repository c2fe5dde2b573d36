//! SQL functions the queries need beyond diesel's built-ins.

diesel::define_sql_function!(
    /// SQL `lower(text)`: e-mails and specialties compare case-insensitively, matching the
    /// expression indexes of the schema.
    fn lower(x: diesel::sql_types::Text) -> diesel::sql_types::Text;
);
