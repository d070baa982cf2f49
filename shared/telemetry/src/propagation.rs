//! W3C Trace Context (Level 2) by the letter of the specification. The SDK's
//! `TraceContextPropagator` accepts trace ids of the wrong length, looks only at the first
//! of several `traceparent` headers, reads only the first `tracestate`, checks its keys by
//! the Level 1 grammar and never propagates the Level 2 `random` flag; here a malformed
//! context is refused (the request then starts a new trace), split headers are combined, a
//! `tracestate` list that breaks the Level 2 grammar anywhere is discarded whole, as the
//! specification says, and the `sampled` and `random` flags travel on. The rules are those
//! the W3C test suite checks at SPEC_LEVEL=2 STRICT_LEVEL=2.

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

/// The request's headers for extraction. opentelemetry-http's `HeaderExtractor` leaves out a
/// value that is not visible ASCII, so of two `traceparent` headers one would look like the
/// only one, and a `tracestate` list would lose a member instead of being discarded. Here
/// such a value stays in the list as one that breaks every grammar.
pub struct RequestHeaders<'a>(pub &'a http::HeaderMap);

/// Fails the traceparent, tracestate and baggage grammars alike.
const UNREADABLE: &str = "\u{7f}";

impl Extractor for RequestHeaders<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .get(key)
            .map(|value| value.to_str().unwrap_or(UNREADABLE))
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }

    fn get_all(&self, key: &str) -> Option<Vec<&str>> {
        let values: Vec<&str> = self
            .0
            .get_all(key)
            .iter()
            .map(|value| value.to_str().unwrap_or(UNREADABLE))
            .collect();
        (!values.is_empty()).then_some(values)
    }
}

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
fn format_traceparent(trace_id: TraceId, span_id: SpanId, flags: u8) -> String {
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

/// The `tracestate` list as received, kept beside the span context when it holds a key
/// opentelemetry's `TraceState` refuses. opentelemetry 0.32's
/// `TraceState` checks keys by the Level 1 grammar (one `@`, a system id of at most 14
/// characters) and has no unchecked constructor, so `foo@@bar` or `t@` plus 15 characters,
/// valid in Level 2, cannot live in it; context values travel from the server span to every
/// span under it (tracing-opentelemetry builds each child's context from its parent's), so
/// the list reaches the calls a request makes as it came.
#[derive(Debug, Clone)]
struct ReceivedTraceState {
    trace_id: TraceId,
    header: String,
}

/// Several `tracestate` headers are one list, in order (RFC 9110 field combination), read
/// whole or not at all (section 3.3.1.1): one member that breaks the grammar, or a 33rd,
/// discards the list. Empty members are allowed and skipped; of a repeated key the first
/// stands (the specification allows keeping or dropping the repeat).
fn tracestate(extractor: &dyn Extractor) -> Option<Vec<(&str, &str)>> {
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
        let (key, value) = member.split_once('=')?;
        if !valid_key(key) || !valid_value(value) {
            return None;
        }
        if !members.iter().any(|(k, _)| *k == key) {
            members.push((key, value));
        }
    }
    (members.len() <= MAX_TRACESTATE_MEMBERS).then_some(members)
}

/// `key = ( lcalpha / DIGIT ) 0*255 ( keychar )`, `keychar = lcalpha / DIGIT / "_" / "-" /
/// "*" / "/" / "@"` (Level 2, section 3.3.1.3.1).
fn valid_key(key: &str) -> bool {
    let bytes = key.as_bytes();
    (1..=256).contains(&bytes.len())
        && (bytes[0].is_ascii_lowercase() || bytes[0].is_ascii_digit())
        && bytes.iter().all(|&b| {
            b.is_ascii_lowercase()
                || b.is_ascii_digit()
                || matches!(b, b'_' | b'-' | b'*' | b'/' | b'@')
        })
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
    fn extract_span_context(
        extractor: &dyn Extractor,
    ) -> Option<(SpanContext, Option<ReceivedTraceState>)> {
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
        let members = tracestate(extractor).unwrap_or_default();
        // Nearly always the SDK's TraceState holds the whole list, and it is all that travels.
        // Only for a key it refuses is the list kept beside it, and the spans record (as
        // OTLP's trace_state) the members it can hold.
        let (recorded, received) = match TraceState::from_key_value(members.iter().copied()) {
            Ok(whole) => (whole, None),
            Err(_) => {
                let held = members
                    .iter()
                    .filter(|(k, v)| TraceState::NONE.insert(*k, *v).is_ok())
                    .copied();
                let header = members
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(",");
                (
                    TraceState::from_key_value(held).unwrap_or_default(),
                    Some(ReceivedTraceState {
                        trace_id: parent.trace_id,
                        header,
                    }),
                )
            }
        };
        let sc = SpanContext::new(parent.trace_id, parent.parent_id, flags, true, recorded);
        Some((sc, received))
    }
}

