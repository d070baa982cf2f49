//! The one definition of each exercise's answer, as Jaeger shows it: what identifies the
//! learner's attempt, and what the trace must show. Where part of an answer is not in
//! Jaeger (a log line in the terminal, compose's tail sampling), the verdict says so.

use std::{collections::BTreeSet, time::Duration};

use local_jaeger::{
    Query, Span, Trace,
    query::{MetricSeries, Search},
};
use serde_json::{Map, Value, json};

use super::{CheckError, Outcome, Verdict, guide, no_such_exercise, unreachable};

/// How many exercises docs/workshop.md has.
pub const EXERCISES: u32 = 15;

/// How many commands (parts) an exercise has whose answer is checked.
pub fn parts(exercise: u32) -> Option<usize> {
    match exercise {
        4 | 5 | 14 => Some(3),
        15 => Some(2),
        1..=EXERCISES => Some(1),
        _ => None,
    }
}

/// The trace id exercise 2 asks the learner to invent, and the parent span id.
const INVENTED_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const INVENTED_PARENT: &str = "00f067aa0ba902b7";

const ORDER: &str = "GET /orders/{order_id}";
const USER: &str = "GET /users/{user_id}";
const SEND: &str = "send order-confirmations";
const PROCESS: &str = "process order-confirmations";
/// The Python users service's name in Jaeger (docker-compose.python.yml's
/// `OTEL_SERVICE_NAME`), and the instrumentation scope of its server spans.
const USERS_PYTHON: &str = "users-python";
const FASTAPI_SCOPE: &str = "opentelemetry.instrumentation.fastapi";

/// How the newest attempt is found: a search as the UI makes it, then what the trace must
/// be to be the attempt (the request the exercise asks for, not one of `load`'s).
struct Attempt {
    search: Search<'static>,
    keep: fn(&Trace) -> bool,
}

fn searching(
    service: &'static str,
    operation: &'static str,
    tags: Vec<(&'static str, &'static str)>,
) -> Search<'static> {
    Search {
        operation: Some(operation),
        tags,
        ..Search::recent(service)
    }
}

fn path_is(trace: &Trace, path: &str) -> bool {
    trace
        .find("orders", ORDER)
        .iter()
        .any(|s| s.tag_str("url.path").as_deref() == Some(path))
}

fn not_load(trace: &Trace) -> bool {
    !trace.services().iter().any(|s| s == "load")
}

/// The order placed for user `id` (the guide gives each of exercises 11, 13 and 14 its own).
fn placed_for(trace: &Trace, id: &str) -> bool {
    trace
        .find("orders", "place-order")
        .iter()
        .any(|s| s.tag_str("user.id").as_deref() == Some(id))
}

/// The attempt at part `part` of `exercise`, for the exercises whose attempt is one trace.
fn attempt(exercise: u32, part: usize) -> Option<Attempt> {
    let (search, keep): (Search<'static>, fn(&Trace) -> bool) = match (exercise, part) {
        (1, _) => (
            searching("orders", ORDER, vec![("url.path", "/orders/1")]),
            |t| not_load(t) && t.spans().iter().all(|s| !s.is_error()),
        ),
        (3, _) => (searching("users", "demo-delay", vec![]), not_load),
        (4, 0) => (searching("users", "demo-fault", vec![]), not_load),
        (4, 1) => (
            searching("users", "db-query", vec![("error.type", "22012")]),
            not_load,
        ),
        (4, 2) => (
            searching("orders", ORDER, vec![("url.path", "/orders/abc")]),
            not_load,
        ),
        (5, 0) => (
            searching(
                "orders",
                "enrich-orders",
                vec![("fanout.strategy", "Sequential")],
            ),
            not_load,
        ),
        (5, 1) => (
            searching(
                "orders",
                "enrich-orders",
                vec![("fanout.strategy", "Parallel")],
            ),
            not_load,
        ),
        (5, 2) => (
            searching(
                "orders",
                "enrich-orders",
                vec![("fanout.strategy", "Batched")],
            ),
            not_load,
        ),
        (6, _) => (
            searching("orders", ORDER, vec![("url.path", "/orders/6")]),
            not_load,
        ),
        (8, _) => (searching("users", "demo-fault", vec![]), |t| {
            not_load(t) && path_is(t, "/orders/7")
        }),
        // While users is down, no users span joins the trace.
        (9, _) => (
            searching("orders", ORDER, vec![("url.path", "/orders/1")]),
            |t| {
                not_load(t)
                    && !t.find("orders", "GET").is_empty()
                    && t.find("users", USER).is_empty()
            },
        ),
        (11, _) => (searching("orders", SEND, vec![]), |t| placed_for(t, "1")),
        (13, _) => (searching("orders", SEND, vec![]), |t| placed_for(t, "2")),
        (14, 0) => (searching("orders", SEND, vec![]), |t| placed_for(t, "3")),
        (14, 1) => (searching("orders", SEND, vec![]), |t| placed_for(t, "4")),
        (14, 2) => (searching("orders", SEND, vec![]), |t| placed_for(t, "5")),
        (15, 0) => (
            searching("orders", ORDER, vec![("url.path", "/orders/8")]),
            not_load,
        ),
        // Load's slow run, its delay in the Python users.
        (15, _) => (searching(USERS_PYTHON, "demo-delay", vec![]), |t| {
            !not_load(t)
        }),
        _ => return None,
    };
    Some(Attempt { search, keep })
}

/// Whether `trace` is what part `part` of `exercise` asks the learner to send.
pub fn is_attempt(exercise: u32, part: usize, trace: &Trace) -> bool {
    attempt(exercise, part).is_some_and(|a| (a.keep)(trace))
}

