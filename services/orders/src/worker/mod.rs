//! `orders-worker`: consumes the confirmations queued by `POST /orders` (see
//! [`crate::outbox`]). It polls the outbox, claims a batch in one transaction, processes
//! each message (a call to users for the address, then the confirmation recorded), and
//! commits. Messages are processed at least once: a worker killed mid-batch leaves its
//! batch to the next poll, and one asked to stop (SIGTERM) finishes the message in hand,
//! commits what it did and releases the rest.

pub mod config;
mod process;

use std::{future::Future, time::Duration};

use axum::Router;
use service_kit::{Db, StartupError};
use tokio::sync::watch;

pub use config::WorkerConfig;

use crate::{outbox, users_client::UsersClient};

pub async fn run(
    config: WorkerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartupError> {
    let db = Db::start(&config.common, &crate::MIGRATOR).await?;
    let (stop, stopping) = watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop.send(true);
    });
    // Only the health probes, for compose's healthcheck and the test harness.
    let probes = service_kit::http::with_common_routes(
        Router::new(),
        db.clone(),
        config.common.route_settings(),
    );
    let listener = service_kit::bind(config.common.listen_addr).await?;
    let serving = tokio::spawn(service_kit::serve(
        listener,
        probes,
        stopped(stopping.clone()),
    ));

    let consumer = Consumer {
        users: UsersClient::new(
            config.users_url.clone(),
            config.users_timeout,
            config.propagation,
        ),
        db,
        config,
        stopping,
    };
    consumer.run().await;
    serving
        .await
        .map_err(|e| StartupError::Serve(std::io::Error::other(e)))?
}

#[derive(Debug, thiserror::Error)]
enum PollError {
    #[error(transparent)]
    Claim(#[from] sqlx::Error),
    #[error("recording a message's outcome: {0}")]
    Record(#[from] service_kit::DbError),
}

async fn stopped(mut stopping: watch::Receiver<bool>) {
    let _ = stopping.wait_for(|stop| *stop).await;
}

struct Consumer {
    db: Db,
    users: UsersClient,
    config: WorkerConfig,
    stopping: watch::Receiver<bool>,
}

impl Consumer {
    fn stop_requested(&self) -> bool {
        *self.stopping.borrow()
    }

    async fn run(&self) {
        tracing::info!(
            async_context = ?self.config.async_context,
            pitfall = ?self.config.pitfall,
            batch_size = self.config.batch_size,
            "consuming {}",
            outbox::CONFIRMATIONS
        );
        while !self.stop_requested() {
            let pause = match self.poll().await {
                Ok(0) => self.config.poll_interval,
                Ok(_) => Duration::ZERO,
                Err(error) => {
                    tracing::warn!(error = %error, "outbox poll failed");
                    self.config.poll_interval.max(Duration::from_secs(1))
                }
            };
            if !pause.is_zero() {
                let mut stopping = self.stopping.clone();
                let _ = tokio::time::timeout(pause, stopping.wait_for(|stop| *stop)).await;
            }
        }
        tracing::info!("stopped consuming");
    }

    /// One batch: claimed, processed and committed in one transaction. The number of
    /// messages claimed.
    async fn poll(&self) -> Result<usize, PollError> {
        let mut tx = self.db.pool().begin().await?;
        let messages =
            outbox::claim(&mut tx, outbox::CONFIRMATIONS, self.config.batch_size).await?;
        let claimed = messages.len();
        if claimed > 0 {
            self.process_batch(&mut tx, messages).await?;
        }
        tx.commit().await?;
        Ok(claimed)
    }
}
