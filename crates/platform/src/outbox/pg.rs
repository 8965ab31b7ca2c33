//! The one PostgreSQL implementation of [`OutboxStore`], for every outbox table of the
//! platform (they share their columns), and the operator's queries on the same tables
//! (status, requeue) that `opsctl` runs.
//!
//! sqlx checks a statement at compile time only when its text is literal, so each
//! statement is written once in a `macro_rules!` that takes the table name as a literal
//! and joins it with `+` (which `sqlx::query!` accepts); [`PgOutboxStore`] expands it
//! once per table. Every timestamp comes from the database's clock, so replicas and
//! `opsctl` agree on what is due whatever their own clocks say.

use super::{OutboxCounts, OutboxMessage, OutboxStore};
use crate::actuator::{ComponentHealth, FnIndicator, HealthIndicator};
use futures::future::BoxFuture;
use sqlx::PgPool;
use std::time::Duration;
use uuid::Uuid;

/// Longest error message kept on a row: enough for a broker's error with its context,
/// short enough that a row stays small when a failure repeats all day.
pub const MAX_ERROR_CHARS: usize = 500;

/// The outbox tables of the platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutboxTable {
    /// `order_created_outbox` in `customer_db`.
    OrderCreated,
    /// `payment_completed_outbox` in `order_db`.
    PaymentCompleted,
}

impl OutboxTable {
    /// The table's name, also the outbox's name in metrics labels.
    pub const fn name(self) -> &'static str {
        match self {
            Self::OrderCreated => "order_created_outbox",
            Self::PaymentCompleted => "payment_completed_outbox",
        }
    }
}

/// Expands `$op!` for the literal name of `$table`.
macro_rules! per_table {
    ($table:expr, $op:ident!($($arg:expr),*)) => {
        match $table {
            OutboxTable::OrderCreated => $op!("order_created_outbox" $(, $arg)*),
            OutboxTable::PaymentCompleted => $op!("payment_completed_outbox" $(, $arg)*),
        }
    };
}

macro_rules! claim {
    ($table:literal, $pool:expr, $limit:expr, $lease:expr) => {
        sqlx::query!(
            "UPDATE " + $table + r#" SET locked_until = (now() AT TIME ZONE 'UTC') + make_interval(secs => $2)
               WHERE id IN (
                   SELECT id FROM "# + $table + r#"
                   WHERE status = 'PENDING'
                     AND next_attempt_at <= (now() AT TIME ZONE 'UTC')
                     AND (locked_until IS NULL OR locked_until <= (now() AT TIME ZONE 'UTC'))
                   ORDER BY created_at
                   LIMIT $1
                   FOR UPDATE SKIP LOCKED)
               RETURNING id, aggregate_id, topic, payload::text AS "payload!", headers, retry_count"#,
            $limit,
            $lease
        )
        .fetch_all($pool)
        .await?
        .into_iter()
        .map(|row| OutboxMessage {
            id: row.id,
            topic: row.topic,
            key: row.aggregate_id.to_string(),
            payload: row.payload.into_bytes(),
            headers: headers_from_json(&row.headers),
            attempts: row.retry_count,
        })
        .collect()
    };
}

macro_rules! mark_published {
    ($table:literal, $pool:expr, $ids:expr) => {
        sqlx::query!(
            "UPDATE " + $table + " SET status = 'PUBLISHED', published_at = (now() AT TIME ZONE 'UTC'), locked_until = NULL
             WHERE id = ANY($1)",
            $ids
        )
        .execute($pool)
        .await?
    };
}

macro_rules! mark_failed {
    ($table:literal, $pool:expr, $id:expr, $error:expr, $retry_in:expr, $give_up_after:expr) => {
        sqlx::query!(
            "UPDATE " + $table + " SET retry_count = retry_count + 1, error_message = $2, locked_until = NULL,
                 next_attempt_at = (now() AT TIME ZONE 'UTC') + make_interval(secs => $3),
                 status = CASE WHEN created_at < (now() AT TIME ZONE 'UTC') - make_interval(secs => $4)
                               THEN 'FAILED' ELSE status END
             WHERE id = $1 AND status = 'PENDING'",
            $id,
            $error,
            $retry_in,
            $give_up_after
        )
        .execute($pool)
        .await?
    };
}

