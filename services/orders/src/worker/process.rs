//! What the worker does with a batch, and with the context its messages carry: the three
//! `ASYNC_CONTEXT` choices and the two `DEMO_PITFALL`s, each beside its fix.

use std::time::Duration;

use opentelemetry::Context;
use service_kit::DbError;
use sqlx::PgConnection;
use telemetry::{OpenTelemetrySpanExt as _, messaging};
use tracing::{Instrument as _, Span};

use super::{
    Consumer,
    config::{AsyncContext, Pitfall},
};
use crate::{
    outbox::{self, CONFIRMATIONS, Message},
    users_client::{User, UsersError},
};

/// How one message's work ended.
enum Outcome {
    Confirmed,
    /// Tried again after the pause.
    Retry(String, Duration),
    /// Given up on (its last allowed try, or a failure no retry can fix).
    Parked(String),
}

impl Consumer {
    pub(super) async fn process_batch(
        &self,
        tx: &mut PgConnection,
        messages: Vec<Message>,
    ) -> Result<(), DbError> {
        // Link: one trace for the batch, each producer's trace reached by a link.
        let batch = (self.config.async_context == AsyncContext::Link).then(|| {
            let carried: Vec<Context> = messages
                .iter()
                .map(|m| messaging::extract(&m.headers.0))
                .collect();
            messaging::batch_span(CONFIRMATIONS, carried.iter())
        });
        let work = async {
            for message in &messages {
                if self.stop_requested() {
                    break;
                }
                let span = self.message_span(message);
                self.process(tx, message, &span)
                    .instrument(span.clone())
                    .await?;
            }
            Ok(())
        };
        match batch {
            Some(batch) => work.instrument(batch).await,
            None => work.await,
        }
    }

    /// The span of one message's work: inside a batch's, a `confirm-order` span; else a
    /// `process` span whose parent is the producer's context (child) or none (off).
    fn message_span(&self, message: &Message) -> Span {
        let order_id = message.payload.order_id;
        let parent = match self.config.async_context {
            AsyncContext::Link => {
                return tracing::info_span!(
                    "confirm-order",
                    order.id = order_id,
                    messaging.message.id = %message.id,
                );
            }
            // The producer's context: this span continues its trace.
            AsyncContext::Child => messaging::extract(&message.headers.0),
            // Nothing travels: a new trace, unrelated to the order's request.
            AsyncContext::Off => Context::new(),
        };
        let span = messaging::process_span(CONFIRMATIONS, message.id);
        span.set_attribute("order.id", order_id);
        let _ = span.set_parent(parent);
        span
    }

    /// One message, inside `span`: the user's address from users, then the outcome
    /// recorded in the batch's transaction.
    async fn process(
        &self,
        tx: &mut PgConnection,
        message: &Message,
        span: &Span,
    ) -> Result<(), DbError> {
        let attempt = message.attempts + 1;
        span.set_attribute("outbox.attempt", i64::from(attempt));
        let outcome = match self.address_of(message.payload.user_id).await {
            Ok(Some(_address)) => Outcome::Confirmed,
            // No user, no address: a retry would find none either.
            Ok(None) => Outcome::Parked(format!("user {} not found", message.payload.user_id)),
            Err(error) if attempt >= self.config.max_attempts => Outcome::Parked(error.to_string()),
            Err(error) => Outcome::Retry(
                error.to_string(),
                self.config.retry_delay * 2u32.saturating_pow(message.attempts as u32),
            ),
        };
        match outcome {
            Outcome::Confirmed => {
                self.db
                    .traced(outbox::CONFIRM, outbox::confirm(tx, message))
                    .await?;
            }
            Outcome::Retry(error, after) => {
                telemetry::error::record(span, "users_unavailable", &error);
                self.db
                    .traced(outbox::RETRY, outbox::retry(tx, message, &error, after))
                    .await?;
            }
            Outcome::Parked(error) => {
                telemetry::error::record(span, "parked", &error);
                span.set_attribute("outbox.parked", true);
                tracing::warn!(
                    messaging.message.id = message.id,
                    attempts = attempt,
                    "message parked: {error}"
                );
                self.db
                    .traced(outbox::PARK, outbox::park(tx, message, &error))
                    .await?;
            }
        }
        Ok(())
    }

    /// The confirmation's address: the user, from users. The call runs on a task of its
    /// own, so a panic in it fails this message, not the worker.
    async fn address_of(&self, user_id: i64) -> Result<Option<User>, UsersError> {
        let users = self.users.clone();
        let call = match self.config.pitfall {
            // PITFALL: a spawned task does not inherit the current tracing span. The users
            // call's span has no parent: an orphan root, a trace of its own.
            Some(Pitfall::Spawn) => tokio::spawn(async move { users.get_user(user_id).await }),
            // PITFALL: OpenTelemetry's `Context::current()` is not the tracing span's
            // context (tracing-opentelemetry does not attach it; init.rs says why), so the
            // headers built from it are empty and users starts a new trace.
            // FIX: `Span::current().context()`, or let the traced client inject.
            Some(Pitfall::Context) => {
                let cx = Context::current();
                tokio::spawn(async move { users.get_user_in(user_id, &cx).await }.in_current_span())
            }
            // FIX for `spawn`: the task carries the span it was spawned in.
            None => tokio::spawn(async move { users.get_user(user_id).await }.in_current_span()),
        };
        call.await
            .unwrap_or_else(|e| Err(UsersError::Unreachable(format!("users call failed: {e}"))))
    }
}
