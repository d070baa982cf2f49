//! `POST /orders` and `orders-worker`: the context through the outbox (child, link, off),
//! the Rust pitfalls, retries and parking, and a worker stopped mid-batch. Real Postgres,
//! real processes, spans read from our OTLP receiver.

use std::time::Duration;

use otlp_receiver::{ReceivedSpan, SpanKind, StatusCode};
use serde_json::{Value as Json, json};
use testkit::stack::Stack;

const WAIT: Duration = Duration::from_secs(30);

struct Posted {
    status: u16,
    body: Json,
    trace_id: Option<String>,
    location: Option<String>,
}

async fn post(stack: &Stack, body: &str, headers: &[(&str, &str)]) -> Posted {
    let mut request = stack
        .client
        .post(format!("{}/orders", stack.orders.url()))
        .header("content-type", "application/json")
        .body(body.to_owned());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("orders answers");
    let trace_id = testkit::traced::traceresponse(&response).map(|t| t.trace_id);
    let location = response
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned());
    let status = response.status().as_u16();
    let body = response.json().await.expect("a JSON body");
    Posted {
        status,
        body,
        trace_id,
        location,
    }
}

/// Places an order for user `user_id`; its trace id.
async fn place(stack: &Stack, user_id: i64, headers: &[(&str, &str)]) -> String {
    let body = json!({"user_id": user_id, "item": "tea", "quantity": 2}).to_string();
    let posted = post(stack, &body, headers).await;
    assert_eq!(posted.status, 201, "{}", posted.body);
    posted.trace_id.expect("traceresponse")
}

async fn scalar(stack: &Stack, sql: &str) -> i64 {
    use sqlx::Connection as _;
    let mut connection = sqlx::PgConnection::connect(&stack.orders_db).await.unwrap();
    sqlx::query_scalar(sql)
        .fetch_one(&mut connection)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

fn named<'a>(spans: &'a [ReceivedSpan], service: &str, name: &str) -> Vec<&'a ReceivedSpan> {
    spans
        .iter()
        .filter(|s| s.service_name == service && s.name == name)
        .collect()
}

fn parent_of<'a>(spans: &'a [ReceivedSpan], child: &ReceivedSpan) -> Option<&'a ReceivedSpan> {
    let parent = child.parent_span_id.as_deref()?;
    spans.iter().find(|s| s.span_id == parent)
}

async fn wait_for_spans(
    stack: &Stack,
    what: &str,
    done: impl FnMut(&[ReceivedSpan]) -> bool,
) -> Vec<ReceivedSpan> {
    stack
        .collector
        .wait_for(done, WAIT)
        .await
        .unwrap_or_else(|e| panic!("{what}: {e}"))
}

/// POSTs `size` bytes in chunks, with no Content-Length; the answer's status.
async fn chunked_post(stack: &Stack, size: usize) -> u16 {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(stack.orders.addr)
        .await
        .unwrap();
    let head = "POST /orders HTTP/1.1\r\nhost: orders\r\ncontent-type: application/json\r\n\
                transfer-encoding: chunked\r\nconnection: close\r\n\r\n";
    stream.write_all(head.as_bytes()).await.unwrap();
    let chunk = format!("400\r\n{}\r\n", "x".repeat(1024));
    for _ in 0..size / 1024 {
        // The server may answer and close before the whole body is sent.
        if stream.write_all(chunk.as_bytes()).await.is_err() {
            break;
        }
    }
    let _ = stream.write_all(b"0\r\n\r\n").await;
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer).await;
    answer
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP answer: {answer:?}"))
}

fn count(spans: &[ReceivedSpan], service: &str, name: &str) -> usize {
    named(spans, service, name).len()
}

