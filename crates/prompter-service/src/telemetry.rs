//! Tracing spans for provider calls, with the OpenTelemetry GenAI semantic
//! convention attributes and Prompter's own identifiers.
//!
//! Every provider call runs inside a `gen_ai.<operation>` span carrying
//! `gen_ai.system`, `gen_ai.operation.name`, `gen_ai.request.model`,
//! `prompter.template_id` and `prompter.config_hash`; once the provider
//! answers, `gen_ai.response.model`, `gen_ai.response.id`,
//! `gen_ai.usage.input_tokens`, `gen_ai.usage.output_tokens`,
//! `openai.response.system_fingerprint` and `prompter.version_key` are
//! recorded. JSON logs (`--log-format json`) carry them on every line logged
//! inside the span.

use prompter_storage::TemplateRecord;
use tracing::field::Empty;
use tracing::Span;

/// A span for one provider call (`operation`: `chat` or `probe`).
pub fn provider_span(
    operation: &'static str,
    provider: &str,
    model: &str,
    tpl: &TemplateRecord,
) -> Span {
    tracing::info_span!(
        "gen_ai.client",
        otel.name = %format!("{operation} {model}"),
        gen_ai.system = %provider,
        gen_ai.operation.name = operation,
        gen_ai.request.model = %model,
        gen_ai.response.model = Empty,
        gen_ai.response.id = Empty,
        gen_ai.usage.input_tokens = Empty,
        gen_ai.usage.output_tokens = Empty,
        openai.response.system_fingerprint = Empty,
        prompter.template_id = %tpl.id,
        prompter.config_hash = %tpl.config_hash,
        prompter.version_key = Empty,
        error.type = Empty,
    )
}

/// Records what the provider answered.
pub fn record_response(
    span: &Span,
    response_model: Option<&str>,
    response_id: Option<&str>,
    usage: Option<(u64, u64)>,
    fingerprint: Option<&str>,
) {
    if let Some(m) = response_model {
        span.record("gen_ai.response.model", m);
    }
    if let Some(id) = response_id {
        span.record("gen_ai.response.id", id);
    }
    if let Some((i, o)) = usage {
        span.record("gen_ai.usage.input_tokens", i);
        span.record("gen_ai.usage.output_tokens", o);
    }
    if let Some(fp) = fingerprint {
        span.record("openai.response.system_fingerprint", fp);
    }
}
