//! With the SDK on: every log line prints whatever was asked before it, lines written in a
//! span carry its trace id, and the log layer takes no part in the span, which is still
//! exported. One test in this file: the subscriber is global, as in a service.

mod common;

use std::sync::{Arc, Mutex};

use opentelemetry::trace::TraceContextExt as _;
use opentelemetry_sdk::{error::OTelSdkResult, trace::SpanData};
use telemetry::{OpenTelemetrySpanExt as _, TelemetryConfig};
use tracing_subscriber::util::SubscriberInitExt as _;

/// Keeps the names of the spans it is given.
#[derive(Debug, Default)]
struct Names(Arc<Mutex<Vec<String>>>);

impl opentelemetry_sdk::trace::SpanExporter for Names {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let mut names = self.0.lock().expect("names");
        names.extend(batch.into_iter().map(|span| span.name.into_owned()));
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_log_line_prints_with_its_trace_id_and_spans_stay_out_of_the_log_layer() {
    let config = TelemetryConfig::defaults("log-lines");
    let exporter = Names::default();
    let exported = Arc::clone(&exporter.0);
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
    provider.force_flush().expect("the batch is exported");
    assert_eq!(*exported.lock().expect("names"), ["visit"]);
    provider.shutdown().expect("the provider shuts down");
}
