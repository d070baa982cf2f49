//! When each request is due: a constant rate, or linear ramps between stage targets.

use std::time::Duration;

#[derive(Debug, Clone, PartialEq)]
pub struct Stage {
    /// The rate reached at the end of the stage, ramping from the previous stage's target
    /// (the first stage ramps from 0).
    pub target_rate: f64,
    pub duration: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Schedule {
    /// Requests per second, forever (bounded by `--duration` / `--requests`).
    Constant(f64),
    Stages(Vec<Stage>),
}

impl Schedule {
    /// The offset from the start at which request `n` (0-based) is due; `None` once the
    /// schedule has ended.
    pub fn due(&self, n: u64) -> Option<Duration> {
        // Request n is due when the expected count of sends reaches n + 0.5: spreads the
        // requests evenly and starts the first one half an interval in.
        let count = n as f64 + 0.5;
        match self {
            Schedule::Constant(rate) if *rate > 0.0 => Some(Duration::from_secs_f64(count / rate)),
            Schedule::Constant(_) => None,
            Schedule::Stages(stages) => {
                let (mut offset, mut sent, mut from) = (0.0_f64, 0.0_f64, 0.0_f64);
                for stage in stages {
                    let d = stage.duration.as_secs_f64();
                    let to = stage.target_rate;
                    let in_stage = (from + to) / 2.0 * d;
                    if sent + in_stage >= count && in_stage > 0.0 {
                        let t = time_for_count(from, to, d, count - sent);
                        return Some(Duration::from_secs_f64(offset + t));
                    }
                    sent += in_stage;
                    offset += d;
                    from = to;
                }
                None
            }
        }
    }

    /// The total length of a staged schedule; `None` for a constant rate.
    pub fn length(&self) -> Option<Duration> {
        match self {
            Schedule::Constant(_) => None,
            Schedule::Stages(stages) => Some(stages.iter().map(|s| s.duration).sum()),
        }
    }

    /// The rate asked at `t`, for the progress line and the summary.
    pub fn rate_at(&self, t: Duration) -> f64 {
        match self {
            Schedule::Constant(rate) => *rate,
            Schedule::Stages(stages) => {
                let (mut offset, mut from) = (Duration::ZERO, 0.0);
                for stage in stages {
                    if t < offset + stage.duration {
                        let f = (t - offset).as_secs_f64() / stage.duration.as_secs_f64();
                        return from + (stage.target_rate - from) * f;
                    }
                    offset += stage.duration;
                    from = stage.target_rate;
                }
                0.0
            }
        }
    }
}

/// Within a stage whose rate ramps linearly from `r0` to `r1` over `d` seconds, the time
/// at which `n` requests have been due: solves r0 t + (r1 - r0) t^2 / (2d) = n.
fn time_for_count(r0: f64, r1: f64, d: f64, n: f64) -> f64 {
    let a = (r1 - r0) / (2.0 * d);
    if a.abs() < 1e-12 {
        return n / r0;
    }
    let disc = (r0 * r0 + 4.0 * a * n).max(0.0);
    ((-r0 + disc.sqrt()) / (2.0 * a)).clamp(0.0, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(d: Option<Duration>) -> f64 {
        d.unwrap().as_secs_f64()
    }

    #[test]
    fn a_constant_rate_spreads_requests_evenly() {
        let s = Schedule::Constant(10.0);
        assert!((secs(s.due(0)) - 0.05).abs() < 1e-9);
        assert!((secs(s.due(10)) - 1.05).abs() < 1e-9);
    }

    #[test]
    fn a_ramp_sends_the_area_under_the_rate() {
        // 0 -> 100/s over 10 s: 500 requests; then 100/s for 1 s: 100 more; then it ends.
        let s = Schedule::Stages(vec![
            Stage {
                target_rate: 100.0,
                duration: Duration::from_secs(10),
            },
            Stage {
                target_rate: 100.0,
                duration: Duration::from_secs(1),
            },
        ]);
        let last_of_ramp = secs(s.due(499));
        assert!(last_of_ramp > 9.9 && last_of_ramp <= 10.0, "{last_of_ramp}");
        // Half of the ramp's requests are due at t = 10 / sqrt(2).
        assert!((secs(s.due(249)) - 10.0 / 2f64.sqrt()).abs() < 0.02);
        assert!(secs(s.due(550)) > 10.0);
        assert_eq!(s.due(600), None);
        assert_eq!(s.rate_at(Duration::from_secs(5)), 50.0);
    }

    #[test]
    fn due_times_never_go_backwards() {
        let s = Schedule::Stages(vec![
            Stage {
                target_rate: 10.0,
                duration: Duration::from_secs(3),
            },
            Stage {
                target_rate: 50.0,
                duration: Duration::from_secs(2),
            },
            Stage {
                target_rate: 0.0,
                duration: Duration::from_secs(2),
            },
        ]);
        let mut last = Duration::ZERO;
        let mut n = 0;
        while let Some(t) = s.due(n) {
            assert!(t >= last, "request {n}");
            last = t;
            n += 1;
        }
        // 15 + 60 + 50 requests.
        assert_eq!(n, 125);
    }
}
