//! One call per binary sets up tracing: the textbook OpenTelemetry pipeline, in the order
//! the OpenTelemetry and tracing-opentelemetry docs build it.
//!
//! 1. **The exporter** (opentelemetry-otlp): sends finished spans over OTLP, gRPC or HTTP.
//!    A failed export is tried again with backoff ([`RETRY`]), the crate's own retry.
//! 2. **The batch span processor** (the SDK's): queues finished spans and hands them to
//!    the exporter in batches, off the request path. Its sizes come from `OTEL_BSP_*`.
//! 3. **The tracer provider**: the processor, the resource (which service this is) and the
//!    sampler, the SDK's own, which reads `OTEL_TRACES_SAMPLER` / `OTEL_TRACES_SAMPLER_ARG`.
//!
//! The SDK and the exporter read their `OTEL_*` variables themselves; config.rs only
//! corrects the few values they would read otherwise than the specification says.
//! 4. **The global propagator**: how a context is written into and read from headers
//!    (W3C `traceparent`/`tracestate` and `baggage`).
//! 5. **The tracing subscriber**: tracing-subscriber's registry with two layers, the log
//!    lines (events only, filtered by `RUST_LOG`) and tracing-opentelemetry's layer, which
//!    turns `tracing` spans into OpenTelemetry spans for the provider.
//!
//! What each setting here costs, measured: docs/benchmarks.md, "What each setting costs".
//!
//! At exit, [`TelemetryGuard::shutdown`] flushes what the processor still holds.

use std::{io::IsTerminal as _, time::Duration};

use opentelemetry::{
    KeyValue, global, propagation::TextMapCompositePropagator, trace::TracerProvider as _,
};
use opentelemetry_otlp::{SpanExporter, WithExportConfig};
use opentelemetry_sdk::{
    Resource,
    resource::TelemetryResourceDetector,
    runtime,
    trace::{
        BatchConfigBuilder, Sampler, SdkTracerProvider,
        span_processor_with_async_runtime::BatchSpanProcessor,
    },
};
use tracing_subscriber::{
    EnvFilter, Layer as _, filter::Targets, fmt::MakeWriter, layer::SubscriberExt as _,
    util::SubscriberInitExt as _,
};

use crate::{
    baggage::W3cBaggage,
    config::{Protocol, SamplerConfig, TelemetryConfig},
    propagation::W3cTraceContext,
};

/// How a failed export is tried again (opentelemetry-otlp's `RetryPolicy`): after 0.5 s,
/// then twice as long each time up to 8 s, seven times, until the batch processor's export
/// timeout (`OTEL_BSP_EXPORT_TIMEOUT`, 30 s) gives the batch up. Together with the batch
/// queue, this is how long a collector may be away with no span lost (docs/workshop.md,
/// exercise 9, has the figures and the tests).
pub const RETRY: opentelemetry_otlp::RetryPolicy = opentelemetry_otlp::RetryPolicy {
    max_retries: 7,
    initial_delay_ms: 500,
    max_delay_ms: 8_000,
    jitter_ms: 100,
};

