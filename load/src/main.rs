use std::process::ExitCode;

use clap::Parser as _;

// The load shares the machine with what it measures: the less it spends on malloc, the more
// is left for the services (same choice as theirs, docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
