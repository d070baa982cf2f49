//! With the SDK on: every log line prints whatever was asked before it, lines written in a
//! span carry its trace id, and the log layer takes no part in the span, which still
//! reaches a collector over OTLP. One test in this file: the subscriber is global, as in a
//! service.

mod common;

use std::time::Duration;

use opentelemetry::trace::TraceContextExt as _;
use opentelemetry_otlp::WithExportConfig as _;
use telemetry::{OpenTelemetrySpanExt as _, TelemetryConfig};
use tracing_subscriber::util::SubscriberInitExt as _;

#[tokio::test(flavor = "multi_thread")]
async fn every_log_line_prints_with_its_trace_id_and_spans_stay_out_of_the_log_layer() {
    let receiver = otlp_receiver::Receiver::start().await;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(receiver.grpc_endpoint())
        .build()
        .expect("a gRPC exporter to the receiver");
    let config = TelemetryConfig::defaults("log-lines");
    let provider = telemetry::provider(&config, exporter);
    let captured = common::Captured::default();
    telemetry::subscriber(&config, Some(&provider), captured.clone(), false)
        .expect("the default RUST_LOG parses")
        .try_init()
        .expect("the only subscriber of this test binary");

    let (span, expected) = common::write_lines();
    let lines = captured.lines();
    common::assert_printed(&lines, &expected);

    let trace_id = span.context().span().span_context().trace_id().to_string();
    let prefix = format!("trace_id={trace_id} ");
    for (i, line) in lines.iter().enumerate() {
        // Lines 2 and 3 are the ones written inside the span.
        assert_eq!(line.starts_with(&prefix), (2..=3).contains(&i), "{line}");
        // The fmt layer formats a span's fields only if it sees the span.
        assert!(
            !line.contains("visit{"),
            "the log layer saw the span: {line}"
        );
    }

    drop(span);
    let flushed = tokio::task::spawn_blocking(move || {
        let flushed = provider.force_flush();
        (provider, flushed)
    });
    let (provider, flushed) = flushed.await.expect("the flush task");
    flushed.expect("the batch is exported");
    let arrived = receiver
        .wait_for_trace(&trace_id, 1, Duration::from_secs(10))
        .await
        .unwrap();
    let names: Vec<&str> = arrived.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["visit"]);
    assert_eq!(arrived[0].service_name, "log-lines");
    // Its fields are the OpenTelemetry layer's to record, not the log layer's.
    assert_eq!(
        arrived[0].attributes.get("order.id"),
        Some(&otlp_receiver::Value::Int(7))
    );
    tokio::task::spawn_blocking(move || provider.shutdown())
        .await
        .expect("the shutdown task")
        .expect("the provider shuts down");
    receiver.shutdown().await;
}
