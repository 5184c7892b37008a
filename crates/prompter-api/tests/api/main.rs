//! HTTP integration suite: each test spawns the real server on port 0 with
//! its own database (a SQLite temp file; a fresh PostgreSQL database too when
//! `PROMPTER_TEST_POSTGRES_URL` is set) and talks to it over HTTP.

mod adopt;
mod auth;
mod beyond_v7;
mod cli;
mod docs;
mod errors;
mod faults;
mod fuzz;
mod helpers;
mod probe_guard;
mod releases;
mod v7_routes;
