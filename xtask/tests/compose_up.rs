//! The learner's first command, for real: the README's `docker compose up --build` against
//! a real container engine, then what a participant checks. Every service healthy; `curl -i
//! localhost:8080/orders/1` answered with `traceresponse`; that trace in Jaeger through the
//! published port, the tree the README draws; a trace of `load` and one of a new order
//! through orders-worker; Prometheus with the spanmetrics and the Monitor tab's API; no
//! `jaeger` service of Jaeger's own; `cargo xtask check 1` passing against this Jaeger; the
//! tail-sampling overlay as docs/workshop.md runs it; a stop that kills nothing; and `down
//! -v` leaving nothing behind.
//!
//! Needs an engine and the compose plugin (`.ci/install-docker`) and the images compose
//! names: pulled where a registry answers, local stand-ins otherwise
//! (`workbench/stand-in-images/build`, which this test runs and whose verdict it prints).
//! It runs as its own project (`COMPOSE_PROJECT_NAME`), so a learner's own stack keeps its
//! data; both publish the same ports, so only one of them can be up at a time.

mod common;

use std::{
    process::Command,
    time::{Duration, Instant},
};

use common::{
    engine::{
        JAEGER, ORDERS, PROJECT, Stack, compose, curl, docker, require_engine, run_check, sh,
        succeed, trace_id,
    },
    guide::command as guide_command,
    tail::{Traffic, check_what_tail_sampling_keeps},
};
use serde_json::Value;
use testkit::local_jaeger::{Query, Trace, query::Search};
use xtask::compose::project_root;

const TAIL_SAMPLING: &[&str] = &["docker-compose.yml", "docker-compose.tail-sampling.yml"];
const PROMETHEUS: &str = "http://127.0.0.1:9090";
const OTLP: &str = "http://127.0.0.1:4317";

/// The tree README.md draws under its title: (service, depth, name, kind) per line.
fn readme_tree() -> Vec<(String, usize, String, String)> {
    let readme = std::fs::read_to_string(project_root().join("README.md")).unwrap();
    let block = readme
        .split("```\n")
        .nth(1)
        .expect("README opens with the trace's timeline");
    block
        .lines()
        .map(|line| {
            let (service, rest) = line.split_once(' ').unwrap();
            let indent = rest.len() - rest.trim_start().len();
            let (name, bars_on) = rest.trim_start().split_once('█').unwrap();
            let kind = bars_on.trim_start_matches(['█', ' ']);
            let kind = kind.split_whitespace().next().unwrap();
            // The names start in one column for the root, two more per level.
            let depth = (service.len() + 1 + indent - "orders  ".len()) / 2;
            (
                service.to_owned(),
                depth,
                name.trim().to_owned(),
                kind.to_owned(),
            )
        })
        .collect()
}

/// The same of a trace from Jaeger, depth first, children in start order.
fn tree(trace: &Trace) -> Vec<(String, usize, String, String)> {
    fn visit(
        trace: &Trace,
        id: Option<&str>,
        depth: usize,
        out: &mut Vec<(String, usize, String, String)>,
    ) {
        let mut children: Vec<_> = trace
            .spans()
            .into_iter()
            .filter(|s| s.parent() == id)
            .collect();
        children.sort_by_key(|s| s.start_us());
        for span in children {
            out.push((
                span.service.to_owned(),
                depth,
                span.name().to_owned(),
                span.kind().to_owned(),
            ));
            visit(trace, Some(span.span_id()), depth + 1, out);
        }
    }
    let mut out = Vec::new();
    visit(trace, None, 0, &mut out);
    out
}

