//! W3C Baggage extraction by the rules. The SDK's `BaggagePropagator` reads only the first
//! `baggage` header, cuts a value at its second `=`, counts invalid members against the
//! 64-member limit, and logs the whole header when a member is malformed (baggage may hold
//! whatever a caller put there, so it must not reach the logs). Here every `baggage` header
//! is read in order, a malformed member is dropped quietly, and members beyond the limits
//! (64 members, 8192 bytes) are dropped from the end, as the specification allows. Injection
//! is the SDK's: it writes what the context holds, percent-encoded.

use opentelemetry::{
    Context,
    baggage::{BaggageExt as _, KeyValueMetadata},
    propagation::{Extractor, Injector, TextMapPropagator, text_map_propagator::FieldIter},
};
use opentelemetry_sdk::propagation::BaggagePropagator;

const BAGGAGE: &str = "baggage";
pub const MAX_MEMBERS: usize = 64;
pub const MAX_BYTES: usize = 8192;

#[derive(Debug, Default)]
pub struct W3cBaggage {
    sdk: BaggagePropagator,
}

impl W3cBaggage {
    pub fn new() -> Self {
        Self::default()
    }
}

/// RFC 9110 `token`.
fn token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// `baggage-octet`: printable ASCII but `"`, `,`, `;`, `\`, space.
fn value_octets(s: &str) -> bool {
    s.bytes()
        .all(|b| (0x21..=0x7e).contains(&b) && !b"\",;\\".contains(&b))
}

/// A kept list-member: key, percent-decoded value, properties as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub key: String,
    pub value: String,
    pub properties: String,
}

/// One `list-member`: `key OWS = OWS value *( OWS ; OWS property )`.
fn member(raw: &str) -> Option<Member> {
    let (pair, properties) = match raw.split_once(';') {
        Some((pair, properties)) => (pair, properties.trim()),
        None => (raw, ""),
    };
    let (key, value) = pair.split_once('=')?;
    let (key, value) = (
        key.trim_matches([' ', '\t']),
        value.trim_matches([' ', '\t']),
    );
    if !token(key) || !value_octets(value) {
        return None;
    }
    let value = percent_encoding::percent_decode_str(value)
        .decode_utf8()
        .ok()?;
    Some(Member {
        key: key.to_owned(),
        value: value.into_owned(),
        properties: properties.to_owned(),
    })
}

/// The request's baggage as `(key, value)` pairs, read by the same rules as the
/// propagator's: for code that acts on baggage (the workshop's demo faults) without running
/// the propagators again.
pub fn entries(headers: &http::HeaderMap) -> Vec<(String, String)> {
    members(&crate::propagation::RequestHeaders(headers))
        .into_iter()
        .map(|member| (member.key, member.value))
        .collect()
}

/// The members of every `baggage` header, in order, within the limits.
pub fn members(extractor: &dyn Extractor) -> Vec<Member> {
    let values = match extractor.get_all(BAGGAGE) {
        Some(values) => values,
        None => extractor.get(BAGGAGE).into_iter().collect(),
    };
    let mut kept = Vec::new();
    let mut bytes = 0;
    for raw in values.iter().flat_map(|v| v.split(',')) {
        let raw = raw.trim_matches([' ', '\t']);
        if raw.is_empty() {
            continue;
        }
        let Some(member) = member(raw) else {
            continue;
        };
        // Counted as sent, plus the comma that joins it to the list.
        bytes += raw.len() + usize::from(!kept.is_empty());
        if kept.len() == MAX_MEMBERS || bytes > MAX_BYTES {
            break;
        }
        kept.push(member);
    }
    kept
}

impl TextMapPropagator for W3cBaggage {
    fn inject_context(&self, cx: &Context, injector: &mut dyn Injector) {
        self.sdk.inject_context(cx, injector);
    }

    fn extract_with_context(&self, cx: &Context, extractor: &dyn Extractor) -> Context {
        let members = members(extractor);
        if members.is_empty() {
            cx.clone()
        } else {
            cx.with_baggage(
                members
                    .into_iter()
                    .map(|m| KeyValueMetadata::new(m.key, m.value, m.properties.as_str())),
            )
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

    struct Headers(Vec<String>);

    impl Extractor for Headers {
        fn get(&self, key: &str) -> Option<&str> {
            (key == BAGGAGE).then(|| self.0.first().map(String::as_str))?
        }
        fn keys(&self) -> Vec<&str> {
            vec![BAGGAGE]
        }
        fn get_all(&self, key: &str) -> Option<Vec<&str>> {
            (key == BAGGAGE).then(|| self.0.iter().map(String::as_str).collect())
        }
    }

    fn extract(headers: &[&str]) -> Vec<(String, String)> {
        let headers = Headers(headers.iter().map(|h| (*h).to_owned()).collect());
        members(&headers)
            .into_iter()
            .map(|m| (m.key, m.value))
            .collect()
    }

    fn owned(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn members_of_several_headers_are_read_and_bad_ones_dropped() {
        let got = extract(&[
            "demo.fail=users, bad key=1, ;, sep=a;b, q=\"x\"",
            "rate=1=2,enc=%E2%9C%93,bad%=%FF,nopair",
        ]);
        assert_eq!(
            got,
            owned(&[
                ("demo.fail", "users"),
                ("sep", "a"),
                ("rate", "1=2"),
                ("enc", "\u{2713}"),
            ])
        );
    }

    #[test]
    fn members_beyond_64_or_8192_bytes_are_dropped_from_the_end() {
        let many: Vec<String> = (0..70).map(|i| format!("k{i}=v")).collect();
        let got = extract(&[&many.join(",")]);
        assert_eq!(got.len(), MAX_MEMBERS);
        assert_eq!(got[63].0, "k63");

        let big = "x".repeat(5000);
        let got = extract(&[&format!("a={big},b={big},c=1")]);
        assert_eq!(got.len(), 1, "b would pass 8192 bytes; c comes after it");
        assert_eq!(got[0].0, "a");
    }

    #[test]
    fn what_is_kept_is_injected_again() {
        let headers = Headers(vec!["k=v%20w".to_owned()]);
        let cx = W3cBaggage::new().extract(&headers);
        let mut out: HashMap<String, String> = HashMap::new();
        W3cBaggage::new().inject_context(&cx, &mut out);
        assert_eq!(out[BAGGAGE], "k=v%20w");
    }
}
