//! The statements of a checkout: the cart it locks, the stock it takes, and the one
//! statement that numbers the order and writes its outbox row and the reply stored on
//! its idempotency key (the key's other statements are [`platform::idempotency`]'s).

use chrono::NaiveDateTime;
use rust_decimal::Decimal;
use sqlx::PgConnection;
use uuid::Uuid;

/// The locked cart with one of its lines; a cart without lines has one row with no line.
pub struct CartLineRow {
    pub id: Uuid,
    pub subtotal: Decimal,
    pub product_id: Option<Uuid>,
    pub quantity: Option<i32>,
    pub price_snapshot: Option<Decimal>,
    pub line_subtotal: Option<Decimal>,
}

/// Locks the live cart of `session_id` as of `at` and reads it with its lines in
/// insertion order; no rows when it has none. Waits for the cart's lock as long as it
/// takes: it lifts the lock timeout that [`platform::idempotency::claim`] set.
pub async fn lock_cart(
    conn: &mut PgConnection,
    session_id: &str,
    at: NaiveDateTime,
) -> sqlx::Result<Vec<CartLineRow>> {
    sqlx::query_as!(
        CartLineRow,
        r#"WITH wait AS MATERIALIZED (SELECT set_config('lock_timeout', '0', true))
           SELECT c.id, c.subtotal,
                  i.product_id AS "product_id?", i.quantity AS "quantity?",
                  i.price_snapshot AS "price_snapshot?", i.subtotal AS "line_subtotal?"
           FROM wait, carts c LEFT JOIN cart_items i ON i.cart_id = c.id
           WHERE c.session_id = $1 AND c.expires_at > $2
           ORDER BY i.item_index, i.created_at
           FOR UPDATE OF c"#,
        session_id,
        at
    )
    .fetch_all(conn)
    .await
}

/// Takes `quantities[i]` of `products[i]` from the stock at `at` and deletes cart
/// `cart_id`, in one statement.
pub async fn take_stock_and_delete_cart(
    conn: &mut PgConnection,
    products: &[Uuid],
    quantities: &[i32],
    at: NaiveDateTime,
    cart_id: Uuid,
) -> sqlx::Result<()> {
    sqlx::query!(
        "WITH gone AS (DELETE FROM carts WHERE id = $4)
         UPDATE products p
         SET inventory_quantity = p.inventory_quantity - u.quantity,
             version = p.version + 1, updated_at = $3
         FROM UNNEST($1::uuid[], $2::int[]) AS u(id, quantity)
         WHERE p.id = u.id",
        products,
        quantities,
        at,
        cart_id
    )
    .execute(conn)
    .await
    .map(drop)
}

/// What the numbering statement writes besides the number.
pub struct NumberedRows<'a> {
    pub outbox_id: Uuid,
    pub order_id: Uuid,
    /// The event, its `orderNumber` still empty.
    pub payload: serde_json::Value,
    pub topic: &'a str,
    pub headers: serde_json::Value,
    pub lease_until: NaiveDateTime,
    /// The stored reply is `reply_head`, the number, `reply_tail`.
    pub reply_head: &'a str,
    pub reply_tail: &'a str,
    pub key: &'a str,
}

/// Numbers the order `ORD-<yyyyMMdd>-<n>` (`n` counts the day's orders from 1, in the
/// daily sequence row), and in the same statement writes the outbox row and the reply
/// stored on the key, both carrying the number. The day's row stays locked until the
/// commit, so every checkout waits for the one before it here: one statement between
/// taking that lock and the commit keeps the wait as short as it can be.
pub async fn number_order(
    conn: &mut PgConnection,
    at: NaiveDateTime,
    rows: NumberedRows<'_>,
) -> sqlx::Result<String> {
    let date_key = at.format("%Y%m%d").to_string();
    sqlx::query_scalar!(
        r#"WITH numbered AS (
               INSERT INTO order_number_sequence (date_key, last_sequence, created_at, updated_at)
               VALUES ($1, 1, $2, $2)
               ON CONFLICT (date_key) DO UPDATE
               SET last_sequence = order_number_sequence.last_sequence + 1,
                   updated_at = EXCLUDED.updated_at
               RETURNING 'ORD-' || date_key || '-' || last_sequence AS order_number
           ), outbox AS (
               INSERT INTO order_created_outbox
                   (id, aggregate_id, aggregate_type, event_type, payload, created_at, status,
                    retry_count, topic, headers, next_attempt_at, locked_until)
               SELECT $3, $4, 'ORDER', 'OrderCreatedEvent',
                      jsonb_set($5::jsonb, '{orderNumber}', to_jsonb(order_number)),
                      $2, 'PENDING', 0, $6, $7, $2, $8
               FROM numbered
           ), reply AS (
               UPDATE checkout_idempotency
               SET status = 'COMPLETED', response_status = 201,
                   response_body = $9::text || order_number || $10::text
               FROM numbered
               WHERE idempotency_key = $11
           )
           SELECT order_number AS "order_number!" FROM numbered"#,
        date_key,
        at,
        rows.outbox_id,
        rows.order_id,
        rows.payload,
        rows.topic,
        rows.headers,
        rows.lease_until,
        rows.reply_head,
        rows.reply_tail,
        rows.key
    )
    .fetch_one(conn)
    .await
}