macro_rules! counts {
    ($table:literal, $pool:expr) => {{
        let row = sqlx::query!(
            r#"SELECT count(*) FILTER (WHERE status = 'PENDING') AS "pending!",
                      count(*) FILTER (WHERE status = 'FAILED') AS "failed!",
                      COALESCE(EXTRACT(EPOCH FROM (now() AT TIME ZONE 'UTC')
                          - min(created_at) FILTER (WHERE status = 'PENDING')), 0)::int8 AS "oldest!"
               FROM "# + $table + " WHERE status IN ('PENDING', 'FAILED')"
        )
        .fetch_one($pool)
        .await?;
        OutboxCounts {
            pending: row.pending,
            failed: row.failed,
            oldest_pending_secs: row.oldest.max(0),
        }
    }};
}

macro_rules! purge_published {
    ($table:literal, $pool:expr, $age:expr) => {
        sqlx::query!(
            "DELETE FROM "
                + $table
                + " WHERE status = 'PUBLISHED'
               AND published_at < (now() AT TIME ZONE 'UTC') - make_interval(secs => $1)",
            $age
        )
        .execute($pool)
        .await?
        .rows_affected()
    };
}

macro_rules! status {
    ($table:literal, $pool:expr) => {{
        let row = sqlx::query!(
            r#"SELECT count(*) FILTER (WHERE status = 'PENDING') AS "pending!",
                      count(*) FILTER (WHERE status = 'PUBLISHED') AS "published!",
                      count(*) FILTER (WHERE status = 'FAILED') AS "failed!",
                      EXTRACT(EPOCH FROM (now() AT TIME ZONE 'UTC')
                          - min(created_at) FILTER (WHERE status = 'PENDING'))::int8 AS "oldest_pending_secs?",
                      (SELECT error_message FROM "# + $table + r#" WHERE status = 'FAILED'
                       ORDER BY created_at DESC LIMIT 1) AS "last_error?"
               FROM "# + $table
        )
        .fetch_one($pool)
        .await?;
        OutboxStatus {
            pending: row.pending,
            published: row.published,
            failed: row.failed,
            oldest_pending_secs: row.oldest_pending_secs.map(|s| s.max(0)),
            last_error: row.last_error,
        }
    }};
}

macro_rules! requeue {
    ($table:literal, $pool:expr, $failed_only:expr, $older_than:expr, $include_published:expr, $aggregate_id:expr, $topic:expr) => {
        sqlx::query!(
            "UPDATE " + $table + " SET status = 'PENDING', retry_count = 0, next_attempt_at = (now() AT TIME ZONE 'UTC'),
                 locked_until = NULL, error_message = NULL
             WHERE (status = 'FAILED'
                    OR ($3 AND status = 'PUBLISHED')
                    OR (NOT $1 AND status = 'PENDING' AND next_attempt_at > (now() AT TIME ZONE 'UTC')
                        AND (locked_until IS NULL OR locked_until < (now() AT TIME ZONE 'UTC'))))
               AND created_at <= (now() AT TIME ZONE 'UTC') - make_interval(secs => $2)
               AND ($4::uuid IS NULL OR aggregate_id = $4)
               AND ($5::text IS NULL OR topic = $5)",
            $failed_only,
            $older_than,
            $include_published,
            $aggregate_id,
            $topic
        )
        .execute($pool)
        .await?
        .rows_affected()
    };
}

macro_rules! count_of_aggregate {
    ($table:literal, $pool:expr, $aggregate_id:expr, $topic:expr) => {
        sqlx::query_scalar!(
            r#"SELECT count(*) AS "n!" FROM "#
                + $table
                + r#"
               WHERE aggregate_id = $1 AND ($2::text IS NULL OR topic = $2)"#,
            $aggregate_id,
            $topic
        )
        .fetch_one($pool)
        .await?
    };
}

/// Row counts of one outbox by status, for an operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxStatus {
    pub pending: i64,
    pub published: i64,
    pub failed: i64,
    /// Age in seconds of the oldest `PENDING` row; `None` when there is none.
    pub oldest_pending_secs: Option<i64>,
    /// The error of the most recent `FAILED` row.
    pub last_error: Option<String>,
}

