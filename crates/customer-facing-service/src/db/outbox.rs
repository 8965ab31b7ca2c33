//! Reads of the `order_created_outbox` table beyond the relay's own (which the
//! platform's outbox store makes).

use chrono::NaiveDateTime;
use sqlx::PgConnection;

/// An outbox row's event and when it was written.
pub struct RecordedEvent {
    pub payload: serde_json::Value,
    pub created_at: NaiveDateTime,
}

/// The first `orders.created` event written for order `number`, or `None`.
pub async fn order_created(
    conn: &mut PgConnection,
    number: &str,
) -> sqlx::Result<Option<RecordedEvent>> {
    sqlx::query_as!(
        RecordedEvent,
        "SELECT payload, created_at FROM order_created_outbox \
         WHERE payload ->> 'orderNumber' = $1 \
         ORDER BY created_at LIMIT 1",
        number
    )
    .fetch_optional(conn)
    .await
}
