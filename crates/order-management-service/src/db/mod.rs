//! The SQL of `order_db`, one module per concern; functions that write take the
//! transaction they write in.

pub mod events;
pub mod orders;
pub mod outbox;
pub mod payments;

/// UTC wall-clock now, as the `TIMESTAMP` columns hold it.
pub fn now() -> chrono::NaiveDateTime {
    chrono::Utc::now().naive_utc()
}
