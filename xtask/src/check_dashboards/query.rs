//! Evaluation through Prometheus' HTTP API: instant queries, label values,
//! scrape and rule-evaluation waits, and the rewriting of Grafana variables,
//! recording rules and alert conditions into expressions that must return data.

use super::{ENV, RATE_INTERVAL, SERVICE};
use crate::client::{self, Req};
use crate::support::Proc;
use hyper::Method;
use serde_json::Value;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

/// Evaluates `expr` at "now"; prints it with its series count; records a
/// failure when it errors or returns no series.
pub(super) fn evaluate(prom: &str, label: &str, expr: &str, failures: &mut Vec<String>) {
    match query(prom, expr) {
        Ok((n, values)) if n > 0 => {
            let shown = if n <= 3 {
                format!(" = {}", values.join(", "))
            } else {
                String::new()
            };
            println!("  {n:>3} series{shown}  {label} {expr}")
        }
        Ok(_) => {
            println!("  FAIL no series  {label} {expr}");
            failures.push(format!("{label} returned no series: {expr}"));
        }
        Err(e) => {
            println!("  FAIL error  {label} {expr}: {e}");
            failures.push(format!("{label} errored: {expr}: {e}"));
        }
    }
}

/// Runs an instant query; returns the number of series (a scalar counts 1)
/// and the values, rounded for display.
fn query(prom: &str, expr: &str) -> Result<(usize, Vec<String>), String> {
    let body = format!("query={}", urlencode(expr));
    let resp = post_form(prom, "/api/v1/query", &body)?;
    let v: Value = serde_json::from_str(&resp.body).map_err(|e| {
        format!(
            "HTTP {} with a non-JSON body ({e}): {}",
            resp.status, resp.body
        )
    })?;
    if v["status"] != "success" {
        return Err(format!(
            "{}: {}",
            v["errorType"].as_str().unwrap_or("error"),
            v["error"].as_str().unwrap_or(&resp.body)
        ));
    }
    let show = |x: &Value| {
        let raw = x.as_str().unwrap_or("?");
        match raw.parse::<f64>() {
            Ok(f) if f.is_finite() => format!("{}", (f * 1000.0).round() / 1000.0),
            _ => raw.to_string(),
        }
    };
    let data = &v["data"];
    Ok(match data["resultType"].as_str() {
        Some("vector") => {
            let r = data["result"].as_array().cloned().unwrap_or_default();
            let values = r.iter().map(|s| show(&s["value"][1])).collect();
            (r.len(), values)
        }
        Some("matrix") => (data["result"].as_array().map_or(0, Vec::len), Vec::new()),
        Some("scalar") | Some("string") => (1, vec![show(&data["result"][1])]),
        _ => (0, Vec::new()),
    })
}