fn started(trace: &Trace) -> u64 {
    trace.spans().iter().map(Span::start_us).min().unwrap_or(0)
}

/// The named trace, or the newest attempt.
async fn find(
    jaeger: &Query,
    named: Option<&str>,
    attempt: &Attempt,
) -> Result<Option<Trace>, String> {
    if let Some(id) = named {
        return jaeger.trace(id).await;
    }
    Ok(jaeger
        .search(&attempt.search)
        .await?
        .into_iter()
        .filter(|t| (attempt.keep)(t))
        .max_by_key(started))
}

/// A verdict in the making: what the judge of one part found.
struct Finding {
    outcome: Outcome,
    trace_id: Option<String>,
    says: String,
    facts: Map<String, Value>,
    seen: usize,
}

impl Finding {
    fn nothing(says: String) -> Self {
        Self {
            outcome: Outcome::NothingYet,
            trace_id: None,
            says,
            facts: Map::new(),
            seen: 0,
        }
    }

    fn of(trace: &Trace) -> Self {
        let mut facts = Map::new();
        facts.insert("spans".into(), json!(trace.spans.len()));
        facts.insert("services".into(), json!(trace.services()));
        facts.insert("errors".into(), json!(errors(trace)));
        Self {
            outcome: Outcome::Fail,
            trace_id: Some(trace.trace_id.clone()),
            says: String::new(),
            facts,
            seen: trace.spans.len(),
        }
    }

    fn fact(mut self, key: &str, value: Value) -> Self {
        self.facts.insert(key.to_owned(), value);
        self
    }

    /// Another trace looked at (its spans count towards settling).
    fn also(mut self, key: &str, trace: &Trace) -> Self {
        self.seen += trace.spans.len();
        self.fact(key, json!(trace.trace_id))
    }

    fn judged(mut self, says: Result<String, String>) -> Self {
        (self.outcome, self.says) = match says {
            Ok(says) => (Outcome::Pass, says),
            Err(says) => (Outcome::Fail, says),
        };
        self
    }
}

/// Fails the judgement with `$why` unless `$cond`.
macro_rules! need {
    ($cond:expr, $($why:tt)+) => {
        if !$cond {
            return Err(format!($($why)+));
        }
    };
}

/// The one span of `service` named `name`, when there is exactly one.
fn one<'a>(trace: &'a Trace, service: &str, name: &str) -> Option<Span<'a>> {
    let mut found = trace.find(service, name);
    (found.len() == 1).then(|| found.remove(0))
}

/// The spans the UI marks as errors, as `service/name`.
pub fn errors(trace: &Trace) -> BTreeSet<String> {
    trace
        .spans()
        .iter()
        .filter(|s| s.is_error())
        .map(|s| format!("{}/{}", s.service, s.name()))
        .collect()
}

fn list(names: &BTreeSet<String>) -> String {
    match names.is_empty() {
        true => "none".to_owned(),
        false => names.iter().cloned().collect::<Vec<_>>().join(", "),
    }
}

/// The orders client spans to users, by start time, as (start, end).
fn calls(trace: &Trace, service: &str) -> Vec<(u64, u64)> {
    let mut calls: Vec<(u64, u64)> = trace
        .find(service, "GET")
        .iter()
        .map(|s| (s.start_us(), s.end_us()))
        .collect();
    calls.sort();
    calls
}

/// Judges part `part` of `exercise` on the trace `named`, or on the newest attempt.
pub async fn judge(
    jaeger: &Query,
    url: &str,
    guide: &[(u32, guide::Block)],
    exercise: u32,
    part: usize,
    named: Option<&str>,
) -> Result<Verdict, CheckError> {
    let parts = parts(exercise).ok_or_else(|| no_such_exercise(exercise))?;
    if part >= parts {
        return Err(CheckError::NoSuchPart { exercise, part });
    }
    let send = guide::what_to_send(guide, exercise, part);
    let finding = match exercise {
        2 => invented_parent(jaeger, named.unwrap_or(INVENTED_TRACE), &send).await,
        7 => head_sampling(jaeger, &send).await,
        10 => monitor(jaeger, &send).await,
        12 => batches(jaeger, &send).await,
        _ => {
            let attempt = attempt(exercise, part).expect("every other part has an attempt");
            match find(jaeger, named, &attempt).await {
                Ok(None) => Ok(Finding::nothing(match named {
                    Some(id) => format!("Jaeger has no trace {id} (yet): {send}"),
                    None => format!("no attempt in Jaeger yet: {send}"),
                })),
                Ok(Some(trace)) => one_trace(jaeger, exercise, part, trace).await,
                Err(reason) => Err(reason),
            }
        }
    }
    .map_err(|reason| unreachable(url, reason))?;
    Ok(Verdict {
        exercise,
        part,
        outcome: finding.outcome,
        trace_id: finding.trace_id,
        says: finding.says,
        facts: Value::Object(finding.facts),
        seen: finding.seen,
    })
}

