//! HTTP routes: V7's drop-in routes, the history routes and the operational
//! endpoints, registered from one route table ([`table`]).

pub mod batches;
pub mod history;
pub mod ops;
pub mod prompts;
pub mod schedules;
pub mod table;
pub mod usage;
pub mod v7;
pub mod whoami;

pub use table::configure;

use crate::error::{ApiError, Code};
use actix_web::HttpRequest;
use serde::de::DeserializeOwned;
use serde_json::Value;
use uuid::Uuid;

/// Parses a template id from the path; anything else is an unknown template.
pub(crate) fn template_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::new(Code::TemplateNotFound, "Template not found"))
}

/// A 400 `INVALID_QUERY` naming each bad parameter (`parameters` lists them).
pub(crate) fn invalid_query(problems: &[(String, String)]) -> ApiError {
    let message = problems
        .iter()
        .map(|(p, why)| format!("query parameter `{p}`: {why}"))
        .collect::<Vec<_>>()
        .join("; ");
    let names: Vec<Value> = problems
        .iter()
        .map(|(p, _)| Value::from(p.as_str()))
        .collect();
    ApiError::new(Code::InvalidQuery, message).with("parameters", names)
}

/// Parses the query string into `T`, answering 400 `INVALID_QUERY` that
/// names every bad parameter (each is reported, then left out so the next
/// one shows).
pub(crate) fn query<T: DeserializeOwned>(req: &HttpRequest) -> Result<T, ApiError> {
    let raw = req.query_string().as_bytes();
    // The usual case: a good query string, read once.
    if let Ok(v) = T::deserialize(serde_urlencoded::Deserializer::new(form_urlencoded::parse(
        raw,
    ))) {
        return Ok(v);
    }
    let mut pairs: Vec<(String, String)> = form_urlencoded::parse(raw).into_owned().collect();
    let mut problems: Vec<(String, String)> = Vec::new();
    for _ in 0..=pairs.len() {
        let encoded = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&pairs)
            .finish();
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(encoded.as_bytes()));
        match serde_path_to_error::deserialize::<_, T>(de) {
            Ok(v) if problems.is_empty() => return Ok(v),
            Ok(_) => break,
            Err(e) => {
                let path = e.path().to_string();
                let why = e.into_inner().to_string();
                let param = match why.strip_prefix("missing field `") {
                    Some(rest) => rest.split('`').next().unwrap_or("").to_owned(),
                    None => path,
                };
                let present = pairs.iter().any(|(k, _)| *k == param);
                problems.push((param.clone(), why));
                if !present {
                    break;
                }
                pairs.retain(|(k, _)| *k != param);
            }
        }
    }
    Err(invalid_query(&problems))
}
