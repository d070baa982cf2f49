//! The workshop's checks: `check N` reads the learner's Jaeger and says, in the workshop's
//! words, what their attempt at an exercise shows and whether it is the exercise's answer.
//!
//! A binary in the image, so a participant with only Docker runs `docker compose run --rm
//! check N` (compose points it at its Jaeger); `cargo xtask check N` is the same command for
//! the Docker-less path. [`exercises`] holds the one definition of every answer: the command
//! calls it for the learner, and xtask/tests/workshop.rs calls it after running the guide's
//! own commands. An attempt is the trace the learner names (`--trace`, from their
//! `traceresponse`), or else the newest trace that matches what the exercise asks them to send.

mod exercises;
pub mod guide;

use std::{io::Write, process::ExitCode, time::Duration};

use clap::Parser;
use local_jaeger::Query;
use serde_json::{Value, json};

pub use exercises::{EXERCISES, parts};

/// Where compose publishes Jaeger's UI, and where `cargo xtask up` starts it by default.
/// Compose's `check` service sets `JAEGER_URL` to its own network's name for it.
pub const DEFAULT_JAEGER_URL: &str = "http://localhost:16686";

#[derive(Debug, Parser)]
pub struct Options {
    /// The exercise (see docs/workshop.md); every exercise, one line each, without it.
    pub exercise: Option<u32>,
    /// The trace to check (the id in your answer's `traceresponse`), instead of the newest
    /// one that matches the exercise.
    #[arg(long, requires = "exercise")]
    pub trace: Option<String>,
    /// Only the exercise's command number PART (1 for the first), for an exercise with
    /// several whose system must be restarted in between (14).
    #[arg(long, requires = "exercise", value_parser = clap::value_parser!(u32).range(1..))]
    pub part: Option<u32>,
    /// One JSON document on stdout, for an instructor's script.
    #[arg(long)]
    pub json: bool,
    /// How long to wait for spans still on their way (services export in batches, a few
    /// seconds apart) before giving a verdict that is not a pass.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub wait: Duration,
    /// Jaeger's UI (its query API); else `JAEGER_URL`, else compose's.
    #[arg(long)]
    pub jaeger_url: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The attempt shows the exercise's answer.
    Pass,
    /// The attempt shows something else; the verdict says what.
    Fail,
    /// No attempt in Jaeger yet; the verdict says what to send.
    NothingYet,
}

impl Outcome {
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail => "fail",
            Outcome::NothingYet => "nothing yet",
        }
    }
}

/// What one part of an exercise (one of its commands) shows.
#[derive(Debug, Clone)]
pub struct Verdict {
    pub exercise: u32,
    /// The command of the exercise (0 for the first) this verdict is about.
    pub part: usize,
    pub outcome: Outcome,
    /// The trace looked at, when there was one.
    pub trace_id: Option<String>,
    /// In plain words: what the trace shows, and why that is (or is not) the answer.
    pub says: String,
    /// The same, as data (span counts, parents, tags), for `--json`.
    pub facts: Value,
    /// Spans seen in Jaeger: an unchanged count tells a settled trace.
    pub(crate) seen: usize,
}

impl Verdict {
    pub fn passed(&self) -> bool {
        self.outcome == Outcome::Pass
    }

