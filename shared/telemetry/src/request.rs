//! What the server span decided for the request being handled, known to everything that
//! runs inside it without asking the tracing stack again:
//!
//! - whether it is sampled. Inside an unsampled request the spans the service makes never
//!   reach the OpenTelemetry layer ([`SkipUnsampled`]). The parent-based sampler would drop
//!   them anyway, but only after tracing-opentelemetry had built each one (a builder, its
//!   attributes, then a non-recording span): with 10% head sampling that was most of what
//!   tracing cost (`cargo xtask bench`, docs/benchmarks.md). Two kinds still go through:
//!   the server span, which made the decision, and client spans, whose context carries the
//!   trace, unsampled flag included, to the next service; without them a callee would start
//!   a trace of its own.
//! - its trace and span ids, for the log lines written inside it (logs.rs). Reading them
//!   off the current tracing span from inside the log layer would start OpenTelemetry spans
//!   in the middle of dispatching an event.

use std::future::Future;

use opentelemetry::trace::SpanContext;
use tracing::{Metadata, subscriber::Interest};
use tracing_subscriber::layer::{Context, Filter};

tokio::task_local! {
    static REQUEST: SpanContext;
}

/// Runs a request's handling with its server span's context known to what runs inside.
pub(crate) async fn scope<F: Future>(server_span: SpanContext, handling: F) -> F::Output {
    REQUEST.scope(server_span, handling).await
}

/// The server span's context of the request being handled on this task, if any.
pub(crate) fn current() -> Option<SpanContext> {
    REQUEST.try_with(SpanContext::clone).ok()
}

/// The OpenTelemetry layer's filter for the above. Outside a request (start-up, the load
/// generator, a spawned task) every span goes through and the sampler decides as usual.
pub(crate) struct SkipUnsampled;

impl SkipUnsampled {
    fn decides(metadata: &Metadata<'_>) -> bool {
        metadata.is_span() && metadata.target() != crate::client::SPAN_TARGET
    }
}

impl<S> Filter<S> for SkipUnsampled {
    fn enabled(&self, metadata: &Metadata<'_>, _: &Context<'_, S>) -> bool {
        !Self::decides(metadata) || REQUEST.try_with(SpanContext::is_sampled).unwrap_or(true)
    }

    fn callsite_enabled(&self, _: &'static Metadata<'static>) -> Interest {
        // Decided per request, so never cached per callsite; and for events too, though it
        // always lets them through: with one callsite cached as `always` among per-layer
        // filters, a filter state left behind by an unrelated `enabled` check (sqlx asks
        // `log` whether to log each query) makes the next event vanish from the log layer
        // (tokio-rs/tracing#2519). Asked every time, every filter's state is fresh.
        Interest::sometimes()
    }
}
