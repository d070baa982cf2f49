//! The binaries the tests of the long-running tasks (soak, bench) hand to `--bin-dir`.

use std::path::PathBuf;

use tokio::process::Command;

/// Debug binaries of orders, users and load, built before the clock starts: the task itself
/// is what must be quick. Their folder, for `--bin-dir`.
pub async fn debug_binaries() -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let built = Command::new(cargo)
        .args([
            "build", "--quiet", "-p", "orders", "-p", "users", "-p", "load",
        ])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .status()
        .await
        .unwrap();
    assert!(built.success());
    std::path::Path::new(env!("CARGO_BIN_EXE_xtask"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// `xtask ARGS --bin-dir <the debug binaries>`, with neither the caller's `DATABASE_URL`
/// (a task starts its own cluster) nor its collector, ended within `limit`.
pub async fn run_task(args: &[&str], limit: std::time::Duration) -> std::process::Output {
    let bin_dir = debug_binaries().await;
    tokio::time::timeout(
        limit,
        Command::new(env!("CARGO_BIN_EXE_xtask"))
            .args(args)
            .arg("--bin-dir")
            .arg(&bin_dir)
            .env_remove("DATABASE_URL")
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .unwrap_or_else(|_| panic!("xtask {} did not end within {limit:?}", args.join(" ")))
    .unwrap()
}
