//! The relay of a transactional outbox.
//!
//! A service writes an event row in the same transaction as its state change, then
//! publishes it at once ([`Relay::publish_now`]); the relay loop only picks up what that
//! could not send. Rows are claimed with a lease (`FOR UPDATE SKIP LOCKED` in the store),
//! so replicas never publish the same row at the same time. A failing row is retried with
//! exponential backoff, by age rather than by count: it becomes `FAILED` (for an operator
//! to requeue) only once it is older than [`RelaySettings::max_age`], so a broker outage
//! shorter than that fails nothing. [`PgOutboxStore`] implements [`OutboxStore`] for
//! every outbox table of the platform.

mod pg;

pub use pg::{
    headers_from_json, OutboxStatus, OutboxTable, PgOutboxStore, Requeue, MAX_ERROR_CHARS,
};

use crate::kafka::Producer;
use crate::metrics::Metrics;
use futures::future::BoxFuture;
use prometheus::{IntCounter, IntGauge};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// One event waiting to be published.
#[derive(Debug, Clone)]
pub struct OutboxMessage {
    pub id: uuid::Uuid,
    pub topic: String,
    pub key: String,
    pub payload: Vec<u8>,
    pub headers: Vec<(String, String)>,
    /// Failed attempts so far.
    pub attempts: i32,
}

/// Row counts by state, for the gauges.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboxCounts {
    pub pending: i64,
    pub failed: i64,
    /// Age in seconds of the oldest `PENDING` row; 0 when there is none.
    pub oldest_pending_secs: i64,
}

/// The SQL side of an outbox table.
pub trait OutboxStore: Send + Sync + 'static {
    /// Claims up to `limit` due `PENDING` rows, leasing them for `lease`.
    fn claim(
        &self,
        limit: i64,
        lease: Duration,
    ) -> BoxFuture<'_, Result<Vec<OutboxMessage>, sqlx::Error>>;
    /// Marks rows `PUBLISHED`, in one statement.
    fn mark_published(&self, ids: Vec<uuid::Uuid>) -> BoxFuture<'_, Result<(), sqlx::Error>>;
    /// Records a failed attempt of a `PENDING` row: due again after `retry_in`, or
    /// `FAILED` when the row is older than `give_up_after`.
    fn mark_failed(
        &self,
        id: uuid::Uuid,
        error: String,
        retry_in: Duration,
        give_up_after: Duration,
    ) -> BoxFuture<'_, Result<(), sqlx::Error>>;
    fn counts(&self) -> BoxFuture<'_, Result<OutboxCounts, sqlx::Error>>;
    /// Deletes `PUBLISHED` rows older than `age`; returns how many.
    fn purge_published(&self, age: Duration) -> BoxFuture<'_, Result<u64, sqlx::Error>>;
}

/// How the relay behaves.
#[derive(Debug, Clone)]
pub struct RelaySettings {
    /// Name in the `outbox` metric label, e.g. `order_created_outbox`.
    pub name: String,
    pub poll_interval: Duration,
    pub batch_size: i64,
    pub lease: Duration,
    /// How old a row may grow while it keeps failing before it becomes `FAILED`.
    pub max_age: Duration,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    pub retention: Duration,
}

impl RelaySettings {
    /// Six hours: far longer than a broker restart or failover, short enough that a row
    /// nobody can publish is in front of an operator the same day.
    pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(6 * 3600);

    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            poll_interval: Duration::from_secs(1),
            batch_size: 100,
            lease: Duration::from_secs(60),
            max_age: Self::DEFAULT_MAX_AGE,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(60),
            retention: Duration::from_secs(7 * 24 * 3600),
        }
    }

    /// Delay before the next try after `attempts` failures.
    pub fn backoff(&self, attempts: i32) -> Duration {
        let factor = 2u32.saturating_pow(
            u32::try_from(attempts.saturating_sub(1).max(0))
                .unwrap_or(0)
                .min(20),
        );
        self.initial_backoff
            .saturating_mul(factor)
            .min(self.max_backoff)
    }
}