/// A received `random` flag, kept beside the span context: the SDK keeps the caller's flags
/// on the spans it records, but a span its sampler drops gets none, and the flag describes
/// the trace id, which the unsampled request still passes on.
#[derive(Debug, Clone, Copy)]
struct RandomTraceId(TraceId);

const RANDOM: u8 = 0x02;

/// The `traceparent` that `cx` passes on (also the server's `traceresponse`); none for a
/// context without a valid span. The SDK's injection masks every flag but `sampled`; this
/// keeps `random` too.
pub fn traceparent(cx: &Context) -> Option<String> {
    let span = cx.span();
    let sc = span.span_context();
    if !sc.is_valid() {
        return None;
    }
    let mut flags = sc.trace_flags().to_u8() & KNOWN_FLAGS;
    if cx
        .get::<RandomTraceId>()
        .is_some_and(|random| random.0 == sc.trace_id())
    {
        flags |= RANDOM;
    }
    Some(format_traceparent(sc.trace_id(), sc.span_id(), flags))
}

impl TextMapPropagator for W3cTraceContext {
    fn inject_context(&self, cx: &Context, injector: &mut dyn Injector) {
        let Some(traceparent) = traceparent(cx) else {
            return;
        };
        injector.set(TRACEPARENT, traceparent);
        let span = cx.span();
        let sc = span.span_context();
        // Nothing of ours edits a tracestate (no sampler adds a member), so a list kept as
        // received is the one to pass on, within its own trace.
        let state = match cx.get::<ReceivedTraceState>() {
            Some(received) if received.trace_id == sc.trace_id() => received.header.clone(),
            _ => sc.trace_state().header(),
        };
        if !state.is_empty() {
            injector.set(TRACESTATE, state);
        }
    }

