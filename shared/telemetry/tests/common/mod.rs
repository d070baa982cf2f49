//! What the log-line tests share: a writer that keeps what it is given, and the lines a
//! service writes, in the order that once lost one (tokio-rs/tracing#2519).

use std::{
    io,
    sync::{Arc, Mutex},
};

use tracing::Level;

/// Log lines written to memory.
#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    pub fn lines(&self) -> Vec<String> {
        let bytes = self.0.lock().expect("captured lines").clone();
        String::from_utf8(bytes)
            .expect("log lines are UTF-8")
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

impl io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .expect("captured lines")
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'w> tracing_subscriber::fmt::MakeWriter<'w> for Captured {
    type Writer = Self;
    fn make_writer(&'w self) -> Self {
        self.clone()
    }
}

/// Bare questions, as sqlx asks `log_enabled!(Debug)` after every query and reqwest before
/// connecting: which the default `RUST_LOG` answers "no", followed by no event. The `log`
/// ones reach the subscriber's `enabled` directly, through tracing-log, with no callsite
/// interest in between.
fn bare_question() {
    let _ = tracing::enabled!(Level::DEBUG);
    let _ = log::log_enabled!(log::Level::Debug);
    let _ = log::log_enabled!(target: "opentelemetry_sdk", log::Level::Info);
}

/// Writes a service's kind of lines around spans and bare questions; returns the span the
/// middle lines are written in and the messages that must print, in order.
pub fn write_lines() -> (tracing::Span, Vec<&'static str>) {
    tracing::info!("before any span");
    bare_question();
    tracing::info!("after a bare question");
    let span = tracing::info_span!("visit", order.id = 7_i64);
    span.in_scope(|| {
        tracing::info!("inside a span");
        bare_question();
        tracing::warn!("inside a span, after a bare question");
        tracing::debug!("a debug line: RUST_LOG=info keeps it out");
    });
    bare_question();
    tracing::info!("after the span");
    // The same callsite again: its interest is cached after the first time.
    for _ in 0..2 {
        bare_question();
        tracing::info!("the same line twice");
    }
    let expected = vec![
        "before any span",
        "after a bare question",
        "inside a span",
        "inside a span, after a bare question",
        "after the span",
        "the same line twice",
        "the same line twice",
    ];
    (span, expected)
}

/// Each line of `lines` ends with one message of `expected`, in order, and nothing else
/// printed.
pub fn assert_printed(lines: &[String], expected: &[&str]) {
    assert_eq!(
        lines.len(),
        expected.len(),
        "lines printed:\n{}",
        lines.join("\n")
    );
    for (line, message) in lines.iter().zip(expected) {
        assert!(
            line.ends_with(message),
            "expected a line ending with {message:?}, got {line:?}; all lines:\n{}",
            lines.join("\n")
        );
    }
}
