//! Server spans for axum: one span per request, continuing the caller's trace, named by the
//! matched route, with HTTP semantic-convention attributes, and a `traceresponse` header on
//! every traced answer.
//!
//! [`trace_http`] is the textbook wiring, in order: extract the caller's context, make the
//! span, set its parent, instrument the handler, record the response. Whether the span is
//! kept is the sampler's decision, taken when the span starts (init.rs).

use std::{borrow::Cow, net::SocketAddr};

use axum::{
    extract::{ConnectInfo, MatchedPath, Request},
    http::{HeaderName, HeaderValue},
    middleware::Next,
    response::Response,
};
use opentelemetry::{Context, global};
use tracing::{Instrument as _, Span, field::Empty};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::propagation::RequestHeaders;

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
    // 1. Extract: the caller's context, from `traceparent`, `tracestate` and `baggage`.
    let parent = global::get_text_map_propagator(|propagator| {
        propagator.extract(&RequestHeaders(request.headers()))
    });

    // 2. The span, 3. its parent: the caller's span (none when the trace starts here).
    let span = server_span(&request);
    // Fails only without an OpenTelemetry layer (OTEL_SDK_DISABLED=true): nothing to trace.
    let _ = span.set_parent(parent);

    // 4. Instrument: the handler runs inside the span, so its spans are the span's children.
    let response = next.run(request).instrument(span.clone()).await;

    // 5. What the answer was, and which trace holds it.
    record_response(&span, &response);
    with_traceresponse(response, traceresponse(&span.context()))
}

/// The server span, named `{method} {route}`, with the HTTP server attributes known before
/// the handler runs; the status is recorded by [`record_response`].
fn server_span(request: &Request) -> Span {
    let method = request.method().as_str();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(MatchedPath::as_str);
    let name = match route {
        Some(route) => format!("{method} {route}"),
        None => method.to_owned(),
    };
    // `display`, not `to_string()`: a field's value is formatted only when a layer records
    // it, so with tracing off the address is never written out.
    let client = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| tracing::field::display(addr.ip()));
    tracing::info_span!(
        "HTTP request",
        otel.name = name,
        otel.kind = "server",
        http.request.method = method,
        http.route = route,
        url.path = request.uri().path(),
        url.scheme = "http",
        client.address = client,
        network.protocol.version = protocol_version(request),
        http.response.status_code = Empty,
        error.type = Empty,
        otel.status_code = Empty,
        otel.status_description = Empty,
    )
}

/// The status code, and for a 5xx the error: its type and description come from the
/// handler's [`ErrorDescription`], else from the status.
fn record_response(span: &Span, response: &Response) {
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
        crate::error::record(span, &error_type, &message);
    }
}

fn with_traceresponse(mut response: Response, value: Option<HeaderValue>) -> Response {
    if let Some(value) = value {
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

/// The request's context as the `traceparent` it passes on (same ids, same flags); none
/// when tracing is off.
fn traceresponse(cx: &Context) -> Option<HeaderValue> {
    HeaderValue::from_str(&crate::propagation::traceparent(cx)?).ok()
}
