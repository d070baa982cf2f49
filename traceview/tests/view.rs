//! The viewer's pieces on known spans, and the real binary receiving both protocols.

use std::{
    collections::BTreeMap,
    process::Stdio,
    time::{Duration, Instant},
};

use otlp_receiver::{ReceivedSpan, SpanKind, Status, StatusCode, Value};
use prost::Message as _;
use traceview::{Assembler, Filter, RenderOptions, Trace, render_json, render_text};

const T0: u64 = 1_700_000_000_000_000_000;
const MS: u64 = 1_000_000;

#[allow(clippy::too_many_arguments)] // one call per span of the fixture reads best flat
fn span(
    service: &str,
    name: &str,
    id: &str,
    parent: Option<&str>,
    kind: SpanKind,
    start_ms: u64,
    end_ms: u64,
    attributes: &[(&str, Value)],
) -> ReceivedSpan {
    ReceivedSpan {
        service_name: service.into(),
        resource: BTreeMap::new(),
        scope_name: String::new(),
        trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
        span_id: id.into(),
        parent_span_id: parent.map(str::to_owned),
        name: name.into(),
        kind,
        attributes: attributes
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
        status: Status {
            code: StatusCode::Unset,
            message: String::new(),
        },
        events: Vec::new(),
        start_unix_nanos: T0 + start_ms * MS,
        end_unix_nanos: T0 + end_ms * MS,
        flags: 1,
        trace_state: String::new(),
        links: Vec::new(),
    }
}

/// The tutorial's trace, shuffled as exporters deliver it (children before parents).
fn order_trace() -> Trace {
    use SpanKind::*;
    let s = |v: &str| Value::String(v.into());
    let mut spans = vec![
        span(
            "users",
            "db-query",
            "0000000000000007",
            Some("0000000000000006"),
            Client,
            14,
            18,
            &[("db.collection.name", s("users"))],
        ),
        span(
            "orders",
            "GET",
            "0000000000000005",
            Some("0000000000000004"),
            Client,
            12,
            22,
            &[("http.response.status_code", Value::Int(200))],
        ),
        span(
            "orders",
            "GET /orders/{order_id}",
            "0000000000000001",
            None,
            Server,
            0,
            24,
            &[
                ("http.route", s("/orders/{order_id}")),
                ("http.response.status_code", Value::Int(200)),
            ],
        ),
        span(
            "orders",
            "fetch-order",
            "0000000000000002",
            Some("0000000000000001"),
            Internal,
            1,
            23,
            &[("order.id", Value::Int(1))],
        ),
        span(
            "orders",
            "db-query",
            "0000000000000003",
            Some("0000000000000002"),
            Client,
            2,
            9,
            &[("db.collection.name", s("orders"))],
        ),
        span(
            "orders",
            "enrich-order",
            "0000000000000004",
            Some("0000000000000002"),
            Internal,
            11,
            23,
            &[("user.id", Value::Int(1))],
        ),
        span(
            "users",
            "GET /users/{user_id}",
            "0000000000000006",
            Some("0000000000000005"),
            Server,
            13,
            20,
            &[("http.route", s("/users/{user_id}"))],
        ),
    ];
    spans.rotate_left(3);
    Trace {
        trace_id: spans[0].trace_id.clone(),
        spans,
    }
}

#[test]
fn a_known_trace_renders_to_the_expected_waterfall() {
    let lines = render_text(&order_trace(), &RenderOptions { color: false });
    let snapshot = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/order_trace.txt"
    ))
    .unwrap();
    let expected: Vec<&str> = snapshot.lines().collect();
    assert_eq!(lines, expected, "actual:\n{}", lines.join("\n"));
}

#[test]
fn a_trace_without_its_root_says_so() {
    let mut trace = order_trace();
    trace.spans.retain(|s| s.service_name == "users");
    let lines = render_text(&trace, &RenderOptions { color: false });
    assert!(
        lines[0].contains("no root span: parent 0000000000000005 never arrived"),
        "{}",
        lines[0]
    );
    assert!(lines[1].contains("GET /users/{user_id}") && lines[2].contains("db-query"));
    let json: serde_json::Value = serde_json::from_str(&render_json(&trace)).unwrap();
    assert_eq!(json["root_missing"], true);
    assert_eq!(json["spans"][1]["depth"], 1);
}

#[test]
fn filters_pick_traces_by_service_duration_and_errors() {
    let trace = order_trace();
    let f = |service: Option<&str>, min: Option<u64>, errors: bool| Filter {
        service: service.map(str::to_owned),
        min_duration: min.map(Duration::from_millis),
        errors_only: errors,
    };
    assert!(f(Some("users"), None, false).accepts(&trace));
    assert!(!f(Some("load"), None, false).accepts(&trace));
    assert!(f(None, Some(20), false).accepts(&trace));
    assert!(!f(None, Some(30), false).accepts(&trace));
    assert!(!f(None, None, true).accepts(&trace));
    let mut failed = trace.clone();
    failed.spans[0].status.code = StatusCode::Error;
    assert!(f(None, None, true).accepts(&failed));
}

#[test]
fn the_buffer_is_bounded_and_counts_what_it_drops() {
    let mut assembler = Assembler::new(3);
    let now = Instant::now();
    for i in 0..5 {
        let mut s = order_trace().spans.remove(0);
        s.trace_id = format!("{i:032x}");
        assembler.add(vec![s], now);
    }
    assert_eq!(assembler.open_traces(), 3);
    assert_eq!(assembler.dropped, 2);
    let done = assembler.take_quiet(now + Duration::from_secs(5), Duration::from_secs(1));
    let ids: Vec<&str> = done.iter().map(|t| t.trace_id.as_str()).collect();
    assert_eq!(
        ids,
        [
            format!("{:032x}", 2),
            format!("{:032x}", 3),
            format!("{:032x}", 4)
        ]
    );
}

