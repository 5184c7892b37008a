//! `prompter`: the Prompter server and its command-line tools.

use clap::{CommandFactory, Parser, Subcommand};
use prompter_api::cli::migrate::MigrateArgs;
use prompter_api::cli::transfer::{ExportArgs, ImportArgs};
use prompter_api::{telemetry, Application, ServeArgs};
use std::process::ExitCode;

/// Prompter: deduplicated, provider-versioned LLM prompt templates.
#[derive(Debug, Parser)]
#[command(
    name = "prompter",
    version,
    about,
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// `serve` flags, accepted without the subcommand too.
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once per process
enum Command {
    /// Run the HTTP API (the default).
    Serve(ServeArgs),
    /// Canonicalise and hash create-template bodies: JSON Lines on stdin, one answer line each on stdout.
    Hash,
    /// Database migrations.
    Migrate(MigrateArgs),
    /// API keys: create (printed once), list, revoke.
    Keys(prompter_api::cli::keys::KeysArgs),
    /// Tracking batches on a running server: `batch run … --follow`, `batch status ID`.
    Batch(prompter_api::cli::batch::BatchArgs),
    /// Monthly spend budgets per org or workspace: set, list, delete (operator only).
    Budgets(prompter_api::cli::budgets::BudgetsArgs),
    /// Write a workspace's templates as JSON Lines of create bodies to stdout.
    Export(ExportArgs),
    /// Create templates from a JSON Lines file (content-addressed: repeats create nothing).
    Import(ImportArgs),
    /// Print a shell completion script, e.g. `prompter completions bash > /etc/bash_completion.d/prompter`.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Hash) => match prompter_api::cli::hash::run() {
            Ok(stats) if stats.errors == 0 => ExitCode::SUCCESS,
            Ok(stats) => {
                eprintln!(
                    "prompter hash: {} of {} line(s) failed (each has an \"error\" answer line)",
                    stats.errors, stats.lines
                );
                ExitCode::FAILURE
            }
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("prompter hash: {e}");
                ExitCode::FAILURE
            }
        },
        Some(Command::Migrate(args)) => runtime().block_on(async {
            match prompter_api::cli::migrate::run(args).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("prompter migrate: {e}");
                    ExitCode::FAILURE
                }
            }
        }),
        Some(Command::Keys(args)) => runtime().block_on(async {
            match prompter_api::cli::keys::run(args).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("prompter keys: {e}");
                    ExitCode::FAILURE
                }
            }
        }),
        Some(Command::Batch(args)) => runtime().block_on(async {
            match prompter_api::cli::batch::run(args).await {
                Ok(true) => ExitCode::SUCCESS,
                Ok(false) => ExitCode::FAILURE,
                Err(e) => {
                    eprintln!("prompter batch: {e}");
                    ExitCode::FAILURE
                }
            }
        }),
        Some(Command::Budgets(args)) => runtime().block_on(async {
            match prompter_api::cli::budgets::run(args).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("prompter budgets: {e}");
                    ExitCode::FAILURE
                }
            }
        }),
        Some(Command::Export(args)) => runtime().block_on(async {
            match prompter_api::cli::transfer::export(args).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("prompter export: {e}");
                    ExitCode::FAILURE
                }
            }
        }),
        Some(Command::Import(args)) => runtime().block_on(async {
            match prompter_api::cli::transfer::import(args).await {
                Ok(stats) if stats.rejected == 0 => ExitCode::SUCCESS,
                Ok(_) => ExitCode::FAILURE,
                Err(e) => {
                    eprintln!("prompter import: {e}");
                    ExitCode::FAILURE
                }
            }
        }),
        Some(Command::Completions { shell }) => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "prompter",
                &mut std::io::stdout(),
            );
            ExitCode::SUCCESS
        }
        Some(Command::Serve(args)) => serve(args),
        None => serve(cli.serve),
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("cannot start the tokio runtime")
}

fn serve(args: ServeArgs) -> ExitCode {
    let tracing_guard =
        telemetry::init_tracing(args.log_format, &args.metrics_service, &args.metrics_env);
    runtime().block_on(async move {
        let app = match Application::build(args).await {
            Ok(app) => app,
            Err(e) => {
                // Once, through the log (which writes to stderr).
                tracing::error!("refusing to start: {e}");
                return ExitCode::FAILURE;
            }
        };
        let stopped = app.run_until_stopped().await;
        tracing_guard.shutdown();
        match stopped {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("prompter: server error: {e}");
                ExitCode::FAILURE
            }
        }
    })
}
