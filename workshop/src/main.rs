//! `check N`: the workshop's exercise checks, as the image runs them
//! (`docker compose run --rm check N`). Exit 0 on a pass, 1 otherwise, 2 when Jaeger cannot
//! be read or there is no such exercise.

use std::process::ExitCode;

use clap::Parser;

#[derive(Parser)]
#[command(
    name = "check",
    about = "Reads Jaeger and says what your attempt at a workshop exercise shows, and whether it is the answer (every exercise, one line each, without N)"
)]
struct Cli {
    #[command(flatten)]
    options: workshop::Options,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    workshop::command(Cli::parse().options, "check").await
}
