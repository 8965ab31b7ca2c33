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
//!
//! The SQL is the services' own, `platform::outbox::PgOutboxStore`.

use crate::cli::{OutboxChoice, OutboxCommand, Settings};
use crate::duration;
use crate::output::{self, Output};
use crate::Outcome;
use platform::outbox::{OutboxTable, PgOutboxStore, Requeue};
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
        self.store_table().name()
    }

    pub fn database(self) -> &'static str {
        match self {
            Self::OrderCreated => "customer_db",
            Self::PaymentCompleted => "order_db",
        }
    }

    fn store_table(self) -> OutboxTable {
        match self {
            Self::OrderCreated => OutboxTable::OrderCreated,
            Self::PaymentCompleted => OutboxTable::PaymentCompleted,
        }
    }

    /// The services' own store of this table, in `pool`.
    fn store(self, pool: &PgPool) -> PgOutboxStore {
        PgOutboxStore::new(pool.clone(), self.store_table())
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

/// Counts the rows of `outbox` by status.
pub async fn status(pool: &PgPool, outbox: Outbox) -> anyhow::Result<OutboxStatus> {
    let status = outbox.store(pool).status().await?;
    Ok(OutboxStatus {
        outbox,
        database: outbox.database(),
        pending: status.pending,
        published: status.published,
        failed: status.failed,
        oldest_pending_age_secs: status
            .oldest_pending_secs
            .map(|secs| u64::try_from(secs).unwrap_or(0)),
        last_error: status.last_error,
    })
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
    let selection = Requeue {
        failed_only,
        older_than,
        ..Requeue::default()
    };
    Ok(outbox.store(pool).requeue(&selection).await?)
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
    let store = outbox.store(pool);
    let selection = Requeue {
        aggregate_id: Some(aggregate_id),
        topic,
        include_published: true,
        ..Requeue::default()
    };
    let requeued = store.requeue(&selection).await?;
    let rows = store.count_of_aggregate(aggregate_id, topic).await?;
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