/// Values of `label_values(selector, label)` (Grafana's variable query).
pub(super) fn label_values(prom: &str, q: &str) -> Result<Vec<String>, String> {
    let (selector, label) = parse_label_values(q)?;
    let selector = substitute(&selector);
    let path = format!(
        "/api/v1/label/{label}/values?match[]={}",
        urlencode(&selector)
    );
    let resp = client::get(prom, &path)?;
    let v: Value = serde_json::from_str(&resp.body).map_err(|e| format!("{e}: {}", resp.body))?;
    if v["status"] != "success" {
        return Err(v["error"].as_str().unwrap_or(&resp.body).to_string());
    }
    Ok(v["data"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default())
}

/// `label_values(metric{...}, label)` -> (`metric{...}`, `label`).
pub(super) fn parse_label_values(q: &str) -> Result<(String, String), String> {
    let inner = q
        .trim()
        .strip_prefix("label_values(")
        .and_then(|s| s.strip_suffix(')'))
        .ok_or_else(|| format!("not a label_values(...) query: {q}"))?;
    let (sel, label) = inner
        .rsplit_once(',')
        .ok_or_else(|| format!("label_values without a label: {q}"))?;
    Ok((sel.trim().to_string(), label.trim().to_string()))
}

/// Number of scrapes of the prompter job Prometheus has stored, waiting
/// until there are at least `at_least`.
pub(super) fn wait_scrapes(
    p: &mut Proc,
    prom: &str,
    at_least: usize,
    secs: u64,
) -> Result<usize, String> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut last;
    loop {
        p.check_alive()?;
        // Scrapes of the least-scraped target.
        match scalar(prom, "min(count_over_time(up{job=\"prompter\"}[1h]))") {
            Ok(n) if n as usize >= at_least => {
                // The target must be up, not merely scraped.
                let up = scalar(prom, "min(up{job=\"prompter\"})").unwrap_or(0.0);
                if up < 1.0 {
                    return Err("Prometheus reports the prompter target down (up == 0)".into());
                }
                return Ok(n as usize);
            }
            Ok(n) => last = format!("{n} scrape(s) so far"),
            Err(e) => last = e,
        }
        if Instant::now() > deadline {
            return Err(format!("waiting for {at_least} scrapes: {last}"));
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// The single value of an instant query (NaN-free), or an error.
fn scalar(prom: &str, expr: &str) -> Result<f64, String> {
    let body = format!("query={}", urlencode(expr));
    let resp = post_form(prom, "/api/v1/query", &body)?;
    let v: Value = serde_json::from_str(&resp.body).map_err(|e| e.to_string())?;
    let value = &v["data"]["result"][0]["value"][1];
    value
        .as_str()
        .and_then(|s| s.parse::<f64>().ok())
        .ok_or_else(|| format!("no value for {expr}"))
}

/// A rule as `/api/v1/rules` reports it.
#[derive(Debug)]
pub(super) struct Rule {
    pub(super) kind: String,
    pub(super) name: String,
    pub(super) query: String,
    pub(super) health: String,
    pub(super) last_error: String,
}

pub(super) fn rules_from_api(prom: &str) -> Result<Vec<Rule>, String> {
    let resp = client::get(prom, "/api/v1/rules")?;
    let v: Value = serde_json::from_str(&resp.body).map_err(|e| format!("{e}: {}", resp.body))?;
    let mut out = Vec::new();
    for g in v["data"]["groups"].as_array().into_iter().flatten() {
        for r in g["rules"].as_array().into_iter().flatten() {
            let s = |k: &str| r[k].as_str().unwrap_or_default().to_string();
            out.push(Rule {
                kind: s("type"),
                name: s("name"),
                query: s("query"),
                health: s("health"),
                last_error: s("lastError"),
            });
        }
    }
    Ok(out)
}

/// Waits until Prometheus has evaluated every rule once (the recording group
/// runs every 30 s, so its first evaluation can take that long).
pub(super) fn wait_rules_evaluated(prom: &str, secs: u64) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let rules = rules_from_api(prom)?;
        let pending: Vec<&str> = rules
            .iter()
            .filter(|r| r.health == "unknown" || r.health.is_empty())
            .map(|r| r.name.as_str())
            .collect();
        if !rules.is_empty() && pending.is_empty() {
            println!("  all {} rules evaluated", rules.len());
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("rules never evaluated: {pending:?}"));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Replaces Grafana's variables with the values the check's server exports.
pub(super) fn substitute(expr: &str) -> String {
    expr.replace("${service}", &regex_escape(SERVICE))
        .replace("$service", &regex_escape(SERVICE))
        .replace("${env}", &regex_escape(ENV))
        .replace("$env", &regex_escape(ENV))
        .replace("$__rate_interval", RATE_INTERVAL)
        .replace("$__interval", "15s")
        .replace("$__range", "1h")
}

fn regex_escape(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            // Inside a PromQL string a regex backslash is itself escaped.
            out.push_str("\\\\");
        }
        out.push(c);
    }
    out
}

/// Replaces every use of a recording rule's name in `expr` by its
/// parenthesised expression.
pub(super) fn inline_recorded(expr: &str, recorded: &[(String, String)]) -> String {
    let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    let mut out = String::with_capacity(expr.len());
    let mut token = String::new();
    let flush = |token: &mut String, out: &mut String| {
        match recorded.iter().find(|(name, _)| name == token) {
            Some((_, q)) => {
                out.push('(');
                out.push_str(q.trim());
                out.push(')');
            }
            None => out.push_str(token),
        }
        token.clear();
    };
    let mut quote: Option<char> = None;
    for c in expr.chars() {
        if let Some(q) = quote {
            out.push(c);
            if c == q {
                quote = None;
            }
            continue;
        }
        if is_name(c) {
            token.push(c);
            continue;
        }
        flush(&mut token, &mut out);
        if c == '"' || c == '\'' || c == '`' {
            quote = Some(c);
        }
        out.push(c);
    }
    flush(&mut token, &mut out);
    out
}

/// Turns every comparison outside label matchers and strings into a `bool`
/// comparison, so an alert condition returns its series (0/1) instead of
/// filtering them out: a healthy alert must still prove it has data.
pub(super) fn boolify(expr: &str) -> String {
    let chars: Vec<char> = expr.chars().collect();
    let mut out = String::with_capacity(expr.len() + 16);
    let mut braces = 0usize;
    let mut quote: Option<char> = None;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if let Some(q) = quote {
            out.push(c);
            if c == '\\' && q != '`' && i + 1 < chars.len() {
                out.push(chars[i + 1]);
                i += 2;
                continue;
            }
            if c == q {
                quote = None;
            }
            i += 1;
            continue;
        }
        match c {
            '"' | '\'' | '`' => {
                quote = Some(c);
                out.push(c);
                i += 1;
                continue;
            }
            '{' => braces += 1,
            '}' => braces = braces.saturating_sub(1),
            _ => {}
        }
        let next = chars.get(i + 1).copied();
        let op_len = if braces > 0 {
            0
        } else {
            match (c, next) {
                ('=', Some('=')) | ('!', Some('=')) | ('>', Some('=')) | ('<', Some('=')) => 2,
                ('>', _) | ('<', _) => 1,
                _ => 0,
            }
        };
        if op_len == 0 {
            out.push(c);
            i += 1;
            continue;
        }
        out.extend(&chars[i..i + op_len]);
        i += op_len;
        let rest: String = chars[i..].iter().collect();
        let trimmed = rest.trim_start();
        let already = trimmed.starts_with("bool")
            && !trimmed[4..]
                .chars()
                .next()
                .is_some_and(|c| c.is_alphanumeric() || c == '_');
        if !already {
            out.push_str(" bool");
        }
    }
    out
}

fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// A form-encoded POST (Prometheus' query API).
fn post_form(prom: &str, path: &str, body: &str) -> Result<client::Response, String> {
    let req = Req {
        method: &Method::POST,
        path,
        content_type: Some("application/x-www-form-urlencoded"),
        headers: &[],
    };
    client::call(prom, req, body.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boolify_turns_comparisons_into_bool_outside_matchers() {
        assert_eq!(boolify("x >= 0.01"), "x >= bool 0.01");
        assert_eq!(
            boolify("a{s=~\"5..\",t!=\"x\"} > 3 and on (s) b == 1"),
            "a{s=~\"5..\",t!=\"x\"} > bool 3 and on (s) b == bool 1"
        );
        assert_eq!(boolify("a <= bool 1"), "a <= bool 1");
        assert_eq!(boolify("a != 0"), "a != bool 0");
        assert_eq!(boolify("a < 2 unless b"), "a < bool 2 unless b");
        assert_eq!(
            boolify("label_replace(a, \"x\", \">\", \"y\", \"\")"),
            "label_replace(a, \"x\", \">\", \"y\", \"\")"
        );
        assert_eq!(boolify("a > boolean"), "a > bool boolean");
    }

    #[test]
    fn recording_rules_are_inlined_by_name() {
        let rec = vec![
            ("p:a:rate5m".to_string(), "sum(rate(a[5m]))".to_string()),
            ("p:b".to_string(), "b".to_string()),
        ];
        assert_eq!(
            inline_recorded("p:a:rate5m >= 1 and on (x) p:b * 3 > p:a:rate5mx", &rec),
            "(sum(rate(a[5m]))) >= 1 and on (x) (b) * 3 > p:a:rate5mx"
        );
        assert_eq!(inline_recorded("x{l=\"p:b\"}", &rec), "x{l=\"p:b\"}");
    }

    #[test]
    fn substitute_fills_grafana_variables() {
        assert_eq!(
            substitute("rate(x{service=~\"$service\", env=~\"${env}\"}[$__rate_interval])"),
            format!("rate(x{{service=~\"{SERVICE}\", env=~\"{ENV}\"}}[{RATE_INTERVAL}])")
        );
    }

    #[test]
    fn urlencoding() {
        assert_eq!(
            urlencode("a{b=\"c\"}[1m] + 1"),
            "a%7Bb%3D%22c%22%7D%5B1m%5D%20%2B%201"
        );
    }
}
