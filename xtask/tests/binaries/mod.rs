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
