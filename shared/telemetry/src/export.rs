//! An exporter wrapper that keeps spans through a collector outage.
//!
//! Why, in figures: a 5 s Jaeger restart at 200 requests/s means some 4,600 of orders' spans
//! sent while nobody listens. Without this wrapper every one of them is lost; with it the
//! soak (`cargo xtask soak`, README) lost only the 2,605 beyond the 2,048 it holds, and
//! an outage shorter than the queue loses none (tested: services/orders/tests/faults.rs,
//! jaeger.rs). It costs about 9k of orders' ~290k instructions per request at 100%
//! sampling, for the copy of each batch kept until the collector has it
//! (docs/benchmarks.md, section 3).
//!
//! The SDK's batch processor hands each batch to the exporter once: if the export fails the
//! batch is gone, and it logs an error per batch. The OTLP exporter's own retry is behind an
//! experimental feature that needs an async runtime on the export thread, which the batch
//! processor's thread does not have. So this small wrapper (our own code on purpose) keeps
//! failed spans, bounded by `OTEL_BSP_MAX_QUEUE_SIZE` (oldest dropped first and counted),
//! sends them first once the collector answers again, and reports an outage in one
//! warning at most every [`REPORT_EVERY`], never a line per span or batch. The batch
//! processor only calls the exporter when it has new spans, so while spans are held a
//! thread of ours retries every [`RETRY_EVERY`]: held spans arrive even if traffic stopped.

use std::{
    collections::VecDeque,
    sync::{
        Arc, Mutex, Weak,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use opentelemetry_sdk::{
    Resource,
    error::OTelSdkResult,
    trace::{SpanData, SpanExporter},
};

pub const REPORT_EVERY: Duration = Duration::from_secs(10);
pub const RETRY_EVERY: Duration = Duration::from_secs(1);

/// A handle: the batch processor owns one, the retry thread a weak one.
#[derive(Debug)]
pub struct HoldingExporter<E> {
    shared: Arc<Shared<E>>,
}

#[derive(Debug)]
struct Shared<E> {
    inner: E,
    /// Export calls never overlap: the processor's and the retry thread's take turns.
    sending: tokio::sync::Mutex<()>,
    retrying: AtomicBool,
    /// Spans per export call; a long outage is sent back in pieces of this size.
    chunk: usize,
    /// At most this many spans are kept while the collector is unreachable.
    capacity: usize,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    held: VecDeque<SpanData>,
    /// Since the last report.
    dropped: u64,
    failed_exports: u64,
    last_error: String,
    outage_since: Option<Instant>,
    last_report: Option<Instant>,
}

impl<E: SpanExporter + 'static> HoldingExporter<E> {
    pub fn new(inner: E, chunk: usize, capacity: usize) -> Self {
        Self {
            shared: Arc::new(Shared {
                inner,
                sending: tokio::sync::Mutex::new(()),
                retrying: AtomicBool::new(false),
                chunk: chunk.max(1),
                capacity: capacity.max(1),
                state: Mutex::default(),
            }),
        }
    }

    #[cfg(test)]
    fn held(&self) -> usize {
        self.shared.state().held.len()
    }
}

impl<E: SpanExporter + 'static> Shared<E> {
    async fn export(self: &Arc<Self>, batch: Vec<SpanData>) {
        let _turn = self.sending.lock().await;
        let mut pending = self.take_pending(batch);
        while !pending.is_empty() {
            let n = pending.len().min(self.chunk);
            // The inner exporter consumes what it is given, even when it fails: send a copy
            // and drop the originals only once delivered.
            let chunk: Vec<SpanData> = pending.range(..n).cloned().collect();
            if let Err(error) = self.inner.export(chunk).await {
                self.hold(pending, error.to_string());
                self.retry_in_background();
                return;
            }
            pending.drain(..n);
        }
        self.recovered();
    }

    /// One thread per outage, gone once nothing is held or the exporter is dropped.
    fn retry_in_background(self: &Arc<Self>) {
        if self.retrying.swap(true, Ordering::AcqRel) {
            return;
        }
        let weak: Weak<Self> = Arc::downgrade(self);
        let spawned = std::thread::Builder::new()
            .name("otlp-retry".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(RETRY_EVERY);
                    let Some(shared) = weak.upgrade() else { return };
                    if shared.state().held.is_empty() {
                        shared.retrying.store(false, Ordering::Release);
                        // A failure between the check and the store found us still running.
                        if shared.state().held.is_empty()
                            || shared.retrying.swap(true, Ordering::AcqRel)
                        {
                            return;
                        }
                        continue;
                    }
                    // Off the async workers, as the batch processor's own thread does.
                    futures_executor::block_on(shared.export(Vec::new()));
                }
            });
        if spawned.is_err() {
            // No thread: held spans go out with the next batch instead.
            self.retrying.store(false, Ordering::Release);
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic elsewhere while holding the lock leaves plain data behind; keep going.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Held spans go first, so a trace keeps its order in the collector.
    fn take_pending(&self, batch: Vec<SpanData>) -> VecDeque<SpanData> {
        let mut state = self.state();
        let mut pending = std::mem::take(&mut state.held);
        pending.extend(batch);
        pending
    }

    fn hold(&self, mut unsent: VecDeque<SpanData>, error: String) {
        let mut state = self.state();
        // Spans that arrived meanwhile cannot exist (export calls never overlap), but keep
        // whatever is there after what we could not send.
        unsent.append(&mut state.held);
        let excess = unsent.len().saturating_sub(self.capacity);
        unsent.drain(..excess);
        state.held = unsent;
        state.dropped += excess as u64;
        state.failed_exports += 1;
        state.last_error = error;
        let now = Instant::now();
        state.outage_since.get_or_insert(now);
        if state
            .last_report
            .is_none_or(|last| now.duration_since(last) >= REPORT_EVERY)
        {
            tracing::warn!(
                target: "telemetry::export",
                error = %state.last_error,
                failed_exports = state.failed_exports,
                spans_held = state.held.len(),
                spans_dropped = state.dropped,
                "OTLP export failing; spans are held and sent when the collector answers \
                 (oldest dropped beyond OTEL_BSP_MAX_QUEUE_SIZE)"
            );
            state.last_report = Some(now);
            state.failed_exports = 0;
            state.dropped = 0;
        }
    }

    fn recovered(&self) {
        let mut state = self.state();
        if let Some(since) = state.outage_since.take() {
            tracing::info!(
                target: "telemetry::export",
                outage_secs = since.elapsed().as_secs(),
                spans_dropped = state.dropped,
                "OTLP export recovered; held spans were sent"
            );
            state.dropped = 0;
            state.failed_exports = 0;
            state.last_report = None;
        }
    }
}

