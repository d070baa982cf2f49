//! The Python users service (services/users-python) behind our Rust orders, against the real
//! Jaeger: one trace across two languages (W3C Trace Context), an unsampled caller traced by
//! neither, baggage read by Python, and the same answers as the Rust users service for bad
//! input. Its virtualenv is made from PyPI on first use (target/users-python/venv) and reused.

mod common;
mod python;

use std::time::Duration;

use python::System;
use testkit::traced;

/// `GET /orders/1`: orders' 5 spans and users-python's server and db-query spans.
const SPANS: usize = 7;

#[tokio::test]
async fn orders_in_rust_and_users_in_python_make_one_trace() {
    let system = System::start().await;
    let answer = traced::get(&system.client, &system.orders_url("/orders/1"), &[]).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.body["user"]["id"], 1, "{answer:?}");
    let trace = system
        .jaeger()
        .trace_of(&answer.trace_id(), SPANS)
        .await
        .unwrap();
    assert_eq!(
        trace.spans().len(),
        SPANS,
        "one trace of 7 spans:\n{}",
        trace.outline()
    );
    let client = trace.only("orders", "GET");
    assert_eq!(client.kind(), "client");
    let server = trace.only("users-python", "GET /users/{user_id}");
    assert_eq!(server.kind(), "server");
    assert_eq!(
        server.parent(),
        Some(client.span_id()),
        "users' server span is a child of orders' client span:\n{}",
        trace.outline()
    );
    let query = trace.only("users-python", "db-query");
    assert_eq!(query.kind(), "client");
    assert_eq!(query.parent(), Some(server.span_id()));
    assert_eq!(
        query.tag_str("db.system.name").as_deref(),
        Some("postgresql")
    );
    assert_eq!(
        query.tag_str("db.query.summary").as_deref(),
        Some("SELECT users")
    );
    assert_eq!(server.tag("user.id"), Some(&serde_json::json!(1)));

    // What exercise 15 says differs, read back from Jaeger: Python's server span carries
    // the older HTTP conventions, FastAPI's scope and the Python SDK's resource; the Rust
    // one the current conventions and the Rust SDK's.
    let tag = |span: &testkit::local_jaeger::Span, key: &str| span.tag_str(key);
    assert_eq!(tag(&server, "http.method").as_deref(), Some("GET"));
    assert_eq!(tag(&server, "http.request.method"), None);
    assert_eq!(
        tag(&server, "otel.scope.name").as_deref(),
        Some("opentelemetry.instrumentation.fastapi")
    );
    assert_eq!(
        tag(&server, "otel.scope.version").as_deref(),
        Some("0.66b2")
    );
    let resource = |t: &testkit::local_jaeger::Trace, span, key| t.process_tag(span, key);
    assert_eq!(
        resource(&trace, &server, "telemetry.sdk.language").as_deref(),
        Some("python")
    );
    assert_eq!(
        resource(&trace, &server, "telemetry.sdk.version").as_deref(),
        Some("1.45.2")
    );
    assert!(resource(&trace, &server, "service.instance.id").is_some());
    let rust = traced::get(
        &system.client,
        &format!("{}/users/1", system.rust_users),
        &[],
    )
    .await;
    let rust_trace = system.jaeger().trace_of(&rust.trace_id(), 2).await.unwrap();
    let rust_server = rust_trace.only("users", "GET /users/{user_id}");
    assert_eq!(
        tag(&rust_server, "http.request.method").as_deref(),
        Some("GET")
    );
    assert_eq!(tag(&rust_server, "http.method"), None);
    assert_eq!(
        tag(&rust_server, "otel.scope.name").as_deref(),
        Some("users")
    );
    assert_eq!(
        resource(&rust_trace, &rust_server, "telemetry.sdk.language").as_deref(),
        Some("rust")
    );
    drop(system);
}

#[tokio::test]
async fn an_unsampled_caller_is_traced_by_neither_language() {
    let system = System::start().await;
    let unsampled = "4bf92f3577b34da6a3ce929d0e0e4736";
    let traceparent = format!("00-{unsampled}-00f067aa0ba902b7-00");
    let answer = traced::get(
        &system.client,
        &system.orders_url("/orders/1"),
        &[("traceparent", &traceparent)],
    )
    .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    // A sampled request after it, complete in Jaeger: both services have exported since.
    let sampled = traced::get(&system.client, &system.orders_url("/orders/2"), &[]).await;
    system
        .jaeger()
        .trace_of(&sampled.trace_id(), SPANS)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let found = system.jaeger().trace(unsampled).await.unwrap();
    assert!(
        found.is_none(),
        "flags 00: no span from orders nor users-python:\n{}",
        found.map(|t| t.outline()).unwrap_or_default()
    );
    drop(system);
}

