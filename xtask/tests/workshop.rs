//! docs/workshop.md never rots: every `sh` command in it runs against the Docker-less
//! runner (with the real Jaeger), every `console` line (how to start the system) is one
//! this test performs itself or a compose command that a compose implementation accepts,
//! and each exercise's stated answer is checked on Jaeger's query API, where the learner
//! reads it, by the check's own verdicts (the workshop crate), so the learner's check
//! and this test share one definition of each answer.

mod common;

use std::{collections::BTreeSet, time::Duration};

use common::{Runner, guide::LoadRun};
use workshop::{self as check, guide::Block};
use xtask::compose::{Compose, project_root};

/// What one command printed, and the trace id of its answer (from `traceresponse`).
struct Ran {
    stdout: String,
    trace_id: Option<String>,
}

async fn run(command: &str, runner: &Runner, compose: &Compose) -> Ran {
    let local = command
        .replace(
            "localhost:8080",
            &format!("127.0.0.1:{}", runner.orders_port),
        )
        .replace(
            "localhost:8081",
            &format!("127.0.0.1:{}", runner.users_port),
        );
    let local = match LoadRun::parse(&local) {
        // The built binary, with what compose's load container would have.
        Some(load) => load.local(compose, runner.orders_port, runner.otlp_port),
        // The answer's headers also go to stderr, where the test reads the trace id; what
        // the learner sees (stdout) is unchanged.
        None => match local.strip_prefix("curl ") {
            Some(rest) => format!("curl -D /dev/stderr {rest}"),
            None => local,
        },
    };
    assert!(
        local.starts_with("curl ") || local.contains("/load "),
        "workshop.md: a command this test does not know how to run: {command}"
    );
    let output = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new("sh")
            .args(["-c", &local])
            .output(),
    )
    .await
    .expect("finishes")
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && !stdout.is_empty(),
        "{command}\n{stdout}\n{stderr}"
    );
    let trace_id = stderr
        .lines()
        .find_map(|line| line.strip_prefix("traceresponse: "))
        .and_then(|value| value.trim().split('-').nth(1))
        .map(str::to_owned);
    Ran { stdout, trace_id }
}

/// How long a verdict may wait for spans still on their way (exercise 10's charts move
/// only as the connector flushes and Prometheus scrapes).
const PATIENCE: Duration = Duration::from_secs(60);

/// Checks what the guide says the learner sees for command `index` of `exercise`: in
/// Jaeger, with the check's own verdict (the workshop crate, the one definition of
/// each answer); in the terminal, here. Whether there was an answer to check.
async fn check_answer(
    exercise: u32,
    index: usize,
    command: &str,
    ran: &Ran,
    runner: &Runner,
    guide: &[(u32, Block)],
) -> bool {
    // The halves of an answer that are in the terminal, which `check` cannot read.
    match (exercise, index) {
        (4, 2) => assert!(ran.stdout.contains("invalid_id"), "{}", ran.stdout),
        (8, 0) => {
            let trace_id = ran
                .trace_id
                .clone()
                .expect("the answer carries traceresponse");
            let line = testkit::eventually(
                Duration::from_secs(30),
                || async {
                    runner.printed().into_iter().find(|line| {
                        line.starts_with("[ users]")
                            && line.contains("WARN")
                            && line.contains("trace_id=")
                    })
                },
                || {
                    format!(
                        "a users WARN line with a trace_id in {:#?}",
                        runner.printed()
                    )
                },
            )
            .await;
            let logged = line
                .split("trace_id=")
                .nth(1)
                .and_then(|rest| rest.split_whitespace().next())
                .unwrap();
            assert_eq!(logged, trace_id, "{line}");
        }
        (10, 0) => assert!(
            runner.prometheus_url.is_some(),
            "the runner started Prometheus for the Monitor tab: {:#?}",
            runner.started
        ),
        _ => {}
    }
    if check::parts(exercise).is_none_or(|parts| index >= parts) {
        return false;
    }
    let url = runner
        .jaeger_url
        .clone()
        .expect("the runner started Jaeger");
    let verdict = check::check_part(
        &runner.jaeger(),
        &url,
        guide,
        exercise,
        index,
        ran.trace_id.as_deref(),
        PATIENCE,
    )
    .await
    .unwrap();
    assert!(
        verdict.passed(),
        "exercise {exercise}, `{command}`: {}: {}\n{}",
        verdict.outcome.label(),
        verdict.says,
        verdict.facts
    );
    true
}

