//! A trace as an indented waterfall (one line per span), or as one JSON line.

use std::{collections::HashMap, fmt::Write as _, time::Duration};

use otlp_receiver::{ReceivedSpan, SpanKind, StatusCode, Value};
use serde_json::json;

use crate::Trace;

/// The attributes worth a column: what the workshop's lessons talk about.
const KEY_ATTRIBUTES: &[&str] = &[
    "http.route",
    "http.response.status_code",
    "db.collection.name",
    "order.id",
    "user.id",
    "error.type",
];

const BAR_WIDTH: usize = 24;

#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Show a trace only if one of its spans comes from this service.
    pub service: Option<String>,
    /// Show a trace only if it lasted at least this long.
    pub min_duration: Option<Duration>,
    /// Show only traces with a span whose status is Error.
    pub errors_only: bool,
}

#[derive(Debug, Clone, Default)]
pub struct RenderOptions {
    pub color: bool,
}

fn bounds(spans: &[ReceivedSpan]) -> (u64, u64) {
    let start = spans.iter().map(|s| s.start_unix_nanos).min().unwrap_or(0);
    let end = spans
        .iter()
        .map(|s| s.end_unix_nanos)
        .max()
        .unwrap_or(start);
    (start, end.max(start))
}

impl Filter {
    pub fn accepts(&self, trace: &Trace) -> bool {
        let (start, end) = bounds(&trace.spans);
        self.service
            .as_ref()
            .is_none_or(|service| trace.spans.iter().any(|s| &s.service_name == service))
            && self
                .min_duration
                .is_none_or(|min| Duration::from_nanos(end - start) >= min)
            && (!self.errors_only
                || trace
                    .spans
                    .iter()
                    .any(|s| s.status.code == StatusCode::Error))
    }
}

/// Spans in tree order (parents before children, siblings by start time) with their depth.
/// A span whose parent never arrived is placed at depth 0.
fn tree(spans: &[ReceivedSpan]) -> Vec<(usize, &ReceivedSpan)> {
    let ids: HashMap<&str, &ReceivedSpan> = spans.iter().map(|s| (s.span_id.as_str(), s)).collect();
    let mut children: HashMap<&str, Vec<&ReceivedSpan>> = HashMap::new();
    let mut roots = Vec::new();
    for span in spans {
        match span
            .parent_span_id
            .as_deref()
            .filter(|p| ids.contains_key(p))
        {
            Some(parent) => children.entry(parent).or_default().push(span),
            None => roots.push(span),
        }
    }
    let by_start = |list: &mut Vec<&ReceivedSpan>| {
        list.sort_by(|a, b| (a.start_unix_nanos, &a.span_id).cmp(&(b.start_unix_nanos, &b.span_id)))
    };
    by_start(&mut roots);
    for list in children.values_mut() {
        by_start(list);
    }
    let mut out = Vec::new();
    let mut stack: Vec<(usize, &ReceivedSpan)> = roots.into_iter().rev().map(|s| (0, s)).collect();
    while let Some((depth, span)) = stack.pop() {
        out.push((depth, span));
        if let Some(kids) = children.get(span.span_id.as_str()) {
            stack.extend(kids.iter().rev().map(|k| (depth + 1, *k)));
        }
    }
    out
}

fn kind(kind: SpanKind) -> &'static str {
    match kind {
        SpanKind::Server => "server",
        SpanKind::Client => "client",
        SpanKind::Internal => "internal",
        SpanKind::Producer => "producer",
        SpanKind::Consumer => "consumer",
        SpanKind::Unspecified => "-",
    }
}

fn value(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Int(i) => i.to_string(),
        Value::Double(d) => d.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(value).collect::<Vec<_>>().join(",")
        ),
        Value::Bytes(_) | Value::Other => "…".to_owned(),
    }
}

fn ms(nanos: u64) -> String {
    format!("{:.2} ms", nanos as f64 / 1e6)
}

/// Plain ANSI colours: six escape codes do not justify a dependency.
fn paint(on: bool, code: &str, text: &str) -> String {
    if on {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_owned()
    }
}

fn service_color(service: &str) -> &'static str {
    const COLORS: [&str; 6] = ["36", "35", "33", "32", "34", "96"];
    let hash = service
        .bytes()
        .fold(0usize, |h, b| h.wrapping_mul(31).wrapping_add(b as usize));
    COLORS[hash % COLORS.len()]
}