#[tokio::test]
async fn baggage_from_the_caller_reaches_the_python_service() {
    let system = System::start().await;
    let answer = traced::get(
        &system.client,
        &system.orders_url("/orders/1"),
        &[("baggage", "demo.delay_ms=120,team=checkout")],
    )
    .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let trace = system
        .jaeger()
        .trace_of(&answer.trace_id(), SPANS + 1)
        .await
        .unwrap();
    let server = trace.only("users-python", "GET /users/{user_id}");
    let delay = trace.only("users-python", "demo-delay");
    assert_eq!(
        delay.parent(),
        Some(server.span_id()),
        "{}",
        trace.outline()
    );
    assert_eq!(delay.tag("demo.delay_ms"), Some(&serde_json::json!(120)));
    assert!(delay.end_us() - delay.start_us() >= 120_000);

    // demo.fail=users: the Python service fails where the Rust one does, with its span.
    let failed = traced::get(
        &system.client,
        &system.orders_url("/orders/1"),
        &[("baggage", "demo.fail=users")],
    )
    .await;
    assert_eq!(failed.status, 502, "{failed:?}");
    let trace = system
        .jaeger()
        .trace_of(&failed.trace_id(), SPANS)
        .await
        .unwrap();
    // Orders may retry the 500: a demo-fault span per try, each an error.
    let faults = trace.find("users-python", "demo-fault");
    assert!(
        !faults.is_empty() && faults.iter().all(|fault| fault.is_error()),
        "{}",
        trace.outline()
    );
    drop(system);
}

/// The same requests to both users services: the same status and the same JSON.
#[tokio::test]
async fn bad_input_is_answered_as_the_rust_service_answers_it() {
    let system = System::start().await;
    let paths = [
        "/users/1",
        "/users/007",
        "/users/abc",
        "/users/0",
        "/users/-1",
        "/users/1.5",
        "/users/999999",
        "/users/9223372036854775807",
        "/users/9223372036854775808",
        "/users?ids=3,1,2",
        "/users?ids=1,%202",
        "/users?ids=",
        "/users?ids=1,x",
        "/users",
        "/nowhere",
        "/healthz",
        "/readyz",
    ];
    let mut differ = Vec::new();
    for path in paths {
        let rust = traced::get(&system.client, &format!("{}{path}", system.rust_users), &[]).await;
        let python = traced::get(
            &system.client,
            &format!("{}{path}", system.python_users),
            &[],
        )
        .await;
        if (rust.status, &rust.body) != (python.status, &python.body) {
            differ.push(format!(
                "{path}: rust {} {}, python {} {}",
                rust.status, rust.body, python.status, python.body
            ));
        }
    }
    let ids = (1..=101)
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(",");
    for (method, path) in [
        ("POST", "/users/1".to_owned()),
        ("GET", format!("/users?ids={ids}")),
    ] {
        let mut answers = Vec::new();
        for base in [&system.rust_users, &system.python_users] {
            let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
            let response = system
                .client
                .request(method, format!("{base}{path}"))
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            answers.push((status, response.json::<serde_json::Value>().await.unwrap()));
        }
        if answers[0] != answers[1] {
            differ.push(format!(
                "{method} {path}: rust {:?}, python {:?}",
                answers[0], answers[1]
            ));
        }
    }
    assert!(
        differ.is_empty(),
        "the two users services differ:\n{}",
        differ.join("\n")
    );
    drop(system);
}

#[tokio::test]
async fn a_malformed_traceparent_starts_a_new_trace_in_python() {
    let system = System::start().await;
    let malformed = "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01";
    let answer = traced::get(
        &system.client,
        &format!("{}/users/5", system.python_users),
        &[("traceparent", malformed)],
    )
    .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.body["id"], 5);
    let trace_id = answer.trace_id();
    assert!(!malformed.contains(&trace_id), "a new trace id: {trace_id}");
    let trace = system.jaeger().trace_of(&trace_id, 2).await.unwrap();
    let server = trace.only("users-python", "GET /users/{user_id}");
    assert_eq!(server.parent(), None, "a root span:\n{}", trace.outline());
    drop(system);
}

/// `cargo xtask up --users python`: the runner's users is the Python service, in orders' trace.
#[tokio::test]
async fn cargo_xtask_up_users_python_swaps_users() {
    python::python().await;
    let runner = common::Runner::start(&[], &["--users", "python"]).await;
    let client = testkit::http_client();
    let users = traced::get(
        &client,
        &format!("http://127.0.0.1:{}/users/abc", runner.users_port),
        &[],
    )
    .await;
    assert_eq!(users.status, 400, "{users:?}");
    assert_eq!(users.body["error"]["code"], "invalid_id");
    let answer = traced::get(
        &client,
        &format!("http://127.0.0.1:{}/orders/1", runner.orders_port),
        &[],
    )
    .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let trace = runner
        .jaeger()
        .trace_of(&answer.trace_id(), SPANS)
        .await
        .unwrap();
    let client_span = trace.only("orders", "GET");
    let server = trace.only("users-python", "GET /users/{user_id}");
    assert_eq!(
        server.parent(),
        Some(client_span.span_id()),
        "{}",
        trace.outline()
    );
    let (status, _) = runner.stop().await;
    assert!(status.success(), "{status}");
}
