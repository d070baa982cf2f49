//! The `{id}` path parameter both services take: a positive 64-bit integer, or a JSON 400.

use axum::{
    extract::{FromRequestParts, Path},
    http::{StatusCode, request::Parts},
    response::{IntoResponse, Response},
};

use crate::json_error;

/// The single path parameter of a route, parsed as an id in `1..=i64::MAX`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PathId(pub i64);

#[derive(Debug)]
pub struct InvalidId(String);

impl IntoResponse for InvalidId {
    fn into_response(self) -> Response {
        json_error(StatusCode::BAD_REQUEST, "invalid_id", self.0)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for PathId {
    type Rejection = InvalidId;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        // Path<String> itself rejects undecodable percent-encoding; fold that into the same 400.
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| InvalidId("id is not valid UTF-8 after percent-decoding".into()))?;
        parse_id(&raw).map(PathId).ok_or_else(|| {
            InvalidId("id must be a positive 64-bit integer (1 to 9223372036854775807)".into())
        })
    }
}

/// Digits only: no sign, no whitespace, no exponent; `0` and overflow are refused.
pub fn parse_id(raw: &str) -> Option<i64> {
    if raw.is_empty() || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    raw.parse::<i64>().ok().filter(|id| *id > 0)
}

#[cfg(test)]
mod tests {
    use super::parse_id;

    #[test]
    fn accepts_positive_64_bit_integers() {
        assert_eq!(parse_id("1"), Some(1));
        assert_eq!(parse_id("007"), Some(7));
        assert_eq!(parse_id("9223372036854775807"), Some(i64::MAX));
    }

    #[test]
    fn refuses_everything_else() {
        for raw in [
            "",
            "0",
            "-1",
            "+1",
            " 1",
            "1 ",
            "1.0",
            "1e3",
            "abc",
            "0x10",
            "９",
            "9223372036854775808",
            "99999999999999999999999",
        ] {
            assert_eq!(parse_id(raw), None, "{raw:?}");
        }
    }
}
