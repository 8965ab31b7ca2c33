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
use crate::db;
use crate::db::carts::CartRow;
use crate::error::{Error, Result};
use chrono::Duration;
use platform::db::Db;
use platform::time::{now, LocalTime};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, Postgres, Transaction};
use std::collections::HashMap;
use utoipa::ToSchema;
use uuid::Uuid;

pub use crate::db::carts::StoredItem;

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
    db::carts::delete_if_expired(tx, session_id, at).await?;
    let expires_at = at + Duration::minutes(CART_LIFETIME_MINUTES);
    Ok(db::carts::insert_or_lock(tx, session_id, at, expires_at).await?)
}

/// Recomputes the subtotal of cart `id`, extends its life, and reads it back with its
/// lines in insertion order (two statements: the update returns the cart).
pub async fn touch_and_load(tx: &mut PgConnection, id: Uuid) -> Result<StoredCart> {
    let at = now();
    let cart = db::carts::touch(tx, id, at, at + Duration::minutes(CART_LIFETIME_MINUTES)).await?;
    with_items(tx, cart).await
}

/// The stored cart `id` with its lines in insertion order.
pub async fn load(conn: &mut PgConnection, id: Uuid) -> Result<StoredCart> {
    let cart = db::carts::find(conn, id).await?;
    with_items(conn, cart).await
}

/// `cart` with its lines in insertion order.
async fn with_items(conn: &mut PgConnection, cart: CartRow) -> Result<StoredCart> {
    Ok(StoredCart {
        items: db::carts::items(conn, cart.id).await?,
        id: cart.id,
        session_id: cart.session_id,
        subtotal: cart.subtotal,
        created_at: cart.created_at,
        updated_at: cart.updated_at,
        expires_at: cart.expires_at,
        version: version_of(cart.updated_at.0),
    })
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
pub async fn get_or_create(db: &Db, cache: &Cache, session_id: &str) -> Result<StoredCart> {
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
pub async fn view(db: &Db, cache: &Cache, cart: StoredCart) -> Result<Cart> {
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

/// The 409 of a cart operation asking for more than is in stock.
pub fn insufficient(product_id: Uuid, requested: i64, available: i32) -> Error {
    Error::InsufficientInventory(format!(
        "Insufficient inventory for product {product_id}. Requested: {requested}, Available: {available}"
    ))
}

/// Deletes expired carts; returns how many.
pub async fn delete_expired(db: &Db) -> Result<u64> {
    Ok(db::carts::delete_expired(db.pool(), now()).await?)
}

/// Told when a quantity does not fit the `INTEGER` column.
pub const QUANTITY_MAX: &str = "Quantity must not exceed 2147483647";
/// Told when a line's or the cart's total would not fit the amount columns.
const CART_LIMIT: &str = "The cart's total would exceed 99999999.99";

/// A line or cart total beyond what its `DECIMAL(10, 2)` column holds: the cart, with
/// the prices it has, cannot take this quantity (a conflict with what is stored, not a
/// malformed request).
fn beyond_cart_limit(e: impl Into<Error>) -> Error {
    let e = e.into();
    match &e {
        Error::Database(sqlx::Error::Database(db)) if db.code().as_deref() == Some("22003") => {
            Error::Conflict(CART_LIMIT.into())
        }
        _ => e,
    }
}

/// Finishes a change of cart `cart_id`: its subtotal and life renewed, committed, cached,
/// and shown.
async fn committed(
    db: &Db,
    cache: &Cache,
    mut tx: Transaction<'static, Postgres>,
    cart_id: Uuid,
) -> Result<Cart> {
    let cart = touch_and_load(&mut tx, cart_id)
        .await
        .map_err(beyond_cart_limit)?;
    tx.commit().await?;
    cache_cart(cache, &cart).await;
    view(db, cache, cart).await
}

/// Empties the cart of `session_id`.
pub async fn clear(db: &Db, cache: &Cache, session_id: &str) -> Result<Cart> {
    let mut tx = db.begin().await?;
    let cart_id = lock_or_create(&mut tx, session_id).await?;
    db::carts::delete_items(&mut tx, cart_id).await?;
    committed(db, cache, tx, cart_id).await
}

/// Adds `quantity` of `product_id` to the cart of `session_id`: a product already in
/// the cart gets the quantities added together, within the stock.
pub async fn add_item(
    db: &Db,
    cache: &Cache,
    session_id: &str,
    product_id: Uuid,
    quantity: i64,
) -> Result<Cart> {
    let mut tx = db.begin().await?;
    let cart_id = lock_or_create(&mut tx, session_id).await?;
    let (stock, existing) = db::carts::stock_and_line(&mut tx, cart_id, product_id)
        .await?
        .ok_or_else(|| Error::not_found("Product", product_id))?;
    if !stock.is_active {
        return Err(Error::Conflict(format!(
            "Product is not active: {product_id}"
        )));
    }
    let total = quantity + existing.as_ref().map_or(0, |line| i64::from(line.quantity));
    if total > i64::from(stock.available) {
        return Err(insufficient(product_id, total, stock.available));
    }
    let total = i32::try_from(total).map_err(|_| Error::field("quantity", QUANTITY_MAX))?;
    let at = now();
    let written = match existing {
        Some(line) => db::carts::set_quantity(&mut tx, line.id, total, at).await,
        None => db::carts::insert_item(&mut tx, cart_id, product_id, total, stock.price, at).await,
    };
    written.map_err(beyond_cart_limit)?;
    committed(db, cache, tx, cart_id).await
}

/// Sets the quantity of line `item_id` of the cart of `session_id`, within the stock.
pub async fn set_item_quantity(
    db: &Db,
    cache: &Cache,
    session_id: &str,
    item_id: Uuid,
    quantity: i32,
) -> Result<Cart> {
    let mut tx = db.begin().await?;
    let cart_id = lock_or_create(&mut tx, session_id).await?;
    let product_id = db::carts::item_product(&mut tx, item_id, cart_id)
        .await?
        .ok_or_else(|| Error::not_found("CartItem", item_id))?;
    let stock = db::products::stock(&mut tx, product_id)
        .await?
        .ok_or_else(|| Error::not_found("Product", product_id))?;
    if quantity > stock.available {
        return Err(insufficient(
            product_id,
            i64::from(quantity),
            stock.available,
        ));
    }
    db::carts::set_quantity(&mut tx, item_id, quantity, now())
        .await
        .map_err(beyond_cart_limit)?;
    committed(db, cache, tx, cart_id).await
}

/// Removes line `item_id` from the cart of `session_id`.
pub async fn remove_item(db: &Db, cache: &Cache, session_id: &str, item_id: Uuid) -> Result<Cart> {
    let mut tx = db.begin().await?;
    let cart_id = lock_or_create(&mut tx, session_id).await?;
    if !db::carts::delete_item(&mut tx, item_id, cart_id).await? {
        return Err(Error::not_found("CartItem", item_id));
    }
    committed(db, cache, tx, cart_id).await
}
