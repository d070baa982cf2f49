//! docs/workshop.md never rots: every `sh` command in it runs against the Docker-less
//! runner (with the real Jaeger), every `console` line (how to start the system) is one
//! this test performs itself or a compose command that a compose implementation accepts,
//! and each exercise's stated answer is checked on Jaeger's query API, where the learner
//! reads it.

mod common;

use std::{collections::BTreeSet, time::Duration};

use common::Runner;
use testkit::local_jaeger::{Trace, query::Search};
use xtask::compose::project_root;

#[derive(Debug)]
enum Block {
    Sh(Vec<String>),
    Console(Vec<String>),
}

/// The code blocks, each with the number of the exercise (`## N.`) it belongs to.
fn blocks(markdown: &str) -> Vec<(u32, Block)> {
    let mut out = Vec::new();
    let mut current: Option<(String, Vec<String>)> = None;
    let mut exercise = 0;
    for line in markdown.lines() {
        if current.is_none()
            && let Some(heading) = line.strip_prefix("## ")
            && let Some(number) = heading.split('.').next().and_then(|n| n.parse().ok())
        {
            exercise = number;
        }
        match (&mut current, line.strip_prefix("```")) {
            (None, Some(lang)) => current = Some((lang.trim().to_owned(), Vec::new())),
            (Some(_), Some(_)) => {
                let (lang, lines) = current.take().unwrap();
                match lang.as_str() {
                    "sh" => out.push((exercise, Block::Sh(lines))),
                    "console" => out.push((exercise, Block::Console(lines))),
                    other => panic!("workshop.md: unexpected code block language {other:?}"),
                }
            }
            (Some((_, lines)), None) if !line.trim().is_empty() => {
                lines.push(line.trim().to_owned())
            }
            _ => {}
        }
    }
    assert!(current.is_none(), "an unclosed code block");
    out
}

/// What one command printed, and the trace id of its answer (from `traceresponse`).
struct Ran {
    stdout: String,
    trace_id: Option<String>,
}

