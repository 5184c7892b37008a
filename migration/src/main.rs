//! `prompter-migration`: sea-orm-migration's stock CLI over Prompter's migrations.
//!
//! Reads `DATABASE_URL` (or `-u URL`). Operators normally use `cargo xtask migrate`
//! or `prompter migrate`, which also pin the hash algorithm; this binary is the
//! plain SeaORM tool (`up`, `down`, `status`, `fresh`, `refresh`, `reset`).

#[tokio::main]
async fn main() {
    sea_orm_migration::cli::run_cli(prompter_migration::Migrator).await;
}
