//! The consumers of group `order-service-group`: `orders.created` creates orders, in
//! one `order_db` transaction that begins with the `processed_events` guard, so a
//! redelivered record changes nothing; `payments.completed` only checks the event
//! against the payment already recorded with it (ADR 0007).
//! Undecodable or invalid records are poison (dead-lettered at once by the platform);
//! transient database trouble is waited out ([`ride_out`]) before bounded retries.

pub mod order_created;
pub mod payment_completed;

use platform::kafka::{HandlerError, Record};
use std::future::Future;

/// Runs a handler's `attempt`, waiting out transient database trouble (an outage, a
/// failover, no free connection, a deadlock) for up to
/// [`platform::kafka::TRANSIENT_BUDGET`] before the platform's bounded retries, and then
/// the DLQ, take over: a customer who got a 201 never has their order dead-lettered by
/// a database blip.
pub(crate) async fn ride_out<F, Fut>(attempt: F) -> Result<(), HandlerError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), HandlerError>>,
{
    platform::kafka::ride_out_transient(
        platform::kafka::TRANSIENT_BUDGET,
        platform::kafka::caused_by_transient_db_error,
        attempt,
    )
    .await
}

/// Maps a database error: data errors can never succeed, the rest may.
pub(crate) fn db_error(e: sqlx::Error) -> HandlerError {
    platform::kafka::db_error("order_db")(e)
}

/// Decodes a JSON record value, or says why it is poison.
pub(crate) fn decode<T: serde::de::DeserializeOwned>(record: &Record) -> Result<T, HandlerError> {
    platform::kafka::decode(record)
}
