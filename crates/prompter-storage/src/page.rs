//! Tenancy scope and keyset pagination.

use crate::StorageError;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Condition, Expr, IntoColumnRef};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Who is asking: applied by this layer to every query, so no caller can
/// forget tenancy.
///
/// * `Unrestricted`: deployments without auth; an id alone addresses a row (as in V7).
/// * `Tenant`: only rows of `org_id` (and of `workspace_id` when given) are visible;
///   everything else behaves as if it did not exist (`NotFound`, empty lists).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Scope {
    /// No tenant restriction.
    Unrestricted,
    /// One org, optionally one workspace of it.
    Tenant {
        /// The org.
        org_id: String,
        /// The workspace, or all workspaces of the org.
        workspace_id: Option<String>,
    },
}

impl Scope {
    /// `Tenant` scope for an org and optional workspace.
    pub fn tenant(org_id: impl Into<String>, workspace_id: Option<String>) -> Scope {
        Scope::Tenant {
            org_id: org_id.into(),
            workspace_id,
        }
    }

    /// Whether a row of (`org_id`, `workspace_id`) is visible in this scope.
    pub fn allows(&self, org_id: &str, workspace_id: &str) -> bool {
        match self {
            Scope::Unrestricted => true,
            Scope::Tenant {
                org_id: o,
                workspace_id: w,
            } => o == org_id && w.as_deref().is_none_or(|w| w == workspace_id),
        }
    }

    /// The SQL condition for this scope over the given columns.
    pub(crate) fn cond<O, W>(&self, org_col: O, ws_col: W) -> Condition
    where
        O: IntoColumnRef,
        W: IntoColumnRef,
    {
        let mut c = Condition::all();
        if let Scope::Tenant {
            org_id,
            workspace_id,
        } = self
        {
            c = c.add(Expr::col(org_col).eq(org_id.as_str()));
            if let Some(ws) = workspace_id {
                c = c.add(Expr::col(ws_col).eq(ws.as_str()));
            }
        }
        c
    }
}

/// A page request: at most `limit` items after `cursor` (from a previous page).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageRequest {
    /// Page size; clamped to `1..=`[`PageRequest::MAX_LIMIT`].
    pub limit: u64,
    /// `next_cursor` of the previous page, or None for the first page.
    pub cursor: Option<String>,
}

impl PageRequest {
    /// Largest page served.
    pub const MAX_LIMIT: u64 = 1000;
    /// Page size when none is given.
    pub const DEFAULT_LIMIT: u64 = 50;

    /// First page of `limit` items.
    pub fn first(limit: u64) -> PageRequest {
        PageRequest {
            limit,
            cursor: None,
        }
    }

    pub(crate) fn effective_limit(&self) -> u64 {
        self.limit.clamp(1, Self::MAX_LIMIT)
    }
}

impl Default for PageRequest {
    fn default() -> Self {
        PageRequest::first(Self::DEFAULT_LIMIT)
    }
}

/// One page of a newest-first listing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page<T> {
    /// The items, newest first.
    pub items: Vec<T>,
    /// Opaque cursor for the next page; None on the last page.
    pub next_cursor: Option<String>,
}

/// Keyset position: (timestamp, id) of the last item served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cursor {
    pub(crate) at: DateTime<Utc>,
    pub(crate) id: Uuid,
}

const CURSOR_VERSION: &str = "c1";

impl Cursor {
    pub(crate) fn encode(&self) -> String {
        let raw = format!(
            "{CURSOR_VERSION}|{}|{}",
            self.at.timestamp_micros(),
            self.id.simple()
        );
        URL_SAFE_NO_PAD.encode(raw)
    }

    pub(crate) fn decode(s: &str) -> Result<Cursor, StorageError> {
        let bytes = URL_SAFE_NO_PAD
            .decode(s.trim())
            .map_err(|_| StorageError::InvalidCursor)?;
        let raw = String::from_utf8(bytes).map_err(|_| StorageError::InvalidCursor)?;
        let mut parts = raw.split('|');
        let (Some(CURSOR_VERSION), Some(micros), Some(id), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(StorageError::InvalidCursor);
        };
        let micros: i64 = micros.parse().map_err(|_| StorageError::InvalidCursor)?;
        let at = DateTime::from_timestamp_micros(micros).ok_or(StorageError::InvalidCursor)?;
        let id = Uuid::try_parse(id).map_err(|_| StorageError::InvalidCursor)?;
        Ok(Cursor { at, id })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips() {
        let c = Cursor {
            at: DateTime::from_timestamp_micros(1_767_225_600_123_456).unwrap(),
            id: Uuid::now_v7(),
        };
        assert_eq!(Cursor::decode(&c.encode()).unwrap(), c);
    }

    #[test]
    fn garbage_cursors_are_rejected() {
        for bad in [
            "",
            "!!",
            "abc",
            &URL_SAFE_NO_PAD.encode("c1|x|y"),
            &URL_SAFE_NO_PAD.encode("c2|1|00000000000000000000000000000000"),
        ] {
            assert!(
                matches!(Cursor::decode(bad), Err(StorageError::InvalidCursor)),
                "{bad}"
            );
        }
    }

    #[test]
    fn scope_allows() {
        let s = Scope::tenant("o", Some("w".into()));
        assert!(s.allows("o", "w"));
        assert!(!s.allows("o", "x"));
        assert!(!s.allows("p", "w"));
        assert!(Scope::tenant("o", None).allows("o", "x"));
        assert!(Scope::Unrestricted.allows("a", "b"));
    }
}
