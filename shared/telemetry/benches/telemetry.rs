//! What telemetry adds to one request, measured in isolation: no network, no collector, no
//! database. Load tests mix this cost with everything else a request does; here each group
//! runs the same work without telemetry and with it, so the report reads as a difference
//! (server layer, client context injection and span, database span).
//!
//! The subscriber, propagators and tracer provider are the ones `telemetry::init` builds
//! (through its hidden `subscriber`, `install_propagators` and `provider_with`), so a change
//! there shows up here; only the OTLP exporter is swapped for one that drops the spans. A
//! figure is therefore what a service pays before anything leaves the process. Sampling is
//! the default `parentbased_always_on`, and the caller's `traceparent` flag decides: `-01`
//! for the sampled path, `-00` for the path of a trace that an upstream chose not to keep.
//!
//! Unlike a service, the subscriber is installed for the current thread (`set_default`), so
//! the variants without one run in the same process; that costs a thread-local lookup per
//! span operation, a few nanoseconds. The runtime is current-thread so that requests run on
//! the thread holding the subscriber. Finished spans still cross to the batch processor's
//! thread, which shares the two cores with the measurement, as it would in a service.
//!
//! `cargo bench -p telemetry --bench telemetry` (about a minute).

use std::{
    hint::black_box,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use axum::{
    Json, Router,
    body::Body,
    extract::Path,
    http::{HeaderMap, Request, StatusCode},
    middleware,
    response::Response,
    routing::get,
};
use criterion::{Criterion, criterion_group, criterion_main};
use opentelemetry_sdk::trace::SdkTracerProvider;
use sqlx::postgres::PgConnectOptions;
use telemetry::{
    OpenTelemetrySpanExt as _, TelemetryConfig,
    client::{client_span, inject, record_status},
    db::{DbTarget, Query},
    server::{TRACERESPONSE, trace_http},
};
use tokio::runtime::Runtime;
use tower::ServiceExt as _;
use tracing::{Dispatch, Span};

const SAMPLED: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const NOT_SAMPLED: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";

const SELECT_ORDER: Query = Query {
    operation: "SELECT",
    collection: "orders",
    text: "SELECT id, user_id, item, quantity, total_cents, created_at FROM orders WHERE id = $1",
};

/// `TelemetryConfig::from_env` with no variable set, so that an `OTEL_*` or `RUST_LOG` in
/// the shell cannot change what is measured.
fn config() -> TelemetryConfig {
    TelemetryConfig::defaults("bench")
}

/// An exporter that counts the spans and drops them: no collector, so what is measured is
/// the pipeline a service runs up to the wire.
#[derive(Debug, Default)]
struct CountingExporter(Arc<AtomicUsize>);

impl opentelemetry_sdk::trace::SpanExporter for CountingExporter {
    async fn export(
        &self,
        batch: Vec<opentelemetry_sdk::trace::SpanData>,
    ) -> opentelemetry_sdk::error::OTelSdkResult {
        self.0.fetch_add(batch.len(), Ordering::Relaxed);
        Ok(())
    }
}

/// Where the batch processor runs its task, as in a service (init.rs).
static RUNTIME: std::sync::LazyLock<Runtime> = std::sync::LazyLock::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a runtime builds")
});

/// The service's subscriber and provider, not installed until [`Telemetry::install`].
struct Telemetry {
    provider: SdkTracerProvider,
    dispatch: Dispatch,
    exported: Arc<AtomicUsize>,
}

impl Telemetry {
    fn new() -> Self {
        opentelemetry::global::set_text_map_propagator(telemetry::propagator());
        let config = config();
        // Counted, so the set-up can check that the sampled variants really export and the
        // unsampled one does not: a misconfigured bench would report the cheap path as the
        // expensive one.
        let exporter = CountingExporter::default();
        let exported = Arc::clone(&exporter.0);
        let provider = RUNTIME.block_on(async { telemetry::provider(&config, exporter) });
        // Log lines are formatted as in a service, then thrown away.
        let subscriber = telemetry::subscriber(&config, Some(&provider), std::io::sink, false)
            .expect("the default log filter parses");
        Self {
            provider,
            dispatch: Dispatch::new(subscriber),
            exported,
        }
    }

    fn install(&self) -> tracing::dispatcher::DefaultGuard {
        tracing::dispatcher::set_default(&self.dispatch)
    }

    /// Spans exported since the last call.
    fn take_exported(&self) -> usize {
        self.provider.force_flush().expect("flush");
        self.exported.swap(0, Ordering::Relaxed)
    }
}

/// Call before a variant without subscriber: a callsite caches whether any subscriber wants
/// it, and a cache filled while a `Telemetry` was alive would keep the "disabled" check off
/// its fast path, making the baseline slower than in a process that never had one.
fn without_subscriber() {
    tracing::callsite::rebuild_interest_cache();
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime builds")
}

