//! `prompter batch run | status`: submit a tracking batch to a running
//! server over HTTP (key from `PROMPTER_API_KEY`), follow its progress from
//! the Server-Sent Events stream with a progress bar, and print a summary
//! table per country.

use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::time::Duration;

/// `prompter batch`.
#[derive(Debug, Args)]
pub struct BatchArgs {
    #[command(subcommand)]
    command: BatchCommand,
}

/// Where the server is and who we are.
#[derive(Debug, Args)]
pub struct ServerArgs {
    /// The server's base URL.
    #[arg(long, env = "PROMPTER_SERVER", default_value = "http://127.0.0.1:8080")]
    server: String,
    /// API key (sent as `Authorization: Bearer`; omit with auth off).
    #[arg(long, env = "PROMPTER_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
}

#[derive(Debug, Subcommand)]
enum BatchCommand {
    /// Create a batch of a prompt (countries × repeats) and optionally follow it.
    Run {
        #[command(flatten)]
        server: ServerArgs,
        /// Workspace of the prompt (unless the key fixes it).
        #[arg(long)]
        workspace: Option<String>,
        /// Org of the prompt (unless the key fixes it).
        #[arg(long)]
        org: Option<String>,
        /// Prompt name.
        #[arg(long)]
        name: String,
        /// Label (default `latest`).
        #[arg(long, conflicts_with = "revision")]
        label: Option<String>,
        /// Revision number.
        #[arg(long)]
        revision: Option<i64>,
        /// Countries (default: the template's country_set).
        #[arg(long, value_delimiter = ',')]
        countries: Vec<String>,
        /// Runs per country.
        #[arg(long, default_value_t = 1)]
        repeats: i64,
        /// Brand (also the `brand` variable).
        #[arg(long)]
        brand: Option<String>,
        /// A variable, `name=value` (repeatable).
        #[arg(long = "var", value_parser = parse_var)]
        vars: Vec<(String, String)>,
        /// Idempotency-Key (a rerun with the same key answers the same batch).
        #[arg(long)]
        idempotency_key: Option<String>,
        /// Show a live progress bar until the batch ends, then a summary.
        #[arg(long)]
        follow: bool,
    },
    /// Show a batch: status, counters and a summary per country.
    Status {
        #[command(flatten)]
        server: ServerArgs,
        /// Batch id.
        id: String,
    },
}

fn parse_var(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.trim().to_owned(), v.to_owned()))
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| format!("expected name=value, got {s:?}"))
}

struct Client {
    http: reqwest::Client,
    base: String,
    key: Option<String>,
}

impl Client {
    fn new(s: &ServerArgs) -> Self {
        Client {
            http: reqwest::Client::new(),
            base: s.server.trim_end_matches('/').to_owned(),
            key: s.api_key.clone().filter(|k| !k.is_empty()),
        }
    }

    fn req(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let rb = self.http.request(method, format!("{}{path}", self.base));
        match &self.key {
            Some(k) => rb.bearer_auth(k),
            None => rb,
        }
    }

    async fn json(&self, rb: reqwest::RequestBuilder) -> Result<Value, String> {
        let res = rb
            .send()
            .await
            .map_err(|e| format!("request failed: {e}"))?;
        let status = res.status();
        let body: Value = res.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            let detail = &body["detail"];
            let msg = detail["message"]
                .as_str()
                .or(detail[0]["msg"].as_str())
                .unwrap_or("");
            let code = detail["code"].as_str().unwrap_or("VALIDATION_FAILED");
            return Err(format!("{status} {code}: {msg}"));
        }
        Ok(body)
    }
}

