//! The scheduled cleanup: expired idempotency keys (24 h) and expired carts.

use platform::db::Db;
use platform::idempotency;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Deletes expired idempotency keys and carts every `interval` until `shutdown`.
pub async fn run_cleanup(db: Db, interval: Duration, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(interval) => {}
        }
        cleanup_once(&db).await;
    }
}

/// One pass of the cleanup; failures are logged and retried next time.
pub async fn cleanup_once(db: &Db) {
    match idempotency::delete_expired(db.pool(), platform::time::now()).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(deleted = n, "expired idempotency keys deleted"),
        Err(e) => tracing::warn!(error = %e, "idempotency cleanup failed"),
    }
    match crate::carts::delete_expired(db).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(deleted = n, "expired carts deleted"),
        Err(e) => tracing::warn!(error = %e, "cart cleanup failed"),
    }
}