#[tokio::test]
async fn every_bad_order_body_has_its_json_error_and_orders_keeps_serving() {
    let stack = Stack::start().await;
    let big = format!(
        r#"{{"user_id":1,"item":"{}","quantity":1}}"#,
        "x".repeat(20_000)
    );
    let json_cases: &[(&str, u16, &str)] = &[
        ("not json", 400, "invalid_body"),
        (r#"{"user_id":1,"item":"tea"}"#, 400, "invalid_body"),
        (
            r#"{"user_id":"1","item":"tea","quantity":1}"#,
            400,
            "invalid_body",
        ),
        (
            r#"{"user_id":1,"item":"tea","quantiy":1,"quantity":1}"#,
            400,
            "invalid_body",
        ),
        (r#"[1,2]"#, 400, "invalid_body"),
        (
            r#"{"user_id":1,"item":"tea","quantity":99999999999}"#,
            400,
            "invalid_body",
        ),
        (
            r#"{"user_id":0,"item":"tea","quantity":1}"#,
            400,
            "invalid_order",
        ),
        (
            r#"{"user_id":1,"item":"tea","quantity":0}"#,
            400,
            "invalid_order",
        ),
        (
            r#"{"user_id":1,"item":"tea","quantity":101}"#,
            400,
            "invalid_order",
        ),
        (
            r#"{"user_id":1,"item":"  ","quantity":1}"#,
            400,
            "invalid_order",
        ),
        (
            r#"{"user_id":1,"item":"a\u0007b","quantity":1}"#,
            400,
            "invalid_order",
        ),
        (
            r#"{"user_id":999999,"item":"tea","quantity":1}"#,
            404,
            "user_not_found",
        ),
        (&big, 413, "body_too_large"),
    ];
    let good = r#"{"user_id":1,"item":"tea","quantity":1}"#;
    let cases = json_cases
        .iter()
        .map(|(body, status, code)| (*body, "application/json", *status, *code))
        .chain([(good, "text/plain", 415, "unsupported_media_type")]);
    for (body, content_type, status, code) in cases {
        let response = stack
            .client
            .post(format!("{}/orders", stack.orders.url()))
            .header("content-type", content_type)
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        let short: String = body.chars().take(60).collect();
        assert_eq!(response.status().as_u16(), status, "{short}");
        let answer: Json = response.json().await.unwrap();
        assert_eq!(answer["error"]["code"], code, "{short}: {answer}");
        assert!(
            answer["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
    }
    // A body too large without a declared length (chunked) meets the same limit.
    assert_eq!(chunked_post(&stack, 40 * 1024).await, 413);
    assert_eq!(
        scalar(&stack, "SELECT count(*) FROM outbox").await,
        0,
        "nothing queued"
    );

    // Still serving: a good order is placed and can be read back.
    let posted = post(
        &stack,
        r#"{"user_id":7,"item":" green tea ","quantity":3}"#,
        &[],
    )
    .await;
    assert_eq!(posted.status, 201, "{}", posted.body);
    let id = posted.body["id"].as_i64().unwrap();
    assert!(id > 10_000, "new ids follow the seed's: {id}");
    assert_eq!(
        posted.location.as_deref(),
        Some(format!("/orders/{id}").as_str())
    );
    assert_eq!(posted.body["item"], "green tea");
    assert_eq!(posted.body["total_cents"], 750);
    let read = testkit::traced::get(
        &stack.client,
        &format!("{}/orders/{id}", stack.orders.url()),
        &[],
    )
    .await;
    assert_eq!(read.body["order"]["user_id"], 7);
    assert_eq!(
        scalar(&stack, "SELECT count(*) FROM outbox").await,
        1,
        "one message per order"
    );
}

#[tokio::test]
async fn child_the_worker_continues_the_producers_trace_through_the_queue() {
    let stack = Stack::start_with(&[("DEMO_FAULTS", "on".into())], &[]).await;
    let mut worker = stack.spawn_worker(&[]).await;
    let trace_id = place(&stack, 3, &[("baggage", "demo.delay_ms=120")]).await;
    let spans = stack
        .collector
        .wait_for_trace(&trace_id, 15, WAIT)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", worker.logs().join("\n")));

    let send = &named(&spans, "orders", "send order-confirmations")[..];
    assert_eq!(send.len(), 1, "{spans:#?}");
    let send = send[0];
    assert_eq!(send.kind, SpanKind::Producer);
    assert_eq!(send.str_attr("messaging.system"), Some("postgresql"));
    assert_eq!(send.str_attr("messaging.operation.type"), Some("send"));
    assert_eq!(
        send.str_attr("messaging.destination.name"),
        Some("order-confirmations")
    );
    let message_id = send
        .str_attr("messaging.message.id")
        .expect("message id")
        .to_owned();
    let place_order = parent_of(&spans, send).expect("send has a parent");
    assert_eq!(place_order.name, "place-order");
    // The message row is written inside the send span.
    assert!(
        spans
            .iter()
            .any(|s| s.parent_span_id.as_deref() == Some(&send.span_id)
                && s.name == "db-query"
                && s.str_attr("db.collection.name") == Some("outbox"))
    );

    let process = &named(&spans, "orders-worker", "process order-confirmations")[..];
    assert_eq!(process.len(), 1, "{spans:#?}");
    let process = process[0];
    assert_eq!(process.kind, SpanKind::Consumer);
    assert_eq!(
        process.parent_span_id.as_deref(),
        Some(send.span_id.as_str()),
        "a child of send"
    );
    assert_eq!(
        process.str_attr("messaging.operation.type"),
        Some("process")
    );
    assert_eq!(
        process.str_attr("messaging.message.id"),
        Some(message_id.as_str())
    );
    assert!(
        process.start_unix_nanos >= send.end_unix_nanos,
        "the gap: the message waited"
    );
    // message -> worker -> HTTP -> users, one trace, baggage included (users waited).
    let call = spans
        .iter()
        .find(|s| {
            s.service_name == "orders-worker" && s.kind == SpanKind::Client && s.name == "GET"
        })
        .expect("the worker's call to users");
    assert_eq!(
        parent_of(&spans, call).map(|s| &s.span_id),
        Some(&process.span_id)
    );
    let users = spans
        .iter()
        .filter(|s| s.service_name == "users" && s.kind == SpanKind::Server)
        .find(|s| s.parent_span_id.as_deref() == Some(&call.span_id))
        .expect("users continues the worker's call");
    assert!(
        spans
            .iter()
            .any(|s| s.name == "demo-delay" && s.parent_span_id.as_deref() == Some(&users.span_id)),
        "the baggage crossed the queue"
    );

    assert_eq!(
        scalar(
            &stack,
            "SELECT count(*) FROM outbox WHERE processed_at IS NOT NULL"
        )
        .await,
        1
    );
    assert_eq!(
        scalar(&stack, "SELECT count(*) FROM order_confirmations").await,
        1
    );
    assert!(worker.terminate().await.success());
}

#[tokio::test]
async fn link_a_batch_is_a_trace_of_its_own_linking_every_producer() {
    let stack = Stack::start().await;
    // Queued before the worker runs, so one poll claims all three.
    let mut producers = Vec::new();
    for user in [1, 2, 3] {
        producers.push(place(&stack, user, &[]).await);
    }
    let mut worker = stack
        .spawn_worker(&[("ASYNC_CONTEXT", "link".into())])
        .await;
    let spans = wait_for_spans(&stack, "the batch and its three confirmations", |spans| {
        count(spans, "orders-worker", "process order-confirmations") == 1
            && count(spans, "orders-worker", "confirm-order") == 3
            && count(spans, "orders", "send order-confirmations") == 3
    })
    .await;
    let batch = named(&spans, "orders-worker", "process order-confirmations")[0];
    assert_eq!(batch.kind, SpanKind::Consumer);
    assert_eq!(batch.parent_span_id, None, "a root");
    assert_eq!(batch.int_attr("messaging.batch.message_count"), Some(3));
    assert!(!producers.contains(&batch.trace_id), "a new trace");
    let mut linked: Vec<(String, String)> = batch.links.clone();
    linked.sort();
    let mut sends: Vec<(String, String)> = named(&spans, "orders", "send order-confirmations")
        .iter()
        .map(|s| (s.trace_id.clone(), s.span_id.clone()))
        .collect();
    sends.sort();
    assert_eq!(linked, sends, "one link per message, to its send span");
    for confirm in named(&spans, "orders-worker", "confirm-order") {
        assert_eq!(
            confirm.parent_span_id.as_deref(),
            Some(batch.span_id.as_str())
        );
        assert!(confirm.int_attr("order.id").is_some());
    }
    assert!(worker.terminate().await.success());
}

#[tokio::test]
async fn off_every_message_starts_an_unrelated_trace() {
    let stack = Stack::start().await;
    let mut worker = stack.spawn_worker(&[("ASYNC_CONTEXT", "off".into())]).await;
    let trace_id = place(&stack, 4, &[]).await;
    let spans = wait_for_spans(&stack, "the process span", |spans| {
        count(spans, "orders-worker", "process order-confirmations") == 1
            && count(spans, "orders", "send order-confirmations") == 1
    })
    .await;
    let process = named(&spans, "orders-worker", "process order-confirmations")[0];
    assert_eq!(process.parent_span_id, None);
    assert_ne!(process.trace_id, trace_id);
    assert!(process.links.is_empty());
    assert!(worker.terminate().await.success());
}

#[tokio::test]
async fn pitfall_spawn_orphans_the_users_call() {
    let stack = Stack::start().await;
    let mut worker = stack
        .spawn_worker(&[("DEMO_PITFALL", "spawn".into())])
        .await;
    let trace_id = place(&stack, 5, &[]).await;
    let spans = wait_for_spans(&stack, "the orphaned call", |spans| {
        count(spans, "orders-worker", "process order-confirmations") == 1
            && spans
                .iter()
                .any(|s| s.service_name == "orders-worker" && s.name == "GET")
    })
    .await;
    let process = named(&spans, "orders-worker", "process order-confirmations")[0];
    assert_eq!(
        process.trace_id, trace_id,
        "the process span itself is fine"
    );
    let call = named(&spans, "orders-worker", "GET")[0];
    assert_eq!(
        call.parent_span_id, None,
        "spawned without its span: a root"
    );
    assert_ne!(call.trace_id, trace_id);
    assert!(worker.terminate().await.success());
}

#[tokio::test]
async fn pitfall_context_cuts_users_off() {
    let stack = Stack::start().await;
    let mut worker = stack
        .spawn_worker(&[("DEMO_PITFALL", "context".into())])
        .await;
    let trace_id = place(&stack, 6, &[]).await;
    let spans = wait_for_spans(&stack, "users' new trace", |spans| {
        spans
            .iter()
            .any(|s| s.service_name == "orders-worker" && s.name == "GET")
            && spans
                .iter()
                .filter(|s| s.service_name == "users" && s.kind == SpanKind::Server)
                .count()
                == 2
    })
    .await;
    let call = named(&spans, "orders-worker", "GET")[0];
    assert_eq!(call.trace_id, trace_id, "the worker's own spans are whole");
    let cut = spans
        .iter()
        .find(|s| s.service_name == "users" && s.kind == SpanKind::Server && s.trace_id != trace_id)
        .expect("users' span of the worker's call, in a trace of its own");
    assert_eq!(cut.parent_span_id, None, "no traceparent reached users");
    assert!(worker.terminate().await.success());
}

#[tokio::test]
async fn a_failing_message_is_retried_with_a_bound_then_parked_in_its_span() {
    let stack = Stack::start().await;
    let trace_id = place(&stack, 8, &[]).await;
    // Users unreachable for the worker only: every try fails.
    let nowhere = format!("http://127.0.0.1:{}", testkit::free_port());
    let mut worker = testkit::stack::spawn_worker(
        &stack.collector,
        &stack.orders_db,
        &nowhere,
        &[
            ("OUTBOX_MAX_ATTEMPTS", "3".into()),
            ("OUTBOX_RETRY_DELAY_MS", "50".into()),
        ],
    )
    .await;
    let spans = wait_for_spans(&stack, "three tries", |spans| {
        count(spans, "orders-worker", "process order-confirmations") == 3
    })
    .await;
    let mut tries: Vec<&ReceivedSpan> =
        named(&spans, "orders-worker", "process order-confirmations");
    tries.sort_by_key(|s| s.int_attr("outbox.attempt"));
    for (n, attempt) in tries.iter().enumerate() {
        assert_eq!(
            attempt.trace_id, trace_id,
            "every try continues the order's trace"
        );
        assert_eq!(attempt.int_attr("outbox.attempt"), Some(n as i64 + 1));
        assert_eq!(attempt.status.code, StatusCode::Error);
    }
    assert_eq!(tries[2].str_attr("error.type"), Some("parked"));
    assert_eq!(tries[1].str_attr("error.type"), Some("users_unavailable"));
    testkit::eventually(
        WAIT,
        || async {
            (scalar(
                &stack,
                "SELECT count(*) FROM outbox WHERE parked_at IS NOT NULL AND attempts = 3",
            )
            .await
                == 1)
                .then_some(())
        },
        || "the message parked after three tries".into(),
    )
    .await;
    // Parked means never claimed again.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        count(
            &stack.collector.spans(),
            "orders-worker",
            "process order-confirmations"
        ),
        3
    );
    assert_eq!(
        scalar(&stack, "SELECT count(*) FROM order_confirmations").await,
        0
    );
    assert!(worker.terminate().await.success());
}

#[tokio::test]
async fn sigterm_mid_batch_then_restart_processes_every_message_once() {
    const MESSAGES: i64 = 6;
    let stack = Stack::start_with(&[("DEMO_FAULTS", "on".into())], &[]).await;
    // Each confirmation waits 300 ms in users (the baggage crosses the queue), so the batch
    // of six takes about two seconds.
    for user in 1..=MESSAGES {
        place(&stack, user, &[("baggage", "demo.delay_ms=300")]).await;
    }
    let mut worker = stack.spawn_worker(&[]).await;
    wait_for_spans(&stack, "the first message processed", |spans| {
        count(spans, "orders-worker", "process order-confirmations") >= 1
    })
    .await;
    assert!(
        worker.terminate().await.success(),
        "{}",
        worker.logs().join("\n")
    );
    let done_by_first = scalar(&stack, "SELECT count(*) FROM order_confirmations").await;
    assert!(
        (1..MESSAGES).contains(&done_by_first),
        "stopped mid-batch: {done_by_first} of {MESSAGES} committed"
    );

    let mut worker = stack.spawn_worker(&[]).await;
    testkit::eventually(
        WAIT,
        || async {
            (scalar(
                &stack,
                "SELECT count(*) FROM outbox WHERE processed_at IS NOT NULL",
            )
            .await
                == MESSAGES)
                .then_some(())
        },
        || "every message processed after the restart".into(),
    )
    .await;
    assert!(worker.terminate().await.success());
    assert_eq!(
        scalar(
            &stack,
            "SELECT count(DISTINCT message_id) FROM order_confirmations"
        )
        .await,
        MESSAGES
    );
    assert_eq!(
        scalar(&stack, "SELECT count(*) FROM order_confirmations").await,
        MESSAGES,
        "none twice"
    );
    let spans = stack.collector.spans();
    let mut processed: Vec<&str> = named(&spans, "orders-worker", "process order-confirmations")
        .iter()
        .map(|s| s.str_attr("messaging.message.id").unwrap())
        .collect();
    processed.sort();
    processed.dedup();
    assert_eq!(processed.len() as i64, MESSAGES);
    assert_eq!(
        count(&spans, "orders-worker", "process order-confirmations") as i64,
        MESSAGES,
        "one process span per message: none processed twice"
    );
}
