//! Trace context and baggage by the W3C rules, end to end: what a caller sends to orders,
//! what orders passes on, and what users receives, read off the spans both export.

use std::time::Duration;

use otlp_receiver::ReceivedSpan;
use testkit::{
    only,
    stack::{Stack, spawn_orders},
    traced::get,
    wiretap::WireTap,
};

const WAIT: Duration = Duration::from_secs(15);
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

/// The W3C trace flags among the OTLP span flags (the low byte).
fn trace_flags(span: &ReceivedSpan) -> u32 {
    span.flags & 0xff
}

#[tokio::test]
async fn the_callers_context_crosses_both_services_cleaned_by_the_rules() {
    let stack = Stack::start().await;
    let url = format!("{}/orders/2", stack.orders.url());
    // Level 2: sampled + random. Two tracestate headers, one list, with a repeated key and
    // an empty member.
    let answer = get(
        &stack.client,
        &url,
        &[
            (
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03",
            ),
            ("tracestate", "rojo=00f067aa0ba902b7,,"),
            ("tracestate", "congo=t61rcWkgMzE,rojo=again"),
        ],
    )
    .await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.trace_id(), TRACE_ID, "the caller's trace continues");
    let spans = stack
        .collector
        .wait_for_trace(TRACE_ID, 7, WAIT)
        .await
        .unwrap();
    let orders = only(&spans, "orders", "GET /orders/{order_id}");
    let client = only(&spans, "orders", "GET");
    let users = only(&spans, "users", "GET /users/{user_id}");
    assert_eq!(orders.parent_span_id.as_deref(), Some("00f067aa0ba902b7"));
    assert_eq!(
        users.parent_span_id.as_deref(),
        Some(client.span_id.as_str())
    );
    for s in [orders, client, users] {
        assert_eq!(
            s.trace_state, "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE",
            "{} {}",
            s.service_name, s.name
        );
        assert_eq!(
            trace_flags(s),
            0x03,
            "{} {}: random travels on",
            s.service_name,
            s.name
        );
    }
    assert_eq!(answer.trace.as_ref().unwrap().flags, "03");
}

