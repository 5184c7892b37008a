//! JSON Lines hashing: the engine of the `prompter hash` CLI subcommand.

use std::io::{self, BufRead, BufWriter, Write};

use crate::canonical::canonicalize_into;
use crate::error::DomainError;
use crate::hash::{digest_hex, HashAlgorithm};
use crate::json::{write_str, Limits};
use crate::request::TemplateRequest;

/// Input lines longer than this (in bytes, without the newline) are answered
/// with a `body_too_large` error line without being buffered.
pub const MAX_LINE_BYTES: usize = 16 * 1024 * 1024;

/// Counts of what [`hash_lines`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HashStats {
    /// Input lines read (= output lines written).
    pub lines: u64,
    /// Lines answered with a canonical JSON and its hashes.
    pub ok: u64,
    /// Lines answered with an error.
    pub errors: u64,
}

/// Reads JSON Lines, each one create-template request body as V7's API took
/// it, and writes exactly one JSON line per input line, in order:
///
/// - `{"canonical_json":"<canonical JSON as a JSON string>","sha256":"<hex>","blake3":"<hex>"}`
/// - or `{"error":{"code":"<stable code>","message":"<human message>"}}`
///   for a line that cannot be read (an empty line included).
///
/// A final newline at end of input does not start an extra line; a `\r`
/// before the newline is JSON whitespace and is ignored. V7 validation mode:
/// no country checks, `org_id`/`workspace_id`/`name` not required, default
/// [`Limits`]. Streams with constant memory (buffers are reused; a line over
/// [`MAX_LINE_BYTES`] is skipped, not buffered). Only I/O errors end the run
/// early.
pub fn hash_lines<R: BufRead, W: Write>(mut input: R, output: W) -> io::Result<HashStats> {
    let mut out = BufWriter::with_capacity(64 * 1024, output);
    let limits = Limits::default();
    let mut line = Vec::new();
    let mut canonical = String::new();
    let mut record = String::new();
    let mut stats = HashStats::default();
    loop {
        line.clear();
        let Some(overflow) = read_line_bounded(&mut input, &mut line, MAX_LINE_BYTES)? else {
            break;
        };
        stats.lines += 1;
        record.clear();
        let parsed = if overflow {
            Err(DomainError::BodyTooLarge {
                max: MAX_LINE_BYTES,
            })
        } else {
            TemplateRequest::parse(&line, &limits)
        };
        match parsed {
            Ok(req) => {
                stats.ok += 1;
                canonical.clear();
                canonicalize_into(&req.config, &mut canonical);
                write_ok(&mut record, &canonical);
            }
            Err(e) => {
                stats.errors += 1;
                write_error(&mut record, &e);
            }
        }
        out.write_all(record.as_bytes())?;
    }
    out.flush()?;
    Ok(stats)
}

fn write_ok(record: &mut String, canonical: &str) {
    let mut hex = [0u8; 64];
    record.push_str("{\"canonical_json\":");
    write_str(record, canonical);
    record.push_str(",\"sha256\":\"");
    record.push_str(digest_hex(
        HashAlgorithm::Sha256,
        canonical.as_bytes(),
        &mut hex,
    ));
    record.push_str("\",\"blake3\":\"");
    record.push_str(digest_hex(
        HashAlgorithm::Blake3,
        canonical.as_bytes(),
        &mut hex,
    ));
    record.push_str("\"}\n");
}

fn write_error(record: &mut String, e: &DomainError) {
    let mut message = e.to_string();
    if let Some(field) = e.field() {
        if !message.contains(field) {
            message.push_str(" (field `");
            message.push_str(field);
            message.push_str("`)");
        }
    }
    record.push_str("{\"error\":{\"code\":");
    write_str(record, e.code());
    record.push_str(",\"message\":");
    write_str(record, &message);
    record.push_str("}}\n");
}

