//! Guest carts, keyed by a client-chosen session id: PostgreSQL holds them, Redis
//! (`cart:<sessionId>`) serves reads in front of it.
//!
//! A cart lives 30 minutes from its last change. An expired cart is replaced by a new
//! empty one (never the original's permanent 500), and the cleanup job deletes expired
//! rows. Cache writes carry the cart's version (its last change) and never replace a
//! newer entry, and a checked-out cart leaves a tombstone, so writers that finish out
//! of order cannot bring back an old state. Prices are frozen per line when a product first enters the cart; SKU and name
//! are the product's current ones each time the cart is shown.

use crate::cache::Cache;
use crate::catalog;
use crate::error::{Error, Result};
use chrono::Duration;
use platform::time::{now, LocalTime};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use std::collections::HashMap;
use utoipa::ToSchema;
use uuid::Uuid;

/// How long a cart lives after its last change.
pub const CART_LIFETIME_MINUTES: i64 = 30;
/// Longest session id (the column's length).
pub const MAX_SESSION_ID_CHARS: usize = 100;
/// Session ids: client-chosen, not blank, at most the column's length.
pub const SESSION_ID: platform::rules::Text =
    platform::rules::Text::non_blank(1, MAX_SESSION_ID_CHARS);
const CART_CACHE: &str = "cart";

fn cart_key(session_id: &str) -> String {
    format!("cart:{session_id}")
}

/// A cart as stored, without the products' current SKU and name.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredCart {
    pub id: Uuid,
    pub session_id: String,
    pub items: Vec<StoredItem>,
    #[serde(with = "rust_decimal::serde::float")]
    pub subtotal: Decimal,
    pub created_at: LocalTime,
    pub updated_at: LocalTime,
    pub expires_at: LocalTime,
    /// Microseconds of `updated_at`: a cached cart is only replaced by a newer one.
    pub version: i64,
}

/// What replaces a cart's cache entry when the cart is gone: newer than any state of
/// the cart, so a late writer cannot bring it back, and unreadable as a cart.
#[derive(Serialize)]
struct Tombstone {
    version: i64,
}

/// How long a tombstone outlives the cart.
const TOMBSTONE_SECS: u64 = 60;

fn version_of(t: chrono::NaiveDateTime) -> i64 {
    t.and_utc().timestamp_micros()
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

/// A cart as clients see it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Cart {
    pub id: Uuid,
    pub session_id: String,
    pub items: Vec<CartItem>,
    #[serde(with = "rust_decimal::serde::float")]
    #[schema(value_type = f64, example = 59.98)]
    pub subtotal: Decimal,
    #[schema(value_type = String, example = "2025-10-06T14:03:27.51234")]
    pub created_at: LocalTime,
    #[schema(value_type = String, example = "2025-10-06T14:03:27.51234")]
    pub updated_at: LocalTime,
    #[schema(value_type = String, example = "2025-10-06T14:33:27.51234")]
    pub expires_at: LocalTime,
}

/// A cart line as clients see it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CartItem {
    pub id: Uuid,
    pub product_id: Uuid,
    pub product_sku: String,
    pub product_name: String,
    pub quantity: i32,
    #[serde(with = "rust_decimal::serde::float")]
    #[schema(value_type = f64, example = 29.99)]
    pub price_snapshot: Decimal,
    #[serde(with = "rust_decimal::serde::float")]
    #[schema(value_type = f64, example = 59.98)]
    pub subtotal: Decimal,
}

/// Checks a session id from the path.
pub fn check_session_id(session_id: &str) -> Result<()> {
    if SESSION_ID.check(session_id).is_err() {
        return Err(Error::BadRequest(format!(
            "Session ID must be between 1 and {MAX_SESSION_ID_CHARS} characters"
        )));
    }
    Ok(())
}

