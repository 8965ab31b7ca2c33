//! The consumers of group `order-service-group`: `orders.created` creates orders, in
//! one `order_db` transaction that begins with the `processed_events` guard, so a
//! redelivered record changes nothing; `payments.completed` only checks the event
//! against the payment already recorded with it (ADR 0007).
//! Undecodable or invalid records are poison (dead-lettered at once by the platform);
//! database trouble is retryable, and while PostgreSQL is unreachable a record waits for
//! it (up to [`OUTAGE_PATIENCE`]) instead of being dead-lettered by a short outage.

pub mod order_created;
pub mod payment_completed;

use platform::kafka::HandlerError;
use std::future::Future;
use std::time::Duration;

/// How long a record waits for an unreachable database before the platform's bounded
/// retries (and then the DLQ) take over.
pub const OUTAGE_PATIENCE: Duration = Duration::from_secs(60);

/// Whether `e` means the database could not be reached, rather than that the work failed.
pub(crate) fn is_connection_error(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|code| code.starts_with("08") || code == "57P01" || code == "57P03"),
        _ => false,
    }
}

/// Runs `attempt` again while it fails because the database is unreachable, with
/// backoff, for up to `patience`.
pub(crate) async fn ride_out_outages<F, Fut>(
    patience: Duration,
    mut attempt: F,
) -> Result<(), HandlerError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), HandlerError>>,
{
    let deadline = tokio::time::Instant::now() + patience;
    let mut delay = Duration::from_millis(500);
    loop {
        match attempt().await {
            Err(HandlerError::Retryable(e))
                if tokio::time::Instant::now() < deadline
                    && e.chain().any(|c| {
                        c.downcast_ref::<sqlx::Error>()
                            .is_some_and(is_connection_error)
                    }) =>
            {
                tracing::warn!(error = %format!("{e:#}"), "database unreachable; the record waits for it");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
            result => return result,
        }
    }
}

/// Maps a database error: data errors can never succeed, the rest may.
pub(crate) fn db_error(e: sqlx::Error) -> HandlerError {
    if crate::db::is_data_error(&e) {
        HandlerError::poison("DataIntegrityViolationException", e)
    } else {
        HandlerError::Retryable(anyhow::Error::new(e).context("order_db"))
    }
}

/// Decodes a JSON record value, or says why it is poison.
pub(crate) fn decode<T: serde::de::DeserializeOwned>(
    record: &platform::kafka::Record,
) -> Result<T, HandlerError> {
    let payload = record
        .payload
        .as_deref()
        .ok_or_else(|| HandlerError::poison("DeserializationException", "record has no value"))?;
    serde_json::from_slice(payload).map_err(|e| HandlerError::poison("DeserializationException", e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test(start_paused = true)]
    async fn a_record_waits_out_a_database_outage_but_not_other_failures() {
        let calls = AtomicU32::new(0);
        let result = ride_out_outages(OUTAGE_PATIENCE, || async {
            if calls.fetch_add(1, Ordering::SeqCst) < 3 {
                Err(db_error(sqlx::Error::PoolTimedOut))
            } else {
                Ok(())
            }
        })
        .await;
        assert!(result.is_ok());
        assert_eq!(calls.load(Ordering::SeqCst), 4);

        let calls = AtomicU32::new(0);
        let result = ride_out_outages(OUTAGE_PATIENCE, || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(db_error(sqlx::Error::RowNotFound))
        })
        .await;
        assert!(matches!(result, Err(HandlerError::Retryable(_))));
        assert_eq!(calls.load(Ordering::SeqCst), 1);

        let result = ride_out_outages(Duration::from_secs(3), || async {
            Err(db_error(sqlx::Error::PoolTimedOut))
        })
        .await;
        assert!(
            matches!(result, Err(HandlerError::Retryable(_))),
            "gives up after the patience"
        );
    }
}
