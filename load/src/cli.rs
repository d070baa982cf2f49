//! Flags, checked at start-up: a malformed one is refused with one line naming it and exit
//! code 2, before any request is sent.

use std::{
    io::{ErrorKind, Write as _},
    process::ExitCode,
    time::Duration,
};

use clap::Parser;
use url::Url;

use crate::schedule::{Schedule, Stage};

#[derive(Debug, Parser)]
#[command(
    name = "load",
    version,
    about = "Open-loop HTTP load; every request starts a trace"
)]
pub struct Args {
    /// Base URL of the service under load.
    #[arg(long, default_value = "http://localhost:8080")]
    pub target: String,
    /// Request path; `{id}` is replaced by an id drawn from --ids.
    #[arg(long, default_value = "/orders/{id}")]
    pub path: String,
    /// Constant rate, requests per second.
    #[arg(long, conflicts_with = "stages", allow_hyphen_values = true)]
    pub rate: Option<String>,
    /// Linear ramps, e.g. "10/s:30s,100/s:1m,0/s:10s" (each ramps from the previous target).
    #[arg(long)]
    pub stages: Option<String>,
    /// How long to run; 0 runs until Ctrl-C or SIGTERM. Default 10s (a staged run lasts its stages).
    #[arg(long, allow_hyphen_values = true)]
    pub duration: Option<String>,
    /// Stop after this many requests.
    #[arg(long, allow_hyphen_values = true)]
    pub requests: Option<String>,
    /// At most this many requests in flight; a request that cannot start before its
    /// timeout is counted as missed.
    #[arg(long, default_value = "256")]
    pub max_in_flight: String,
    /// Per-request timeout.
    #[arg(long, default_value = "5s")]
    pub timeout: String,
    /// Inclusive id range, e.g. 1..10000.
    #[arg(long, default_value = "1..10000")]
    pub ids: String,
    /// Draw ids from a Zipf distribution with this exponent (hot keys) instead of uniformly.
    #[arg(long, allow_hyphen_values = true)]
    pub zipf: Option<String>,
    /// Share of request kinds: ok (an id in range), not_found (beyond it), bad_id (not a
    /// number), slow (an id in range, users waits --slow: baggage demo.delay_ms),
    /// failing (an id in range, users fails: baggage demo.fail=users) and create (POST
    /// /orders of a new order for a seeded user, answered 201; --path and --ids do not
    /// apply), e.g. ok=80,create=20.
    #[arg(long, default_value = "ok=100")]
    pub mix: String,
    /// How long users waits on a `slow` request, e.g. 800ms (the services cap it at 5s).
    #[arg(long, default_value = "800ms")]
    pub slow: String,
    /// Baggage entries sent with every request, key=value (repeatable).
    #[arg(long)]
    pub baggage: Vec<String>,
    /// Summary format.
    #[arg(long, default_value = "table")]
    pub output: String,
    /// How many of the slowest requests' traces to link.
    #[arg(long, default_value = "5")]
    pub slowest: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Table,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Ok,
    NotFound,
    BadId,
    /// Ok, made slow in users by the workshop's demo fault.
    Slow,
    /// Ok, made to fail in users by the workshop's demo fault.
    Failing,
    /// A new order (`POST /orders`): the trace that goes on in orders-worker.
    Create,
}

impl Kind {
    const ALL: [Kind; 6] = [
        Kind::Ok,
        Kind::NotFound,
        Kind::BadId,
        Kind::Slow,
        Kind::Failing,
        Kind::Create,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Ok => "ok",
            Kind::NotFound => "not_found",
            Kind::BadId => "bad_id",
            Kind::Slow => "slow",
            Kind::Failing => "failing",
            Kind::Create => "create",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub target: Url,
    pub path: String,
    pub schedule: Schedule,
    /// `None`: until Ctrl-C or SIGTERM.
    pub duration: Option<Duration>,
    pub requests: Option<u64>,
    pub max_in_flight: usize,
    pub timeout: Duration,
    pub ids: (u64, u64),
    pub zipf: Option<f64>,
    pub mix: Vec<(Kind, u32)>,
    /// What a `slow` request asks users to wait.
    pub slow: Duration,
    pub baggage: Vec<(String, String)>,
    pub output: Output,
    pub slowest: usize,
}

/// How the process ends before running: a message and an exit code.
#[derive(Debug)]
pub struct Exit {
    pub code: u8,
    pub message: String,
}

impl Exit {
    fn usage(flag: &str, message: impl std::fmt::Display) -> Self {
        Self {
            code: 2,
            message: format!("load: {flag}: {message}"),
        }
    }