pub fn render_text(trace: &Trace, options: &RenderOptions) -> Vec<String> {
    let (start, end) = bounds(&trace.spans);
    let total = (end - start).max(1);
    let ordered = tree(&trace.spans);
    let has_root = trace.spans.iter().any(|s| s.parent_span_id.is_none());
    let service_width = trace
        .spans
        .iter()
        .map(|s| s.service_name.len())
        .max()
        .unwrap_or(0);
    let label_width = ordered
        .iter()
        .map(|(depth, s)| depth * 2 + s.name.chars().count())
        .max()
        .unwrap_or(0);

    let mut lines = Vec::new();
    let mut header = format!(
        "trace {}  {} span{}  {}",
        trace.trace_id,
        trace.spans.len(),
        if trace.spans.len() == 1 { "" } else { "s" },
        ms(end - start)
    );
    if !has_root {
        let missing: Vec<&str> = ordered
            .iter()
            .filter(|(depth, _)| *depth == 0)
            .filter_map(|(_, s)| s.parent_span_id.as_deref())
            .collect();
        let _ = write!(
            header,
            "  (no root span: parent {} never arrived; broken propagation, sampling, or a lost span)",
            missing.join(", ")
        );
    }
    lines.push(paint(options.color, "1", &header));

    for (depth, span) in ordered {
        let offset =
            ((span.start_unix_nanos - start) as u128 * BAR_WIDTH as u128 / total as u128) as usize;
        let duration = span.end_unix_nanos.saturating_sub(span.start_unix_nanos);
        let length = ((duration as u128 * BAR_WIDTH as u128).div_ceil(total as u128) as usize)
            .clamp(1, BAR_WIDTH - offset.min(BAR_WIDTH - 1));
        let offset = offset.min(BAR_WIDTH - length);
        let bar = format!(
            "{}{}{}",
            " ".repeat(offset),
            "█".repeat(length),
            " ".repeat(BAR_WIDTH - offset - length)
        );
        let error = span.status.code == StatusCode::Error;
        let status = if error { "ERROR" } else { "" };
        let attributes: Vec<String> = KEY_ATTRIBUTES
            .iter()
            .filter_map(|key| span.attr(key).map(|v| format!("{key}={}", value(v))))
            .collect();
        let label = format!("{}{}", "  ".repeat(depth), span.name);
        let service = format!("{:<service_width$}", span.service_name);
        let line = format!(
            "  {}  {:<label_width$}  {:<8} {:>10}  |{}|  {:<5}  {}",
            paint(options.color, service_color(&span.service_name), &service),
            label,
            kind(span.kind),
            ms(duration),
            paint(
                options.color,
                if error {
                    "31"
                } else {
                    service_color(&span.service_name)
                },
                &bar
            ),
            paint(options.color, "31", status),
            attributes.join(" ")
        );
        lines.push(line.trim_end().to_owned());
    }
    lines
}

pub fn render_json(trace: &Trace) -> String {
    let (start, end) = bounds(&trace.spans);
    let spans: Vec<serde_json::Value> = tree(&trace.spans)
        .into_iter()
        .map(|(depth, s)| {
            json!({
                "span_id": s.span_id,
                "parent_span_id": s.parent_span_id,
                "depth": depth,
                "service": s.service_name,
                "name": s.name,
                "kind": kind(s.kind),
                "start_offset_ms": (s.start_unix_nanos - start) as f64 / 1e6,
                "duration_ms": s.end_unix_nanos.saturating_sub(s.start_unix_nanos) as f64 / 1e6,
                "status": match s.status.code { StatusCode::Error => "error", StatusCode::Ok => "ok", StatusCode::Unset => "unset" },
                "attributes": s.attributes.iter().map(|(k, v)| (k.clone(), json!(value(v)))).collect::<serde_json::Map<_, _>>(),
            })
        })
        .collect();
    json!({
        "trace_id": trace.trace_id,
        "duration_ms": (end - start) as f64 / 1e6,
        "root_missing": !trace.spans.iter().any(|s| s.parent_span_id.is_none()),
        "spans": spans,
    })
    .to_string()
}
