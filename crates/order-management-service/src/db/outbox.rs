//! `payment_completed_outbox`: the events written in the transaction that changes what
//! they tell (PaymentCompleted, OrderReleased; each row carries its topic and event
//! type), and the store the platform relay publishes them from.

use futures::future::BoxFuture;
use platform::outbox::{OutboxCounts, OutboxMessage, OutboxStore};
use sqlx::{PgConnection, PgPool};
use std::collections::BTreeMap;
use std::time::Duration;
use uuid::Uuid;

/// Writes an event row keyed by `aggregate_id`, leased for `lease` so the relay loop
/// leaves it to the immediate publish; returns the message to hand to
/// `Relay::publish_now`.
#[allow(clippy::too_many_arguments)]
pub async fn insert(
    conn: &mut PgConnection,
    aggregate_id: Uuid,
    event_type: &str,
    topic: &str,
    payload: &serde_json::Value,
    headers: &BTreeMap<String, String>,
    lease: Duration,
) -> Result<OutboxMessage, sqlx::Error> {
    let id = Uuid::new_v4();
    let headers_json = serde_json::to_value(headers).unwrap_or_default();
    let payload_text = sqlx::query_scalar!(
        r#"INSERT INTO payment_completed_outbox (id, aggregate_id, event_type, payload, topic, headers, locked_until)
           VALUES ($1, $2, $3, $4, $5, $6, (now() AT TIME ZONE 'UTC') + make_interval(secs => $7))
           RETURNING payload::text AS "payload!""#,
        id,
        aggregate_id,
        event_type,
        payload,
        topic,
        headers_json,
        lease.as_secs_f64()
    )
    .fetch_one(conn)
    .await?;
    Ok(OutboxMessage {
        id,
        topic: topic.to_owned(),
        key: aggregate_id.to_string(),
        payload: payload_text.into_bytes(),
        headers: headers.clone().into_iter().collect(),
        attempts: 0,
    })
}

/// The relay's view of `payment_completed_outbox`.
pub struct PaymentOutboxStore {
    pool: PgPool,
}

impl PaymentOutboxStore {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

fn headers_from_json(value: serde_json::Value) -> Vec<(String, String)> {
    match value {
        serde_json::Value::Object(map) => map
            .into_iter()
            .filter_map(|(k, v)| v.as_str().map(|v| (k, v.to_owned())))
            .collect(),
        _ => Vec::new(),
    }
}

impl OutboxStore for PaymentOutboxStore {
    fn claim(
        &self,
        limit: i64,
        lease: Duration,
    ) -> BoxFuture<'_, Result<Vec<OutboxMessage>, sqlx::Error>> {
        Box::pin(async move {
            let rows = sqlx::query!(
                r#"UPDATE payment_completed_outbox
                   SET locked_until = (now() AT TIME ZONE 'UTC') + make_interval(secs => $2)
                   WHERE id IN (
                       SELECT id FROM payment_completed_outbox
                       WHERE status = 'PENDING'
                         AND next_attempt_at <= (now() AT TIME ZONE 'UTC')
                         AND (locked_until IS NULL OR locked_until <= (now() AT TIME ZONE 'UTC'))
                       ORDER BY created_at
                       LIMIT $1
                       FOR UPDATE SKIP LOCKED)
                   RETURNING id, aggregate_id, topic, payload::text AS "payload!", headers, retry_count"#,
                limit,
                lease.as_secs_f64()
            )
            .fetch_all(&self.pool)
            .await?;
            Ok(rows
                .into_iter()
                .map(|r| OutboxMessage {
                    id: r.id,
                    topic: r.topic,
                    key: r.aggregate_id.to_string(),
                    payload: r.payload.into_bytes(),
                    headers: headers_from_json(r.headers),
                    attempts: r.retry_count,
                })
                .collect())
        })
    }

    fn mark_published(&self, ids: Vec<Uuid>) -> BoxFuture<'_, Result<(), sqlx::Error>> {
        Box::pin(async move {
            sqlx::query!(
                "UPDATE payment_completed_outbox \
                 SET status = 'PUBLISHED', published_at = (now() AT TIME ZONE 'UTC'), \
                     locked_until = NULL \
                 WHERE id = ANY($1)",
                &ids
            )
            .execute(&self.pool)
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
            sqlx::query!(
                "UPDATE payment_completed_outbox \
                 SET retry_count = retry_count + 1, error_message = $2, locked_until = NULL, \
                     next_attempt_at = (now() AT TIME ZONE 'UTC') + make_interval(secs => $3), \
                     status = CASE WHEN created_at < (now() AT TIME ZONE 'UTC') - make_interval(secs => $4) \
                                   THEN 'FAILED' ELSE status END \
                 WHERE id = $1 AND status = 'PENDING'",
                id,
                error,
                retry_in.as_secs_f64(),
                give_up_after.as_secs_f64()
            )
            .execute(&self.pool)
            .await?;
            Ok(())
        })
    }

    fn counts(&self) -> BoxFuture<'_, Result<OutboxCounts, sqlx::Error>> {
        Box::pin(async move {
            let row = sqlx::query!(
                r#"SELECT COUNT(*) FILTER (WHERE status = 'PENDING') AS "pending!",
                          COUNT(*) FILTER (WHERE status = 'FAILED') AS "failed!",
                          COALESCE(EXTRACT(EPOCH FROM (now() AT TIME ZONE 'UTC')
                              - min(created_at) FILTER (WHERE status = 'PENDING')), 0)::int8 AS "oldest!"
                   FROM payment_completed_outbox"#
            )
            .fetch_one(&self.pool)
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
            let result = sqlx::query!(
                "DELETE FROM payment_completed_outbox \
                 WHERE status = 'PUBLISHED' \
                   AND published_at < (now() AT TIME ZONE 'UTC') - make_interval(secs => $1)",
                age.as_secs_f64()
            )
            .execute(&self.pool)
            .await?;
            Ok(result.rows_affected())
        })
    }
}
