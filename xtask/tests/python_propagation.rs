//! Where the two languages disagree: the same headers sent straight to the Rust users
//! service (our strict W3C propagators, shared/telemetry) and to the Python one (OpenTelemetry
//! Python's own), each with a parent traceparent, and what each did as Jaeger shows it: the
//! trace continued or a new one, the tracestate kept or not, the baggage's demo.delay_ms read
//! (a demo-delay span) or not. The table in exercise 15 of docs/workshop.md lists exactly
//! these cases with these outcomes: the test reads it and fails on any row it did not
//! measure, so a change in either language, or in the guide, is caught.

mod common;
mod python;

use std::{collections::BTreeMap, time::Duration};

use python::System;
use testkit::traced;

/// A sampled parent span id, in every traceparent sent.
const PARENT: &str = "00f067aa0ba902b7";

/// What a case measures, and so which words its row uses.
#[derive(Clone, Copy)]
enum Measure {
    Traceparent,
    Tracestate,
    Baggage,
}

struct Case {
    /// The table's first column, exactly.
    label: &'static str,
    measure: Measure,
    /// The headers, for a fresh trace id.
    headers: fn(&str) -> Vec<(&'static str, String)>,
}

fn sampled(trace_id: &str) -> String {
    format!("00-{trace_id}-{PARENT}-01")
}

/// `key0=0,...` of `n` members.
fn members(n: usize, prefix: &str) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}={i}")).collect()
}

/// `n` baggage members, demo.delay_ms=50 the `at`-th (from 1).
fn baggage_with_delay_at(n: usize, at: usize) -> String {
    let mut list = members(n - 1, "k");
    list.insert(at - 1, "demo.delay_ms=50".to_owned());
    list.join(",")
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            label: "`traceparent` in uppercase hex",
            measure: Measure::Traceparent,
            headers: |t| {
                vec![(
                    "traceparent",
                    format!("00-{}-{}-01", t.to_uppercase(), PARENT.to_uppercase()),
                )]
            },
        },
        Case {
            label: "`traceparent` of version ff",
            measure: Measure::Traceparent,
            headers: |t| vec![("traceparent", format!("ff-{t}-{PARENT}-01"))],
        },
        Case {
            label: "`traceparent` with an all-zero trace id",
            measure: Measure::Traceparent,
            headers: |_| vec![("traceparent", format!("00-{}-{PARENT}-01", "0".repeat(32)))],
        },
        Case {
            label: "`traceparent` of version 00 with a field after the flags",
            measure: Measure::Traceparent,
            headers: |t| vec![("traceparent", format!("00-{t}-{PARENT}-01-what-comes-next"))],
        },
        Case {
            label: "`traceparent` of version 01 with a field after the flags",
            measure: Measure::Traceparent,
            headers: |t| vec![("traceparent", format!("01-{t}-{PARENT}-01-what-comes-next"))],
        },
        Case {
            label: "`tracestate` of 32 members",
            measure: Measure::Tracestate,
            headers: |t| {
                vec![
                    ("traceparent", sampled(t)),
                    ("tracestate", members(32, "vendor").join(",")),
                ]
            },
        },
        Case {
            label: "`tracestate` of 33 members",
            measure: Measure::Tracestate,
            headers: |t| {
                vec![
                    ("traceparent", sampled(t)),
                    ("tracestate", members(33, "vendor").join(",")),
                ]
            },
        },
        Case {
            label: "`baggage` over 8192 bytes, `demo.delay_ms` its first member",
            measure: Measure::Baggage,
            headers: |t| {
                let pad = "x".repeat(3000);
                vec![
                    ("traceparent", sampled(t)),
                    (
                        "baggage",
                        format!("demo.delay_ms=50,pad1={pad},pad2={pad},pad3={pad}"),
                    ),
                ]
            },
        },
        Case {
            label: "`baggage` of 200 members, `demo.delay_ms` the 100th",
            measure: Measure::Baggage,
            headers: |t| {
                vec![
                    ("traceparent", sampled(t)),
                    ("baggage", baggage_with_delay_at(200, 100)),
                ]
            },
        },
        Case {
            label: "`baggage` of 200 members, `demo.delay_ms` the 190th",
            measure: Measure::Baggage,
            headers: |t| {
                vec![
                    ("traceparent", sampled(t)),
                    ("baggage", baggage_with_delay_at(200, 190)),
                ]
            },
        },
        Case {
            label: "`baggage` with a malformed member among good ones",
            measure: Measure::Baggage,
            headers: |t| {
                vec![
                    ("traceparent", sampled(t)),
                    (
                        "baggage",
                        "team=checkout,this is no member,demo.delay_ms=50".to_owned(),
                    ),
                ]
            },
        },
    ]
}

