use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "Project tasks")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Postgres, users and orders without Docker, with compose's environment; Ctrl-C stops all.
    Up(xtask::up::Options),
}

#[tokio::main]
async fn main() -> ExitCode {
    match Cli::parse().task {
        Task::Up(options) => match xtask::up::run(options).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("xtask up: {error}");
                ExitCode::FAILURE
            }
        },
    }
}
