//! The open loop: a dispatcher wakes at each scheduled instant and hands the request to a
//! task; the server's speed never changes when the next request is due.

use std::{
    io::{IsTerminal as _, Write as _},
    process::ExitCode,
    sync::{Arc, Mutex},
    time::Duration,
};

use opentelemetry::{KeyValue, baggage::BaggageExt as _, trace::TraceContextExt as _};
use rand::{Rng as _, SeedableRng as _, rngs::SmallRng};
use rand_distr::{Distribution as _, Zipf};
use tokio::{
    sync::Semaphore,
    task::JoinSet,
    time::{Instant, sleep_until, timeout_at},
};
use tracing::Instrument as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use url::Url;

use crate::{
    cli::{Exit, Kind, Output, Plan},
    report,
    schedule::Schedule,
    stats::Stats,
};

const JAEGER_UI_URL: &str = "JAEGER_UI_URL";

/// Where a `create` request sends its order, whatever --path says: orders' one route for it.
const CREATE_PATH: &str = "/orders";
/// The users the database is seeded with (migrations/users), so that orders, which asks
/// users about the buyer before it writes the order, answers 201 and not 404.
const SEEDED_USERS: u64 = 1000;
/// A few of an item, as a shop would see: every order is valid (orders takes 1 to 100).
const MAX_QUANTITY: u32 = 5;

pub async fn run(plan: Plan) -> ExitCode {
    let config = match telemetry::TelemetryConfig::from_env("load", env!("CARGO_PKG_VERSION")) {
        Ok(config) => config,
        Err(e) => {
            return Exit {
                code: 2,
                message: format!("load: {e}"),
            }
            .report();
        }
    };
    let telemetry = match telemetry::init(&config) {
        Ok(guard) => guard,
        Err(e) => {
            return Exit {
                code: 2,
                message: format!("load: telemetry: {e}"),
            }
            .report();
        }
    };
    let jaeger = std::env::var(JAEGER_UI_URL)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "http://localhost:16686".to_owned());

    let stats = Arc::new(Mutex::new(Stats::new(plan.slowest)));
    let (elapsed, interrupted) = drive(&plan, stats.clone()).await;

    let summary = {
        let stats = stats.lock().expect("stats lock");
        let asked_rate = match &plan.schedule {
            Schedule::Constant(rate) => *rate,
            Schedule::Stages(_) => stats.scheduled as f64 / elapsed.as_secs_f64().max(1e-9),
        };
        let run = report::Run {
            asked_rate,
            target: described_target(&plan),
            elapsed,
            interrupted,
            stats: &stats,
            jaeger,
        };
        match plan.output {
            Output::Table => run.table(),
            Output::Json => format!("{}\n", run.json()),
        }
    };
    let printed = crate::cli::print_stdout(&summary);
    // Its spans are flushed whether or not anyone read the summary.
    telemetry.shutdown().await;
    match printed {
        Ok(()) => ExitCode::SUCCESS,
        Err(failed) => failed.report(),
    }
}

/// Where the run sent its requests: the GETs' URL template, and `create`'s POSTs when the
/// mix has them (they ignore --path).
fn described_target(plan: &Plan) -> String {
    let base = plan.target.as_str().trim_end_matches('/');
    let sent = |wanted: fn(Kind) -> bool| plan.mix.iter().any(|(k, w)| wanted(*k) && *w > 0);
    let mut targets = Vec::new();
    if sent(|kind| kind != Kind::Create) {
        targets.push(format!("{base}{}", plan.path));
    }
    if sent(|kind| kind == Kind::Create) {
        targets.push(format!("POST {base}{CREATE_PATH}"));
    }
    targets.join(", ")
}

/// Picks what each request asks for.
struct Picker {
    rng: SmallRng,
    zipf: Option<Zipf<f64>>,
    ids: (u64, u64),
    mix: Vec<(Kind, u32)>,
    total: u32,
}

impl Picker {
    fn new(plan: &Plan) -> Self {
        let span = (plan.ids.1 - plan.ids.0 + 1) as f64;
        Self {
            rng: SmallRng::from_os_rng(),
            zipf: plan
                .zipf
                .map(|s| Zipf::new(span, s).expect("validated exponent and range")),
            ids: plan.ids,
            mix: plan.mix.clone(),
            total: plan.mix.iter().map(|(_, w)| w).sum(),
        }
    }

