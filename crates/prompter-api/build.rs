//! Build script: `PROMPTER_GIT_SHA` (shown by `GET /version` as
//! `git_sha`) is the commit of the checkout being built, read
//! with `git rev-parse HEAD`. A build outside a git checkout (a source
//! tarball) or without git leaves it unset, and the server says "unknown";
//! a packager may set `PROMPTER_GIT_SHA` in the environment instead.

use std::path::Path;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()?;
    let s = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (out.status.success() && !s.is_empty()).then_some(s)
}

fn main() {
    println!("cargo:rerun-if-env-changed=PROMPTER_GIT_SHA");
    if std::env::var_os("PROMPTER_GIT_SHA").is_some() {
        return; // given by the packager; `option_env!` reads it as is
    }
    // A checkout of this repository: this file is tracked. (A tarball
    // unpacked inside some other repository is not, and must not take
    // that repository's commit.)
    if git(&["ls-files", "--error-unmatch", "build.rs"]).is_none() {
        return; // not a checkout (e.g. a tarball): "unknown"
    }
    let Some(sha) = git(&["rev-parse", "HEAD"]) else {
        return;
    };
    // Rebuild when HEAD moves: HEAD itself, the branch it names, packed refs.
    for path in [
        git(&["rev-parse", "--git-path", "HEAD"]),
        git(&["symbolic-ref", "-q", "HEAD"]).and_then(|r| git(&["rev-parse", "--git-path", &r])),
        git(&["rev-parse", "--git-path", "packed-refs"]),
    ]
    .into_iter()
    .flatten()
    {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(&path);
        if p.exists() {
            println!("cargo:rerun-if-changed={}", p.display());
        }
    }
    println!("cargo:rustc-env=PROMPTER_GIT_SHA={sha}");
}
