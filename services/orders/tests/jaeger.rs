//! What the learner sees, checked where they look: the services export to the real Jaeger
//! v2 binary (deploy/jaeger/jaeger.yaml, as compose runs it), and every assertion reads
//! Jaeger's query API, the one its UI reads; for the Monitor tab, with the real Prometheus
//! it reads, whose own query API counts exactly what the tab shows as rates.

use std::{collections::BTreeSet, time::Duration};

use serde_json::Value;
use testkit::{
    local_jaeger::{Config, Ports, Query, Trace, prometheus::Prometheus, query::Search},
    stack::Stack,
    traced::get,
};

/// Spans of one answered `GET /orders/{id}` (orders 5, users 2).
const SPANS_PER_ORDER: usize = 7;

async fn seven_spans(jaeger: &Query, trace_id: &str) -> Trace {
    jaeger
        .trace_of(trace_id, SPANS_PER_ORDER)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

fn str_tag(trace: &Trace, service: &str, name: &str, key: &str) -> String {
    trace
        .only(service, name)
        .tag_str(key)
        .unwrap_or_else(|| panic!("{service}/{name}: no tag {key}\n{}", trace.outline()))
}

/// `child`'s parent in Jaeger is `parent` (both named by service and operation).
fn assert_parent(trace: &Trace, child: (&str, &str), parent: (&str, &str)) {
    let c = trace.only(child.0, child.1);
    let p = trace.only(parent.0, parent.1);
    assert_eq!(
        c.parent(),
        Some(p.span_id()),
        "{child:?} should be a child of {parent:?}:\n{}",
        trace.outline()
    );
}

#[tokio::test]
async fn the_seed_trace_in_jaeger_is_seven_spans_in_two_services() {
    let stack = Stack::in_jaeger(&[], &[]).await;
    let answer = get(
        &stack.client,
        &format!("{}/orders/1", stack.orders.url()),
        &[],
    )
    .await;
    assert_eq!(answer.status, 200);
    let trace_id = answer.trace_id();
    let jaeger = stack.jaeger();
    let trace = seven_spans(&jaeger, &trace_id).await;

    assert_eq!(trace.spans.len(), SPANS_PER_ORDER, "{}", trace.outline());
    assert_eq!(trace.services(), ["orders", "users"]);
    assert!(
        trace.all_warnings().is_empty(),
        "a complete trace has no warning in the UI: {:?}",
        trace.all_warnings()
    );

    // One root: the orders server span (curl sent no traceparent).
    let roots = trace.roots();
    assert_eq!(roots.len(), 1, "{}", trace.outline());
    assert_eq!(roots[0].name(), "GET /orders/{order_id}");
    assert_eq!(roots[0].span_id(), answer.trace.unwrap().span_id);

    let orders_db: Vec<_> = trace.find("orders", "db-query");
    assert_eq!(orders_db.len(), 1, "{}", trace.outline());
    let fetch = trace.only("orders", "fetch-order");
    assert_eq!(orders_db[0].parent(), Some(fetch.span_id()));
    assert_parent(
        &trace,
        ("orders", "fetch-order"),
        ("orders", "GET /orders/{order_id}"),
    );
    // The tutorial's tree: both steps inside fetch-order.
    assert_parent(
        &trace,
        ("orders", "enrich-order"),
        ("orders", "fetch-order"),
    );
    assert_parent(&trace, ("orders", "GET"), ("orders", "enrich-order"));
    assert_parent(&trace, ("users", "GET /users/{user_id}"), ("orders", "GET"));
    assert_parent(
        &trace,
        ("users", "db-query"),
        ("users", "GET /users/{user_id}"),
    );

    let kinds: Vec<(String, String, String)> = {
        let mut k: Vec<_> = trace
            .spans()
            .iter()
            .map(|s| {
                (
                    s.service.to_owned(),
                    s.name().to_owned(),
                    s.kind().to_owned(),
                )
            })
            .collect();
        k.sort();
        k
    };
    let expected: Vec<(String, String, String)> = [
        ("orders", "GET", "client"),
        ("orders", "GET /orders/{order_id}", "server"),
        ("orders", "db-query", "client"),
        ("orders", "enrich-order", "internal"),
        ("orders", "fetch-order", "internal"),
        ("users", "GET /users/{user_id}", "server"),
        ("users", "db-query", "client"),
    ]
    .iter()
    .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
    .collect();
    assert_eq!(kinds, expected);

    // The business context of the manual spans, as numbers (Jaeger's int64 tags).
    let order_id = trace.only("orders", "fetch-order");
    assert_eq!(order_id.tag("order.id"), Some(&Value::from(1)));
    assert_eq!(
        trace.only("orders", "enrich-order").tag("user.id"),
        Some(&Value::from(1))
    );
    assert_eq!(
        trace.only("users", "GET /users/{user_id}").tag("user.id"),
        Some(&Value::from(1))
    );
    assert_eq!(
        str_tag(&trace, "orders", "GET /orders/{order_id}", "http.route"),
        "/orders/{order_id}"
    );
    assert_eq!(
        str_tag(
            &trace,
            "orders",
            "GET /orders/{order_id}",
            "http.response.status_code"
        ),
        "200"
    );

    // The database spans, by the semantic conventions.
    let db = &orders_db[0];
    assert_eq!(db.tag_str("db.system.name").as_deref(), Some("postgresql"));
    assert_eq!(
        db.tag_str("db.namespace").as_deref(),
        Some(stack.orders_db_name())
    );
    assert_eq!(db.tag_str("db.operation.name").as_deref(), Some("SELECT"));
    assert_eq!(db.tag_str("db.collection.name").as_deref(), Some("orders"));
    assert!(db.tag_str("db.query.text").unwrap().contains("$1"));
    assert_eq!(
        db.tag_str("server.port"),
        Some(stack.postgres_port().to_string())
    );
    assert_eq!(
        str_tag(&trace, "users", "db-query", "db.collection.name"),
        "users"
    );

    // No span is an error in a 200, and none leaks personal data.
    for span in trace.spans() {
        assert!(!span.is_error(), "{}", trace.outline());
        for tag in &span.raw.tags {
            let text = tag.value.to_string();
            assert!(
                !text.contains("@example.com") && !text.contains("user-1\""),
                "{}: tag {} leaks personal data: {text}",
                span.name(),
                tag.key
            );
        }
    }
    let services = jaeger.services().await.unwrap();
    assert_eq!(services, ["orders", "users"], "the UI's Service list");
}

/// Every OTLP transport the specification names reaches Jaeger whole: http/json too, and
/// the protocol's value in any case (the enum values are case-insensitive).
#[tokio::test]
async fn both_http_encodings_reach_jaeger_whole() {
    for protocol in ["HTTP/JSON", "http/protobuf"] {
        let jaeger = testkit::jaeger().await;
        let env = [
            ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol.to_owned()),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", jaeger.otlp_http_endpoint()),
        ];
        let stack = Stack::assemble(jaeger, &env, &env).await;
        let answer = get(
            &stack.client,
            &format!("{}/orders/1", stack.orders.url()),
            &[],
        )
        .await;
        assert_eq!(answer.status, 200, "{protocol}");
        let trace = seven_spans(&stack.jaeger(), &answer.trace_id()).await;
        assert_eq!(trace.services(), ["orders", "users"], "{protocol}");
        assert_parent(&trace, ("users", "GET /users/{user_id}"), ("orders", "GET"));
        for (service, lines) in [
            ("orders", stack.orders.logs()),
            ("users", stack.users.logs()),
        ] {
            assert!(
                !lines.iter().any(|l| l.contains("WARN")),
                "{protocol}: {service} warned: {lines:#?}"
            );
        }
    }
}

