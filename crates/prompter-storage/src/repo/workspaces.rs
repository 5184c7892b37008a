//! The workspaces that hold templates (the console's workspace picker):
//! distinct (org, workspace) pairs of `prompt_templates`, within a scope.

use crate::sql;
use crate::{Page, PageRequest, Scope, StorageError, Store};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

/// A workspace in a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkspaceSummary {
    /// Org.
    pub org_id: String,
    /// Workspace.
    pub workspace_id: String,
    /// Templates it holds (deleted ones included).
    pub templates: i64,
}

/// Cursor: the last (org, workspace) of a page, NUL-separated.
fn encode_cursor(org: &str, ws: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("w:{org}\0{ws}"))
}

fn decode_cursor(c: &str) -> Result<(String, String), StorageError> {
    let raw = URL_SAFE_NO_PAD
        .decode(c)
        .map_err(|_| StorageError::InvalidCursor)?;
    let s = String::from_utf8(raw).map_err(|_| StorageError::InvalidCursor)?;
    let rest = s.strip_prefix("w:").ok_or(StorageError::InvalidCursor)?;
    let (o, w) = rest.split_once('\0').ok_or(StorageError::InvalidCursor)?;
    Ok((o.to_owned(), w.to_owned()))
}

impl Store {
    /// Workspaces holding templates in `scope` (and of `org_id` when given),
    /// by org then workspace.
    pub async fn list_workspaces(
        &self,
        scope: &Scope,
        org_id: Option<&str>,
        page: &PageRequest,
    ) -> Result<Page<WorkspaceSummary>, StorageError> {
        let limit = page.effective_limit();
        let mut values = Vec::new();
        let mut cond = Vec::new();
        let bind = |v: &str, values: &mut Vec<sea_orm::Value>| {
            values.push(sql::text(v));
            format!("${}", values.len())
        };
        if let Scope::Tenant {
            org_id: o,
            workspace_id: w,
        } = scope
        {
            cond.push(format!("org_id = {}", bind(o, &mut values)));
            if let Some(w) = w {
                cond.push(format!("workspace_id = {}", bind(w, &mut values)));
            }
        }
        if let Some(o) = org_id {
            cond.push(format!("org_id = {}", bind(o, &mut values)));
        }
        if let Some(c) = &page.cursor {
            let (o, w) = decode_cursor(c)?;
            // Each placeholder once: SQLite binds them by position.
            let po = bind(&o, &mut values);
            let po2 = bind(&o, &mut values);
            let pw = bind(&w, &mut values);
            cond.push(format!(
                "(org_id > {po} OR (org_id = {po2} AND workspace_id > {pw}))"
            ));
        }
        let mut q = String::from(
            "SELECT org_id, workspace_id, CAST(COUNT(*) AS INTEGER) AS templates \
             FROM prompt_templates",
        );
        if !cond.is_empty() {
            q.push_str(" WHERE ");
            q.push_str(&cond.join(" AND "));
        }
        q.push_str(&format!(
            " GROUP BY org_id, workspace_id ORDER BY org_id, workspace_id LIMIT {}",
            limit + 1
        ));
        let rows = self
            .q_all(self.stmt(&q, values))
            .await
            .map_err(|e| e.into_storage("prompt_templates"))?;
        let more = rows.len() as u64 > limit;
        let mut items = Vec::with_capacity(rows.len().min(limit as usize));
        for row in rows.iter().take(limit as usize) {
            let r = self.row(row);
            items.push(WorkspaceSummary {
                org_id: r.text("org_id")?,
                workspace_id: r.text("workspace_id")?,
                templates: r.i64("templates")?,
            });
        }
        let next_cursor = match items.last() {
            Some(last) if more => Some(encode_cursor(&last.org_id, &last.workspace_id)),
            _ => None,
        };
        Ok(Page { items, next_cursor })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_others() {
        let c = encode_cursor("org/a", "ws b");
        assert_eq!(
            decode_cursor(&c).unwrap(),
            ("org/a".to_owned(), "ws b".to_owned())
        );
        assert!(decode_cursor("bm90LW1pbmU").is_err());
    }
}
