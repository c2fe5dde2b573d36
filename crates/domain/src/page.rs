//! Keyset pagination: a cursor is the sort key of the last row returned, so pages stay
//! stable when rows are inserted concurrently (no OFFSET drift).

use uuid::Uuid;

/// Default and maximum page sizes (DESIGN §6).
pub const DEFAULT_LIMIT: u32 = 50;
/// The largest page a client may ask for.
pub const MAX_LIMIT: u32 = 200;

/// Position after which the next page starts: the last row's sort key and id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    /// The sort key of the last row (a timestamp in RFC 3339 or a name).
    pub key: String,
    /// The id of the last row, breaking ties of equal keys.
    pub id: Uuid,
}

/// A validated page request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    /// Rows per page, 1..=MAX_LIMIT.
    pub limit: u32,
    /// Where to continue, if this is not the first page.
    pub after: Option<Cursor>,
}

impl Default for PageRequest {
    fn default() -> Self {
        Self {
            limit: DEFAULT_LIMIT,
            after: None,
        }
    }
}

impl PageRequest {
    /// Validates a requested limit.
    ///
    /// # Errors
    /// A message when the limit is outside 1..=200.
    pub fn new(limit: Option<u32>, after: Option<Cursor>) -> Result<Self, String> {
        let limit = limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(format!("must be between 1 and {MAX_LIMIT}"));
        }
        Ok(Self { limit, after })
    }
}

/// One page of results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    /// The rows of this page, in order.
    pub items: Vec<T>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<Cursor>,
}

impl<T> Page<T> {
    /// Builds a page from up to `limit + 1` rows fetched by an adapter: the extra row only
    /// tells that a next page exists.
    pub fn from_overfetch(mut rows: Vec<T>, limit: u32, cursor_of: impl Fn(&T) -> Cursor) -> Self {
        let limit = limit as usize;
        let next = if rows.len() > limit {
            rows.truncate(limit);
            rows.last().map(&cursor_of)
        } else {
            None
        };
        Self { items: rows, next }
    }
}
