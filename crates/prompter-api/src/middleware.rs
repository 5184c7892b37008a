//! Cross-cutting request handling: request id, tracing span, HTTP metrics
//! labelled by the matched route pattern, the optional access log
//! (`--access-log`), panic → 500 with the request id, and JSON bodies for
//! actix's own empty 404/405 answers.

use crate::caller::Caller;
use crate::error::{ApiError, Code};
use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage, ResponseError};
use futures::FutureExt;
use metrics::SharedString;
use prompter_service::metrics_catalog::{HTTP_REQUESTS_TOTAL, HTTP_REQUEST_DURATION_SECONDS};
use std::borrow::Cow;
use std::panic::AssertUnwindSafe;
use std::time::Instant;
use tracing::Instrument;

/// Header carrying the request id (taken from the client when sane, else generated).
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The request id of the current request (stored in request extensions).
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// Whether each request gets an access log line (app data; `--access-log`).
#[derive(Debug, Clone, Copy)]
pub struct AccessLog(pub bool);

/// The matched route pattern (`/api/prompt-templates/{id}`, or `unmatched`),
/// computed once per request by [`observe`] (request extensions).
#[derive(Debug, Clone)]
pub struct RoutePattern(pub Cow<'static, str>);

/// A metric label value for an HTTP method (static for the usual ones).
fn method_label(m: &actix_web::http::Method) -> SharedString {
    use actix_web::http::Method as M;
    let s = match *m {
        M::GET => "GET",
        M::POST => "POST",
        M::PUT => "PUT",
        M::DELETE => "DELETE",
        M::HEAD => "HEAD",
        M::OPTIONS => "OPTIONS",
        M::PATCH => "PATCH",
        _ => return SharedString::from(m.as_str().to_owned()),
    };
    SharedString::const_str(s)
}

/// A metric label value for a status (static for the ones the API answers).
fn status_label(s: StatusCode) -> SharedString {
    const STATIC: &[(u16, &str)] = &[
        (200, "200"),
        (201, "201"),
        (204, "204"),
        (302, "302"),
        (304, "304"),
        (400, "400"),
        (401, "401"),
        (403, "403"),
        (404, "404"),
        (405, "405"),
        (409, "409"),
        (413, "413"),
        (415, "415"),
        (421, "421"),
        (422, "422"),
        (429, "429"),
        (500, "500"),
        (503, "503"),
    ];
    match STATIC.iter().find(|(c, _)| *c == s.as_u16()) {
        Some((_, t)) => SharedString::const_str(t),
        None => SharedString::from(s.as_u16().to_string()),
    }
}

fn request_id(req: &ServiceRequest) -> String {
    req.headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

/// The one middleware every request passes.
pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let started = Instant::now();
    let rid = request_id(&req);
    let method = method_label(req.method());
    let route: Cow<'static, str> = match crate::routes::table::pattern_of(req.path()) {
        Some(p) => Cow::Borrowed(p),
        None => Cow::Owned(
            req.request()
                .match_pattern()
                .unwrap_or_else(|| "unmatched".to_owned()),
        ),
    };
    {
        let mut ext = req.extensions_mut();
        ext.insert(RequestId(rid.clone()));
        ext.insert(RoutePattern(route.clone()));
    }
    let span = tracing::info_span!(
        "http_request",
        request_id = %rid,
        http.method = %method,
        http.route = %route,
        http.status_code = tracing::field::Empty,
    );
    let access_log = req
        .app_data::<actix_web::web::Data<AccessLog>>()
        .is_some_and(|a| a.0);
    let outcome = AssertUnwindSafe(next.call(req))
        .catch_unwind()
        .instrument(span.clone())
        .await;
    let record = |status: StatusCode, key_prefix: Option<&str>| {
        span.record("http.status_code", status.as_u16());
        if access_log {
            tracing::info!(
                target: "prompter::access",
                method = %method,
                route = %route,
                status = status.as_u16(),
                latency_ms = started.elapsed().as_secs_f64() * 1000.0,
                request_id = %rid,
                key_prefix = key_prefix.unwrap_or("-"),
                "request"
            );
        }
        let route = SharedString::from(route.clone());
        metrics::counter!(HTTP_REQUESTS_TOTAL, "method" => method.clone(), "route" => route.clone(), "status" => status_label(status))
            .increment(1);
        metrics::histogram!(HTTP_REQUEST_DURATION_SECONDS, "method" => method.clone(), "route" => route)
            .record(started.elapsed().as_secs_f64());
    };
    // The request was moved into the service, so failures travel as errors
    // (actix renders them with `ApiError::error_response`), tagged with the
    // request id header.
    let mut res = match outcome {
        Ok(Ok(res)) => res.map_into_boxed_body(),
        Ok(Err(err)) => {
            record(err.as_response_error().status_code(), None);
            return Err(WithRequestId { inner: err, rid }.into());
        }
        Err(_) => {
            tracing::error!(parent: &span, request_id = %rid, "handler panicked");
            let err = ApiError::new(Code::InternalError, "internal error; quote the request id")
                .with("request_id", rid.clone());
            record(err.status_code(), None);
            return Err(WithRequestId {
                inner: err.into(),
                rid,
            }
            .into());
        }
    };
    let status = res.status();
    if (status == StatusCode::NOT_FOUND || status == StatusCode::METHOD_NOT_ALLOWED)
        && matches!(
            res.response().body().size(),
            BodySize::Sized(0) | BodySize::None
        )
    {
        let code = if status == StatusCode::NOT_FOUND {
            Code::NotFound
        } else {
            Code::MethodNotAllowed
        };
        let (http_req, _) = res.into_parts();
        let msg = if code == Code::NotFound {
            "no such route"
        } else {
            "method not allowed on this route"
        };
        res = ServiceResponse::new(http_req, ApiError::new(code, msg).error_response());
    }
    if let Ok(v) = HeaderValue::from_str(&rid) {
        res.headers_mut().insert(REQUEST_ID, v);
    }
    let caller = res.request().extensions().get::<Caller>().cloned();
    record(
        res.status(),
        caller.as_ref().and_then(|c| c.key_prefix.as_deref()),
    );
    Ok(res)
}

/// An error raised below [`observe`] (the request timeout, a panic), answered
/// with the request id header like every other response.
#[derive(Debug)]
struct WithRequestId {
    inner: Error,
    rid: String,
}

impl std::fmt::Display for WithRequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.fmt(f)
    }
}

impl ResponseError for WithRequestId {
    fn status_code(&self) -> StatusCode {
        self.inner.as_response_error().status_code()
    }

    fn error_response(&self) -> actix_web::HttpResponse<BoxBody> {
        let mut res = self.inner.error_response();
        if let Ok(v) = HeaderValue::from_str(&self.rid) {
            res.headers_mut().insert(REQUEST_ID, v);
        }
        res
    }
}
