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

/// Cancels a locked order; its payment, if still pending, will never be made.
pub async fn cancel(
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
    sqlx::query!(
        "UPDATE payment_transactions SET status = 'FAILED', failure_reason = 'Order cancelled before payment', \
             completed_at = (now() AT TIME ZONE 'UTC'), updated_at = (now() AT TIME ZONE 'UTC'), \
             locked_until = NULL \
         WHERE order_id = $1 AND status = 'PENDING'",
        order_id
    )
    .execute(conn)
    .await?;
    Ok(())
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
