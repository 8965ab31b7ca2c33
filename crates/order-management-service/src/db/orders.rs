//! Reading orders for the API, and the manager's state changes (cancel, fulfil), each
//! under the order's row lock.

use crate::domain::{OrderStatus, PaymentStatus};
use chrono::NaiveDateTime;
use rust_decimal::Decimal;
use sqlx::{PgConnection, PgPool};
use std::collections::HashMap;
use uuid::Uuid;

/// An order row with its payment status.
#[derive(Debug, Clone)]
pub struct OrderRow {
    pub id: Uuid,
    pub order_number: String,
    pub customer_name: String,
    pub customer_email: String,
    pub customer_phone: String,
    pub shipping_address: serde_json::Value,
    pub subtotal: Decimal,
    pub status: OrderStatus,
    pub payment_status: Option<PaymentStatus>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub completed_at: Option<NaiveDateTime>,
}

/// One line of an order.
#[derive(Debug, Clone)]
pub struct ItemRow {
    pub id: Uuid,
    pub order_id: Uuid,
    pub product_id: Uuid,
    pub product_sku: String,
    pub product_name: String,
    pub quantity: i32,
    pub price_snapshot: Decimal,
    pub subtotal: Decimal,
}

/// The list filters; absent ones match everything.
#[derive(Debug, Clone, Default)]
pub struct OrderFilter {
    pub status: Option<OrderStatus>,
    pub customer_email: Option<String>,
    pub start: Option<NaiveDateTime>,
    pub end: Option<NaiveDateTime>,
}

pub async fn find_by_number(
    pool: &PgPool,
    order_number: &str,
) -> Result<Option<OrderRow>, sqlx::Error> {
    sqlx::query_as!(
        OrderRow,
        r#"SELECT o.id, o.order_number, o.customer_name, o.customer_email, o.customer_phone,
                  o.shipping_address, o.subtotal, o.status AS "status: OrderStatus",
                  p.status AS "payment_status?: PaymentStatus",
                  o.created_at, o.updated_at, o.completed_at
           FROM orders o LEFT JOIN payment_transactions p ON p.order_id = o.id
           WHERE o.order_number = $1"#,
        order_number
    )
    .fetch_optional(pool)
    .await
}

/// One page of orders, newest first, and the exact number of matches.
pub async fn list(
    pool: &PgPool,
    filter: &OrderFilter,
    limit: i64,
    offset: i64,
) -> Result<(Vec<OrderRow>, i64), sqlx::Error> {
    let total = sqlx::query_scalar!(
        r#"SELECT COUNT(*) AS "count!" FROM orders o
           WHERE ($1::order_status IS NULL OR o.status = $1)
             AND ($2::text IS NULL OR o.customer_email = $2)
             AND ($3::timestamp IS NULL OR o.created_at >= $3)
             AND ($4::timestamp IS NULL OR o.created_at <= $4)"#,
        filter.status as Option<OrderStatus>,
        filter.customer_email,
        filter.start,
        filter.end
    )
    .fetch_one(pool)
    .await?;
    let rows = sqlx::query_as!(
        OrderRow,
        r#"SELECT o.id, o.order_number, o.customer_name, o.customer_email, o.customer_phone,
                  o.shipping_address, o.subtotal, o.status AS "status: OrderStatus",
                  p.status AS "payment_status?: PaymentStatus",
                  o.created_at, o.updated_at, o.completed_at
           FROM orders o LEFT JOIN payment_transactions p ON p.order_id = o.id
           WHERE ($1::order_status IS NULL OR o.status = $1)
             AND ($2::text IS NULL OR o.customer_email = $2)
             AND ($3::timestamp IS NULL OR o.created_at >= $3)
             AND ($4::timestamp IS NULL OR o.created_at <= $4)
           ORDER BY o.created_at DESC, o.id
           LIMIT $5 OFFSET $6"#,
        filter.status as Option<OrderStatus>,
        filter.customer_email,
        filter.start,
        filter.end,
        limit,
        offset
    )
    .fetch_all(pool)
    .await?;
    Ok((rows, total))
}

/// The items of `orders`, grouped by order, in the order of the event.
pub async fn items_of(
    pool: &PgPool,
    orders: &[Uuid],
) -> Result<HashMap<Uuid, Vec<ItemRow>>, sqlx::Error> {
    let rows = sqlx::query_as!(
        ItemRow,
        "SELECT id, order_id, product_id, product_sku, product_name, quantity, price_snapshot, subtotal \
         FROM order_items WHERE order_id = ANY($1) ORDER BY order_id, line_number",
        orders
    )
    .fetch_all(pool)
    .await?;
    let mut grouped: HashMap<Uuid, Vec<ItemRow>> = HashMap::new();
    for row in rows {
        grouped.entry(row.order_id).or_default().push(row);
    }
    Ok(grouped)
}

/// An order locked for a manager's change.
#[derive(Debug)]
pub struct Locked {
    pub id: Uuid,
    pub status: OrderStatus,
    /// A gateway call for the order is in flight (its claim has not expired).
    pub payment_in_flight: bool,
}

