//! Server spans for axum: one span per sampled request, continuing the caller's trace, named
//! by the matched route, with HTTP semantic-convention attributes; a `traceresponse` header
//! on every traced answer, sampled or not (head_sampling.rs says why an unsampled one has no span).

use std::{borrow::Cow, net::SocketAddr};

use axum::{
    extract::{ConnectInfo, MatchedPath, Request},
    http::{HeaderName, HeaderValue},
    middleware::Next,
    response::Response,
};
use opentelemetry::{
    Context, global,
    trace::{SpanContext, TraceContextExt as _, TraceId},
};
use tracing::{Instrument as _, field::Empty};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::head_sampling::{Decision, HeadSampling};

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
    let decided = tracing::dispatcher::get_default(|dispatch| {
        let sampling = dispatch.downcast_ref::<HeadSampling>()?;
        let parent = global::get_text_map_propagator(|propagator| {
            propagator.extract(&crate::propagation::RequestHeaders(request.headers()))
        });
        let decision = sampling.decide(&parent);
        Some((parent, decision))
    });
    // None: OTEL_SDK_DISABLED=true, no OpenTelemetry layer, nothing to trace or propagate.
    let Some((parent, decision)) = decided else {
        return next.run(request).await;
    };
    match decision {
        Decision::Unsampled(cx) => {
            let traceresponse = traceresponse(cx.span().span_context());
            let response = crate::head_sampling::scope(cx, next.run(request)).await;
            with_traceresponse(response, traceresponse)
        }
        Decision::Traced { new_trace_id } => traced(request, next, parent, new_trace_id).await,
    }
}

async fn traced(
    request: Request,
    next: Next,
    parent: Context,
    new_trace_id: Option<TraceId>,
) -> Response {
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
        url.path = request.uri().path(),
        url.scheme = "http",
        client.address = client,
        network.protocol.version = protocol_version(&request),
        http.response.status_code = Empty,
        error.type = Empty,
        otel.status_code = Empty,
        otel.status_description = Empty,
    );
    // Only fails when no OpenTelemetry layer is installed, which `trace_http` ruled out.
    let _ = span.set_parent(parent);
    let cx = crate::head_sampling::with_trace_id(new_trace_id, || span.context());
    let traceresponse = traceresponse(cx.span().span_context());

    let handling = crate::head_sampling::scope(cx, next.run(request));
    let response = handling.instrument(span.clone()).await;

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
    with_traceresponse(response, traceresponse)
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

/// `00-<trace-id>-<span-id>-<flags>` of the server span; none when tracing is off.
fn traceresponse(sc: &SpanContext) -> Option<HeaderValue> {
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
