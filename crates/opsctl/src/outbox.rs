//! Both transactional outboxes: `order_created_outbox` in `customer_db` (the
//! customer-facing service's `orders.created` events) and `payment_completed_outbox` in
//! `order_db` (the order service's `payments.completed` events). Same shape, so the same
//! commands serve both.
//!
//! Requeue only changes rows: the services' relays poll for due `PENDING` rows and
//! publish them; no service needs a restart.
//!
//! [`requeue_order`] re-publishes the rows of one order (also `PUBLISHED` ones); it is
//! what `opsctl reconcile --repair` uses for a missing order's checkout event and for an
//! `orders.released` event whose stock never came back.

use crate::cli::{OutboxChoice, OutboxCommand, Settings};
use crate::duration;
use crate::output::{self, Output};
use crate::Outcome;
use serde::Serialize;
use sqlx::PgPool;
use std::time::Duration;
use uuid::Uuid;

/// Which table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Outbox {
    #[serde(rename = "order_created_outbox")]
    OrderCreated,
    #[serde(rename = "payment_completed_outbox")]
    PaymentCompleted,
}

impl Outbox {
    pub fn table(self) -> &'static str {
        match self {
            Self::OrderCreated => "order_created_outbox",
            Self::PaymentCompleted => "payment_completed_outbox",
        }
    }

    pub fn database(self) -> &'static str {
        match self {
            Self::OrderCreated => "customer_db",
            Self::PaymentCompleted => "order_db",
        }
    }

    fn chosen(choice: OutboxChoice) -> Vec<Self> {
        match choice {
            OutboxChoice::Customer => vec![Self::OrderCreated],
            OutboxChoice::Order => vec![Self::PaymentCompleted],
            OutboxChoice::All => vec![Self::OrderCreated, Self::PaymentCompleted],
        }
    }
}

/// Row counts of one outbox.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct OutboxStatus {
    pub outbox: Outbox,
    pub database: &'static str,
    pub pending: i64,
    pub published: i64,
    pub failed: i64,
    /// Age in seconds of the oldest `PENDING` row.
    pub oldest_pending_age_secs: Option<u64>,
    /// The error of the most recent `FAILED` row.
    pub last_error: Option<String>,
}

struct Row {
    status: String,
    count: i64,
    oldest: Option<chrono::NaiveDateTime>,
}

/// Counts the rows of `outbox` by status.
pub async fn status(pool: &PgPool, outbox: Outbox) -> anyhow::Result<OutboxStatus> {
    let (rows, last_error) = match outbox {
        Outbox::OrderCreated => {
            let rows = sqlx::query_as!(
                Row,
                r#"SELECT status AS "status!", count(*) AS "count!", min(created_at) AS oldest
                   FROM order_created_outbox GROUP BY status"#
            )
            .fetch_all(pool)
            .await?;
            let error = sqlx::query_scalar!(
                "SELECT error_message FROM order_created_outbox WHERE status = 'FAILED'
                 ORDER BY created_at DESC LIMIT 1"
            )
            .fetch_optional(pool)
            .await?
            .flatten();
            (rows, error)
        }
        Outbox::PaymentCompleted => {
            let rows = sqlx::query_as!(
                Row,
                r#"SELECT status AS "status!", count(*) AS "count!", min(created_at) AS oldest
                   FROM payment_completed_outbox GROUP BY status"#
            )
            .fetch_all(pool)
            .await?;
            let error = sqlx::query_scalar!(
                "SELECT error_message FROM payment_completed_outbox WHERE status = 'FAILED'
                 ORDER BY created_at DESC LIMIT 1"
            )
            .fetch_optional(pool)
            .await?
            .flatten();
            (rows, error)
        }
    };
    let count = |status: &str| {
        rows.iter()
            .find(|r| r.status == status)
            .map_or(0, |r| r.count)
    };
    let oldest_pending = rows
        .iter()
        .find(|r| r.status == "PENDING")
        .and_then(|r| r.oldest);
    Ok(OutboxStatus {
        outbox,
        database: outbox.database(),
        pending: count("PENDING"),
        published: count("PUBLISHED"),
        failed: count("FAILED"),
        oldest_pending_age_secs: oldest_pending.map(|t| duration::age(t).as_secs()),
        last_error,
    })
}

