//! The soak command, shortened to seconds: both restarts happen, requests are answered, the
//! services outlive them, and the report says so.

use std::time::Duration;

mod binaries;

/// The number after `key` on the report line labelled `label`.
fn number(report: &str, label: &str, key: &str) -> u64 {
    let line = report
        .lines()
        .find(|l| l.trim_start().starts_with(label))
        .unwrap_or_else(|| panic!("no {label} line in:\n{report}"));
    let rest = line
        .split(&format!("{key} "))
        .nth(1)
        .unwrap_or_else(|| panic!("no {key} in {line:?}"));
    rest.split_whitespace().next().unwrap().parse().unwrap()
}

#[tokio::test]
async fn a_short_soak_restarts_postgres_and_the_receiver_and_the_services_survive() {
    let output = binaries::run_task(
        &[
            "soak",
            "--duration",
            "20s",
            "--rate",
            "50",
            "--outage",
            "3s",
        ],
        Duration::from_secs(90),
    )
    .await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report = stdout
        .split("soak report\n")
        .nth(1)
        .unwrap_or_else(|| {
            panic!(
                "no report; stdout:\n{stdout}\nstderr:\n{}",
                String::from_utf8_lossy(&output.stderr)
            )
        })
        .to_owned();

    assert!(number(&report, "requests", "completed") > 0, "{report}");
    assert!(number(&report, "requests", "ok") > 0, "{report}");
    for label in ["postgres", "otlp"] {
        let line = report
            .lines()
            .find(|l| l.trim_start().starts_with(label))
            .unwrap();
        assert!(line.contains("restarted: stopped at"), "{report}");
    }
    let after_restart: u64 = report
        .split("spans received after its restart: ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count after the receiver's restart:\n{report}"));
    assert!(
        after_restart > 0,
        "the exporters found the receiver again:\n{report}"
    );
    assert!(report.contains("orders: alive at the end"), "{report}");
    assert!(report.contains("users: alive at the end"), "{report}");
    // Memory in debug binaries over 20 s says little; the verdict's memory part is the
    // long run's business, so only the exit status as a whole is checked against it.
    let verdict = report.lines().find(|l| l.contains("verdict")).unwrap();
    assert_eq!(
        output.status.success(),
        verdict.contains("PASS"),
        "exit status follows the verdict:\n{report}"
    );
}
