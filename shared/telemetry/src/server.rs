//! Server spans for axum: one span per request, continuing the caller's trace, named by the
//! matched route, with HTTP semantic-convention attributes and a `traceresponse` header.

use std::{borrow::Cow, net::SocketAddr};

use axum::{
    extract::{ConnectInfo, MatchedPath, Request},
    http::{HeaderName, HeaderValue},
    middleware::Next,
    response::Response,
};
use opentelemetry::{
    global,
    trace::{SpanContext, TraceContextExt as _},
};
use opentelemetry_http::HeaderExtractor;
use tracing::{Instrument as _, field::Empty};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// Health probes run every few seconds from compose and would drown real traces in Jaeger.
pub const UNTRACED_PATHS: [&str; 2] = ["/healthz", "/readyz"];

/// The W3C Trace Context Level 3 draft response header, as Jaeger's HotROD sends it.
pub static TRACERESPONSE: HeaderName = HeaderName::from_static("traceresponse");

/// Attached by a handler's error response so the server span can say what went wrong:
/// `error.type` and the status description. Only 5xx answers mark the span as an error;
/// a 4xx is the client's mistake, not the server's (HTTP semantic conventions).
#[derive(Debug, Clone)]
pub struct ErrorDescription {
    pub error_type: Cow<'static, str>,
    pub message: String,
}

/// `axum::middleware::from_fn(telemetry::server::trace_http)`, added with `Router::layer`
/// so that `MatchedPath` is known (axum applies such layers per route).
pub async fn trace_http(request: Request, next: Next) -> Response {
    let path = request.uri().path();
    if UNTRACED_PATHS.contains(&path) {
        return next.run(request).await;
    }

    let method = request.method().as_str().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned());
    let name = match &route {
        Some(route) => format!("{method} {route}"),
        None => method.clone(),
    };
    let client = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip().to_string());

    let span = tracing::info_span!(
        "HTTP request",
        otel.name = name,
        otel.kind = "server",
        http.request.method = method,
        http.route = route,
        url.path = path,
        url.scheme = "http",
        client.address = client,
        network.protocol.version = protocol_version(&request),
        http.response.status_code = Empty,
        error.type = Empty,
        otel.status_code = Empty,
        otel.status_description = Empty,
    );
    let parent = global::get_text_map_propagator(|propagator| {
        propagator.extract(&HeaderExtractor(request.headers()))
    });
    // Only fails when no OpenTelemetry layer is installed (OTEL_SDK_DISABLED=true).
    let _ = span.set_parent(parent);
    let span_context = span.context().span().span_context().clone();
    let traceresponse = traceresponse(&span_context);

    let handling = crate::request::scope(span_context, next.run(request));
    let mut response = handling.instrument(span.clone()).await;

    let status = response.status();
    span.record("http.response.status_code", i64::from(status.as_u16()));
    if status.is_server_error() {
        let description = response.extensions().get::<ErrorDescription>();
        let error_type = description
            .map(|d| d.error_type.to_string())
            .unwrap_or_else(|| status.as_str().to_owned());
        let message = description
            .map(|d| d.message.clone())
            .unwrap_or_else(|| status.to_string());
        span.record("error.type", error_type);
        span.record("otel.status_code", "ERROR");
        span.record("otel.status_description", message);
    }
    if let Some(value) = traceresponse {
        response.headers_mut().insert(TRACERESPONSE.clone(), value);
    }
    response
}

fn protocol_version(request: &Request) -> &'static str {
    match request.version() {
        http::Version::HTTP_09 => "0.9",
        http::Version::HTTP_10 => "1.0",
        http::Version::HTTP_2 => "2",
        http::Version::HTTP_3 => "3",
        _ => "1.1",
    }
}

/// `00-<trace-id>-<span-id>-<flags>` of the server span; none when tracing is off.
fn traceresponse(sc: &SpanContext) -> Option<HeaderValue> {
    if !sc.is_valid() {
        return None;
    }
    let value = format!(
        "00-{}-{}-{:02x}",
        sc.trace_id(),
        sc.span_id(),
        sc.trace_flags().to_u8()
    );
    HeaderValue::from_str(&value).ok()
}
