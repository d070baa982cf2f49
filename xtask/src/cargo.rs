//! The project's binaries, built with cargo into its target folder.

use std::path::{Path, PathBuf};

use tokio::process::Command;

/// Cargo's target folder: `CARGO_TARGET_DIR` (relative to the root) or `target`.
pub(crate) fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(|dir| root.join(dir))
        .unwrap_or_else(|| root.join("target"))
}

pub(crate) async fn build(root: &Path, release: bool) -> Result<(), String> {
    // A package's every binary: `-p orders` builds orders and orders-worker.
    build_packages(root, release, &["orders", "users", "load"]).await
}

pub(crate) async fn build_packages(
    root: &Path,
    release: bool,
    packages: &[&str],
) -> Result<(), String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut command = Command::new(cargo);
    command.current_dir(root).args(["build", "--quiet"]);
    for package in packages {
        command.args(["-p", package]);
    }
    if release {
        command.arg("--release");
    }
    let status = command
        .status()
        .await
        .map_err(|e| format!("run cargo build: {e}"))?;
    status
        .success()
        .then_some(())
        .ok_or_else(|| "cargo build failed".to_owned())
}
