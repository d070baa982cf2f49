//! End to end: both services as real processes on random ports, a real Postgres, spans
//! exported over OTLP/gRPC to a real receiver on 127.0.0.1.

use std::time::Duration;

use otlp_receiver::{ReceivedSpan, SpanKind, StatusCode, Value};
use serde_json::{Value as Json, json};
use testkit::{
    only,
    stack::{Stack, spawn_orders, spawn_users},
    traced::get,
};

const WAIT: Duration = Duration::from_secs(20);
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_ID: &str = "00f067aa0ba902b7";

fn assert_child(child: &ReceivedSpan, parent: &ReceivedSpan) {
    assert_eq!(
        child.parent_span_id.as_deref(),
        Some(parent.span_id.as_str()),
        "{} should be a child of {}",
        child.name,
        parent.name
    );
    assert_eq!(child.trace_id, parent.trace_id);
}

fn str_attr<'a>(span: &'a ReceivedSpan, key: &str) -> &'a str {
    span.str_attr(key)
        .unwrap_or_else(|| panic!("{}: string attribute {key} missing: {span:#?}", span.name))
}

fn int_attr(span: &ReceivedSpan, key: &str) -> i64 {
    span.int_attr(key)
        .unwrap_or_else(|| panic!("{}: integer attribute {key} missing: {span:#?}", span.name))
}

fn traceresponse(response: &reqwest::Response) -> (String, String, String) {
    let t = testkit::traced::traceresponse(response)
        .expect("every traced response carries traceresponse");
    (t.trace_id, t.span_id, t.flags)
}