/// Locks the live cart of `session_id`, creating it (or replacing an expired one).
/// Returns its id.
pub async fn lock_or_create(tx: &mut PgConnection, session_id: &str) -> Result<Uuid> {
    let at = now();
    sqlx::query!(
        "DELETE FROM carts WHERE session_id = $1 AND expires_at <= $2",
        session_id,
        at
    )
    .execute(&mut *tx)
    .await?;
    // Inserted, or the live one locked, in one statement: the no-op update takes the
    // row lock as SELECT ... FOR UPDATE would, and a checkout deleting the cart at the
    // same moment only makes the insert go ahead.
    let id = sqlx::query_scalar!(
        "INSERT INTO carts (id, session_id, subtotal, created_at, updated_at, expires_at)
         VALUES ($1, $2, 0, $3, $3, $4)
         ON CONFLICT (session_id) DO UPDATE SET session_id = EXCLUDED.session_id
         RETURNING id",
        Uuid::new_v4(),
        session_id,
        at,
        at + Duration::minutes(CART_LIFETIME_MINUTES)
    )
    .fetch_one(&mut *tx)
    .await?;
    Ok(id)
}

/// Recomputes the subtotal of cart `id`, extends its life, and reads it back with its
/// lines in insertion order (two statements: the update returns the cart).
pub async fn touch_and_load(tx: &mut PgConnection, id: Uuid) -> Result<StoredCart> {
    let at = now();
    let cart = sqlx::query!(
        r#"UPDATE carts
           SET subtotal = (SELECT COALESCE(SUM(subtotal), 0) FROM cart_items WHERE cart_id = $1),
               updated_at = $2, expires_at = $3
           WHERE id = $1
           RETURNING id, session_id, subtotal,
                     created_at AS "created_at: LocalTime", updated_at AS "updated_at: LocalTime",
                     expires_at AS "expires_at: LocalTime""#,
        id,
        at,
        at + Duration::minutes(CART_LIFETIME_MINUTES)
    )
    .fetch_one(&mut *tx)
    .await?;
    Ok(StoredCart {
        id: cart.id,
        session_id: cart.session_id,
        items: items_of(tx, id).await?,
        subtotal: cart.subtotal,
        created_at: cart.created_at,
        updated_at: cart.updated_at,
        expires_at: cart.expires_at,
        version: version_of(cart.updated_at.0),
    })
}

/// The stored cart `id` with its lines in insertion order.
pub async fn load(conn: &mut PgConnection, id: Uuid) -> Result<StoredCart> {
    let cart = sqlx::query!(
        r#"SELECT id, session_id, subtotal,
                  created_at AS "created_at: LocalTime", updated_at AS "updated_at: LocalTime",
                  expires_at AS "expires_at: LocalTime"
           FROM carts WHERE id = $1"#,
        id
    )
    .fetch_one(&mut *conn)
    .await?;
    Ok(StoredCart {
        id: cart.id,
        session_id: cart.session_id,
        items: items_of(conn, id).await?,
        subtotal: cart.subtotal,
        created_at: cart.created_at,
        updated_at: cart.updated_at,
        expires_at: cart.expires_at,
        version: version_of(cart.updated_at.0),
    })
}

/// The lines of cart `id` in insertion order.
async fn items_of(conn: &mut PgConnection, id: Uuid) -> Result<Vec<StoredItem>> {
    Ok(sqlx::query_as!(
        StoredItem,
        "SELECT id, product_id, quantity, price_snapshot, subtotal
         FROM cart_items WHERE cart_id = $1 ORDER BY item_index, created_at",
        id
    )
    .fetch_all(conn)
    .await?)
}

/// Puts a just-changed cart in the cache until it expires; always attempted, since the
/// entry there is now out of date.
pub async fn cache_cart(cache: &Cache, cart: &StoredCart) {
    if let Some(ttl) = remaining(cart) {
        cache
            .set_if_newer(&cart_key(&cart.session_id), cart, cart.version, ttl)
            .await;
    }
}

/// Puts a cart just read from PostgreSQL in the cache until it expires, as a fill:
/// skipped while Redis looks hung, since this state is already in the cache unless a
/// change's own write failed, and a missing entry costs only a miss.
async fn fill_cart(cache: &Cache, cart: &StoredCart) {
    if let Some(ttl) = remaining(cart) {
        cache
            .fill_if_newer(&cart_key(&cart.session_id), cart, cart.version, ttl)
            .await;
    }
}

/// How long `cart` has left to live, if any.
fn remaining(cart: &StoredCart) -> Option<std::time::Duration> {
    let secs = u64::try_from((cart.expires_at.0 - now()).num_seconds()).ok()?;
    (secs > 0).then(|| std::time::Duration::from_secs(secs))
}

