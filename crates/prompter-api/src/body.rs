//! Reading request bodies: content type, size limit, JSON parsing with the
//! domain parser (so number spelling and the service's depth/size limits
//! apply to every route), and typed DTOs with field-named errors.

use crate::error::{loc_of, ApiError, Code};
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
    let json = prompter_domain::json::parse(&bytes, &cfg.limits)?;
    cfg.fields.check(&json)?;
    Ok(json)
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
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        let (kind, path) = match inner.strip_prefix("missing field `") {
            Some(rest) => {
                let field = rest.split('`').next().unwrap_or("").to_owned();
                let full = if path == "." {
                    field
                } else {
                    format!("{path}.{field}")
                };
                ("missing", full)
            }
            None => (
                "invalid_type",
                if path == "." { String::new() } else { path },
            ),
        };
        ApiError::field(Code::ValidationFailed, loc_of(&path), kind, inner)
    })
}
