//! Parity with V7's canonicaliser, as restated in Python.
//!
//! `CASES` (in `reference/v7_cases.rs`) are frozen outputs of the reference
//! implementation `reference/v7_canonical.py`, which uses exactly V7's
//! primitives (`json.loads`, `json.dumps(separators=(",", ":"),
//! ensure_ascii=False)`, `float(f"{x:.4f}")`, `str.strip()`, `str.upper()`,
//! `sorted()`). To add a case, append it to `CASES` in the script and
//! regenerate:
//!
//! ```sh
//! cd crates/prompter-domain/tests/reference
//! python3 v7_canonical.py --emit-rust > v7_cases.rs
//! ```
//!
//! The `#[ignore]`d test `live_python_float_parity` compares float
//! formatting and rounding against a running `python3` on many random
//! floats: `cargo test -p prompter-domain --test python_parity -- --ignored`.

use prompter_domain::{
    canonicalize, hash_lines, ConfigHash, HashAlgorithm, Json, Limits, TemplateConfig,
    TemplateRequest,
};

mod reference {
    include!("reference/v7_cases.rs");
}
use reference::CASES;

#[test]
fn enough_cases() {
    assert!(CASES.len() >= 40, "{} cases", CASES.len());
    let mut names: Vec<&str> = CASES.iter().map(|c| c.0).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), CASES.len(), "case names must be unique");
}

#[test]
fn canonical_bytes_and_sha256_match_python() {
    let mut failures = Vec::new();
    for &(name, body, want_canonical, want_sha256) in CASES {
        let req = match TemplateRequest::parse(body.as_bytes(), &Limits::default()) {
            Ok(r) => r,
            Err(e) => {
                failures.push(format!("{name}: rejected: {e}"));
                continue;
            }
        };
        let canonical = canonicalize(&req.config);
        if canonical.as_str() != want_canonical {
            failures.push(format!(
                "{name}:\n  got  {}\n  want {want_canonical}",
                canonical.as_str()
            ));
            continue;
        }
        let sha = ConfigHash::compute(HashAlgorithm::Sha256, &canonical);
        if sha.as_str() != want_sha256 {
            failures.push(format!("{name}: sha256 {sha} != {want_sha256}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn hash_lines_matches_python_for_all_cases() {
    let input: String = CASES.iter().map(|c| format!("{}\n", c.1)).collect();
    let mut out = Vec::new();
    let stats = hash_lines(input.as_bytes(), &mut out).unwrap();
    assert_eq!(stats.lines, CASES.len() as u64);
    assert_eq!(stats.errors, 0);
    let out = String::from_utf8(out).unwrap();
    for (line, &(name, _, canonical, sha256)) in out.lines().zip(CASES) {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["canonical_json"], canonical, "{name}");
        assert_eq!(v["sha256"], sha256, "{name}");
        let blake = blake3::hash(canonical.as_bytes()).to_hex();
        assert_eq!(v["blake3"], blake.as_str(), "{name}");
    }
}

#[test]
fn the_issue_example_is_frozen() {
    let case = CASES.iter().find(|c| c.0 == "issue_example").unwrap();
    assert_eq!(
        case.3,
        "17330698efee5fa5ba6748539b2dcc2b73a60e4655a8ea8e7a98f85792ee559d"
    );
}

/// Canonical text of `inference_params: [x]` → the rounded float's repr.
fn rounded_repr(x: f64) -> String {
    let cfg = TemplateConfig {
        inference_params: Json::Array(vec![Json::Float(x)]),
        ..TemplateConfig::default()
    };
    let c = canonicalize(&cfg).into_string();
    let start = c.find("\"inference_params\":[").unwrap() + 20;
    let end = c[start..].find(']').unwrap() + start;
    c[start..end].to_owned()
}

#[test]
#[ignore = "needs python3; run with --ignored"]
fn live_python_float_parity() {
    let script = r#"
import math, random, struct
random.seed(7)
xs = []
for _ in range(60000):
    x = struct.unpack("<d", struct.pack("<Q", random.getrandbits(64)))[0]
    if x == x and abs(x) != float("inf"):
        xs.append(x)
for _ in range(60000):
    xs.append(round(random.uniform(-1000, 1000), random.randint(0, 9)))
for _ in range(30000):
    xs.append(random.randint(-10**6, 10**6) / random.choice([2, 4, 8, 16, 20000, 40000, 80000, 10**5, 10**6]))
# few fractional bits: where shortest-digit ties live
for _ in range(80000):
    xs.append(math.ldexp(random.getrandbits(random.randint(1, 53)) | 1, random.randint(-30, 70)))
for e in range(-330, 310):
    xs.append(1.5 * 10.0 ** e if e < 308 else 1.0e308)
for x in xs:
    print(struct.pack("<d", x).hex(), repr(x), repr(float(f"{x:.4f}")))
"#;
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .output()
        .expect("python3");
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let mut n = 0;
    for line in text.lines() {
        let mut parts = line.split(' ');
        let hex = parts.next().unwrap();
        let mut bytes = [0u8; 8];
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap();
        }
        let x = f64::from_le_bytes(bytes);
        let (repr, rounded) = (parts.next().unwrap(), parts.next().unwrap());
        assert_eq!(Json::Float(x).to_string(), repr, "repr of {x:e}");
        assert_eq!(rounded_repr(x), rounded, "rounding of {x:e}");
        n += 1;
    }
    assert!(n > 100_000, "{n}");
}
