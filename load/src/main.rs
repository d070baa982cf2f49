use std::process::ExitCode;

use clap::Parser as _;

#[tokio::main]
async fn main() -> ExitCode {
    let plan = match load::cli::Args::try_parse()
        .map_err(load::cli::clap_error)
        .and_then(load::cli::Args::plan)
    {
        Ok(plan) => plan,
        Err(exit) => return exit.report(),
    };
    load::run(plan).await
}
