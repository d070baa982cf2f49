//! `cargo xtask check`, the built binary, against the runner's real Jaeger: the guide's
//! own commands pass, a deliberately wrong attempt fails with its explanation, no attempt
//! yet says what to send, and an unreachable Jaeger is one line and exit 2.

mod common;

use std::{process::Output, time::Duration};

use common::{
    Runner,
    guide::{LoadRun, command as guide_command},
};
use serde_json::Value;

/// `xtask check args...` against `jaeger`.
async fn check(jaeger: &str, args: &[&str]) -> Output {
    tokio::time::timeout(
        Duration::from_secs(120),
        tokio::process::Command::new(env!("CARGO_BIN_EXE_xtask"))
            .arg("check")
            .args(args)
            .env("JAEGER_URL", jaeger)
            .output(),
    )
    .await
    .expect("check finishes")
    .unwrap()
}

fn shown(output: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Runs a curl command of the guide against the runner's orders.
async fn send(runner: &Runner, command: &str) {
    assert!(command.starts_with("curl "), "{command}");
    let local = command.replace(
        "localhost:8080",
        &format!("127.0.0.1:{}", runner.orders_port),
    );
    let output = tokio::process::Command::new("sh")
        .args(["-c", &local])
        .output()
        .await
        .unwrap();
    assert!(output.status.success(), "{local}: {}", shown(&output));
}

/// Asserts `check N` exited with `code` and said `says`.
async fn expect(jaeger: &str, args: &[&str], code: i32, says: &[&str]) -> Output {
    let output = check(jaeger, args).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.code() == Some(code) && says.iter().all(|s| stdout.contains(s)),
        "check {args:?}: expected exit {code} saying {says:?}; got {}",
        shown(&output)
    );
    output
}

#[tokio::test]
async fn attempts_pass_fail_or_are_missing_as_jaeger_shows_them() {
    testkit::jaeger_binary();
    let runner = Runner::start(&[], &[]).await;
    let jaeger = runner
        .jaeger_url
        .clone()
        .expect("the runner started Jaeger");

    // Nothing sent yet: it says what to send, quoting the guide.
    expect(
        &jaeger,
        &["1", "--wait", "1s"],
        1,
        &["nothing yet", "send `curl -i localhost:8080/orders/1`"],
    )
    .await;

    // The guide's own commands, then their checks.
    send(&runner, &guide_command(1, 0)).await;
    expect(&jaeger, &["1"], 0, &["pass", "seven spans in two services"]).await;
    send(&runner, &guide_command(2, 0)).await;
    expect(
        &jaeger,
        &["2"],
        0,
        &[
            "the orders server span's parent is 00f067aa0ba902b7, the span you invented; it is \
           not in the trace, which is why Jaeger warns about an invalid parent",
        ],
    )
    .await;
    send(&runner, &guide_command(3, 0)).await;
    let json = expect(&jaeger, &["3", "--json"], 0, &[]).await;
    let document: Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(document["outcome"], "pass", "{document}");
    let part = &document["parts"][0];
    assert!(
        part["says"].as_str().unwrap().contains("demo-delay"),
        "{document}"
    );
    assert_eq!(part["facts"]["services"][1], "users", "{document}");

    // Exercise 6 with propagation left on: users continues orders' trace.
    send(&runner, &guide_command(6, 0)).await;
    expect(
        &jaeger,
        &["6", "--wait", "3s"],
        1,
        &[
            "fail",
            "users continued orders' trace, so propagation is on",
        ],
    )
    .await;

    // Exercise 7 without the sampler ratio: the guide's run of load, its sampler variables
    // left out, keeps every one of its 200 traces.
    let command = guide_command(7, 0);
    let run = LoadRun::parse(&command).expect("exercise 7 runs compose's load");
    let load = std::process::Command::new(testkit::binary("load"))
        .args([
            "--target",
            &format!("http://127.0.0.1:{}", runner.orders_port),
        ])
        .args(&run.args)
        .env(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            format!("http://127.0.0.1:{}", runner.otlp_port),
        )
        .env_remove("OTEL_TRACES_SAMPLER")
        .env_remove("OTEL_TRACES_SAMPLER_ARG")
        .output()
        .unwrap();
    assert!(load.status.success(), "{}", shown(&load));
    expect(
        &jaeger,
        &["7", "--wait", "5s"],
        1,
        &["fail", "its sampler kept about all of the 200 requests"],
    )
    .await;

    // Every exercise, one line each: 1, 2 and 3 pass, the rest do not.
    let all = check(&jaeger, &[]).await;
    let stdout = String::from_utf8_lossy(&all.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(all.status.code(), Some(1), "{}", shown(&all));
    assert_eq!(lines.len(), 15, "{}", shown(&all));
    for (n, line) in lines.iter().enumerate() {
        let passed = line.contains(": pass: ");
        assert_eq!(passed, n < 3, "exercise {}: {line}", n + 1);
    }

    // Into a pipe nobody reads (`check | head -0`): its verdict's exit code, no panic.
    let mut closed = std::process::Command::new(env!("CARGO_BIN_EXE_xtask"))
        .arg("check")
        .env("JAEGER_URL", &jaeger)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(closed.stdout.take());
    let output = closed.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", shown(&output));
    assert!(output.stderr.is_empty(), "{}", shown(&output));

    let dir = runner.cluster_dir.clone();
    let (status, _) = runner.stop().await;
    assert!(status.success() && !dir.exists());
}

#[tokio::test]
async fn an_unreachable_jaeger_is_one_line_and_exit_2() {
    // A port leased to this process and bound by nobody: the connection is refused.
    let closed = format!("http://127.0.0.1:{}", testkit::free_port());
    let output = check(&closed, &["1"]).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{}", shown(&output));
    assert!(output.stdout.is_empty(), "{}", shown(&output));
    assert_eq!(stderr.lines().count(), 1, "{}", shown(&output));
    assert!(
        stderr.starts_with(&format!("xtask check: cannot reach Jaeger at {closed}")),
        "{}",
        shown(&output)
    );
}
