//! W3C Trace Context extraction by the letter of the specification. The SDK's
//! `TraceContextPropagator` accepts trace ids of the wrong length, looks only at the first
//! of several `traceparent` headers and reads only the first `tracestate`; here a malformed
//! context is refused (the request then starts a new trace) and split headers are combined.
//! Injection is the SDK's, which writes well-formed headers.

use std::str::FromStr as _;

use opentelemetry::{
    Context,
    propagation::{Extractor, Injector, TextMapPropagator, text_map_propagator::FieldIter},
    trace::{SpanContext, SpanId, TraceContextExt as _, TraceFlags, TraceId, TraceState},
};
use opentelemetry_sdk::propagation::TraceContextPropagator;

const TRACEPARENT: &str = "traceparent";
const TRACESTATE: &str = "tracestate";

#[derive(Debug, Default)]
pub struct W3cTraceContext {
    sdk: TraceContextPropagator,
}

impl W3cTraceContext {
    pub fn new() -> Self {
        Self::default()
    }
}

/// The fields of a valid `traceparent` (Trace Context Level 2, section 3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceParent {
    pub trace_id: TraceId,
    pub parent_id: SpanId,
    pub flags: u8,
}

fn lower_hex(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Parses one `traceparent` header value; `None` when the specification calls it invalid.
pub fn parse_traceparent(value: &str) -> Option<TraceParent> {
    // Optional whitespace around a header value is not part of the value (RFC 9110).
    let value = value.trim_matches([' ', '\t']);
    if value.len() < 55 || !value.is_ascii() {
        return None;
    }
    let version = &value[0..2];
    if !lower_hex(version) || version == "ff" {
        return None;
    }
    // Version 00 is exactly 55 characters; a later version may append fields after a dash.
    if version == "00" && value.len() != 55 {
        return None;
    }
    if value.len() > 55 && value.as_bytes()[55] != b'-' {
        return None;
    }
    let bytes = value.as_bytes();
    if bytes[2] != b'-' || bytes[35] != b'-' || bytes[52] != b'-' {
        return None;
    }
    let (trace_id, parent_id, flags) = (&value[3..35], &value[36..52], &value[53..55]);
    if !lower_hex(trace_id) || !lower_hex(parent_id) || !lower_hex(flags) {
        return None;
    }
    let trace_id = TraceId::from_hex(trace_id)
        .ok()
        .filter(|id| *id != TraceId::INVALID)?;
    let parent_id = SpanId::from_hex(parent_id)
        .ok()
        .filter(|id| *id != SpanId::INVALID)?;
    let flags = u8::from_str_radix(flags, 16).ok()?;
    Some(TraceParent {
        trace_id,
        parent_id,
        flags,
    })
}

/// Several `tracestate` headers are one list, in order (RFC 9110 field combination).
fn tracestate(extractor: &dyn Extractor) -> TraceState {
    let combined = match extractor.get_all(TRACESTATE) {
        Some(values) => values.join(","),
        None => extractor.get(TRACESTATE).unwrap_or_default().to_owned(),
    };
    TraceState::from_str(&combined).unwrap_or_default()
}

impl W3cTraceContext {
    fn extract_span_context(extractor: &dyn Extractor) -> Option<SpanContext> {
        let values = extractor
            .get_all(TRACEPARENT)
            .or_else(|| extractor.get(TRACEPARENT).map(|v| vec![v]))?;
        // Two traceparent headers cannot be told apart: the context is invalid.
        let [value] = values.as_slice() else {
            return None;
        };
        let parent = parse_traceparent(value)?;
        // Only the sampled bit is defined for version 00; other bits are not propagated.
        let flags = TraceFlags::new(parent.flags) & TraceFlags::SAMPLED;
        Some(SpanContext::new(
            parent.trace_id,
            parent.parent_id,
            flags,
            true,
            tracestate(extractor),
        ))
    }
}

impl TextMapPropagator for W3cTraceContext {
    fn inject_context(&self, cx: &Context, injector: &mut dyn Injector) {
        self.sdk.inject_context(cx, injector);
    }

    fn extract_with_context(&self, cx: &Context, extractor: &dyn Extractor) -> Context {
        match Self::extract_span_context(extractor) {
            Some(sc) => cx.with_remote_span_context(sc),
            None => cx.clone(),
        }
    }

    fn fields(&self) -> FieldIter<'_> {
        self.sdk.fields()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn the_specifications_example_parses() {
        let parent = parse_traceparent(VALID).unwrap();
        assert_eq!(
            parent.trace_id.to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(parent.parent_id.to_string(), "00f067aa0ba902b7");
        assert_eq!(parent.flags, 1);
    }

    #[test]
    fn malformed_values_are_refused() {
        for bad in [
            "",
            "garbage",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e47366-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00F067AA0BA902B7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0x",
            "00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01",
            "0g-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            assert_eq!(parse_traceparent(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_later_version_is_read_by_its_first_fields() {
        let later = "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-the-future-holds";
        assert_eq!(parse_traceparent(later), parse_traceparent(VALID));
        assert_eq!(
            parse_traceparent("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x"),
            None
        );
    }

    struct Headers(HashMap<&'static str, Vec<&'static str>>);

    impl Extractor for Headers {
        fn get(&self, key: &str) -> Option<&str> {
            self.0.get(key).and_then(|v| v.first().copied())
        }
        fn keys(&self) -> Vec<&str> {
            self.0.keys().copied().collect()
        }
        fn get_all(&self, key: &str) -> Option<Vec<&str>> {
            self.0.get(key).cloned()
        }
    }

    fn extract(headers: &[(&'static str, &'static str)]) -> SpanContext {
        let mut map: HashMap<&'static str, Vec<&'static str>> = HashMap::new();
        for (k, v) in headers {
            map.entry(k).or_default().push(v);
        }
        let cx = W3cTraceContext::new().extract(&Headers(map));
        cx.span().span_context().clone()
    }

    #[test]
    fn two_traceparent_headers_make_the_context_invalid() {
        let sc = extract(&[(TRACEPARENT, VALID), (TRACEPARENT, VALID)]);
        assert!(!sc.is_valid());
    }

    #[test]
    fn several_tracestate_headers_are_combined_in_order() {
        let sc = extract(&[
            (TRACEPARENT, VALID),
            (TRACESTATE, "rojo=00f067aa0ba902b7"),
            (TRACESTATE, "congo=t61rcWkgMzE"),
        ]);
        assert!(sc.is_valid() && sc.is_remote() && sc.is_sampled());
        assert_eq!(
            sc.trace_state().header(),
            "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"
        );
    }

    #[test]
    fn tracestate_without_a_valid_traceparent_is_dropped() {
        let sc = extract(&[(TRACESTATE, "rojo=00f067aa0ba902b7")]);
        assert!(!sc.is_valid());
        assert_eq!(sc.trace_state().header(), "");
    }
}
