//! OTLP's nested resource/scope/span structure, flattened to one record per span.

use std::collections::BTreeMap;

use opentelemetry_proto::tonic::{
    collector::trace::v1::ExportTraceServiceRequest,
    common::v1::{AnyValue, KeyValue, any_value},
    trace::v1::{span, status},
};

/// An attribute value. Integers and strings stay distinct: the tests check that status
/// codes and ports are exported as integers.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    String(String),
    Int(i64),
    Double(f64),
    Bool(bool),
    Array(Vec<Value>),
    Bytes(Vec<u8>),
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpanKind {
    Unspecified,
    Internal,
    Server,
    Client,
    Producer,
    Consumer,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusCode {
    Unset,
    Ok,
    Error,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub code: StatusCode,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedSpan {
    pub service_name: String,
    pub resource: BTreeMap<String, Value>,
    pub scope_name: String,
    /// Lowercase hex, as in `traceparent`.
    pub trace_id: String,
    pub span_id: String,
    pub parent_span_id: Option<String>,
    pub name: String,
    pub kind: SpanKind,
    pub attributes: BTreeMap<String, Value>,
    pub status: Status,
    pub events: Vec<(String, BTreeMap<String, Value>)>,
    pub start_unix_nanos: u64,
    pub end_unix_nanos: u64,
    pub flags: u32,
    pub trace_state: String,
    /// The spans this one links to (its own trace's or others'), as (trace id, span id).
    pub links: Vec<(String, String)>,
}

impl ReceivedSpan {
    pub fn attr(&self, key: &str) -> Option<&Value> {
        self.attributes.get(key)
    }

    pub fn str_attr(&self, key: &str) -> Option<&str> {
        match self.attr(key) {
            Some(Value::String(s)) => Some(s),
            _ => None,
        }
    }

    pub fn int_attr(&self, key: &str) -> Option<i64> {
        match self.attr(key) {
            Some(Value::Int(i)) => Some(*i),
            _ => None,
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn value(any: Option<&AnyValue>) -> Value {
    match any.and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => Value::String(s.clone()),
        Some(any_value::Value::IntValue(i)) => Value::Int(*i),
        Some(any_value::Value::DoubleValue(d)) => Value::Double(*d),
        Some(any_value::Value::BoolValue(b)) => Value::Bool(*b),
        Some(any_value::Value::BytesValue(b)) => Value::Bytes(b.clone()),
        Some(any_value::Value::ArrayValue(a)) => {
            Value::Array(a.values.iter().map(|v| value(Some(v))).collect())
        }
        _ => Value::Other,
    }
}

fn attributes(kvs: &[KeyValue]) -> BTreeMap<String, Value> {
    kvs.iter()
        .map(|kv| (kv.key.clone(), value(kv.value.as_ref())))
        .collect()
}

pub fn flatten(request: ExportTraceServiceRequest) -> Vec<ReceivedSpan> {
    let mut out = Vec::new();
    for resource_spans in request.resource_spans {
        let resource = resource_spans
            .resource
            .map(|r| attributes(&r.attributes))
            .unwrap_or_default();
        let service_name = match resource.get("service.name") {
            Some(Value::String(s)) => s.clone(),
            _ => String::new(),
        };
        for scope_spans in resource_spans.scope_spans {
            let scope_name = scope_spans.scope.map(|s| s.name).unwrap_or_default();
            for s in scope_spans.spans {
                let status = s.status.unwrap_or_default();
                out.push(ReceivedSpan {
                    service_name: service_name.clone(),
                    resource: resource.clone(),
                    scope_name: scope_name.clone(),
                    trace_id: hex(&s.trace_id),
                    span_id: hex(&s.span_id),
                    parent_span_id: (!s.parent_span_id.is_empty()).then(|| hex(&s.parent_span_id)),
                    name: s.name,
                    kind: match span::SpanKind::try_from(s.kind) {
                        Ok(span::SpanKind::Internal) => SpanKind::Internal,
                        Ok(span::SpanKind::Server) => SpanKind::Server,
                        Ok(span::SpanKind::Client) => SpanKind::Client,
                        Ok(span::SpanKind::Producer) => SpanKind::Producer,
                        Ok(span::SpanKind::Consumer) => SpanKind::Consumer,
                        _ => SpanKind::Unspecified,
                    },
                    attributes: attributes(&s.attributes),
                    status: Status {
                        code: match status::StatusCode::try_from(status.code) {
                            Ok(status::StatusCode::Ok) => StatusCode::Ok,
                            Ok(status::StatusCode::Error) => StatusCode::Error,
                            _ => StatusCode::Unset,
                        },
                        message: status.message,
                    },
                    events: s
                        .events
                        .iter()
                        .map(|e| (e.name.clone(), attributes(&e.attributes)))
                        .collect(),
                    start_unix_nanos: s.start_time_unix_nano,
                    end_unix_nanos: s.end_time_unix_nano,
                    flags: s.flags,
                    trace_state: s.trace_state,
                    links: s
                        .links
                        .iter()
                        .map(|l| (hex(&l.trace_id), hex(&l.span_id)))
                        .collect(),
                });
            }
        }
    }
    out
}
