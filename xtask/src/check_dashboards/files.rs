//! The dashboard files and the docs' tables: Grafana targets and variables,
//! Datadog queries and their metric names, the Datadog mapping table and the
//! metric catalogue of `docs/operations.md`, series of an exposition.

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

pub(super) fn read_json(path: &Path) -> Result<Value, String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("parsing {}: {e}", path.display()))
}

/// One Grafana query.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Target {
    pub panel: String,
    pub ref_id: String,
    pub expr: String,
}

/// Every `targets[].expr` of every panel (rows' nested panels included).
pub(super) fn grafana_targets(dashboard: &Value) -> Vec<Target> {
    fn walk(panels: &Value, out: &mut Vec<Target>) {
        for p in panels.as_array().into_iter().flatten() {
            let title = p["title"].as_str().unwrap_or("(untitled)");
            for t in p["targets"].as_array().into_iter().flatten() {
                if let Some(expr) = t["expr"].as_str() {
                    out.push(Target {
                        panel: title.to_string(),
                        ref_id: t["refId"].as_str().unwrap_or("?").to_string(),
                        expr: expr.to_string(),
                    });
                }
            }
            walk(&p["panels"], out);
        }
    }
    let mut out = Vec::new();
    walk(&dashboard["panels"], &mut out);
    out
}

/// `(name, label_values query)` of every query variable.
pub(super) fn grafana_variables(dashboard: &Value) -> Vec<(String, String)> {
    dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|v| v["type"] == "query")
        .filter_map(|v| {
            let q = v["query"]["query"]
                .as_str()
                .or_else(|| v["query"].as_str())
                .or_else(|| v["definition"].as_str())?;
            Some((v["name"].as_str()?.to_string(), q.to_string()))
        })
        .collect()
}

/// Every metric query string of a Datadog dashboard (`query` and legacy `q`).
pub(super) fn datadog_queries(dashboard: &Value) -> Vec<String> {
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    match (k.as_str(), x) {
                        ("query" | "q", Value::String(s)) => out.push(s.clone()),
                        _ => walk(x, out),
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(dashboard, &mut out);
    out
}

/// Metric names in a Datadog metric query: the token between an
/// aggregator's `:` and the scope's `{` (`sum:prompter.runs.count{…}`).
pub(super) fn datadog_metric_names(query: &str) -> Vec<String> {
    let mut names = Vec::new();
    let bytes = query.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'{' => depth += 1,
            b'}' => depth = depth.saturating_sub(1),
            b':' if depth == 0 => {
                let start = i + 1;
                let mut j = start;
                while j < bytes.len()
                    && (bytes[j].is_ascii_alphanumeric() || bytes[j] == b'_' || bytes[j] == b'.')
                {
                    j += 1;
                }
                if j > start && j < bytes.len() && bytes[j] == b'{' {
                    names.push(query[start..j].to_string());
                }
            }
            _ => {}
        }
        i += 1;
    }
    names
}

/// The Datadog mapping table of `docs/operations.md`.
#[derive(Debug, Default)]
pub(super) struct Mapping {
    /// Prometheus series names (first column).
    pub prometheus: BTreeSet<String>,
    /// Datadog metric names (third column).
    pub datadog: BTreeSet<String>,
}

/// Parses the table under the `## Datadog metric mapping` heading whose header
/// has a `Datadog metric` column: backticked names in the `Prometheus series`
/// and `Datadog metric` columns.
pub(super) fn parse_datadog_mapping(doc: &str) -> Result<Mapping, String> {
    let mut in_section = false;
    let mut columns: Option<(usize, usize)> = None;
    let mut mapping = Mapping::default();
    for line in doc.lines() {
        let t = line.trim();
        if t.starts_with("## ") {
            in_section = t.to_ascii_lowercase().contains("datadog metric mapping");
            columns = None;
            continue;
        }
        if !in_section || !t.starts_with('|') {
            if columns.is_some() && !t.starts_with('|') {
                columns = None;
            }
            continue;
        }
        let cells: Vec<&str> = t.trim_matches('|').split('|').map(str::trim).collect();
        match columns {
            None => {
                let find = |name: &str| cells.iter().position(|c| c.eq_ignore_ascii_case(name));
                if let (Some(p), Some(d)) = (find("Prometheus series"), find("Datadog metric")) {
                    columns = Some((p, d));
                }
            }
            Some((p, d)) => {
                if cells
                    .iter()
                    .all(|c| c.chars().all(|ch| ch == '-' || ch == ':'))
                {
                    continue;
                }
                for (col, set) in [(p, &mut mapping.prometheus), (d, &mut mapping.datadog)] {
                    if let Some(cell) = cells.get(col) {
                        set.extend(backticked(cell));
                    }
                }
            }
        }
    }
    if mapping.datadog.is_empty() {
        return Err("docs/operations.md: no `## Datadog metric mapping` table with `Prometheus series` and `Datadog metric` columns".into());
    }
    Ok(mapping)
}