/// A `tracestate` is one list, passed on whole or not at all (W3C Trace Context, 3.3.1.1),
/// as the W3C test suite checks it at STRICT_LEVEL=2: what users records is what orders
/// received, or nothing when any member of the list breaks the grammar.
#[tokio::test]
async fn a_tracestate_is_passed_on_whole_or_not_at_all() {
    let stack = Stack::start().await;
    let url = format!("{}/orders/2", stack.orders.url());
    let members = |range: std::ops::RangeInclusive<usize>| -> String {
        range
            .map(|i| format!("bar{i:02}={i:02}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    let key_256 = format!("{}=1", "z".repeat(256));
    let cases: Vec<(Vec<String>, String)> = vec![
        (vec!["rojo=1,Bad=1".into()], String::new()),
        (vec!["rojo=1".into(), "foo.bar=1".into()], String::new()),
        (vec!["@foo=1,bar=2".into()], String::new()),
        (vec!["foo=,bar=3".into()], String::new()),
        (vec!["foo=bar=baz".into()], String::new()),
        (
            vec!["foo=1".into(), format!("{}=1", "z".repeat(257))],
            String::new(),
        ),
        (
            vec!["foo=1".into(), key_256.clone()],
            format!("foo=1,{key_256}"),
        ),
        (vec!["a=1,,b=2".into(), " \t ".into()], "a=1,b=2".into()),
        (vec!["foo@=1,bar=2".into()], "foo@=1,bar=2".into()),
        (
            vec![members(1..=10), members(11..=20), members(21..=32)],
            members(1..=32),
        ),
        (vec![members(1..=20), members(21..=33)], String::new()),
    ];
    for (n, (sent, expected)) in cases.iter().enumerate() {
        let trace_id = format!("{:032x}", 0x7ace_0000 + n);
        let traceparent = format!("00-{trace_id}-00f067aa0ba902b7-01");
        let mut headers = vec![("traceparent", traceparent.as_str())];
        headers.extend(sent.iter().map(|v| ("tracestate", v.as_str())));
        let answer = get(&stack.client, &url, &headers).await;
        assert_eq!(answer.status, 200, "{sent:?}: {:?}", answer.body);
        assert_eq!(answer.trace_id(), trace_id, "{sent:?}: the trace continues");
        let spans = stack
            .collector
            .wait_for_trace(&trace_id, 7, WAIT)
            .await
            .unwrap();
        for s in [
            only(&spans, "orders", "GET /orders/{order_id}"),
            only(&spans, "users", "GET /users/{user_id}"),
        ] {
            assert_eq!(
                &s.trace_state, expected,
                "{sent:?}, in {} {}",
                s.service_name, s.name
            );
        }
    }

    // A value that is not visible ASCII is a member that breaks the grammar, not a header
    // to leave out: the list goes, the trace continues.
    let trace_id = "7ace00000000000000000000000000ff";
    let response = stack
        .client
        .get(&url)
        .header("traceparent", format!("00-{trace_id}-00f067aa0ba902b7-01"))
        .header("tracestate", "rojo=1")
        .header(
            "tracestate",
            reqwest::header::HeaderValue::from_bytes(b"x=\xff").unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let spans = stack
        .collector
        .wait_for_trace(trace_id, 7, WAIT)
        .await
        .unwrap();
    assert_eq!(
        only(&spans, "users", "GET /users/{user_id}").trace_state,
        ""
    );
}

/// What the spans cannot show, read on the wire between orders and users: keys that the
/// Level 2 grammar allows and opentelemetry's `TraceState` cannot hold, and the `random`
/// flag of an unsampled request, whose spans are not recorded.
#[tokio::test]
async fn level_2_keys_and_the_random_flag_reach_users_on_the_wire() {
    let stack = Stack::start().await;
    let tap = WireTap::start(stack.users.addr).await;
    let orders = spawn_orders(&stack.collector, &stack.orders_db, &tap.url(), &[]).await;
    let url = format!("{}/orders/2", orders.url());

    let level_2 = format!("foo@@bar=1,foo@bar@baz=2,t@{}=3,rojo=4", "v".repeat(15));
    let answer = get(
        &stack.client,
        &url,
        &[
            (
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            ),
            ("tracestate", &level_2),
        ],
    )
    .await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert_eq!(tap.header_values("tracestate"), [level_2]);

    let random_unsampled = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-02";
    let answer = get(&stack.client, &url, &[("traceparent", random_unsampled)]).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    let trace = answer.trace.expect("a traceresponse, sampled or not");
    assert_eq!(
        (trace.trace_id.as_str(), trace.flags.as_str()),
        ("0af7651916cd43dd8448eb211c80319c", "02")
    );
    let sent = tap.header_values("traceparent");
    assert_eq!(sent.len(), 2, "one call to users per request: {sent:?}");
    // The parent users sees is orders' client span: unrecorded, but with an id of its own.
    let (trace_id, rest) = sent[1]
        .strip_prefix("00-")
        .and_then(|rest| rest.split_once('-'))
        .expect("a version 00 traceparent");
    let (client_span_id, flags) = rest.split_once('-').expect("span id and flags");
    assert_eq!(
        (trace_id, flags),
        ("0af7651916cd43dd8448eb211c80319c", "02"),
        "users is called in orders' unsampled trace, random flag kept: {sent:?}"
    );
    assert_eq!(client_span_id.len(), 16, "{sent:?}");
    assert_ne!(
        client_span_id, trace.span_id,
        "a span of its own, under the server span"
    );
    assert_ne!(client_span_id, "b7ad6b7169203331", "not the caller's span");
    assert!(
        tap.header_values("tracestate").len() == 1,
        "no tracestate was sent with the second request"
    );
}

#[tokio::test]
async fn two_traceparents_start_a_new_trace_and_drop_the_tracestate() {
    let stack = Stack::start().await;
    let url = format!("{}/orders/3", stack.orders.url());
    let parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let answer = get(
        &stack.client,
        &url,
        &[
            ("traceparent", parent),
            ("traceparent", parent),
            ("tracestate", "rojo=00f067aa0ba902b7"),
        ],
    )
    .await;
    assert_eq!(answer.status, 200);
    let trace_id = answer.trace_id();
    assert_ne!(trace_id, TRACE_ID);
    let spans = stack
        .collector
        .wait_for_trace(&trace_id, 7, WAIT)
        .await
        .unwrap();
    let users = only(&spans, "users", "GET /users/{user_id}");
    assert_eq!(
        users.trace_state, "",
        "no tracestate without a valid traceparent"
    );
    assert_eq!(
        only(&spans, "orders", "GET /orders/{order_id}").parent_span_id,
        None
    );
}

#[tokio::test]
async fn baggage_beyond_the_limits_is_not_forwarded() {
    let on = [("DEMO_FAULTS", "on".to_owned())];
    let stack = Stack::start_with(&on, &on).await;
    let url = format!("{}/orders/4", stack.orders.url());
    let fillers = |n: usize| -> Vec<String> { (0..n).map(|i| format!("f{i}=1")).collect() };

    // The 64th member is within the limit: it reaches users, which fails as asked.
    let mut within = fillers(63);
    within.push("demo.fail=users".to_owned());
    let answer = get(&stack.client, &url, &[("baggage", &within.join(","))]).await;
    assert_eq!(answer.status, 502, "{:?}", answer.body);

    // The 65th member is dropped by the member limit, one past 8192 bytes by the size limit.
    let mut beyond = fillers(64);
    beyond.push("demo.fail=users".to_owned());
    let answer = get(&stack.client, &url, &[("baggage", &beyond.join(","))]).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);

    let big = format!("pad={}", "x".repeat(8180));
    let answer = get(
        &stack.client,
        &url,
        &[("baggage", &format!("{big},demo.fail=users"))],
    )
    .await;
    assert_eq!(answer.status, 200, "past 8192 bytes: {:?}", answer.body);

    let answer = get(
        &stack.client,
        &url,
        &[("baggage", "bad key=1"), ("baggage", "demo.fail=users")],
    )
    .await;
    assert_eq!(
        answer.status, 502,
        "a malformed member is dropped, the next header's member kept: {:?}",
        answer.body
    );
}

/// Orders never samples a request of its own; users would sample any trace it starts. An
/// unsampled request must still carry its trace (flag 00) to users, so users sends nothing
/// either; a sampled one keeps every span, orders' inner ones included.
#[tokio::test]
async fn an_unsampled_request_stays_unsampled_in_users_and_a_sampled_one_is_whole() {
    let sampler = |s: &str| vec![("OTEL_TRACES_SAMPLER", s.to_owned())];
    let mut stack = Stack::start_with(
        &sampler("parentbased_always_on"),
        &sampler("parentbased_always_off"),
    )
    .await;
    let url = format!("{}/orders/3", stack.orders.url());
    let unsampled = get(&stack.client, &url, &[]).await;
    assert_eq!(unsampled.status, 200);
    let trace = unsampled
        .trace
        .expect("traceresponse even when not sampled");
    assert_eq!(trace.flags, "00");

    let sampled = get(
        &stack.client,
        &url,
        &[(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )],
    )
    .await;
    assert_eq!(sampled.status, 200);
    let spans = stack
        .collector
        .wait_for_trace(TRACE_ID, 7, WAIT)
        .await
        .unwrap();
    for name in [
        "GET /orders/{order_id}",
        "fetch-order",
        "enrich-order",
        "db-query",
        "GET",
    ] {
        only(&spans, "orders", name);
    }
    for name in ["GET /users/{user_id}", "db-query"] {
        only(&spans, "users", name);
    }

    // Both flush everything on SIGTERM: whatever the unsampled request made has arrived.
    stack.shutdown().await;
    let stray: Vec<String> = stack
        .collector
        .spans()
        .into_iter()
        .filter(|s| s.trace_id != TRACE_ID)
        .map(|s| format!("{} {} trace={}", s.service_name, s.name, s.trace_id))
        .collect();
    assert!(
        stray.is_empty(),
        "the unsampled request ({}) exported spans: {stray:#?}",
        trace.trace_id
    );
}

/// The SDK's sampler decides each new trace when its first span, orders' server span,
/// starts: an unsampled request records no span, yet its context still reaches users, which
/// would sample any trace it starts itself. The decision is the sampler's on the trace id
/// the trace ends up with, and it is made once: deciding again on another id would keep
/// only a quarter of the traces at a ratio of one half.
#[tokio::test]
async fn a_new_trace_is_sampled_once_by_ratio_on_its_own_trace_id() {
    use opentelemetry::trace::{SpanKind, TraceId};
    use opentelemetry_sdk::trace::{Sampler, SamplingDecision, ShouldSample as _};

    const REQUESTS: usize = 200;
    let mut stack = Stack::start_with(
        &[("OTEL_TRACES_SAMPLER", "parentbased_always_on".to_owned())],
        &[
            ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio".to_owned()),
            ("OTEL_TRACES_SAMPLER_ARG", "0.5".to_owned()),
        ],
    )
    .await;
    let ratio = Sampler::TraceIdRatioBased(0.5);
    let url = format!("{}/orders/3", stack.orders.url());
    let mut sampled = Vec::new();
    for _ in 0..REQUESTS {
        let answer = get(&stack.client, &url, &[]).await;
        assert_eq!(answer.status, 200);
        let trace = answer.trace.expect("a traceresponse, sampled or not");
        let id = TraceId::from_hex(&trace.trace_id).expect("a hex trace id");
        let decision = ratio
            .should_sample(None, id, "", &SpanKind::Server, &[], &[])
            .decision;
        let expected = if decision == SamplingDecision::RecordAndSample {
            "01"
        } else {
            "00"
        };
        assert_eq!(trace.flags, expected, "trace {}", trace.trace_id);
        if expected == "01" {
            sampled.push(trace.trace_id);
        }
    }
    // Binomial(200, 0.5): 100 +- 7. Decided twice it would be 50 +- 6.
    assert!(
        (75..=125).contains(&sampled.len()),
        "{} of {REQUESTS} sampled at a ratio of 0.5",
        sampled.len()
    );

    stack.shutdown().await;
    let spans = stack.collector.spans();
    for id in &sampled {
        for service in ["orders", "users"] {
            assert!(
                spans
                    .iter()
                    .any(|s| &s.trace_id == id && s.service_name == service),
                "sampled trace {id} has no span from {service}"
            );
        }
    }
    let stray: Vec<String> = spans
        .iter()
        .filter(|s| !sampled.contains(&s.trace_id))
        .map(|s| format!("{} {} trace={}", s.service_name, s.name, s.trace_id))
        .collect();
    assert!(
        stray.is_empty(),
        "spans outside the sampled traces: {stray:#?}"
    );
}
