use std::time::Duration;

use opentelemetry_proto::tonic::{
    collector::trace::v1::{ExportTraceServiceRequest, trace_service_client::TraceServiceClient},
    common::v1::{AnyValue, KeyValue, any_value},
    resource::v1::Resource,
    trace::v1::{ResourceSpans, ScopeSpans, Span},
};
use otlp_receiver::{Receiver, SpanKind, Value};
use prost::Message as _;

fn kv(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

fn request(name: &str) -> ExportTraceServiceRequest {
    request_of(vec![Span {
        trace_id: vec![0xab; 16],
        span_id: vec![0x01; 8],
        name: name.into(),
        kind: 2,
        attributes: vec![kv(
            "http.response.status_code",
            any_value::Value::IntValue(200),
        )],
        ..Default::default()
    }])
}

fn request_of(spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![kv(
                    "service.name",
                    any_value::Value::StringValue("svc".into()),
                )],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

#[tokio::test]
async fn both_protocols_are_received_and_flattened() {
    let receiver = Receiver::start().await;
    let mut grpc = TraceServiceClient::connect(receiver.grpc_endpoint())
        .await
        .unwrap();
    grpc.export(request("over-grpc")).await.unwrap();
    let response = reqwest::Client::new()
        .post(format!("{}/v1/traces", receiver.http_endpoint()))
        .header("content-type", "application/x-protobuf")
        .body(request("over-http").encode_to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    let spans = receiver
        .wait_for(|s| s.len() == 2, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!((receiver.grpc_requests(), receiver.http_requests()), (1, 1));
    for span in &spans {
        assert_eq!(span.service_name, "svc");
        assert_eq!(span.trace_id, "ab".repeat(16));
        assert_eq!(span.span_id, "01".repeat(8));
        assert_eq!(span.parent_span_id, None);
        assert_eq!(span.kind, SpanKind::Server);
        assert_eq!(
            span.attr("http.response.status_code"),
            Some(&Value::Int(200))
        );
    }
}

#[tokio::test]
async fn malformed_payloads_are_refused_and_the_receiver_keeps_serving() {
    let receiver = Receiver::start().await;
    let client = reqwest::Client::new();
    let url = format!("{}/v1/traces", receiver.http_endpoint());
    let garbage = client
        .post(&url)
        .header("content-type", "application/x-protobuf")
        .body(vec![0xff, 0xff, 0xff, 0x01])
        .send()
        .await
        .unwrap();
    assert_eq!(garbage.status(), 400);
    let json = client
        .post(&url)
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(json.status(), 415);

    let ok = client
        .post(&url)
        .header("content-type", "application/x-protobuf")
        .body(request("after").encode_to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(receiver.span_count(), 1);
}

fn span(id: u8, parent: u8) -> Span {
    Span {
        trace_id: vec![0xcd; 16],
        span_id: vec![id; 8],
        parent_span_id: vec![parent; 8],
        name: format!("span-{id}"),
        ..Default::default()
    }
}

#[tokio::test]
async fn a_trace_is_returned_only_once_no_span_waits_for_its_parent() {
    let receiver = Receiver::start().await;
    let mut grpc = TraceServiceClient::connect(receiver.grpc_endpoint())
        .await
        .unwrap();
    let trace = "cd".repeat(16);
    // 0xee is the caller outside the services; 0x02's parent 0x01 is still in flight.
    grpc.export(request_of(vec![span(0x02, 0x01), span(0x03, 0xee)]))
        .await
        .unwrap();
    let early = receiver
        .wait_for_trace(&trace, 2, Duration::from_millis(300))
        .await;
    assert!(early.is_err(), "returned before the parent came: {early:?}");

    grpc.export(request_of(vec![span(0x01, 0xee)]))
        .await
        .unwrap();
    let spans = receiver
        .wait_for_trace(&trace, 2, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(spans.len(), 3);
}

fn local(port: u16) -> std::net::SocketAddr {
    std::net::SocketAddr::from(([127, 0, 0, 1], port))
}

/// A collector restart: the exporter's connection is open (and, on gRPC, idle) when the
/// receiver stops; the next one binds the same ports at once and the client's next export,
/// on a new connection, reaches it.
#[tokio::test]
async fn a_receiver_restarts_on_its_ports_at_once_with_a_client_connected() {
    let [grpc, http] = ports::free_ports();
    let first = Receiver::start_on(local(grpc), local(http)).await;
    let mut client = TraceServiceClient::connect(first.grpc_endpoint())
        .await
        .unwrap();
    client.export(request("before")).await.unwrap();
    first.shutdown().await;
    assert!(
        client.export(request("while-down")).await.is_err(),
        "nothing listens while the collector is down"
    );

    let second = Receiver::start_on(local(grpc), local(http)).await;
    let mut client = TraceServiceClient::connect(second.grpc_endpoint())
        .await
        .unwrap();
    client.export(request("after")).await.unwrap();
    let spans = second
        .wait_for(|s| !s.is_empty(), Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(spans.len(), 1);
    assert_eq!(spans[0].name, "after");
}

/// A port somebody else holds: the panic says who (this test process, by pid).
#[tokio::test]
async fn a_taken_port_fails_the_start_naming_who_holds_it() {
    let [grpc, http] = ports::free_ports();
    let _squatter = std::net::TcpListener::bind(local(http)).unwrap();
    let start = tokio::spawn(Receiver::start_on(local(grpc), local(http)));
    let Err(failed) = start.await else {
        panic!("the receiver started on a taken port");
    };
    let panic = failed.into_panic();
    let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(message.contains("Address already in use"), "{message}");
    assert!(
        message.contains(&format!("pid={}", std::process::id())),
        "names the holder: {message}"
    );
}
