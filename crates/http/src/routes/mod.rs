//! Route handlers, one module per area.

pub mod accounts;
pub mod appointments;
pub mod auth;
pub mod availability;
pub mod doctors;
pub mod health;
pub mod payments;
pub mod records;
pub mod slots;
pub mod waitlist;

use shms_domain::Cursor;
use shms_domain::PageRequest;

use crate::error::ApiError;

/// Validates `limit` and attaches a decoded cursor.
pub(crate) fn page(limit: Option<u32>, after: Option<Cursor>) -> Result<PageRequest, ApiError> {
    PageRequest::new(limit, after).map_err(|message| ApiError::invalid_field("limit", message))
}

/// Parses an optional enum-like query parameter (`status=...`); a bad value is 422 naming it.
pub(crate) fn optional_param<T: std::str::FromStr<Err = String>>(
    raw: Option<&str>,
    field: &str,
) -> Result<Option<T>, ApiError> {
    raw.map(str::parse)
        .transpose()
        .map_err(|message| ApiError::invalid_field(field, message))
}