/// Runs `prompter batch …`; the exit status is failure when the batch did
/// not end `done` (with `--follow` or `status`).
pub async fn run(args: BatchArgs) -> Result<bool, String> {
    match args.command {
        BatchCommand::Run {
            server,
            workspace,
            org,
            name,
            label,
            revision,
            countries,
            repeats,
            brand,
            vars,
            idempotency_key,
            follow,
        } => {
            let c = Client::new(&server);
            let mut q: Vec<(&str, String)> = Vec::new();
            if let Some(o) = org {
                q.push(("org_id", o));
            }
            if let Some(w) = workspace {
                q.push(("workspace_id", w));
            }
            match (label, revision) {
                (_, Some(n)) => q.push(("revision", n.to_string())),
                (Some(l), None) => q.push(("label", l)),
                (None, None) => {}
            }
            let name_seg: String =
                form_urlencoded::byte_serialize(name.as_bytes()).collect::<String>();
            let query = serde_urlencoded::to_string(&q).map_err(|e| e.to_string())?;
            let mut body = json!({"repeats": repeats});
            if !countries.is_empty() {
                body["countries"] = json!(countries);
            }
            if let Some(b) = brand {
                body["brand_name"] = json!(b);
            }
            if !vars.is_empty() {
                let m: Map<String, Value> = vars.into_iter().map(|(k, v)| (k, json!(v))).collect();
                body["variables"] = Value::Object(m);
            }
            let mut rb = c
                .req(
                    reqwest::Method::POST,
                    &format!("/api/prompts/{name_seg}/batches?{query}"),
                )
                .json(&body);
            if let Some(k) = idempotency_key {
                rb = rb.header("Idempotency-Key", k);
            }
            let created = c.json(rb).await?;
            let id = created["batch_id"].as_str().unwrap_or_default().to_owned();
            println!("batch {id}: {} items", created["items"]);
            if !follow {
                return Ok(true);
            }
            follow_events(&c, &id, created["items"].as_u64().unwrap_or(0)).await?;
            summary(&c, &id).await
        }
        BatchCommand::Status { server, id } => {
            let c = Client::new(&server);
            summary(&c, &id).await
        }
    }
}

/// Reads the SSE stream, moving the bar on each `progress` event, until `done`.
async fn follow_events(c: &Client, id: &str, total: u64) -> Result<(), String> {
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} {msg} [{elapsed_precise}]")
            .map_err(|e| e.to_string())?,
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    let mut res = c
        .req(reqwest::Method::GET, &format!("/api/batches/{id}/events"))
        .header("Accept", "text/event-stream")
        .send()
        .await
        .map_err(|e| format!("event stream: {e}"))?;
    if !res.status().is_success() {
        return Err(format!("event stream: {}", res.status()));
    }
    let mut buf = String::new();
    while let Some(chunk) = res
        .chunk()
        .await
        .map_err(|e| format!("event stream: {e}"))?
    {
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buf.find("\n\n") {
            let event: String = buf.drain(..end + 2).collect();
            let mut kind = "message";
            let mut data = String::new();
            for line in event.lines() {
                if let Some(k) = line.strip_prefix("event: ") {
                    kind = k;
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data.push_str(d);
                }
            }
            let Ok(v) = serde_json::from_str::<Value>(&data) else {
                continue;
            };
            let ended = ["done", "failed", "cancelled"]
                .iter()
                .filter_map(|k| v[*k].as_u64())
                .sum::<u64>();
            bar.set_length(v["total"].as_u64().unwrap_or(total));
            bar.set_position(ended);
            bar.set_message(format!(
                "{} (done {}, failed {}, cancelled {})",
                v["status"].as_str().unwrap_or(""),
                v["done"],
                v["failed"],
                v["cancelled"]
            ));
            if kind == "done" || kind == "error" {
                bar.finish();
                return Ok(());
            }
        }
    }
    bar.finish();
    Ok(())
}

/// Prints the batch's status and a table per country; true when `done`.
async fn summary(c: &Client, id: &str) -> Result<bool, String> {
    let b = c
        .json(c.req(reqwest::Method::GET, &format!("/api/batches/{id}")))
        .await?;
    println!(
        "batch {id}: {} — {} of {} done, {} failed, {} cancelled",
        b["status"].as_str().unwrap_or("?"),
        b["done"],
        b["total"],
        b["failed"],
        b["cancelled"]
    );
    // country → (done, failed, cancelled, other, first error)
    let mut rows: BTreeMap<String, (u64, u64, u64, u64, String)> = BTreeMap::new();
    for i in b["items"].as_array().into_iter().flatten() {
        let r = rows
            .entry(i["country"].as_str().unwrap_or("?").to_owned())
            .or_default();
        match i["status"].as_str() {
            Some("done") => r.0 += 1,
            Some("failed") => r.1 += 1,
            Some("cancelled") => r.2 += 1,
            _ => r.3 += 1,
        }
        if r.4.is_empty() {
            if let Some(code) = i["error"]["code"].as_str() {
                r.4 = code.to_owned();
            }
        }
    }
    println!(
        "{:<8} {:>6} {:>6} {:>9} {:>7}  error",
        "country", "done", "failed", "cancelled", "pending"
    );
    for (country, (d, f, x, p, e)) in rows {
        println!("{country:<8} {d:>6} {f:>6} {x:>9} {p:>7}  {e}");
    }
    Ok(b["status"] == "done")
}