    pub fn to_json(&self) -> Value {
        json!({
            "exercise": self.exercise,
            "part": self.part,
            "outcome": self.outcome.label(),
            "trace_id": self.trace_id,
            "says": self.says,
            "facts": self.facts,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("cannot reach Jaeger at {url} (set JAEGER_URL to the one you use): {reason}")]
    Unreachable { url: String, reason: String },
    #[error("there is no exercise {number}; the exercises are: {list}")]
    NoSuchExercise { number: u32, list: String },
    #[error("exercise {exercise} has no command {part}")]
    NoSuchPart { exercise: u32, part: usize },
    #[error(transparent)]
    Guide(#[from] guide::GuideError),
}

/// Checks part `part` of `exercise`: the trace `trace`, or the newest matching one. Polls
/// until the verdict is a pass on a settled Jaeger (the same span count three polls in a
/// row), or `patience` has passed: then the last verdict stands.
pub async fn check_part(
    jaeger: &Query,
    url: &str,
    guide: &[(u32, guide::Block)],
    exercise: u32,
    part: usize,
    trace: Option<&str>,
    patience: Duration,
) -> Result<Verdict, CheckError> {
    let deadline = tokio::time::Instant::now() + patience;
    let mut stable = 0;
    let mut last_seen = None;
    loop {
        let verdict = exercises::judge(jaeger, url, guide, exercise, part, trace).await?;
        let settled = last_seen == Some(verdict.seen);
        last_seen = Some(verdict.seen);
        match verdict.outcome {
            Outcome::Pass => {
                stable = if settled { stable + 1 } else { 0 };
                if stable >= 2 {
                    return Ok(verdict);
                }
            }
            Outcome::Fail | Outcome::NothingYet => stable = 0,
        }
        if tokio::time::Instant::now() >= deadline {
            return Ok(verdict);
        }
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
}

/// Every part of `exercise`; with `trace`, only the parts whose attempt that trace is
/// (all of them when it is none's, so that each says why).
pub async fn check_exercise(
    jaeger: &Query,
    url: &str,
    guide: &[(u32, guide::Block)],
    exercise: u32,
    trace: Option<&str>,
    patience: Duration,
) -> Result<Vec<Verdict>, CheckError> {
    let parts = exercises::parts(exercise).ok_or_else(|| no_such_exercise(exercise))?;
    let mut chosen: Vec<usize> = (0..parts).collect();
    if let Some(id) = trace
        && parts > 1
    {
        let fetched = jaeger
            .trace(id)
            .await
            .map_err(|reason| unreachable(url, reason))?;
        if let Some(t) = fetched {
            let matching: Vec<usize> = (0..parts)
                .filter(|part| exercises::is_attempt(exercise, *part, &t))
                .collect();
            if !matching.is_empty() {
                chosen = matching;
            }
        }
    }
    let mut verdicts = Vec::new();
    for part in chosen {
        verdicts.push(check_part(jaeger, url, guide, exercise, part, trace, patience).await?);
    }
    Ok(verdicts)
}

fn no_such_exercise(number: u32) -> CheckError {
    let list = guide::titles(guide::GUIDE)
        .into_iter()
        .map(|(n, title)| format!("{n} ({title})"))
        .collect::<Vec<_>>()
        .join(", ");
    CheckError::NoSuchExercise { number, list }
}

fn unreachable(url: &str, reason: String) -> CheckError {
    CheckError::Unreachable {
        url: url.to_owned(),
        // One line, whatever the HTTP client's message holds.
        reason: reason.split_whitespace().collect::<Vec<_>>().join(" "),
    }
}

/// The command, for the `check` binary and `cargo xtask check` alike (`name` starts its
/// error line): prints the verdicts; exit 0 when all pass, 1 otherwise, 2 when the question
/// cannot be asked (no such exercise, Jaeger unreachable). Printing into a closed pipe
/// (`check | head -1`) ends quietly, as Unix tools do.
pub async fn command(options: Options, name: &str) -> ExitCode {
    match run(options).await {
        Ok((passed, text)) => {
            let _ = std::io::stdout().write_all(text.as_bytes());
            match passed {
                true => ExitCode::SUCCESS,
                false => ExitCode::FAILURE,
            }
        }
        Err(error) => {
            let _ = writeln!(std::io::stderr(), "{name}: {error}");
            ExitCode::from(2)
        }
    }
}

/// The verdicts as text (or JSON), and whether they all pass.
pub async fn run(options: Options) -> Result<(bool, String), CheckError> {
    let url = options
        .jaeger_url
        .clone()
        .or_else(|| std::env::var("JAEGER_URL").ok().filter(|u| !u.is_empty()))
        .unwrap_or_else(|| DEFAULT_JAEGER_URL.to_owned());
    let url = url.trim_end_matches('/').to_owned();
    // A number that is no exercise is said before Jaeger is asked anything.
    if let Some(n) = options.exercise
        && exercises::parts(n).is_none()
    {
        return Err(no_such_exercise(n));
    }
    let jaeger = Query::new(&url);
    // One question first, so an unreachable Jaeger is said once, before any verdict.
    jaeger
        .services()
        .await
        .map_err(|reason| unreachable(&url, reason))?;
    let guide = guide::blocks(guide::GUIDE)?;
    let numbers: Vec<u32> = match options.exercise {
        Some(n) => vec![n],
        None => (1..=EXERCISES).collect(),
    };
    // Checking every exercise, only spans still arriving are waited for, not a pass.
    let patience = match options.exercise {
        Some(_) => options.wait,
        None => Duration::ZERO,
    };
    let mut all = Vec::new();
    for n in numbers {
        let trace = options.trace.as_deref();
        let verdicts = match options.part {
            Some(part) => {
                let part = part as usize - 1;
                vec![check_part(&jaeger, &url, &guide, n, part, trace, patience).await?]
            }
            None => check_exercise(&jaeger, &url, &guide, n, trace, patience).await?,
        };
        all.push((n, verdicts));
    }
    let passed = all
        .iter()
        .all(|(_, verdicts)| verdicts.iter().all(Verdict::passed));
    let mut text = String::new();
    if options.json {
        let exercises: Vec<Value> = all
            .iter()
            .map(|(n, verdicts)| {
                json!({
                    "exercise": n,
                    "outcome": overall(verdicts).label(),
                    "parts": verdicts.iter().map(Verdict::to_json).collect::<Vec<_>>(),
                })
            })
            .collect();
        let document = match options.exercise {
            Some(_) => exercises.into_iter().next().unwrap_or(Value::Null),
            None => json!({ "jaeger": url, "passed": passed, "exercises": exercises }),
        };
        text = format!("{document}\n");
    } else {
        for (n, verdicts) in &all {
            // Several parts: each says which command it is about, and how it went.
            let says: Vec<String> = match verdicts.as_slice() {
                [one] => vec![one.says.clone()],
                many => many
                    .iter()
                    .map(|v| format!("[{} {}] {}", v.part + 1, v.outcome.label(), v.says))
                    .collect(),
            };
            let separator = if options.exercise.is_some() {
                "\n  "
            } else {
                " | "
            };
            text.push_str(&format!(
                "exercise {n:>2}: {}: {}\n",
                overall(verdicts).label(),
                says.join(separator)
            ));
        }
    }
    Ok((passed, text))
}

/// An exercise's outcome: its worst part's.
fn overall(verdicts: &[Verdict]) -> Outcome {
    let rank = |o: Outcome| match o {
        Outcome::Pass => 0,
        Outcome::NothingYet => 1,
        Outcome::Fail => 2,
    };
    verdicts
        .iter()
        .map(|v| v.outcome)
        .max_by_key(|o| rank(*o))
        .unwrap_or(Outcome::NothingYet)
}