    fn next(&mut self) -> (Kind, Ask) {
        let mut roll = self.rng.random_range(0..self.total);
        let kind = self
            .mix
            .iter()
            .find(|(_, w)| {
                if roll < *w {
                    true
                } else {
                    roll -= w;
                    false
                }
            })
            .map(|(k, _)| *k)
            .unwrap_or(Kind::Ok);
        let ask = match kind {
            Kind::Ok | Kind::Slow | Kind::Failing => Ask::Id(
                match &self.zipf {
                    Some(zipf) => self.ids.0 + zipf.sample(&mut self.rng) as u64 - 1,
                    None => self.rng.random_range(self.ids.0..=self.ids.1),
                }
                .to_string(),
            ),
            // Past the range, so the service answers 404.
            Kind::NotFound => Ask::Id(
                (self
                    .ids
                    .1
                    .saturating_add(1_000_000 + self.rng.random_range(0..1000)))
                .to_string(),
            ),
            Kind::BadId => Ask::Id(format!("not-a-number-{}", self.rng.random_range(0..1000))),
            Kind::Create => Ask::NewOrder {
                user_id: self.rng.random_range(1..=SEEDED_USERS),
                quantity: self.rng.random_range(1..=MAX_QUANTITY),
            },
        };
        (kind, ask)
    }
}

/// What a picked request asks for.
enum Ask {
    /// A GET of --path with this in place of `{id}`.
    Id(String),
    /// A new order, `POST /orders`.
    NewOrder { user_id: u64, quantity: u32 },
}

/// One request as it goes on the wire; every kind is sent (and traced) by [`one_request`].
struct Request {
    method: reqwest::Method,
    url: Url,
    /// The span's name after the method: the path as written, so that Jaeger groups the
    /// requests by route rather than one operation per id.
    template: String,
    /// Sent as JSON (`Content-Type: application/json`).
    body: Option<serde_json::Value>,
    baggage: Vec<KeyValue>,
}

impl Request {
    /// `n` numbers the request in the run, so that every order's item is its own.
    fn new(plan: &Plan, ask: Ask, n: u64, baggage: Vec<KeyValue>) -> Self {
        let (method, path, template, body) = match ask {
            Ask::Id(id) => (
                reqwest::Method::GET,
                plan.path.replace("{id}", &id),
                plan.path.clone(),
                None,
            ),
            Ask::NewOrder { user_id, quantity } => (
                reqwest::Method::POST,
                CREATE_PATH.to_owned(),
                CREATE_PATH.to_owned(),
                Some(serde_json::json!({
                    "user_id": user_id,
                    "item": format!("load-{n}"),
                    "quantity": quantity,
                })),
            ),
        };
        Self {
            method,
            url: plan
                .target
                .join(&path)
                .unwrap_or_else(|_| plan.target.clone()),
            template,
            body,
            baggage,
        }
    }
}

async fn drive(plan: &Plan, stats: Arc<Mutex<Stats>>) -> (Duration, bool) {
    let client = reqwest::Client::builder()
        .timeout(plan.timeout)
        .pool_max_idle_per_host(plan.max_in_flight)
        .tcp_nodelay(true)
        .build()
        .expect("static client settings");
    let permits = Arc::new(Semaphore::new(plan.max_in_flight));
    let baggage: Vec<KeyValue> = plan
        .baggage
        .iter()
        .map(|(k, v)| KeyValue::new(k.clone(), v.clone()))
        .collect();
    // The demo faults users reads from the baggage (service-kit's demo.rs), after --baggage
    // so that they win over an entry of the same key.
    let with_fault = |key: &'static str, value: String| {
        let mut entries = baggage.clone();
        entries.push(KeyValue::new(key, value));
        entries
    };
    let slow_baggage = with_fault("demo.delay_ms", plan.slow.as_millis().to_string());
    let failing_baggage = with_fault("demo.fail", "users".to_owned());
    let mut picker = Picker::new(plan);
    let mut tasks = JoinSet::new();
    let start = Instant::now();
    let progress = Progress::start(plan, stats.clone(), start);
    // SIGTERM too: in its container load is PID 1, and `docker compose stop` sends SIGTERM.
    let stop = telemetry::signal::stop_requested();
    tokio::pin!(stop);
    let mut interrupted = false;

    let mut n: u64 = 0;
    loop {
        if plan.requests.is_some_and(|limit| n >= limit) {
            break;
        }
        let Some(due) = plan.schedule.due(n) else {
            break;
        };
        if plan.duration.is_some_and(|d| due >= d) {
            break;
        }
        let scheduled = start + due;
        tokio::select! {
            () = sleep_until(scheduled) => {}
            _ = &mut stop => { interrupted = true; break; }
        }
        n += 1;
        let (kind, ask) = picker.next();
        let request = Request::new(
            plan,
            ask,
            n,
            match kind {
                Kind::Slow => slow_baggage.clone(),
                Kind::Failing => failing_baggage.clone(),
                _ => baggage.clone(),
            },
        );
        {
            let mut s = stats.lock().expect("stats lock");
            s.scheduled += 1;
            *s.kinds.entry(kind.name()).or_default() += 1;
        }
        tasks.spawn(one_request(
            client.clone(),
            request,
            scheduled,
            plan.timeout,
            permits.clone(),
            stats.clone(),
        ));
        while tasks.try_join_next().is_some() {}
    }

    // Let in-flight requests finish (each is bounded by its timeout); a second Ctrl-C or SIGTERM leaves.
    if !interrupted {
        tokio::select! {
            () = async { while tasks.join_next().await.is_some() {} } => {}
            _ = &mut stop => { interrupted = true; }
        }
    } else {
        let _ = tokio::time::timeout(plan.timeout, async {
            while tasks.join_next().await.is_some() {}
        })
        .await;
    }
    tasks.abort_all();
    progress.finish();
    (start.elapsed(), interrupted)
}