#[derive(Clone)]
struct RelayMetrics {
    pending: IntGauge,
    failed: IntGauge,
    oldest_pending: IntGauge,
    published: IntCounter,
    publish_failures: IntCounter,
}

/// Publishes outbox rows; cheap to clone.
#[derive(Clone)]
pub struct Relay {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn OutboxStore>,
    producer: Producer,
    settings: RelaySettings,
    metrics: RelayMetrics,
    wake: Notify,
    /// Published rows waiting to be marked, and whether a task is marking them.
    marks: std::sync::Mutex<Marks>,
}

#[derive(Default)]
struct Marks {
    waiting: Vec<uuid::Uuid>,
    marking: bool,
}

impl Relay {
    pub fn new(
        store: Arc<dyn OutboxStore>,
        producer: Producer,
        settings: RelaySettings,
        metrics: &Metrics,
    ) -> prometheus::Result<Self> {
        let label = |name: &str, help: &str| -> prometheus::Result<IntGauge> {
            Ok(metrics
                .gauge_vec(name, help, &["outbox"])?
                .with_label_values(&[&settings.name]))
        };
        let counter = |name: &str, help: &str| -> prometheus::Result<IntCounter> {
            Ok(metrics
                .counter_vec(name, help, &["outbox"])?
                .with_label_values(&[&settings.name]))
        };
        let metrics = RelayMetrics {
            pending: label(
                "outbox_pending_rows",
                "Outbox rows waiting to be published.",
            )?,
            failed: label(
                "outbox_failed_rows",
                "Outbox rows that gave up and wait for an operator.",
            )?,
            oldest_pending: label(
                "outbox_oldest_pending_age_seconds",
                "Age of the oldest outbox row still waiting to be published.",
            )?,
            published: counter("outbox_published_total", "Outbox rows published.")?,
            publish_failures: counter("outbox_publish_failures_total", "Failed publish attempts.")?,
        };
        Ok(Self {
            inner: Arc::new(Inner {
                store,
                producer,
                settings,
                metrics,
                wake: Notify::new(),
                marks: std::sync::Mutex::new(Marks::default()),
            }),
        })
    }

    /// Publishes a just-committed row right away, off the caller's path; if that fails
    /// the relay loop retries it.
    pub fn publish_now(&self, message: OutboxMessage) {
        let relay = self.clone();
        let ctx = crate::context::current();
        tokio::spawn(async move {
            let work = relay.publish(message);
            match ctx {
                Some(ctx) => crate::context::scope(ctx, work).await,
                None => work.await,
            }
        });
    }

    /// Asks the loop to look for work now (after an operator requeued rows, say).
    pub fn wake(&self) {
        self.inner.wake.notify_one();
    }

