//! How a span says that its operation failed, the same way everywhere (semantic
//! conventions): `error.type`, a low-cardinality class of the failure, and the span status
//! `ERROR` with a description. Jaeger draws such a span red and its trace as an error.

use tracing::Span;

/// Marks `span` as failed. The span must declare the three fields (`error.type`,
/// `otel.status_code`, `otel.status_description`), empty until now.
pub fn record(span: &Span, error_type: &str, description: &str) {
    span.record("error.type", error_type);
    span.record("otel.status_code", "ERROR");
    span.record("otel.status_description", description);
}
