//! The `order_created_outbox` table behind `platform::outbox::Relay`: rows are written
//! by the checkout transaction, published right after its commit, and claimed with
//! `FOR UPDATE SKIP LOCKED` and a lease by the relay of any replica when that first
//! attempt failed. Rows that keep failing become `FAILED` until [`requeue_failed`].

use futures::future::BoxFuture;
use platform::actuator::{ComponentHealth, FnIndicator, HealthIndicator};
use platform::db::Db;
use platform::outbox::{OutboxCounts, OutboxMessage, OutboxStore};
use platform::time::now;
use std::time::Duration;
use uuid::Uuid;

/// Name of the outbox in metrics labels.
pub const OUTBOX_NAME: &str = "order_created_outbox";
/// How long the checkout's own publish attempt owns a fresh row before the relay may
/// take it over.
pub const FIRST_ATTEMPT_LEASE: Duration = Duration::from_secs(30);
/// Longest error message kept on a row.
const MAX_ERROR_CHARS: usize = 500;

/// The store of `order_created_outbox`.
#[derive(Clone)]
pub struct OrderCreatedOutbox {
    db: Db,
}

impl OrderCreatedOutbox {
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

fn chrono_duration(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

/// Header pairs from the JSON object stored in the row.
pub fn headers_from_json(value: &serde_json::Value) -> Vec<(String, String)> {
    value
        .as_object()
        .map(|map| {
            map.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

impl OutboxStore for OrderCreatedOutbox {
    fn claim(
        &self,
        limit: i64,
        lease: Duration,
    ) -> BoxFuture<'_, Result<Vec<OutboxMessage>, sqlx::Error>> {
        Box::pin(async move {
            let at = now();
            let rows = sqlx::query!(
                r#"UPDATE order_created_outbox SET locked_until = $2
                   WHERE id IN (
                       SELECT id FROM order_created_outbox
                       WHERE status = 'PENDING' AND next_attempt_at <= $1
                         AND (locked_until IS NULL OR locked_until <= $1)
                       ORDER BY created_at
                       LIMIT $3
                       FOR UPDATE SKIP LOCKED)
                   RETURNING id, aggregate_id, topic, payload::text AS "payload!", headers, retry_count"#,
                at,
                at + chrono_duration(lease),
                limit
            )
            .fetch_all(self.db.pool())
            .await?;
            Ok(rows
                .into_iter()
                .map(|row| OutboxMessage {
                    id: row.id,
                    topic: row.topic,
                    key: row.aggregate_id.to_string(),
                    payload: row.payload.into_bytes(),
                    headers: headers_from_json(&row.headers),
                    attempts: row.retry_count,
                })
                .collect())
        })
    }

    fn mark_published(&self, ids: Vec<Uuid>) -> BoxFuture<'_, Result<(), sqlx::Error>> {
        Box::pin(async move {
            sqlx::query!(
                "UPDATE order_created_outbox
                 SET status = 'PUBLISHED', published_at = $2, locked_until = NULL
                 WHERE id = ANY($1)",
                &ids,
                now()
            )
            .execute(self.db.pool())
            .await?;
            Ok(())
        })
    }

    fn mark_failed(
        &self,
        id: Uuid,
        error: String,
        retry_in: Duration,
        give_up_after: Duration,
    ) -> BoxFuture<'_, Result<(), sqlx::Error>> {
        Box::pin(async move {
            let error: String = error.chars().take(MAX_ERROR_CHARS).collect();
            let at = now();
            sqlx::query!(
                "UPDATE order_created_outbox
                 SET retry_count = retry_count + 1, error_message = $2,
                     status = CASE WHEN created_at < $4 THEN 'FAILED' ELSE status END,
                     next_attempt_at = $3, locked_until = NULL
                 WHERE id = $1 AND status = 'PENDING'",
                id,
                error,
                at + chrono_duration(retry_in),
                at - chrono_duration(give_up_after)
            )
            .execute(self.db.pool())
            .await?;
            Ok(())
        })
    }

    fn counts(&self) -> BoxFuture<'_, Result<OutboxCounts, sqlx::Error>> {
        Box::pin(async move {
            let row = sqlx::query!(
                r#"SELECT count(*) FILTER (WHERE status = 'PENDING') AS "pending!",
                          count(*) FILTER (WHERE status = 'FAILED') AS "failed!",
                          COALESCE(EXTRACT(EPOCH FROM $1 - min(created_at) FILTER (WHERE status = 'PENDING')), 0)::int8 AS "oldest!"
                   FROM order_created_outbox"#,
                now()
            )
            .fetch_one(self.db.pool())
            .await?;
            Ok(OutboxCounts {
                pending: row.pending,
                failed: row.failed,
                oldest_pending_secs: row.oldest.max(0),
            })
        })
    }

    fn purge_published(&self, age: Duration) -> BoxFuture<'_, Result<u64, sqlx::Error>> {
        Box::pin(async move {
            let done = sqlx::query!(
                "DELETE FROM order_created_outbox WHERE status = 'PUBLISHED' AND published_at < $1",
                now() - chrono_duration(age)
            )
            .execute(self.db.pool())
            .await?;
            Ok(done.rows_affected())
        })
    }
}

/// Puts every `FAILED` row back to `PENDING` with a fresh attempt budget; returns how
/// many. The operator's step after fixing what made them fail.
pub async fn requeue_failed(db: &Db) -> Result<u64, sqlx::Error> {
    let done = sqlx::query!(
        "UPDATE order_created_outbox
         SET status = 'PENDING', retry_count = 0, next_attempt_at = $1, locked_until = NULL
         WHERE status = 'FAILED'",
        now()
    )
    .execute(db.pool())
    .await?;
    Ok(done.rows_affected())
}

/// The `outbox` health component: always UP (the outbox is what keeps checkouts
/// working while the broker is down), with the backlog as details.
pub fn health_indicator(store: OrderCreatedOutbox) -> impl HealthIndicator {
    FnIndicator::new("outbox", false, move || {
        let store = store.clone();
        Box::pin(async move {
            match store.counts().await {
                Ok(counts) => ComponentHealth::up()
                    .with_detail("pending", counts.pending)
                    .with_detail("failed", counts.failed),
                Err(e) => ComponentHealth::down(e),
            }
        })
    })
}