    async fn publish(&self, message: OutboxMessage) {
        let inner = &self.inner;
        // The publish is a span of the trace the row was written in (its stored
        // `traceparent`), and the record carries the publish span as its consumers' parent.
        let stored = message
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(crate::context::TRACEPARENT_HEADER))
            .map(|(_, v)| v.as_str());
        let mut trace = crate::context::TraceContext::from_traceparent(stored);
        let mut span = crate::otel::start(
            format!("{} publish", message.topic),
            crate::otel::SpanKind::Producer,
            &mut trace,
        );
        span.attribute("messaging.destination.name", message.topic.clone());
        let traceparent = trace.traceparent();
        let headers: Vec<(&str, &str)> = message
            .headers
            .iter()
            .filter(|(k, _)| !k.eq_ignore_ascii_case(crate::context::TRACEPARENT_HEADER))
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .chain([(crate::context::TRACEPARENT_HEADER, traceparent.as_str())])
            .collect();
        let result = inner
            .producer
            .send(
                &message.topic,
                Some(&message.key),
                &message.payload,
                &headers,
            )
            .await;
        let update = match result {
            Ok(_) => {
                inner.metrics.published.inc();
                self.mark_published(message.id).await
            }
            Err(e) => {
                span.error(e.to_string());
                inner.metrics.publish_failures.inc();
                let attempts = message.attempts + 1;
                let retry_in = inner.settings.backoff(attempts);
                tracing::warn!(
                    outbox = %inner.settings.name, id = %message.id, attempts, error = %e,
                    retryInMs = retry_in.as_millis() as u64, "outbox publish failed"
                );
                inner
                    .store
                    .mark_failed(message.id, e.to_string(), retry_in, inner.settings.max_age)
                    .await
            }
        };
        if let Err(e) = update {
            // The lease expires and the row is published again; consumers dedupe by eventId.
            tracing::error!(outbox = %inner.settings.name, id = %message.id, error = %e, "outbox row update failed");
        }
    }

    /// Marks `id` published, together with the rows other publishes marked meanwhile:
    /// the first to find no one marking marks everything waiting, in one statement per
    /// round, until nothing waits; the others only leave their id. Under load this is
    /// one statement for many events instead of one each.
    async fn mark_published(&self, id: uuid::Uuid) -> Result<(), sqlx::Error> {
        let inner = &self.inner;
        {
            let mut marks = inner.marks.lock().unwrap_or_else(|p| p.into_inner());
            marks.waiting.push(id);
            if marks.marking {
                return Ok(());
            }
            marks.marking = true;
        }
        loop {
            let ids = {
                let mut marks = inner.marks.lock().unwrap_or_else(|p| p.into_inner());
                if marks.waiting.is_empty() {
                    marks.marking = false;
                    return Ok(());
                }
                std::mem::take(&mut marks.waiting)
            };
            if let Err(e) = inner.store.mark_published(ids).await {
                inner
                    .marks
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .marking = false;
                return Err(e);
            }
        }
    }

    /// One pass: claim due rows and publish them. Returns how many were claimed.
    pub async fn run_once(&self) -> Result<usize, sqlx::Error> {
        let inner = &self.inner;
        let batch = inner
            .store
            .claim(inner.settings.batch_size, inner.settings.lease)
            .await?;
        let claimed = batch.len();
        futures::future::join_all(batch.into_iter().map(|m| self.publish(m))).await;
        Ok(claimed)
    }

    /// Refreshes the pending, failed and oldest-pending gauges.
    pub async fn refresh_gauges(&self) -> Result<OutboxCounts, sqlx::Error> {
        let counts = self.inner.store.counts().await?;
        self.inner.metrics.pending.set(counts.pending);
        self.inner.metrics.failed.set(counts.failed);
        self.inner
            .metrics
            .oldest_pending
            .set(counts.oldest_pending_secs);
        Ok(counts)
    }

    /// Runs the relay until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        let settings = &self.inner.settings;
        let mut last_gauges = tokio::time::Instant::now() - Duration::from_secs(60);
        let mut last_purge = tokio::time::Instant::now();
        tracing::info!(outbox = %settings.name, "outbox relay started");
        loop {
            let claimed = match self.run_once().await {
                Ok(n) => n,
                Err(e) => {
                    tracing::warn!(outbox = %settings.name, error = %e, "outbox relay pass failed");
                    0
                }
            };
            if last_gauges.elapsed() >= Duration::from_secs(2) {
                if let Err(e) = self.refresh_gauges().await {
                    tracing::debug!(error = %e, "outbox gauges not refreshed");
                }
                last_gauges = tokio::time::Instant::now();
            }
            if last_purge.elapsed() >= Duration::from_secs(3600) {
                match self.inner.store.purge_published(settings.retention).await {
                    Ok(n) if n > 0 => {
                        tracing::info!(outbox = %settings.name, purged = n, "published rows purged")
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "outbox purge failed"),
                }
                last_purge = tokio::time::Instant::now();
            }
            if claimed as i64 >= settings.batch_size {
                continue;
            }
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = self.inner.wake.notified() => {}
                () = tokio::time::sleep(settings.poll_interval) => {}
            }
        }
        tracing::info!(outbox = %settings.name, "outbox relay stopped");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_the_initial_delay_up_to_the_cap() {
        let s = RelaySettings::new("t");
        assert_eq!(s.backoff(1), Duration::from_millis(500));
        assert_eq!(s.backoff(2), Duration::from_secs(1));
        assert_eq!(s.backoff(4), Duration::from_secs(4));
        assert_eq!(s.backoff(30), Duration::from_secs(60));
    }
}