pub async fn lock_by_number(
    conn: &mut PgConnection,
    order_number: &str,
) -> Result<Option<Locked>, sqlx::Error> {
    let row = sqlx::query!(
        r#"SELECT o.id, o.status AS "status: OrderStatus",
                  EXISTS (SELECT 1 FROM payment_transactions p
                          WHERE p.order_id = o.id AND p.status = 'PENDING'
                            AND p.locked_until > (now() AT TIME ZONE 'UTC')) AS "in_flight!"
           FROM orders o WHERE o.order_number = $1
           FOR UPDATE OF o"#,
        order_number
    )
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|r| Locked {
        id: r.id,
        status: r.status,
        payment_in_flight: r.in_flight,
    }))
}

/// Cancels a locked order that awaits payment with no gateway call in flight: its
/// payment FAILS and will never be made. If a gateway call was ever made for it (its
/// lease ran out, or the gateway did not answer), a refund by key is requested too: it
/// gives back a charge that landed unrecorded, or closes the key so none can land.
pub async fn cancel_unpaid(
    conn: &mut PgConnection,
    order_id: Uuid,
    reason: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE orders SET status = 'CANCELLED', cancel_reason = $2, \
             completed_at = (now() AT TIME ZONE 'UTC'), updated_at = (now() AT TIME ZONE 'UTC') \
         WHERE id = $1",
        order_id,
        reason
    )
    .execute(&mut *conn)
    .await?;
    // The CASEs read the row as it was before this update.
    sqlx::query!(
        "UPDATE payment_transactions SET status = 'FAILED', failure_reason = 'Order cancelled before payment', \
             completed_at = (now() AT TIME ZONE 'UTC'), updated_at = (now() AT TIME ZONE 'UTC'), \
             locked_until = NULL, \
             refund_requested_at = CASE WHEN attempt_count > 0 OR locked_until IS NOT NULL \
                 THEN (now() AT TIME ZONE 'UTC') END, \
             refund_reason = CASE WHEN attempt_count > 0 OR locked_until IS NOT NULL THEN $2 END, \
             refund_next_attempt_at = CASE WHEN attempt_count > 0 OR locked_until IS NOT NULL \
                 THEN (now() AT TIME ZONE 'UTC') END \
         WHERE order_id = $1 AND status = 'PENDING'",
        order_id,
        reason
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Cancels a locked PAID order: the payment stays SUCCESS with a refund requested,
/// which the refund worker asks the gateway for.
pub async fn cancel_paid(
    conn: &mut PgConnection,
    order_id: Uuid,
    reason: &str,
    traceparent: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE orders SET status = 'CANCELLED', cancel_reason = $2, \
             completed_at = (now() AT TIME ZONE 'UTC'), updated_at = (now() AT TIME ZONE 'UTC') \
         WHERE id = $1",
        order_id,
        reason
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query!(
        "UPDATE payment_transactions SET refund_requested_at = (now() AT TIME ZONE 'UTC'), \
             refund_reason = $2, refund_next_attempt_at = (now() AT TIME ZONE 'UTC'), \
             refund_traceparent = $3, updated_at = (now() AT TIME ZONE 'UTC') \
         WHERE order_id = $1 AND status = 'SUCCESS' AND refund_requested_at IS NULL",
        order_id,
        reason,
        traceparent
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// What an OrderReleased event says about an order besides its end.
#[derive(Debug)]
pub struct ReleaseDetails {
    pub source_order_id: Uuid,
    pub order_number: String,
    pub correlation_id: Option<String>,
    pub items: Vec<events::ReleasedItem>,
}

/// The checkout's id, number, correlation id and lines of order `order_id`.
pub async fn release_details(
    conn: &mut PgConnection,
    order_id: Uuid,
) -> Result<ReleaseDetails, sqlx::Error> {
    let order = sqlx::query!(
        "SELECT source_order_id, order_number, correlation_id FROM orders WHERE id = $1",
        order_id
    )
    .fetch_one(&mut *conn)
    .await?;
    let items = sqlx::query!(
        "SELECT product_id, product_sku, quantity FROM order_items \
         WHERE order_id = $1 ORDER BY line_number",
        order_id
    )
    .fetch_all(conn)
    .await?
    .into_iter()
    .map(|i| events::ReleasedItem {
        product_id: i.product_id,
        product_sku: i.product_sku,
        quantity: i.quantity,
    })
    .collect();
    Ok(ReleaseDetails {
        source_order_id: order.source_order_id,
        order_number: order.order_number,
        correlation_id: order.correlation_id,
        items,
    })
}

/// Fulfils a locked PAID order.
pub async fn fulfil(conn: &mut PgConnection, order_id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE orders SET status = 'FULFILLED', \
             completed_at = (now() AT TIME ZONE 'UTC'), updated_at = (now() AT TIME ZONE 'UTC') \
         WHERE id = $1",
        order_id
    )
    .execute(conn)
    .await?;
    Ok(())
}
