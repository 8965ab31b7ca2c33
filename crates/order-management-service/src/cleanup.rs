//! The cleanup job: deletes `processed_events` rows past their retention (the
//! original's `cleanup_old_processed_events()`, which nothing ever scheduled). A replay
//! older than that still changes nothing: an order exists once per checkout
//! (`source_order_id`), and a settled payment is not settled again.

use crate::db;
use platform::db::Db;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often the job runs.
const EVERY: Duration = Duration::from_secs(3600);

/// Runs until `shutdown`: once shortly after start, then every hour.
pub async fn run(db: Db, retention: Duration, shutdown: CancellationToken) {
    let mut wait = Duration::from_secs(60);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(wait) => {}
        }
        wait = EVERY;
        let purged = match db.acquire().await {
            Ok(mut conn) => db::events::purge_processed(&mut conn, retention.as_secs_f64()).await,
            Err(e) => Err(e),
        };
        match purged {
            Ok(0) => {}
            Ok(n) => tracing::info!(purged = n, "old processed events deleted"),
            Err(e) => tracing::warn!(error = %e, "processed events cleanup failed"),
        }
    }
}
