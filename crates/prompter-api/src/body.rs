//! Reading request bodies: content type, size limit, JSON parsing with the
//! domain parser (so number spelling and the service's depth/size limits
//! apply to every route), and typed DTOs with field-named errors.

use crate::error::{loc_of, ApiError, Code, FieldError};
use actix_web::{http::header, web, HttpRequest};
use futures::StreamExt;
use prompter_domain::{Json, Limits};
use serde::de::DeserializeOwned;

/// How much of an oversize body we read and discard so the client sees a
/// clean 413 instead of a connection reset.
const DRAIN_CAP: usize = 64 * 1024 * 1024;

/// Body reading settings shared by all routes.
#[derive(Debug, Clone)]
pub struct BodyConfig {
    /// Largest accepted body in bytes.
    pub max_bytes: usize,
    /// Parser limits.
    pub limits: Limits,
    /// Limits on named fields (prompt text, names, country and tool lists).
    pub fields: crate::security::FieldLimits,
}

fn check_content_type(req: &HttpRequest) -> Result<(), ApiError> {
    let Some(ct) = req.headers().get(header::CONTENT_TYPE) else {
        return Ok(());
    };
    let ct = ct.to_str().unwrap_or("").to_ascii_lowercase();
    let essence = ct.split(';').next().unwrap_or("").trim();
    // `curl -d` sends form-urlencoded by default; the body must still be JSON.
    let ok = essence.is_empty()
        || essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
        || essence == "application/x-www-form-urlencoded";
    if ok {
        Ok(())
    } else {
        Err(ApiError::new(
            Code::UnsupportedMediaType,
            format!("expected an application/json body, got {essence}"),
        ))
    }
}

fn too_large(max: usize) -> ApiError {
    ApiError::new(
        Code::PayloadTooLarge,
        format!("the request body is larger than the limit of {max} bytes"),
    )
    .with("limit_bytes", max)
}

async fn drain(mut payload: web::Payload, mut seen: usize) {
    while let Some(chunk) = payload.next().await {
        match chunk {
            Ok(c) => {
                seen += c.len();
                if seen > DRAIN_CAP {
                    return;
                }
            }
            Err(_) => return,
        }
    }
}

/// Reads the whole body within the limit.
pub async fn read_bytes(
    req: &HttpRequest,
    mut payload: web::Payload,
    cfg: &BodyConfig,
) -> Result<web::BytesMut, ApiError> {
    check_content_type(req)?;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > cfg.max_bytes) {
        drain(payload, 0).await;
        return Err(too_large(cfg.max_bytes));
    }
    let mut buf = web::BytesMut::with_capacity(declared.unwrap_or(1024).min(cfg.max_bytes));
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::new(Code::MalformedJson, format!("could not read the body: {e}"))
        })?;
        if buf.len() + chunk.len() > cfg.max_bytes {
            let seen = buf.len() + chunk.len();
            drain(payload, seen).await;
            return Err(too_large(cfg.max_bytes));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf)
}

/// Reads and parses the body as JSON with the domain parser.
pub async fn read_json(
    req: &HttpRequest,
    payload: web::Payload,
    cfg: &BodyConfig,
) -> Result<Json, ApiError> {
    let bytes = read_bytes(req, payload, cfg).await?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::field(
            Code::ValidationFailed,
            loc_of(""),
            "missing",
            "Field required: the request body is empty",
        ));
    }
    let json = prompter_domain::json::parse(&bytes, &cfg.limits).map_err(|e| located(&bytes, e))?;
    cfg.fields.check(&json)?;
    Ok(json)
}

/// A syntax error (not JSON, not UTF-8, a lone surrogate) located as
/// FastAPI did, `loc: ["body", <byte offset>]`, with the line and column in
/// the message and `ctx`; other parser errors (limits, non-finite numbers)
/// keep the path of the value they concern.
fn located(bytes: &[u8], e: prompter_domain::DomainError) -> ApiError {
    use prompter_domain::DomainError as D;
    let offset = match &e {
        D::InvalidJson { offset, .. }
        | D::InvalidUtf8 { offset }
        | D::LoneSurrogate { offset, .. } => *offset,
        _ => return e.into(),
    };
    let before = &bytes[..offset.min(bytes.len())];
    let line = before.iter().filter(|b| **b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |i| i + 1);
    let column = String::from_utf8_lossy(&before[line_start..])
        .chars()
        .count()
        + 1;
    let reason = match &e {
        D::InvalidJson { reason, .. } => (*reason).to_owned(),
        other => other.to_string(),
    };
    let mut field = FieldError::new(
        vec!["body".into(), offset.into()],
        e.code(),
        format!("JSON decode error at line {line}, column {column}: {reason}"),
    );
    field.ctx = Some(serde_json::json!({"line": line, "column": column, "offset": offset}));
    ApiError::fields(Code::MalformedJson, vec![field])
}

/// Reads the body into a typed DTO, naming the offending field on failure.
pub async fn read_dto<T: DeserializeOwned>(
    req: &HttpRequest,
    payload: web::Payload,
    cfg: &BodyConfig,
) -> Result<T, ApiError> {
    let json = read_json(req, payload, cfg).await?;
    dto_from_json(&json)
}