/// Series of the `## Metric catalogue` table whose `registered at start-up`
/// cell says `no`: they appear with their first event only.
pub(super) fn first_event_series(doc: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut in_section = false;
    let mut columns: Option<(usize, usize)> = None;
    for line in doc.lines() {
        let t = line.trim();
        if t.starts_with("## ") {
            in_section = t.to_ascii_lowercase().contains("metric catalogue");
            columns = None;
            continue;
        }
        if !in_section || !t.starts_with('|') {
            continue;
        }
        let cells: Vec<&str> = t.trim_matches('|').split('|').map(str::trim).collect();
        match columns {
            None => {
                let find = |name: &str| {
                    cells
                        .iter()
                        .position(|c| c.to_ascii_lowercase().starts_with(name))
                };
                if let (Some(s), Some(r)) = (find("series"), find("registered")) {
                    columns = Some((s, r));
                }
            }
            Some((s, r)) => {
                let registered = cells.get(r).map(|c| c.to_ascii_lowercase());
                if registered.is_some_and(|c| c.starts_with("no")) {
                    if let Some(cell) = cells.get(s) {
                        out.extend(backticked(cell));
                    }
                }
            }
        }
    }
    out
}

/// Series → type (first word of the `type` cell: `counter`, `gauge`,
/// `histogram`) from the `## Metric catalogue` table.
pub(super) fn catalogue_types(doc: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut in_section = false;
    let mut columns: Option<(usize, usize)> = None;
    for line in doc.lines() {
        let t = line.trim();
        if t.starts_with("## ") {
            in_section = t.to_ascii_lowercase().contains("metric catalogue");
            columns = None;
            continue;
        }
        if !in_section || !t.starts_with('|') {
            continue;
        }
        let cells: Vec<&str> = t.trim_matches('|').split('|').map(str::trim).collect();
        match columns {
            None => {
                let find = |name: &str| cells.iter().position(|c| c.eq_ignore_ascii_case(name));
                if let (Some(s), Some(ty)) = (find("series"), find("type")) {
                    columns = Some((s, ty));
                }
            }
            Some((s, ty)) => {
                let kind = cells
                    .get(ty)
                    .and_then(|c| c.split_whitespace().next())
                    .unwrap_or_default();
                if let Some(cell) = cells.get(s) {
                    for name in backticked(cell) {
                        out.insert(name, kind.to_owned());
                    }
                }
            }
        }
    }
    out
}

/// Family → type from the `# TYPE name type` lines of an exposition.
pub(super) fn exported_types(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            Some((it.next()?.to_owned(), it.next()?.to_owned()))
        })
        .collect()
}

/// `x_bucket`/`x_sum`/`x_count` -> `x`; other names unchanged.
pub(super) fn histogram_base(name: &str) -> &str {
    ["_bucket", "_sum", "_count"]
        .iter()
        .find_map(|suffix| name.strip_suffix(suffix))
        .unwrap_or(name)
}

fn backticked(cell: &str) -> Vec<String> {
    cell.split('`')
        .enumerate()
        .filter(|(i, s)| i % 2 == 1 && !s.is_empty())
        .map(|(_, s)| s.to_string())
        .collect()
}

