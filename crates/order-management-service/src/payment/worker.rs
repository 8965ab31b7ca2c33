//! The retry worker: resumes payments the gateway did not answer (breaker open,
//! timeouts, a crash between commit and payment), once they are due, and ends the ones
//! still unanswered at the payment deadline (order FAILED, stock released, refund by key
//! requested), breaker open or not: every order reaches an end. It also keeps the
//! breaker's state gauge current while nothing else calls it.

use super::PaymentProcessor;
use crate::db;
use platform::context;
use platform::db::Db;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Payments resumed per pass at most.
const BATCH: i64 = 50;

/// Runs until `shutdown`, looking for due payments every `interval`.
pub async fn run(
    processor: PaymentProcessor,
    db: Db,
    interval: Duration,
    shutdown: CancellationToken,
) {
    tracing::info!(
        intervalMs = interval.as_millis() as u64,
        "payment retry worker started"
    );
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(interval) => {}
        }
        match processor.expire_overdue().await {
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %format!("{e:#}"), "payment deadline pass failed"),
        }
        let breaker = processor.client().breaker().state();
        if breaker == super::breaker::State::Open {
            continue;
        }
        let due = match db.acquire().await {
            Ok(mut conn) => db::payments::due(&mut conn, BATCH).await,
            Err(e) => Err(e),
        };
        let due = match due {
            Ok(due) => due,
            Err(e) => {
                tracing::warn!(error = %e, "payment retry pass failed");
                continue;
            }
        };
        if due.is_empty() {
            continue;
        }
        tracing::info!(count = due.len(), "resuming pending payments");
        let passes = due.into_iter().map(|order_id| {
            let processor = processor.clone();
            async move {
                let correlation = correlation_of(&processor, order_id).await;
                let ctx = PaymentProcessor::context_for(correlation);
                context::scope(ctx, processor.process_logged(order_id)).await;
            }
        });
        futures::future::join_all(passes).await;
    }
    tracing::info!("payment retry worker stopped");
}

async fn correlation_of(processor: &PaymentProcessor, order_id: uuid::Uuid) -> Option<String> {
    let db = &processor.inner.db;
    let mut conn = db.acquire().await.ok()?;
    sqlx::query_scalar!("SELECT correlation_id FROM orders WHERE id = $1", order_id)
        .fetch_optional(&mut *conn)
        .await
        .ok()
        .flatten()
        .flatten()
}
