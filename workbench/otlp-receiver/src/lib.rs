//! A real OTLP trace receiver on 127.0.0.1: gRPC (`TraceService/Export`) and HTTP/protobuf
//! (`POST /v1/traces`). It flattens what arrives into [`ReceivedSpan`]s that tests can
//! assert on. Built on the generated types of the opentelemetry-proto crate, so what it
//! decodes is exactly what the exporter encodes.

mod span;

use std::{
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode as HttpStatus, header},
    response::{IntoResponse, Response},
    routing::post,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
    trace_service_server::{TraceService, TraceServiceServer},
};
use prost::Message as _;
use tokio::{
    net::TcpListener,
    sync::{Notify, mpsc, watch},
    task::JoinHandle,
};

pub use span::{ReceivedSpan, SpanKind, Status, StatusCode, Value, flatten};

#[derive(Default)]
struct Shared {
    spans: Mutex<Vec<ReceivedSpan>>,
    /// Streaming mode: spans go here instead of the store, so a long-running viewer
    /// holds only what it chooses to.
    stream: Option<mpsc::UnboundedSender<Vec<ReceivedSpan>>>,
    arrived: Notify,
    grpc_requests: AtomicUsize,
    http_requests: AtomicUsize,
}

impl Shared {
    fn collect(&self, request: ExportTraceServiceRequest) {
        let spans = flatten(request);
        match &self.stream {
            Some(stream) => {
                let _ = stream.send(spans);
            }
            None => self.spans.lock().expect("span store lock").extend(spans),
        }
        self.arrived.notify_waiters();
    }
}

pub struct Receiver {
    shared: Arc<Shared>,
    grpc_addr: SocketAddr,
    http_addr: SocketAddr,
    tasks: Vec<JoinHandle<()>>,
    stop: watch::Sender<bool>,
}

impl Receiver {
    /// Listens on two random ports of 127.0.0.1.
    pub async fn start() -> Self {
        let any = SocketAddr::from(([127, 0, 0, 1], 0));
        Self::start_on(any, any).await
    }

    /// Listens on the given addresses (a restart: the ports of one that was shut down);
    /// a bind that fails says who holds the port.
    pub async fn start_on(grpc: SocketAddr, http: SocketAddr) -> Self {
        match Self::start_inner(grpc, http, Shared::default()).await {
            Ok(receiver) => receiver,
            Err(e) => panic!(
                "bind the OTLP ports {grpc} and {http}: {e}\n{}",
                ports::holders(&[grpc.port(), http.port()])
            ),
        }
    }

    /// Listens on the given addresses and hands every export's spans to the returned
    /// channel instead of storing them; [`Receiver::spans`] stays empty.
    pub async fn streaming(
        grpc: SocketAddr,
        http: SocketAddr,
    ) -> std::io::Result<(Self, mpsc::UnboundedReceiver<Vec<ReceivedSpan>>)> {
        let (tx, rx) = mpsc::unbounded_channel();
        let shared = Shared {
            stream: Some(tx),
            ..Shared::default()
        };
        Ok((Self::start_inner(grpc, http, shared).await?, rx))
    }