/// The exercises whose attempt is one trace (with, for some, a second one it caused).
async fn one_trace(
    jaeger: &Query,
    exercise: u32,
    part: usize,
    trace: Trace,
) -> Result<Finding, String> {
    let finding = Finding::of(&trace);
    let t = &trace;
    let id = &trace.trace_id;
    Ok(match (exercise, part) {
        (1, _) => finding.judged(first_trace(t)),
        (3, _) => finding.judged(baggage_delay(t)),
        (4, 0) => finding.judged(users_fault(t)),
        (4, 1) => finding.judged(db_fault(t)),
        (4, 2) => finding.judged(bad_request(t)),
        (5, 0) => finding.judged(strategy(t, "sequential")),
        (5, 1) => finding.judged(strategy(t, "parallel")),
        (5, 2) => finding.judged(strategy(t, "batched")),
        (8, _) => finding.judged(log_event(t)),
        (9, _) => finding.judged(retries(t)),
        (11, _) => finding.judged(through_queue(t)),
        (15, 0) => finding.judged(two_languages(t)),
        (15, _) => finding.judged(python_baggage(t)),
        (6, _) => {
            let call = t
                .find("orders", "GET")
                .first()
                .map(|s| (s.start_us(), s.end_us()));
            let users = match call {
                Some(window) => rooted_during(jaeger, "users", USER, window, id).await?,
                None => None,
            };
            let finding = match &users {
                Some(u) => finding.also("users_trace", u),
                None => finding,
            };
            finding.judged(broken_propagation(t, users.as_ref()))
        }
        (13, _) => {
            let message = one(t, "orders", SEND).and_then(|s| s.tag_str("messaging.message.id"));
            let worker = match &message {
                Some(m) => processed(jaeger, m, id).await?,
                None => None,
            };
            let finding = match &worker {
                Some(w) => finding.also("worker_trace", w),
                None => finding,
            };
            finding.judged(broken_hop(t, worker.as_ref()))
        }
        (14, 0) => {
            let window = one(t, "orders-worker", PROCESS).map(|s| (s.start_us(), s.end_us()));
            let orphan = match window {
                Some(w) => rooted_during(jaeger, "orders-worker", "GET", w, id).await?,
                None => None,
            };
            let finding = match &orphan {
                Some(o) => finding.also("call_trace", o),
                None => finding,
            };
            finding.judged(spawn_pitfall(t, orphan.as_ref()))
        }
        (14, 1) => {
            let window = one(t, "orders-worker", "GET").map(|s| (s.start_us(), s.end_us()));
            let cut = match window {
                Some(w) => rooted_during(jaeger, "users", USER, w, id).await?,
                None => None,
            };
            let finding = match &cut {
                Some(c) => finding.also("users_trace", c),
                None => finding,
            };
            finding.judged(context_pitfall(t, cut.as_ref()))
        }
        (14, _) => finding.judged(context_activated(t)),
        _ => unreachable!("exercise {exercise} part {part} has no single-trace attempt"),
    })
}

/// Another trace of `service` whose root is `name` and started within `window` (during
/// the call that should have continued the first trace), not `other`.
async fn rooted_during(
    jaeger: &Query,
    service: &'static str,
    name: &'static str,
    (from, to): (u64, u64),
    other: &str,
) -> Result<Option<Trace>, String> {
    let found = jaeger
        .search(&Search {
            operation: Some(name),
            ..Search::recent(service)
        })
        .await?;
    Ok(found.into_iter().find(|t| {
        t.trace_id != other
            && t.roots().iter().any(|r| {
                r.service == service
                    && r.name() == name
                    && r.parent().is_none()
                    && (from..=to).contains(&r.start_us())
            })
    }))
}

/// The worker's trace that processed message `message`, when it is not `other`.
async fn processed(jaeger: &Query, message: &str, other: &str) -> Result<Option<Trace>, String> {
    let found = jaeger
        .search(&Search {
            operation: Some(PROCESS),
            ..Search::recent("orders-worker")
        })
        .await?;
    Ok(found.into_iter().find(|t| {
        t.trace_id != other
            && t.find("orders-worker", PROCESS)
                .iter()
                .any(|s| s.tag_str("messaging.message.id").as_deref() == Some(message))
    }))
}

// Exercise 1.
fn first_trace(t: &Trace) -> Result<String, String> {
    let services = t.services();
    need!(
        !services.iter().any(|s| s == "load"),
        "trace {} starts at load's client span: it is one of load's traces, not your curl's; \
         look up the id of your answer's traceresponse",
        t.trace_id
    );
    let db: Vec<Span> = t
        .spans()
        .into_iter()
        .filter(|s| s.name() == "db-query")
        .collect();
    let db_services: BTreeSet<&str> = db.iter().map(|s| s.service).collect();
    need!(
        t.spans.len() == 7 && services == ["orders", "users"],
        "trace {} has {} spans in {} ({}); the whole trace of GET /orders/1 has seven in \
         orders and users",
        t.trace_id,
        t.spans.len(),
        services.len(),
        services.join(", ")
    );
    need!(
        db.len() == 2 && db.iter().all(|s| s.kind() == "client") && db_services.len() == 2,
        "trace {} has {} db-query spans ({:?} services); the answer is two client spans, \
         one per service",
        t.trace_id,
        db.len(),
        db_services
    );
    Ok(format!(
        "trace {}: seven spans in two services (orders, users); the two db-query spans are \
         client spans, one per service: each service has its own database",
        t.trace_id
    ))
}

// Exercise 2.
async fn invented_parent(jaeger: &Query, id: &str, send: &str) -> Result<Finding, String> {
    let Some(t) = jaeger.trace(id).await? else {
        return Ok(Finding::nothing(format!(
            "Jaeger has no trace {id} yet: {send}"
        )));
    };
    let parent = one(&t, "orders", ORDER).and_then(|s| s.parent().map(str::to_owned));
    let warnings = t.all_warnings().join("; ");
    let finding = Finding::of(&t)
        .fact("orders_server_parent", json!(parent))
        .fact("warnings", json!(t.all_warnings()));
    let says = (|| {
        let Some(parent) = &parent else {
            return Err(format!(
                "trace {id}: the orders server span has no parent: the request did not carry \
                 your traceparent"
            ));
        };
        need!(
            parent == INVENTED_PARENT,
            "trace {id}: the orders server span's parent is {parent}, not {INVENTED_PARENT}, \
             the span your traceparent invented"
        );
        need!(
            t.span(parent).is_none(),
            "trace {id}: span {parent} is in the trace: Jaeger received it, so it is not the \
             invented parent of the exercise"
        );
        need!(
            warnings.contains("invalid parent") && warnings.contains(INVENTED_PARENT),
            "trace {id}: Jaeger shows no invalid-parent warning yet ({warnings:?})"
        );
        Ok(format!(
            "the orders server span's parent is {INVENTED_PARENT}, the span you invented; it is \
             not in the trace, which is why Jaeger warns about an invalid parent: curl \
             exported nothing"
        ))
    })();
    Ok(finding.judged(says))
}

