//! The consumers of group `order-service-group`: `orders.created` creates orders,
//! `payments.completed` settles them. Each record is one `order_db` transaction that
//! begins with the `processed_events` guard, so a redelivered record changes nothing.
//! Undecodable or invalid records are poison (dead-lettered at once by the platform);
//! database trouble is retryable.

pub mod order_created;
pub mod payment_completed;

use platform::kafka::HandlerError;

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
