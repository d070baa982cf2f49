//! The traced HTTP client: reqwest-middleware with reqwest-tracing, which creates a client
//! span per request and injects `traceparent`/`baggage` through the global propagator.

use std::time::Duration;

use reqwest_middleware::{ClientBuilder, ClientWithMiddleware, Error};
use reqwest_tracing::{ReqwestOtelSpanBackend, TracingMiddleware};

/// Put on a request's extensions to send it without trace context (the broken-propagation lesson).
pub use reqwest_tracing::DisableOtelPropagation;
use tracing::{Span, field::Empty};

/// One pooled client per process; cloning it is cheap and shares the pool.
pub fn http_client() -> ClientWithMiddleware {
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(1))
        .pool_idle_timeout(Duration::from_secs(60))
        .tcp_nodelay(true)
        .build()
        .expect("a reqwest client with these static settings always builds");
    ClientBuilder::new(client)
        .with(TracingMiddleware::<ClientSpanBackend>::new())
        .build()
}

/// reqwest-tracing's default backend records the status code and port as unsigned
/// integers, which tracing-opentelemetry exports as strings; semantic conventions want ints.
pub struct ClientSpanBackend;

impl ReqwestOtelSpanBackend for ClientSpanBackend {
    fn on_request_start(request: &reqwest::Request, _: &mut http::Extensions) -> Span {
        client_span(request.method().as_str(), request.url())
    }

    fn on_request_end(
        span: &Span,
        outcome: &Result<reqwest::Response, Error>,
        _: &mut http::Extensions,
    ) {
        match outcome {
            Ok(response) => record_status(span, response.status()),
            Err(error) => record_error(span, error_type(error), &error.to_string()),
        }
    }
}

/// An HTTP client span with the semantic-convention attributes; for callers that drive
/// reqwest themselves (the load generator), the same span the middleware creates.
pub fn client_span(method: &str, url: &reqwest::Url) -> Span {
    tracing::info_span!(
        "HTTP client request",
        otel.name = method,
        otel.kind = "client",
        http.request.method = method,
        url.full = redact_credentials(url).as_str(),
        server.address = url.host_str(),
        server.port = url.port_or_known_default().map(i64::from),
        http.response.status_code = Empty,
        error.type = Empty,
        otel.status_code = Empty,
        otel.status_description = Empty,
    )
}

pub fn record_status(span: &Span, status: reqwest::StatusCode) {
    span.record("http.response.status_code", i64::from(status.as_u16()));
    // For a client, any 4xx or 5xx is a failed call (HTTP semantic conventions).
    if status.is_client_error() || status.is_server_error() {
        span.record("error.type", status.as_str());
        span.record("otel.status_code", "ERROR");
        span.record("otel.status_description", status.to_string());
    }
}

pub fn record_error(span: &Span, error_type: &str, message: &str) {
    span.record("error.type", error_type);
    span.record("otel.status_code", "ERROR");
    span.record("otel.status_description", message);
}

/// Writes `traceparent`, `tracestate` and `baggage` for `cx` through the global propagator.
pub fn inject(cx: &opentelemetry::Context, headers: &mut http::HeaderMap) {
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.inject_context(cx, &mut opentelemetry_http::HeaderInjector(headers))
    });
}

/// A low-cardinality class of transport failure, for `error.type`.
pub fn error_type(error: &Error) -> &'static str {
    match error {
        Error::Reqwest(e) => reqwest_error_type(e),
        Error::Middleware(_) => "middleware",
    }
}

pub fn reqwest_error_type(error: &reqwest::Error) -> &'static str {
    if error.is_timeout() {
        "timeout"
    } else if error.is_connect() {
        "connect"
    } else if error.is_body() || error.is_decode() {
        "body"
    } else {
        "request"
    }
}

fn redact_credentials(url: &reqwest::Url) -> reqwest::Url {
    let mut url = url.clone();
    if !url.username().is_empty() || url.password().is_some() {
        let _ = url.set_username("REDACTED");
        let _ = url.set_password(Some("REDACTED"));
    }
    url
}