    fn extract_with_context(&self, cx: &Context, extractor: &dyn Extractor) -> Context {
        let Some((sc, received)) = Self::extract_span_context(extractor) else {
            return cx.clone();
        };
        let random = sc.trace_flags().to_u8() & RANDOM != 0;
        let trace_id = sc.trace_id();
        let mut cx = cx.with_remote_span_context(sc);
        if let Some(received) = received {
            cx = cx.with_value(received);
        }
        if random {
            cx = cx.with_value(RandomTraceId(trace_id));
        }
        cx
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

    /// The `tracestate` a service passes on after receiving `headers` with a valid parent.
    fn passed_on(tracestate: &[&'static str]) -> Option<String> {
        let mut headers = vec![(TRACEPARENT, VALID)];
        headers.extend(tracestate.iter().map(|v| (TRACESTATE, *v)));
        let mut map: HashMap<&'static str, Vec<&'static str>> = HashMap::new();
        for (k, v) in headers {
            map.entry(k).or_default().push(v);
        }
        let cx = W3cTraceContext::new().extract(&Headers(map));
        let mut out: HashMap<String, String> = HashMap::new();
        W3cTraceContext::new().inject_context(&cx, &mut out);
        out.remove(TRACESTATE)
    }

    #[test]
    fn one_bad_member_discards_the_whole_tracestate() {
        for bad in [
            "rojo=1,Bad=1",
            "foo =1",
            "foo.bar=1",
            "@foo=1,bar=2",
            "foo=bar=baz",
            "foo=,bar=3",
            "nokey,bar=2",
            "tab=a\tb",
            "v=del\u{7f}",
        ] {
            assert_eq!(passed_on(&[bad]), None, "{bad:?}");
        }
        let long_key: &'static str = format!("{}=1", "z".repeat(257)).leak();
        assert_eq!(passed_on(&["foo=1", long_key]), None, "a 257-character key");
        let long_value: &'static str = format!("foo={}", "v".repeat(257)).leak();
        assert_eq!(passed_on(&[long_value]), None, "a 257-character value");
    }

    #[test]
    fn level_2_keys_empty_members_and_whitespace_are_accepted() {
        for (sent, kept) in [
            (&["foo@=1,bar=2"][..], "foo@=1,bar=2"),
            (&["foo@@bar=1,bar=2"], "foo@@bar=1,bar=2"),
            (&["foo@bar@baz=1,bar=2"], "foo@bar@baz=1,bar=2"),
            (&["a=1,,b=2", " , "], "a=1,b=2"),
            (&["foo=1 \t , \t bar=2, \t baz=3"], "foo=1,bar=2,baz=3"),
            (&["", "foo=1"], "foo=1"),
            (&["foo=1,foo=2", "foo=3"], "foo=1"),
            (
                &["rojo=00f067aa0ba902b7", "congo=t61rcWkgMzE"],
                "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE",
            ),
        ] {
            assert_eq!(passed_on(sent).as_deref(), Some(kept), "{sent:?}");
        }
        let key_256: &'static str = format!("{}=1", "z".repeat(256)).leak();
        assert_eq!(passed_on(&[key_256]).as_deref(), Some(key_256));
        for key in [
            format!("{}@{}", "t".repeat(241), "v".repeat(14)),
            format!("{}@v", "t".repeat(242)),
            format!("t@{}", "v".repeat(15)),
        ] {
            let member: &'static str = format!("foo=1,{key}=1").leak();
            assert_eq!(passed_on(&[member]).as_deref(), Some(member));
        }
        let value: String = (0x20_u8..=0x7e)
            .filter(|b| *b != b',' && *b != b'=')
            .map(char::from)
            .collect();
        let member: &'static str = format!("k={value}").leak();
        assert_eq!(passed_on(&[member]).as_deref(), Some(member));
    }

    #[test]
    fn what_the_sdk_cannot_hold_is_passed_on_but_not_recorded() {
        let sc = extract(&[(TRACEPARENT, VALID), (TRACESTATE, "foo@@bar=1,rojo=2")]);
        assert_eq!(sc.trace_state().header(), "rojo=2");
    }

    #[test]
    fn thirty_two_members_pass_and_a_thirty_third_discards_the_list() {
        let members = |n: usize| -> &'static str {
            (1..=n)
                .map(|i| format!("bar{i:02}={i:02}"))
                .collect::<Vec<_>>()
                .join(",")
                .leak()
        };
        assert_eq!(passed_on(&[members(32)]).as_deref(), Some(members(32)));
        assert_eq!(
            passed_on(&[members(30), "bar31=31,bar32=32,bar33=33"]),
            None
        );
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
    fn an_unreadable_header_value_counts_and_breaks_its_list() {
        let extract_from = |pairs: &[(&'static str, &'static [u8])]| {
            let mut headers = http::HeaderMap::new();
            for (name, value) in pairs {
                headers.append(*name, http::HeaderValue::from_bytes(value).unwrap());
            }
            let cx = W3cTraceContext::new().extract(&RequestHeaders(&headers));
            let mut out: HashMap<String, String> = HashMap::new();
            W3cTraceContext::new().inject_context(&cx, &mut out);
            (cx.span().span_context().clone(), out.remove(TRACESTATE))
        };
        let (sc, _) = extract_from(&[(TRACEPARENT, VALID.as_bytes()), (TRACEPARENT, b"00-\xff")]);
        assert!(!sc.is_valid(), "two traceparent headers, one unreadable");
        let (sc, state) = extract_from(&[
            (TRACEPARENT, VALID.as_bytes()),
            (TRACESTATE, b"rojo=1"),
            (TRACESTATE, b"x=\xff"),
        ]);
        assert!(sc.is_valid());
        assert_eq!(state, None, "the list is discarded, not shortened");
    }

    #[test]
    fn tracestate_without_a_valid_traceparent_is_dropped() {
        let sc = extract(&[(TRACESTATE, "rojo=00f067aa0ba902b7")]);
        assert!(!sc.is_valid());
        assert_eq!(sc.trace_state().header(), "");
    }
}