#[tokio::test]
async fn an_order_request_is_one_trace_across_both_services_and_the_database() {
    let stack = Stack::start().await;
    let response = stack
        .client
        .get(format!("{}/orders/1", stack.orders.url()))
        .header("traceparent", format!("00-{TRACE_ID}-{PARENT_ID}-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let (trace_id, server_span_id, flags) = traceresponse(&response);
    assert_eq!(
        trace_id, TRACE_ID,
        "the request continues the caller's trace"
    );
    assert_eq!(flags, "01");
    let body: Json = response.json().await.unwrap();
    assert_eq!(
        body["order"],
        json!({"id": 1, "user_id": 1, "item": "item-1", "quantity": 2, "total_cents": 100,
               "created_at": body["order"]["created_at"]})
    );
    assert!(body["order"]["created_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(
        body["user"],
        json!({"id": 1, "name": "user-1", "email": "user-1@example.com"})
    );

    let spans = stack
        .collector
        .wait_for_trace(TRACE_ID, 7, WAIT)
        .await
        .unwrap();
    assert_eq!(
        spans.len(),
        7,
        "exactly the tutorial's seven spans: {spans:#?}"
    );

    let server = only(&spans, "orders", "GET /orders/{order_id}");
    assert_eq!(server.kind, SpanKind::Server);
    assert_eq!(server.parent_span_id.as_deref(), Some(PARENT_ID));
    assert_eq!(
        server.span_id, server_span_id,
        "traceresponse names the server span"
    );
    assert_eq!(str_attr(server, "http.route"), "/orders/{order_id}");
    assert_eq!(str_attr(server, "http.request.method"), "GET");
    assert_eq!(int_attr(server, "http.response.status_code"), 200);
    assert_eq!(str_attr(server, "url.path"), "/orders/1");
    assert_eq!(str_attr(server, "client.address"), "127.0.0.1");
    assert_eq!(server.status.code, StatusCode::Unset);

    let fetch = only(&spans, "orders", "fetch-order");
    assert_child(fetch, server);
    assert_eq!(fetch.kind, SpanKind::Internal);
    assert_eq!(int_attr(fetch, "order.id"), 1);

    let orders_db = spans
        .iter()
        .find(|s| s.service_name == "orders" && s.name == "db-query")
        .expect("orders db-query span");
    assert_child(orders_db, fetch);
    assert_eq!(orders_db.kind, SpanKind::Client);
    assert_eq!(str_attr(orders_db, "db.system.name"), "postgresql");
    assert_eq!(str_attr(orders_db, "db.namespace"), stack.orders_db_name());
    assert_eq!(str_attr(orders_db, "db.operation.name"), "SELECT");
    assert_eq!(str_attr(orders_db, "db.collection.name"), "orders");
    let query = str_attr(orders_db, "db.query.text");
    assert!(
        query.contains("WHERE id = $1"),
        "placeholders, never values: {query}"
    );
    assert_eq!(str_attr(orders_db, "server.address"), "127.0.0.1");
    assert_eq!(
        int_attr(orders_db, "server.port"),
        i64::from(stack.postgres_port())
    );

    let enrich = only(&spans, "orders", "enrich-order");
    assert_child(enrich, fetch);
    assert_eq!(enrich.kind, SpanKind::Internal);
    assert_eq!(int_attr(enrich, "user.id"), 1);

    let client = only(&spans, "orders", "GET");
    assert_child(client, enrich);
    assert_eq!(client.kind, SpanKind::Client);
    assert_eq!(str_attr(client, "http.request.method"), "GET");
    assert_eq!(
        str_attr(client, "url.full"),
        format!("{}/users/1", stack.users.url())
    );
    assert_eq!(str_attr(client, "server.address"), "127.0.0.1");
    assert_eq!(
        int_attr(client, "server.port"),
        i64::from(stack.users.addr.port())
    );
    assert_eq!(int_attr(client, "http.response.status_code"), 200);

    let users_server = only(&spans, "users", "GET /users/{user_id}");
    assert_child(users_server, client);
    assert_eq!(users_server.kind, SpanKind::Server);
    assert_eq!(str_attr(users_server, "http.route"), "/users/{user_id}");
    assert_eq!(int_attr(users_server, "http.response.status_code"), 200);

    let users_db = only(&spans, "users", "db-query");
    assert_child(users_db, users_server);
    assert_eq!(str_attr(users_db, "db.collection.name"), "users");
    assert_eq!(str_attr(users_db, "db.namespace"), stack.users_db_name());

    for span in &spans {
        let expected = if span.name.starts_with("GET /users")
            || span.name == "db-query" && span.service_name == "users"
        {
            "users"
        } else {
            "orders"
        };
        assert_eq!(span.service_name, expected, "{}", span.name);
        assert!(span.resource.contains_key("service.version"), "{span:#?}");
        assert_no_personal_data(span);
    }
}

fn assert_no_personal_data(span: &ReceivedSpan) {
    for (key, value) in &span.attributes {
        if let Value::String(s) = value {
            assert!(
                !s.contains("@example.com") && !s.starts_with("user-"),
                "{}: attribute {key} leaks personal data: {s}",
                span.name
            );
        }
    }
}

#[tokio::test]
async fn a_malformed_traceparent_starts_a_new_trace_and_the_request_succeeds() {
    let stack = Stack::start().await;
    for bad in [
        "garbage",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
    ] {
        let response = stack
            .client
            .get(format!("{}/orders/2", stack.orders.url()))
            .header("traceparent", bad)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{bad}");
        let (trace_id, _, _) = traceresponse(&response);
        assert_ne!(trace_id, "00000000000000000000000000000000");
        assert_ne!(trace_id, TRACE_ID.to_string());
        let spans = stack
            .collector
            .wait_for_trace(&trace_id, 7, WAIT)
            .await
            .unwrap();
        let server = only(&spans, "orders", "GET /orders/{order_id}");
        assert_eq!(
            server.parent_span_id, None,
            "{bad}: a new trace has a root server span"
        );
    }
}

#[tokio::test]
async fn every_error_is_json_with_the_right_status_and_the_service_keeps_serving() {
    let stack = Stack::start().await;
    let orders = stack.orders.url();
    let cases: Vec<(String, u16, &str)> = vec![
        (format!("{orders}/orders/abc"), 400, "invalid_id"),
        (format!("{orders}/orders/0"), 400, "invalid_id"),
        (format!("{orders}/orders/-1"), 400, "invalid_id"),
        (format!("{orders}/orders/1.5"), 400, "invalid_id"),
        (
            format!("{orders}/orders/9223372036854775808"),
            400,
            "invalid_id",
        ),
        (format!("{orders}/orders/%FF%FE"), 400, "invalid_id"),
        (format!("{orders}/orders/%31"), 200, ""),
        (format!("{orders}/orders/99999"), 404, "order_not_found"),
        (
            format!("{orders}/orders/9223372036854775807"),
            404,
            "order_not_found",
        ),
        (format!("{orders}/nope"), 404, "not_found"),
        (format!("{orders}/orders"), 400, "invalid_query"),
        (format!("{orders}/orders/1/extra"), 404, "not_found"),
        (format!("{}/users/0", stack.users.url()), 400, "invalid_id"),
        (
            format!("{}/users/1001", stack.users.url()),
            404,
            "user_not_found",
        ),
    ];
    for (url, status, code) in &cases {
        let response = stack.client.get(url).send().await.unwrap();
        assert_eq!(response.status().as_u16(), *status, "{url}");
        traceresponse(&response);
        let body: Json = response.json().await.unwrap();
        if *status != 200 {
            assert_eq!(body["error"]["code"], *code, "{url}: {body}");
            assert!(
                body["error"]["message"]
                    .as_str()
                    .is_some_and(|m| !m.is_empty()),
                "{body}"
            );
        }
    }
    // The probes are routed beside the traced routes, and answer a wrong method alike.
    for path in ["/orders/1", "/healthz"] {
        let response = stack
            .client
            .post(format!("{orders}{path}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 405, "POST {path}");
        let body: Json = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "method_not_allowed", "POST {path}");
    }

    // Unknown routes are named by method alone; a 4xx is not a server error.
    let response = stack
        .client
        .get(format!("{orders}/nope"))
        .send()
        .await
        .unwrap();
    let (trace_id, _, _) = traceresponse(&response);
    let spans = stack
        .collector
        .wait_for_trace(&trace_id, 1, WAIT)
        .await
        .unwrap();
    assert_eq!(spans[0].name, "GET");
    assert_eq!(spans[0].status.code, StatusCode::Unset);
    assert_eq!(int_attr(&spans[0], "http.response.status_code"), 404);
    assert!(spans[0].attr("http.route").is_none());

    let response = stack
        .client
        .get(format!("{orders}/orders/1"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        200,
        "still serving after every bad input"
    );
}

#[tokio::test]
async fn an_order_whose_user_is_missing_answers_the_order_with_a_null_user() {
    let stack = Stack::start().await;
    stack
        .orders_sql("INSERT INTO orders (id, user_id, item, quantity, total_cents) VALUES (20001, 5000, 'item-20001', 1, 100)")
        .await;
    let answer = get(
        &stack.client,
        &format!("{}/orders/20001", stack.orders.url()),
        &[],
    )
    .await;
    assert_eq!(answer.status, 200);
    let (trace_id, body) = (answer.trace_id(), answer.body);
    assert_eq!(body["order"]["user_id"], 5000);
    assert_eq!(body["user"], Json::Null);
    let spans = stack
        .collector
        .wait_for_trace(&trace_id, 7, WAIT)
        .await
        .unwrap();
    let enrich = only(&spans, "orders", "enrich-order");
    assert_eq!(enrich.attr("user.found"), Some(&Value::Bool(false)));
    let users_server = only(&spans, "users", "GET /users/{user_id}");
    assert_eq!(int_attr(users_server, "http.response.status_code"), 404);
}

#[tokio::test]
async fn users_service_down_is_a_502_with_an_error_span() {
    let stack = Stack::start().await;
    let closed_port = testkit::free_port();
    let orders = spawn_orders(
        &stack.collector,
        &stack.orders_db,
        &format!("http://127.0.0.1:{closed_port}"),
        &[],
    )
    .await;
    let answer = get(&stack.client, &format!("{}/orders/3", orders.url()), &[]).await;
    assert_eq!(answer.status, 502);
    let (trace_id, body) = (answer.trace_id(), answer.body);
    assert_eq!(body["error"]["code"], "users_unavailable");

    // A refused connection is transient: the call is tried again, and each try is a span.
    let spans = stack
        .collector
        .wait_for_trace(&trace_id, 7, WAIT)
        .await
        .unwrap();
    let server = only(&spans, "orders", "GET /orders/{order_id}");
    assert_eq!(server.status.code, StatusCode::Error);
    assert!(!server.status.message.is_empty());
    assert_eq!(str_attr(server, "error.type"), "users_unavailable");
    assert_eq!(int_attr(server, "http.response.status_code"), 502);
    let mut tries: Vec<&ReceivedSpan> = spans
        .iter()
        .filter(|s| s.service_name == "orders" && s.name == "GET")
        .collect();
    tries.sort_by_key(|s| s.start_unix_nanos);
    assert_eq!(tries.len(), 3, "the first try and two retries: {spans:#?}");
    for (n, client) in tries.iter().enumerate() {
        assert_eq!(client.status.code, StatusCode::Error);
        assert_eq!(str_attr(client, "error.type"), "connect");
        assert_eq!(client.parent_span_id, tries[0].parent_span_id, "siblings");
        let resends = client.int_attr("http.request.resend_count");
        assert_eq!(resends, (n > 0).then_some(n as i64), "try {n}");
    }
}

#[tokio::test]
async fn users_service_answering_5xx_is_a_502() {
    let stack = Stack::start().await;
    // A real failure inside users: its table is gone, so its query fails and it answers 500.
    stack.users_sql("DROP TABLE users").await;
    let answer = get(
        &stack.client,
        &format!("{}/orders/4", stack.orders.url()),
        &[],
    )
    .await;
    assert_eq!(answer.status, 502);
    let (trace_id, body) = (answer.trace_id(), answer.body);
    assert_eq!(body["error"]["code"], "users_unavailable");
    let spans = stack
        .collector
        .wait_for_trace(&trace_id, 7, WAIT)
        .await
        .unwrap();
    let users_db = only(&spans, "users", "db-query");
    assert_eq!(users_db.status.code, StatusCode::Error);
    assert_eq!(str_attr(users_db, "error.type"), "42P01");
    let users_server = only(&spans, "users", "GET /users/{user_id}");
    assert_eq!(users_server.status.code, StatusCode::Error);
    assert_eq!(int_attr(users_server, "http.response.status_code"), 500);
    let client = only(&spans, "orders", "GET");
    assert_eq!(str_attr(client, "error.type"), "500");
    assert_eq!(
        only(&spans, "orders", "GET /orders/{order_id}").status.code,
        StatusCode::Error
    );
}

#[tokio::test]
async fn users_service_too_slow_is_a_504_within_the_timeout() {
    let stack = Stack::start().await;
    // A listener that accepts connections and never answers: a hung users service.
    let hung = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hung_addr = hung.local_addr().unwrap();
    let _keep = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = hung.accept().await {
            held.push(socket);
        }
    });
    let orders = spawn_orders(
        &stack.collector,
        &stack.orders_db,
        &format!("http://{hung_addr}"),
        &[("USERS_TIMEOUT_MS", "300".into())],
    )
    .await;
    let started = std::time::Instant::now();
    let response = stack
        .client
        .get(format!("{}/orders/5", orders.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 504);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "answered within its timeout, not hung"
    );
    let (trace_id, _, _) = traceresponse(&response);
    let body: Json = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "users_timeout");
    let spans = stack
        .collector
        .wait_for_trace(&trace_id, 5, WAIT)
        .await
        .unwrap();
    assert_eq!(
        str_attr(only(&spans, "orders", "GET"), "error.type"),
        "timeout"
    );
    assert_eq!(
        str_attr(
            only(&spans, "orders", "GET /orders/{order_id}"),
            "error.type"
        ),
        "users_timeout"
    );
}

#[tokio::test]
async fn health_probes_create_no_spans() {
    let mut stack = Stack::start().await;
    for path in ["/healthz", "/readyz"] {
        for service in [&stack.orders, &stack.users] {
            let response = stack
                .client
                .get(format!("{}{path}", service.url()))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200, "{path}");
        }
    }
    let response = stack
        .client
        .get(format!("{}/orders/7", stack.orders.url()))
        .send()
        .await
        .unwrap();
    let (trace_id, _, _) = traceresponse(&response);
    stack.shutdown().await;
    let spans = stack.collector.spans();
    assert_eq!(spans.len(), 7, "only the order request's spans: {spans:#?}");
    assert!(spans.iter().all(|s| s.trace_id == trace_id));
}

#[tokio::test]
async fn spans_of_answered_requests_are_all_received_after_a_graceful_shutdown() {
    // A long batch delay: without the flush on shutdown nothing would have been exported.
    let env = [("OTEL_BSP_SCHEDULE_DELAY", "60000".to_owned())];
    let mut stack = Stack::start_with(&env, &env).await;
    const REQUESTS: usize = 25;
    for id in 1..=REQUESTS {
        let response = stack
            .client
            .get(format!("{}/orders/{id}", stack.orders.url()))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    let statuses = stack.shutdown().await;
    assert!(
        statuses.iter().all(|s| s.success()),
        "exit 0 on SIGTERM: {statuses:?}"
    );
    let spans = stack.collector.spans();
    assert_eq!(
        spans.len(),
        REQUESTS * 7,
        "every span of every answered request"
    );
}

#[tokio::test]
async fn spans_also_travel_over_otlp_http_protobuf() {
    let stack = Stack::start().await;
    let users = spawn_users(
        &stack.collector,
        &stack.users_db,
        &[
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf".into()),
            (
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                stack.collector.http_endpoint(),
            ),
        ],
    )
    .await;
    let response = stack
        .client
        .get(format!("{}/users/9", users.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let (trace_id, _, _) = traceresponse(&response);
    let spans = stack
        .collector
        .wait_for_trace(&trace_id, 2, WAIT)
        .await
        .unwrap();
    assert_eq!(
        only(&spans, "users", "GET /users/{user_id}").kind,
        SpanKind::Server
    );
    assert!(stack.collector.http_requests() > 0);
}

#[tokio::test]
async fn sampling_follows_the_otel_settings_and_the_callers_decision() {
    let stack = Stack::start().await;
    // Parent-based (the default): a caller that did not sample is followed, downstream too.
    let response = stack
        .client
        .get(format!("{}/orders/8", stack.orders.url()))
        .header("traceparent", format!("00-{TRACE_ID}-{PARENT_ID}-00"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let (trace_id, _, flags) = traceresponse(&response);
    assert_eq!((trace_id.as_str(), flags.as_str()), (TRACE_ID, "00"));

    let mut off = spawn_orders(
        &stack.collector,
        &stack.orders_db,
        &stack.users.url(),
        &[("OTEL_TRACES_SAMPLER", "always_off".into())],
    )
    .await;
    let response = stack
        .client
        .get(format!("{}/orders/8", off.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let (off_trace, _, flags) = traceresponse(&response);
    assert_eq!(flags, "00");
    // Stopped (SIGTERM flushes): any span it had queued has arrived by now.
    assert!(off.terminate().await.success());

    // A sampled request after both: once it has arrived, the others would have too.
    let response = stack
        .client
        .get(format!("{}/orders/9", stack.orders.url()))
        .send()
        .await
        .unwrap();
    let (sampled, _, _) = traceresponse(&response);
    stack
        .collector
        .wait_for_trace(&sampled, 7, WAIT)
        .await
        .unwrap();
    let mut stack = stack;
    assert!(stack.shutdown().await.iter().all(|s| s.success()));
    let spans = stack.collector.spans();
    assert!(
        !spans
            .iter()
            .any(|s| s.trace_id == TRACE_ID || s.trace_id == off_trace),
        "{spans:#?}"
    );
}

#[tokio::test]
async fn otel_sdk_disabled_exports_nothing_and_still_serves() {
    let stack = Stack::start().await;
    let mut orders = spawn_orders(
        &stack.collector,
        &stack.orders_db,
        &stack.users.url(),
        &[("OTEL_SDK_DISABLED", "true".into())],
    )
    .await;
    let response = stack
        .client
        .get(format!("{}/orders/10", orders.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers().get("traceresponse").is_none());
    assert!(orders.terminate().await.success());
    assert!(
        stack
            .collector
            .spans()
            .iter()
            .all(|s| s.service_name != "orders"),
        "a disabled SDK exports nothing"
    );
}

/// The `OTEL_*` variables are read as the OpenTelemetry specification says every SDK reads
/// them: enum values in any case, a boolean other than `true` as false, an unusable value
/// warned about in one log line and replaced by the default. The service starts, serves,
/// and traces as the defaults say.
#[tokio::test]
async fn otel_settings_follow_the_specification_warn_and_default() {
    struct Case {
        env: Vec<(&'static str, String)>,
        /// The variable the one warning line names, if any.
        warns: Option<&'static str>,
        /// Whether the request's spans reach the receiver.
        exports: bool,
    }
    let case = |env: &[(&'static str, &str)], warns, exports| Case {
        env: env.iter().map(|(k, v)| (*k, (*v).to_owned())).collect(),
        warns,
        exports,
    };
    let cases = [
        case(
            &[("OTEL_SDK_DISABLED", "1")],
            Some("OTEL_SDK_DISABLED"),
            true,
        ),
        case(&[("OTEL_SDK_DISABLED", "TRUE")], None, false),
        case(&[("OTEL_TRACES_SAMPLER", "ALWAYS_ON")], None, true),
        case(&[("OTEL_TRACES_SAMPLER", "Always_Off")], None, false),
        case(
            &[("OTEL_TRACES_SAMPLER", "sometimes")],
            Some("OTEL_TRACES_SAMPLER"),
            true,
        ),
        case(
            &[
                ("OTEL_TRACES_SAMPLER", "traceidratio"),
                ("OTEL_TRACES_SAMPLER_ARG", "abc"),
            ],
            Some("OTEL_TRACES_SAMPLER_ARG"),
            true,
        ),
        case(
            &[
                ("OTEL_TRACES_SAMPLER", "TraceIdRatio"),
                ("OTEL_TRACES_SAMPLER_ARG", "2"),
            ],
            Some("OTEL_TRACES_SAMPLER_ARG"),
            true,
        ),
        case(
            &[("OTEL_EXPORTER_OTLP_PROTOCOL", "carrier-pigeon")],
            Some("OTEL_EXPORTER_OTLP_PROTOCOL"),
            true,
        ),
        case(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "GRPC")], None, true),
        case(
            &[("OTEL_BSP_MAX_QUEUE_SIZE", "0")],
            Some("OTEL_BSP_MAX_QUEUE_SIZE"),
            true,
        ),
        case(
            &[("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "many")],
            Some("OTEL_BSP_MAX_EXPORT_BATCH_SIZE"),
            true,
        ),
        case(
            &[("OTEL_BSP_SCHEDULE_DELAY", "soon")],
            Some("OTEL_BSP_SCHEDULE_DELAY"),
            true,
        ),
        case(
            &[("OTEL_RESOURCE_ATTRIBUTES", "novalue")],
            Some("OTEL_RESOURCE_ATTRIBUTES"),
            true,
        ),
        // Not a URL: ignored, so the default (localhost:4317) is used, where nobody listens.
        case(
            &[("OTEL_EXPORTER_OTLP_ENDPOINT", "localhost:4317")],
            Some("OTEL_EXPORTER_OTLP_ENDPOINT"),
            false,
        ),
    ];
    let stack = Stack::start().await;
    for Case {
        env,
        warns,
        exports,
    } in cases
    {
        let mut orders =
            spawn_orders(&stack.collector, &stack.orders_db, &stack.users.url(), &env).await;
        let answer = get(&stack.client, &format!("{}/orders/5", orders.url()), &[]).await;
        assert_eq!(answer.status, 200, "{env:?}: {:?}", answer.body);
        let trace_id = answer.trace.as_ref().map(|t| t.trace_id.clone());
        assert!(orders.terminate().await.success(), "{env:?}");
        let logs = orders.logs();
        // Lines of the SDK's own (a failed export) are not what this is about.
        let warnings: Vec<&String> = logs
            .iter()
            .filter(|l| l.contains("WARN") && l.contains(" ignored: "))
            .collect();
        match warns {
            Some(var) => {
                assert_eq!(warnings.len(), 1, "{env:?}: one warning: {logs:#?}");
                assert!(
                    warnings[0].contains(var),
                    "{env:?}: names {var}: {warnings:?}"
                );
            }
            None => assert!(warnings.is_empty(), "{env:?}: no warning: {logs:#?}"),
        }
        let exported = trace_id.is_some_and(|id| {
            stack
                .collector
                .spans()
                .iter()
                .any(|s| s.trace_id == id && s.service_name == "orders")
        });
        assert_eq!(exported, exports, "{env:?}: spans exported? {logs:#?}");
    }
}

/// Other languages' guides say `OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4318`; with
/// gRPC (the default here) every export to that port fails. The service says so once, at
/// start, and the same for the other way round.
#[tokio::test]
async fn an_endpoint_on_the_other_protocols_port_is_named_at_start() {
    let stack = Stack::start().await;
    let endpoint = |url: &str| ("OTEL_EXPORTER_OTLP_ENDPOINT", url.to_owned());
    let http = ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf".to_owned());
    let traces = (
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "http://127.0.0.1:4318/v1/traces".to_owned(),
    );
    for (env, warned) in [
        (vec![endpoint("http://127.0.0.1:4318")], true),
        (vec![endpoint("http://127.0.0.1:4317"), http], true),
        (vec![traces], true),
        // The matching pair: no warning.
        (vec![endpoint("http://127.0.0.1:4317")], false),
    ] {
        let mut orders =
            spawn_orders(&stack.collector, &stack.orders_db, &stack.users.url(), &env).await;
        let answer = get(&stack.client, &format!("{}/orders/5", orders.url()), &[]).await;
        assert_eq!(answer.status, 200, "{env:?}");
        let logs = orders.logs();
        let warnings: Vec<&String> = logs
            .iter()
            .filter(|l| l.contains("WARN") && l.contains("every export will fail"))
            .collect();
        assert_eq!(warnings.len(), usize::from(warned), "{env:?}: {logs:#?}");
        if warned {
            assert!(
                warnings[0].contains("OTEL_EXPORTER_OTLP_PROTOCOL"),
                "{warnings:?}"
            );
        }
        orders.kill().await;
    }
}

#[tokio::test]
async fn a_missing_or_malformed_setting_of_ours_stops_start_up_naming_it() {
    let stack = Stack::start().await;
    let good_db = stack.orders_db.clone();
    let cases: Vec<(Vec<(&str, String)>, &str)> = vec![
        (vec![("DATABASE_URL", String::new())], "DATABASE_URL"),
        (
            vec![("DATABASE_URL", "mysql://nope".into())],
            "DATABASE_URL",
        ),
        (vec![("LISTEN_ADDR", "localhost".into())], "LISTEN_ADDR"),
        (vec![("USERS_URL", "not a url".into())], "USERS_URL"),
        (
            vec![("USERS_TIMEOUT_MS", "soon".into())],
            "USERS_TIMEOUT_MS",
        ),
        (vec![("LOG_FORMAT", "xml".into())], "LOG_FORMAT"),
        (
            vec![("TRACING_CONTEXT_ACTIVATION", "yes".into())],
            "TRACING_CONTEXT_ACTIVATION",
        ),
        (
            vec![("REQUEST_TIMEOUT_MS", "10s".into())],
            "REQUEST_TIMEOUT_MS",
        ),
        (
            vec![("MAX_CONCURRENT_REQUESTS", "0".into())],
            "MAX_CONCURRENT_REQUESTS",
        ),
    ];
    for (env, var) in cases {
        let mut full = vec![("DATABASE_URL", good_db.clone())];
        full.extend(env.iter().cloned());
        let (status, logs) = testkit::run_to_exit("orders", &full, WAIT).await;
        assert_eq!(status.code(), Some(2), "{var}: {logs:?}");
        let errors: Vec<_> = logs.iter().filter(|l| l.contains(var)).collect();
        assert_eq!(errors.len(), 1, "one line naming {var}: {logs:?}");
    }
}

#[tokio::test]
async fn an_unreachable_database_is_retried_then_start_up_fails_clearly() {
    let closed = testkit::free_port();
    let started = std::time::Instant::now();
    let (status, logs) = testkit::run_to_exit(
        "users",
        &[
            (
                "DATABASE_URL",
                format!("postgres://postgres@127.0.0.1:{closed}/users"),
            ),
            ("DATABASE_STARTUP_TIMEOUT_MS", "1500".into()),
        ],
        WAIT,
    )
    .await;
    assert!(!status.success());
    assert!(
        started.elapsed() >= Duration::from_millis(1000),
        "it retried before giving up"
    );
    assert!(
        logs.iter()
            .any(|l| l.contains("database not reachable after")),
        "{logs:?}"
    );
}

#[tokio::test]
async fn two_replicas_migrating_one_fresh_database_at_once_both_start() {
    let stack = Stack::start().await;
    let fresh = stack.postgres.create_database("orders").await;
    let users_url = stack.users.url();
    let (a, b) = tokio::join!(
        spawn_orders(&stack.collector, &fresh, &users_url, &[]),
        spawn_orders(&stack.collector, &fresh, &users_url, &[]),
    );
    for replica in [&a, &b] {
        let response = stack
            .client
            .get(format!("{}/orders/10000", replica.url()))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    let response = stack
        .client
        .get(format!("{}/orders/10001", a.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404, "seeded exactly once: ids 1..10000");
}
