//! Head sampling, decided once per request by the server layer before any span is built,
//! and what that decision means for everything that runs inside the request.
//!
//! Why: with 10% head sampling, nine requests in ten are not sampled; yet with a span built
//! for each operation and only then dropped by the sampler, such a request cost almost as
//! much as a sampled one. Deciding first took 29k instructions off the average request at
//! 10% (304.0k -> 275.1k, orders + users, callgrind), and refusing an unsampled request's
//! spans in the subscriber itself ([`HeadSampling`]) another 27k (272.2k -> 245.4k);
//! docs/benchmarks.md, section 3, steps 3 and 5.
//!
//! How: the server layer asks the tracer provider's own sampler first ([`decide`]). An
//! unsampled request gets no span at all, in the OpenTelemetry layer or elsewhere: it only
//! carries its context, an unsampled span context under the caller's trace, which
//!
//! - the traced client injects into calls to other services (client.rs's `InjectUnsampled`), so a
//!   callee continues the same trace, unsampled too, instead of starting one of its own;
//! - the log lines written inside the request carry (logs.rs).
//!
//! A sampled request is traced as usual, by tracing-opentelemetry and the SDK, which ask
//! the same sampler again and get the same answer: it depends only on the parent and the
//! trace id, and for a new trace the server layer hands the SDK the trace id it decided on
//! ([`TraceStart::context_of`], through the provider's id generator [`RequestIds`]).

use std::{any::TypeId, cell::Cell, future::Future};

use opentelemetry::{
    Context,
    trace::{SpanContext, SpanId, SpanKind, TraceContextExt as _, TraceFlags, TraceId},
};
use opentelemetry_sdk::trace::{
    IdGenerator, RandomIdGenerator, Sampler, SamplingDecision, ShouldSample as _,
};
use tracing::{
    Dispatch, Event, Metadata, Subscriber,
    level_filters::LevelFilter,
    span::{Attributes, Id, Record},
    subscriber::Interest,
};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::{filter::Targets, layer::Filter};

tokio::task_local! {
    /// The context of the request being handled: its server span's, or for an unsampled
    /// request the span context the server layer made for it, with the caller's baggage.
    static REQUEST: Context;
}

/// Runs a request's handling with its context known to what runs inside.
pub(crate) async fn scope<F: Future>(cx: Context, handling: F) -> F::Output {
    REQUEST.scope(cx, handling).await
}

/// The span context of the request being handled on this task, if any.
pub(crate) fn current() -> Option<SpanContext> {
    REQUEST.try_with(|cx| cx.span().span_context().clone()).ok()
}

/// The whole context of the request being handled on this task, if any.
pub(crate) fn context() -> Option<Context> {
    REQUEST.try_with(Context::clone).ok()
}

/// The context to send with calls made inside an unsampled request, which have no span.
pub(crate) fn unsampled() -> Option<Context> {
    REQUEST
        .try_with(|cx| {
            let span = cx.span();
            let sc = span.span_context();
            (sc.is_valid() && !sc.is_sampled()).then(|| cx.clone())
        })
        .ok()
        .flatten()
}

fn request_is_sampled() -> bool {
    REQUEST
        .try_with(|cx| cx.span().span_context().is_sampled())
        .unwrap_or(true)
}

/// What the server layer does with a request.
pub(crate) enum Decision {
    /// A server span, started by [`TraceStart::context_of`].
    Sampled(TraceStart),
    /// No span: the request runs with this context.
    Unsampled(Context),
}

/// The head sampler of the installed subscriber; none with `OTEL_SDK_DISABLED=true`, when
/// there is nothing to trace. Found through the subscriber (`Dispatch::downcast_ref`), not a
/// global: the subscriber is what decides whether spans are built at all.
pub(crate) struct HeadSampler(Dispatch);

impl HeadSampler {
    pub(crate) fn installed() -> Option<Self> {
        let dispatch = tracing::dispatcher::get_default(Dispatch::clone);
        dispatch.is::<HeadSampling>().then_some(Self(dispatch))
    }

