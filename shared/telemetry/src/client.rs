//! The traced HTTP client: reqwest-middleware with reqwest-tracing, which creates a client
//! span per request and injects `traceparent`/`baggage` through the global propagator.

use std::time::Duration;

use reqwest_middleware::{ClientBuilder, ClientWithMiddleware, Error};
use reqwest_tracing::{ReqwestOtelSpanBackend, TracingMiddleware};
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
        let url = request.url();
        let method = request.method().as_str();
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

    fn on_request_end(
        span: &Span,
        outcome: &Result<reqwest::Response, Error>,
        _: &mut http::Extensions,
    ) {
        match outcome {
            Ok(response) => {
                let status = response.status();
                span.record("http.response.status_code", i64::from(status.as_u16()));
                // For a client, any 4xx or 5xx is a failed call (HTTP semantic conventions).
                if status.is_client_error() || status.is_server_error() {
                    span.record("error.type", status.as_str());
                    span.record("otel.status_code", "ERROR");
                    span.record("otel.status_description", status.to_string());
                }
            }
            Err(error) => {
                span.record("error.type", error_type(error));
                span.record("otel.status_code", "ERROR");
                span.record("otel.status_description", error.to_string());
            }
        }
    }
}

/// A low-cardinality class of transport failure, for `error.type`.
pub fn error_type(error: &Error) -> &'static str {
    match error {
        Error::Reqwest(e) if e.is_timeout() => "timeout",
        Error::Reqwest(e) if e.is_connect() => "connect",
        Error::Reqwest(e) if e.is_body() || e.is_decode() => "body",
        Error::Reqwest(_) => "request",
        Error::Middleware(_) => "middleware",
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