async fn run(command: &str, runner: &Runner) -> Ran {
    let local = command
        .replace(
            "localhost:8080",
            &format!("127.0.0.1:{}", runner.orders_port),
        )
        .replace(
            "localhost:8081",
            &format!("127.0.0.1:{}", runner.users_port),
        );
    let local = match local.split_once("cargo run --release -p load -- ") {
        // The built binary, with the variables the guide puts before it.
        Some((env, args)) => format!(
            "{env}{} --target http://127.0.0.1:{} {args}",
            testkit::binary("load").display(),
            runner.orders_port,
        ),
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
            // Where the learner's host-side load exports by default (localhost:4317, the
            // published Jaeger) is, here, the runner's Jaeger.
            .env(
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                format!("http://127.0.0.1:{}", runner.otlp_port),
            )
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

fn set(pairs: &[(&str, &str)]) -> BTreeSet<(String, String)> {
    pairs
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

fn errors(trace: &Trace) -> BTreeSet<(String, String)> {
    trace
        .spans()
        .iter()
        .filter(|s| s.is_error())
        .map(|s| (s.service.to_owned(), s.name().to_owned()))
        .collect()
}

/// The orders client spans to users, by start time.
fn calls_to_users(trace: &Trace) -> Vec<(u64, u64)> {
    let mut calls: Vec<(u64, u64)> = trace
        .find("orders", "GET")
        .iter()
        .map(|s| (s.start_us(), s.end_us()))
        .collect();
    calls.sort();
    calls
}

/// The trace once it has `spans` spans and no more join it.
async fn trace_of(runner: &Runner, ran: &Ran, spans: usize) -> Trace {
    let trace_id = ran
        .trace_id
        .as_deref()
        .expect("the answer carries traceresponse");
    runner.jaeger().trace_of(trace_id, spans).await.unwrap()
}

/// Checks what the guide says the learner sees for command `index` of `exercise`.
/// Whether there was an answer to check.
async fn check_answer(
    exercise: u32,
    index: usize,
    command: &str,
    ran: &Ran,
    runner: &Runner,
) -> bool {
    match (exercise, index) {
        (1, 0) => {
            let trace = trace_of(runner, ran, 7).await;
            assert_eq!(trace.spans.len(), 7, "seven spans:\n{}", trace.outline());
            assert_eq!(trace.services(), ["orders", "users"], "in two services");
            let db: Vec<_> = trace
                .spans()
                .into_iter()
                .filter(|s| s.name() == "db-query")
                .collect();
            assert_eq!(db.len(), 2, "{}", trace.outline());
            assert!(db.iter().all(|s| s.kind() == "client"));
            let services: BTreeSet<&str> = db.iter().map(|s| s.service).collect();
            assert_eq!(services.len(), 2, "one per service");
        }
        (2, 0) => {
            let trace = runner
                .jaeger()
                .trace_of("4bf92f3577b34da6a3ce929d0e0e4736", 7)
                .await
                .unwrap();
            let server = trace.only("orders", "GET /orders/{order_id}");
            assert_eq!(server.parent(), Some("00f067aa0ba902b7"), "your span");
            assert!(
                trace.span("00f067aa0ba902b7").is_none(),
                "which Jaeger never received"
            );
            let warnings = trace.all_warnings().join("\n");
            assert!(
                warnings.contains("invalid parent") && warnings.contains("00f067aa0ba902b7"),
                "Jaeger warns about the parent: {warnings:?}"
            );
        }
        (3, 0) => {
            let trace = trace_of(runner, ran, 8).await;
            let delay = trace.only("users", "demo-delay");
            assert_eq!(delay.tag_str("demo.delay_ms").as_deref(), Some("300"));
            assert!(delay.raw.duration >= 300_000, "the 300 ms went here");
            assert_eq!(
                delay.parent(),
                Some(trace.only("users", "GET /users/{user_id}").span_id()),
                "inside users"
            );
            assert!(trace.find("orders", "demo-delay").is_empty());
        }
        (4, 0) => {
            let trace = trace_of(runner, ran, 7).await;
            assert_eq!(
                errors(&trace),
                set(&[
                    ("orders", "GET /orders/{order_id}"),
                    ("orders", "GET"),
                    ("users", "GET /users/{user_id}"),
                    ("users", "demo-fault"),
                ]),
                "{}",
                trace.outline()
            );
            assert_eq!(
                trace
                    .only("orders", "GET /orders/{order_id}")
                    .tag_str("http.response.status_code")
                    .as_deref(),
                Some("502")
            );
        }
        (4, 1) => {
            let trace = trace_of(runner, ran, 7).await;
            let db = trace.only("users", "db-query");
            assert!(db.is_error(), "{}", trace.outline());
            assert_eq!(db.tag_str("error.type").as_deref(), Some("22012"));
            assert!(errors(&trace).contains(&("users".into(), "db-query".into())));
        }
        (4, 2) => {
            let trace = trace_of(runner, ran, 1).await;
            let server = trace.only("orders", "GET /orders/{order_id}");
            assert_eq!(
                server.tag_str("http.response.status_code").as_deref(),
                Some("400")
            );
            assert!(errors(&trace).is_empty(), "a 4xx is not an error");
            assert!(ran.stdout.contains("invalid_id"), "{}", ran.stdout);
        }
        (5, _) => {
            let strategy = command
                .split("strategy=")
                .nth(1)
                .and_then(|rest| rest.split('\'').next())
                .unwrap();
            let trace = runner
                .jaeger()
                .settled_trace(
                    ran.trace_id.as_deref().unwrap(),
                    // Whole: orders' server span (it ends last in orders) and, for every
                    // call, users' server span and its query.
                    |t| {
                        let calls = t.find("orders", "GET").len();
                        let served = t
                            .spans()
                            .iter()
                            .filter(|s| s.service == "users" && s.kind() == "server")
                            .count();
                        t.find("orders", "GET /orders").len() == 1
                            && calls > 0
                            && served == calls
                            && t.find("users", "db-query").len() == calls
                    },
                    Duration::from_secs(30),
                )
                .await
                .unwrap();
            let calls = calls_to_users(&trace);
            match strategy {
                "sequential" => {
                    assert_eq!(calls.len(), 5, "{}", trace.outline());
                    // The answer's "each inside its order's fetch-order and enrich-order".
                    for call in trace.find("orders", "GET") {
                        let up = |s: &testkit::local_jaeger::query::Span<'_>| {
                            s.parent()
                                .and_then(|id| trace.span(id))
                                .map(|p| p.name().to_owned())
                        };
                        let enrich = call.parent().and_then(|id| trace.span(id)).unwrap();
                        assert_eq!(
                            (up(&call).as_deref(), up(&enrich).as_deref()),
                            (Some("enrich-order"), Some("fetch-order")),
                            "{}",
                            trace.outline()
                        );
                    }
                    assert!(
                        calls.windows(2).all(|w| w[1].0 >= w[0].1),
                        "a staircase: each call starts after the last ended\n{}",
                        trace.outline()
                    );
                }
                "parallel" => {
                    assert_eq!(calls.len(), 5, "{}", trace.outline());
                    let last_start = calls.iter().map(|c| c.0).max().unwrap();
                    let first_end = calls.iter().map(|c| c.1).min().unwrap();
                    assert!(
                        last_start < first_end,
                        "side by side: all start before the first ends\n{}",
                        trace.outline()
                    );
                }
                "batched" => {
                    assert_eq!(calls.len(), 1, "one call:\n{}", trace.outline());
                    assert!(
                        trace.find("orders", "fetch-order").is_empty(),
                        "no per-order spans:\n{}",
                        trace.outline()
                    );
                    let query = trace.only("users", "db-query");
                    assert!(
                        query
                            .tag_str("db.query.text")
                            .unwrap()
                            .contains("= ANY($1)"),
                        "{}",
                        trace.outline()
                    );
                    let call = trace.only("orders", "GET");
                    let url = call.tag_str("url.full").unwrap();
                    assert!(url.ends_with("/users?ids=7"), "{url}");
                    trace.only("users", "GET /users");
                }
                other => panic!("exercise 5: unknown strategy {other}"),
            }
        }
        (6, 0) => {
            // Orders' trace ends at its client span; users starts a trace of its own.
            let trace = trace_of(runner, ran, 5).await;
            assert_eq!(trace.services(), ["orders"], "{}", trace.outline());
            // Users exports on its own schedule: wait for its trace, whole.
            let jaeger = runner.jaeger();
            let users = testkit::eventually(
                Duration::from_secs(30),
                || async {
                    let found = jaeger.search(&Search::recent("users")).await.unwrap();
                    found.iter().any(|t| t.spans.len() >= 2).then_some(found)
                },
                || "a whole users trace in Jaeger".to_owned(),
            )
            .await;
            assert_eq!(users.len(), 1, "one users trace since the restart");
            let roots = users[0].roots();
            assert_eq!(roots.len(), 1);
            assert_eq!(roots[0].name(), "GET /users/{user_id}");
            assert_eq!(roots[0].parent(), None, "a root server span");
            assert_ne!(users[0].trace_id, trace.trace_id, "two unrelated traces");
        }
        (8, 0) => {
            let trace_id = ran.trace_id.clone().unwrap();
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
            let trace = runner.jaeger().trace_of(logged, 7).await.unwrap();
            assert!(
                trace
                    .spans()
                    .iter()
                    .any(|s| s.service == "users" && !s.raw.logs.is_empty()),
                "the line is an event on a users span too:\n{}",
                trace.outline()
            );
        }
        (9, 0) => {
            // The server span, fetch-order, its query, enrich-order and three tries.
            let trace = trace_of(runner, ran, 7).await;
            let mut tries: Vec<_> = trace.find("orders", "GET");
            tries.sort_by_key(|s| s.start_us());
            assert_eq!(tries.len(), 3, "three calls:\n{}", trace.outline());
            let parents: BTreeSet<_> = tries.iter().map(|s| s.parent()).collect();
            assert_eq!(parents.len(), 1, "under the same parent");
            let resends: Vec<Option<String>> = tries
                .iter()
                .map(|s| s.tag_str("http.request.resend_count"))
                .collect();
            assert_eq!(resends, [None, Some("1".into()), Some("2".into())]);
        }
        (7, 0) => {
            // The runner's services sample everything, so what Jaeger keeps is what load's
            // own 10% head sampler kept: Binomial(200, 0.1) is 20 +- 4.2.
            let jaeger = runner.jaeger();
            let kept = testkit::eventually(
                Duration::from_secs(30),
                || async {
                    let count = |traces: Vec<Trace>| traces.len();
                    let first = count(jaeger.search(&Search::recent("load")).await.ok()?);
                    tokio::time::sleep(Duration::from_secs(2)).await;
                    let then = count(jaeger.search(&Search::recent("load")).await.ok()?);
                    (first > 0 && first == then).then_some(then)
                },
                || "load's traces in Jaeger".to_owned(),
            )
            .await;
            assert!(
                (5..=40).contains(&kept),
                "about 20 of 200 kept at a 10% head sampler, {kept} were:\n{}",
                ran.stdout
            );
            for trace in jaeger.search(&Search::recent("load")).await.unwrap() {
                assert!(
                    trace.services().len() >= 2,
                    "a kept trace is kept whole, downstream too:\n{}",
                    trace.outline()
                );
            }
        }
        (10, 0) => {
            assert!(
                runner.prometheus_url.is_some(),
                "the runner started Prometheus for the Monitor tab: {:#?}",
                runner.started
            );
            let jaeger = runner.jaeger();
            // The run's minute, and the connector's flush and the scrape after it.
            let window = Duration::from_secs(75);
            let slow = ["GET /users/{user_id}", "GET /orders/{order_id}"];
            for (service, operation) in [("users", slow[0]), ("orders", slow[1])] {
                let series = |which: &'static str, extra: Vec<(&'static str, String)>| {
                    let jaeger = jaeger.clone();
                    async move {
                        jaeger
                            .metrics(which, service, window, &extra)
                            .await
                            .unwrap()
                    }
                };
                let peak = |all: &[testkit::local_jaeger::query::MetricSeries]| {
                    all.iter()
                        .find(|s| s.operation() == operation)
                        .map_or(0.0, |s| s.peak())
                };
                // Each chart moves as the connector flushes and Prometheus scrapes; what
                // the guide says must hold once the run's spans are in.
                let last = std::sync::Mutex::new(String::new());
                testkit::eventually(
                    Duration::from_secs(40),
                    || async {
                        let calls = peak(&series("calls", vec![]).await);
                        let errors = series("errors", vec![]).await;
                        let share = peak(&errors);
                        let p95 =
                            peak(&series("latencies", vec![("quantile", "0.95".to_owned())]).await);
                        // Only the failing operation fails.
                        let others: Vec<String> = errors
                            .iter()
                            .filter(|s| s.operation() != operation && s.peak() > 0.0)
                            .map(|s| format!("{} {}", s.operation(), s.peak()))
                            .collect();
                        *last.lock().unwrap() = format!(
                            "rate {calls}/s (load sent 20/s), error rate {share} (a fifth \
                             failed), p95 {p95} ms (800 ms asked), other operations failing: \
                             {others:?}"
                        );
                        ((5.0..=30.0).contains(&calls)
                            && (0.1..=0.35).contains(&share)
                            && p95 > 800.0
                            && others.is_empty())
                        .then_some(())
                    },
                    || format!("{service} {operation}: {}", last.lock().unwrap()),
                )
                .await;
            }
            let search = Search {
                service: "users",
                operation: Some(slow[0]),
                min_duration: Some(Duration::from_millis(800)),
                lookback: Duration::from_secs(300),
                limit: 20,
                ..Search::default()
            };
            let found = jaeger.search(&search).await.unwrap();
            assert!(!found.is_empty(), "the search finds slow traces");
            for trace in found {
                let delay = trace.only("users", "demo-delay");
                assert!(
                    delay.end_us() - delay.start_us() >= 800_000,
                    "the time is in demo-delay:\n{}",
                    trace.outline()
                );
            }
        }
        (11, 0) => {
            // orders 6 (server, place-order, its users call, two inserts, send), users 2
            // for the check, the worker 3 (process, its call, the confirmation's insert),
            // users 2 for the address.
            let trace = trace_of(runner, ran, 13).await;
            assert_eq!(trace.services(), ["orders", "orders-worker", "users"]);
            let send = trace.only("orders", "send order-confirmations");
            assert_eq!(send.kind(), "producer");
            let process = trace.only("orders-worker", "process order-confirmations");
            assert_eq!(process.kind(), "consumer");
            assert_eq!(
                process.parent(),
                Some(send.span_id()),
                "{}",
                trace.outline()
            );
            assert!(process.start_us() >= send.end_us(), "the wait is a gap");
            for (key, value) in [
                ("messaging.system", "postgresql"),
                ("messaging.operation.type", "process"),
                ("messaging.destination.name", "order-confirmations"),
            ] {
                assert_eq!(process.tag_str(key).as_deref(), Some(value), "{key}");
            }
            assert_eq!(
                send.tag_str("messaging.message.id"),
                process.tag_str("messaging.message.id")
            );
            let call = trace.only("orders-worker", "GET");
            assert_eq!(call.parent(), Some(process.span_id()));
            assert!(
                trace
                    .find("users", "GET /users/{user_id}")
                    .iter()
                    .any(|s| s.parent() == Some(call.span_id())),
                "{}",
                trace.outline()
            );
        }
        (12, 0) => {
            let jaeger = runner.jaeger();
            let batches = testkit::eventually(
                Duration::from_secs(30),
                || async {
                    let found = jaeger.search(&Search::recent("orders-worker")).await.ok()?;
                    let linked: usize = found
                        .iter()
                        .flat_map(|t| t.find("orders-worker", "process order-confirmations"))
                        .map(|s| s.links().len())
                        .sum();
                    // load queued 100 orders; every one is linked from some batch.
                    (linked >= 100).then_some(found)
                },
                || "100 messages linked from the batches' traces".to_owned(),
            )
            .await;
            let mut largest = 0;
            for trace in &batches {
                let batch = trace.only("orders-worker", "process order-confirmations");
                assert_eq!(batch.parent(), None, "a root:\n{}", trace.outline());
                let links = batch.links();
                let count: usize = batch
                    .tag_str("messaging.batch.message_count")
                    .unwrap()
                    .parse()
                    .unwrap();
                assert_eq!(links.len(), count, "one link per message");
                assert_eq!(trace.find("orders-worker", "confirm-order").len(), count);
                largest = largest.max(count);
                // Each link leads to the order's own trace, to its send span.
                let (trace_id, span_id) = links[0];
                let order = jaeger.trace_of(trace_id, 6).await.unwrap();
                assert_eq!(
                    order.span(span_id).map(|s| s.name().to_owned()).as_deref(),
                    Some("send order-confirmations")
                );
            }
            assert!(
                largest >= 2,
                "batches of several messages: {largest} at most"
            );
        }
        (13, 0) => {
            let trace = trace_of(runner, ran, 8).await;
            assert_eq!(trace.services(), ["orders", "users"], "{}", trace.outline());
            trace.only("orders", "send order-confirmations");
            let jaeger = runner.jaeger();
            let worker = testkit::eventually(
                Duration::from_secs(30),
                || async {
                    let found = jaeger.search(&Search::recent("orders-worker")).await.ok()?;
                    found
                        .into_iter()
                        .find(|t| t.find("orders-worker", "process order-confirmations").len() == 1)
                },
                || "the worker's trace".to_owned(),
            )
            .await;
            let process = worker.only("orders-worker", "process order-confirmations");
            assert_eq!(process.parent(), None);
            assert!(process.links().is_empty());
            assert_ne!(worker.trace_id, trace.trace_id);
        }
        (14, 0) => {
            let trace = trace_of(runner, ran, 10).await;
            let process = trace.only("orders-worker", "process order-confirmations");
            assert!(
                trace.find("orders-worker", "GET").is_empty(),
                "no call under process:\n{}",
                trace.outline()
            );
            let jaeger = runner.jaeger();
            let search = Search {
                operation: Some("GET"),
                ..Search::recent("orders-worker")
            };
            let orphan = testkit::eventually(
                Duration::from_secs(30),
                || async { jaeger.search(&search).await.ok()?.into_iter().next() },
                || "the orphaned call's trace".to_owned(),
            )
            .await;
            let roots = orphan.roots();
            assert_eq!(roots.len(), 1);
            assert_eq!(roots[0].name(), "GET", "{}", orphan.outline());
            assert_ne!(orphan.trace_id, trace.trace_id);
            let _ = process;
        }
        (14, 1) => {
            let trace = trace_of(runner, ran, 11).await;
            let call = trace.only("orders-worker", "GET");
            assert!(
                !trace
                    .spans()
                    .iter()
                    .any(|s| s.parent() == Some(call.span_id())),
                "nothing of users under the worker's call:\n{}",
                trace.outline()
            );
            let jaeger = runner.jaeger();
            let cut = testkit::eventually(
                Duration::from_secs(30),
                || async {
                    let found = jaeger.search(&Search::recent("users")).await.ok()?;
                    found.into_iter().find(|t| {
                        t.trace_id != trace.trace_id
                            && t.roots().iter().any(|r| r.name() == "GET /users/{user_id}")
                    })
                },
                || "users' trace of its own".to_owned(),
            )
            .await;
            assert_eq!(cut.services(), ["users"], "{}", cut.outline());
        }
        _ => return false,
    }
    true
}

#[tokio::test]
async fn every_command_of_the_workshop_guide_runs() {
    let guide = std::fs::read_to_string(project_root().join("docs/workshop.md")).unwrap();
    let blocks = blocks(&guide);
    assert!(
        blocks
            .iter()
            .filter(|b| matches!(b, (_, Block::Sh(_))))
            .count()
            >= 8
    );

    let compose = xtask::compose::Compose::load(&project_root()).unwrap();
    testkit::jaeger_binary();
    let mut runner = Runner::start(&[], &[]).await;
    let mut commands_run = 0;
    let mut answers_checked = BTreeSet::new();
    let mut index_in_exercise = (0, 0);
    for (exercise, block) in blocks {
        match block {
            Block::Console(lines) => {
                for line in lines {
                    match line.as_str() {
                        "docker compose up --build" => {}
                        line if line.ends_with("cargo xtask up") => {
                            let dir = runner.cluster_dir.clone();
                            let (status, _) = runner.stop().await;
                            assert!(status.success() && !dir.exists());
                            let env: Vec<(&str, String)> = line
                                .strip_suffix(" cargo xtask up")
                                .and_then(|vars| vars.split_once('='))
                                .map(|(k, v)| vec![(k, v.to_owned())])
                                .unwrap_or_default();
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
                    let ran = run(&line, &runner).await;
                    if check_answer(exercise, index_in_exercise.1, &line, &ran, &runner).await {
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
        BTreeSet::from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14]),
        "every exercise has a command whose answer is checked"
    );
}
