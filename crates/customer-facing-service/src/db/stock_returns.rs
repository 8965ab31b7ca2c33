//! The `stock_returns` table: one row per order whose stock came back, its guard
//! against returning it twice.

use chrono::NaiveDateTime;
use sqlx::PgConnection;
use uuid::Uuid;

/// A return to record.
pub struct NewReturn<'a> {
    pub order_id: Uuid,
    pub order_number: &'a str,
    pub event_id: Uuid,
    pub order_status: &'a str,
    pub reason: &'a str,
    pub items: serde_json::Value,
}

/// A return recorded before.
pub struct RecordedReturn {
    pub event_id: Uuid,
    pub items: serde_json::Value,
    pub returned_at: NaiveDateTime,
}

/// Records the return at `at`; `false` when the order's return was recorded before.
pub async fn insert(
    conn: &mut PgConnection,
    row: &NewReturn<'_>,
    at: NaiveDateTime,
) -> sqlx::Result<bool> {
    let inserted = sqlx::query_scalar!(
        "INSERT INTO stock_returns
             (order_id, order_number, event_id, order_status, reason, items, returned_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (order_id) DO NOTHING
         RETURNING order_id",
        row.order_id,
        row.order_number,
        row.event_id,
        row.order_status,
        row.reason,
        row.items,
        at
    )
    .fetch_optional(conn)
    .await?;
    Ok(inserted.is_some())
}

/// The return recorded for order `order_id`.
pub async fn find(conn: &mut PgConnection, order_id: Uuid) -> sqlx::Result<RecordedReturn> {
    sqlx::query_as!(
        RecordedReturn,
        "SELECT event_id, items, returned_at FROM stock_returns WHERE order_id = $1",
        order_id
    )
    .fetch_one(conn)
    .await
}

/// Replaces the lines of the return of order `order_id`.
pub async fn set_items(
    conn: &mut PgConnection,
    order_id: Uuid,
    items: serde_json::Value,
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE stock_returns SET items = $2 WHERE order_id = $1",
        order_id,
        items
    )
    .execute(conn)
    .await
    .map(drop)
}