/// A trace id nobody else sends.
fn fresh_trace_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{:032x}", nanos ^ (u128::from(std::process::id()) << 96))
}

/// What `service` (at `base`) did with the case's headers, in the table's words.
async fn outcome(system: &System, base: &str, service: &str, case: &Case) -> String {
    let sent = fresh_trace_id();
    let headers = (case.headers)(&sent);
    let borrowed: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let answer = traced::get(&system.client, &format!("{base}/users/1"), &borrowed).await;
    assert_eq!(answer.status, 200, "{}: {service}: {answer:?}", case.label);
    let trace_id = answer.trace_id();
    // The server span and its db-query, and whatever ended before them.
    let trace = system.jaeger().trace_of(&trace_id, 2).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let trace = system
        .jaeger()
        .trace_of(&trace_id, trace.spans.len())
        .await
        .unwrap();
    let server = trace.only(service, "GET /users/{user_id}");
    let continued = trace_id == sent && server.parent() == Some(PARENT);
    let trace_words = match continued {
        true => "continues the trace",
        false => "starts a new trace",
    };
    match case.measure {
        Measure::Traceparent => trace_words.to_owned(),
        Measure::Tracestate => {
            let kept = server.tag_str("w3c.tracestate");
            let state = match kept {
                Some(state) => {
                    let (_, value) = headers.iter().find(|(k, _)| *k == "tracestate").unwrap();
                    assert_eq!(&state, value, "{}: {service} keeps it as sent", case.label);
                    "keeps the tracestate"
                }
                None => "drops the tracestate",
            };
            format!("{trace_words}, {state}")
        }
        Measure::Baggage => {
            assert!(continued, "{}: {service}:\n{}", case.label, trace.outline());
            match trace.find(service, "demo-delay").len() {
                1 => "reads `demo.delay_ms`".to_owned(),
                0 => "drops `demo.delay_ms`".to_owned(),
                n => panic!("{}: {service}: {n} demo-delay spans", case.label),
            }
        }
    }
}

/// Exercise 15's table: its rows' cells after the first row and the separator.
fn guide_table() -> Vec<Vec<String>> {
    let guide =
        std::fs::read_to_string(xtask::compose::project_root().join("docs/workshop.md")).unwrap();
    let section = guide
        .split("\n## ")
        .find(|s| s.starts_with("15. "))
        .unwrap_or_default();
    section
        .lines()
        .filter(|line| line.starts_with('|'))
        .skip(2)
        .map(|line| {
            line.trim_matches('|')
                .split('|')
                .map(|cell| cell.trim().to_owned())
                .collect()
        })
        .collect()
}

#[tokio::test]
async fn where_python_and_our_propagators_disagree_is_the_guides_table() {
    let system = System::start().await;
    let mut measured = BTreeMap::new();
    let mut rows = Vec::new();
    for case in cases() {
        let rust = outcome(&system, &system.rust_users, "users", &case).await;
        let python = outcome(&system, &system.python_users, "users-python", &case).await;
        rows.push(format!("| {} | {rust} | {python} |", case.label));
        measured.insert(case.label.to_owned(), (rust, python));
    }
    let measured_table = rows.join("\n");
    let table = guide_table();
    let mut wrong = Vec::new();
    for row in &table {
        let [label, rust, python] = row.as_slice() else {
            wrong.push(format!("a row of {} cells: {row:?}", row.len()));
            continue;
        };
        match measured.get(label) {
            Some(m) if (&m.0, &m.1) == (rust, python) => {}
            Some(m) => wrong.push(format!(
                "{label}: the guide says {rust:?} / {python:?}, measured {:?} / {:?}",
                m.0, m.1
            )),
            None => wrong.push(format!("{label}: a row this test does not measure")),
        }
    }
    let listed: Vec<&String> = table.iter().filter_map(|row| row.first()).collect();
    for label in measured.keys() {
        if !listed.contains(&label) {
            wrong.push(format!("{label}: measured, not in the guide's table"));
        }
    }
    assert!(
        wrong.is_empty(),
        "exercise 15's table differs from what the two services did:\n{}\n\nmeasured:\n{measured_table}",
        wrong.join("\n")
    );
    system.stop().await;
}
