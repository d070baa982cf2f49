//! The workshop's lessons, each checked on the spans that arrive: baggage-driven faults,
//! the three fan-out strategies, and propagation switched off.

use std::time::Duration;

use otlp_receiver::{ReceivedSpan, StatusCode};
use serde_json::Value;
use testkit::stack::Stack;

const WAIT: Duration = Duration::from_secs(20);

fn on() -> Vec<(&'static str, String)> {
    vec![("DEMO_FAULTS", "on".to_owned())]
}

async fn get(stack: &Stack, path: &str, baggage: Option<&str>) -> (u16, String, Value) {
    let headers: Vec<(&str, &str)> = baggage.map(|b| ("baggage", b)).into_iter().collect();
    let answer = testkit::traced::get(
        &stack.client,
        &format!("{}{path}", stack.orders.url()),
        &headers,
    )
    .await;
    let trace_id = answer.trace.map(|t| t.trace_id).unwrap_or_default();
    (answer.status, trace_id, answer.body)
}

fn named<'a>(spans: &'a [ReceivedSpan], service: &str, name: &str) -> Vec<&'a ReceivedSpan> {
    spans
        .iter()
        .filter(|s| s.service_name == service && s.name == name)
        .collect()
}

#[tokio::test]
async fn a_delay_in_baggage_crosses_orders_and_shows_as_a_slow_span_in_users() {
    let stack = Stack::start_with(&on(), &on()).await;
    let (status, trace_id, _) = get(&stack, "/orders/1", Some("demo.delay_ms=300")).await;
    assert_eq!(status, 200);
    let spans = stack
        .collector
        .wait_for_trace(&trace_id, 8, WAIT)
        .await
        .unwrap();
    let delay = named(&spans, "users", "demo-delay");
    assert_eq!(delay.len(), 1, "{spans:#?}");
    let lasted = delay[0].end_unix_nanos - delay[0].start_unix_nanos;
    assert!(lasted >= 300_000_000, "lasted {lasted} ns");
    assert_eq!(delay[0].int_attr("demo.delay_ms"), Some(300));
    let users_server = named(&spans, "users", "GET /users/{user_id}")[0];
    assert_eq!(
        delay[0].parent_span_id.as_deref(),
        Some(users_server.span_id.as_str())
    );
}

#[tokio::test]
async fn a_failure_in_baggage_sets_error_on_the_span_where_it_happens() {
    let stack = Stack::start_with(&on(), &on()).await;
    let (status, trace_id, body) = get(&stack, "/orders/2", Some("demo.fail=users")).await;
    assert_eq!(status, 502, "{body}");
    let spans = stack
        .collector
        .wait_for_trace(&trace_id, 6, WAIT)
        .await
        .unwrap();
    let fault = named(&spans, "users", "demo-fault");
    assert_eq!(fault.len(), 1, "{spans:#?}");
    assert_eq!(fault[0].status.code, StatusCode::Error);
    assert_eq!(
        named(&spans, "users", "GET /users/{user_id}")[0]
            .status
            .code,
        StatusCode::Error
    );

    let (status, trace_id, _) = get(&stack, "/orders/3", Some("demo.fail=db")).await;
    assert_eq!(status, 502);
    let spans = stack
        .collector
        .wait_for_trace(&trace_id, 7, WAIT)
        .await
        .unwrap();
    let db = named(&spans, "users", "db-query");
    assert_eq!(
        db.len(),
        1,
        "the failing query is the only users query: {spans:#?}"
    );
    assert_eq!(db[0].status.code, StatusCode::Error);
    assert_eq!(
        db[0].str_attr("error.type"),
        Some("22012"),
        "division by zero, really run"
    );
}

#[tokio::test]
async fn demo_baggage_is_checked_and_does_nothing_when_faults_are_off() {
    let stack = Stack::start_with(&on(), &on()).await;
    for bad in ["demo.delay_ms=soon", "demo.fail=kernel", "demo.delay_ms=-1"] {
        let (status, trace_id, body) = get(&stack, "/orders/4", Some(bad)).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert_eq!(body["error"]["code"], "invalid_baggage");
        assert!(!trace_id.is_empty(), "a refused request is traced too");
    }
    let (status, _, _) = get(&stack, "/orders/4", Some("team=blue,demo.unknown=1")).await;
    assert_eq!(status, 200, "unknown keys are ignored");

    let off = Stack::start().await;
    let (status, trace_id, _) =
        get(&off, "/orders/5", Some("demo.delay_ms=300,demo.fail=users")).await;
    assert_eq!(status, 200, "DEMO_FAULTS is off by default");
    let spans = off
        .collector
        .wait_for_trace(&trace_id, 7, WAIT)
        .await
        .unwrap();
    assert!(
        named(&spans, "users", "demo-delay").is_empty()
            && named(&spans, "users", "demo-fault").is_empty()
    );
}

fn overlaps(a: &ReceivedSpan, b: &ReceivedSpan) -> bool {
    a.start_unix_nanos < b.end_unix_nanos && b.start_unix_nanos < a.end_unix_nanos
}