#[tokio::test]
async fn every_command_of_the_workshop_guide_runs() {
    let blocks = check::guide::blocks(check::guide::GUIDE).unwrap();
    let text = std::fs::read_to_string(project_root().join("docs/workshop.md")).unwrap();
    for n in 1..=check::EXERCISES {
        assert!(
            text.contains(&format!("`docker compose run --rm check {n}`"))
                || text.contains(&format!("`docker compose run --rm check {n} --part")),
            "exercise {n} ends with its check command"
        );
    }
    assert!(
        blocks
            .iter()
            .filter(|b| matches!(b, (_, Block::Sh(_))))
            .count()
            >= 8
    );

    let compose = Compose::load(&project_root()).unwrap();
    testkit::jaeger_binary();
    let mut runner = Runner::start(&[], &[]).await;
    let mut commands_run = 0;
    let mut answers_checked = BTreeSet::new();
    let mut index_in_exercise = (0, 0);
    for (exercise, block) in blocks.clone() {
        match block {
            Block::Console(lines) => {
                for line in lines {
                    match line.as_str() {
                        "docker compose up --build" => {}
                        // Exercise 15: the overlay swaps users for the Python one; the
                        // runner's Docker-less form is `--users python`.
                        "docker compose -f docker-compose.yml -f docker-compose.python.yml up -d" =>
                        {
                            assert!(project_root().join("docker-compose.python.yml").is_file());
                            let dir = runner.cluster_dir.clone();
                            let (status, _) = runner.stop().await;
                            assert!(status.success() && !dir.exists());
                            runner = Runner::start(&[], &["--users", "python"]).await;
                        }
                        // The overlay's users-python is an orphan of the plain file: this
                        // removes it, and recreates orders and orders-worker with their
                        // default USERS_URL; the runner restarted plain has the Rust users.
                        "docker compose up -d --remove-orphans" => {
                            let dir = runner.cluster_dir.clone();
                            let (status, _) = runner.stop().await;
                            assert!(status.success() && !dir.exists());
                            runner = Runner::start(&[], &[]).await;
                        }
                        // `[NAME=VALUE ...] docker compose up -d SERVICE` recreates the
                        // service with those variables (else their defaults): for the runner, a restart
                        // with it, as the guide's Docker-less form says.
                        line if line.contains("docker compose up -d ") => {
                            let (vars, service) = line.split_once("docker compose up -d ").unwrap();
                            let env: Vec<(&str, String)> = vars
                                .split_whitespace()
                                .map(|pair| {
                                    let (k, v) = pair.split_once('=').unwrap_or_else(|| {
                                        panic!("{line}: {pair} is not NAME=VALUE")
                                    });
                                    (k, v.to_owned())
                                })
                                .collect();
                            let environment = compose.service(service).map(|s| &s["environment"]);
                            for (name, _) in &env {
                                assert!(
                                    environment.is_some_and(|e| e.get(*name).is_some()),
                                    "{line}: compose's {service} has no variable {name}"
                                );
                            }
                            let dir = runner.cluster_dir.clone();
                            let (status, _) = runner.stop().await;
                            assert!(status.success() && !dir.exists());
                            runner = Runner::start(&env, &[]).await;
                        }
                        other if other.starts_with("docker compose -f ") => {
                            for file in other.split(" -f ").skip(1) {
                                let file = file.split_whitespace().next().unwrap();
                                assert!(
                                    project_root().join(file).is_file(),
                                    "{other}: {file} exists"
                                );
                            }
                        }
                        "docker compose stop users" => {
                            assert!(compose.service("users").is_some());
                            runner.stop_service("users").await;
                        }
                        // As the guide says for `cargo xtask up`: the runner restarted brings
                        // users back.
                        "docker compose start users" => {
                            let (status, _) = runner.stop().await;
                            assert!(status.success());
                            runner = Runner::start(&[], &[]).await;
                        }
                        // Restarting Jaeger is checked for real in
                        // services/orders/tests/jaeger.rs.
                        other
                            if other.starts_with("docker compose stop ")
                                || other.starts_with("docker compose start ") =>
                        {
                            let service = other.rsplit(' ').next().unwrap();
                            assert!(
                                compose.service(service).is_some(),
                                "{other}: no compose service {service}"
                            );
                        }
                        other => panic!("workshop.md: unknown console command {other:?}"),
                    }
                }
            }
            Block::Sh(lines) => {
                for line in lines {
                    if index_in_exercise.0 != exercise {
                        index_in_exercise = (exercise, 0);
                    }
                    let ran = run(&line, &runner, &compose).await;
                    if check_answer(exercise, index_in_exercise.1, &line, &ran, &runner, &blocks)
                        .await
                    {
                        answers_checked.insert(exercise);
                    }
                    index_in_exercise.1 += 1;
                    commands_run += 1;
                }
            }
        }
    }
    let dir = runner.cluster_dir.clone();
    let (status, printed) = runner.stop().await;
    assert!(
        status.success() && !dir.exists(),
        "the runner stops cleanly ({status}, cluster left: {}):\n{}",
        dir.exists(),
        printed.join("\n")
    );
    assert!(commands_run >= 12, "{commands_run} commands");
    assert_eq!(
        answers_checked,
        BTreeSet::from_iter(1..=15),
        "every exercise has a command whose answer is checked"
    );
}
