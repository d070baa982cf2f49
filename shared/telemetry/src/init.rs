//! One call per binary: logs, the OTLP pipeline and the W3C propagators.
//!
//! The pipeline is the textbook one, built in this order below: the OTLP exporter
//! ([`otlp_exporter`]), the batch processor and the tracer provider ([`provider_with`]),
//! tracing-opentelemetry's layer beside the log layer ([`subscriber`]). Two measured
//! additions wrap it, each in its own module: the exporter is held through collector
//! outages (export.rs), and the finished subscriber is wrapped last in head sampling
//! (head_sampling.rs).

use std::io::IsTerminal as _;

use opentelemetry::{
    KeyValue, global, propagation::TextMapCompositePropagator, trace::TracerProvider,
};
use opentelemetry_otlp::{SpanExporter, WithExportConfig as _};
use opentelemetry_sdk::{
    Resource,
    trace::{BatchConfigBuilder, BatchSpanProcessor, Sampler, SdkTracer, SdkTracerProvider},
};
use tracing::level_filters::LevelFilter;
use tracing_subscriber::{
    EnvFilter, filter::Targets, fmt::MakeWriter, layer::SubscriberExt as _,
    util::SubscriberInitExt as _,
};

use crate::{
    baggage::W3cBaggage,
    config::{Protocol, SamplerConfig, TelemetryConfig},
    export::HoldingExporter,
    head_sampling::{HeadSampling, RequestIds},
    propagation::W3cTraceContext,
};

#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error("OTLP exporter: {0}")]
    Exporter(#[from] opentelemetry_otlp::ExporterBuildError),
    #[error("tracing subscriber already set: {0}")]
    Subscriber(#[from] tracing_subscriber::util::TryInitError),
    #[error("RUST_LOG: {0}")]
    Filter(#[from] tracing_subscriber::filter::ParseError),
    #[error("OTLP export thread: {0}")]
    ExportThread(#[from] std::io::Error),
}

/// Flushes and shuts the exporter down. Call [`TelemetryGuard::shutdown`] once the server has
/// stopped, so spans of the last answered requests are exported before the process exits.
#[must_use = "dropping the guard without shutdown() may lose the last spans"]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
    export_runtime: Option<tokio::runtime::Runtime>,
}

impl TelemetryGuard {
    pub async fn shutdown(mut self) {
        if let Some(provider) = self.provider.take() {
            // shutdown() blocks until the batch thread has exported: off the async workers.
            let result = tokio::task::spawn_blocking(move || provider.shutdown()).await;
            match result {
                Ok(Ok(())) => {}
                Ok(Err(e)) => eprintln!("telemetry shutdown: {e}"),
                Err(e) => eprintln!("telemetry shutdown task: {e}"),
            }
        }
        if let Some(runtime) = self.export_runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            let _ = provider.shutdown();
        }
        if let Some(runtime) = self.export_runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Installs the global subscriber, tracer provider and propagators.
pub fn init(config: &TelemetryConfig) -> Result<TelemetryGuard, InitError> {
    // Even with the SDK disabled: `load` sends the workshop's demo faults as baggage.
    install_propagators();

    // The OTLP connection gets a thread of its own. On the service's runtime, an export
    // waited behind every request in the workers' queues whenever the service was
    // saturated, and the batch queue overflowed: with its own thread, half as many spans
    // were dropped under `cargo xtask bench`'s closed loop of 32 connections
    // (docs/benchmarks.md, section 8).
    let export_runtime = (!config.sdk_disabled)
        .then(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("otlp-export")
                .enable_all()
                .build()
        })
        .transpose()?;
    let provider = export_runtime
        .as_ref()
        .map(|runtime| {
            // The gRPC exporter spawns its connection's tasks on the runtime it is built in.
            let _entered = runtime.enter();
            otlp_exporter(config).map(|exporter| provider_with(config, exporter))
        })
        .transpose()?;
    let tracer = provider
        .as_ref()
        .map(|provider| provider.tracer(config.service_name.clone()));

    let subscriber = subscriber(
        config,
        tracer,
        // Logs go to stderr: stdout holds only what a command is asked to print
        // (`load --output json | jq` must read one JSON document).
        std::io::stderr,
        std::io::stderr().is_terminal(),
    )?;
    subscriber.try_init()?;
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }

    if let Some(provider) = &provider {
        global::set_tracer_provider(provider.clone());
    }
    Ok(TelemetryGuard {
        provider,
        export_runtime,
    })
}

/// The OTLP span exporter: gRPC, HTTP protobuf or HTTP JSON, by `OTEL_EXPORTER_OTLP_PROTOCOL`.
fn otlp_exporter(config: &TelemetryConfig) -> Result<SpanExporter, InitError> {
    // The endpoint is the one config.rs resolved (so a malformed one is ignored, not fatal);
    // headers, timeout and compression come from the OTEL_EXPORTER_OTLP_* variables, which
    // the exporter reads itself.
    let endpoint = config.endpoint.clone();
    let http = |protocol| {
        SpanExporter::builder()
            .with_http()
            .with_protocol(protocol)
            .with_endpoint(endpoint.clone())
            .build()
    };
    let exporter = match config.protocol {
        Protocol::Grpc => SpanExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint.clone())
            .build()?,
        Protocol::HttpProtobuf => http(opentelemetry_otlp::Protocol::HttpBinary)?,
        Protocol::HttpJson => http(opentelemetry_otlp::Protocol::HttpJson)?,
    };
    Ok(exporter)
}