#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error("OTLP exporter: {0}")]
    Exporter(#[from] opentelemetry_otlp::ExporterBuildError),
    #[error("tracing subscriber already set: {0}")]
    Subscriber(#[from] tracing_subscriber::util::TryInitError),
    #[error("RUST_LOG: {0}")]
    Filter(#[from] tracing_subscriber::filter::ParseError),
}

/// Installs the global tracer provider, propagator and subscriber. Call it once, inside the
/// tokio runtime (the exporter and the batch processor run their tasks on it).
pub fn init(config: &TelemetryConfig) -> Result<TelemetryGuard, InitError> {
    let provider = if config.sdk_disabled {
        None
    } else {
        let exporter = otlp_exporter(config)?; // 1.
        Some(provider(config, exporter)) // 2. and 3.
    };
    if let Some(provider) = &provider {
        global::set_tracer_provider(provider.clone());
    }
    // 4. Installed even with the SDK disabled: `load` sends the workshop's demo faults as
    //    baggage.
    global::set_text_map_propagator(propagator());
    // 5.
    let logs = std::io::stderr;
    subscriber(
        config,
        provider.as_ref(),
        logs,
        std::io::stderr().is_terminal(),
    )?
    .try_init()?;
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    Ok(TelemetryGuard { provider })
}

/// Steps 2 and 3 around any exporter (the benchmark's counts spans instead of sending them).
pub fn provider<E>(config: &TelemetryConfig, exporter: E) -> SdkTracerProvider
where
    E: opentelemetry_sdk::trace::SpanExporter + 'static,
{
    // 2. The batch processor. This is the SDK's processor that runs on the async runtime:
    //    the exporter's retry waits with tokio's timer, which needs it. Its builder reads
    //    OTEL_BSP_* itself; config.rs corrects a size the SDK would take as 0.
    let fixed = &config.corrections;
    let mut batch = BatchConfigBuilder::default();
    if let Some(size) = fixed.max_queue_size {
        batch = batch.with_max_queue_size(size);
    }
    if let Some(size) = fixed.max_export_batch_size {
        batch = batch.with_max_export_batch_size(size);
    }
    let processor = BatchSpanProcessor::builder(exporter, runtime::Tokio)
        .with_batch_config(batch.build())
        .build();
    // 3. The provider: the processor, the resource and the sampler. The SDK reads
    //    OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER and
    //    OTEL_TRACES_SAMPLER_ARG itself; config.rs hands over what it would misread.
    let resource = match &fixed.resource_attributes {
        None => Resource::builder(),
        Some(attributes) => Resource::builder_empty()
            .with_detectors(&[Box::new(TelemetryResourceDetector)])
            .with_attributes(
                attributes
                    .iter()
                    .map(|(k, v)| KeyValue::new(k.clone(), v.clone())),
            ),
    }
    .with_service_name(config.service_name.clone())
    .with_attribute(KeyValue::new(
        "service.version",
        config.service_version.clone(),
    ))
    .build();
    let provider = SdkTracerProvider::builder()
        .with_span_processor(processor)
        .with_resource(resource);
    match fixed.sampler {
        Some(corrected) => provider.with_sampler(sampler(corrected)),
        None => provider,
    }
    .build()
}

/// Step 4: W3C trace context and baggage, each read strictly (propagation.rs and
/// baggage.rs say why the SDK's own are not enough).
pub fn propagator() -> TextMapCompositePropagator {
    TextMapCompositePropagator::new(vec![
        Box::new(W3cTraceContext::new()),
        Box::new(W3cBaggage::new()),
    ])
}

/// Step 5: log lines to `writer`, filtered by `RUST_LOG` (that filter is the log layer's
/// own, so it never drops a span, and it lets no span in: logs.rs says why), and the
/// OpenTelemetry layer when there is a provider.
pub fn subscriber<W>(
    config: &TelemetryConfig,
    provider: Option<&SdkTracerProvider>,
    writer: W,
    ansi: bool,
) -> Result<Box<dyn tracing::Subscriber + Send + Sync + 'static>, InitError>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let logs = crate::logs::layer(config.log_format, writer, ansi).with_filter(
        crate::logs::events_only(EnvFilter::try_new(&config.log_filter)?),
    );
    let registry = tracing_subscriber::registry().with(logs);
    // Without a provider the subscriber has no OpenTelemetry layer at all, rather than a
    // `None` one: tracing-subscriber's `Option` layer answers `Interest::always` when empty,
    // and the registry would build every span for nobody.
    let Some(provider) = provider else {
        return Ok(Box::new(registry));
    };
    let spans = tracing_opentelemetry::layer()
        .with_tracer(provider.tracer(config.service_name.clone()))
        // No timing of every enter and exit for `busy_ns` and `idle_ns`, attributes no
        // convention defines (docs/benchmarks.md, "What each setting costs").
        .with_tracked_inactivity(false)
        // Off unless TRACING_CONTEXT_ACTIVATION=on: attaching the span's context as
        // OpenTelemetry's `Context::current()` on every enter (every poll) is a cost
        // paid for code that reads `Context::current()`; here the client, the log lines
        // and the queue take the context from the span. Exercise 14 shows both.
        .with_context_activation(config.context_activation)
        // Only the semantic conventions' attributes: no source file, thread or level.
        .with_location(false)
        .with_threads(false)
        .with_level(false)
        .with_target(false)
        .with_filter(span_filter());
    Ok(Box::new(registry.with(spans)))
}

