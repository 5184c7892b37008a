//! Tidy checks over the whole workspace, in the spirit of rust-analyzer's
//! `tidy` test: the crate dependency edges that `cargo metadata` reports are
//! exactly the ones documented in `docs/ARCHITECTURE.md`, and every Rust
//! file under `crates/`, `migration/` and `xtask/` starts with a `//!` doc
//! (generated files, marked `@generated` on their first line, excepted), and
//! the doc's error table names every variant of each layer's error enum.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The marker line above the documented edge table.
const EDGES_MARKER: &str = "<!-- tidy: crate edges -->";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace root")
        .to_path_buf()
}

type Edges = BTreeMap<String, BTreeSet<String>>;

/// Normal and build dependencies between workspace members, from `cargo metadata`.
fn actual_edges() -> Edges {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(root())
        .output()
        .expect("run cargo metadata");
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).expect("metadata JSON");
    let packages = meta["packages"].as_array().expect("packages");
    let members: BTreeSet<String> = packages
        .iter()
        .filter_map(|p| p["name"].as_str().map(str::to_owned))
        .collect();
    let mut edges = Edges::new();
    for p in packages {
        let name = p["name"].as_str().expect("package name").to_owned();
        let deps = edges.entry(name.clone()).or_default();
        for d in p["dependencies"].as_array().into_iter().flatten() {
            let dep = d["name"].as_str().unwrap_or_default();
            let dev = d["kind"].as_str() == Some("dev");
            if !dev && dep != name && members.contains(dep) {
                deps.insert(dep.to_owned());
            }
        }
    }
    edges
}

/// The table under [`EDGES_MARKER`]: `| `crate` | `dep`, `dep` |` rows.
fn documented_edges(doc: &str) -> Edges {
    let start = doc
        .find(EDGES_MARKER)
        .unwrap_or_else(|| panic!("docs/ARCHITECTURE.md has no {EDGES_MARKER} table"));
    let mut edges = Edges::new();
    for line in doc[start..].lines().skip(1) {
        let line = line.trim();
        if line.is_empty() && edges.is_empty() {
            continue;
        }
        if !line.starts_with('|') {
            break;
        }
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        let names = |cell: &str| -> Vec<String> {
            cell.split('`')
                .skip(1)
                .step_by(2)
                .map(str::to_owned)
                .collect()
        };
        let (Some(krate), Some(deps)) = (cells.first(), cells.get(1)) else {
            continue;
        };
        let Some(krate) = names(krate).into_iter().next() else {
            continue; // header and separator rows
        };
        edges.insert(krate, names(deps).into_iter().collect());
    }
    edges
}

fn table(edges: &Edges) -> String {
    let mut out = String::new();
    for (k, deps) in edges {
        let deps: Vec<String> = deps.iter().map(|d| format!("`{d}`")).collect();
        let deps = if deps.is_empty() {
            "—".to_owned()
        } else {
            deps.join(", ")
        };
        out.push_str(&format!("| `{k}` | {deps} |\n"));
    }
    out
}

#[test]
fn crate_edges_match_the_architecture_doc() {
    let doc = std::fs::read_to_string(root().join("docs/ARCHITECTURE.md")).expect("read doc");
    let documented = documented_edges(&doc);
    let actual = actual_edges();
    assert!(
        documented == actual,
        "docs/ARCHITECTURE.md's crate edges differ from `cargo metadata`.\n\
         documented:\n{}\nactual (paste under {EDGES_MARKER} after checking the new edge is intended):\n{}",
        table(&documented),
        table(&actual)
    );
}

#[test]
fn edge_table_parser_reads_rows_and_stops_after_the_table() {
    let doc = format!(
        "x\n{EDGES_MARKER}\n| crate | depends on |\n|---|---|\n| `a` | `b`, `c` |\n| `b` | — |\n\nnot | `z` | `y` |\n"
    );
    let e = documented_edges(&doc);
    assert_eq!(e.len(), 2);
    assert_eq!(e["a"], BTreeSet::from(["b".to_owned(), "c".to_owned()]));
    assert!(e["b"].is_empty());
}