    async fn start_inner(
        grpc: SocketAddr,
        http: SocketAddr,
        shared: Shared,
    ) -> std::io::Result<Self> {
        let shared = Arc::new(shared);
        let grpc_listener = bind(grpc).await?;
        let http_listener = bind(http).await?;
        let grpc_addr = grpc_listener.local_addr()?;
        let http_addr = http_listener.local_addr()?;

        // Graceful shutdown is what closes open connections (HTTP/2 GOAWAY): without it an
        // exporter's established connection would outlive the "stopped" receiver.
        let (stop, stopped) = watch::channel(false);
        let stop_signal = |mut stopped: watch::Receiver<bool>| async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        };
        let grpc_service = TraceServiceServer::new(GrpcService(shared.clone()));
        let grpc_stop = stop_signal(stopped.clone());
        let grpc_task = tokio::spawn(async move {
            let incoming = tonic::transport::server::TcpIncoming::from(grpc_listener);
            let _ = tonic::transport::Server::builder()
                .add_service(grpc_service)
                .serve_with_incoming_shutdown(incoming, grpc_stop)
                .await;
        });
        let router = Router::new()
            .route("/v1/traces", post(http_export))
            .with_state(shared.clone());
        let http_stop = stop_signal(stopped);
        let http_task = tokio::spawn(async move {
            let _ = axum::serve(http_listener, router)
                .with_graceful_shutdown(http_stop)
                .await;
        });
        Ok(Self {
            shared,
            grpc_addr,
            http_addr,
            tasks: vec![grpc_task, http_task],
            stop,
        })
    }

    /// For `OTEL_EXPORTER_OTLP_ENDPOINT` with the `grpc` protocol.
    pub fn grpc_endpoint(&self) -> String {
        format!("http://{}", self.grpc_addr)
    }

    /// For `OTEL_EXPORTER_OTLP_ENDPOINT` with `http/protobuf` (the exporter appends /v1/traces).
    pub fn http_endpoint(&self) -> String {
        format!("http://{}", self.http_addr)
    }

    pub fn spans(&self) -> Vec<ReceivedSpan> {
        self.shared.spans.lock().expect("span store lock").clone()
    }

    pub fn span_count(&self) -> usize {
        self.shared.spans.lock().expect("span store lock").len()
    }

    pub fn clear(&self) {
        self.shared.spans.lock().expect("span store lock").clear();
    }

    pub fn grpc_requests(&self) -> usize {
        self.shared.grpc_requests.load(Ordering::Relaxed)
    }

    pub fn http_requests(&self) -> usize {
        self.shared.http_requests.load(Ordering::Relaxed)
    }

    /// Waits until `done` holds for the spans received so far; on timeout the error lists
    /// what did arrive, which is what a failing test needs to show.
    pub async fn wait_for(
        &self,
        mut done: impl FnMut(&[ReceivedSpan]) -> bool,
        timeout: Duration,
    ) -> Result<Vec<ReceivedSpan>, String> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let arrived = self.shared.arrived.notified();
            let spans = self.spans();
            if done(&spans) {
                return Ok(spans);
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                let spans = self.spans();
                if done(&spans) {
                    return Ok(spans);
                }
                let listing: Vec<String> = spans
                    .iter()
                    .map(|s| {
                        format!(
                            "{} {} {:?} trace={}",
                            s.service_name, s.name, s.kind, s.trace_id
                        )
                    })
                    .collect();
                return Err(format!(
                    "timed out after {timeout:?}; {} spans arrived:\n{}",
                    spans.len(),
                    listing.join("\n")
                ));
            }
        }
    }

    /// The spans of one trace, once at least `count` of them have arrived and no span
    /// waits for its parent. A child usually ends, and so is exported, before its parent:
    /// counting alone could return a trace whose parents are still in flight. One parent
    /// may be absent: the caller outside the services (a test's or learner's traceparent).
    pub async fn wait_for_trace(
        &self,
        trace_id: &str,
        count: usize,
        timeout: Duration,
    ) -> Result<Vec<ReceivedSpan>, String> {
        let spans = self
            .wait_for(
                |spans| {
                    let trace: Vec<&ReceivedSpan> =
                        spans.iter().filter(|s| s.trace_id == trace_id).collect();
                    trace.len() >= count && absent_parents(&trace) <= 1
                },
                timeout,
            )
            .await
            .map_err(|e| format!("waiting for {count} spans of trace {trace_id}: {e}"))?;
        Ok(spans
            .into_iter()
            .filter(|s| s.trace_id == trace_id)
            .collect())
    }

    /// Stops listening and closes every connection, as a collector that goes away would;
    /// its ports can be bound again once this returns, which is checked here: a listener
    /// that outlived its receiver would fail the restart later, far from its cause.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        for mut task in self.tasks.drain(..) {
            // A client that ignores GOAWAY must not keep the test waiting.
            if tokio::time::timeout(Duration::from_secs(5), &mut task)
                .await
                .is_err()
            {
                task.abort();
                let _ = task.await;
            }
        }
        for addr in [self.grpc_addr, self.http_addr] {
            let deadline = tokio::time::Instant::now() + FORK_WINDOW;
            while !ports::is_free(addr.port()) {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "{addr} still listens after the receiver stopped:\n{}",
                    ports::holders(&[addr.port()])
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

struct GrpcService(Arc<Shared>);

#[tonic::async_trait]
impl TraceService for GrpcService {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.0.grpc_requests.fetch_add(1, Ordering::Relaxed);
        self.0.collect(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

async fn http_export(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !content_type.starts_with("application/x-protobuf") {
        return (
            HttpStatus::UNSUPPORTED_MEDIA_TYPE,
            "only application/x-protobuf is accepted",
        )
            .into_response();
    }
    let request = match ExportTraceServiceRequest::decode(body) {
        Ok(request) => request,
        Err(e) => {
            return (
                HttpStatus::BAD_REQUEST,
                format!("malformed OTLP payload: {e}"),
            )
                .into_response();
        }
    };
    shared.http_requests.fetch_add(1, Ordering::Relaxed);
    shared.collect(request);
    let response = ExportTraceServiceResponse {
        partial_success: None,
    };
    (
        [(header::CONTENT_TYPE, "application/x-protobuf")],
        response.encode_to_vec(),
    )
        .into_response()
}

/// How long a listener we closed may still listen: a child process that another thread
/// forked while it was open holds a copy until it calls `exec` (ports.rs).
const FORK_WINDOW: Duration = Duration::from_secs(2);

/// Binds `addr`, waiting out [`FORK_WINDOW`] for a listener of ours that a restart closed
/// a moment ago; the error names the address.
async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let deadline = tokio::time::Instant::now() + FORK_WINDOW;
    loop {
        match TcpListener::bind(addr).await {
            Err(e)
                if e.kind() == std::io::ErrorKind::AddrInUse
                    && tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            result => {
                return result.map_err(|e| std::io::Error::new(e.kind(), format!("{addr}: {e}")));
            }
        }
    }
}

/// How many distinct parent span ids the spans name that are not among them.
fn absent_parents(trace: &[&ReceivedSpan]) -> usize {
    let ids: std::collections::HashSet<&str> = trace.iter().map(|s| s.span_id.as_str()).collect();
    trace
        .iter()
        .filter_map(|s| s.parent_span_id.as_deref())
        .filter(|parent| !ids.contains(parent))
        .collect::<std::collections::HashSet<&str>>()
        .len()
}
