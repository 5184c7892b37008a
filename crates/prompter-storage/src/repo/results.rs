//! Results: insert, get, list with filters.

use crate::batch::InsertSpec;
use crate::entity::prompt_results::{Column as C, Entity as Results};
use crate::sql::{self, Row};
use crate::{
    BatchRef, NewResult, Page, PageRequest, ResultFilter, ResultHead, ResultRecord, RunRelease,
    RunUsage, Scope, StorageError, Store,
};
use sea_orm::sea_query::{Expr, Query};
use sea_orm::Iterable;
use std::sync::LazyLock;
use uuid::Uuid;

const TABLE: &str = "prompt_results";

/// A result row's insert: the group-commit writer's rows, and (as
/// [`INSERT_SQL`]) the idempotent run's statement inside its transaction.
pub static RESULT_INSERT: InsertSpec = InsertSpec {
    table: TABLE,
    columns: "id, org_id, workspace_id, template_id, version_id, provider_version_key, \
        system_fingerprint, country, request, response, analysis_config, created_at, revision, \
        label, output, provider, input_tokens, output_tokens, cached_input_tokens, \
        cache_write_input_tokens, cost_micros",
    tail: "",
    numbered: false,
    after: Some(crate::repo::usage::rollup_stmt),
};

/// [`RESULT_INSERT`] for one row.
static INSERT_SQL: LazyLock<String> = LazyLock::new(|| RESULT_INSERT.sql(1));

pub(crate) fn decode(r: &Row<'_>) -> Result<ResultRecord, StorageError> {
    Ok(decode_head(r)?.with_payloads(
        r.json("request")?,
        r.json("response")?,
        r.json("analysis_config")?,
        r.text_opt("output")?,
    ))
}

/// A listing's columns: every one but the JSON payloads.
const HEAD_COLUMNS: [C; 19] = [
    C::Id,
    C::OrgId,
    C::WorkspaceId,
    C::TemplateId,
    C::VersionId,
    C::ProviderVersionKey,
    C::SystemFingerprint,
    C::Country,
    C::CreatedAt,
    C::Revision,
    C::Label,
    C::Provider,
    C::InputTokens,
    C::OutputTokens,
    C::CachedInputTokens,
    C::CacheWriteInputTokens,
    C::CostMicros,
    C::BatchId,
    C::BatchRepeat,
];

fn decode_head(r: &Row<'_>) -> Result<ResultHead, StorageError> {
    Ok(ResultHead {
        id: r.uuid("id")?,
        org_id: r.text("org_id")?,
        workspace_id: r.text("workspace_id")?,
        template_id: r.uuid("template_id")?,
        version_id: r.uuid_opt("version_id")?,
        provider_version_key: r.text("provider_version_key")?,
        system_fingerprint: r.text_opt("system_fingerprint")?,
        country: r.text_opt("country")?,
        created_at: r.ts("created_at")?,
        release: RunRelease {
            revision: r.i64_opt("revision")?,
            label: r.text_opt("label")?,
        },
        usage: RunUsage {
            provider: r.text_opt("provider")?,
            input_tokens: r.big_opt("input_tokens")?,
            output_tokens: r.big_opt("output_tokens")?,
            cached_input_tokens: r.big_opt("cached_input_tokens")?,
            cache_write_input_tokens: r.big_opt("cache_write_input_tokens")?,
            cost_micros: r.big_opt("cost_micros")?,
        },
        batch: match (r.uuid_opt("batch_id")?, r.i64_opt("batch_repeat")?) {
            (Some(batch_id), Some(repeat)) => Some(BatchRef { batch_id, repeat }),
            _ => None,
        },
    })
}