/// Every `.rs` file below `dir`, `target/` directories skipped.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n == "target") {
                continue;
            }
            rust_files(&path, out);
        } else if path.extension().is_some_and(|x| x == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_module_has_a_doc_comment() {
    let root = root();
    let mut files = Vec::new();
    for dir in ["crates", "migration", "xtask"] {
        rust_files(&root.join(dir), &mut files);
    }
    assert!(files.len() > 50, "found only {} Rust files", files.len());
    let missing: Vec<String> = files
        .iter()
        .filter(|f| {
            let text = std::fs::read_to_string(f).unwrap_or_default();
            let first = text.lines().next().unwrap_or_default();
            !first.starts_with("//!") && !first.contains("@generated")
        })
        .map(|f| f.strip_prefix(&root).unwrap_or(f).display().to_string())
        .collect();
    assert!(
        missing.is_empty(),
        "these files do not start with a `//!` module doc:\n  {}",
        missing.join("\n  ")
    );
}

/// Rows of the table under `marker`: first cell's backticked names, then
/// each further cell's backticked names (header and separator rows skipped).
fn table_rows(doc: &str, marker: &str) -> Vec<Vec<Vec<String>>> {
    let start = doc
        .find(marker)
        .unwrap_or_else(|| panic!("docs/ARCHITECTURE.md has no {marker} table"));
    let mut rows = Vec::new();
    for line in doc[start..].lines().skip(1) {
        let line = line.trim();
        if !line.starts_with('|') {
            break;
        }
        let cells: Vec<Vec<String>> = line
            .trim_matches('|')
            .split('|')
            .map(|c| c.split('`').skip(1).step_by(2).map(str::to_owned).collect())
            .collect();
        if cells.first().is_some_and(|c| !c.is_empty()) {
            rows.push(cells);
        }
    }
    rows
}

/// Variant names of `pub enum name` in a Rust source (4-space indented).
fn enum_variants(src: &str, name: &str) -> BTreeSet<String> {
    let head = format!("pub enum {name} {{");
    let start = src
        .find(&head)
        .unwrap_or_else(|| panic!("no `{head}` found"));
    let mut out = BTreeSet::new();
    for line in src[start + head.len()..].lines().skip(1) {
        if line.starts_with('}') {
            break;
        }
        let Some(rest) = line.strip_prefix("    ") else {
            continue;
        };
        let ident: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if ident.starts_with(|c: char| c.is_ascii_uppercase()) {
            out.insert(ident);
        }
    }
    out
}

#[test]
fn the_error_table_names_every_variant() {
    let root = root();
    let doc = std::fs::read_to_string(root.join("docs/ARCHITECTURE.md")).expect("read doc");
    let rows = table_rows(&doc, "<!-- tidy: error variants -->");
    assert!(rows.len() >= 4, "{rows:?}");
    for row in rows {
        let (krate, ty) = (&row[0][0], &row[1][0]);
        let documented: BTreeSet<String> = row[2].iter().cloned().collect();
        let path = root.join("crates").join(krate).join("src/error.rs");
        let src =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let actual = enum_variants(&src, ty);
        assert!(
            documented == actual,
            "docs/ARCHITECTURE.md's {ty} row differs from {}:\n  missing: {:?}\n  not in the code: {:?}",
            path.display(),
            actual.difference(&documented).collect::<Vec<_>>(),
            documented.difference(&actual).collect::<Vec<_>>()
        );
    }
}

#[test]
fn enum_variants_are_read_at_the_first_indentation_only() {
    let src = "pub enum E {\n    /// doc\n    #[error(\"x\")]\n    A {\n        field: String,\n    },\n    B,\n    C(#[from] X),\n}\npub enum F {\n    Z,\n}\n";
    assert_eq!(
        enum_variants(src, "E"),
        BTreeSet::from(["A".to_owned(), "B".to_owned(), "C".to_owned()])
    );
}
