//! The traced HTTP client: reqwest-middleware with reqwest-retry, then reqwest-tracing,
//! which creates a client span per try and injects its context (`traceparent`,
//! `tracestate`, `baggage`) through the global propagator. Retries sit outside the tracing
//! middleware on purpose: every try is its own span in Jaeger, with
//! `http.request.resend_count` from the second on.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware, Error};
use reqwest_retry::{
    RetryError, RetryTransientMiddleware, Retryable, RetryableStrategy,
    policies::ExponentialBackoff,
};
use reqwest_tracing::{ReqwestOtelSpanBackend, TracingMiddleware};

/// Put on a request's extensions to send it without trace context (the broken-propagation lesson).
pub use reqwest_tracing::DisableOtelPropagation;
use tracing::{Span, field::Empty};

/// Tries after the first one, for a transient failure.
pub const MAX_RETRIES: u32 = 2;

/// One pooled client per process; cloning it is cheap and shares the pool. Only for
/// idempotent requests: a transient failure is sent again (see [`TransientFailures`]).
/// A timeout set on a request applies to each try; bound the whole call by the caller.
pub fn http_client() -> ClientWithMiddleware {
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(1))
        .pool_idle_timeout(Duration::from_secs(60))
        .tcp_nodelay(true)
        .build()
        .expect("a reqwest client with these static settings always builds");
    let backoff = ExponentialBackoff::builder()
        .retry_bounds(Duration::from_millis(50), Duration::from_millis(400))
        .build_with_max_retries(MAX_RETRIES);
    ClientBuilder::new(client)
        .with(RetryTransientMiddleware::new_with_policy_and_strategy(
            backoff,
            TransientFailures,
        ))
        .with(TracingMiddleware::<ClientSpanBackend>::new())
        .build()
}

/// What is worth a second try: no connection at all (nothing reached the server), or an
/// answer that says "not now" (429, 502, 503, 504). Unlike reqwest-retry's default, a 500 is
/// not retried (the server ran the request and failed; the same request fails the same
/// way) and neither is a timeout (the caller's time budget is already spent).
pub struct TransientFailures;

impl RetryableStrategy for TransientFailures {
    fn handle(&self, outcome: &Result<reqwest::Response, Error>) -> Option<Retryable> {
        match outcome {
            Ok(response) => match response.status() {
                StatusCode::TOO_MANY_REQUESTS
                | StatusCode::BAD_GATEWAY
                | StatusCode::SERVICE_UNAVAILABLE
                | StatusCode::GATEWAY_TIMEOUT => Some(Retryable::Transient),
                _ => None,
            },
            Err(Error::Reqwest(e)) if e.is_connect() && !e.is_timeout() => {
                Some(Retryable::Transient)
            }
            Err(_) => Some(Retryable::Fatal),
        }
    }
}

/// The reqwest error under the retry middleware's wrapping, if there is one.
pub fn reqwest_error(error: &Error) -> Option<&reqwest::Error> {
    match error {
        Error::Reqwest(e) => Some(e),
        Error::Middleware(e) => match e.downcast_ref::<RetryError>()? {
            RetryError::WithRetries { err, .. } | RetryError::Error(err) => reqwest_error(err),
        },
    }
}

/// Which try of one logical request this is; the middleware hands every try the same
/// extensions, so the count survives from one to the next.
#[derive(Clone, Copy)]
struct Tries(i64);

/// reqwest-tracing's default backend records the status code and port as unsigned
/// integers, which tracing-opentelemetry exports as strings; semantic conventions want ints.
pub struct ClientSpanBackend;

impl ReqwestOtelSpanBackend for ClientSpanBackend {
    fn on_request_start(request: &reqwest::Request, extensions: &mut http::Extensions) -> Span {
        let span = client_span(request.method().as_str(), request.url());
        let resends = extensions.get::<Tries>().map_or(0, |tries| tries.0);
        if resends > 0 {
            span.record("http.request.resend_count", resends);
        }
        extensions.insert(Tries(resends + 1));
        span
    }

    fn on_request_end(
        span: &Span,
        outcome: &Result<reqwest::Response, Error>,
        _: &mut http::Extensions,
    ) {
        match outcome {
            Ok(response) => record_status(span, response.status()),
            Err(error) => crate::error::record(span, error_type(error), &error.to_string()),
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
        http.request.resend_count = Empty,
        error.type = Empty,
        otel.status_code = Empty,
        otel.status_description = Empty,
    )
}

pub fn record_status(span: &Span, status: reqwest::StatusCode) {
    span.record("http.response.status_code", i64::from(status.as_u16()));
    // For a client, any 4xx or 5xx is a failed call (HTTP semantic conventions).
    if status.is_client_error() || status.is_server_error() {
        crate::error::record(span, status.as_str(), &status.to_string());
    }
}

/// Writes `traceparent`, `tracestate` and `baggage` for `cx` through the global propagator.
pub fn inject(cx: &opentelemetry::Context, headers: &mut http::HeaderMap) {
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.inject_context(cx, &mut opentelemetry_http::HeaderInjector(headers))
    });
}

/// A low-cardinality class of transport failure, for `error.type`.
pub fn error_type(error: &Error) -> &'static str {
    reqwest_error(error).map_or("middleware", reqwest_error_type)
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
