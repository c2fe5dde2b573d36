//! Opaque list cursors: the hex of `key \n id`. The HTTP layer checks a cursor's shape for
//! the list it belongs to, so the adapter only ever sees keys it produced.

use chrono::DateTime;
use shms_domain::Cursor;
use uuid::Uuid;

use crate::error::ApiError;

/// Encodes a cursor for `next_cursor`.
#[must_use]
pub fn encode(cursor: &Cursor) -> String {
    hex::encode(format!("{}\n{}", cursor.key, cursor.id))
}

fn decode(raw: &str) -> Option<Cursor> {
    if raw.len() > 1024 {
        return None;
    }
    let text = String::from_utf8(hex::decode(raw).ok()?).ok()?;
    let (key, id) = text.rsplit_once('\n')?;
    Some(Cursor {
        key: key.to_owned(),
        id: Uuid::parse_str(id).ok()?,
    })
}

fn invalid() -> ApiError {
    ApiError::invalid_field("cursor", "is not a cursor returned by this list")
}

/// A cursor of a list ordered by time.
///
/// # Errors
/// 422 when it is not such a cursor.
pub fn time_cursor(raw: Option<&str>) -> Result<Option<Cursor>, ApiError> {
    raw.map(|raw| {
        decode(raw)
            .filter(|c| DateTime::parse_from_rfc3339(&c.key).is_ok())
            .ok_or_else(invalid)
    })
    .transpose()
}

/// A cursor of a list ordered by name.
///
/// # Errors
/// 422 when it is not a cursor.
pub fn text_cursor(raw: Option<&str>) -> Result<Option<Cursor>, ApiError> {
    raw.map(|raw| decode(raw).ok_or_else(invalid)).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let cursor = Cursor {
            key: "2027-01-04T09:00:00.000000Z".into(),
            id: Uuid::nil(),
        };
        let encoded = encode(&cursor);
        assert_eq!(time_cursor(Some(&encoded)).ok().flatten(), Some(cursor));
        let by_name = Cursor {
            key: "Dr. Ada\nLovelace".into(),
            id: Uuid::nil(),
        };
        assert_eq!(
            text_cursor(Some(&encode(&by_name))).ok().flatten(),
            Some(by_name.clone())
        );
        assert!(time_cursor(Some(&encode(&by_name))).is_err());
        for garbage in ["zz", "abc", "", "00"] {
            assert!(text_cursor(Some(garbage)).is_err(), "{garbage}");
        }
        assert_eq!(time_cursor(None).ok().flatten(), None);
    }
}
