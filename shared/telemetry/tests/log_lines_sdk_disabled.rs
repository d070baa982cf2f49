//! With `OTEL_SDK_DISABLED=true`: every log line prints whatever was asked before it, and
//! no span is built at all, since no layer wants one. One test in this file: the
//! subscriber is global, as in a service.

mod common;

use telemetry::TelemetryConfig;
use tracing_subscriber::util::SubscriberInitExt as _;

#[test]
fn every_log_line_prints_and_no_span_is_built() {
    let mut config = TelemetryConfig::defaults("log-lines");
    config.sdk_disabled = true;
    let captured = common::Captured::default();
    telemetry::subscriber(&config, None, captured.clone(), false)
        .expect("the default RUST_LOG parses")
        .try_init()
        .expect("the only subscriber of this test binary");

    let (span, expected) = common::write_lines();
    common::assert_printed(&captured.lines(), &expected);
    assert!(
        span.is_disabled(),
        "the registry built a span that no layer wants"
    );
    assert!(!captured.lines().iter().any(|l| l.contains("trace_id=")));
}
