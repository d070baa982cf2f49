//! `load` as a learner runs it: the real binary, against a small axum server started here
//! on 127.0.0.1, and once against the real services with spans arriving over OTLP.

use std::{
    process::Output,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use axum::{
    Router,
    extract::Path,
    http::{HeaderMap, StatusCode},
    routing::{get, post},
};
use serde_json::Value;
use tokio::process::Command;

/// Answers like orders: 200 for ids 1..=10000, 404 beyond, 400 for a non-number; the
/// `stall_at`-th request sleeps a second while holding a lock every request needs.
async fn server(stall_at: Option<usize>) -> (String, Arc<AtomicUsize>) {
    let count = Arc::new(AtomicUsize::new(0));
    let lock = Arc::new(tokio::sync::Mutex::new(()));
    let counter = count.clone();
    let app = Router::new().route(
        "/orders/{id}",
        get(move |Path(id): Path<String>| {
            let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
            let lock = lock.clone();
            async move {
                let _guard = lock.lock().await;
                if Some(n) == stall_at {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                match id.parse::<u64>() {
                    Ok(id) if (1..=10_000).contains(&id) => StatusCode::OK,
                    Ok(_) => StatusCode::NOT_FOUND,
                    Err(_) => StatusCode::BAD_REQUEST,
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, count)
}

async fn load(args: &[&str], env: &[(&str, String)]) -> Output {
    tokio::time::timeout(Duration::from_secs(60), load_command(args, env).output())
        .await
        .expect("load stops by itself")
        .unwrap()
}

/// `load` with `args`, and `env` over an environment without the shell's OTEL_* settings.
fn load_command(args: &[&str], env: &[(&str, String)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_load"));
    for (key, _) in std::env::vars() {
        if key.starts_with("OTEL_") {
            command.env_remove(key);
        }
    }
    // No collector in most of these tests: no export at all, rather than retry noise.
    command.env("OTEL_SDK_DISABLED", "true");
    command.envs(env.iter().map(|(k, v)| (k, v)));
    command.args(args);
    command
}

async fn summary(args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["--output", "json"]);
    let output = load(&all, &[]).await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("one JSON document on stdout")
}

/// load's spans to `receiver`, exported quickly (the helpers above switch the SDK off).
fn exporting_to(receiver: &testkit::Receiver) -> Vec<(&'static str, String)> {
    vec![
        ("OTEL_SDK_DISABLED", "false".into()),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.grpc_endpoint()),
        ("OTEL_BSP_SCHEDULE_DELAY", "50".into()),
    ]
}

fn count(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

#[tokio::test]
async fn requests_n_sends_exactly_n_and_the_counts_add_up() {
    let (url, received) = server(None).await;
    let s = summary(&["--target", &url, "--rate", "200", "--requests", "37"]).await;
    assert_eq!(received.load(Ordering::SeqCst), 37);
    let r = &s["requests"];
    assert_eq!(count(&r["scheduled"]), 37);
    assert_eq!(count(&r["sent"]) + count(&r["missed"]), 37);
    assert_eq!(count(&r["completed"]), count(&r["sent"]));
    assert_eq!(
        count(&r["ok"]) + count(&r["failed"]),
        count(&r["completed"])
    );
    let statuses: u64 = s["status_codes"]
        .as_object()
        .unwrap()
        .values()
        .map(count)
        .sum();
    let errors: u64 = s["errors"].as_object().unwrap().values().map(count).sum();
    assert_eq!(statuses + errors, count(&r["completed"]));
    for key in ["p50", "p90", "p99", "p99_9", "max"] {
        let from_schedule = s["latency_ms"]["from_schedule"][key].as_f64().unwrap();
        let from_send = s["latency_ms"]["from_send"][key].as_f64().unwrap();
        assert!(from_schedule >= from_send, "{key}: {s}");
        assert!(
            s["latency_ms"]["send_lag"][key].as_f64().unwrap() <= from_schedule,
            "{key}: {s}"
        );
    }
}

#[tokio::test]
async fn the_asked_rate_is_the_rate_achieved() {
    let (url, received) = server(None).await;
    let s = summary(&["--target", &url, "--rate", "40", "--duration", "2s"]).await;
    // Due at (n + 0.5) / 40 s for n = 0..80: exactly 80 in two seconds.
    assert_eq!(received.load(Ordering::SeqCst), 80);
    let achieved = s["rate"]["achieved_per_s"].as_f64().unwrap();
    assert_eq!(s["rate"]["asked_per_s"].as_f64(), Some(40.0));
    assert!(
        (achieved - 40.0).abs() < 40.0 * 0.15,
        "achieved {achieved}/s: {s}"
    );
}

#[tokio::test]
async fn a_stalled_server_shows_in_latency_from_the_schedule_not_from_the_send() {
    let (url, _) = server(Some(5)).await;
    let s = summary(&[
        "--target",
        &url,
        "--rate",
        "20",
        "--duration",
        "3s",
        "--max-in-flight",
        "1",
    ])
    .await;
    let corrected = &s["latency_ms"]["from_schedule"];
    let uncorrected = &s["latency_ms"]["from_send"];
    // Requests due during the one-second stall waited for the only slot: their latency
    // counts from when they were due, as a user waiting on them would see it.
    assert!(corrected["max"].as_f64().unwrap() > 800.0, "{s}");
    assert!(
        corrected["p90"].as_f64().unwrap() > 4.0 * uncorrected["p90"].as_f64().unwrap(),
        "{s}"
    );
    assert!(uncorrected["p50"].as_f64().unwrap() < 100.0, "{s}");
}

#[tokio::test]
async fn the_status_mix_is_honoured() {
    let (url, _) = server(None).await;
    let s = summary(&[
        "--target",
        &url,
        "--rate",
        "500",
        "--requests",
        "400",
        "--mix",
        "ok=50,not_found=25,bad_id=25",
    ])
    .await;
    let kinds = &s["kinds"];
    let (ok, not_found, bad_id) = (
        count(&kinds["ok"]),
        count(&kinds["not_found"]),
        count(&kinds["bad_id"]),
    );
    assert_eq!(ok + not_found + bad_id, 400);
    for (n, expected) in [(ok, 200.0), (not_found, 100.0), (bad_id, 100.0)] {
        assert!((n as f64 - expected).abs() < 40.0, "{kinds}");
    }
    let status = &s["status_codes"];
    assert_eq!(count(&status["200"]), ok);
    assert_eq!(count(&status["404"]), not_found);
    assert_eq!(count(&status["400"]), bad_id);
    assert_eq!(
        s["failed"].as_array().unwrap().len().min(10),
        10,
        "failed traces are listed"
    );
}

#[tokio::test]
async fn slow_and_failing_requests_carry_the_demo_faults_in_their_baggage() {
    // Every request's baggage header, as the services would read it.
    let seen = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let sink = seen.clone();
    let app = Router::new().route(
        "/orders/{id}",
        get(move |headers: axum::http::HeaderMap| {
            let baggage = headers
                .get("baggage")
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default();
            sink.lock().unwrap().push(baggage);
            async { StatusCode::OK }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let s = summary(&[
        "--target",
        &url,
        "--rate",
        "500",
        "--requests",
        "300",
        "--mix",
        "ok=1,slow=1,failing=1",
        "--slow",
        "1200ms",
        "--baggage",
        "team=blue",
    ])
    .await;
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 300);
    let with = |entry: &str| {
        seen.iter()
            .filter(|b| b.split(',').any(|e| e.trim() == entry))
            .count() as u64
    };
    assert_eq!(
        with("demo.delay_ms=1200"),
        count(&s["kinds"]["slow"]),
        "{s}"
    );
    assert_eq!(
        with("demo.fail=users"),
        count(&s["kinds"]["failing"]),
        "{s}"
    );
    assert_eq!(with("team=blue"), 300, "--baggage goes with every kind");
    assert!(
        count(&s["kinds"]["slow"]) > 50 && count(&s["kinds"]["failing"]) > 50,
        "{s}"
    );
    let plain = seen.iter().filter(|b| !b.contains("demo.")).count() as u64;
    assert_eq!(
        plain,
        count(&s["kinds"]["ok"]),
        "ok requests carry no fault"
    );
}

#[tokio::test]
async fn create_requests_post_a_json_order_for_a_seeded_user() {
    // Every POST as the server received it: its headers and body.
    let posted = Arc::new(std::sync::Mutex::new(Vec::<(HeaderMap, Value)>::new()));
    let sink = posted.clone();
    let app = Router::new()
        .route("/orders/{id}", get(|| async { StatusCode::OK }))
        .route(
            "/orders",
            post(move |headers: HeaderMap, body: axum::body::Bytes| {
                let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
                sink.lock().unwrap().push((headers, body));
                async { StatusCode::CREATED }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let s = summary(&[
        "--target",
        &url,
        "--rate",
        "500",
        "--requests",
        "200",
        "--mix",
        "ok=50,create=50",
        // Neither applies to a new order.
        "--path",
        "/orders/{id}",
        "--ids",
        "5000..6000",
    ])
    .await;
    let posted = posted.lock().unwrap().clone();
    let created = count(&s["kinds"]["create"]);
    assert!(created > 50 && count(&s["kinds"]["ok"]) > 50, "{s}");
    assert_eq!(posted.len() as u64, created, "{s}");
    assert_eq!(count(&s["status_codes"]["201"]), created, "{s}");
    assert_eq!(count(&s["status_codes"]["200"]), count(&s["kinds"]["ok"]));
    assert_eq!(count(&s["requests"]["ok"]), 200, "a 201 is a success: {s}");
    assert_eq!(
        s["target"],
        format!("{url}/orders/{{id}}, POST {url}/orders"),
        "the summary says where the POSTs went"
    );
    let mut items = std::collections::BTreeSet::new();
    for (headers, body) in &posted {
        assert_eq!(headers["content-type"], "application/json");
        let object = body.as_object().expect("a JSON object");
        assert_eq!(object.len(), 3, "only the fields orders accepts: {body}");
        let user_id = body["user_id"].as_i64().unwrap();
        assert!((1..=1000).contains(&user_id), "a seeded user: {body}");
        let quantity = body["quantity"].as_i64().unwrap();
        assert!((1..=5).contains(&quantity), "{body}");
        let item = body["item"].as_str().unwrap();
        assert!(
            item.strip_prefix("load-")
                .is_some_and(|n| n.parse::<u64>().is_ok()),
            "{body}"
        );
        items.insert(item.to_owned());
    }
    assert_eq!(items.len(), posted.len(), "every order its own item");
}

#[tokio::test]
async fn a_target_that_is_down_is_reported_as_connect_errors() {
    let port = testkit::free_port();
    let s = summary(&[
        "--target",
        &format!("http://127.0.0.1:{port}"),
        "--requests",
        "3",
        "--rate",
        "50",
    ])
    .await;
    assert_eq!(count(&s["errors"]["connect"]), 3, "{s}");
    assert_eq!(count(&s["requests"]["failed"]), 3);
}

#[tokio::test]
async fn every_bad_flag_is_refused_with_one_line_and_exit_code_2() {
    let cases: &[(&[&str], &str)] = &[
        (&["--rate", "abc"], "--rate"),
        (&["--rate", "-5"], "--rate"),
        (&["--rate", "0"], "--rate"),
        (&["--stages", "10/s"], "--stages"),
        (&["--stages", "10:30s"], "--stages"),
        (&["--stages", "10/s:forever"], "--stages"),
        (&["--stages", "0/s:10s"], "--stages"),
        (&["--duration", "soon"], "--duration"),
        (&["--requests", "0"], "--requests"),
        (&["--requests", "many"], "--requests"),
        (&["--ids", "10..1"], "--ids"),
        (&["--ids", "0..5"], "--ids"),
        (&["--ids", "1-5"], "--ids"),
        (&["--zipf", "0"], "--zipf"),
        (&["--mix", "ok=50,teapot=50"], "--mix"),
        (&["--mix", "ok=0"], "--mix"),
        (&["--slow", "0"], "--slow"),
        (&["--slow", "soon"], "--slow"),
        (&["--target", "localhost:8080"], "--target"),
        (&["--target", "ftp://x"], "--target"),
        (&["--max-in-flight", "0"], "--max-in-flight"),
        (&["--timeout", "0"], "--timeout"),
        (&["--baggage", "novalue"], "--baggage"),
        (&["--output", "xml"], "--output"),
        (&["--path", "orders"], "--path"),
        (&["--rate", "1", "--stages", "1/s:1s"], "--stages"),
        (&["--bogus"], "--bogus"),
    ];
    for (args, flag) in cases {
        let output = load(args, &[]).await;
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(
            stderr.trim().lines().count(),
            1,
            "{args:?}: one line: {stderr}"
        );
        assert!(stderr.contains(flag), "{args:?}: names {flag}: {stderr}");
        assert!(
            output.stdout.is_empty(),
            "{args:?}: nothing sent, nothing reported"
        );
    }
    // A setting of ours is strict; an OTEL_* one is warned about and defaulted (the
    // services' tests check those).
    let bad_env = load(&["--requests", "1"], &[("LOG_FORMAT", "xml".into())]).await;
    assert_eq!(bad_env.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad_env.stderr).contains("LOG_FORMAT"));
}

/// `load ... | head -1`, `load --help | head -1` (issue 35): the reader is gone by the time
/// load writes. It ends as it would have, exit 0 and nothing on stderr, where `print!`
/// panicked with "failed printing to stdout: Broken pipe".
#[tokio::test]
async fn a_reader_that_has_gone_ends_load_quietly() {
    let (url, received) = server(None).await;
    let run: &[&str] = &["--target", &url, "--rate", "50", "--requests", "5"];
    for args in [&["--help"][..], run] {
        let child = load_command(args, &[])
            .stdout(testkit::closed_pipe())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let output = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
            .await
            .expect("load stops by itself")
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(0), "{args:?}: {stderr}");
        assert!(stderr.is_empty(), "{args:?}: quietly: {stderr}");
    }
    assert_eq!(
        received.load(Ordering::SeqCst),
        5,
        "the run itself is whole"
    );
}

#[tokio::test]
async fn output_json_is_the_whole_stdout_even_with_debug_logs() {
    let closed = testkit::free_port();
    let output = load(
        &[
            "--target",
            &format!("http://127.0.0.1:{closed}"),
            "--requests",
            "3",
            "--rate",
            "10",
            "--output",
            "json",
        ],
        &[("RUST_LOG", "debug".into())],
    )
    .await;
    assert!(output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    let summary: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("stdout is one JSON document ({e}):\n{stdout}"));
    assert_eq!(count(&summary["requests"]["scheduled"]), 3, "{summary}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("DEBUG"),
        "the logs are there, on stderr:\n{stderr}"
    );
}

#[tokio::test]
async fn each_request_is_the_root_of_a_trace_the_services_continue() {
    let stack = testkit::stack::Stack::start().await;
    let output = load(
        &[
            "--target",
            &stack.orders.url(),
            "--requests",
            "5",
            "--rate",
            "50",
            "--output",
            "json",
        ],
        &exporting_to(&stack.collector),
    )
    .await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let s: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(count(&s["status_codes"]["200"]), 5, "{s}");

    let spans = stack
        .collector
        .wait_for(
            |spans| {
                spans.iter().filter(|s| s.service_name == "load").count() == 5
                    && spans
                        .iter()
                        .filter(|s| s.name == "GET /orders/{order_id}")
                        .count()
                        == 5
            },
            Duration::from_secs(20),
        )
        .await
        .unwrap();
    let listed: Vec<&str> = s["slowest"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["trace_id"].as_str().unwrap())
        .collect();
    for root in spans.iter().filter(|s| s.service_name == "load") {
        assert_eq!(root.parent_span_id, None, "load starts the trace");
        assert_eq!(root.kind, otlp_receiver::SpanKind::Client);
        assert_eq!(root.name, "GET /orders/{id}");
        assert_eq!(root.int_attr("http.response.status_code"), Some(200));
        let server = spans
            .iter()
            .find(|s| s.name == "GET /orders/{order_id}" && s.trace_id == root.trace_id)
            .expect("orders continues load's trace");
        assert_eq!(
            server.parent_span_id.as_deref(),
            Some(root.span_id.as_str())
        );
        assert!(
            listed.contains(&root.trace_id.as_str()),
            "the summary links real traces"
        );
    }
}

/// `create` against the real services: orders answers 201 to every POST, continues load's
/// trace, and the orders it wrote are readable, with what load sent.
#[tokio::test]
async fn create_requests_are_new_orders_that_orders_answers_201_in_load_s_trace() {
    let stack = testkit::stack::Stack::start().await;
    let output = load(
        &[
            "--target",
            &stack.orders.url(),
            "--requests",
            "12",
            "--rate",
            "50",
            "--mix",
            "ok=1,create=2",
            "--output",
            "json",
        ],
        &exporting_to(&stack.collector),
    )
    .await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let s: Value = serde_json::from_slice(&output.stdout).unwrap();
    let created = count(&s["kinds"]["create"]);
    assert!(created > 0, "{s}");
    assert_eq!(count(&s["status_codes"]["201"]), created, "{s}");
    assert_eq!(
        count(&s["status_codes"]["200"]),
        count(&s["kinds"]["ok"]),
        "{s}"
    );
    assert_eq!(count(&s["requests"]["failed"]), 0, "{s}");

    let spans = stack
        .collector
        .wait_for(
            |spans| {
                spans
                    .iter()
                    .filter(|s| s.service_name == "orders" && s.name == "POST /orders")
                    .count() as u64
                    == created
            },
            Duration::from_secs(20),
        )
        .await
        .unwrap();
    let posts: Vec<_> = spans
        .iter()
        .filter(|s| s.service_name == "load" && s.name == "POST /orders")
        .collect();
    assert_eq!(posts.len() as u64, created);
    for root in posts {
        assert_eq!(root.parent_span_id, None, "load starts the trace");
        assert_eq!(root.kind, otlp_receiver::SpanKind::Client);
        assert_eq!(root.str_attr("http.request.method"), Some("POST"));
        assert_eq!(root.int_attr("http.response.status_code"), Some(201));
        let server = spans
            .iter()
            .find(|s| {
                s.name == "POST /orders"
                    && s.service_name == "orders"
                    && s.trace_id == root.trace_id
            })
            .expect("orders continues load's trace");
        assert_eq!(
            server.parent_span_id.as_deref(),
            Some(root.span_id.as_str())
        );
        assert_eq!(server.int_attr("http.response.status_code"), Some(201));
    }

    // The new orders take the ids after the seed's 10000 (migrations/orders).
    for id in 10_001..=10_000 + created {
        let answer = testkit::traced::get(
            &stack.client,
            &format!("{}/orders/{id}", stack.orders.url()),
            &[],
        )
        .await
        .body;
        let order = &answer["order"];
        assert!(
            order["item"]
                .as_str()
                .is_some_and(|i| i.starts_with("load-")),
            "{answer}"
        );
        assert!(
            (1..=5).contains(&order["quantity"].as_i64().unwrap_or(0)),
            "{answer}"
        );
        assert_eq!(
            answer["user"]["id"], order["user_id"],
            "a seeded user: {answer}"
        );
    }
}

/// Ctrl-C in a terminal, SIGTERM from `docker compose stop` (load is PID 1 in its
/// container): either stops the run, prints what ran so far and flushes every span before
/// exiting 0. The batch delay is longer than the run, so the spans that arrive are the ones
/// the exit flushed.
#[tokio::test]
async fn ctrl_c_or_sigterm_prints_what_ran_so_far_flushes_and_exits_0() {
    for (signal, name) in [(libc::SIGINT, "SIGINT"), (libc::SIGTERM, "SIGTERM")] {
        let (url, received) = server(None).await;
        let collector = testkit::Receiver::start().await;
        let child = Command::new(env!("CARGO_BIN_EXE_load"))
            .args([
                "--target",
                &url,
                "--rate",
                "50",
                "--duration",
                "0",
                "--output",
                "json",
            ])
            .env_clear()
            .env("OTEL_EXPORTER_OTLP_ENDPOINT", collector.grpc_endpoint())
            .env("OTEL_BSP_SCHEDULE_DELAY", "60000")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        tokio::time::sleep(Duration::from_millis(1500)).await;
        // SAFETY: signalling our own child.
        unsafe { libc::kill(child.id().unwrap() as i32, signal) };
        let output = tokio::time::timeout(Duration::from_secs(20), child.wait_with_output())
            .await
            .unwrap_or_else(|_| panic!("stops on {name}"))
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(0), "{name}: {stderr}");
        let s: Value = serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|e| panic!("{name}: the summary is printed ({e}): {stderr}"));
        assert_eq!(s["interrupted"], true, "{name}");
        let completed = count(&s["requests"]["completed"]);
        assert!(
            completed > 0 && completed as usize == received.load(Ordering::SeqCst),
            "{name}: {s}"
        );
        let roots = collector
            .spans()
            .iter()
            .filter(|span| span.service_name == "load")
            .count();
        assert_eq!(
            roots as u64, completed,
            "{name}: one span per completed request, flushed before the exit"
        );
    }
}