/// Forgets the cached cart of `session_id`, which was deleted at `at`.
pub async fn forget_cart(cache: &Cache, session_id: &str, at: chrono::NaiveDateTime) {
    cache
        .set_if_newer(
            &cart_key(session_id),
            &Tombstone {
                version: version_of(at),
            },
            version_of(at),
            std::time::Duration::from_secs(TOMBSTONE_SECS),
        )
        .await;
}

/// The live cart of `session_id`, created when there is none.
pub async fn get_or_create(
    db: &platform::db::Db,
    cache: &Cache,
    session_id: &str,
) -> Result<StoredCart> {
    if let Some(cart) = cache
        .get::<StoredCart>(CART_CACHE, &cart_key(session_id))
        .await
    {
        if cart.expires_at.0 > now() {
            return Ok(cart);
        }
    }
    let mut tx = db.begin().await?;
    let id = lock_or_create(&mut tx, session_id).await?;
    let cart = load(&mut tx, id).await?;
    tx.commit().await?;
    fill_cart(cache, &cart).await;
    Ok(cart)
}

/// The client's view of `cart`, with each product's current SKU and name.
pub async fn view(db: &platform::db::Db, cache: &Cache, cart: StoredCart) -> Result<Cart> {
    let ids: Vec<Uuid> = cart.items.iter().map(|i| i.product_id).collect();
    let products: HashMap<Uuid, catalog::Product> = catalog::products_by_ids(db, cache, &ids)
        .await?
        .into_iter()
        .map(|p| (p.id, p))
        .collect();
    let items = cart
        .items
        .into_iter()
        .map(|item| {
            let product = products.get(&item.product_id);
            CartItem {
                id: item.id,
                product_id: item.product_id,
                product_sku: product.map(|p| p.sku.clone()).unwrap_or_default(),
                product_name: product.map(|p| p.name.clone()).unwrap_or_default(),
                quantity: item.quantity,
                price_snapshot: item.price_snapshot,
                subtotal: item.subtotal,
            }
        })
        .collect();
    Ok(Cart {
        id: cart.id,
        session_id: cart.session_id,
        items,
        subtotal: cart.subtotal,
        created_at: cart.created_at,
        updated_at: cart.updated_at,
        expires_at: cart.expires_at,
    })
}

/// Stock of a product for a cart operation: 404 when unknown.
pub struct Stock {
    pub price: Decimal,
    pub available: i32,
    pub is_active: bool,
}

/// Reads the price, stock and state of `product_id`.
pub async fn stock(conn: &mut PgConnection, product_id: Uuid) -> Result<Stock> {
    sqlx::query_as!(
        Stock,
        "SELECT price, inventory_quantity AS available, is_active FROM products WHERE id = $1",
        product_id
    )
    .fetch_optional(conn)
    .await?
    .ok_or_else(|| Error::not_found("Product", product_id))
}

/// A line of a cart: its id and quantity.
pub struct Line {
    pub id: Uuid,
    pub quantity: i32,
}

/// [`stock`] of `product_id`, and the line of cart `cart_id` holding it, in one read.
pub async fn stock_and_line(
    conn: &mut PgConnection,
    cart_id: Uuid,
    product_id: Uuid,
) -> Result<(Stock, Option<Line>)> {
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
    .await?
    .ok_or_else(|| Error::not_found("Product", product_id))?;
    let line = match (row.line_id, row.line_quantity) {
        (Some(id), Some(quantity)) => Some(Line { id, quantity }),
        _ => None,
    };
    Ok((
        Stock {
            price: row.price,
            available: row.inventory_quantity,
            is_active: row.is_active,
        },
        line,
    ))
}

/// The 409 of a cart operation asking for more than is in stock.
pub fn insufficient(product_id: Uuid, requested: i64, available: i32) -> Error {
    Error::InsufficientInventory(format!(
        "Insufficient inventory for product {product_id}. Requested: {requested}, Available: {available}"
    ))
}

/// Deletes expired carts; returns how many.
pub async fn delete_expired(db: &platform::db::Db) -> Result<u64> {
    let done = sqlx::query!("DELETE FROM carts WHERE expires_at <= $1", now())
        .execute(db.pool())
        .await?;
    Ok(done.rows_affected())
}
