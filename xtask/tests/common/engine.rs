//! docker-compose.yml on the real engine, as the tests that run it (compose_up.rs, kit.rs)
//! drive it: as a project of their own, bounded, with the learner's curl.

use std::process::{Command, Output};

use xtask::compose::project_root;

/// The tests' compose project: a learner's own stack keeps its data. Both publish the same
/// ports, so only one of them can be up at a time.
pub const PROJECT: &str = "tracing-workshop-test";
/// Where compose publishes them (`PUBLISH_ADDRESS` in .env).
pub const ORDERS: &str = "http://127.0.0.1:8080";
pub const JAEGER: &str = "http://127.0.0.1:16686";

/// `docker compose` in the project's root, as the tests' project, bounded: the first build
/// takes about 10 minutes on 2 cores, and a hung engine must not hang the test run.
pub fn compose(files: &[&str], args: &[&str]) -> Command {
    let mut command = Command::new("timeout");
    command
        .args(["--kill-after=10", "1800", "docker", "compose"])
        .args(files.iter().flat_map(|f| ["-f", f]))
        .args(args)
        .current_dir(project_root())
        .env("COMPOSE_PROJECT_NAME", PROJECT);
    command
}

pub fn succeed(mut command: Command) -> Output {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("{command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed ({}):\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

pub fn docker(args: &[&str]) -> String {
    let mut command = Command::new("docker");
    command.args(args);
    String::from_utf8_lossy(&succeed(command).stdout).into_owned()
}

/// Fails with what to do when no engine answers.
pub fn require_engine() {
    let engine = Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .output();
    assert!(
        engine.as_ref().is_ok_and(|o| o.status.success()),
        "no container engine answers `docker info`: .ci/install-docker installs Debian's \
         docker.io and starts dockerd ({engine:?})"
    );
}

/// The stack, taken down with its volume however the test ends.
pub struct Stack;

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = compose(&[], &["down", "-v", "--remove-orphans", "--timeout", "5"]).output();
    }
}

/// The curl a learner types (`-i`): the status and the headers, lower-cased.
pub fn curl(args: &[&str]) -> (u16, Vec<(String, String)>) {
    let mut command = Command::new("curl");
    command.args(["-s", "-i", "--max-time", "10"]).args(args);
    let output = succeed(command);
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let mut lines = text.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("an HTTP answer: {text}"));
    let headers = lines
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    (status, headers)
}

/// The trace id of an answer's `traceresponse` (`00-<trace id>-<span id>-<flags>`).
pub fn trace_id(headers: &[(String, String)]) -> String {
    let value = headers
        .iter()
        .find(|(k, _)| k == "traceresponse")
        .map(|(_, v)| v)
        .unwrap_or_else(|| panic!("a traceresponse header: {headers:?}"));
    value.split('-').nth(1).unwrap().to_owned()
}

/// `docker compose run --rm check ARGS`, which must exit with `code`: what it printed.
pub fn run_check(files: &[&str], args: &[&str], code: i32) -> String {
    let mut command = compose(files, &["run", "--rm", "check"]);
    command.args(args);
    let output = command.output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        output.status.code(),
        Some(code),
        "docker compose run --rm check {args:?}:\n{said}"
    );
    said
}

/// A line of the guide, run as the learner's shell runs it.
pub fn sh(line: &str) -> Command {
    let mut command = Command::new("sh");
    command.args(["-c", line]);
    command
}