// Exercise 3.
fn baggage_delay(t: &Trace) -> Result<String, String> {
    let id = &t.trace_id;
    need!(
        t.find("orders", "demo-delay").is_empty(),
        "trace {id}: orders has a demo-delay span; only users reads the baggage"
    );
    let (asked, took) = delayed_by_baggage(t, "users")?;
    Ok(format!(
        "trace {id}: the {asked} ms went into users' demo-delay span (demo.delay_ms={asked}, \
         {took} ms); orders did not touch the baggage, it crossed orders in the headers of \
         the call to users"
    ))
}

/// The delay the baggage's `demo.delay_ms` ordered, as `service` (a users service) spent
/// it: one `demo-delay` span under its server span, lasting at least what was asked. The
/// milliseconds asked and taken.
fn delayed_by_baggage(t: &Trace, service: &str) -> Result<(u64, u64), String> {
    let id = &t.trace_id;
    let Some(delay) = one(t, service, "demo-delay") else {
        return Err(format!(
            "trace {id}: no single {service} demo-delay span yet:\n{}",
            t.outline()
        ));
    };
    let server = one(t, service, USER);
    need!(
        server.is_some() && delay.parent() == server.as_ref().map(Span::span_id),
        "trace {id}: demo-delay is not under the {service} server span:\n{}",
        t.outline()
    );
    let asked: u64 = delay
        .tag_str("demo.delay_ms")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("trace {id}: the demo-delay span has no demo.delay_ms"))?;
    let took = delay.raw.duration / 1000;
    need!(
        took >= asked,
        "trace {id}: demo-delay took {took} ms, less than the {asked} ms asked"
    );
    Ok((asked, took))
}

fn status(span: Option<Span>) -> Option<String> {
    span.and_then(|s| s.tag_str("http.response.status_code"))
}

// Exercise 4, `demo.fail=users`.
fn users_fault(t: &Trace) -> Result<String, String> {
    let expected: BTreeSet<String> = [
        "orders/GET /orders/{order_id}",
        "orders/GET",
        "users/GET /users/{user_id}",
        "users/demo-fault",
    ]
    .map(str::to_owned)
    .into();
    let found = errors(t);
    need!(
        found == expected,
        "trace {}: the error spans are {}; with demo.fail=users they are {}",
        t.trace_id,
        list(&found),
        list(&expected)
    );
    let code = status(one(t, "orders", ORDER));
    need!(
        code.as_deref() == Some("502"),
        "trace {}: orders answered {code:?}, not 502",
        t.trace_id
    );
    Ok(format!(
        "trace {}: demo-fault, users' server span (500), orders' client span and orders' \
         server span (502) are errors",
        t.trace_id
    ))
}

// Exercise 4, `demo.fail=db`.
fn db_fault(t: &Trace) -> Result<String, String> {
    let db = one(t, "users", "db-query");
    let error_type = db.as_ref().and_then(|s| s.tag_str("error.type"));
    need!(
        db.as_ref().is_some_and(Span::is_error) && error_type.as_deref() == Some("22012"),
        "trace {}: users' db-query is not an error with error.type=22012 (it has {error_type:?})",
        t.trace_id
    );
    Ok(format!(
        "trace {}: it starts at users' db-query span (error.type=22012, division by zero); \
         errors: {}",
        t.trace_id,
        list(&errors(t))
    ))
}

// Exercise 4, `/orders/abc`.
fn bad_request(t: &Trace) -> Result<String, String> {
    let code = status(one(t, "orders", ORDER));
    need!(
        code.as_deref() == Some("400"),
        "trace {}: orders answered {code:?}, not 400",
        t.trace_id
    );
    let found = errors(t);
    need!(
        found.is_empty(),
        "trace {}: {} marked as errors, yet a 4xx is the client's mistake",
        t.trace_id,
        list(&found)
    );
    Ok(format!(
        "trace {}: orders answered 400 and no span is an error: a server span does not mark \
         4xx as an error",
        t.trace_id
    ))
}