    /// Head sampling's decision for a request whose caller's context is `parent`.
    pub(crate) fn decide(&self, parent: &Context) -> Decision {
        self.0
            .downcast_ref::<HeadSampling>()
            .expect("checked by `installed`")
            .decide(parent)
    }
}

thread_local! {
    /// Set only while [`TraceStart::context_of`] draws a server span's ids.
    static NEXT_TRACE_ID: Cell<Option<TraceId>> = const { Cell::new(None) };
}

/// How a sampled request's server span starts: in its caller's trace, or in a new trace
/// with the id its sampling was decided on.
pub(crate) struct TraceStart {
    new_trace_id: Option<TraceId>,
}

impl TraceStart {
    /// The server span's OpenTelemetry context. Its ids are drawn here, so a new trace gets
    /// the decided trace id: the ratio sampler's answer is a function of it.
    pub(crate) fn context_of(self, span: &tracing::Span) -> Context {
        NEXT_TRACE_ID.set(self.new_trace_id);
        let cx = span.context();
        // Not taken when the span continued a trace: not left for the next new trace.
        NEXT_TRACE_ID.set(None);
        cx
    }
}

/// A subscriber, not a sampler: the subscriber when tracing is on. It holds the two
/// subscribers a service writes to, and the head sampler the server layer asks first.
///
/// - `traced`: the registry with tracing-opentelemetry's layer. A span reaches it only when
///   its target is one the layer takes (`span_targets`) and the request is sampled: a
///   span inside an unsampled request is not built at all. A per-layer filter cannot do the
///   latter (it keeps a span from its own layer, but the registry still builds the span,
///   stores it and tracks every enter and exit: callgrind, a third of what an unsampled
///   request still cost).
/// - `logs`: the log lines (logs.rs), which see events only.
///
/// Routing here, rather than per-layer filters on one registry, is measured too: each
/// per-layer filter looks the span up in the registry again on every enter, exit and close,
/// once per filtered layer; routing took 8.2% off a request's instructions at 100% sampling
/// and 9.0% at 10% (docs/benchmarks.md, section 8).
///
/// The server layer finds the sampler through the subscriber (`Dispatch::downcast_ref`):
/// no global, and with `OTEL_SDK_DISABLED=true` there is none, so no request is traced.
pub(crate) struct HeadSampling {
    traced: Box<dyn Subscriber + Send + Sync>,
    logs: Box<dyn Subscriber + Send + Sync>,
    span_targets: Targets,
    sampler: Sampler,
    ids: RandomIdGenerator,
}

impl HeadSampling {
    pub(crate) fn new(
        traced: Box<dyn Subscriber + Send + Sync>,
        logs: Box<dyn Subscriber + Send + Sync>,
        span_targets: Targets,
        sampler: Sampler,
    ) -> Self {
        Self {
            traced,
            logs,
            span_targets,
            sampler,
            ids: RandomIdGenerator::default(),
        }
    }

    /// Whether tracing-opentelemetry takes spans and events of this target and level.
    fn traces(&self, metadata: &Metadata<'_>) -> bool {
        self.span_targets
            .would_enable(metadata.target(), metadata.level())
    }

    /// The SDK's own decision for a server span under `parent` (see `SdkTracer`'s
    /// `build_with_context`, which this mirrors), made before the span exists.
    fn decide(&self, parent: &Context) -> Decision {
        let continues = parent.has_active_span();
        let trace_id = if continues {
            parent.span().span_context().trace_id()
        } else {
            self.ids.new_trace_id()
        };
        let result =
            self.sampler
                .should_sample(Some(parent), trace_id, "", &SpanKind::Server, &[], &[]);
        match result.decision {
            SamplingDecision::Drop => {
                // The caller's flags but `sampled`: Level 2's `random` says how the trace id
                // was made, which holds whether or not this hop samples (the SDK's own Drop
                // path writes 00).
                let flags = if continues {
                    parent
                        .span()
                        .span_context()
                        .trace_flags()
                        .with_sampled(false)
                } else {
                    TraceFlags::default()
                };
                let sc = SpanContext::new(
                    trace_id,
                    self.ids.new_span_id(),
                    flags,
                    false,
                    result.trace_state,
                );
                Decision::Unsampled(parent.with_remote_span_context(sc))
            }
            SamplingDecision::RecordOnly | SamplingDecision::RecordAndSample => {
                Decision::Sampled(TraceStart {
                    new_trace_id: (!continues).then_some(trace_id),
                })
            }
        }
    }
}

