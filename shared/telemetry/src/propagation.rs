//! W3C Trace Context (Level 2) by the letter of the specification. The SDK's
//! `TraceContextPropagator` accepts trace ids of the wrong length, looks only at the first
//! of several `traceparent` headers, reads only the first `tracestate`, throws the whole
//! `tracestate` away for one bad member and never propagates the Level 2 `random` flag;
//! here a malformed context is refused (the request then starts a new trace), split headers
//! are combined, bad or surplus `tracestate` members are dropped one by one, and the
//! `sampled` and `random` flags travel on.

use opentelemetry::{
    Context,
    propagation::{Extractor, Injector, TextMapPropagator, text_map_propagator::FieldIter},
    trace::{SpanContext, SpanId, TraceContextExt as _, TraceFlags, TraceId, TraceState},
};
use opentelemetry_sdk::propagation::TraceContextPropagator;

const TRACEPARENT: &str = "traceparent";
const TRACESTATE: &str = "tracestate";
/// The flags version 00 defines: `sampled` (Level 1) and `random` (Level 2).
const KNOWN_FLAGS: u8 = 0x01 | 0x02;
/// "There can be a maximum of 32 list-members in a list."
const MAX_TRACESTATE_MEMBERS: usize = 32;

#[derive(Debug, Default)]
pub struct W3cTraceContext {
    sdk: TraceContextPropagator,
}

impl W3cTraceContext {
    pub fn new() -> Self {
        Self::default()
    }
}

/// `00-<trace-id>-<parent-id>-<flags>`, the value of `traceparent` (and of `traceresponse`).
/// Written by hand: `format!` through the ids' `Display` was a tenth of what an unsampled
/// request cost a service, for a 55-byte string (callgrind, docs/benchmarks.md).
pub fn format_traceparent(trace_id: TraceId, span_id: SpanId, flags: u8) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = Vec::with_capacity(55);
    out.extend_from_slice(b"00-");
    let hex = |out: &mut Vec<u8>, bytes: &[u8]| {
        for b in bytes {
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0xf)]);
        }
    };
    hex(&mut out, &trace_id.to_bytes());
    out.push(b'-');
    hex(&mut out, &span_id.to_bytes());
    out.push(b'-');
    hex(&mut out, &[flags]);
    String::from_utf8(out).expect("ASCII hex digits and dashes")
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

/// Several `tracestate` headers are one list, in order (RFC 9110 field combination). A
/// member that breaks the grammar is dropped, as is a repeated key (the first one stands)
/// and any member past the 32nd; the rest of the list survives.
fn tracestate(extractor: &dyn Extractor) -> TraceState {
    let values = match extractor.get_all(TRACESTATE) {
        Some(values) => values,
        None => extractor.get(TRACESTATE).into_iter().collect(),
    };
    let mut members: Vec<(&str, &str)> = Vec::new();
    for member in values.iter().flat_map(|v| v.split(',')) {
        let member = member.trim_matches([' ', '\t']);
        if member.is_empty() {
            continue;
        }
        let Some((key, value)) = member.split_once('=') else {
            continue;
        };
        if valid_key(key) && valid_value(value) && !members.iter().any(|(k, _)| *k == key) {
            members.push((key, value));
        }
    }
    members.truncate(MAX_TRACESTATE_MEMBERS);
    TraceState::from_key_value(members).unwrap_or_default()
}

fn key_char(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-' | b'*' | b'/')
}

/// `simple-key` or `tenant-id@system-id` (section 3.3.1.3.1).
fn valid_key(key: &str) -> bool {
    let bytes = key.as_bytes();
    match key.split_once('@') {
        None => {
            (1..=256).contains(&bytes.len())
                && bytes[0].is_ascii_lowercase()
                && bytes.iter().all(|&b| key_char(b))
        }
        Some((tenant, system)) => {
            let (t, s) = (tenant.as_bytes(), system.as_bytes());
            (1..=241).contains(&t.len())
                && (t[0].is_ascii_lowercase() || t[0].is_ascii_digit())
                && t.iter().all(|&b| key_char(b))
                && (1..=14).contains(&s.len())
                && s[0].is_ascii_lowercase()
                && s.iter().all(|&b| key_char(b))
        }
    }
}