/// Converts a parsed body into a DTO, naming the offending field on failure.
pub fn dto_from_json<T: DeserializeOwned>(json: &Json) -> Result<T, ApiError> {
    let value = json.to_serde();
    if !value.is_object() {
        return Err(ApiError::field(
            Code::ValidationFailed,
            loc_of(""),
            "model_attributes_type",
            "Input should be a valid dictionary or object",
        ));
    }
    // The usual case: the body is fine, read it without a copy.
    let first = match serde_path_to_error::deserialize::<_, T>(value) {
        Ok(v) => return Ok(v),
        Err(e) => e,
    };
    let mut value = json.to_serde();
    let mut problems: Vec<FieldError> = Vec::new();
    // Each round reports one problem and steps past it (a stand-in value at
    // its place), until serde accepts the body: every problem is reported
    // at once.
    let mut next = Some(first);
    for _ in 0..MAX_REPORTED {
        let e = match next.take() {
            Some(e) => e,
            None => match serde_path_to_error::deserialize::<_, T>(&value) {
                Ok(_) => break,
                Err(e) => e,
            },
        };
        let path = dotted(e.path());
        let inner = e.into_inner().to_string();
        let (field, kind) = match inner.strip_prefix("missing field `") {
            Some(rest) => {
                let name = rest.split('`').next().unwrap_or("");
                let full = if path.is_empty() {
                    name.to_owned()
                } else {
                    format!("{path}.{name}")
                };
                (full, "missing")
            }
            None => (path, "invalid_type"),
        };
        let again = problems.iter().any(|p| p.loc == loc_of(&field));
        if !again {
            let msg = if kind == "missing" {
                format!("Field required: {field}")
            } else {
                inner
            };
            problems.push(FieldError::new(loc_of(&field), kind, msg));
        }
        if field.is_empty() || !step_past(&mut value, &field) {
            break;
        }
    }
    Err(ApiError::fields(Code::ValidationFailed, problems))
}

/// `a.1.b` for serde's path `a[1].b` (what [`loc_of`] splits).
fn dotted(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    path.iter()
        .filter_map(|seg| match seg {
            Segment::Seq { index } => Some(index.to_string()),
            Segment::Map { key } => Some(key.clone()),
            Segment::Enum { variant } => Some(variant.clone()),
            Segment::Unknown => None,
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// At most this many problems are reported per body.
const MAX_REPORTED: usize = 64;

/// Stand-ins tried, in turn, for a missing field so deserialising can go on.
fn stand_ins() -> [serde_json::Value; 5] {
    use serde_json::json;
    [json!(""), json!(0), json!(false), json!({}), json!([])]
}

/// Moves past the problem at the dotted `field` of `value` by putting the
/// next stand-in there (a missing field, or a field of the wrong type,
/// which was reported once). False when every stand-in was tried or the
/// place cannot be reached.
fn step_past(value: &mut serde_json::Value, field: &str) -> bool {
    use serde_json::Value;
    let mut segs: Vec<&str> = field.split('.').collect();
    let Some(last) = segs.pop() else {
        return false;
    };
    let mut parent = &mut *value;
    for seg in segs {
        let next = match parent {
            Value::Object(m) => m.get_mut(seg),
            Value::Array(a) => seg.parse::<usize>().ok().and_then(|i| a.get_mut(i)),
            _ => None,
        };
        match next {
            Some(v) => parent = v,
            None => return false,
        }
    }
    let slot = match parent {
        Value::Object(m) => m.entry(last.to_owned()).or_insert(Value::Null),
        Value::Array(a) => match last.parse::<usize>().ok().and_then(|i| a.get_mut(i)) {
            Some(v) => v,
            None => return false,
        },
        _ => return false,
    };
    let candidates = stand_ins();
    let next = match candidates.iter().position(|c| c == slot) {
        None => Some(&candidates[0]),
        Some(i) => candidates.get(i + 1),
    };
    match next {
        Some(v) => {
            *slot = v.clone();
            true
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;
    use serde::Deserialize;
    use serde_json::{json, Value};

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Three {
        a: String,
        b: u32,
        c: bool,
        #[serde(default)]
        d: Option<Vec<String>>,
    }

    fn problems(body: Value) -> Vec<(Value, String)> {
        let json =
            prompter_domain::json::parse(body.to_string().as_bytes(), &Default::default()).unwrap();
        let err = dto_from_json::<Three>(&json).unwrap_err();
        assert_eq!(err.code(), Code::ValidationFailed);
        let body: Value = serde_json::from_slice(
            &actix_web::body::to_bytes(actix_web::ResponseError::error_response(&err).into_body())
                .now_or_never()
                .unwrap()
                .unwrap(),
        )
        .unwrap();
        body["detail"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| (d["loc"].clone(), d["type"].as_str().unwrap().to_owned()))
            .collect()
    }

    #[test]
    fn every_missing_field_is_named_at_once() {
        let got = problems(json!({}));
        assert_eq!(
            got,
            vec![
                (json!(["body", "a"]), "missing".to_owned()),
                (json!(["body", "b"]), "missing".to_owned()),
                (json!(["body", "c"]), "missing".to_owned()),
            ]
        );
    }

    #[test]
    fn every_wrong_field_is_named_at_once() {
        let got = problems(json!({"a": 1, "b": "x", "c": true, "d": ["ok", 2]}));
        assert_eq!(
            got,
            vec![
                (json!(["body", "a"]), "invalid_type".to_owned()),
                (json!(["body", "b"]), "invalid_type".to_owned()),
                (json!(["body", "d", 1]), "invalid_type".to_owned()),
            ]
        );
        // Wrong and missing together.
        let got = problems(json!({"b": -1}));
        assert_eq!(got.len(), 3, "{got:?}");
    }

    #[test]
    fn json_syntax_errors_are_located_by_line_and_column() {
        let bytes = b"{\n  \"name\": \"x\",\n  \"model_id\": tru\n}";
        let e = prompter_domain::json::parse(bytes, &Default::default()).unwrap_err();
        let err = located(bytes, e);
        assert_eq!(err.code(), Code::MalformedJson);
        let msg = err.to_string();
        assert!(msg.contains("line 3, column 15"), "{msg}");
    }
}
