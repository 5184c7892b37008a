//! Subcommands of the `prompter` binary besides `serve`.

pub mod batch;
pub mod budgets;
pub mod db;
pub mod hash;
pub mod keys;
pub mod migrate;
pub mod transfer;