/// Which rows a requeue makes due again.
#[derive(Debug, Clone, Copy, Default)]
pub struct Requeue<'a> {
    /// Only `FAILED` rows (else also `PENDING` rows waiting on a backoff).
    pub failed_only: bool,
    /// Only rows created at least this long ago.
    pub older_than: Option<Duration>,
    /// Only the rows of this aggregate (an order id).
    pub aggregate_id: Option<Uuid>,
    /// Only rows for this topic (`payment_completed_outbox` carries several).
    pub topic: Option<&'a str>,
    /// Also rows already `PUBLISHED`: re-publishing one is how an event that was
    /// published but never took effect is sent again (consumers deduplicate).
    pub include_published: bool,
}

/// An outbox table in a database; cheap to clone.
#[derive(Debug, Clone)]
pub struct PgOutboxStore {
    pool: PgPool,
    table: OutboxTable,
}

impl PgOutboxStore {
    pub fn new(pool: PgPool, table: OutboxTable) -> Self {
        Self { pool, table }
    }

    pub fn table(&self) -> OutboxTable {
        self.table
    }

    /// Row counts by status, the age of the oldest `PENDING` row and the last error.
    pub async fn status(&self) -> Result<OutboxStatus, sqlx::Error> {
        Ok(per_table!(self.table, status!(&self.pool)))
    }

    /// Makes the rows of `selection` due now with their backoff reset: `FAILED` rows
    /// (and `PUBLISHED` ones when asked) become `PENDING`, and unless `failed_only`,
    /// `PENDING` rows waiting on a backoff are due at once (a row leased by a relay that
    /// is publishing it right now is left alone). Returns how many rows changed.
    pub async fn requeue(&self, selection: &Requeue<'_>) -> Result<u64, sqlx::Error> {
        let older_than = selection.older_than.unwrap_or_default().as_secs_f64();
        Ok(per_table!(
            self.table,
            requeue!(
                &self.pool,
                selection.failed_only,
                older_than,
                selection.include_published,
                selection.aggregate_id,
                selection.topic
            )
        ))
    }

    /// How many rows `aggregate_id` has, only those for `topic` when given.
    pub async fn count_of_aggregate(
        &self,
        aggregate_id: Uuid,
        topic: Option<&str>,
    ) -> Result<i64, sqlx::Error> {
        Ok(per_table!(
            self.table,
            count_of_aggregate!(&self.pool, aggregate_id, topic)
        ))
    }

    /// The `outbox` health component: always UP (the outbox is what keeps a service
    /// working while the broker is down), with the backlog as details.
    pub fn health_indicator(&self) -> impl HealthIndicator {
        let store = self.clone();
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
}

/// Header pairs from the JSON object stored in a row.
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

impl OutboxStore for PgOutboxStore {
    fn claim(
        &self,
        limit: i64,
        lease: Duration,
    ) -> BoxFuture<'_, Result<Vec<OutboxMessage>, sqlx::Error>> {
        Box::pin(async move {
            let lease = lease.as_secs_f64();
            Ok(per_table!(self.table, claim!(&self.pool, limit, lease)))
        })
    }

    fn mark_published(&self, ids: Vec<Uuid>) -> BoxFuture<'_, Result<(), sqlx::Error>> {
        Box::pin(async move {
            per_table!(self.table, mark_published!(&self.pool, &ids));
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
            let retry_in = retry_in.as_secs_f64();
            let give_up_after = give_up_after.as_secs_f64();
            per_table!(
                self.table,
                mark_failed!(&self.pool, id, &error, retry_in, give_up_after)
            );
            Ok(())
        })
    }

    fn counts(&self) -> BoxFuture<'_, Result<OutboxCounts, sqlx::Error>> {
        Box::pin(async move { Ok(per_table!(self.table, counts!(&self.pool))) })
    }

    fn purge_published(&self, age: Duration) -> BoxFuture<'_, Result<u64, sqlx::Error>> {
        Box::pin(async move {
            let age = age.as_secs_f64();
            Ok(per_table!(self.table, purge_published!(&self.pool, age)))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_keep_the_string_values_of_the_stored_object() {
        let value = serde_json::json!({"eventType": "OrderCreated", "attempt": 1});
        assert_eq!(
            headers_from_json(&value),
            vec![("eventType".to_owned(), "OrderCreated".to_owned())]
        );
        assert!(headers_from_json(&serde_json::json!([1, 2])).is_empty());
    }
}