/// The OTLP exporter for `OTEL_EXPORTER_OTLP_PROTOCOL`: gRPC (the default), HTTP protobuf
/// or HTTP JSON. Headers, timeout and compression it reads from `OTEL_EXPORTER_OTLP_*`
/// itself; the endpoint is the one config.rs checked.
fn otlp_exporter(config: &TelemetryConfig) -> Result<SpanExporter, InitError> {
    use opentelemetry_otlp::{WithHttpConfig as _, WithTonicConfig as _};
    fn endpoint<B: WithExportConfig>(builder: B, corrected: &Option<String>) -> B {
        match corrected {
            Some(endpoint) => builder.with_endpoint(endpoint.clone()),
            None => builder,
        }
    }
    let corrected = &config.corrections.endpoint;
    let http = |protocol| {
        let builder = SpanExporter::builder().with_http().with_protocol(protocol);
        endpoint(builder, corrected)
            .with_retry_policy(RETRY)
            .build()
    };
    Ok(match config.protocol {
        Protocol::Grpc => {
            let builder = SpanExporter::builder().with_tonic();
            endpoint(builder, corrected)
                .with_retry_policy(RETRY)
                .build()?
        }
        Protocol::HttpProtobuf => http(opentelemetry_otlp::Protocol::HttpBinary)?,
        Protocol::HttpJson => http(opentelemetry_otlp::Protocol::HttpJson)?,
    })
}

fn sampler(config: SamplerConfig) -> Sampler {
    match config {
        SamplerConfig::AlwaysOn => Sampler::AlwaysOn,
        SamplerConfig::AlwaysOff => Sampler::AlwaysOff,
        SamplerConfig::TraceIdRatio(r) => Sampler::TraceIdRatioBased(r),
        SamplerConfig::ParentBasedAlwaysOn => Sampler::ParentBased(Box::new(Sampler::AlwaysOn)),
        SamplerConfig::ParentBasedAlwaysOff => Sampler::ParentBased(Box::new(Sampler::AlwaysOff)),
        SamplerConfig::ParentBasedTraceIdRatio(r) => {
            Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(r)))
        }
    }
}

/// What becomes a span, whatever `RUST_LOG` says (a `warn` log level must not drop INFO
/// spans). The exporter's own stack (tonic, hyper, h2) is kept out, or every export would
/// trace itself.
fn span_filter() -> Targets {
    use tracing::level_filters::LevelFilter;
    Targets::new()
        .with_default(LevelFilter::INFO)
        .with_target("h2", LevelFilter::OFF)
        .with_target("hyper", LevelFilter::OFF)
        .with_target("hyper_util", LevelFilter::OFF)
        .with_target("tonic", LevelFilter::OFF)
        .with_target("tower", LevelFilter::OFF)
        .with_target("reqwest", LevelFilter::OFF)
        .with_target("opentelemetry", LevelFilter::OFF)
        .with_target("opentelemetry_sdk", LevelFilter::OFF)
        .with_target("opentelemetry_otlp", LevelFilter::OFF)
        .with_target("sqlx", LevelFilter::WARN)
}

/// Flushes and shuts the provider down: call [`TelemetryGuard::shutdown`] once the server
/// has stopped, so the spans of the last requests are exported before the process exits.
#[must_use = "dropping the guard without shutdown() may lose the last spans"]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

/// How long the last export may take at exit. With the collector away, the exporter would
/// go on retrying ([`RETRY`]) past the 10 s `docker stop` waits before it kills.
pub const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

impl TelemetryGuard {
    pub async fn shutdown(self) {
        let Some(provider) = self.provider else {
            return;
        };
        // shutdown() blocks until the last batch is exported, and that export runs on this
        // runtime: wait for it on a blocking thread, not on a worker.
        let flush = tokio::task::spawn_blocking(move || provider.shutdown());
        match tokio::time::timeout(SHUTDOWN_TIMEOUT, flush).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => eprintln!("telemetry shutdown: {e}"),
            Ok(Err(e)) => eprintln!("telemetry shutdown task: {e}"),
            Err(_) => eprintln!(
                "telemetry shutdown: the last spans were not exported within {SHUTDOWN_TIMEOUT:?}"
            ),
        }
    }
}