// Exercise 5.
fn strategy(t: &Trace, which: &str) -> Result<String, String> {
    let id = &t.trace_id;
    let calls = calls(t, "orders");
    let served = t
        .spans()
        .iter()
        .filter(|s| s.service == "users" && s.kind() == "server")
        .count();
    need!(
        !calls.is_empty()
            && served == calls.len()
            && t.find("users", "db-query").len() == calls.len(),
        "trace {id}: {} calls to users, {served} answered in the trace so far",
        calls.len()
    );
    match which {
        "sequential" | "parallel" => need!(
            calls.len() == 5,
            "trace {id}: {} calls to users; {which} makes one per order, five",
            calls.len()
        ),
        _ => need!(
            calls.len() == 1,
            "trace {id}: {} calls to users; batched makes one",
            calls.len()
        ),
    }
    match which {
        "sequential" => {
            for call in t.find("orders", "GET") {
                let up = |s: &Span| s.parent().and_then(|p| t.span(p));
                let enrich = up(&call);
                let fetch = enrich.as_ref().and_then(up);
                need!(
                    enrich.as_ref().map(Span::name) == Some("enrich-order")
                        && fetch.as_ref().map(Span::name) == Some("fetch-order"),
                    "trace {id}: a call is not inside its order's enrich-order and fetch-order"
                );
            }
            need!(
                calls.windows(2).all(|w| w[1].0 >= w[0].1),
                "trace {id}: the calls overlap; sequential makes a staircase"
            );
            Ok(format!(
                "trace {id}: a staircase of five GET calls, each inside its order's \
                 fetch-order and enrich-order: the N+1 pattern"
            ))
        }
        "parallel" => {
            let last_start = calls.iter().map(|c| c.0).max().unwrap_or(0);
            let first_end = calls.iter().map(|c| c.1).min().unwrap_or(0);
            need!(
                last_start < first_end,
                "trace {id}: the five calls do not all start before the first ends"
            );
            Ok(format!("trace {id}: five GET calls side by side"))
        }
        _ => {
            need!(
                t.find("orders", "fetch-order").is_empty(),
                "trace {id}: batched has no per-order spans, this trace has fetch-order"
            );
            let url = one(t, "orders", "GET").and_then(|s| s.tag_str("url.full"));
            need!(
                url.as_deref().is_some_and(|u| u.ends_with("/users?ids=7")),
                "trace {id}: the call is to {url:?}, not GET /users?ids=7"
            );
            let query = one(t, "users", "db-query").and_then(|s| s.tag_str("db.query.text"));
            need!(
                query.as_deref().is_some_and(|q| q.contains("= ANY($1)"))
                    && one(t, "users", "GET /users").is_some(),
                "trace {id}: users' one query is {query:?}, not one with = ANY($1)"
            );
            Ok(format!(
                "trace {id}: one call to GET /users?ids=7 and one users query with = ANY($1), \
                 no per-order spans"
            ))
        }
    }
}

// Exercise 6.
fn broken_propagation(t: &Trace, users: Option<&Trace>) -> Result<String, String> {
    let id = &t.trace_id;
    need!(
        t.services() == ["orders"],
        "trace {id} holds {}: users continued orders' trace, so propagation is on; restart \
         orders with PROPAGATION=off",
        t.services().join(" and ")
    );
    need!(
        !t.find("orders", "GET").is_empty(),
        "trace {id}: orders' call to users (its GET client span) is not in the trace yet"
    );
    let Some(users) = users else {
        return Err(format!(
            "trace {id} ends at orders' GET span, but no users trace started during that call \
             is in Jaeger yet"
        ));
    };
    Ok(format!(
        "two unrelated traces: {id} ends at orders' GET client span, and users started trace \
         {} with a root server span GET /users/{{user_id}}: the traceparent header was missing",
        users.trace_id
    ))
}

// Exercise 8: Jaeger's half; the log line is in the learner's terminal.
fn log_event(t: &Trace) -> Result<String, String> {
    let with_event = t
        .spans()
        .into_iter()
        .find(|s| s.service == "users" && !s.raw.logs.is_empty());
    let Some(span) = with_event else {
        return Err(format!(
            "trace {}: no users span carries an event (the log line) yet",
            t.trace_id
        ));
    };
    Ok(format!(
        "trace {}: users' {} span carries the log line as an event; the WARN line in your \
         terminal (not read by this check) must show trace_id={}",
        t.trace_id,
        span.name(),
        t.trace_id
    ))
}

// Exercise 9: the retries; the collector outage needs compose and is not checked.
fn retries(t: &Trace) -> Result<String, String> {
    let mut tries = t.find("orders", "GET");
    tries.sort_by_key(Span::start_us);
    need!(
        tries.len() == 3,
        "trace {}: orders made {} calls to users; a refused connection is tried three times",
        t.trace_id,
        tries.len()
    );
    let parents: BTreeSet<_> = tries.iter().map(Span::parent).collect();
    let resends: Vec<Option<String>> = tries
        .iter()
        .map(|s| s.tag_str("http.request.resend_count"))
        .collect();
    need!(
        parents.len() == 1 && resends == [None, Some("1".into()), Some("2".into())],
        "trace {}: the three calls are not tries of one call (parents {parents:?}, \
         resend counts {resends:?})",
        t.trace_id
    );
    Ok(format!(
        "trace {}: three calls to users under the same parent, the second and third with \
         http.request.resend_count 1 and 2 (the collector-outage half of the exercise needs \
         compose and is not checked)",
        t.trace_id
    ))
}

// Exercise 11.
fn through_queue(t: &Trace) -> Result<String, String> {
    let id = &t.trace_id;
    need!(
        t.services() == ["orders", "orders-worker", "users"],
        "trace {id} holds {}; the order's trace crosses the queue into orders-worker",
        t.services().join(", ")
    );
    let (Some(send), Some(process)) = (one(t, "orders", SEND), one(t, "orders-worker", PROCESS))
    else {
        return Err(format!("trace {id}: no single send and process span yet"));
    };
    need!(
        send.kind() == "producer" && process.kind() == "consumer",
        "trace {id}: send is {}, process is {}",
        send.kind(),
        process.kind()
    );
    need!(
        process.parent() == Some(send.span_id()) && process.start_us() >= send.end_us(),
        "trace {id}: process is not send's child, after it"
    );
    for (key, value) in [
        ("messaging.system", "postgresql"),
        ("messaging.operation.type", "process"),
        ("messaging.destination.name", "order-confirmations"),
    ] {
        need!(
            process.tag_str(key).as_deref() == Some(value),
            "trace {id}: process has {key}={:?}",
            process.tag_str(key)
        );
    }
    need!(
        send.tag_str("messaging.message.id").is_some()
            && send.tag_str("messaging.message.id") == process.tag_str("messaging.message.id"),
        "trace {id}: send and process name different messages"
    );
    let call = one(t, "orders-worker", "GET");
    let continued = call.as_ref().is_some_and(|c| {
        c.parent() == Some(process.span_id())
            && t.find("users", USER)
                .iter()
                .any(|s| s.parent() == Some(c.span_id()))
    });
    need!(
        continued,
        "trace {id}: the worker's call to users is not under process, with users under it"
    );
    Ok(format!(
        "trace {id}: one trace, three services; send order-confirmations (producer) is the \
         parent of process order-confirmations (consumer), {} ms later: the time the message \
         sat in the outbox",
        (process.start_us() - send.end_us()) / 1000
    ))
}

