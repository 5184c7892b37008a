//! Subcommands of the `prompter` binary besides `serve`.

pub mod hash;
pub mod migrate;
