//! `prompter export` and `prompter import`: templates as JSON Lines of V7
//! create bodies, content-addressed (importing the same file twice creates
//! nothing the second time).

use crate::app::{open_store_for, Opener};
use crate::ServeArgs;
use clap::Args;
use prompter_domain::{Limits, TemplateRequest};
use prompter_providers::ProviderRegistry;
use prompter_service::{Prompter, ServiceConfig, ServiceError};
use prompter_storage::{PageRequest, Scope, TemplateFilter, TemplateRecord};
use std::io::{BufRead, Write};

/// `prompter export` arguments.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Which database.
    #[command(flatten)]
    pub db: super::db::DatabaseArgs,
    /// Workspace to export.
    #[arg(long)]
    pub workspace_id: String,
    /// Restrict to one org.
    #[arg(long)]
    pub org_id: Option<String>,
}

/// `prompter import` arguments.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// JSON Lines file of create bodies (`-` for stdin).
    pub file: String,
    /// Which database.
    #[command(flatten)]
    pub db: super::db::DatabaseArgs,
    /// Hash algorithm to pin when the database has none pinned yet.
    #[arg(long, env = "PROMPTER_HASH_ALGORITHM", value_parser = ["blake3", "sha256"])]
    pub hash_algorithm: Option<String>,
}

fn store_args(database_url: Option<String>, hash_algorithm: Option<String>) -> ServeArgs {
    let mut args = ServeArgs::defaults();
    args.database_url = database_url;
    args.hash_algorithm = hash_algorithm;
    args.migrate = false;
    args
}

/// One export line: the identity fields, then the canonical config's keys
/// spliced in as exact text (number spelling and big integers survive, and
/// re-importing canonicalises to the same bytes).
pub fn export_line(t: &TemplateRecord) -> String {
    let head = serde_json::json!({
        "org_id": t.org_id,
        "workspace_id": t.workspace_id,
        "name": t.name,
        "provider": t.provider,
        "created_by": t.created_by,
    })
    .to_string();
    let canonical = t.config_canonical_json.trim();
    let inner = canonical
        .strip_prefix('{')
        .unwrap_or(canonical)
        .trim_start();
    if inner == "}" {
        head
    } else {
        format!("{},{}", &head[..head.len() - 1], inner)
    }
}

/// Writes every active template of the workspace to stdout.
pub async fn export(args: ExportArgs) -> Result<(), String> {
    let (store, _) = open_store_for(
        &store_args(args.db.database_url, None),
        Opener::Cli("export"),
    )
    .await
    .map_err(|e| e.to_string())?;
    let filter = TemplateFilter {
        org_id: args.org_id,
        workspace_id: Some(args.workspace_id),
        include_deleted: false,
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut page = PageRequest::first(PageRequest::MAX_LIMIT);
    let mut n = 0usize;
    loop {
        let p = store
            .list_templates(&Scope::Unrestricted, &filter, &page)
            .await
            .map_err(|e| e.to_string())?;
        for t in &p.items {
            writeln!(out, "{}", export_line(t)).map_err(|e| e.to_string())?;
            n += 1;
        }
        match p.next_cursor {
            Some(c) => page.cursor = Some(c),
            None => break,
        }
    }
    out.flush().map_err(|e| e.to_string())?;
    eprintln!("exported {n} template(s)");
    Ok(())
}

/// Counts of an import.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ImportStats {
    /// New templates.
    pub created: usize,
    /// Lines whose config already had an active template.
    pub already_present: usize,
    /// Lines refused (reason printed).
    pub rejected: usize,
}

/// Creates a template for every line that has none yet; prints the counts.
/// Returns `Ok(stats)`; the caller exits non-zero when `rejected > 0`.
pub async fn import(args: ImportArgs) -> Result<ImportStats, String> {
    let (store, alg) = open_store_for(
        &store_args(args.db.database_url, args.hash_algorithm),
        Opener::Cli("import"),
    )
    .await
    .map_err(|e| e.to_string())?;
    let cfg = ServiceConfig {
        hash_algorithm: alg,
        ..ServiceConfig::default()
    };
    let limits = Limits::default();
    let prompter = Prompter::new(store, ProviderRegistry::new(), None, cfg);
    let reader: Box<dyn BufRead> = if args.file == "-" {
        Box::new(std::io::BufReader::new(std::io::stdin()))
    } else {
        let f = std::fs::File::open(&args.file).map_err(|e| format!("{}: {e}", args.file))?;
        Box::new(std::io::BufReader::new(f))
    };
    let mut stats = ImportStats::default();
    for (i, line) in reader.lines().enumerate() {
        let line = line.map_err(|e| e.to_string())?;
        if line.trim().is_empty() {
            continue;
        }
        let n = i + 1;
        let outcome = match TemplateRequest::parse(line.as_bytes(), &limits) {
            Ok(req) => prompter.create_template(req).await,
            Err(e) => Err(e.into()),
        };
        match outcome {
            Ok(_) => stats.created += 1,
            Err(ServiceError::TemplateExists { .. }) => stats.already_present += 1,
            Err(e) => {
                stats.rejected += 1;
                let api: crate::error::ApiError = e.into();
                eprintln!("line {n}: rejected: {api}");
            }
        }
    }
    if stats.created > 0 {
        // Planner statistics for the new rows (PostgreSQL; see the method).
        if let Err(e) = prompter.store().analyze_templates().await {
            eprintln!("warning: ANALYZE after the import failed: {e}");
        }
    }
    println!(
        "created {} / already present {} / rejected {}",
        stats.created, stats.already_present, stats.rejected
    );
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use serde_json::Value;

    #[test]
    fn export_line_splices_the_exact_canonical_text() {
        let canonical = r#"{"system_instructions":"","user_prompt_template":"Hi","country_set":["GB"],"model_id":"gpt-4o","inference_params":{"n":1000000000000000000000000000000},"tools_spec":[],"response_format":{},"grounding_profile_id":null,"grounding_snapshot_id":null,"retrieval_params":{},"preprocess_pipeline_id":null,"postprocess_pipeline_id":null}"#;
        let t = TemplateRecord {
            id: uuid::Uuid::nil(),
            org_id: "o".into(),
            workspace_id: "w".into(),
            name: "n".into(),
            provider: Some("openai".into()),
            system_instructions: String::new(),
            user_prompt_template: "Hi".into(),
            country_set: Value::Null,
            model_id: "gpt-4o".into(),
            inference_params: Value::Null,
            tools_spec: Value::Null,
            response_format: Value::Null,
            grounding_profile_id: None,
            grounding_snapshot_id: None,
            retrieval_params: Value::Null,
            config_hash: String::new(),
            config_canonical_json: canonical.into(),
            created_by: None,
            created_at: Utc::now(),
            deleted_at: None,
            revision: 1,
        };
        let line = export_line(&t);
        assert!(
            line.contains(r#""n":1000000000000000000000000000000"#),
            "{line}"
        );
        let req = TemplateRequest::parse(line.as_bytes(), &Limits::default()).unwrap();
        assert_eq!(req.org_id.as_deref(), Some("o"));
        assert_eq!(req.canonicalize().as_str(), canonical);
    }
}
