//! `cargo xtask bench storage` (filled in below).

use crate::TaskResult;

/// Options of `bench storage`.
#[derive(Debug, clap::Args)]
pub struct Options {}

/// Runs the storage benchmark.
pub fn run(_opts: Options) -> TaskResult {
    Err("bench storage: not implemented yet".into())
}