/// Series names in a Prometheus text exposition.
pub(super) fn exported_series(text: &str) -> BTreeSet<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(String::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::support::workspace_root;

    fn repo_file(rel: &str) -> String {
        std::fs::read_to_string(workspace_root().join(rel)).unwrap()
    }

    #[test]
    fn datadog_names_are_found_between_aggregator_and_scope() {
        assert_eq!(
            datadog_metric_names(
                "sum:prompter.http_requests.count{$service,$env,status:5*}.as_count()"
            ),
            vec!["prompter.http_requests.count"]
        );
        assert_eq!(
            datadog_metric_names("p95:prompter.ensure_version_seconds{$service} by {provider}"),
            vec!["prompter.ensure_version_seconds"]
        );
        assert!(datadog_metric_names("no metric here").is_empty());
    }

    #[test]
    fn mapping_table_is_parsed_from_the_section() {
        let doc = "# x\n| Prometheus series | Datadog metric |\n|---|---|\n| `a_total` | `not.this` |\n\
                   ## Datadog metric mapping\ntext\n\
                   | Prometheus series | Prometheus type | Datadog metric | Datadog type |\n\
                   |---|---|---|---|\n\
                   | `prompter_runs_total` | counter | `prompter.runs.count` | count |\n\
                   | `prompter_redis_up` | gauge | `prompter.redis_up` | gauge |\n\nafter\n## Next\n";
        let m = parse_datadog_mapping(doc).unwrap();
        assert_eq!(
            m.datadog.into_iter().collect::<Vec<_>>(),
            vec!["prompter.redis_up", "prompter.runs.count"]
        );
        assert_eq!(
            m.prometheus.into_iter().collect::<Vec<_>>(),
            vec!["prompter_redis_up", "prompter_runs_total"]
        );
        assert!(parse_datadog_mapping("## Other\n").is_err());
    }

    #[test]
    fn every_datadog_query_of_the_repo_dashboard_is_in_the_repo_mapping() {
        let dd: Value =
            serde_json::from_str(&repo_file("dashboards/datadog/prompter.json")).unwrap();
        let mapping = parse_datadog_mapping(&repo_file("docs/operations.md")).unwrap();
        let queries = datadog_queries(&dd);
        assert!(queries.len() >= 18, "{queries:?}");
        for q in queries {
            let names = datadog_metric_names(&q);
            assert!(!names.is_empty(), "{q}");
            for n in names {
                assert!(mapping.datadog.contains(&n), "{n} ({q}) not in the mapping");
            }
        }
    }

    #[test]
    fn every_grafana_expression_is_filtered_by_service_and_env() {
        let g: Value =
            serde_json::from_str(&repo_file("dashboards/grafana/prompter.json")).unwrap();
        let targets = grafana_targets(&g);
        assert!(targets.len() >= 18);
        for t in &targets {
            // Every selector `metric{...}` carries both matchers.
            let selectors = t.expr.matches("prompter_").count();
            let filtered = t
                .expr
                .matches("service=~\"$service\", env=~\"$env\"")
                .count();
            assert_eq!(selectors, filtered, "{}: {}", t.panel, t.expr);
        }
        let vars = grafana_variables(&g);
        let names: Vec<&str> = vars.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["service", "env"]);
        for (_, q) in vars {
            super::super::query::parse_label_values(&q).unwrap();
        }
    }

    #[test]
    fn first_event_series_come_from_the_catalogue() {
        let fe = first_event_series(&repo_file("docs/operations.md"));
        for s in [
            "prompter_http_requests_total",
            "prompter_http_request_duration_seconds",
            "prompter_probe_attempts_total",
            "prompter_probe_failures_total",
            "prompter_version_drift_total",
        ] {
            assert!(fe.contains(s), "{s} missing from {fe:?}");
        }
        assert!(!fe.contains("prompter_redis_up"));
        assert_eq!(histogram_base("a_seconds_bucket"), "a_seconds");
        assert_eq!(histogram_base("a_total"), "a_total");
    }

    #[test]
    fn types_from_the_catalogue_and_the_exposition() {
        let cat = catalogue_types(&repo_file("docs/operations.md"));
        assert_eq!(cat["prompter_cost_usd_total"], "counter");
        assert_eq!(cat["prompter_redis_up"], "gauge");
        let exp = exported_types("# HELP a x\n# TYPE a_total counter\na_total 1\n# TYPE g gauge\n");
        assert_eq!(exp["a_total"], "counter");
        assert_eq!(exp["g"], "gauge");
    }

    #[test]
    fn exposition_names() {
        let text = "# TYPE a counter\na_total{x=\"1\"} 3\nb 1\n\n";
        let names = exported_series(text);
        assert!(names.contains("a_total") && names.contains("b"));
    }
}