    pub fn report(self) -> ExitCode {
        if self.code == 0 {
            if let Err(failed) = print_stdout(&self.message) {
                return failed.report();
            }
        } else {
            // Not eprintln!: nothing is left to say when stderr is closed too.
            let _ = writeln!(std::io::stderr(), "{}", self.message);
        }
        ExitCode::from(self.code)
    }
}

/// Writes `text` to stdout. A reader that has gone (`load ... | head -1`) is no failure:
/// nobody reads the rest, so load goes on quietly, as Unix tools do, where `print!` would
/// panic. Any other failure (a full disk) is load's to report, exit code 1.
pub(crate) fn print_stdout(text: &str) -> Result<(), Exit> {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(e) if e.kind() != ErrorKind::BrokenPipe => Err(Exit {
            code: 1,
            message: format!("load: write to stdout: {e}"),
        }),
        _ => Ok(()),
    }
}

/// clap's own errors (unknown flag, missing value) as one line, exit 2; help and version
/// print as usual and exit 0.
pub fn clap_error(error: clap::Error) -> Exit {
    use clap::error::ErrorKind;
    match error.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => Exit {
            code: 0,
            message: error.render().to_string(),
        },
        _ => {
            let rendered = error.render().to_string();
            let first = rendered.lines().next().unwrap_or("invalid arguments");
            Exit {
                code: 2,
                message: format!("load: {}", first.trim_start_matches("error: ")),
            }
        }
    }
}

fn positive_f64(flag: &str, raw: &str) -> Result<f64, Exit> {
    match raw.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(Exit::usage(
            flag,
            format!("{raw:?} is not a positive number"),
        )),
    }
}

fn parse_duration(flag: &str, raw: &str) -> Result<Duration, Exit> {
    if raw.trim() == "0" {
        return Ok(Duration::ZERO);
    }
    humantime::parse_duration(raw.trim()).map_err(|e| {
        Exit::usage(
            flag,
            format!("{raw:?} is not a duration like 30s or 1m ({e})"),
        )
    })
}

fn parse_stages(raw: &str) -> Result<Vec<Stage>, Exit> {
    const FLAG: &str = "--stages";
    let stages: Vec<Stage> = raw
        .split(',')
        .map(|part| {
            let (rate, length) = part
                .trim()
                .split_once(':')
                .ok_or_else(|| Exit::usage(FLAG, format!("{part:?} is not RATE/s:DURATION")))?;
            let rate = rate
                .strip_suffix("/s")
                .ok_or_else(|| Exit::usage(FLAG, format!("{rate:?} is not a rate like 10/s")))?;
            let target_rate = match rate.parse::<f64>() {
                Ok(r) if r.is_finite() && r >= 0.0 => r,
                _ => return Err(Exit::usage(FLAG, format!("{rate:?} is not a rate"))),
            };
            let duration = parse_duration(FLAG, length)?;
            if duration.is_zero() {
                return Err(Exit::usage(FLAG, format!("{part:?} has no duration")));
            }
            Ok(Stage {
                target_rate,
                duration,
            })
        })
        .collect::<Result<_, _>>()?;
    if stages.iter().all(|s| s.target_rate == 0.0) {
        return Err(Exit::usage(
            FLAG,
            "every stage has rate 0: nothing would be sent",
        ));
    }
    Ok(stages)
}

fn parse_ids(raw: &str) -> Result<(u64, u64), Exit> {
    const FLAG: &str = "--ids";
    let bad = || Exit::usage(FLAG, format!("{raw:?} is not a range like 1..10000"));
    let (low, high) = raw.split_once("..").ok_or_else(bad)?;
    let low: u64 = low.trim().parse().map_err(|_| bad())?;
    let high: u64 = high.trim().parse().map_err(|_| bad())?;
    if low == 0 || low > high || high > i64::MAX as u64 {
        return Err(Exit::usage(
            FLAG,
            format!("{raw:?}: need 1 <= low <= high <= 2^63-1"),
        ));
    }
    Ok((low, high))
}