impl Store {
    /// The statement and the record it stores.
    pub(crate) fn result_insert(&self, r: NewResult) -> (sea_orm::Statement, ResultRecord) {
        let b = self.backend;
        let rec = ResultRecord {
            id: Uuid::now_v7(),
            org_id: r.org_id,
            workspace_id: r.workspace_id,
            template_id: r.template_id,
            version_id: r.version_id,
            provider_version_key: r.provider_version_key,
            system_fingerprint: r.system_fingerprint,
            country: r.country,
            request: r.request,
            response: r.response,
            analysis_config: r.analysis_config,
            created_at: sql::now(),
            release: r.release,
            output: r.output,
            usage: r.usage,
            batch: None,
        };
        let values = vec![
            b.uuid(rec.id),
            sql::text(&rec.org_id),
            sql::text(&rec.workspace_id),
            b.uuid(rec.template_id),
            b.uuid_opt(rec.version_id),
            sql::text(&rec.provider_version_key),
            sql::text_opt(rec.system_fingerprint.as_deref()),
            sql::text_opt(rec.country.as_deref()),
            b.json(&rec.request),
            b.json(&rec.response),
            b.json(&rec.analysis_config),
            b.ts(rec.created_at),
            sql::int_opt(rec.release.revision),
            sql::text_opt(rec.release.label.as_deref()),
            sql::text_opt(rec.output.as_deref()),
            sql::text_opt(rec.usage.provider.as_deref()),
            sql::int_opt(rec.usage.input_tokens),
            sql::int_opt(rec.usage.output_tokens),
            sql::int_opt(rec.usage.cached_input_tokens),
            sql::int_opt(rec.usage.cache_write_input_tokens),
            sql::int_opt(rec.usage.cost_micros),
        ];
        (self.stmt(&INSERT_SQL, values), rec)
    }

    /// Stores a run with its full request and response; counts
    /// `prompter_prompt_results_insert_total`. An unknown template or
    /// version is `NotFound`.
    pub async fn insert_result(&self, r: NewResult) -> Result<ResultRecord, StorageError> {
        let (stmt, rec) = self.result_insert(r);
        // Group commit: the row is written together with the other runs'
        // rows queued meanwhile; this returns after its own commit (issue 9).
        let values = stmt.values.map(|v| v.0).unwrap_or_default();
        self.results
            .insert(rec.id, String::new(), None, values)
            .await
            .map_err(|e| e.into_storage(TABLE))?;
        metrics::counter!("prompter_prompt_results_insert_total").increment(1);
        Ok(rec)
    }

    /// A result by id; `NotFound` if absent or outside `scope`.
    pub async fn get_result(&self, scope: &Scope, id: Uuid) -> Result<ResultRecord, StorageError> {
        let q = Query::select()
            .columns(C::iter())
            .from(Results)
            .and_where(Expr::col(C::Id).eq(self.backend.uuid(id)))
            .cond_where(scope.cond(C::OrgId, C::WorkspaceId))
            .to_owned();
        let row = self
            .q_one(self.build(&q))
            .await
            .map_err(|e| e.into_storage(TABLE))?;
        match row {
            Some(r) => decode(&self.row(&r)),
            None => Err(StorageError::NotFound),
        }
    }

    /// Results of a template, newest first (keyset on created_at, id),
    /// filtered by version, country and time range (`since` inclusive,
    /// `until` exclusive). Heads only: the payloads are neither read nor
    /// decoded (they were half of a page's cost); [`Store::get_result`] has them.
    pub async fn list_results(
        &self,
        scope: &Scope,
        template_id: Uuid,
        filter: &ResultFilter,
        page: &PageRequest,
    ) -> Result<Page<ResultHead>, StorageError> {
        let b = self.backend;
        let mut q = Query::select()
            .columns(HEAD_COLUMNS)
            .from(Results)
            .and_where(Expr::col(C::TemplateId).eq(b.uuid(template_id)))
            .cond_where(scope.cond(C::OrgId, C::WorkspaceId))
            .to_owned();
        if let Some(v) = filter.version_id {
            q.and_where(Expr::col(C::VersionId).eq(b.uuid(v)));
        }
        if let Some(c) = &filter.country {
            q.and_where(Expr::col(C::Country).eq(c.as_str()));
        }
        if let Some(id) = filter.batch_id {
            q.and_where(Expr::col(C::BatchId).eq(b.uuid(id)));
        }
        if let Some(t) = filter.since {
            q.and_where(Expr::col(C::CreatedAt).gte(b.ts(t)));
        }
        if let Some(t) = filter.until {
            q.and_where(Expr::col(C::CreatedAt).lt(b.ts(t)));
        }
        self.list_keyset(q, C::CreatedAt, C::Id, page, TABLE, decode_head, |r| {
            (r.created_at, r.id)
        })
        .await
    }
}
