//! Workshop faults carried by the request itself, in W3C baggage: the lesson on
//! propagation and the lesson on finding a slow or failing span in one curl line.
//!
//! With `DEMO_FAULTS=on`, `baggage: demo.delay_ms=300` makes users wait 300 ms inside a
//! span of its own and `demo.fail=users` / `demo.fail=db` makes it fail there. Orders only
//! checks the values (a bad one is a 400 before any work) and passes the baggage on.

use std::time::Duration;

use axum::{
    extract::Request,
    http::StatusCode,
    middleware::Next,
    response::{IntoResponse, Response},
};

use crate::json_error;

/// Longest delay a request may ask for; more is capped to it.
pub const MAX_DELAY_MS: u64 = 5000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailAt {
    Users,
    Db,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Faults {
    pub delay: Option<Duration>,
    pub fail: Option<FailAt>,
}

/// Reads the `demo.*` entries of the baggage; other keys are not ours and are ignored.
pub fn parse(entries: impl IntoIterator<Item = (String, String)>) -> Result<Faults, String> {
    let mut faults = Faults::default();
    for (key, value) in entries {
        match key.as_str() {
            "demo.delay_ms" => {
                let ms: u64 = value.trim().parse().map_err(|_| {
                    format!("demo.delay_ms must be a whole number of milliseconds, not {value:?}")
                })?;
                faults.delay = Some(Duration::from_millis(ms.min(MAX_DELAY_MS)));
            }
            "demo.fail" => {
                faults.fail = Some(match value.trim() {
                    "users" => FailAt::Users,
                    "db" => FailAt::Db,
                    other => return Err(format!("demo.fail must be users or db, not {other:?}")),
                });
            }
            _ => {}
        }
    }
    Ok(faults)
}

/// `axum::middleware::from_fn` body: validates the demo baggage and hands the faults to
/// the handlers in the request's extensions. Does nothing when `DEMO_FAULTS` is off.
pub async fn check_faults(enabled: bool, mut request: Request, next: Next) -> Response {
    if !enabled {
        return next.run(request).await;
    }
    let entries = telemetry::baggage::entries(request.headers());
    match parse(entries) {
        Ok(faults) => {
            request.extensions_mut().insert(faults);
            next.run(request).await
        }
        Err(message) => {
            json_error(StatusCode::BAD_REQUEST, "invalid_baggage", message).into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn delays_are_read_and_capped() {
        let f = parse(kv(&[("demo.delay_ms", "300")])).unwrap();
        assert_eq!(f.delay, Some(Duration::from_millis(300)));
        let f = parse(kv(&[("demo.delay_ms", "999999")])).unwrap();
        assert_eq!(f.delay, Some(Duration::from_millis(MAX_DELAY_MS)));
    }

    #[test]
    fn failures_name_a_place() {
        assert_eq!(
            parse(kv(&[("demo.fail", "users")])).unwrap().fail,
            Some(FailAt::Users)
        );
        assert_eq!(
            parse(kv(&[("demo.fail", "db")])).unwrap().fail,
            Some(FailAt::Db)
        );
    }

    #[test]
    fn invalid_values_are_refused_and_unknown_keys_ignored() {
        for bad in [
            ("demo.delay_ms", "abc"),
            ("demo.delay_ms", "-5"),
            ("demo.fail", "kernel"),
        ] {
            assert!(parse(kv(&[bad])).is_err(), "{bad:?}");
        }
        assert_eq!(
            parse(kv(&[("team", "blue"), ("demo.other", "x")])).unwrap(),
            Faults::default()
        );
    }
}
