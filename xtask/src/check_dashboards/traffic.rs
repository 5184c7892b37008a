//! The traffic script: every route on `main`, drift on `newbuild`, provider
//! failures on `failing`, each call checked against the status it must answer.

use crate::client::{self, Req};
use hyper::Method;
use serde_json::{json, Value};

/// What a call must answer.
#[derive(Debug, Clone, Copy)]
enum Expect {
    Status(u16),
    /// Any 4xx.
    ClientError,
    /// Any 5xx: the failing instance's provider errors surface as 502/503/504.
    ServerError,
}

impl Expect {
    fn matches(self, status: u16) -> bool {
        match self {
            Expect::Status(s) => s == status,
            Expect::ClientError => (400..500).contains(&status),
            Expect::ServerError => (500..600).contains(&status),
        }
    }
}

impl std::fmt::Display for Expect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Expect::Status(s) => write!(f, "{s}"),
            Expect::ClientError => f.write_str("4xx"),
            Expect::ServerError => f.write_str("5xx"),
        }
    }
}

/// One HTTP call of the traffic script.
#[derive(Debug)]
struct Call {
    what: &'static str,
    method: &'static str,
    path: String,
    body: Option<Vec<u8>>,
    headers: Vec<(&'static str, String)>,
    expect: Expect,
}

impl Call {
    fn new(what: &'static str, method: &'static str, path: impl Into<String>, expect: u16) -> Self {
        Call {
            what,
            method,
            path: path.into(),
            body: None,
            headers: Vec::new(),
            expect: Expect::Status(expect),
        }
    }
    fn json(mut self, body: Value) -> Self {
        self.body = Some(body.to_string().into_bytes());
        self
    }
    fn raw(mut self, body: &str) -> Self {
        self.body = Some(body.as_bytes().to_vec());
        self
    }
    fn header(mut self, name: &'static str, value: String) -> Self {
        self.headers.push((name, value));
        self
    }
    fn client_error(mut self) -> Self {
        self.expect = Expect::ClientError;
        self
    }
    fn server_error(mut self) -> Self {
        self.expect = Expect::ServerError;
        self
    }
}

const ORG: &str = "org-check";
const PREFIX: &str = "/api/prompt-templates";

/// Models whose templates the traffic creates: one per provider rule. The
/// Azure runs carry no fingerprint and take their key from the version row;
/// the last model matches no provider (key `unknown`).
const MODELS: [&str; 5] = [
    "gpt-4o",
    "gemini-1.5-pro",
    "claude-3-5-sonnet",
    "azure-gpt-4o",
    "llama-3-70b",
];

fn template_body(ws: &str, model: &str) -> Value {
    json!({
        "org_id": ORG,
        "workspace_id": ws,
        "name": format!("check {model}"),
        "system_instructions": "You are a careful analyst.",
        "user_prompt_template": "What do people in {{country}} think of {{brand}}?",
        "country_set": ["US", "gb", "DE"],
        "model_id": model,
        "inference_params": {"temperature": 0.2},
    })
}

fn ensure_body(ws: &str) -> Value {
    json!({"org_id": ORG, "workspace_id": ws})
}

fn run_body(country: &str) -> Value {
    json!({
        "rendered_prompt": format!("What do people in {country} think of Acme?"),
        "brand_name": "Acme",
        "country": country,
    })
}

/// Sends `call` to `addr`, prints it, records a failure when the status is
/// not the expected one, and returns the parsed JSON body (or null).
fn send(addr: &str, c: Call, failures: &mut Vec<String>) -> Result<Value, String> {
    let body = c.body.unwrap_or_default();
    let ct = (!body.is_empty()).then_some("application/json");
    let headers: Vec<(&str, &str)> = c.headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let method = Method::from_bytes(c.method.as_bytes()).map_err(|e| e.to_string())?;
    let req = Req {
        method: &method,
        path: &c.path,
        content_type: ct,
        headers: &headers,
    };
    let resp = client::call(addr, req, &body)?;
    let ok = c.expect.matches(resp.status);
    println!(
        "  {} {:<14} {:<4} {:<58} -> {} (expected {})",
        if ok { "ok  " } else { "FAIL" },
        c.what,
        c.method,
        c.path,
        resp.status,
        c.expect
    );
    if !ok {
        let snippet: String = resp.body.chars().take(300).collect();
        failures.push(format!(
            "traffic {}: {} {} on {addr} answered {} (expected {}): {snippet}",
            c.what, c.method, c.path, resp.status, c.expect
        ));
    }
    Ok(serde_json::from_str(&resp.body).unwrap_or(Value::Null))
}

/// Drives every route on `main`, drift on `newbuild`, provider failures on
/// `failing`. Returns the calls whose status differed from the expected one
/// (failures of the check: the panels are only proven if the routes really
/// answered what they count).
pub(super) fn drive_traffic(
    main: &str,
    newbuild: &str,
    failing: &str,
    ws: &str,
) -> Result<Vec<String>, String> {
    let mut failures = Vec::new();
    let f = &mut failures;

    println!("  -- main: every route");
    for p in [
        "/healthz",
        "/readyz",
        "/version",
        "/api/prompt-templates/health",
    ] {
        send(main, Call::new("ops", "GET", p, 200), f)?;
    }
    let mut ids: Vec<String> = Vec::new();
    for m in MODELS {
        let v = send(
            main,
            Call::new("create", "POST", PREFIX, 201).json(template_body(ws, m)),
            f,
        )?;
        if let Some(id) = v.get("id").and_then(Value::as_str) {
            ids.push(id.to_string());
        }
    }
    // The same config again: dedup -> 409 (and a unique violation counted);
    // whitespace and country-order variants hash the same: also 409.
    send(
        main,
        Call::new("duplicate", "POST", PREFIX, 409).json(template_body(ws, "gpt-4o")),
        f,
    )?;
    let mut variant = template_body(ws, "gpt-4o");
    variant["user_prompt_template"] =
        json!("  What do people in {{country}}   think of {{brand}}?  ");
    variant["country_set"] = json!(["de", "US", "GB", "us"]);
    send(
        main,
        Call::new("dup variant", "POST", PREFIX, 409).json(variant),
        f,
    )?;
    send(
        main,
        Call::new(
            "check-dup",
            "POST",
            format!("{PREFIX}/check-duplicate"),
            200,
        )
        .json(template_body(ws, "gpt-4o")),
        f,
    )?;
    // Bad bodies: a wrong type and broken JSON are 422 (V7's FastAPI shape).
    send(
        main,
        Call::new("bad body", "POST", PREFIX, 422).json(json!({"org_id": ORG, "workspace_id": 5})),
        f,
    )?;
    send(
        main,
        Call::new("bad json", "POST", PREFIX, 422).raw("{\"org_id\": "),
        f,
    )?;
    let unknown = "00000000-0000-4000-8000-000000000000";
    send(
        main,
        Call::new(
            "unknown id",
            "POST",
            format!("{PREFIX}/{unknown}/ensure-version"),
            404,
        )
        .json(ensure_body(ws)),
        f,
    )?;
    send(
        main,
        Call::new("unknown id", "POST", format!("{PREFIX}/{unknown}/run"), 404)
            .json(run_body("US")),
        f,
    )?;
    // ensure-version twice per template: a probe, then a guard reuse.
    for what in ["ensure", "ensure again"] {
        for id in &ids {
            send(
                main,
                Call::new(what, "POST", format!("{PREFIX}/{id}/ensure-version"), 200)
                    .json(ensure_body(ws)),
                f,
            )?;
        }
    }
    // Runs: every template for US with an Idempotency-Key, the same again
    // (an idempotent replay, answered from the database without a provider
    // call), then DE without a key.
    for (what, country, keyed) in [
        ("run", "US", true),
        ("run replay", "US", true),
        ("run", "DE", false),
    ] {
        for id in &ids {
            let mut call =
                Call::new(what, "POST", format!("{PREFIX}/{id}/run"), 200).json(run_body(country));
            if keyed {
                call = call.header("Idempotency-Key", format!("check-{ws}-{id}"));
            }
            send(main, call, f)?;
        }
    }
    send(
        main,
        Call::new("no route", "GET", "/api/prompt-templates-nope", 404),
        f,
    )?;
    // A wrong method: 404 or 405 depending on how the router answers it.
    send(
        main,
        Call::new(
            "wrong method",
            "PUT",
            format!("{PREFIX}/check-duplicate"),
            0,
        )
        .client_error(),
        f,
    )?;
    send(main, Call::new("metrics", "GET", "/metrics", 200), f)?;

    println!("  -- newbuild: the provider serves a new build (drift)");
    for id in &ids {
        send(
            newbuild,
            Call::new(
                "ensure (drift)",
                "POST",
                format!("{PREFIX}/{id}/ensure-version"),
                200,
            )
            .json(ensure_body(ws)),
            f,
        )?;
        send(
            newbuild,
            Call::new("run", "POST", format!("{PREFIX}/{id}/run"), 200).json(run_body("FR")),
            f,
        )?;
    }

    println!("  -- failing: every provider call fails (probe failures, provider errors, 5xx)");
    for id in &ids {
        send(
            failing,
            Call::new(
                "ensure (fails)",
                "POST",
                format!("{PREFIX}/{id}/ensure-version"),
                0,
            )
            .json(ensure_body(ws))
            .server_error(),
            f,
        )?;
        send(
            failing,
            Call::new("run (fails)", "POST", format!("{PREFIX}/{id}/run"), 0)
                .json(run_body("IT"))
                .server_error(),
            f,
        )?;
    }
    Ok(failures)
}
