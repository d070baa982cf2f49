//! What a run measured, in constant memory: HDR histograms (not samples), counters, and a
//! bounded list of the traces worth a look.

use std::{cmp::Reverse, collections::BTreeMap, collections::BinaryHeap, time::Duration};

use hdrhistogram::Histogram;

/// Microseconds, up to an hour, 3 significant digits.
fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("static histogram bounds")
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Notable {
    pub latency_us: u64,
    pub trace_id: String,
    pub outcome: String,
}

pub struct Stats {
    pub corrected: Histogram<u64>,
    pub uncorrected: Histogram<u64>,
    /// How late requests left compared with their schedule: load's own lag (timer
    /// resolution, a busy machine, a full --max-in-flight).
    pub send_lag: Histogram<u64>,
    pub scheduled: u64,
    pub sent: u64,
    pub completed: u64,
    pub missed: u64,
    pub status: BTreeMap<u16, u64>,
    pub errors: BTreeMap<&'static str, u64>,
    pub kinds: BTreeMap<&'static str, u64>,
    slowest: BinaryHeap<Reverse<Notable>>,
    slowest_cap: usize,
    pub failed: Vec<Notable>,
}

/// At most this many failed requests are kept for links; the counts cover all of them.
const FAILED_KEPT: usize = 10;

impl Stats {
    pub fn new(slowest_cap: usize) -> Self {
        Self {
            corrected: histogram(),
            uncorrected: histogram(),
            send_lag: histogram(),
            scheduled: 0,
            sent: 0,
            completed: 0,
            missed: 0,
            status: BTreeMap::new(),
            errors: BTreeMap::new(),
            kinds: BTreeMap::new(),
            slowest: BinaryHeap::new(),
            slowest_cap,
            failed: Vec::new(),
        }
    }

    /// One answered (or failed) request: `from_schedule` >= `from_send`.
    pub fn record(
        &mut self,
        from_schedule: Duration,
        from_send: Duration,
        outcome: Result<u16, &'static str>,
        trace_id: String,
    ) {
        let corrected = (from_schedule.as_micros() as u64).max(1);
        self.corrected.saturating_record(corrected);
        self.uncorrected
            .saturating_record((from_send.as_micros() as u64).max(1));
        self.send_lag
            .saturating_record((from_schedule.saturating_sub(from_send).as_micros() as u64).max(1));
        self.completed += 1;
        let (failed, outcome) = match outcome {
            Ok(status) => {
                *self.status.entry(status).or_default() += 1;
                (!(200..300).contains(&status), status.to_string())
            }
            Err(kind) => {
                *self.errors.entry(kind).or_default() += 1;
                (true, kind.to_owned())
            }
        };
        let notable = Notable {
            latency_us: corrected,
            trace_id,
            outcome,
        };
        if failed && self.failed.len() < FAILED_KEPT {
            self.failed.push(notable.clone());
        }
        if self.slowest_cap > 0 {
            self.slowest.push(Reverse(notable));
            if self.slowest.len() > self.slowest_cap {
                self.slowest.pop();
            }
        }
    }

    /// Slowest first.
    pub fn slowest(&self) -> Vec<Notable> {
        let mut list: Vec<Notable> = self.slowest.iter().map(|Reverse(n)| n.clone()).collect();
        list.sort_by(|a, b| b.cmp(a));
        list
    }

    pub fn errors_total(&self) -> u64 {
        self.errors.values().sum()
    }

    pub fn non_2xx(&self) -> u64 {
        self.status
            .iter()
            .filter(|(s, _)| !(200..300).contains(*s))
            .map(|(_, n)| n)
            .sum()
    }
}
