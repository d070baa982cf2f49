//! Groups spans by trace, in bounded memory.

use std::{
    collections::{HashMap, VecDeque},
    time::{Duration, Instant},
};

use otlp_receiver::ReceivedSpan;

#[derive(Debug, Clone)]
pub struct Trace {
    pub trace_id: String,
    pub spans: Vec<ReceivedSpan>,
}

struct Buffer {
    spans: Vec<ReceivedSpan>,
    last_arrival: Instant,
}

/// Holds at most `max_traces` open traces; past that the oldest is dropped (and counted),
/// so the viewer can run through a whole workshop under load.
pub struct Assembler {
    open: HashMap<String, Buffer>,
    order: VecDeque<String>,
    max_traces: usize,
    pub dropped: u64,
}

impl Assembler {
    pub fn new(max_traces: usize) -> Self {
        Self {
            open: HashMap::new(),
            order: VecDeque::new(),
            max_traces: max_traces.max(1),
            dropped: 0,
        }
    }

    pub fn open_traces(&self) -> usize {
        self.open.len()
    }

    pub fn add(&mut self, spans: Vec<ReceivedSpan>, now: Instant) {
        for span in spans {
            match self.open.get_mut(&span.trace_id) {
                Some(buffer) => {
                    buffer.spans.push(span);
                    buffer.last_arrival = now;
                }
                None => {
                    while self.open.len() >= self.max_traces {
                        let Some(oldest) = self.order.pop_front() else {
                            break;
                        };
                        if self.open.remove(&oldest).is_some() {
                            self.dropped += 1;
                        }
                    }
                    self.order.push_back(span.trace_id.clone());
                    self.open.insert(
                        span.trace_id.clone(),
                        Buffer {
                            spans: vec![span],
                            last_arrival: now,
                        },
                    );
                }
            }
        }
    }

    /// The traces no span has joined for `quiet`, oldest first; they leave the buffer.
    pub fn take_quiet(&mut self, now: Instant, quiet: Duration) -> Vec<Trace> {
        let mut done = Vec::new();
        let open = &mut self.open;
        self.order.retain(|id| match open.get(id) {
            Some(buffer) if now.duration_since(buffer.last_arrival) >= quiet => {
                let buffer = open.remove(id).expect("present");
                done.push(Trace {
                    trace_id: id.clone(),
                    spans: buffer.spans,
                });
                false
            }
            Some(_) => true,
            None => false,
        });
        done
    }

    /// Everything still open (at exit).
    pub fn take_all(&mut self) -> Vec<Trace> {
        self.take_quiet(Instant::now() + Duration::from_secs(3600), Duration::ZERO)
    }
}