#[tokio::test]
async fn the_three_fan_out_strategies_give_the_same_answer_and_different_traces() {
    let stack = Stack::start().await;
    let mut answers = Vec::new();
    for strategy in ["sequential", "parallel", "batched"] {
        let path = format!("/orders?user_id=7&limit=5&strategy={strategy}");
        let (status, trace_id, body) = get(&stack, &path, None).await;
        assert_eq!(status, 200, "{strategy}: {body}");
        let orders = body["orders"].as_array().unwrap();
        assert_eq!(orders.len(), 5);
        let mut listed: Vec<i64> = orders
            .iter()
            .map(|o| o["order"]["id"].as_i64().unwrap())
            .collect();
        listed.sort_unstable();
        assert!(
            orders
                .iter()
                .all(|o| o["order"]["user_id"] == 7 && o["user"]["id"] == 7)
        );
        answers.push(body);

        // Server span, its query and enrich-orders; per call, users' server span and its
        // query; per order (not batched), fetch-order and enrich-order around the call.
        let (users_calls, per_call) = if strategy == "batched" {
            (1, 3)
        } else {
            (5, 5)
        };
        let spans = stack
            .collector
            .wait_for_trace(&trace_id, 3 + per_call * users_calls, WAIT)
            .await
            .unwrap();
        let mut calls = named(&spans, "orders", "GET");
        calls.sort_by_key(|s| s.start_unix_nanos);
        assert_eq!(calls.len(), users_calls, "{strategy}");
        let parent = |child: &ReceivedSpan| -> &ReceivedSpan {
            let id = child.parent_span_id.as_deref().expect("a parent");
            spans
                .iter()
                .find(|s| s.span_id == id)
                .expect("the parent arrived")
        };
        let fan_out = testkit::only(&spans, "orders", "enrich-orders");
        let mut order_ids = Vec::new();
        for call in &calls {
            if strategy == "batched" {
                assert_eq!(parent(call).span_id, fan_out.span_id, "batched: {call:?}");
                continue;
            }
            // The tutorial's tree, once per order.
            let enrich = parent(call);
            let fetch = parent(enrich);
            assert_eq!(
                (enrich.name.as_str(), fetch.name.as_str()),
                ("enrich-order", "fetch-order")
            );
            assert_eq!(parent(fetch).span_id, fan_out.span_id);
            assert_eq!(enrich.int_attr("user.id"), Some(7));
            order_ids.push(fetch.int_attr("order.id").expect("order.id"));
        }
        if strategy != "batched" {
            order_ids.sort_unstable();
            assert_eq!(
                order_ids, listed,
                "{strategy}: one fetch-order per listed order"
            );
        } else {
            assert!(named(&spans, "orders", "fetch-order").is_empty());
        }
        assert_eq!(
            named(&spans, "users", "db-query").len(),
            users_calls,
            "{strategy}"
        );
        let any_overlap = calls.windows(2).any(|w| overlaps(w[0], w[1]));
        match strategy {
            "sequential" => assert!(!any_overlap, "a staircase: no two calls at once"),
            "parallel" => assert!(any_overlap, "calls side by side"),
            _ => {
                let query = named(&spans, "users", "db-query")[0]
                    .str_attr("db.query.text")
                    .unwrap();
                assert!(query.contains("= ANY($1)"), "{query}");
            }
        }
    }
    assert!(
        answers.windows(2).all(|w| w[0] == w[1]),
        "same JSON either way"
    );

    for bad in [
        "/orders?limit=5",
        "/orders?user_id=0",
        "/orders?user_id=1&limit=51",
        "/orders?user_id=1&strategy=magic",
    ] {
        let (status, _, body) = get(&stack, bad, None).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert_eq!(body["error"]["code"], "invalid_query");
    }
    let response = stack
        .client
        .get(format!("{}/users?ids=1,x", stack.users.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
}

#[tokio::test]
async fn with_propagation_off_one_request_becomes_two_unrelated_traces() {
    let stack = Stack::start_with(&[], &[("PROPAGATION", "off".to_owned())]).await;
    let (status, trace_id, _) = get(&stack, "/orders/6", None).await;
    assert_eq!(status, 200);
    let spans = stack
        .collector
        .wait_for(
            |s| s.iter().any(|s| s.service_name == "users") && s.len() >= 7,
            WAIT,
        )
        .await
        .unwrap();
    let orders: Vec<_> = spans
        .iter()
        .filter(|s| s.service_name == "orders")
        .collect();
    let users: Vec<_> = spans.iter().filter(|s| s.service_name == "users").collect();
    assert_eq!(orders.len(), 5, "orders is still fully traced");
    assert!(orders.iter().all(|s| s.trace_id == trace_id));
    assert!(
        users.iter().all(|s| s.trace_id != trace_id),
        "users started its own trace"
    );
    let users_root = users
        .iter()
        .find(|s| s.name == "GET /users/{user_id}")
        .unwrap();
    assert_eq!(users_root.parent_span_id, None);
}