/// [`init`]'s tracer provider (holding exporter, batch processor, sampler, resource) around
/// any exporter; the benchmarks give it one that drops the spans, so no collector is needed
/// and what is measured is the pipeline a service runs.
#[doc(hidden)]
pub fn provider_with<E>(config: &TelemetryConfig, exporter: E) -> SdkTracerProvider
where
    E: opentelemetry_sdk::trace::SpanExporter + 'static,
{
    // The addition: the exporter keeps what a collector outage would lose, bounded by the
    // same queue size (export.rs).
    let exporter = HoldingExporter::new(
        exporter,
        config.batch.max_export_batch_size,
        config.batch.max_queue_size,
    );
    // The rest of OTEL_BSP_* (export timeout, concurrent exports) the builder reads itself.
    let batch = BatchConfigBuilder::default()
        .with_max_queue_size(config.batch.max_queue_size)
        .with_max_export_batch_size(config.batch.max_export_batch_size)
        .with_scheduled_delay(std::time::Duration::from_millis(
            config.batch.scheduled_delay_ms,
        ))
        .build();
    let processor = BatchSpanProcessor::builder(exporter)
        .with_batch_config(batch)
        .build();
    let resource = Resource::builder()
        .with_service_name(config.service_name.clone())
        .with_attribute(KeyValue::new(
            "service.version",
            config.service_version.clone(),
        ))
        .build();
    SdkTracerProvider::builder()
        .with_span_processor(processor)
        .with_sampler(sampler(config.sampler))
        .with_id_generator(RequestIds::default())
        .with_resource(resource)
        .build()
}

/// The subscriber [`init`] installs, built but not installed, with its log lines written to
/// `writer`: the benchmarks run a request under exactly these layers, not a copy of them.
/// No `tracer` means no OpenTelemetry layer (`OTEL_SDK_DISABLED=true`).
#[doc(hidden)]
pub fn subscriber<W>(
    config: &TelemetryConfig,
    tracer: Option<SdkTracer>,
    writer: W,
    ansi: bool,
) -> Result<Box<dyn tracing::Subscriber + Send + Sync + 'static>, InitError>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let logs = crate::logs::subscriber(
        EnvFilter::try_new(&config.log_filter)?,
        config.log_format,
        writer,
        ansi,
    );
    let Some(tracer) = tracer else {
        return Ok(Box::new(logs));
    };
    let otel_layer = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_location(false)
        .with_threads(false)
        .with_level(false)
        .with_target(false)
        // Measured with `cargo xtask bench`: timing every enter and exit for
        // busy_ns/idle_ns (attributes no convention defines), and attaching the span's
        // OpenTelemetry context on every poll of an instrumented future, were most of
        // what a span cost. Nothing here reads `Context::current()`: propagation and
        // the log lines take the context from the tracing span or the request.
        .with_tracked_inactivity(false)
        .with_context_activation(false);
    let traced = tracing_subscriber::registry().with(otel_layer);
    // The addition, wrapped last around all of it: head sampling (head_sampling.rs), which
    // also routes spans to the OpenTelemetry layer and events to the logs.
    Ok(Box::new(HeadSampling::new(
        Box::new(traced),
        Box::new(logs),
        span_filter(),
        sampler(config.sampler),
    )))
}

/// The global propagators [`init`] installs. Public (hidden) for the benchmarks, which
/// measure the same extraction and injection a service does.
#[doc(hidden)]
pub fn install_propagators() {
    global::set_text_map_propagator(TextMapCompositePropagator::new(vec![
        Box::new(W3cTraceContext::new()),
        Box::new(W3cBaggage::new()),
    ]));
}

/// What reaches the OpenTelemetry layer, independent of `RUST_LOG` (a `warn` log level must
/// not drop INFO spans). The exporter's own stack (tonic, hyper, h2) is kept out, or every
/// export would trace itself.
fn span_filter() -> Targets {
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
