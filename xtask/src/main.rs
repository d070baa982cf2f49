use std::{io::Write as _, process::ExitCode};

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "Project tasks")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Postgres, users, orders and orders-worker without Docker, with compose's environment;
    /// Ctrl-C stops all.
    Up(xtask::up::Options),
    /// Long steady load on both services with Postgres and the OTLP receiver restarted once
    /// each; reports requests, errors, spans and memory. Not part of the test run.
    Soak(xtask::soak::Options),
    /// CPU per request with tracing on, sampled and off; the highest steady rate; latency,
    /// memory and spans at 50% and 80% of it. Writes docs/benchmarks.md. Not a test.
    Bench(xtask::bench::Options),
    /// Reads Jaeger and says what your attempt at a workshop exercise shows, and whether it
    /// is the answer (every exercise, one line each, without N). Exit 0 on a pass, 1
    /// otherwise, 2 when Jaeger cannot be read.
    Check(workshop::Options),
}

#[tokio::main]
async fn main() -> ExitCode {
    match Cli::parse().task {
        Task::Up(options) => match xtask::up::run(options).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                // Not eprintln!: a closed stderr (`2>&1 | tee`, tee ended) is no reason to
                // panic, and the runner has stopped everything by now.
                let _ = writeln!(std::io::stderr(), "xtask up: {error}");
                ExitCode::FAILURE
            }
        },
        Task::Bench(options) => match xtask::bench::run(options).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("xtask bench: {error}");
                ExitCode::FAILURE
            }
        },
        Task::Check(options) => workshop::command(options, "xtask check").await,
        Task::Soak(options) => match xtask::soak::run(options).await {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::FAILURE,
            Err(error) => {
                eprintln!("xtask soak: {error}");
                ExitCode::FAILURE
            }
        },
    }
}
