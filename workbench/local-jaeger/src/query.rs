//! Jaeger's HTTP query API, the one its UI reads (`/api/traces`, `/api/services`,
//! `/api/dependencies`, the Monitor tab's `/api/metrics`): what a learner sees, as data.

use std::{collections::BTreeMap, time::Duration};

use serde::Deserialize;
use serde_json::Value;

/// One series of the Monitor tab: its labels (`operation`, `service_name`) and the values
/// of its points, oldest first (steps with no data left out).
#[derive(Debug, Clone)]
pub struct MetricSeries {
    pub labels: BTreeMap<String, String>,
    pub values: Vec<f64>,
}

impl MetricSeries {
    pub fn operation(&self) -> &str {
        self.labels.get("operation").map_or("", String::as_str)
    }

    /// The highest value of the window: the peak a learner sees on the chart.
    pub fn peak(&self) -> f64 {
        self.values.iter().copied().fold(0.0, f64::max)
    }
}

/// A client of one Jaeger's query API.
#[derive(Clone)]
pub struct Query {
    base: String,
    http: reqwest::Client,
}

/// One trace as the UI gets it: its spans and the services (processes) they came from.
#[derive(Debug, Clone, Deserialize)]
pub struct Trace {
    #[serde(rename = "traceID")]
    pub trace_id: String,
    pub spans: Vec<RawSpan>,
    pub processes: BTreeMap<String, Process>,
    #[serde(default)]
    pub warnings: Option<Vec<String>>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Process {
    #[serde(rename = "serviceName")]
    pub service_name: String,
    /// The resource's attributes (`telemetry.sdk.language`, `service.version`, ...).
    #[serde(default)]
    pub tags: Vec<Tag>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RawSpan {
    #[serde(rename = "spanID")]
    pub span_id: String,
    #[serde(rename = "operationName")]
    pub operation_name: String,
    #[serde(default)]
    pub references: Vec<Reference>,
    /// Microseconds since the epoch.
    #[serde(rename = "startTime")]
    pub start_time: u64,
    /// Microseconds.
    pub duration: u64,
    #[serde(default)]
    pub tags: Vec<Tag>,
    /// The span's events (Jaeger calls them logs).
    #[serde(default)]
    pub logs: Vec<Log>,
    #[serde(rename = "processID")]
    pub process_id: String,
    #[serde(default)]
    pub warnings: Option<Vec<String>>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Reference {
    #[serde(rename = "refType")]
    pub ref_type: String,
    #[serde(rename = "traceID")]
    pub trace_id: String,
    #[serde(rename = "spanID")]
    pub span_id: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Log {
    #[serde(default)]
    pub fields: Vec<Tag>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Tag {
    pub key: String,
    pub value: Value,
}

/// A span with its service resolved: what one row of the UI's timeline shows.
#[derive(Debug, Clone)]
pub struct Span<'a> {
    pub raw: &'a RawSpan,
    pub service: &'a str,
}

impl Span<'_> {
    pub fn name(&self) -> &str {
        &self.raw.operation_name
    }

    pub fn span_id(&self) -> &str {
        &self.raw.span_id
    }

    /// The spans this one links to (OpenTelemetry span links, which Jaeger shows as
    /// `FOLLOWS_FROM` references), as (trace id, span id).
    pub fn links(&self) -> Vec<(&str, &str)> {
        self.raw
            .references
            .iter()
            .filter(|r| r.ref_type == "FOLLOWS_FROM")
            .map(|r| (r.trace_id.as_str(), r.span_id.as_str()))
            .collect()
    }

    /// The span's parent (its `CHILD_OF` reference); `None` for a root.
    pub fn parent(&self) -> Option<&str> {
        self.raw
            .references
            .iter()
            .find(|r| r.ref_type == "CHILD_OF")
            .map(|r| r.span_id.as_str())
    }

    pub fn tag(&self, key: &str) -> Option<&Value> {
        self.raw
            .tags
            .iter()
            .find(|t| t.key == key)
            .map(|t| &t.value)
    }

    /// A tag as text, whatever its type (`"200"` for the number 200).
    pub fn tag_str(&self, key: &str) -> Option<String> {
        self.tag(key).map(|v| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
    }

    /// `server`, `client`, `internal`, `producer` or `consumer`, from the `span.kind` tag.
    pub fn kind(&self) -> &str {
        self.tag("span.kind")
            .and_then(Value::as_str)
            .unwrap_or("internal")
    }

    /// Whether the UI marks it as an error (status ERROR becomes the `error` tag).
    pub fn is_error(&self) -> bool {
        self.tag("error") == Some(&Value::Bool(true))
            || self.tag("otel.status_code").and_then(Value::as_str) == Some("ERROR")
    }

    pub fn start_us(&self) -> u64 {
        self.raw.start_time
    }

    pub fn end_us(&self) -> u64 {
        self.raw.start_time + self.raw.duration
    }
}

impl Trace {
    pub fn spans(&self) -> Vec<Span<'_>> {
        self.spans
            .iter()
            .map(|raw| Span {
                raw,
                service: self
                    .processes
                    .get(&raw.process_id)
                    .map(|p| p.service_name.as_str())
                    .unwrap_or("?"),
            })
            .collect()
    }

    /// The distinct services, sorted.
    pub fn services(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .processes
            .values()
            .map(|p| p.service_name.clone())
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// The spans of `service` named `name`.
    pub fn find(&self, service: &str, name: &str) -> Vec<Span<'_>> {
        self.spans()
            .into_iter()
            .filter(|s| s.service == service && s.name() == name)
            .collect()
    }

    /// The one span of `service` named `name`; panics, showing the trace, otherwise.
    pub fn only(&self, service: &str, name: &str) -> Span<'_> {
        let found = self.find(service, name);
        assert_eq!(
            found.len(),
            1,
            "exactly one {service}/{name} span in trace {}:\n{}",
            self.trace_id,
            self.outline()
        );
        found.into_iter().next().expect("one")
    }

    /// A tag of the process (the SDK's resource) `span` came from, as text.
    pub fn process_tag(&self, span: &Span, key: &str) -> Option<String> {
        let process = self.processes.get(&span.raw.process_id)?;
        process
            .tags
            .iter()
            .find(|t| t.key == key)
            .map(|t| match &t.value {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
    }

    pub fn span(&self, span_id: &str) -> Option<Span<'_>> {
        self.spans().into_iter().find(|s| s.span_id() == span_id)
    }

    /// The root spans: those without a parent, or whose parent is not in the trace.
    pub fn roots(&self) -> Vec<Span<'_>> {
        self.spans()
            .into_iter()
            .filter(|s| s.parent().is_none_or(|p| self.span(p).is_none()))
            .collect()
    }

    /// Every warning the UI shows for this trace (its own and its spans').
    pub fn all_warnings(&self) -> Vec<String> {
        let mut all = self.warnings.clone().unwrap_or_default();
        for span in &self.spans {
            all.extend(span.warnings.clone().unwrap_or_default());
        }
        all
    }

    /// One line per span, for failure messages: service, name, kind, id, parent.
    pub fn outline(&self) -> String {
        let mut spans = self.spans();
        spans.sort_by_key(|s| s.start_us());
        spans
            .iter()
            .map(|s| {
                format!(
                    "  {:<7} {:<24} {:<8} {} <- {}{}",
                    s.service,
                    s.name(),
                    s.kind(),
                    s.span_id(),
                    s.parent().unwrap_or("-"),
                    if s.is_error() { "  ERROR" } else { "" }
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// An edge of the UI's System Architecture graph.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Dependency {
    pub parent: String,
    pub child: String,
    #[serde(rename = "callCount")]
    pub call_count: u64,
}

#[derive(Deserialize)]
struct Envelope<T> {
    data: Option<T>,
}

/// A search, as the UI's search form makes it.
#[derive(Debug, Clone, Default)]
pub struct Search<'a> {
    pub service: &'a str,
    pub operation: Option<&'a str>,
    /// Tags every trace must have on one span, e.g. `error=true`.
    pub tags: Vec<(&'a str, &'a str)>,
    pub min_duration: Option<Duration>,
    pub limit: usize,
    pub lookback: Duration,
}

impl<'a> Search<'a> {
    /// The last hour of `service`'s traces, up to 1000: everything a test made.
    pub fn recent(service: &'a str) -> Self {
        Self {
            service,
            limit: 1000,
            lookback: Duration::from_secs(3600),
            ..Self::default()
        }
    }
}

impl Query {
    pub fn new(base: &str) -> Self {
        Self {
            base: base.trim_end_matches('/').to_owned(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .expect("static client settings"),
        }
    }

    async fn get<T: for<'de> Deserialize<'de>>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<Option<T>, String> {
        let url = url::Url::parse_with_params(&format!("{}{path}", self.base), query)
            .map_err(|e| format!("{}{path}: {e}", self.base))?;
        let response = self
            .http
            .get(url.clone())
            .send()
            .await
            .map_err(|e| format!("GET {url}: {e}"))?;
        if response.status() == 404 {
            return Ok(None);
        }
        if !response.status().is_success() {
            return Err(format!("GET {url}: {}", response.status()));
        }
        let envelope: Envelope<T> = response
            .json()
            .await
            .map_err(|e| format!("GET {url}: unexpected answer: {e}"))?;
        Ok(envelope.data)
    }

    /// The Monitor tab's `GET /api/metrics/{which}` (`calls`, `errors`, `latencies`) for the
    /// server spans of `service`, one series per operation, over the last `lookback` in
    /// steps of 5 s (the scrape interval); `extra` adds parameters (`quantile` for
    /// latencies). Rates are per second over one-minute windows, computed by Prometheus
    /// from the spanmetrics' counters.
    pub async fn metrics(
        &self,
        which: &str,
        service: &str,
        lookback: Duration,
        extra: &[(&str, String)],
    ) -> Result<Vec<MetricSeries>, String> {
        let mut query = vec![
            ("service", service.to_owned()),
            ("spanKind", "server".to_owned()),
            ("groupByOperation", "true".to_owned()),
            ("step", "5000".to_owned()),
            // Despite its name, the window of PromQL's rate() Jaeger builds (the values are
            // per second whatever it is); it must hold two scrapes, 5 s apart.
            ("ratePer", "60000".to_owned()),
            ("lookback", lookback.as_millis().to_string()),
        ];
        query.extend(extra.iter().map(|(k, v)| (*k, v.clone())));
        let url =
            url::Url::parse_with_params(&format!("{}/api/metrics/{which}", self.base), &query)
                .map_err(|e| e.to_string())?;
        let response = self
            .http
            .get(url.clone())
            .send()
            .await
            .map_err(|e| format!("GET {url}: {e}"))?;
        let status = response.status();
        let body: Value = response
            .json()
            .await
            .map_err(|e| format!("GET {url}: {status}, not JSON: {e}"))?;
        if !status.is_success() {
            return Err(format!("GET {url}: {status}: {body}"));
        }
        Ok(body["metrics"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|series| MetricSeries {
                labels: series["labels"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|l| {
                        Some((
                            l["name"].as_str()?.to_owned(),
                            l["value"].as_str()?.to_owned(),
                        ))
                    })
                    .collect(),
                // NaN where Prometheus had no data for a step: Jaeger sends it as a string.
                values: series["metricPoints"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|p| p["gaugeValue"]["doubleValue"].as_f64())
                    .collect(),
            })
            .collect())
    }

    /// `GET /api/traces/{id}`: the trace, or `None` while Jaeger has none of its spans.
    pub async fn trace(&self, trace_id: &str) -> Result<Option<Trace>, String> {
        let traces: Option<Vec<Trace>> = self.get(&format!("/api/traces/{trace_id}"), &[]).await?;
        Ok(traces.and_then(|t| t.into_iter().next()))
    }

    /// The trace once `done` says it is complete and no further span has joined it over
    /// three polls in a row (each 200 ms apart). Jaeger stores spans as each service's
    /// batch arrives, up to `OTEL_BSP_SCHEDULE_DELAY` apart, so `done` must name what a
    /// whole trace has (a span count, or each service's server span, which ends after its
    /// children); the polls only catch a straggler. Fails after `timeout`, with what had
    /// arrived.
    pub async fn settled_trace(
        &self,
        trace_id: &str,
        done: impl Fn(&Trace) -> bool,
        timeout: Duration,
    ) -> Result<Trace, String> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut last: Option<Trace> = None;
        let mut stable = 0;
        loop {
            let now = self.trace(trace_id).await?;
            let count = now.as_ref().map_or(0, |t| t.spans.len());
            let previous = last.as_ref().map_or(0, |t| t.spans.len());
            match now {
                Some(trace) if done(&trace) => {
                    stable = if count == previous { stable + 1 } else { 0 };
                    if stable >= 3 {
                        return Ok(trace);
                    }
                    last = Some(trace);
                }
                other => {
                    stable = 0;
                    last = other.or(last);
                }
            }
            if tokio::time::Instant::now() > deadline {
                return Err(format!(
                    "trace {trace_id} not complete in Jaeger within {timeout:?}; it had:\n{}",
                    last.map(|t| t.outline())
                        .unwrap_or_else(|| "  nothing".to_owned())
                ));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// `settled_trace` until it has `spans` spans.
    pub async fn trace_of(&self, trace_id: &str, spans: usize) -> Result<Trace, String> {
        self.settled_trace(
            trace_id,
            |t| t.spans.len() >= spans,
            Duration::from_secs(30),
        )
        .await
    }

    /// `GET /api/services`: the service names of the UI's *Service* list.
    pub async fn services(&self) -> Result<Vec<String>, String> {
        let mut names: Vec<String> = self.get("/api/services", &[]).await?.unwrap_or_default();
        names.sort();
        Ok(names)
    }

    /// `GET /api/traces?service=..`: the UI's *Find Traces*.
    pub async fn search(&self, search: &Search<'_>) -> Result<Vec<Trace>, String> {
        let mut query = vec![
            ("service", search.service.to_owned()),
            ("limit", search.limit.max(1).to_string()),
            ("lookback", format!("{}s", search.lookback.as_secs().max(1))),
        ];
        if let Some(operation) = search.operation {
            query.push(("operation", operation.to_owned()));
        }
        if !search.tags.is_empty() {
            let tags: serde_json::Map<String, Value> = search
                .tags
                .iter()
                .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
                .collect();
            query.push(("tags", Value::Object(tags).to_string()));
        }
        if let Some(min) = search.min_duration {
            query.push(("minDuration", format!("{}ms", min.as_millis())));
        }
        Ok(self.get("/api/traces", &query).await?.unwrap_or_default())
    }

    /// `GET /api/dependencies`: the System Architecture edges of the last `lookback`.
    pub async fn dependencies(&self, lookback: Duration) -> Result<Vec<Dependency>, String> {
        let end = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_err(|e| e.to_string())?;
        let query = [
            ("endTs", end.as_millis().to_string()),
            ("lookback", lookback.as_millis().to_string()),
        ];
        Ok(self
            .get("/api/dependencies", &query)
            .await?
            .unwrap_or_default())
    }
}