/// Which rows a requeue makes due again.
#[derive(Debug, Clone, Copy, Default)]
pub struct Selection<'a> {
    /// Only `FAILED` rows (else also `PENDING` rows waiting on a backoff).
    pub failed_only: bool,
    /// Only rows created at least this long ago.
    pub older_than: Option<Duration>,
    /// Only the rows of this aggregate (an order id); see [`requeue_order`].
    pub aggregate_id: Option<Uuid>,
    /// Only rows for this topic (`payment_completed_outbox` carries several).
    pub topic: Option<&'a str>,
    /// Also rows already `PUBLISHED`: re-publishing one is how an event that was
    /// published but never took effect is sent again (consumers deduplicate).
    pub include_published: bool,
}

/// Makes rows due now with their backoff reset: `FAILED` rows become `PENDING`, and
/// unless `failed_only`, `PENDING` rows waiting on a backoff are due at once (a row
/// leased by a relay that is publishing it right now is left alone).
/// Only rows created at least `older_than` ago when given. Returns how many rows changed.
pub async fn requeue(
    pool: &PgPool,
    outbox: Outbox,
    failed_only: bool,
    older_than: Option<Duration>,
) -> anyhow::Result<u64> {
    let selection = Selection {
        failed_only,
        older_than,
        ..Selection::default()
    };
    requeue_selected(pool, outbox, &selection).await
}

/// Makes the rows of `selection` due now with their backoff reset (see [`requeue`]).
/// Returns how many rows changed.
pub async fn requeue_selected(
    pool: &PgPool,
    outbox: Outbox,
    selection: &Selection<'_>,
) -> anyhow::Result<u64> {
    let now = chrono::Utc::now().naive_utc();
    let cutoff = selection.older_than.map_or(now, duration::ago);
    let result = match outbox {
        Outbox::OrderCreated => {
            sqlx::query!(
                "UPDATE order_created_outbox
                 SET status = 'PENDING', retry_count = 0, next_attempt_at = $1,
                     locked_until = NULL, error_message = NULL
                 WHERE (status = 'FAILED'
                        OR ($4 AND status = 'PUBLISHED')
                        OR (NOT $2 AND status = 'PENDING' AND next_attempt_at > $1
                            AND (locked_until IS NULL OR locked_until < $1)))
                   AND created_at <= $3
                   AND ($5::uuid IS NULL OR aggregate_id = $5)
                   AND ($6::text IS NULL OR topic = $6)",
                now,
                selection.failed_only,
                cutoff,
                selection.include_published,
                selection.aggregate_id,
                selection.topic
            )
            .execute(pool)
            .await?
        }
        Outbox::PaymentCompleted => {
            sqlx::query!(
                "UPDATE payment_completed_outbox
                 SET status = 'PENDING', retry_count = 0, next_attempt_at = $1,
                     locked_until = NULL, error_message = NULL
                 WHERE (status = 'FAILED'
                        OR ($4 AND status = 'PUBLISHED')
                        OR (NOT $2 AND status = 'PENDING' AND next_attempt_at > $1
                            AND (locked_until IS NULL OR locked_until < $1)))
                   AND created_at <= $3
                   AND ($5::uuid IS NULL OR aggregate_id = $5)
                   AND ($6::text IS NULL OR topic = $6)",
                now,
                selection.failed_only,
                cutoff,
                selection.include_published,
                selection.aggregate_id,
                selection.topic
            )
            .execute(pool)
            .await?
        }
    };
    Ok(result.rows_affected())
}

/// What [`requeue_order`] found and did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderRequeue {
    /// Rows of the order (for the topic) in the outbox.
    pub rows: i64,
    /// Rows made due now; 0 with `rows > 0` means they were already due (or a relay is
    /// publishing them right now).
    pub requeued: u64,
}

