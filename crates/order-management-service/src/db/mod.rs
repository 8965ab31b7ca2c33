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

/// Whether a database error is about the data (SQLSTATE class 22 data exception or
/// 23 integrity violation): retrying cannot help, so the record is poison.
pub fn is_data_error(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|code| code.starts_with("22") || code.starts_with("23")),
        _ => false,
    }
}