/// Up to 256 printable ASCII characters except `,` and `=`, not ending in a space.
fn valid_value(value: &str) -> bool {
    let nblk = |b: u8| (0x21..=0x7e).contains(&b) && b != b',' && b != b'=';
    let bytes = value.as_bytes();
    (1..=256).contains(&bytes.len())
        && bytes.iter().all(|&b| b == b' ' || nblk(b))
        && bytes.last().copied().is_some_and(nblk)
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
        // Bits no version defines yet are not propagated (section 3.2.2.5).
        let flags = TraceFlags::new(parent.flags & KNOWN_FLAGS);
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
    /// The SDK's injection masks every flag but `sampled`; this keeps `random` too.
    fn inject_context(&self, cx: &Context, injector: &mut dyn Injector) {
        let span = cx.span();
        let sc = span.span_context();
        if !sc.is_valid() {
            return;
        }
        let flags = sc.trace_flags().to_u8() & KNOWN_FLAGS;
        injector.set(
            TRACEPARENT,
            format_traceparent(sc.trace_id(), sc.span_id(), flags),
        );
        let state = sc.trace_state().header();
        if !state.is_empty() {
            injector.set(TRACESTATE, state);
        }
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
    fn a_traceparent_is_written_as_format_would() {
        let (trace_id, span_id) = (
            TraceId::from(0x0af7651916cd43dd8448eb211c80319c_u128),
            SpanId::from(0xb7ad6b7169203331_u64),
        );
        for flags in [0x00, 0x01, 0x03, 0xff] {
            assert_eq!(
                format_traceparent(trace_id, span_id, flags),
                format!("00-{trace_id}-{span_id}-{flags:02x}")
            );
        }
    }

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
    fn bad_and_repeated_tracestate_members_are_dropped_one_by_one() {
        let sc = extract(&[
            (TRACEPARENT, VALID),
            (
                TRACESTATE,
                "rojo=00f067aa0ba902b7, ,Bad=1,congo=t61rcWkgMzE,nokey,rojo=again,\
                 fw529a3039@dt=1,0x@system=2,tenant@toolongsystemid=3,tab=a\tb,a=b=c",
            ),
        ]);
        assert_eq!(
            sc.trace_state().header(),
            "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE,fw529a3039@dt=1,0x@system=2"
        );
    }

    #[test]
    fn tracestate_keeps_at_most_32_members() {
        let members: Vec<String> = (0..40).map(|i| format!("k{i}=v{i}")).collect();
        let header: &'static str = Box::leak(members.join(",").into_boxed_str());
        let sc = extract(&[(TRACEPARENT, VALID), (TRACESTATE, header)]);
        let kept: Vec<String> = sc
            .trace_state()
            .header()
            .split(',')
            .map(str::to_owned)
            .collect();
        assert_eq!(kept, members[..32]);
    }

    #[test]
    fn the_random_flag_is_propagated_and_unknown_flags_are_not() {
        let random = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03";
        let unknown = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-ff";
        assert_eq!(
            extract(&[(TRACEPARENT, random)]).trace_flags().to_u8(),
            0x03
        );
        assert_eq!(
            extract(&[(TRACEPARENT, unknown)]).trace_flags().to_u8(),
            0x03
        );

        let sc = extract(&[(TRACEPARENT, random), (TRACESTATE, "rojo=1")]);
        let cx = Context::new().with_remote_span_context(sc);
        let mut headers: HashMap<String, String> = HashMap::new();
        W3cTraceContext::new().inject_context(&cx, &mut headers);
        assert_eq!(headers[TRACEPARENT], random);
        assert_eq!(headers[TRACESTATE], "rojo=1");
    }

    #[test]
    fn tracestate_without_a_valid_traceparent_is_dropped() {
        let sc = extract(&[(TRACESTATE, "rojo=00f067aa0ba902b7")]);
        assert!(!sc.is_valid());
        assert_eq!(sc.trace_state().header(), "");
    }
}
