//! The `carts` and `cart_items` tables. A cart row is locked (or created) before any of
//! its lines change, so that two requests of one session take turns.

use crate::db::products::Stock;
use chrono::NaiveDateTime;
use platform::time::LocalTime;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// A cart row, without its lines.
pub struct CartRow {
    pub id: Uuid,
    pub session_id: String,
    pub subtotal: Decimal,
    pub created_at: LocalTime,
    pub updated_at: LocalTime,
    pub expires_at: LocalTime,
}

/// A cart line as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredItem {
    pub id: Uuid,
    pub product_id: Uuid,
    pub quantity: i32,
    #[serde(with = "rust_decimal::serde::float")]
    pub price_snapshot: Decimal,
    #[serde(with = "rust_decimal::serde::float")]
    pub subtotal: Decimal,
}

/// A line of a cart: its id and quantity.
pub struct Line {
    pub id: Uuid,
    pub quantity: i32,
}

/// Deletes the cart of `session_id` if it expired by `at`.
pub async fn delete_if_expired(
    conn: &mut PgConnection,
    session_id: &str,
    at: NaiveDateTime,
) -> sqlx::Result<()> {
    sqlx::query!(
        "DELETE FROM carts WHERE session_id = $1 AND expires_at <= $2",
        session_id,
        at
    )
    .execute(conn)
    .await
    .map(drop)
}

/// Inserts an empty cart for `session_id`, or locks the one it has; returns its id.
pub async fn insert_or_lock(
    conn: &mut PgConnection,
    session_id: &str,
    at: NaiveDateTime,
    expires_at: NaiveDateTime,
) -> sqlx::Result<Uuid> {
    // Inserted, or the live one locked, in one statement: the no-op update takes the
    // row lock as SELECT ... FOR UPDATE would, and a checkout deleting the cart at the
    // same moment only makes the insert go ahead.
    sqlx::query_scalar!(
        "INSERT INTO carts (id, session_id, subtotal, created_at, updated_at, expires_at)
         VALUES ($1, $2, 0, $3, $3, $4)
         ON CONFLICT (session_id) DO UPDATE SET session_id = EXCLUDED.session_id
         RETURNING id",
        Uuid::new_v4(),
        session_id,
        at,
        expires_at
    )
    .fetch_one(conn)
    .await
}

/// Recomputes the subtotal of cart `id` from its lines, marks it changed at `at` and
/// living until `expires_at`, and returns it.
pub async fn touch(
    conn: &mut PgConnection,
    id: Uuid,
    at: NaiveDateTime,
    expires_at: NaiveDateTime,
) -> sqlx::Result<CartRow> {
    sqlx::query_as!(
        CartRow,
        r#"UPDATE carts
           SET subtotal = (SELECT COALESCE(SUM(subtotal), 0) FROM cart_items WHERE cart_id = $1),
               updated_at = $2, expires_at = $3
           WHERE id = $1
           RETURNING id, session_id, subtotal,
                     created_at AS "created_at: LocalTime", updated_at AS "updated_at: LocalTime",
                     expires_at AS "expires_at: LocalTime""#,
        id,
        at,
        expires_at
    )
    .fetch_one(conn)
    .await
}

/// Cart `id`.
pub async fn find(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<CartRow> {
    sqlx::query_as!(
        CartRow,
        r#"SELECT id, session_id, subtotal,
                  created_at AS "created_at: LocalTime", updated_at AS "updated_at: LocalTime",
                  expires_at AS "expires_at: LocalTime"
           FROM carts WHERE id = $1"#,
        id
    )
    .fetch_one(conn)
    .await
}

/// The lines of cart `id` in insertion order.
pub async fn items(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<Vec<StoredItem>> {
    sqlx::query_as!(
        StoredItem,
        "SELECT id, product_id, quantity, price_snapshot, subtotal
         FROM cart_items WHERE cart_id = $1 ORDER BY item_index, created_at",
        id
    )
    .fetch_all(conn)
    .await
}

/// The [`Stock`] of `product_id`, and the line of cart `cart_id` holding it, in one
/// read; `None` when there is no such product.
pub async fn stock_and_line(
    conn: &mut PgConnection,
    cart_id: Uuid,
    product_id: Uuid,
) -> sqlx::Result<Option<(Stock, Option<Line>)>> {
    let row = sqlx::query!(
        r#"SELECT p.price, p.inventory_quantity, p.is_active,
                  i.id AS "line_id?", i.quantity AS "line_quantity?"
           FROM products p
           LEFT JOIN cart_items i ON i.cart_id = $1 AND i.product_id = p.id
           WHERE p.id = $2"#,
        cart_id,
        product_id
    )
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|row| {
        let line = match (row.line_id, row.line_quantity) {
            (Some(id), Some(quantity)) => Some(Line { id, quantity }),
            _ => None,
        };
        let stock = Stock {
            price: row.price,
            available: row.inventory_quantity,
            is_active: row.is_active,
        };
        (stock, line)
    }))
}

