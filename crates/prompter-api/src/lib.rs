//! The `prompter` binary's library: configuration, HTTP routes and DTOs,
//! error → HTTP mapping, metrics exporter and the CLI subcommands.
//!
//! It is deliberately thin: rules live in `prompter-domain`, use cases in
//! `prompter-service`, persistence in `prompter-storage`, model calls in
//! `prompter-providers`.

pub mod app;
pub mod auth;
pub mod body;
pub mod caller;
pub mod cli;
pub mod config;
pub mod console;
pub mod dto;
pub mod error;
pub mod generation_watch;
pub mod middleware;
pub mod openapi;
pub mod provider_status;
pub mod ratelimit;
pub mod routes;
pub mod security;
pub mod site_guard;
pub mod state;
pub mod telemetry;

pub use app::{Application, StartupError};
pub use config::ServeArgs;
