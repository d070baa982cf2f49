//! Log lines that lead to traces: every line written inside a span carries the
//! OpenTelemetry `trace_id` and `span_id` of that span, in the human format and in JSON.
//!
//! tracing-subscriber's own formats know nothing of OpenTelemetry ids, and the
//! json-subscriber crate, which does, pins other tracing-opentelemetry versions: this small
//! formatter takes the ids from the current span, as every tutorial does
//! (`OpenTelemetrySpanExt::context`). An unsampled span has ids too (the trace goes on,
//! unrecorded), so its lines can still be matched with the caller's logs.
//!
//! The layer sees events only ([`events_only`]): spans are for the OpenTelemetry layer.

use std::fmt;

use opentelemetry::trace::TraceContextExt as _;
use serde_json::{Map, Value};
use tracing::{Event, Metadata, Subscriber, field::Field, subscriber::Interest};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::{
    EnvFilter, Layer,
    filter::{FilterExt as _, LevelFilter, dynamic_filter_fn},
    fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter, format::Writer},
    layer::Filter,
    registry::LookupSpan,
};

use crate::config::LogFormat;

pub struct TraceIdFormat {
    json: bool,
    text: tracing_subscriber::fmt::format::Format,
}

impl TraceIdFormat {
    pub fn text() -> Self {
        Self {
            json: false,
            text: tracing_subscriber::fmt::format::Format::default(),
        }
    }

    pub fn json() -> Self {
        Self {
            json: true,
            ..Self::text()
        }
    }
}

/// The ids of the span the line is written in; none outside any span.
fn current_ids() -> Option<(String, String)> {
    let cx = tracing::Span::current().context();
    let span = cx.span();
    let sc = span.span_context();
    sc.is_valid()
        .then(|| (sc.trace_id().to_string(), sc.span_id().to_string()))
}

impl<S, N> FormatEvent<S, N> for TraceIdFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let ids = current_ids();
        if !self.json {
            if let Some((trace_id, _)) = &ids {
                write!(writer, "trace_id={trace_id} ")?;
            }
            return self.text.format_event(ctx, writer, event);
        }

        let meta = event.metadata();
        let mut object = Map::new();
        object.insert("timestamp".into(), Value::String(now_rfc3339()));
        object.insert("level".into(), Value::String(meta.level().to_string()));
        object.insert("target".into(), Value::String(meta.target().to_owned()));
        event.record(&mut JsonVisitor(&mut object));
        if let Some((trace_id, span_id)) = ids {
            object.insert("trace_id".into(), Value::String(trace_id));
            object.insert("span_id".into(), Value::String(span_id));
        }
        let line = serde_json::to_string(&object).map_err(|_| fmt::Error)?;
        writeln!(writer, "{line}")
    }
}

fn now_rfc3339() -> String {
    use tracing_subscriber::fmt::time::FormatTime as _;
    let mut out = String::new();
    // SystemTime writes RFC 3339 UTC; failure only means an empty timestamp.
    let _ = tracing_subscriber::fmt::time::SystemTime.format_time(&mut Writer::new(&mut out));
    out
}

struct JsonVisitor<'a>(&'a mut Map<String, Value>);

impl tracing::field::Visit for JsonVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0
            .insert(field.name().to_owned(), Value::String(value.to_owned()));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_owned(), Value::Bool(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0
            .insert(field.name().to_owned(), Value::String(value.to_string()));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().to_owned(), Value::String(format!("{value:?}")));
    }
}

/// The log layer: tracing-subscriber's fmt layer with the ids above, as text or JSON.
pub(crate) fn layer<S, W>(
    format: LogFormat,
    writer: W,
    ansi: bool,
) -> Box<dyn Layer<S> + Send + Sync + 'static>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_ansi(ansi);
    match format {
        LogFormat::Text => fmt.event_format(TraceIdFormat::text()).boxed(),
        LogFormat::Json => fmt.event_format(TraceIdFormat::json()).boxed(),
    }
}

/// The log layer's filter: `RUST_LOG` (`filter`), for events only.
///
/// Why not `RUST_LOG`'s `EnvFilter` alone: it lets spans in too, and a fmt layer that sees a
/// span formats all its fields when the span is created, in case a line is written inside
/// it. That was a third of a request's instructions with tracing off (docs/benchmarks.md,
/// "What each setting costs"). Lines written inside a span still carry its `trace_id`
/// (taken from the OpenTelemetry layer, above); the text format loses the span-name prefix.
///
/// Why not `filter_fn(Metadata::is_event).and(filter)`: it loses log lines
/// (tokio-rs/tracing#2519). Per-layer filters leave their answer in a thread-local that the
/// next event reads; a bare question (`log_enabled!`, which sqlx asks after each query)
/// leaves a stale "no" there, and an event whose callsite interest is `always` skips the
/// question and reads it. So this filter answers `sometimes`, never `always`: every event
/// asks again. And it keeps `RUST_LOG`'s level as its hint, or `log`'s maximum level would
/// open to TRACE (`filter_fn` gives no hint) and every bare question would reach it.
pub(crate) fn events_only<S>(filter: EnvFilter) -> impl Filter<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let most = filter.max_level_hint().unwrap_or(LevelFilter::TRACE);
    let wanted = move |meta: &Metadata<'_>| meta.is_event() && *meta.level() <= most;
    dynamic_filter_fn(move |meta, _| wanted(meta))
        .with_callsite_filter(move |meta| match wanted(meta) {
            true => Interest::sometimes(),
            false => Interest::never(),
        })
        .with_max_level_hint(most)
        .and(filter)
}
