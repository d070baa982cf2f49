//! `cargo xtask bench --instructions` with debug binaries at a gentle rate. A test binary of
//! its own: callgrind keeps a core busy, and the timed short bench (tests/bench.rs) must not
//! share the machine with it (test binaries run one after another, a binary's tests at once).

use std::time::Duration;

mod binaries;

/// The numbers a change can be judged by on a noisy machine: every variant counted under
/// callgrind, per answered request, with tracing costing instructions (at any rate of
/// sampling, exporting every span costs more than exporting none).
#[tokio::test]
async fn instructions_per_request_are_counted_for_every_variant_under_callgrind() {
    let output = binaries::run_task(
        &[
            "bench",
            "--instructions",
            "--instructions-rate",
            "10",
            "--instructions-duration",
            "2s",
            "--service-env",
            "OTEL_BSP_SCHEDULE_DELAY=500",
        ],
        Duration::from_secs(300),
    )
    .await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "(valgrind must be installed)\n{stdout}\n{stderr}"
    );
    let both = |variant: &str| -> f64 {
        let row: Vec<&str> = stdout
            .lines()
            .find(|l| l.starts_with(&format!("| {variant} |")))
            .unwrap_or_else(|| panic!("no row for {variant}:\n{stdout}"))
            .trim_matches('|')
            .split('|')
            .map(str::trim)
            .collect();
        assert!(row[1].parse::<u64>().unwrap() >= 15, "requests: {row:?}");
        row[4].trim_end_matches('k').parse().unwrap()
    };
    let (full, tenth, none) = (
        both("export 100%"),
        both("export 10%"),
        both("SDK disabled"),
    );
    assert!(none > 0.0, "{stdout}");
    assert!(full > none && tenth > none, "{stdout}");
}