/// Deletes every line of cart `cart_id`.
pub async fn delete_items(conn: &mut PgConnection, cart_id: Uuid) -> sqlx::Result<()> {
    sqlx::query!("DELETE FROM cart_items WHERE cart_id = $1", cart_id)
        .execute(conn)
        .await
        .map(drop)
}

/// Sets the quantity of line `id` (and its subtotal at its frozen price) at `at`.
pub async fn set_quantity(
    conn: &mut PgConnection,
    id: Uuid,
    quantity: i32,
    at: NaiveDateTime,
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE cart_items SET quantity = $2::int, subtotal = price_snapshot * $2::int, updated_at = $3
         WHERE id = $1",
        id,
        quantity,
        at
    )
    .execute(conn)
    .await
    .map(drop)
}

/// Adds a line of `quantity` of `product_id` at `price` to cart `cart_id`, after its
/// other lines.
pub async fn insert_item(
    conn: &mut PgConnection,
    cart_id: Uuid,
    product_id: Uuid,
    quantity: i32,
    price: Decimal,
    at: NaiveDateTime,
) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO cart_items (id, cart_id, product_id, quantity, price_snapshot, subtotal,
                                         created_at, updated_at, item_index)
                 VALUES ($1, $2, $3, $4::int, $5::numeric, $5::numeric * $4::int, $6, $6,
                         (SELECT COALESCE(MAX(item_index) + 1, 0) FROM cart_items WHERE cart_id = $2))",
        Uuid::new_v4(),
        cart_id,
        product_id,
        quantity,
        price,
        at
    )
    .execute(conn)
    .await
    .map(drop)
}

/// The product of line `id` of cart `cart_id`, or `None`.
pub async fn item_product(
    conn: &mut PgConnection,
    id: Uuid,
    cart_id: Uuid,
) -> sqlx::Result<Option<Uuid>> {
    sqlx::query_scalar!(
        "SELECT product_id FROM cart_items WHERE id = $1 AND cart_id = $2",
        id,
        cart_id
    )
    .fetch_optional(conn)
    .await
}

/// Deletes line `id` of cart `cart_id`; `false` when it has no such line.
pub async fn delete_item(conn: &mut PgConnection, id: Uuid, cart_id: Uuid) -> sqlx::Result<bool> {
    let deleted = sqlx::query!(
        "DELETE FROM cart_items WHERE id = $1 AND cart_id = $2",
        id,
        cart_id
    )
    .execute(conn)
    .await?;
    Ok(deleted.rows_affected() > 0)
}

/// Locks the live cart of `session_id` as of `at`; `None` when it has none.
pub async fn lock_live(
    conn: &mut PgConnection,
    session_id: &str,
    at: NaiveDateTime,
) -> sqlx::Result<Option<Uuid>> {
    sqlx::query_scalar!(
        "SELECT id FROM carts WHERE session_id = $1 AND expires_at > $2 FOR UPDATE",
        session_id,
        at
    )
    .fetch_optional(conn)
    .await
}

/// Sets the frozen price of the lines of `products[i]` in cart `cart_id` to
/// `prices[i]`, and their subtotals with it.
pub async fn reprice_items(
    conn: &mut PgConnection,
    cart_id: Uuid,
    products: &[Uuid],
    prices: &[Decimal],
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE cart_items i
         SET price_snapshot = u.price, subtotal = u.price * i.quantity
         FROM UNNEST($2::uuid[], $3::numeric[]) AS u(id, price)
         WHERE i.cart_id = $1 AND i.product_id = u.id",
        cart_id,
        products,
        prices
    )
    .execute(conn)
    .await
    .map(drop)
}

/// Deletes the carts that expired by `at`; returns how many.
pub async fn delete_expired(pool: &PgPool, at: NaiveDateTime) -> sqlx::Result<u64> {
    let done = sqlx::query!("DELETE FROM carts WHERE expires_at <= $1", at)
        .execute(pool)
        .await?;
    Ok(done.rows_affected())
}