fn parse_mix(raw: &str) -> Result<Vec<(Kind, u32)>, Exit> {
    const FLAG: &str = "--mix";
    let mix: Vec<(Kind, u32)> = raw
        .split(',')
        .map(|part| {
            let (name, weight) = part
                .trim()
                .split_once('=')
                .ok_or_else(|| Exit::usage(FLAG, format!("{part:?} is not kind=weight")))?;
            let kind = Kind::ALL
                .into_iter()
                .find(|kind| kind.name() == name.trim())
                .ok_or_else(|| {
                    let known: Vec<&str> = Kind::ALL.iter().map(|k| k.name()).collect();
                    Exit::usage(
                        FLAG,
                        format!("unknown kind {:?} ({})", name.trim(), known.join(", ")),
                    )
                })?;
            let weight: u32 = weight.trim().parse().map_err(|_| {
                Exit::usage(FLAG, format!("{weight:?} is not a whole-number weight"))
            })?;
            Ok((kind, weight))
        })
        .collect::<Result<_, _>>()?;
    if mix.iter().map(|(_, w)| u64::from(*w)).sum::<u64>() == 0 {
        return Err(Exit::usage(FLAG, "weights add up to 0"));
    }
    Ok(mix)
}

impl Args {
    pub fn plan(self) -> Result<Plan, Exit> {
        let target = Url::parse(&self.target)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
            .ok_or_else(|| {
                Exit::usage(
                    "--target",
                    format!("{:?} is not an http:// URL", self.target),
                )
            })?;
        if !self.path.starts_with('/') {
            return Err(Exit::usage(
                "--path",
                format!("{:?} must start with /", self.path),
            ));
        }
        let schedule = match (&self.rate, &self.stages) {
            (_, Some(stages)) => Schedule::Stages(parse_stages(stages)?),
            (Some(rate), None) => Schedule::Constant(positive_f64("--rate", rate)?),
            (None, None) => Schedule::Constant(10.0),
        };
        let duration = match (&self.duration, schedule.length()) {
            (Some(raw), _) => Some(parse_duration("--duration", raw)?).filter(|d| !d.is_zero()),
            (None, Some(length)) => Some(length),
            (None, None) => Some(Duration::from_secs(10)),
        };
        let requests = self
            .requests
            .as_deref()
            .map(|raw| match raw.trim().parse::<u64>() {
                Ok(n) if n > 0 => Ok(n),
                _ => Err(Exit::usage(
                    "--requests",
                    format!("{raw:?} is not a positive count"),
                )),
            })
            .transpose()?;
        let max_in_flight = match self.max_in_flight.trim().parse::<usize>() {
            Ok(n) if n > 0 => n,
            _ => {
                return Err(Exit::usage(
                    "--max-in-flight",
                    format!("{:?} is not a positive count", self.max_in_flight),
                ));
            }
        };
        let timeout = parse_duration("--timeout", &self.timeout)?;
        if timeout.is_zero() {
            return Err(Exit::usage("--timeout", "must be more than 0"));
        }
        let baggage = self
            .baggage
            .iter()
            .map(|entry| {
                entry
                    .split_once('=')
                    .filter(|(k, _)| !k.trim().is_empty())
                    .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                    .ok_or_else(|| Exit::usage("--baggage", format!("{entry:?} is not key=value")))
            })
            .collect::<Result<_, _>>()?;
        let slow = parse_duration("--slow", &self.slow)?;
        if slow.is_zero() {
            return Err(Exit::usage("--slow", "must be more than 0"));
        }
        let output = match self.output.as_str() {
            "table" => Output::Table,
            "json" => Output::Json,
            other => return Err(Exit::usage("--output", format!("{other:?}: table or json"))),
        };
        let slowest =
            self.slowest.trim().parse().map_err(|_| {
                Exit::usage("--slowest", format!("{:?} is not a count", self.slowest))
            })?;
        Ok(Plan {
            target,
            path: self.path,
            schedule,
            duration,
            requests,
            max_in_flight,
            timeout,
            ids: parse_ids(&self.ids)?,
            zipf: self
                .zipf
                .as_deref()
                .map(|z| positive_f64("--zipf", z))
                .transpose()?,
            mix: parse_mix(&self.mix)?,
            slow,
            baggage,
            output,
            slowest,
        })
    }
}