impl<E: SpanExporter + 'static> SpanExporter for HoldingExporter<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        // Held, not lost, on failure: an error here would only make the SDK log per batch.
        self.shared.export(batch).await;
        Ok(())
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        let undelivered = self.shared.state().held.len();
        if undelivered > 0 {
            tracing::warn!(
                target: "telemetry::export",
                spans_lost = undelivered,
                "shutting down with spans the collector never accepted"
            );
        }
        self.shared.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.shared.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        // Called once, when the provider is built, before any export could start a thread.
        if let Some(shared) = Arc::get_mut(&mut self.shared) {
            shared.inner.set_resource(resource);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    };

    use opentelemetry::{
        InstrumentationScope,
        trace::{SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState},
    };
    use opentelemetry_sdk::{error::OTelSdkError, trace::SpanEvents, trace::SpanLinks};

    use super::*;

    #[derive(Debug, Default, Clone)]
    struct Collector {
        up: Arc<AtomicBool>,
        received: Arc<Mutex<Vec<u64>>>,
    }

    impl SpanExporter for Collector {
        async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
            if !self.up.load(Ordering::SeqCst) {
                return Err(OTelSdkError::InternalFailure("connection refused".into()));
            }
            let mut received = self.received.lock().unwrap();
            received.extend(
                batch
                    .iter()
                    .map(|s| u64::from_be_bytes(s.span_context.span_id().to_bytes())),
            );
            Ok(())
        }
    }

    fn span(n: u64) -> SpanData {
        SpanData {
            span_context: SpanContext::new(
                TraceId::from(1),
                SpanId::from(n),
                TraceFlags::SAMPLED,
                false,
                TraceState::NONE,
            ),
            parent_span_id: SpanId::INVALID,
            parent_span_is_remote: false,
            span_kind: SpanKind::Internal,
            name: "s".into(),
            start_time: std::time::SystemTime::UNIX_EPOCH,
            end_time: std::time::SystemTime::UNIX_EPOCH,
            attributes: Vec::new(),
            dropped_attributes_count: 0,
            events: SpanEvents::default(),
            links: SpanLinks::default(),
            status: Status::Unset,
            instrumentation_scope: InstrumentationScope::builder("test").build(),
        }
    }

    fn batch(range: std::ops::Range<u64>) -> Vec<SpanData> {
        range.map(span).collect()
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn spans_of_failed_exports_are_sent_in_order_once_the_collector_is_back() {
        let collector = Collector::default();
        let exporter = HoldingExporter::new(collector.clone(), 2, 100);
        block_on(async {
            exporter.export(batch(1..4)).await.unwrap();
            exporter.export(batch(4..6)).await.unwrap();
            collector.up.store(true, Ordering::SeqCst);
            exporter.export(batch(6..7)).await.unwrap();
        });
        assert_eq!(
            *collector.received.lock().unwrap(),
            (1..7).collect::<Vec<_>>()
        );
        assert_eq!(exporter.held(), 0);
    }

    #[test]
    fn an_outage_longer_than_the_capacity_drops_the_oldest_spans() {
        let collector = Collector::default();
        let exporter = HoldingExporter::new(collector.clone(), 512, 3);
        block_on(async {
            exporter.export(batch(1..6)).await.unwrap();
            collector.up.store(true, Ordering::SeqCst);
            exporter.export(Vec::new()).await.unwrap();
        });
        assert_eq!(*collector.received.lock().unwrap(), vec![3, 4, 5]);
    }

    #[test]
    fn held_spans_are_retried_without_new_spans_coming() {
        let collector = Collector::default();
        let exporter = HoldingExporter::new(collector.clone(), 512, 100);
        block_on(exporter.export(batch(1..4))).unwrap();
        collector.up.store(true, Ordering::SeqCst);
        let deadline = Instant::now() + RETRY_EVERY * 10;
        while collector.received.lock().unwrap().len() < 3 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(*collector.received.lock().unwrap(), vec![1, 2, 3]);
    }
}

/// An exporter that drops every batch and counts its spans, for the benchmarks (the
/// pipeline a service runs, with no collector) and the tests (did the sampled variant
/// really export?).
#[doc(hidden)]
#[derive(Debug, Clone, Default)]
pub struct CountingExporter(pub std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl SpanExporter for CountingExporter {
    async fn export(&self, batch: Vec<opentelemetry_sdk::trace::SpanData>) -> OTelSdkResult {
        self.0
            .fetch_add(batch.len(), std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }
}
