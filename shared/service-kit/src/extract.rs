//! The request parts our routes take, each refused with the one JSON error shape: the
//! `{id}` path parameter (a positive 64-bit integer) and a JSON body.

use axum::{
    Json,
    extract::{FromRequest, FromRequestParts, Path, Request, rejection::JsonRejection},
    http::{StatusCode, request::Parts},
    response::{IntoResponse, Response},
};
use serde::de::DeserializeOwned;

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

/// A JSON request body. axum's own refusals answer in plain text (and a body that parses
/// but has the wrong fields with 422); here each is the JSON error shape: 415 without a
/// JSON `Content-Type`, 413 past the body limit, 400 for a body that is not the expected
/// JSON, naming what is wrong.
#[derive(Debug, Clone, Copy)]
pub struct JsonBody<T>(pub T);

#[derive(Debug)]
pub struct InvalidBody(JsonRejection);

impl IntoResponse for InvalidBody {
    fn into_response(self) -> Response {
        let (status, code) = match &self.0 {
            JsonRejection::MissingJsonContentType(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large")
            }
            _ => (StatusCode::BAD_REQUEST, "invalid_body"),
        };
        json_error(status, code, self.0.body_text())
    }
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = InvalidBody;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        Json::<T>::from_request(request, state)
            .await
            .map(|Json(value)| Self(value))
            .map_err(InvalidBody)
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
