//! parse → canonicalise → hash, for a ~1 KB and a ~64 KB template body.
//!
//! `cargo bench -p prompter-domain` (or `cargo xtask bench domain`).
//!
//! Per size: the full pipeline with each hash algorithm, canonicalisation
//! alone (from an already parsed request), and `serde_json::Value` parsing
//! of the same body as a yardstick for the machine.

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use prompter_domain::{canonicalize, ConfigHash, HashAlgorithm, Limits, TemplateRequest};

/// A realistic ~1 KB create-template body.
fn body_1k() -> String {
    r#"{"org_id":"org_7f3a","workspace_id":"ws_brand_acme","name":"Brand visibility — EU launch",
"provider":"openai","created_by":"analyst@example.com",
"system_instructions":"You are a precise market analyst.  Answer in JSON.\r\nNever invent sources;\tcite only what you were given.",
"user_prompt_template":"List the top 10 brands for {{category}} in {{country}}.\n\nFor each brand give:\n  - name\n  - one-line reason\n\nIs {{brand}} among them?  ",
"country_set":["de","fr"," uk","es","it","nl","se","pl"],
"model_id":"gpt-4o-2024-08-06",
"inference_params":{"temperature":0.70001,"top_p":0.95,"max_tokens":1024,"presence_penalty":0.1,"frequency_penalty":0.2,"seed":42,"stop":["\n\n###"]},
"tools_spec":[{"type":"function","function":{"name":"lookup_brand","description":"Look up facts about a brand","parameters":{"type":"object","properties":{"name":{"type":"string"},"market":{"type":"string"}},"required":["name"]}}}],
"response_format":{"type":"json_schema","json_schema":{"name":"brands","strict":true,"schema":{"type":"object","properties":{"brands":{"type":"array"}}}}},
"grounding_profile_id":null,"grounding_snapshot_id":null,
"retrieval_params":{"top_k":8,"min_score":0.35,"filters":{"lang":"en"}}}"#
        .to_owned()
}

/// A ~64 KB body: long prompts plus a large tools list and parameter maps.
fn body_64k() -> String {
    let prompt = "Describe {{brand}}'s  position in {{country}}.\r\n\tBe concise. ".repeat(300);
    let tools: Vec<String> = (0..120)
        .map(|i| {
            format!(
                r#"{{"type":"function","function":{{"name":"tool_{i}","description":"Tool number {i} does a thing","parameters":{{"type":"object","properties":{{"a":{{"type":"number","minimum":0.125}},"b":{{"type":"string"}}}},"required":["a"]}}}}}}"#
            )
        })
        .collect();
    let params: Vec<String> = (0..600)
        .map(|i| format!(r#""p{i:03}":{}"#, f64::from(i) * 0.123457))
        .collect();
    format!(
        r#"{{"workspace_id":"w","name":"big","system_instructions":{sys:?},"user_prompt_template":{prompt:?},"country_set":["de","fr","uk","us","jp"],"model_id":"gpt-4o","inference_params":{{{params}}},"tools_spec":[{tools}],"response_format":{{"type":"json_object"}},"retrieval_params":{{"k":5}}}}"#,
        sys = "Be helpful.  ".repeat(400),
        prompt = prompt,
        params = params.join(","),
        tools = tools.join(","),
    )
}

fn bench(c: &mut Criterion) {
    let limits = Limits::default();
    let mut group = c.benchmark_group("parse_canonicalize_hash");
    for (label, body) in [("1KB", body_1k()), ("64KB", body_64k())] {
        assert!(TemplateRequest::parse(body.as_bytes(), &limits).is_ok());
        group.throughput(Throughput::Bytes(body.len() as u64));
        eprintln!("{label}: body {} bytes", body.len());
        for alg in [HashAlgorithm::Sha256, HashAlgorithm::Blake3] {
            group.bench_with_input(BenchmarkId::new(alg.as_str(), label), &body, |b, body| {
                b.iter(|| {
                    let req = TemplateRequest::parse(black_box(body.as_bytes()), &limits).unwrap();
                    let canonical = canonicalize(&req.config);
                    ConfigHash::compute(alg, &canonical)
                })
            });
        }
        // Calibration for this machine: parsing alone with serde_json.
        group.bench_with_input(
            BenchmarkId::new("serde_json_value_parse_baseline", label),
            &body,
            |b, body| {
                b.iter(|| serde_json::from_str::<serde_json::Value>(black_box(body)).unwrap())
            },
        );
        let req = TemplateRequest::parse(body.as_bytes(), &limits).unwrap();
        group.bench_with_input(
            BenchmarkId::new("canonicalize_only", label),
            &req,
            |b, req| b.iter(|| canonicalize(black_box(&req.config))),
        );
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