// Exercise 13.
fn broken_hop(t: &Trace, worker: Option<&Trace>) -> Result<String, String> {
    let id = &t.trace_id;
    need!(
        t.services() == ["orders", "users"],
        "trace {id} holds {}: the worker continued the order's trace; restart with \
         ASYNC_CONTEXT=off",
        t.services().join(", ")
    );
    let Some(worker) = worker else {
        return Err(format!(
            "trace {id} ends at send order-confirmations, but the worker's trace for its \
             message is not in Jaeger yet"
        ));
    };
    let process = one(worker, "orders-worker", PROCESS);
    need!(
        process
            .as_ref()
            .is_some_and(|p| p.parent().is_none() && p.links().is_empty()),
        "trace {}: the worker's process span has a parent or a link",
        worker.trace_id
    );
    Ok(format!(
        "trace {id} ends at send order-confirmations; the worker processed the message in \
         trace {}, rooted at process order-confirmations, with no parent and no link",
        worker.trace_id
    ))
}

// Exercise 14, `DEMO_PITFALL=spawn`.
fn spawn_pitfall(t: &Trace, orphan: Option<&Trace>) -> Result<String, String> {
    let id = &t.trace_id;
    need!(
        one(t, "orders-worker", PROCESS).is_some(),
        "trace {id}: the worker's process span is not in it yet"
    );
    need!(
        t.find("orders-worker", "GET").is_empty(),
        "trace {id}: the worker's call is under process: the spawned task kept its span; \
         restart with DEMO_PITFALL=spawn"
    );
    let Some(orphan) = orphan else {
        return Err(format!(
            "trace {id}: no orders-worker trace rooted at GET, started during process, in \
             Jaeger yet"
        ));
    };
    Ok(format!(
        "the worker's call to users is not under process order-confirmations in trace \
         {id}: it is the root of trace {}, with users' spans under it",
        orphan.trace_id
    ))
}

// Exercise 14, `DEMO_PITFALL=context`.
fn context_pitfall(t: &Trace, cut: Option<&Trace>) -> Result<String, String> {
    let id = &t.trace_id;
    let Some(call) = one(t, "orders-worker", "GET") else {
        return Err(format!(
            "trace {id}: the worker's GET span is not in it yet"
        ));
    };
    need!(
        !t.spans().iter().any(|s| s.parent() == Some(call.span_id())),
        "trace {id}: users' spans are under the worker's call: the headers carried the \
         context; restart with DEMO_PITFALL=context"
    );
    let Some(cut) = cut.filter(|c| c.services() == ["users"]) else {
        return Err(format!(
            "trace {id}: no users trace of its own, started during the worker's call, in \
             Jaeger yet"
        ));
    };
    Ok(format!(
        "trace {id}: the worker's GET span has nothing of users under it; users received no \
         traceparent and started trace {}, rooted at GET /users/{{user_id}}",
        cut.trace_id
    ))
}

// Exercise 14, `DEMO_PITFALL=context` with `TRACING_CONTEXT_ACTIVATION=on`.
fn context_activated(t: &Trace) -> Result<String, String> {
    let id = &t.trace_id;
    let Some(process) = one(t, "orders-worker", PROCESS) else {
        return Err(format!(
            "trace {id}: the worker's process span is not in it yet"
        ));
    };
    let Some(call) = one(t, "orders-worker", "GET") else {
        return Err(format!(
            "trace {id}: the worker's GET span is not in it yet"
        ));
    };
    // orders' own check of the user (POST /orders) is in the trace too, under orders' GET.
    let users_side = t.find("users", USER);
    need!(
        users_side
            .iter()
            .any(|s| s.parent() == Some(process.span_id())),
        "trace {id}: users' side of the worker's call is not under process \
         order-confirmations: Context::current() was empty; restart with \
         DEMO_PITFALL=context TRACING_CONTEXT_ACTIVATION=on:\n{}",
        t.outline()
    );
    need!(
        !t.spans().iter().any(|s| s.parent() == Some(call.span_id())),
        "trace {id}: users' spans are under the worker's GET span: the traced client \
         injected the context, so DEMO_PITFALL=context is not set"
    );
    Ok(format!(
        "trace {id}: users' side is back, under process order-confirmations (the span \
         entered when Context::current() was read), not under the worker's GET span"
    ))
}

/// Fails when the users spans of `t` come from the Rust service, not the Python one.
fn served_by_python(t: &Trace) -> Result<(), String> {
    let id = &t.trace_id;
    need!(
        t.find("users", USER).is_empty(),
        "trace {id}: users' spans come from the Rust service (service users, \
         telemetry.sdk.language=rust): start the system with docker-compose.python.yml \
         (without Docker: cargo xtask up --users python)"
    );
    Ok(())
}