#[test]
fn out_of_order_spans_join_their_trace_until_it_is_quiet() {
    let mut assembler = Assembler::new(10);
    let t = Instant::now();
    let spans = order_trace().spans;
    assembler.add(spans[..4].to_vec(), t);
    assert!(
        assembler
            .take_quiet(t + Duration::from_millis(500), Duration::from_secs(1))
            .is_empty()
    );
    assembler.add(spans[4..].to_vec(), t + Duration::from_millis(900));
    assert!(
        assembler
            .take_quiet(t + Duration::from_millis(1500), Duration::from_secs(1))
            .is_empty()
    );
    let done = assembler.take_quiet(t + Duration::from_millis(2000), Duration::from_secs(1));
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].spans.len(), 7);
}

/// One span of service `svc` named `name`, alone in trace `trace` repeated, as an exporter
/// sends it.
fn export_request(
    trace: u8,
    name: &str,
) -> opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest {
    use opentelemetry_proto::tonic::{
        collector::trace::v1::ExportTraceServiceRequest,
        common::v1::{AnyValue, KeyValue, any_value},
        resource::v1::Resource,
        trace::v1::{ResourceSpans, ScopeSpans, Span},
    };
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![KeyValue {
                    key: "service.name".into(),
                    value: Some(AnyValue {
                        value: Some(any_value::Value::StringValue("svc".into())),
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans: vec![Span {
                    trace_id: vec![trace; 16],
                    span_id: vec![1; 8],
                    name: name.into(),
                    kind: 2,
                    start_time_unix_nano: T0,
                    end_time_unix_nano: T0 + 3 * MS,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// The binary on leased ports, printing a trace 300 ms after its last span, its stdout to
/// `stdout`; and those ports.
fn traceview(stdout: Stdio) -> (tokio::process::Child, [u16; 2]) {
    let [grpc, http] = testkit::free_ports();
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_traceview"))
        .args([
            "--grpc",
            &format!("127.0.0.1:{grpc}"),
            "--http",
            &format!("127.0.0.1:{http}"),
        ])
        .args(["--quiet", "300ms"])
        .stdout(stdout)
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    (child, [grpc, http])
}

#[tokio::test]
async fn the_binary_prints_traces_received_over_both_protocols_and_survives_garbage() {
    use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
    let (child, [grpc, http]) = traceview(Stdio::piped());
    let mut client = loop {
        match TraceServiceClient::connect(format!("http://127.0.0.1:{grpc}")).await {
            Ok(client) => break client,
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    };
    client
        .export(export_request(0xaa, "over-grpc"))
        .await
        .unwrap();
    let http_client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{http}/v1/traces");
    let garbage = http_client
        .post(&url)
        .header("content-type", "application/x-protobuf")
        .body(vec![0xff, 0xff, 0xff])
        .send()
        .await
        .unwrap();
    assert_eq!(garbage.status(), 400);
    let ok = http_client
        .post(&url)
        .header("content-type", "application/x-protobuf")
        .body(export_request(0xbb, "over-http").encode_to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    // A raw gRPC frame that is not an ExportTraceServiceRequest: an error status, no crash.
    let raw = http_client
        .post(format!(
            "http://127.0.0.1:{grpc}/opentelemetry.proto.collector.trace.v1.TraceService/Export"
        ))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(vec![0, 0, 0, 0, 3, 0xff, 0xff, 0xff])
        .send()
        .await;
    if let Ok(response) = raw {
        let grpc_status = response
            .headers()
            .get("grpc-status")
            .map(|v| v.to_str().unwrap().to_owned());
        assert_ne!(grpc_status.as_deref(), Some("0"), "garbage is not accepted");
    }
    client
        .export(export_request(0xcc, "after-garbage"))
        .await
        .unwrap();

    tokio::time::sleep(Duration::from_millis(1200)).await;
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id().unwrap() as i32, libc::SIGTERM) };
    let output = tokio::time::timeout(Duration::from_secs(10), child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert!(output.status.success());
    let out = String::from_utf8_lossy(&output.stdout);
    for (trace, name) in [
        ("aa", "over-grpc"),
        ("bb", "over-http"),
        ("cc", "after-garbage"),
    ] {
        assert!(
            out.contains(&format!("trace {}", trace.repeat(16))),
            "{out}"
        );
        assert!(out.contains(name), "{out}");
    }
}

/// `traceview | head`, or the runner's output piped into a `tee` that Ctrl-C ended (issue
/// 35): the reader is gone when the first trace is printed. traceview ends by itself, exit 0
/// and no word past its start-up line, where `println!` panicked.
#[tokio::test]
async fn a_reader_that_has_gone_ends_traceview_quietly() {
    let (child, [_, http]) = traceview(testkit::closed_pipe());
    let url = format!("http://127.0.0.1:{http}/v1/traces");
    let client = reqwest::Client::new();
    testkit::eventually(
        Duration::from_secs(10),
        || async {
            let sent = client
                .post(&url)
                .header("content-type", "application/x-protobuf")
                .body(export_request(0xdd, "unread").encode_to_vec())
                .send()
                .await;
            sent.ok().filter(|r| r.status() == 200)
        },
        || format!("traceview takes a span on {url}"),
    )
    .await;
    let output = tokio::time::timeout(Duration::from_secs(10), child.wait_with_output())
        .await
        .expect("traceview ends once it cannot print the trace")
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert_eq!(
        stderr.lines().count(),
        1,
        "its start-up line only: {stderr}"
    );
}