/// Appends the next line (without its `\n`) to `line`, keeping at most `max`
/// bytes. `None` at end of input; `Some(true)` if the line was longer than
/// `max` (then `line` is left empty and the rest of the line is skipped).
fn read_line_bounded<R: BufRead>(
    input: &mut R,
    line: &mut Vec<u8>,
    max: usize,
) -> io::Result<Option<bool>> {
    let mut any = false;
    let mut overflow = false;
    loop {
        let available = match input.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            return Ok(any.then_some(overflow));
        }
        any = true;
        let newline = available.iter().position(|&b| b == b'\n');
        let chunk = &available[..newline.unwrap_or(available.len())];
        if !overflow {
            if line.len() + chunk.len() > max {
                overflow = true;
                line.clear();
            } else {
                line.extend_from_slice(chunk);
            }
        }
        let used = newline.map_or(available.len(), |i| i + 1);
        input.consume(used);
        if newline.is_some() {
            return Ok(Some(overflow));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(input: &[u8]) -> (String, HashStats) {
        let mut out = Vec::new();
        let stats = hash_lines(input, &mut out).unwrap();
        (String::from_utf8(out).unwrap(), stats)
    }

    const EXAMPLE: &str = r#"{"workspace_id":"w","name":"n","user_prompt_template":"Hi  {{brand}}\r\n","model_id":"gpt-4o","country_set":["uk","de"],"inference_params":{"temperature":0.70001}}"#;
    const EXAMPLE_CANONICAL: &str = r#"{"system_instructions":"","user_prompt_template":"Hi {{brand}}","country_set":["DE","GB"],"model_id":"gpt-4o","inference_params":{"temperature":0.7},"tools_spec":[],"response_format":{},"grounding_profile_id":null,"grounding_snapshot_id":null,"retrieval_params":{},"preprocess_pipeline_id":null,"postprocess_pipeline_id":null}"#;
    const EXAMPLE_SHA256: &str = "17330698efee5fa5ba6748539b2dcc2b73a60e4655a8ea8e7a98f85792ee559d";

    #[test]
    fn issue_example() {
        let (out, stats) = run(format!("{EXAMPLE}\n").as_bytes());
        assert_eq!(
            stats,
            HashStats {
                lines: 1,
                ok: 1,
                errors: 0
            }
        );
        let v: serde_json::Value = serde_json::from_str(out.trim_end()).unwrap();
        assert_eq!(v["canonical_json"], EXAMPLE_CANONICAL);
        assert_eq!(v["sha256"], EXAMPLE_SHA256);
        let blake = blake3::hash(EXAMPLE_CANONICAL.as_bytes())
            .to_hex()
            .to_string();
        assert_eq!(v["blake3"], blake.as_str());
        let mut expected = String::from("{\"canonical_json\":");
        write_str(&mut expected, EXAMPLE_CANONICAL);
        expected.push_str(&format!(
            ",\"sha256\":\"{EXAMPLE_SHA256}\",\"blake3\":\"{blake}\"}}\n"
        ));
        assert_eq!(out, expected);
        assert_eq!(v.as_object().unwrap().keys().count(), 3);
    }

    #[test]
    fn one_output_line_per_input_line_in_order() {
        let input = format!("{EXAMPLE}\n\nnot json\n[1]\r\n{{\"model_id\":1}}\n{{}}\r\n{EXAMPLE}");
        let (out, stats) = run(input.as_bytes());
        let lines: Vec<serde_json::Value> = out
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 7);
        assert_eq!(
            stats,
            HashStats {
                lines: 7,
                ok: 3,
                errors: 4
            }
        );
        assert_eq!(lines[0]["sha256"], EXAMPLE_SHA256);
        assert_eq!(lines[1]["error"]["code"], "invalid_json");
        assert_eq!(lines[2]["error"]["code"], "invalid_json");
        assert_eq!(lines[3]["error"]["code"], "invalid_body");
        assert_eq!(lines[4]["error"]["code"], "invalid_type");
        assert!(lines[4]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("model_id"));
        assert!(lines[5]["canonical_json"].is_string());
        assert_eq!(lines[6]["sha256"], EXAMPLE_SHA256);
        for l in &lines[1..5] {
            assert_eq!(l.as_object().unwrap().len(), 1);
            assert_eq!(l["error"].as_object().unwrap().len(), 2);
        }
    }

    #[test]
    fn trailing_newline_is_not_a_line() {
        assert_eq!(run(b"").1.lines, 0);
        assert_eq!(run(b"{}").1.lines, 1);
        assert_eq!(run(b"{}\n").1.lines, 1);
        assert_eq!(
            run(b"{}\n\n").1,
            HashStats {
                lines: 2,
                ok: 1,
                errors: 1
            }
        );
        assert_eq!(
            run(b"\n").1,
            HashStats {
                lines: 1,
                ok: 0,
                errors: 1
            }
        );
    }

    #[test]
    fn parser_errors_name_the_field() {
        let (out, _) = run(br#"{"inference_params":{"t":1e400}}"#);
        let v: serde_json::Value = serde_json::from_str(out.trim_end()).unwrap();
        assert_eq!(v["error"]["code"], "non_finite_number");
        assert!(v["error"]["message"]
            .as_str()
            .unwrap()
            .ends_with("(field `inference_params.t`)"));
        let (out, _) = run(b"\"\xff\"\n");
        assert!(out.contains("invalid_utf8"));
    }

    #[test]
    fn long_lines_are_bounded() {
        let mut input: &[u8] = b"0123456789\nabc\n0123";
        let mut line = Vec::new();
        assert_eq!(
            read_line_bounded(&mut input, &mut line, 5).unwrap(),
            Some(true)
        );
        assert!(line.is_empty());
        assert_eq!(
            read_line_bounded(&mut input, &mut line, 5).unwrap(),
            Some(false)
        );
        assert_eq!(line, b"abc");
        line.clear();
        assert_eq!(
            read_line_bounded(&mut input, &mut line, 5).unwrap(),
            Some(false)
        );
        assert_eq!(line, b"0123");
        line.clear();
        assert_eq!(read_line_bounded(&mut input, &mut line, 5).unwrap(), None);
        // Lines spanning many reader buffers.
        let big = format!("{{\"model_id\":\"{}\"}}\n{{}}\n", "x".repeat(100_000));
        let reader = io::BufReader::with_capacity(7, big.as_bytes());
        let mut out = Vec::new();
        let stats = hash_lines(reader, &mut out).unwrap();
        assert_eq!(
            stats,
            HashStats {
                lines: 2,
                ok: 2,
                errors: 0
            }
        );
    }
}
