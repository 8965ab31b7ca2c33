//! The consumers of group `order-service-group`: `orders.created` creates orders, in
//! one `order_db` transaction that begins with the `processed_events` guard, so a
//! redelivered record changes nothing; `payments.completed` only checks the event
//! against the payment already recorded with it (ADR 0007).
//! Undecodable or invalid records are poison (dead-lettered at once by the platform);
//! transient database trouble is waited out by the platform's consumer, for its
//! transient budget, before bounded retries.

pub mod order_created;
pub mod payment_completed;

use platform::kafka::HandlerError;

/// Maps a database error: data errors can never succeed, the rest may.
pub(crate) fn db_error(e: sqlx::Error) -> HandlerError {
    platform::kafka::db_error("order_db")(e)
}

pub(crate) use platform::kafka::decode;