/// Spans go to `traced` only; events to `logs` when `RUST_LOG` wants them and to `traced`
/// when its targets do (tracing-opentelemetry records them on the current span).
impl Subscriber for HeadSampling {
    fn on_register_dispatch(&self, subscriber: &Dispatch) {
        self.traced.on_register_dispatch(subscriber);
        self.logs.on_register_dispatch(subscriber);
    }

    fn register_callsite(&self, metadata: &'static Metadata<'static>) -> Interest {
        let traced = if self.traces(metadata) {
            self.traced.register_callsite(metadata)
        } else {
            Interest::never()
        };
        let logs = if metadata.is_event() {
            self.logs.register_callsite(metadata)
        } else {
            Interest::never()
        };
        // Never `always`: a span depends on its request's sampling, and an event on which
        // of the two wants it, so both are asked every time (`enabled`).
        if traced.is_never() && logs.is_never() {
            Interest::never()
        } else {
            Interest::sometimes()
        }
    }

    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        if metadata.is_span() {
            return request_is_sampled() && self.traces(metadata) && self.traced.enabled(metadata);
        }
        self.logs.enabled(metadata) || (self.traces(metadata) && self.traced.enabled(metadata))
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        let traced = Filter::<tracing_subscriber::Registry>::max_level_hint(&self.span_targets);
        Some(
            traced
                .max(self.logs.max_level_hint())
                .unwrap_or(LevelFilter::TRACE),
        )
    }

    fn event_enabled(&self, event: &Event<'_>) -> bool {
        self.logs.event_enabled(event) || self.traced.event_enabled(event)
    }

    fn event(&self, event: &Event<'_>) {
        let metadata = event.metadata();
        if self.logs.enabled(metadata) && self.logs.event_enabled(event) {
            self.logs.event(event);
        }
        if self.traces(metadata) {
            self.traced.event(event);
        }
    }

    fn new_span(&self, span: &Attributes<'_>) -> Id {
        self.traced.new_span(span)
    }

    fn record(&self, span: &Id, values: &Record<'_>) {
        self.traced.record(span, values);
    }

    fn record_follows_from(&self, span: &Id, follows: &Id) {
        self.traced.record_follows_from(span, follows);
    }

    fn enter(&self, span: &Id) {
        self.traced.enter(span);
    }

    fn exit(&self, span: &Id) {
        self.traced.exit(span);
    }

    fn clone_span(&self, id: &Id) -> Id {
        self.traced.clone_span(id)
    }

    fn try_close(&self, id: Id) -> bool {
        self.traced.try_close(id)
    }

    fn current_span(&self) -> tracing_core::span::Current {
        self.traced.current_span()
    }

    unsafe fn downcast_raw(&self, id: TypeId) -> Option<*const ()> {
        if id == TypeId::of::<Self>() {
            return Some(self as *const Self as *const ());
        }
        // SAFETY: forwarded as is; the traced subscriber answers for its own types
        // (tracing-opentelemetry's context lookups among them).
        unsafe { self.traced.downcast_raw(id) }
    }
}

/// The tracer provider's id generator: random ids, but for a new trace begun by the server
/// layer, the trace id it already drew and decided on ([`TraceStart::context_of`]).
#[derive(Debug, Default)]
pub(crate) struct RequestIds(RandomIdGenerator);

impl IdGenerator for RequestIds {
    fn new_trace_id(&self) -> TraceId {
        NEXT_TRACE_ID
            .take()
            .unwrap_or_else(|| self.0.new_trace_id())
    }