/// A span standing for the server span a client call or query runs in, continuing the
/// caller's trace as `trace_http` does.
fn request_span(traceparent: &str) -> Span {
    let mut headers = HeaderMap::new();
    headers.insert("traceparent", traceparent.parse().expect("valid header"));
    let parent = opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.extract(&telemetry::propagation::RequestHeaders(&headers))
    });
    let span = tracing::info_span!("HTTP request", otel.kind = "server");
    span.set_parent(parent)
        .expect("an OpenTelemetry layer is installed");
    span
}

async fn order(Path(id): Path<u64>) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "id": id, "item": "book", "quantity": 1, "total_cents": 4200 }))
}

fn orders_router() -> Router {
    Router::new().route("/orders/{id}", get(order))
}

async fn call(router: &Router, traceparent: &'static str) -> Response {
    let request = Request::builder()
        .uri("/orders/42")
        .header("traceparent", traceparent)
        .body(Body::empty())
        .expect("a valid request");
    let Ok(response) = router.clone().oneshot(request).await;
    response
}

fn server_layer(c: &mut Criterion) {
    let rt = runtime();
    let bare = orders_router();
    // As service-kit adds it: `Router::layer`, so `MatchedPath` names the span.
    let traced = orders_router().layer(middleware::from_fn(trace_http));
    let mut group = c.benchmark_group("server_layer");

    without_subscriber();
    let response = rt.block_on(call(&bare, SAMPLED));
    assert_eq!(response.status(), StatusCode::OK);
    group.bench_function("bare_router", |b| {
        b.to_async(&rt).iter(|| call(&bare, SAMPLED))
    });
    // The middleware's own work when no OpenTelemetry layer listens (OTEL_SDK_DISABLED).
    group.bench_function("layer_no_subscriber", |b| {
        b.to_async(&rt).iter(|| call(&traced, SAMPLED))
    });

    let telemetry = Telemetry::new();
    let _installed = telemetry.install();
    for (traceparent, flags, exported) in [(SAMPLED, "-01", 1), (NOT_SAMPLED, "-00", 0)] {
        let response = rt.block_on(call(&traced, traceparent));
        let traceresponse = response.headers()[&TRACERESPONSE].to_str().unwrap();
        assert!(traceresponse.ends_with(flags), "{traceresponse}");
        assert_eq!(telemetry.take_exported(), exported, "{traceparent}");
    }
    group.bench_function("layer_sampled", |b| {
        b.to_async(&rt).iter(|| call(&traced, SAMPLED))
    });
    group.bench_function("layer_not_sampled", |b| {
        b.to_async(&rt).iter(|| call(&traced, NOT_SAMPLED))
    });
    group.finish();
}

fn inject_current() -> HeaderMap {
    let mut headers = HeaderMap::new();
    inject(&Span::current().context(), &mut headers);
    headers
}

/// One client call's span as reqwest-tracing drives it: created, entered while the request
/// runs, status recorded, closed.
fn client_call(url: &reqwest::Url) {
    let span = client_span("GET", url);
    let _entered = span.enter();
    record_status(&span, StatusCode::OK);
}

fn client_injection(c: &mut Criterion) {
    let url = reqwest::Url::parse("http://users:8080/users/7").expect("a valid URL");
    let mut group = c.benchmark_group("client_injection");

    without_subscriber();
    // What a request's headers cost anyway; injection adds to this.
    group.bench_function("headers_only", |b| b.iter(HeaderMap::new));
    group.bench_function("inject_no_subscriber", |b| b.iter(inject_current));
    group.bench_function("client_span_no_subscriber", |b| {
        b.iter(|| client_call(black_box(&url)))
    });

    let telemetry = Telemetry::new();
    let _installed = telemetry.install();
    let request = request_span(SAMPLED);
    let _entered = request.enter();
    assert!(inject_current().contains_key("traceparent"));
    client_call(&url);
    assert_eq!(telemetry.take_exported(), 1);
    group.bench_function("inject_sampled", |b| b.iter(inject_current));
    group.bench_function("client_span_sampled", |b| {
        b.iter(|| client_call(black_box(&url)))
    });
    group.finish();
}

fn db_span(c: &mut Criterion) {
    let rt = runtime();
    let target = DbTarget::from_options(
        &PgConnectOptions::new_without_pgpass()
            .host("postgres")
            .port(5432)
            .database("orders"),
    );
    // An answer already there: what is left is the span around the query.
    let query = || target.run_in_span(SELECT_ORDER, async { Ok(black_box(42_i64)) });
    let mut group = c.benchmark_group("db_span");

    without_subscriber();
    group.bench_function("no_subscriber", |b| b.to_async(&rt).iter(query));

    let telemetry = Telemetry::new();
    let _installed = telemetry.install();
    let request = request_span(SAMPLED);
    let _entered = request.enter();
    rt.block_on(query()).expect("the query future succeeds");
    assert_eq!(telemetry.take_exported(), 1);
    group.bench_function("sampled", |b| b.to_async(&rt).iter(query));
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .sample_size(50);
    targets = server_layer, client_injection, db_span
}
criterion_main!(benches);