#[tokio::test]
async fn a_failing_users_call_marks_the_error_path_in_jaeger() {
    let faults = [("DEMO_FAULTS", "on".to_owned())];
    let stack = Stack::in_jaeger(&faults, &faults).await;
    let answer = get(
        &stack.client,
        &format!("{}/orders/4", stack.orders.url()),
        &[("baggage", "demo.fail=users")],
    )
    .await;
    assert_eq!(answer.status, 502, "{:?}", answer.body);
    let jaeger = stack.jaeger();
    let trace = jaeger
        .settled_trace(
            &answer.trace_id(),
            |t| !t.find("users", "GET /users/{user_id}").is_empty() && t.spans.len() >= 5,
            Duration::from_secs(30),
        )
        .await
        .unwrap();
    let errors: BTreeSet<(String, String)> = trace
        .spans()
        .iter()
        .filter(|s| s.is_error())
        .map(|s| (s.service.to_owned(), s.name().to_owned()))
        .collect();
    let expected: BTreeSet<(String, String)> = [
        ("orders", "GET /orders/{order_id}"),
        ("orders", "GET"),
        ("users", "GET /users/{user_id}"),
        ("users", "demo-fault"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(errors, expected, "{}", trace.outline());
    assert_eq!(
        str_tag(
            &trace,
            "orders",
            "GET /orders/{order_id}",
            "http.response.status_code"
        ),
        "502"
    );

    // The UI's search by service and operation finds it. (Its tag search for
    // `error=true` finds nothing in Jaeger 2.12's memory store: jaegertracing/jaeger#8217,
    // fixed in a later release; see docs/testing.md.)
    let found = jaeger
        .search(&Search {
            operation: Some("GET /orders/{order_id}"),
            ..Search::recent("orders")
        })
        .await
        .unwrap();
    assert!(
        found.iter().any(|t| t.trace_id == answer.trace_id()),
        "the search finds the trace"
    );
    // docs/testing.md's caveat, read back from Jaeger: when an upgrade makes this fail, the
    // tag search works and the caveat goes.
    let by_tag = jaeger
        .search(&Search {
            tags: vec![("error", "true")],
            ..Search::recent("orders")
        })
        .await
        .unwrap();
    assert!(
        by_tag.is_empty(),
        "Jaeger 2.12's error=true search found {}",
        by_tag.len()
    );
}

/// Jaeger v2 traces its own query API unless its configuration says not to
/// (deploy/jaeger/jaeger.yaml says why): used as the UI uses it, it adds no `jaeger` service
/// beside the learner's, and on SIGTERM it has no spans of its own to flush into the
/// receiver it has just closed, so it stops at once.
#[tokio::test]
async fn jaeger_traces_nothing_of_its_own_and_stops_at_once() {
    let mut jaeger = testkit::jaeger().await;
    let ui = jaeger.ui_url();
    let client = testkit::http_client();
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    let calls = [
        "/".to_owned(),
        "/search".to_owned(),
        "/api/services".to_owned(),
        "/api/operations?service=orders".to_owned(),
        "/api/services/orders/operations".to_owned(),
        "/api/traces?service=orders&lookback=1h&limit=20".to_owned(),
        format!("/api/dependencies?endTs={now_ms}&lookback=3600000"),
        "/api/v3/services".to_owned(),
    ];
    for _ in 0..3 {
        for path in &calls {
            let response = client.get(format!("{ui}{path}")).send().await.unwrap();
            assert!(response.status().is_success(), "{path}: {response:?}");
        }
    }
    // Jaeger's own SDK would export every 5 s (the OpenTelemetry batch default), into its
    // own receiver (local-jaeger points it there, as compose's localhost:4317 does): polls
    // over 7 s would see a `jaeger` service appear.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(7);
    while tokio::time::Instant::now() < deadline {
        let services = jaeger.query().services().await.unwrap();
        assert!(
            !services.iter().any(|s| s == "jaeger"),
            "Jaeger lists itself as a service: {services:?}; its log: {}",
            jaeger.log.display()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    let started = std::time::Instant::now();
    let status = jaeger.stop().await;
    let took = started.elapsed();
    let log = std::fs::read_to_string(&jaeger.log).unwrap();
    // Tracing itself, its last flush after SIGTERM dials its own closed receiver again and
    // again until the exporter's 10 s timeout ("traces export: ... timeout").
    assert!(
        !log.contains("failed to connect to") && !log.contains("traces export"),
        "Jaeger exported spans of its own (stop took {took:?}):\n{log}"
    );
    assert!(
        status.is_some_and(|s| s.success()),
        "Jaeger exits by itself on SIGTERM, within the 10 s grace ({status:?} after {took:?})"
    );
}

/// Runs `load` against `orders` with its spans to `jaeger`; its JSON summary.
async fn run_load(orders_url: &str, otlp: &str, ui: &str, args: &[&str]) -> Value {
    let output = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new(testkit::binary("load"))
            .args(["--target", orders_url, "--output", "json"])
            .args(args)
            .env("OTEL_EXPORTER_OTLP_ENDPOINT", otlp)
            .env("OTEL_BSP_SCHEDULE_DELAY", "50")
            .env("JAEGER_UI_URL", ui)
            .env_remove("OTEL_SDK_DISABLED")
            .env_remove("OTEL_TRACES_SAMPLER")
            .env_remove("OTEL_TRACES_SAMPLER_ARG")
            .output(),
    )
    .await
    .expect("load finishes within 60 s")
    .expect("run load");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "load --output json: {e}\n{}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

#[tokio::test]
async fn load_rooted_traces_and_loads_links_open_in_jaeger() {
    let stack = Stack::in_jaeger(&[], &[]).await;
    let jaeger = stack.jaeger();
    let summary = run_load(
        &stack.orders.url(),
        &stack.collector.otlp_endpoint(),
        &stack.collector.ui_url(),
        &[
            "--requests",
            "30",
            "--rate",
            "30",
            "--mix",
            "ok=70,not_found=15,bad_id=15",
        ],
    )
    .await;
    let links: Vec<(String, String)> = ["slowest", "failed"]
        .iter()
        .flat_map(|key| summary[key].as_array().cloned().unwrap_or_default())
        .map(|n| {
            (
                n["trace_id"].as_str().unwrap().to_owned(),
                n["link"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(
        !summary["slowest"].as_array().unwrap().is_empty()
            && !summary["failed"].as_array().unwrap().is_empty(),
        "load names slow and failed traces: {summary}"
    );
    for (trace_id, link) in &links {
        assert_eq!(
            link,
            &format!("{}/trace/{trace_id}", stack.collector.ui_url()),
            "a deep link into the UI"
        );
        let trace = jaeger
            .settled_trace(
                trace_id,
                // load's span and orders' server span (it ends after its children).
                |t| {
                    !t.find("load", "GET /orders/{id}").is_empty()
                        && t.spans()
                            .iter()
                            .any(|s| s.service == "orders" && s.kind() == "server")
                },
                Duration::from_secs(30),
            )
            .await
            .unwrap_or_else(|e| panic!("{link} opens no trace: {e}"));
        let root = trace.roots();
        assert_eq!(root.len(), 1, "{}", trace.outline());
        assert_eq!(root[0].service, "load", "load's span is the root");
    }

    // An answered request: load's client span above the seven of the services.
    let ok = summary["slowest"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["outcome"] == "200")
        .unwrap_or_else(|| panic!("a 200 among the slowest: {summary}"));
    let trace = jaeger
        .trace_of(ok["trace_id"].as_str().unwrap(), SPANS_PER_ORDER + 1)
        .await
        .unwrap();
    assert_eq!(
        trace.spans.len(),
        SPANS_PER_ORDER + 1,
        "{}",
        trace.outline()
    );
    assert_eq!(trace.services(), ["load", "orders", "users"]);
    let load_span = trace.only("load", "GET /orders/{id}");
    assert_eq!(load_span.kind(), "client");
    assert_eq!(load_span.parent(), None);
    assert_parent(
        &trace,
        ("orders", "GET /orders/{order_id}"),
        ("load", "GET /orders/{id}"),
    );

    // The System Architecture view: load -> orders -> users.
    let all: BTreeSet<(String, String)> = testkit::eventually(
        Duration::from_secs(30),
        || async {
            let edges: BTreeSet<(String, String)> = jaeger
                .dependencies(Duration::from_secs(3600))
                .await
                .unwrap()
                .into_iter()
                .map(|d| (d.parent, d.child))
                .collect();
            (edges.iter().filter(|(p, c)| p != c).count() >= 2).then_some(edges)
        },
        || "the dependency graph has its two edges between services".to_owned(),
    )
    .await;
    // Jaeger 2.12's memory store also counts calls within a service (docs/testing.md says
    // so); the arrows between services are the lesson.
    assert!(
        all.contains(&("orders".to_owned(), "orders".to_owned())),
        "{all:?}"
    );
    let edges: BTreeSet<(String, String)> = all.into_iter().filter(|(p, c)| p != c).collect();
    let expected: BTreeSet<(String, String)> = [("load", "orders"), ("orders", "users")]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    assert_eq!(edges, expected);
}

#[tokio::test]
async fn spans_held_while_jaeger_restarts_reach_the_new_jaeger() {
    // Both services export to fixed ports, so a new Jaeger can take the old one's place.
    let ports = Ports::free();
    let jaeger = testkit::start_jaeger(&Config::project(), ports.clone()).await;
    let stack = Stack::assemble(jaeger, &[], &[]).await;
    let before = get(
        &stack.client,
        &format!("{}/orders/1", stack.orders.url()),
        &[],
    )
    .await;
    seven_spans(&stack.jaeger(), &before.trace_id()).await;

    let mut stack = stack;
    stack.collector.stop().await;
    // Requests while Jaeger is away: answered as usual, their spans queued by the services.
    let mut during = Vec::new();
    for id in 1..=20 {
        let answer = get(
            &stack.client,
            &format!("{}/orders/{id}", stack.orders.url()),
            &[],
        )
        .await;
        assert_eq!(answer.status, 200, "answered while Jaeger is down");
        during.push(answer.trace_id());
    }
    // Jaeger comes back after a few exports have failed (the test stack exports every
    // 50 ms): the spans above reach it through the exporter's retry (telemetry's `RETRY`).
    tokio::time::sleep(Duration::from_secs(2)).await;
    stack.collector = testkit::start_jaeger(&Config::project(), ports).await;
    let jaeger = stack.jaeger();
    for trace_id in &during {
        let trace = jaeger
            .settled_trace(
                trace_id,
                |t| t.spans.len() >= SPANS_PER_ORDER,
                Duration::from_secs(60),
            )
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "{e}\norders:\n{}\nusers:\n{}",
                    stack.orders.logs().join("\n"),
                    stack.users.logs().join("\n")
                )
            });
        assert_eq!(trace.spans.len(), SPANS_PER_ORDER, "{}", trace.outline());
    }
    assert!(
        jaeger.trace(&before.trace_id()).await.unwrap().is_none(),
        "the new all-in-one Jaeger starts empty: what it had was in memory"
    );
}

/// PromQL: how many server spans of `service` the spanmetrics counted (`status` adds a
/// label matcher), by the names jaeger_query reads.
fn server_calls(service: &str, matcher: &str) -> String {
    format!(
        "sum(traces_span_metrics_calls_total{{service_name=\"{service}\",\
         span_kind=\"SPAN_KIND_SERVER\"{matcher}}})"
    )
}

const ERRORS: &str = ",status_code=\"STATUS_CODE_ERROR\"";

/// Waits until Prometheus' `promql` is `expected` (the connector flushes every 5 s and
/// Prometheus scrapes every 5 s), then checks it stays there over one more flush.
async fn settles_at(prometheus: &Prometheus, promql: &str, expected: f64) {
    let last = std::sync::Mutex::new(None);
    testkit::eventually(
        Duration::from_secs(90),
        || async {
            let now = prometheus.sum(promql).await;
            let reached = now.as_ref().is_ok_and(|v| *v == expected);
            *last.lock().unwrap() = Some(now);
            reached.then_some(())
        },
        || {
            format!(
                "{promql} never reached {expected}; last: {:?}",
                last.lock().unwrap()
            )
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(prometheus.sum(promql).await.unwrap(), expected, "{promql}");
}

#[tokio::test]
async fn the_monitor_tab_counts_every_request_and_exactly_the_failures_load_caused() {
    let (jaeger, prometheus) = testkit::monitored_jaeger().await;
    let faults = [("DEMO_FAULTS", "on".to_owned())];
    let stack = Stack::assemble(jaeger, &faults, &faults).await;
    let summary = run_load(
        &stack.orders.url(),
        &stack.collector.otlp_endpoint(),
        &stack.collector.ui_url(),
        &[
            "--requests",
            "120",
            // 15 s, over three flushes and scrapes: a series whose first scrape already
            // holds its whole count has a rate of 0 (Prometheus' rate() sees no increase).
            // The duration bounds the run past that (load's default, 10 s, would stop it
            // at 80 requests), the request count ends it.
            "--rate",
            "8",
            "--duration",
            "40s",
            "--mix",
            "ok=70,failing=15,not_found=15",
        ],
    )
    .await;
    assert_eq!(summary["requests"]["completed"], 120, "{summary}");
    let kind = |k: &str| summary["kinds"][k].as_u64().unwrap_or(0) as f64;
    let (ok, failing) = (kind("ok"), kind("failing"));
    assert!(failing > 0.0, "{summary}");
    let status = |code: &str| summary["status_codes"][code].as_u64().unwrap_or(0) as f64;
    assert_eq!(
        status("502"),
        failing,
        "users' failure reaches load: {summary}"
    );

    // What the Monitor tab draws, from Jaeger's own metrics API, while the run is inside
    // its one-minute rate windows (the connector flushes and Prometheus scrapes every 5 s).
    let query = stack.jaeger();
    let window = Duration::from_secs(120);
    for (service, operation) in [
        ("orders", "GET /orders/{order_id}"),
        ("users", "GET /users/{user_id}"),
    ] {
        let peak = |series: Vec<testkit::local_jaeger::query::MetricSeries>| {
            series
                .iter()
                .find(|s| s.operation() == operation)
                .map_or(0.0, |s| s.peak())
        };
        testkit::eventually(
            Duration::from_secs(40),
            || async {
                let calls = peak(query.metrics("calls", service, window, &[]).await.ok()?);
                let errors = peak(query.metrics("errors", service, window, &[]).await.ok()?);
                let p95 = peak(
                    query
                        .metrics(
                            "latencies",
                            service,
                            window,
                            &[("quantile", "0.95".to_owned())],
                        )
                        .await
                        .ok()?,
                );
                (calls > 0.0 && errors > 0.0 && p95 > 0.0).then_some(())
            },
            || format!("{service} {operation}: rate, error rate and p95 in Jaeger's metrics API"),
        )
        .await;
    }

    // Every request once, whatever its answer: Prometheus holds the counters exactly.
    settles_at(&prometheus, &server_calls("orders", ""), 120.0).await;
    // A 404 is the client's error, not the server's (OpenTelemetry's HTTP conventions):
    // only the failing requests count as errors, in both services, once each (users' 500
    // is not retried).
    settles_at(&prometheus, &server_calls("orders", ERRORS), failing).await;
    settles_at(&prometheus, &server_calls("users", ERRORS), failing).await;
    // users is called for the orders that exist, failing or not.
    settles_at(&prometheus, &server_calls("users", ""), ok + failing).await;
}

#[tokio::test]
async fn prometheus_or_jaeger_restarting_stops_no_service_and_loses_no_span() {
    let ports = Ports::free();
    let [prometheus_port] = testkit::free_ports();
    let config =
        Config::project().with_host("prometheus:9090", &format!("127.0.0.1:{prometheus_port}"));
    let jaeger = testkit::start_jaeger(&config, ports.clone()).await;
    let mut prometheus = testkit::start_prometheus(&jaeger, prometheus_port).await;
    let mut stack = Stack::assemble(jaeger, &[], &[]).await;
    let orders = stack.orders.url();
    let ten = |stack: &Stack<testkit::local_jaeger::Jaeger>| {
        let (client, orders) = (stack.client.clone(), orders.clone());
        async move {
            let mut traces = Vec::new();
            for id in 1..=10 {
                let answer = get(&client, &format!("{orders}/orders/{id}"), &[]).await;
                assert_eq!(answer.status, 200, "answered while a backend is away");
                traces.push(answer.trace_id());
            }
            traces
        }
    };

    // Prometheus away: Jaeger keeps counting, and Prometheus, back on its own data, reads
    // the counters whole (they live in Jaeger until it restarts).
    prometheus.stop().await;
    let during = ten(&stack).await;
    for trace_id in &during {
        seven_spans(&stack.jaeger(), trace_id).await;
    }
    let mut prometheus = testkit::start_prometheus(&stack.collector, prometheus_port).await;
    settles_at(&prometheus, &server_calls("orders", ""), 10.0).await;

    // Jaeger away: the services hold their spans and send them to the new Jaeger, whose
    // counters start again; Prometheus follows it to its new metrics port.
    stack.collector.stop().await;
    let during = ten(&stack).await;
    stack.collector = testkit::start_jaeger(&config, ports).await;
    for trace_id in &during {
        stack
            .jaeger()
            .settled_trace(
                trace_id,
                |t| t.spans.len() >= SPANS_PER_ORDER,
                Duration::from_secs(60),
            )
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
    prometheus.stop().await;
    let prometheus = testkit::start_prometheus(&stack.collector, prometheus_port).await;
    // The new Jaeger's counter: its spans held through the outage, counted once.
    let new_instance = format!(
        ",instance=\"{}\"",
        stack.collector.span_metrics_addr().unwrap()
    );
    settles_at(&prometheus, &server_calls("orders", &new_instance), 10.0).await;
    let series = stack
        .jaeger()
        .metrics("calls", "orders", Duration::from_secs(300), &[])
        .await
        .unwrap();
    // The series answers (its rate is 0: the count did not move in the last minute).
    assert!(
        series
            .iter()
            .any(|s| s.operation() == "GET /orders/{order_id}" && !s.values.is_empty()),
        "{series:?}"
    );
    // Both services served throughout and stop as usual.
    for status in stack.shutdown().await {
        assert!(status.success(), "{status}");
    }
}