    fn new_span_id(&self) -> SpanId {
        self.0.new_span_id()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use opentelemetry::trace::{TraceState, TracerProvider as _};

    use super::*;
    use crate::config::TelemetryConfig;

    fn decide(parent: &Context) -> Decision {
        HeadSampler::installed()
            .expect("the sampling subscriber")
            .decide(parent)
    }

    fn caller(flags: TraceFlags) -> Context {
        Context::new().with_remote_span_context(SpanContext::new(
            TraceId::from(0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736_u128),
            SpanId::from(0x00f0_67aa_0ba9_02b7_u64),
            flags,
            true,
            TraceState::default(),
        ))
    }

    /// The spans a request makes inside the server span, as a service makes them.
    fn inner_spans() -> [tracing::Span; 2] {
        let url = reqwest::Url::parse("http://users:8081/users/1").expect("a URL");
        [
            tracing::info_span!("fetch-order", order.id = 1),
            crate::client::client_span("GET", &url),
        ]
    }

    #[tokio::test]
    async fn an_unsampled_request_builds_no_span_and_a_sampled_one_builds_them_all() {
        let config = TelemetryConfig::defaults("test");
        let exported = crate::CountingExporter::default();
        let provider = crate::provider_with(&config, exported.clone());
        let tracer = provider.tracer("test");
        let subscriber = crate::subscriber(&config, Some(tracer), std::io::sink, false)
            .expect("the default log filter parses");
        let _default = tracing::subscriber::set_default(subscriber);

        let parent = caller(TraceFlags::default());
        let Decision::Unsampled(cx) = decide(&parent) else {
            panic!("an unsampled caller's request is not sampled");
        };
        let sc = cx.span().span_context().clone();
        assert_eq!(sc.trace_id(), parent.span().span_context().trace_id());
        assert!(sc.is_valid() && !sc.is_sampled());
        scope(cx, async {
            for span in inner_spans() {
                assert!(span.is_disabled(), "{span:?} was built");
            }
            assert_eq!(
                unsampled().map(|cx| cx.span().span_context().clone()),
                Some(sc)
            );
        })
        .await;

        let Decision::Unsampled(random) = decide(&caller(TraceFlags::new(0x02))) else {
            panic!("an unsampled caller's request is not sampled");
        };
        assert_eq!(
            random.span().span_context().trace_flags().to_u8(),
            0x02,
            "the caller's random flag stays"
        );

        let Decision::Sampled(start) = decide(&caller(TraceFlags::SAMPLED)) else {
            panic!("a sampled caller's request is traced");
        };
        let server = tracing::info_span!("HTTP request");
        let _ = server.set_parent(caller(TraceFlags::SAMPLED));
        let cx = start.context_of(&server);
        assert_eq!(
            cx.span().span_context().trace_id(),
            parent.span().span_context().trace_id(),
            "in the caller's trace"
        );
        assert!(cx.span().span_context().is_sampled());
        scope(cx, async {
            for span in inner_spans() {
                assert!(!span.is_disabled(), "{span:?} was not built");
            }
            assert!(unsampled().is_none());
        })
        .await;
        drop(server);
        provider.force_flush().expect("flush");
        assert_eq!(
            exported.0.load(Ordering::Relaxed),
            3,
            "server, fetch-order, client"
        );
    }

    #[test]
    fn a_new_trace_starts_with_the_trace_id_it_was_decided_on_and_only_that_one() {
        let config = TelemetryConfig::defaults("test");
        let provider = crate::provider_with(&config, crate::CountingExporter::default());
        let subscriber =
            crate::subscriber(&config, Some(provider.tracer("test")), std::io::sink, false)
                .expect("the default log filter parses");
        let _default = tracing::subscriber::set_default(subscriber);

        let Decision::Sampled(start) = decide(&Context::new()) else {
            panic!("a new trace is sampled at 100%");
        };
        let decided = start.new_trace_id.expect("a new trace's id is drawn first");
        let span = tracing::info_span!("HTTP request");
        let cx = start.context_of(&span);
        assert_eq!(cx.span().span_context().trace_id(), decided);

        // A span that continued a trace took no id: none is left for the next new trace.
        let continued = TraceStart {
            new_trace_id: Some(decided),
        };
        let child = tracing::info_span!("HTTP request");
        let _ = child.set_parent(caller(TraceFlags::SAMPLED));
        continued.context_of(&child);
        let next = tracing::info_span!("HTTP request");
        assert_ne!(next.context().span().span_context().trace_id(), decided);
    }
}
