//! Checkout idempotency keys (`checkout_idempotency` in `customer_db`): the runbook's
//! section 5.3 query as a command, and pruning of old keys after an audit. The
//! statements are [`platform::idempotency`]'s, shared with the customer service.

use crate::cli::{IdempotencyCommand, Settings};
use crate::duration;
use crate::output::{self, Output};
use crate::Outcome;
use platform::idempotency::{self, KeyRecord};
use sqlx::PgPool;
use std::time::Duration;

/// The `limit` most recent keys, newest first.
pub async fn list(pool: &PgPool, limit: i64) -> anyhow::Result<Vec<KeyRecord>> {
    Ok(idempotency::list_recent(pool, limit).await?)
}

/// Deletes keys created more than `older_than` ago (or counts them when `dry_run`).
pub async fn prune(pool: &PgPool, older_than: Duration, dry_run: bool) -> anyhow::Result<u64> {
    let cutoff = duration::ago(older_than);
    if dry_run {
        let n = idempotency::count_created_before(pool, cutoff).await?;
        return Ok(u64::try_from(n).unwrap_or_default());
    }
    Ok(idempotency::delete_created_before(pool, cutoff).await?)
}

/// Runs `opsctl idempotency ...`.
pub async fn run(
    settings: &Settings,
    command: IdempotencyCommand,
    out: &Output,
) -> anyhow::Result<Outcome> {
    let pool = crate::db::connect(&settings.customer_database_url, "customer_db").await?;
    match command {
        IdempotencyCommand::List { limit } => {
            anyhow::ensure!(limit > 0, "--limit must be at least 1");
            let keys = list(&pool, limit).await?;
            if out.json() {
                out.print_json(&keys)?;
            } else {
                let rows = keys
                    .iter()
                    .map(|k| {
                        vec![
                            k.idempotency_key.clone(),
                            k.status.clone(),
                            k.created_at.format("%Y-%m-%d %H:%M:%S").to_string(),
                            k.expires_at.format("%Y-%m-%d %H:%M:%S").to_string(),
                            output::opt(k.response_status),
                        ]
                    })
                    .collect();
                out.print_table(
                    &[
                        "IDEMPOTENCY_KEY",
                        "STATUS",
                        "CREATED_AT (UTC)",
                        "EXPIRES_AT (UTC)",
                        "RESPONSE",
                    ],
                    rows,
                );
            }
        }
        IdempotencyCommand::Prune {
            older_than,
            dry_run,
        } => {
            let n = prune(&pool, older_than, dry_run).await?;
            if out.json() {
                out.print_json(&serde_json::json!({ "dryRun": dry_run, "keys": n }))?;
            } else if dry_run {
                println!(
                    "would delete {n} key(s) created more than {} ago",
                    duration::human(older_than)
                );
            } else {
                println!(
                    "deleted {n} key(s) created more than {} ago",
                    duration::human(older_than)
                );
            }
        }
    }
    Ok(Outcome::Ok)
}
