//! HTTP integration suite: each test spawns the real server on port 0 with
//! its own database (a SQLite temp file; a fresh PostgreSQL database too when
//! `PROMPTER_TEST_POSTGRES_URL` is set) and talks to it over HTTP.
//! `TEST_LOG=1` shows the servers' logs (see `harness`).

mod adopt;
mod auth;
mod batches;
mod beyond_v7;
mod budgets;
mod cli;
mod cluster;
mod console;
mod docs;
mod errors;
mod faults;
mod fuzz;
mod harness;
mod helpers;
mod operator;
mod probe_guard;
mod provider_limits;
mod releases;
mod schedules;
mod usage;
mod v7_routes;