// Exercise 15, the curl.
fn two_languages(t: &Trace) -> Result<String, String> {
    let id = &t.trace_id;
    served_by_python(t)?;
    let Some(call) = one(t, "orders", "GET") else {
        return Err(format!(
            "trace {id}: orders' call to users is not in it yet"
        ));
    };
    let Some(server) = one(t, USERS_PYTHON, USER) else {
        return Err(format!(
            "trace {id}: orders' call to users has no users-python span under it: the trace \
             is split, or users-python's spans are not in Jaeger yet"
        ));
    };
    need!(
        server.parent() == Some(call.span_id()),
        "trace {id}: users-python's server span is not the child of orders' GET client span: \
         two traces, not one:\n{}",
        t.outline()
    );
    let language = t.process_tag(&server, "telemetry.sdk.language");
    need!(
        language.as_deref() == Some("python"),
        "trace {id}: users-python's process says telemetry.sdk.language={language:?}, not python"
    );
    let scope = server.tag_str("otel.scope.name");
    need!(
        scope.as_deref() == Some(FASTAPI_SCOPE),
        "trace {id}: users-python's server span has the instrumentation scope {scope:?}, not \
         {FASTAPI_SCOPE}"
    );
    let query = one(t, USERS_PYTHON, "db-query");
    need!(
        query
            .as_ref()
            .is_some_and(|q| q.parent() == Some(server.span_id()) && q.kind() == "client"),
        "trace {id}: users-python's db-query is not a client span under its server span yet"
    );
    let http: Vec<&str> = server
        .raw
        .tags
        .iter()
        .map(|tag| tag.key.as_str())
        .filter(|key| key.starts_with("http.") || key.starts_with("net."))
        .collect();
    Ok(format!(
        "trace {id}: one trace, two languages: users-python's GET /users/{{user_id}} is the \
         child of orders' GET client span, its db-query under it; the process says \
         telemetry.sdk.language=python (SDK {}), the server span's scope is {FASTAPI_SCOPE} {} \
         and its HTTP attributes are the older conventions' ({})",
        t.process_tag(&server, "telemetry.sdk.version")
            .unwrap_or_default(),
        server.tag_str("otel.scope.version").unwrap_or_default(),
        http.join(", ")
    ))
}

// Exercise 15, load's baggage fault.
fn python_baggage(t: &Trace) -> Result<String, String> {
    let id = &t.trace_id;
    served_by_python(t)?;
    let (asked, took) = delayed_by_baggage(t, USERS_PYTHON)?;
    Ok(format!(
        "trace {id}: load's demo.delay_ms={asked} reached the Python users: its demo-delay \
         span took {took} ms under users-python's server span; orders passed the baggage on \
         and the Python SDK's own W3C baggage propagator read it"
    ))
}

/// Traces of one `load` run: the newest trace and those started within `GAP` of the next
/// newer one (a run at 10% keeps a trace every 0.2 s on average).
fn newest_run(mut traces: Vec<Trace>) -> Vec<Trace> {
    const GAP: u64 = 3_000_000;
    traces.sort_by_key(|t| std::cmp::Reverse(started(t)));
    let mut run: Vec<Trace> = Vec::new();
    for trace in traces {
        if let Some(last) = run.last()
            && started(last) - started(&trace) > GAP
        {
            break;
        }
        run.push(trace);
    }
    run
}

// Exercise 7: head sampling; tail sampling needs compose and is not checked.
async fn head_sampling(jaeger: &Query, send: &str) -> Result<Finding, String> {
    // The learner's run, not compose's own load, which calls orders by its compose name.
    let mine = |t: &Trace| {
        t.spans().iter().any(|s| {
            s.service == "load" && s.tag_str("server.address").as_deref() != Some("orders")
        })
    };
    let found = jaeger.search(&Search::recent("load")).await?;
    let run = newest_run(found.into_iter().filter(mine).collect());
    if run.is_empty() {
        return Ok(Finding::nothing(format!(
            "no load trace in Jaeger yet: {send}"
        )));
    }
    let kept = run.len();
    let partial: Vec<&str> = run
        .iter()
        .filter(|t| t.services().len() < 2)
        .map(|t| t.trace_id.as_str())
        .collect();
    let mut finding = Finding::nothing(String::new())
        .fact("kept", json!(kept))
        .fact("sent", json!(200));
    finding.seen = run.iter().map(|t| t.spans.len()).sum();
    let says = (|| {
        need!(
            kept <= 40,
            "load's newest run left {kept} traces in Jaeger: its sampler kept about all of the \
             200 requests; set OTEL_TRACES_SAMPLER=parentbased_traceidratio and \
             OTEL_TRACES_SAMPLER_ARG=0.1 on load's command line"
        );
        need!(
            kept >= 5,
            "load's newest run left only {kept} traces in Jaeger; at 10% of 200, about 20"
        );
        need!(
            partial.is_empty(),
            "{} of the kept traces have only load's span so far: a kept trace is kept whole",
            partial.len()
        );
        Ok(format!(
            "load's newest run: {kept} of its 200 traces in Jaeger, each whole: a 10% head \
             sampler keeps about 20, errors included (tail sampling needs compose and is not \
             checked)"
        ))
    })();
    Ok(finding.judged(says))
}

/// The Monitor tab's peak for `operation` in `series`.
fn peak(series: &[MetricSeries], operation: &str) -> f64 {
    series
        .iter()
        .find(|s| s.operation() == operation)
        .map_or(0.0, MetricSeries::peak)
}