/// `docker compose ps` as JSON, one object per container.
fn containers(files: &[&str]) -> Vec<Value> {
    let output = succeed(compose(files, &["ps", "--all", "--format", "json"]));
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// `docker stats`' `61.25MiB` (or `kB`, `GiB`) in MiB.
fn mebibytes(usage: &str) -> f64 {
    let units = [
        ("KiB", 1.0 / 1024.0),
        ("kB", 1000.0 / 1_048_576.0),
        ("MiB", 1.0),
        ("MB", 1_000_000.0 / 1_048_576.0),
        ("GiB", 1024.0),
        ("GB", 1e9 / 1_048_576.0),
        ("B", 1.0 / 1_048_576.0),
    ];
    units
        .iter()
        .find_map(|(unit, factor)| {
            Some(usage.trim().strip_suffix(unit)?.parse::<f64>().ok()? * factor)
        })
        .unwrap_or_else(|| panic!("a memory figure: {usage:?}"))
}

fn images_of_the_machine() -> String {
    let script = project_root().join("workbench/stand-in-images/build");
    let mut command = Command::new(&script);
    command.current_dir(project_root());
    String::from_utf8_lossy(&succeed(command).stdout).into_owned()
}

#[tokio::test]
async fn docker_compose_up_runs_what_the_readme_promises() {
    require_engine();
    let version = docker(&["compose", "version", "--short"]);
    eprintln!(
        "engine {}, compose {}",
        docker(&["info", "--format", "{{.ServerVersion}}"]).trim(),
        version.trim()
    );
    // Which images are upstream's and which stand-ins, said once per run.
    eprintln!("images:\n{}", images_of_the_machine());

    let _stack = Stack;
    drop(compose(&[], &["down", "-v", "--remove-orphans"]).output());
    let cold = Command::new("docker")
        .args(["image", "inspect", "tracing-workshop:dev"])
        .output()
        .is_ok_and(|o| !o.status.success());
    let dangling_before = docker(&["images", "-q", "-f", "dangling=true"])
        .lines()
        .count();

    // The README's command; `--wait` returns once every service is healthy.
    let started = Instant::now();
    succeed(compose(&[], &["up", "--build", "--wait", "--detach"]));
    let up_took = started.elapsed();
    for container in containers(&[]) {
        let service = container["Service"].as_str().unwrap();
        assert_eq!(container["State"], "running", "{service}: {container}");
        if service != "load" {
            assert_eq!(container["Health"], "healthy", "{service}: {container}");
        }
    }
    // One build for the four services that run our image: no dangling copies left (a
    // rebuild may untag the previous image, once).
    let dangling = docker(&["images", "-q", "-f", "dangling=true"])
        .lines()
        .count();
    assert!(
        dangling <= dangling_before + 1,
        "the build left {} dangling images",
        dangling - dangling_before
    );

    // curl -i localhost:8080/orders/1, and that trace in Jaeger: the README's tree.
    let (status, headers) = curl(&["localhost:8080/orders/1"]);
    assert_eq!(status, 200, "{headers:?}");
    let id = trace_id(&headers);
    let jaeger = Query::new(JAEGER);
    let trace = jaeger.trace_of(&id, 7).await.unwrap();
    let first_trace = started.elapsed();
    assert_eq!(trace.spans.len(), 7, "{}", trace.outline());
    assert_eq!(trace.services(), ["orders", "users"]);
    assert_eq!(tree(&trace), readme_tree(), "{}", trace.outline());
    // The learner's checks, from the image, on compose's network: exercise 1 with the
    // curl's trace, then 2 and 3 as the guide sends them; 6 with propagation on fails, in
    // the workshop's words.
    let said = run_check(&[], &["1", "--trace", &id], 0);
    assert!(said.contains("exercise  1: pass: "), "{said}");
    for exercise in [2, 3] {
        let sent = guide_command(exercise, 0);
        succeed(sh(&sent));
        let said = run_check(&[], &[&exercise.to_string()], 0);
        assert!(said.contains(": pass: "), "{sent}: {said}");
    }
    succeed(sh(&guide_command(6, 0)));
    let said = run_check(&[], &["6", "--wait", "3s"], 1);
    assert!(
        said.contains("users continued orders' trace, so propagation is on"),
        "{said}"
    );

    // More load from the image (`docker compose run --rm load`): its traces reach Jaeger,
    // rooted in load, through orders and users. Compose's own load sends 2 a second; this
    // run's 40 requests are what makes 40 or more in its window.
    let window = std::time::SystemTime::now();
    let output = succeed(compose(
        &[],
        &["run", "--rm", "load", "--rate", "20", "--duration", "2s"],
    ));
    let report = String::from_utf8_lossy(&output.stdout).into_owned();
    let since = window
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64;
    let burst = testkit::eventually(
        Duration::from_secs(60),
        || async {
            let traces = jaeger.search(&Search::recent("load")).await.ok()?;
            let runs: Vec<Trace> = traces
                .into_iter()
                .filter(|t| t.services() == ["load", "orders", "users"])
                .filter(|t| t.spans.iter().map(|s| s.start_time).min() >= Some(since))
                .collect();
            (runs.len() >= 40).then_some(runs)
        },
        || format!("40 traces of the run's load in Jaeger; it said:\n{report}"),
    )
    .await;
    eprintln!(
        "docker compose run --rm load --rate 20 --duration 2s: {} traces",
        burst.len()
    );

    // load's traces: its client span above orders and users.
    let load = testkit::eventually(
        Duration::from_secs(60),
        || async {
            let traces = jaeger.search(&Search::recent("load")).await.ok()?;
            traces
                .into_iter()
                .find(|t| t.services() == ["load", "orders", "users"])
        },
        || "a trace of load in three services".to_owned(),
    )
    .await;
    assert!(load.spans.len() >= 8, "{}", load.outline());

    // A new order: its trace goes on through the outbox in orders-worker.
    let (status, headers) = curl(&[
        "-H",
        "content-type: application/json",
        "-d",
        r#"{"user_id": 1, "item": "tea", "quantity": 2}"#,
        "localhost:8080/orders",
    ]);
    assert_eq!(status, 201, "{headers:?}");
    let order = jaeger
        .settled_trace(
            &trace_id(&headers),
            // Each service's spans arrive in its own batches, a second apart: wait for the
            // spans that end last in each (the server and consumer spans end after their
            // children), users called twice (by orders, then by the worker).
            |t| {
                !t.find("orders", "POST /orders").is_empty()
                    && !t
                        .find("orders-worker", "process order-confirmations")
                        .is_empty()
                    && t.find("users", "GET /users/{user_id}").len() == 2
            },
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    assert_eq!(
        order.services(),
        ["orders", "orders-worker", "users"],
        "{}",
        order.outline()
    );

    // The Monitor tab: Prometheus scraped Jaeger's spanmetrics, and Jaeger reads them back.
    let http = reqwest::Client::new();
    testkit::eventually(
        Duration::from_secs(90),
        || async {
            let url = url::Url::parse_with_params(
                &format!("{PROMETHEUS}/api/v1/query"),
                [(
                    "query",
                    "traces_span_metrics_calls_total{service_name=\"orders\"}",
                )],
            )
            .unwrap();
            let answer: Value = http.get(url).send().await.ok()?.json().await.ok()?;
            let series = answer["data"]["result"].as_array()?.len();
            (series > 0).then_some(())
        },
        || "spanmetrics for orders in Prometheus".to_owned(),
    )
    .await;
    testkit::eventually(
        Duration::from_secs(90),
        || async {
            let series = jaeger
                .metrics("calls", "orders", Duration::from_secs(300), &[])
                .await
                .ok()?;
            series.iter().any(|s| s.peak() > 0.0).then_some(())
        },
        || "the Monitor tab's calls for orders".to_owned(),
    )
    .await;
    // Jaeger does not trace itself: the UI's own calls are not a service.
    let services = jaeger.services().await.unwrap();
    assert_eq!(services, ["load", "orders", "orders-worker", "users"]);

    // What the stack costs a laptop, while it runs.
    let stats = docker(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}}\t{{.MemUsage}}",
    ]);
    let total_mib: f64 = stats
        .lines()
        .filter_map(|line| line.split('\t').nth(1)?.split(" / ").next().map(mebibytes))
        .sum();
    eprintln!(
        "up --build --wait: {:.0} s ({} build); curl's trace in Jaeger {:.0} s after `up`\n\
         memory: {total_mib:.0} MiB in all\n{stats}",
        up_took.as_secs_f64(),
        if cold { "first" } else { "cached" },
        first_trace.as_secs_f64()
    );

    // The tail-sampling overlay, as docs/workshop.md runs it. Compose's own load is stopped
    // and Jaeger restarted empty, so what it keeps is only the traffic counted here.
    succeed(compose(TAIL_SAMPLING, &["up", "--wait", "--detach"]));
    succeed(compose(TAIL_SAMPLING, &["stop", "load"]));
    succeed(compose(TAIL_SAMPLING, &["restart", "jaeger"]));
    succeed(compose(
        TAIL_SAMPLING,
        &["up", "--wait", "--detach", "jaeger"],
    ));
    check_what_tail_sampling_keeps(
        &jaeger,
        &Traffic {
            orders: ORDERS,
            otlp: OTLP,
        },
    )
    .await;

    // `docker compose stop`: each service ends on SIGTERM, none is killed after the 10 s
    // compose waits (exit code 137). One at a time, dependents first, to time each.
    let order = [
        "load",
        "orders-worker",
        "orders",
        "users",
        "prometheus",
        "jaeger",
        "postgres",
    ];
    let mut slow = Vec::new();
    for service in order {
        let started = Instant::now();
        succeed(compose(TAIL_SAMPLING, &["stop", service]));
        let took = started.elapsed();
        eprintln!("stop {service}: {:.1} s", took.as_secs_f64());
        if took > Duration::from_secs(8) {
            slow.push(format!("{service} {took:?}"));
        }
    }
    for container in containers(TAIL_SAMPLING) {
        let service = container["Service"].as_str().unwrap();
        assert_ne!(
            container["ExitCode"], 137,
            "{service} was killed: {container}"
        );
    }
    assert!(slow.is_empty(), "near compose's 10 s kill: {slow:?}");

    // A check with Jaeger stopped: one line, exit 2, and Jaeger still stopped (the check
    // starts nothing).
    let mut command = compose(TAIL_SAMPLING, &["run", "--rm", "check", "1"]);
    let output = command.output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(output.stdout.is_empty(), "{stderr}");
    let said: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("check: "))
        .collect();
    assert!(
        said.len() == 1 && said[0].starts_with("check: cannot reach Jaeger at http://jaeger:16686"),
        "{stderr}"
    );
    let jaeger_state = containers(TAIL_SAMPLING)
        .into_iter()
        .find(|c| c["Service"] == "jaeger")
        .map(|c| c["State"].clone());
    assert_eq!(jaeger_state, Some(Value::from("exited")));

    // `down -v` leaves no container, network or volume of the project.
    succeed(compose(TAIL_SAMPLING, &["down", "-v"]));
    let label = format!("label=com.docker.compose.project={PROJECT}");
    for kind in ["container", "network", "volume"] {
        let mut args = vec![kind, "ls", "-q", "--filter", &label];
        if kind == "container" {
            args.insert(2, "--all");
        }
        let left = docker(&args);
        assert!(left.trim().is_empty(), "{kind}s left after down -v: {left}");
    }
}
