//! Server spans for axum: one span per sampled request, continuing the caller's trace, named
//! by the matched route, with HTTP semantic-convention attributes, and a `traceresponse`
//! header on every traced answer, sampled or not.
//!
//! [`trace_http`] is the textbook wiring, in order: extract the caller's context, make the
//! span, set its parent, instrument the handler. The one step that is not textbook, head
//! sampling decided before the span exists, is a single call into head_sampling.rs.

use std::{borrow::Cow, net::SocketAddr};

use axum::{
    extract::{ConnectInfo, MatchedPath, Request},
    http::{HeaderName, HeaderValue},
    middleware::Next,
    response::Response,
};
use opentelemetry::{Context, global, trace::TraceContextExt as _};
use tracing::{Instrument as _, Span, field::Empty};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::{
    head_sampling::{self, Decision, HeadSampler},
    propagation::RequestHeaders,
};

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
    // OTEL_SDK_DISABLED=true: nothing to trace, and no context to read (callgrind: the
    // extraction alone was +1.6% on the SDK-disabled baseline).
    let Some(sampler) = HeadSampler::installed() else {
        return next.run(request).await;
    };

    // 1. Extract: the caller's context, from `traceparent`, `tracestate` and `baggage`.
    let parent = global::get_text_map_propagator(|propagator| {
        propagator.extract(&RequestHeaders(request.headers()))
    });

    // Head sampling, asked before any span is built: an unsampled request gets no span and
    // runs with its context only (head_sampling.rs says why, with the figure).
    let start = match sampler.decide(&parent) {
        Decision::Sampled(start) => start,
        Decision::Unsampled(cx) => {
            let traceresponse = traceresponse(&cx);
            let response = head_sampling::scope(cx, next.run(request)).await;
            return with_traceresponse(response, traceresponse);
        }
    };

    // 2. The span, 3. its parent: the caller's span (none when the trace starts here).
    let span = server_span(&request);
    // Only fails when no OpenTelemetry layer is installed, which `HeadSampler::installed` ruled out.
    let _ = span.set_parent(parent);
    let cx = start.context_of(&span);
    let traceresponse = traceresponse(&cx);

    // 4. Instrument: the handler runs inside the span, and knows the request's context.
    let response = head_sampling::scope(cx, next.run(request))
        .instrument(span.clone())
        .await;
    record_response(&span, &response);
    with_traceresponse(response, traceresponse)
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
    let client = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip().to_string());
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
        span.record("error.type", error_type);
        span.record("otel.status_code", "ERROR");
        span.record("otel.status_description", message);
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

/// `00-<trace-id>-<span-id>-<flags>` of the request's span context; none when tracing is off.
fn traceresponse(cx: &Context) -> Option<HeaderValue> {
    let span = cx.span();
    let sc = span.span_context();
    if !sc.is_valid() {
        return None;
    }
    let value = crate::propagation::format_traceparent(
        sc.trace_id(),
        sc.span_id(),
        sc.trace_flags().to_u8(),
    );
    HeaderValue::from_str(&value).ok()
}
