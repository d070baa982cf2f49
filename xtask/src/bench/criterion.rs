//! The Criterion micro-benchmarks of the telemetry helpers (`cargo bench -p telemetry`),
//! run and read back for the report: what each helper costs in isolation.

use super::*;

/// Runs the Criterion benchmark of the telemetry helpers and reads each benchmark's
/// median back from the estimates Criterion writes, in nanoseconds.
pub(super) async fn run(root: &Path, target_dir: &Path) -> Result<Vec<(String, f64)>, String> {
    println!("bench: cargo bench -p telemetry --bench telemetry");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let status = tokio::process::Command::new(cargo)
        .current_dir(root)
        .args([
            "bench",
            "--quiet",
            "-p",
            "telemetry",
            "--bench",
            "telemetry",
        ])
        .stdout(Stdio::null())
        .status()
        .await
        .map_err(|e| format!("run cargo bench: {e}"))?;
    if !status.success() {
        return Err("cargo bench -p telemetry failed".to_owned());
    }
    let mut medians = Vec::new();
    let dir = target_dir.join("criterion");
    collect_estimates(&dir, &dir, &mut medians)?;
    medians.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(medians)
}

fn collect_estimates(base: &Path, dir: &Path, out: &mut Vec<(String, f64)>) -> Result<(), String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for entry in entries.flatten() {
        let path = entry.path();
        if !path.is_dir() || path.file_name().is_some_and(|n| n == "report") {
            continue;
        }
        let estimates = path.join("new").join("estimates.json");
        if estimates.is_file() {
            let text = std::fs::read_to_string(&estimates)
                .map_err(|e| format!("{}: {e}", estimates.display()))?;
            let json: Value =
                serde_json::from_str(&text).map_err(|e| format!("{}: {e}", estimates.display()))?;
            if let Some(ns) = json["median"]["point_estimate"].as_f64() {
                let name = path
                    .strip_prefix(base)
                    .map(|p| p.to_string_lossy().into_owned())
                    .unwrap_or_default();
                out.push((name, ns));
            }
        } else {
            collect_estimates(base, &path, out)?;
        }
    }
    Ok(())
}
