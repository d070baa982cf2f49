//! Trace context through a queue, by OpenTelemetry's messaging semantic conventions.
//!
//! A message is not an HTTP request, but its context travels the same way: the producer
//! writes `traceparent`, `tracestate` and `baggage` into the message's headers inside its
//! `send` span, and the consumer reads them back. What the consumer does with them is a
//! choice, and the lesson:
//!
//! - continue the trace: the `process` span is a child of the `send` span, so one trace
//!   holds the request and the work it queued, with a gap where the message waited;
//! - link: a batch of messages is processed in a trace of its own, whose span carries one
//!   link per message to the `send` span that produced it (a span has one parent, so a batch
//!   of N producers can only be linked);
//! - ignore them: the work starts unrelated traces (the broken case).

use std::collections::HashMap;

use opentelemetry::{Context, global, trace::TraceContextExt as _};
use tracing::{Span, field::Empty};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// `messaging.system`: the queue is a table in Postgres (no value of the conventions' list
/// fits, and they allow a custom one).
pub const SYSTEM: &str = "postgresql";

/// The headers a message carries: `traceparent`, `tracestate`, `baggage`.
pub type Headers = HashMap<String, String>;

/// A messaging span with the fields the conventions ask of each one: named
/// `{operation} {destination}`, its kind, the system, the operation and the destination.
/// Each span adds its own fields after these.
macro_rules! messaging_span {
    ($(parent: $parent:expr,)? $name:literal, $kind:literal, $operation:literal, $destination:expr $(, $($field:tt)+)?) => {
        tracing::info_span!(
            $(parent: $parent,)?
            $name,
            otel.name = format_args!("{} {}", $operation, $destination),
            otel.kind = $kind,
            messaging.system = SYSTEM,
            messaging.operation.type = $operation,
            messaging.operation.name = $operation,
            messaging.destination.name = $destination,
            $($($field)+)?
        )
    };
}

/// The `send` span (kind producer) for a message to `destination`. Record
/// `messaging.message.id` on it once the message has one.
pub fn send_span(destination: &'static str) -> Span {
    messaging_span!(
        "messaging send",
        "producer",
        "send",
        destination,
        messaging.message.id = Empty
    )
}

/// The context of `span` as message headers, written by the global propagator.
pub fn headers(span: &Span) -> Headers {
    let mut headers = Headers::new();
    global::get_text_map_propagator(|propagator| {
        propagator.inject_context(&span.context(), &mut headers)
    });
    headers
}

/// The context a message's headers carry (an empty one for none, or a malformed one).
pub fn extract(headers: &Headers) -> Context {
    global::get_text_map_propagator(|propagator| propagator.extract(headers))
}

/// The `process` span (kind consumer) for one message of `destination`. Its parent is
/// whatever the caller gives it with `set_parent`, or the current span.
pub fn process_span(destination: &'static str, message_id: i64) -> Span {
    messaging_span!(
        "messaging process",
        "consumer",
        "process",
        destination,
        messaging.message.id = %message_id,
        error.type = Empty,
        otel.status_code = Empty,
        otel.status_description = Empty,
    )
}

/// The `process` span (kind consumer) for a whole batch, a root with one link per message
/// to the context it carried. The links are added before the span is first entered, which
/// is when tracing-opentelemetry starts it.
pub fn batch_span<'a>(
    destination: &'static str,
    carried: impl ExactSizeIterator<Item = &'a Context>,
) -> Span {
    let span = messaging_span!(
        parent: None,
        "messaging process batch",
        "consumer",
        "process",
        destination,
        messaging.batch.message_count = carried.len() as i64
    );
    // A root: no ambient context either (tracing-opentelemetry would take the thread's).
    let _ = span.set_parent(Context::new());
    for cx in carried {
        let producer = cx.span().span_context().clone();
        if producer.is_valid() {
            span.add_link(producer);
        }
    }
    span
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extract_reads_what_headers_wrote() {
        opentelemetry::global::set_text_map_propagator(crate::propagator());
        let mut headers = Headers::new();
        headers.insert(
            "traceparent".into(),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into(),
        );
        headers.insert("baggage".into(), "demo.delay_ms=300".into());
        let cx = extract(&headers);
        let sc = cx.span().span_context().clone();
        assert!(sc.is_remote() && sc.is_sampled());
        assert_eq!(
            sc.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        let mut again = Headers::new();
        global::get_text_map_propagator(|p| p.inject_context(&cx, &mut again));
        assert_eq!(again.get("traceparent"), headers.get("traceparent"));
        assert_eq!(again.get("baggage"), headers.get("baggage"));
        assert!(!extract(&Headers::new()).span().span_context().is_valid());
    }
}