/// Re-publishes the rows of one order (`aggregate_id`), optionally only those for
/// `topic`, whatever their status: `FAILED` and `PUBLISHED` rows become `PENDING`, rows
/// waiting on a backoff are due now. Running it again before the relay published them
/// changes nothing, so it is safe to repeat.
pub async fn requeue_order(
    pool: &PgPool,
    outbox: Outbox,
    aggregate_id: Uuid,
    topic: Option<&str>,
) -> anyhow::Result<OrderRequeue> {
    let selection = Selection {
        aggregate_id: Some(aggregate_id),
        topic,
        include_published: true,
        ..Selection::default()
    };
    let requeued = requeue_selected(pool, outbox, &selection).await?;
    let rows = match outbox {
        Outbox::OrderCreated => {
            sqlx::query_scalar!(
                r#"SELECT count(*) AS "n!" FROM order_created_outbox
               WHERE aggregate_id = $1 AND ($2::text IS NULL OR topic = $2)"#,
                aggregate_id,
                topic
            )
            .fetch_one(pool)
            .await?
        }
        Outbox::PaymentCompleted => {
            sqlx::query_scalar!(
                r#"SELECT count(*) AS "n!" FROM payment_completed_outbox
               WHERE aggregate_id = $1 AND ($2::text IS NULL OR topic = $2)"#,
                aggregate_id,
                topic
            )
            .fetch_one(pool)
            .await?
        }
    };
    Ok(OrderRequeue { rows, requeued })
}

async fn pool_for(settings: &Settings, outbox: Outbox) -> anyhow::Result<PgPool> {
    let url = match outbox {
        Outbox::OrderCreated => &settings.customer_database_url,
        Outbox::PaymentCompleted => &settings.order_database_url,
    };
    crate::db::connect(url, outbox.database()).await
}

/// A requeue's result for one outbox.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Requeued {
    outbox: Outbox,
    requeued: u64,
}

/// Runs `opsctl outbox ...`.
pub async fn run(
    settings: &Settings,
    command: OutboxCommand,
    out: &Output,
) -> anyhow::Result<Outcome> {
    match command {
        OutboxCommand::Status { outbox } => {
            let mut statuses = Vec::new();
            for outbox in Outbox::chosen(outbox) {
                let pool = pool_for(settings, outbox).await?;
                statuses.push(status(&pool, outbox).await?);
            }
            if out.json() {
                out.print_json(&statuses)?;
            } else {
                let rows = statuses
                    .iter()
                    .map(|s| {
                        vec![
                            s.outbox.table().to_owned(),
                            s.database.to_owned(),
                            s.pending.to_string(),
                            s.failed.to_string(),
                            s.published.to_string(),
                            output::opt(
                                s.oldest_pending_age_secs
                                    .map(|a| duration::human(Duration::from_secs(a))),
                            ),
                            output::truncate(s.last_error.as_deref().unwrap_or("-"), 60),
                        ]
                    })
                    .collect();
                out.print_table(
                    &[
                        "OUTBOX",
                        "DATABASE",
                        "PENDING",
                        "FAILED",
                        "PUBLISHED",
                        "OLDEST PENDING",
                        "LAST ERROR",
                    ],
                    rows,
                );
            }
        }
        OutboxCommand::Requeue {
            failed,
            older_than,
            outbox,
        } => {
            let mut results = Vec::new();
            for outbox in Outbox::chosen(outbox) {
                let pool = pool_for(settings, outbox).await?;
                let requeued = requeue(&pool, outbox, failed, older_than).await?;
                results.push(Requeued { outbox, requeued });
            }
            if out.json() {
                out.print_json(&results)?;
            } else {
                for r in &results {
                    println!("{}: {} row(s) requeued", r.outbox.table(), r.requeued);
                }
            }
        }
    }
    Ok(Outcome::Ok)
}
