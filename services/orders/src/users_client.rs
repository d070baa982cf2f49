//! Calls to the users service through the shared traced client: each call is a client span
//! and carries `traceparent` (and `baggage`) to users.

use std::time::Duration;

use opentelemetry::Context;
use reqwest::StatusCode;
use reqwest_middleware::ClientWithMiddleware;
use serde::{Deserialize, Serialize};
use url::Url;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct User {
    pub id: i64,
    pub name: String,
    pub email: String,
}

#[derive(Debug, thiserror::Error)]
pub enum UsersError {
    #[error("users service did not answer within {} ms", .0.as_millis())]
    Timeout(Duration),
    #[error("users service unreachable: {0}")]
    Unreachable(String),
    #[error("users service answered {0}")]
    BadStatus(StatusCode),
    #[error("users service sent an unreadable body: {0}")]
    BadBody(String),
}

#[derive(Clone)]
pub struct UsersClient {
    http: ClientWithMiddleware,
    base: Url,
    timeout: Duration,
    propagation: bool,
}

impl UsersClient {
    pub fn new(base: Url, timeout: Duration, propagation: bool) -> Self {
        Self {
            http: telemetry::client::http_client(),
            base,
            timeout,
            propagation,
        }
    }

    fn get(&self, url: Url, carried: Option<&Context>) -> reqwest_middleware::RequestBuilder {
        let request = self.http.get(url).timeout(self.timeout);
        match carried {
            None if self.propagation => request,
            // The client span is still recorded; only the headers are left out.
            None => request.with_extension(telemetry::client::DisableOtelPropagation),
            // Headers written by hand from `cx`, not from the client span.
            Some(cx) => {
                let mut headers = reqwest::header::HeaderMap::new();
                telemetry::client::inject(cx, &mut headers);
                request
                    .headers(headers)
                    .with_extension(telemetry::client::DisableOtelPropagation)
            }
        }
    }

    /// `GET /users?ids=...`: the users that exist among `ids`, in one call.
    pub async fn get_users(&self, ids: &[i64]) -> Result<Vec<User>, UsersError> {
        let mut url = self.base.join("users").expect("a static path always joins");
        let list: Vec<String> = ids.iter().map(i64::to_string).collect();
        url.query_pairs_mut().append_pair("ids", &list.join(","));
        match self.call(url, None).await? {
            Some(users) => Ok(users),
            None => Err(UsersError::BadStatus(StatusCode::NOT_FOUND)),
        }
    }

    /// `Ok(None)` when users answers 404.
    pub async fn get_user(&self, id: i64) -> Result<Option<User>, UsersError> {
        self.call(self.user_url(id), None).await
    }

    /// [`Self::get_user`] carrying the context `cx` instead of the client span's (the
    /// worker's `DEMO_PITFALL=context`).
    pub async fn get_user_in(&self, id: i64, cx: &Context) -> Result<Option<User>, UsersError> {
        self.call(self.user_url(id), Some(cx)).await
    }

    fn user_url(&self, id: i64) -> Url {
        self.base
            .join(&format!("users/{id}"))
            .expect("a numeric path segment always joins")
    }

    /// A GET to users: the decoded body on 200, `None` on 404, an error otherwise. The
    /// timeout bounds each try and, with a moment's grace, the whole call with its retries:
    /// the grace lets a lone slow try end by its own timeout, so its span says "timeout".
    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        url: Url,
        carried: Option<&Context>,
    ) -> Result<Option<T>, UsersError> {
        const GRACE: Duration = Duration::from_millis(25);
        tokio::time::timeout(self.timeout + GRACE, self.try_call(url, carried))
            .await
            .unwrap_or(Err(UsersError::Timeout(self.timeout)))
    }

    async fn try_call<T: serde::de::DeserializeOwned>(
        &self,
        url: Url,
        carried: Option<&Context>,
    ) -> Result<Option<T>, UsersError> {
        let response = self
            .get(url, carried)
            .send()
            .await
            .map_err(|e| self.transport_error(e))?;
        match response.status() {
            StatusCode::OK => response
                .json()
                .await
                .map(Some)
                .map_err(|e| match e.is_timeout() {
                    true => UsersError::Timeout(self.timeout),
                    false => UsersError::BadBody(e.to_string()),
                }),
            StatusCode::NOT_FOUND => Ok(None),
            status => Err(UsersError::BadStatus(status)),
        }
    }

    fn transport_error(&self, error: reqwest_middleware::Error) -> UsersError {
        match telemetry::client::reqwest_error(&error) {
            Some(e) if e.is_timeout() => UsersError::Timeout(self.timeout),
            _ => UsersError::Unreachable(error.to_string()),
        }
    }
}
