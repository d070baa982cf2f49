//! Limits every request meets before a handler runs, each with a JSON answer: headers too
//! large (431), a body too large (413), too many requests at once (503), a request that
//! takes too long (408).
//!
//! One middleware of our own rather than tower-http's `TimeoutLayer`/`RequestBodyLimitLayer`
//! and tower's `ConcurrencyLimit` + `LoadShed`: those answer with empty or plain-text bodies
//! (or an error type needing its own handler), and the contract of both services is one
//! JSON error shape. Each limit here is a few lines over a tokio primitive.

use std::{sync::Arc, time::Duration};

use axum::{extract::Request, http::StatusCode, middleware::Next, response::Response};
use tokio::sync::Semaphore;

use crate::json_error;

/// Name and value bytes of all headers. Browsers and proxies send a few KiB; 16 KiB is
/// nginx's largest default header buffer.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;
/// The largest body a route takes (`POST /orders` takes a few dozen bytes): a larger one is
/// refused before it is read when its length is declared, and once read past it otherwise.
pub const MAX_BODY_BYTES: u64 = 16 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// `REQUEST_TIMEOUT_MS` (default 10000): longer than the users timeout and the longest
    /// demo delay, so those answer with their own errors first.
    pub request_timeout: Duration,
    /// `MAX_CONCURRENT_REQUESTS` (default 1024): beyond it a request is refused at once
    /// rather than queued, so an overload shows as 503s instead of growing latency.
    pub max_concurrent_requests: usize,
}

#[derive(Clone)]
pub struct Enforcer {
    limits: Limits,
    in_flight: Arc<Semaphore>,
}

impl Enforcer {
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            in_flight: Arc::new(Semaphore::new(limits.max_concurrent_requests)),
        }
    }

    /// `axum::middleware::from_fn` body.
    pub async fn enforce(self, request: Request, next: Next) -> Response {
        let header_bytes: usize = request
            .headers()
            .iter()
            .map(|(name, value)| name.as_str().len() + value.len())
            .sum();
        if header_bytes > MAX_HEADER_BYTES {
            return json_error(
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "headers_too_large",
                format!("request headers exceed {MAX_HEADER_BYTES} bytes"),
            );
        }
        let declared_body = request
            .headers()
            .get(axum::http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared_body.is_some_and(|len| len > MAX_BODY_BYTES) {
            return json_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!("request body exceeds {MAX_BODY_BYTES} bytes"),
            );
        }
        // The probes never get here (http.rs routes them outside these limits), so they
        // stay answerable under overload.
        let _permit = match self.in_flight.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                return json_error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "overloaded",
                    format!(
                        "more than {} requests in flight; try again shortly",
                        self.limits.max_concurrent_requests
                    ),
                );
            }
        };
        match tokio::time::timeout(self.limits.request_timeout, next.run(request)).await {
            Ok(response) => response,
            Err(_) => json_error(
                StatusCode::REQUEST_TIMEOUT,
                "request_timeout",
                format!(
                    "no answer within {} ms",
                    self.limits.request_timeout.as_millis()
                ),
            ),
        }
    }
}
