//! The summary: a table for people, one JSON document (stable field names) for scripts.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde_json::{Value, json};

use crate::stats::{Notable, Stats};

pub struct Run<'a> {
    pub asked_rate: f64,
    pub target: String,
    pub elapsed: Duration,
    pub interrupted: bool,
    pub stats: &'a Stats,
    pub jaeger: String,
}

/// A summary's count object (`status_codes`, `errors`, `kinds`) on one line,
/// `key: n  key: n`, or `-` when empty: load's table and xtask's reports print it alike.
pub fn counts(v: &Value) -> String {
    v.as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect::<Vec<_>>()
                .join("  ")
        })
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "-".to_owned())
}

fn ms(us: u64) -> f64 {
    (us as f64 / 1000.0 * 1000.0).round() / 1000.0
}

fn percentiles(h: &Histogram<u64>) -> Value {
    if h.is_empty() {
        return json!({"p50": null, "p90": null, "p99": null, "p99_9": null, "max": null, "mean": null});
    }
    json!({
        "p50": ms(h.value_at_quantile(0.50)),
        "p90": ms(h.value_at_quantile(0.90)),
        "p99": ms(h.value_at_quantile(0.99)),
        "p99_9": ms(h.value_at_quantile(0.999)),
        "max": ms(h.max()),
        "mean": (h.mean() / 10.0).round() / 100.0,
    })
}

impl Run<'_> {
    fn link(&self, n: &Notable) -> String {
        format!("{}/trace/{}", self.jaeger.trim_end_matches('/'), n.trace_id)
    }

    pub fn json(&self) -> Value {
        let s = self.stats;
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        let notable = |list: Vec<Notable>| -> Vec<Value> {
            list.iter()
                .map(|n| {
                    json!({
                        "trace_id": n.trace_id,
                        "latency_ms": ms(n.latency_us),
                        "outcome": n.outcome,
                        "link": self.link(n),
                    })
                })
                .collect()
        };
        json!({
            "target": self.target,
            "elapsed_s": (secs * 1000.0).round() / 1000.0,
            "interrupted": self.interrupted,
            "rate": {
                "asked_per_s": (self.asked_rate * 10.0).round() / 10.0,
                "achieved_per_s": (s.completed as f64 / secs * 10.0).round() / 10.0,
            },
            "requests": {
                "scheduled": s.scheduled,
                "sent": s.sent,
                "completed": s.completed,
                "missed": s.missed,
                "ok": s.completed - s.non_2xx() - s.errors_total(),
                "failed": s.non_2xx() + s.errors_total(),
            },
            "kinds": s.kinds,
            "status_codes": s.status.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
            "errors": s.errors,
            "latency_ms": {
                "from_schedule": percentiles(&s.corrected),
                "from_send": percentiles(&s.uncorrected),
                "send_lag": percentiles(&s.send_lag),
            },
            "slowest": notable(s.slowest()),
            "failed": notable(s.failed.clone()),
        })
    }

    pub fn table(&self) -> String {
        let j = self.json();
        let mut out = String::new();
        let mut line = |l: String| {
            out.push_str(&l);
            out.push('\n');
        };
        line(format!("target     {}", self.target));
        line(format!(
            "elapsed    {:.2} s{}",
            self.elapsed.as_secs_f64(),
            if self.interrupted {
                "  (interrupted)"
            } else {
                ""
            }
        ));
        line(format!(
            "rate       asked {}/s  achieved {}/s",
            j["rate"]["asked_per_s"], j["rate"]["achieved_per_s"]
        ));
        let r = &j["requests"];
        line(format!(
            "requests   scheduled {}  sent {}  completed {}  missed {}  ok {}  failed {}",
            r["scheduled"], r["sent"], r["completed"], r["missed"], r["ok"], r["failed"]
        ));
        line(format!("status     {}", counts(&j["status_codes"])));
        line(format!("errors     {}", counts(&j["errors"])));
        line(format!("kinds      {}", counts(&j["kinds"])));
        line("latency ms         p50      p90      p99    p99.9      max".to_owned());
        for (label, key) in [
            ("from schedule", "from_schedule"),
            ("from send", "from_send"),
        ] {
            let p = &j["latency_ms"][key];
            let cell = |k: &str| {
                p[k].as_f64()
                    .map(|v| format!("{v:8.3}"))
                    .unwrap_or_else(|| format!("{:>8}", "-"))
            };
            line(format!(
                "  {label:<14}{} {} {} {} {}",
                cell("p50"),
                cell("p90"),
                cell("p99"),
                cell("p99_9"),
                cell("max")
            ));
        }
        for (title, key) in [("slowest traces", "slowest"), ("failed traces", "failed")] {
            let list = j[key].as_array().cloned().unwrap_or_default();
            if list.is_empty() {
                continue;
            }
            line(title.to_owned());
            for n in list {
                line(format!(
                    "  {:>9.3} ms  {:<8} {}",
                    n["latency_ms"].as_f64().unwrap_or_default(),
                    n["outcome"].as_str().unwrap_or_default(),
                    n["link"].as_str().unwrap_or_default()
                ));
            }
        }
        out
    }
}