async fn one_request(
    client: reqwest::Client,
    request: Request,
    scheduled: Instant,
    timeout: Duration,
    permits: Arc<Semaphore>,
    stats: Arc<Mutex<Stats>>,
) {
    // A request that cannot get a slot before its own timeout would have is not sent late
    // forever: it is counted as missed.
    let Ok(Ok(_permit)) = timeout_at(scheduled + timeout, permits.acquire_owned()).await else {
        stats.lock().expect("stats lock").missed += 1;
        return;
    };
    let sent = Instant::now();
    stats.lock().expect("stats lock").sent += 1;

    let Request {
        method,
        url,
        template,
        body,
        baggage,
    } = request;
    let span = telemetry::client::client_span(method.as_str(), &url);
    span.record("otel.name", format!("{method} {template}"));
    let cx = span.context().with_baggage(baggage);
    let trace_id = cx.span().span_context().trace_id().to_string();
    let mut headers = http::HeaderMap::new();
    telemetry::client::inject(&cx, &mut headers);

    let outcome = async {
        let mut builder = client.request(method, url).headers(headers);
        if let Some(body) = &body {
            // Sets Content-Type: application/json too.
            builder = builder.json(body);
        }
        let response = builder.send().await?;
        let status = response.status();
        // Read the body: the request is complete when the answer is.
        response.bytes().await?;
        Ok::<_, reqwest::Error>(status)
    }
    .instrument(span.clone())
    .await;
    let done = Instant::now();
    let outcome = match outcome {
        Ok(status) => {
            telemetry::client::record_status(&span, status);
            Ok(status.as_u16())
        }
        Err(error) => {
            let kind = telemetry::client::reqwest_error_type(&error);
            telemetry::error::record(&span, kind, &error.to_string());
            Err(kind)
        }
    };
    drop(span);
    stats
        .lock()
        .expect("stats lock")
        .record(done - scheduled, done - sent, outcome, trace_id);
}

/// A live line on a terminal (indicatif); a plain line every 5 s otherwise (logs, CI).
struct Progress {
    task: tokio::task::JoinHandle<()>,
    bar: Option<indicatif::ProgressBar>,
}

impl Progress {
    fn start(plan: &Plan, stats: Arc<Mutex<Stats>>, start: Instant) -> Self {
        let terminal = std::io::stderr().is_terminal();
        let bar = terminal.then(|| {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        let every = if terminal {
            Duration::from_millis(250)
        } else {
            Duration::from_secs(5)
        };
        let schedule = plan.schedule.clone();
        let shown = bar.clone();
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            loop {
                tick.tick().await;
                let t = start.elapsed();
                let line = {
                    let s = stats.lock().expect("stats lock");
                    let p99 = if s.corrected.is_empty() {
                        0.0
                    } else {
                        s.corrected.value_at_quantile(0.99) as f64 / 1000.0
                    };
                    format!(
                        "{:6.1}s  asked {:.0}/s  sent {}  done {}  p99 {:.2} ms  non-2xx {}  errors {}  missed {}",
                        t.as_secs_f64(),
                        schedule.rate_at(t),
                        s.sent,
                        s.completed,
                        p99,
                        s.non_2xx(),
                        s.errors_total(),
                        s.missed
                    )
                };
                match &shown {
                    Some(bar) => bar.set_message(line),
                    // Not eprintln!: a closed stderr (`2>&1 | head`) must not end the
                    // progress lines with a panic; the run goes on without them.
                    None => {
                        let _ = writeln!(std::io::stderr(), "{line}");
                    }
                }
            }
        });
        Self { task, bar }
    }

    fn finish(self) {
        self.task.abort();
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}