// Exercise 10.
async fn monitor(jaeger: &Query, send: &str) -> Result<Finding, String> {
    // The run's half minute, and the connector's flush and the scrape after it.
    let window = Duration::from_secs(75);
    let mut finding = Finding::nothing(String::new());
    let mut problems = Vec::new();
    let mut any = false;
    for (service, operation) in [("users", USER), ("orders", ORDER)] {
        // A Jaeger without its Prometheus answers the rest of the API: a failing Monitor
        // tab is this exercise's verdict, not an unreachable Jaeger.
        let quantile = [("quantile", "0.95".to_owned())];
        let charts = async {
            Ok::<_, String>((
                jaeger.metrics("calls", service, window, &[]).await?,
                jaeger.metrics("errors", service, window, &[]).await?,
                jaeger
                    .metrics("latencies", service, window, &quantile)
                    .await?,
            ))
        };
        let (calls, errors, latencies) = match charts.await {
            Ok(charts) => charts,
            Err(reason) => {
                return Ok(finding.judged(Err(format!(
                    "Jaeger's Monitor tab has no metrics: {reason}"
                ))));
            }
        };
        let (rate, share, p95) = (
            peak(&calls, operation),
            peak(&errors, operation),
            peak(&latencies, operation),
        );
        any |= rate > 0.0;
        let others: Vec<String> = errors
            .iter()
            .filter(|s| s.operation() != operation && s.peak() > 0.0)
            .map(|s| s.operation().to_owned())
            .collect();
        finding = finding.fact(
            service,
            json!({"operation": operation, "rate": rate, "error_rate": share, "p95_ms": p95, "other_failing": others}),
        );
        if !((5.0..=30.0).contains(&rate)
            && (0.1..=0.35).contains(&share)
            && p95 > 800.0
            && others.is_empty())
        {
            problems.push(format!(
                "{operation}: rate {rate:.1}/s (about 20 sent), error rate {share:.2} (a fifth \
                 failed), p95 {p95:.0} ms (800 ms asked), other operations failing: {others:?}"
            ));
        }
    }
    if !any {
        return Ok(Finding::nothing(format!(
            "the Monitor tab has no requests in the last 75 s: {send}"
        )));
    }
    let slow = jaeger
        .search(&Search {
            operation: Some(USER),
            min_duration: Some(Duration::from_millis(800)),
            lookback: Duration::from_secs(300),
            limit: 20,
            ..Search::recent("users")
        })
        .await?;
    finding.seen = slow.len();
    let slow_in_delay = slow.iter().all(|t| {
        one(t, "users", "demo-delay").is_some_and(|d| d.end_us() - d.start_us() >= 800_000)
    });
    let says = (|| {
        need!(
            problems.is_empty(),
            "the Monitor tab shows {}",
            problems.join("; ")
        );
        need!(
            !slow.is_empty() && slow_in_delay,
            "searching users' GET /users/{{user_id}} slower than 800 ms finds {} traces, not \
             all with a demo-delay of 800 ms",
            slow.len()
        );
        Ok(format!(
            "the rate follows load, the error rate of GET /users/{{user_id}} and \
             GET /orders/{{order_id}} is about a fifth (and no other operation's), p95 is past \
             800 ms; the {} slow traces found spent the time in demo-delay",
            slow.len()
        ))
    })();
    Ok(finding.judged(says))
}

// Exercise 12.
async fn batches(jaeger: &Query, send: &str) -> Result<Finding, String> {
    let found = jaeger
        .search(&Search {
            operation: Some(PROCESS),
            ..Search::recent("orders-worker")
        })
        .await?;
    if found.is_empty() {
        return Ok(Finding::nothing(format!(
            "no orders-worker trace in Jaeger yet: {send}"
        )));
    }
    let batches: Vec<&Trace> = found
        .iter()
        .filter(|t| {
            t.find("orders-worker", PROCESS)
                .iter()
                .any(|s| s.parent().is_none() && !s.links().is_empty())
        })
        .collect();
    let mut finding = Finding::nothing(String::new()).fact("batches", json!(batches.len()));
    finding.seen = found.iter().map(|t| t.spans.len()).sum();
    let mut linked = 0;
    let mut largest = 0;
    let mut wrong = Vec::new();
    for trace in &batches {
        let Some(batch) = one(trace, "orders-worker", PROCESS) else {
            continue;
        };
        let links = batch.links();
        let count: usize = batch
            .tag_str("messaging.batch.message_count")
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        linked += links.len();
        largest = largest.max(count);
        if links.len() != count || trace.find("orders-worker", "confirm-order").len() != count {
            wrong.push(format!(
                "trace {}: {} links, {count} messages, {} confirm-order spans",
                trace.trace_id,
                links.len(),
                trace.find("orders-worker", "confirm-order").len()
            ));
            continue;
        }
        // Each link leads to the order's own trace, to its send span.
        let (order, span) = links[0];
        let leads = jaeger.trace(order).await?;
        if leads
            .as_ref()
            .and_then(|o| o.span(span))
            .map(|s| s.name().to_owned())
            .as_deref()
            != Some(SEND)
        {
            wrong.push(format!(
                "trace {}: its link does not lead to a send order-confirmations span",
                trace.trace_id
            ));
        }
    }
    finding = finding
        .fact("linked", json!(linked))
        .fact("largest", json!(largest));
    let says = (|| {
        need!(
            !batches.is_empty(),
            "the worker's process order-confirmations spans have parents and no links: the \
             worker continues each order's trace; restart with ASYNC_CONTEXT=link"
        );
        need!(wrong.is_empty(), "{}", wrong.join("; "));
        need!(
            linked >= 100,
            "the batches link {linked} messages so far; load queued 100"
        );
        need!(
            largest >= 2,
            "every batch holds one message: queue a burst ({send})"
        );
        Ok(format!(
            "{} batch traces, each a root process order-confirmations with \
             messaging.batch.message_count = N and N links (FollowsFrom), one to each order's \
             send span, and N confirm-order spans; the largest batch held {largest}",
            batches.len()
        ))
    })();
    Ok(finding.judged(says))
}
