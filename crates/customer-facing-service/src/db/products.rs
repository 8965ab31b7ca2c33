//! The `products` table: the catalogue's reads and writes, and the stock that carts
//! check and that checkouts take and returns give back.

use chrono::NaiveDateTime;
use platform::time::LocalTime;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use std::collections::HashSet;
use utoipa::ToSchema;
use uuid::Uuid;

/// A product as clients see it (the optimistic-locking version stays inside).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Product {
    pub id: Uuid,
    pub sku: String,
    pub name: String,
    pub description: Option<String>,
    #[serde(with = "rust_decimal::serde::float")]
    #[schema(value_type = f64, example = 19.99)]
    pub price: Decimal,
    pub inventory_quantity: i32,
    pub category_id: Uuid,
    pub is_active: bool,
    #[schema(value_type = String, example = "2025-10-06T14:03:27.51234")]
    pub created_at: LocalTime,
    #[schema(value_type = String, example = "2025-10-06T14:03:27.51234")]
    pub updated_at: LocalTime,
}

/// What a product listing selects and how it sorts; `search` is a `to_tsquery` text.
#[derive(Debug, Clone, Copy)]
pub struct Listing<'a> {
    pub category_id: Option<Uuid>,
    pub is_active: bool,
    pub search: Option<&'a str>,
    /// The column to sort by; ties go by id.
    pub sort_column: &'a str,
    pub descending: bool,
}

/// One product row, or `None`.
pub async fn find(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<Option<Product>> {
    sqlx::query_as!(
        Product,
        r#"SELECT id, sku, name, description, price, inventory_quantity, category_id, is_active,
                  created_at AS "created_at: LocalTime", updated_at AS "updated_at: LocalTime"
           FROM products WHERE id = $1"#,
        id
    )
    .fetch_optional(conn)
    .await
}

/// The products of `ids` that exist, in no particular order.
pub async fn find_many(conn: &mut PgConnection, ids: &[Uuid]) -> sqlx::Result<Vec<Product>> {
    sqlx::query_as!(
        Product,
        r#"SELECT id, sku, name, description, price, inventory_quantity, category_id, is_active,
                      created_at AS "created_at: LocalTime", updated_at AS "updated_at: LocalTime"
               FROM products WHERE id = ANY($1)"#,
        ids
    )
    .fetch_all(conn)
    .await
}

/// How many products `listing` selects.
pub async fn count_listed(conn: &mut PgConnection, listing: &Listing<'_>) -> sqlx::Result<i64> {
    sqlx::query_scalar!(
        r#"SELECT count(*) AS "count!" FROM products
           WHERE ($1::uuid IS NULL OR category_id = $1) AND is_active = $2
             AND ($3::text IS NULL OR ($3 <> '' AND (
                   to_tsvector('english', name) @@ to_tsquery('english', $3)
                   OR to_tsvector('english', coalesce(description, '')) @@ to_tsquery('english', $3))))"#,
        listing.category_id,
        listing.is_active,
        listing.search
    )
    .fetch_one(conn)
    .await
}

/// `limit` products of `listing` from `offset` on, in its order.
pub async fn list(
    conn: &mut PgConnection,
    listing: &Listing<'_>,
    limit: i64,
    offset: i64,
) -> sqlx::Result<Vec<Product>> {
    sqlx::query_as!(
        Product,
        r#"SELECT id, sku, name, description, price, inventory_quantity, category_id, is_active,
                      created_at AS "created_at: LocalTime", updated_at AS "updated_at: LocalTime"
               FROM products
               WHERE ($1::uuid IS NULL OR category_id = $1) AND is_active = $2
                 AND ($7::text IS NULL OR ($7 <> '' AND (
                       to_tsvector('english', name) @@ to_tsquery('english', $7)
                       OR to_tsvector('english', coalesce(description, '')) @@ to_tsquery('english', $7))))
               ORDER BY
                 CASE WHEN $3::text = 'sku' AND NOT $4::bool THEN sku END ASC,
                 CASE WHEN $3::text = 'sku' AND $4::bool THEN sku END DESC,
                 CASE WHEN $3::text = 'name' AND NOT $4::bool THEN name END ASC,
                 CASE WHEN $3::text = 'name' AND $4::bool THEN name END DESC,
                 CASE WHEN $3::text = 'description' AND NOT $4::bool THEN description END ASC,
                 CASE WHEN $3::text = 'description' AND $4::bool THEN description END DESC,
                 CASE WHEN $3::text = 'price' AND NOT $4::bool THEN price END ASC,
                 CASE WHEN $3::text = 'price' AND $4::bool THEN price END DESC,
                 CASE WHEN $3::text = 'inventory_quantity' AND NOT $4::bool THEN inventory_quantity END ASC,
                 CASE WHEN $3::text = 'inventory_quantity' AND $4::bool THEN inventory_quantity END DESC,
                 CASE WHEN $3::text = 'category_id' AND NOT $4::bool THEN category_id END ASC,
                 CASE WHEN $3::text = 'category_id' AND $4::bool THEN category_id END DESC,
                 CASE WHEN $3::text = 'is_active' AND NOT $4::bool THEN is_active END ASC,
                 CASE WHEN $3::text = 'is_active' AND $4::bool THEN is_active END DESC,
                 CASE WHEN $3::text = 'created_at' AND NOT $4::bool THEN created_at END ASC,
                 CASE WHEN $3::text = 'created_at' AND $4::bool THEN created_at END DESC,
                 CASE WHEN $3::text = 'updated_at' AND NOT $4::bool THEN updated_at END ASC,
                 CASE WHEN $3::text = 'updated_at' AND $4::bool THEN updated_at END DESC,
                 CASE WHEN $3::text = 'id' AND $4::bool THEN id END DESC,
                 id ASC
               LIMIT $5 OFFSET $6"#,
        listing.category_id,
        listing.is_active,
        listing.sort_column,
        listing.descending,
        limit,
        offset,
        listing.search
    )
    .fetch_all(conn)
    .await
}

/// Whether a product, active or discontinued, has `sku`.
pub async fn sku_taken(conn: &mut PgConnection, sku: &str) -> sqlx::Result<bool> {
    sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM products WHERE sku = $1) AS "exists!""#,
        sku
    )
    .fetch_one(conn)
    .await
}

/// A product to insert.
pub struct NewProduct<'a> {
    pub sku: &'a str,
    pub name: &'a str,
    pub description: Option<&'a str>,
    pub price: Decimal,
    pub inventory_quantity: i32,
    pub category_id: Uuid,
}

/// Inserts an active product created at `at`; a taken SKU violates `uk_product_sku`.
pub async fn insert(
    conn: &mut PgConnection,
    product: &NewProduct<'_>,
    at: NaiveDateTime,
) -> sqlx::Result<Product> {
    sqlx::query_as!(
        Product,
        r#"INSERT INTO products (id, sku, name, description, price, inventory_quantity, category_id,
                                 is_active, created_at, updated_at, version)
           VALUES ($1, $2, $3, $4, $5, $6, $7, TRUE, $8, $8, 0)
           RETURNING id, sku, name, description, price, inventory_quantity, category_id, is_active,
                     created_at AS "created_at: LocalTime", updated_at AS "updated_at: LocalTime""#,
        Uuid::new_v4(),
        product.sku,
        product.name,
        product.description,
        product.price,
        product.inventory_quantity,
        product.category_id,
        at
    )
    .fetch_one(conn)
    .await
}

/// The fields of a product that a change may set, with the version it was read at.
#[derive(Debug, Clone)]
pub struct Editable {
    pub name: String,
    pub description: Option<String>,
    pub price: Decimal,
    pub inventory_quantity: i32,
    pub category_id: Uuid,
    pub is_active: bool,
    pub version: i64,
}

/// The editable fields of product `id`, or `None`.
pub async fn find_editable(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<Option<Editable>> {
    sqlx::query_as!(
        Editable,
        "SELECT name, description, price, inventory_quantity, category_id, is_active, version
         FROM products WHERE id = $1",
        id
    )
    .fetch_optional(conn)
    .await
}

/// Writes `fields` over product `id` at `at` unless it changed since it was read at
/// `fields.version`: `None` then (or when the product is gone).
pub async fn update_unless_changed(
    conn: &mut PgConnection,
    id: Uuid,
    fields: &Editable,
    at: NaiveDateTime,
) -> sqlx::Result<Option<Product>> {
    sqlx::query_as!(
        Product,
        r#"UPDATE products
           SET name = $3, description = $4, price = $5, inventory_quantity = $6, category_id = $7,
               is_active = $8, updated_at = $9, version = version + 1
           WHERE id = $1 AND version = $2
           RETURNING id, sku, name, description, price, inventory_quantity, category_id, is_active,
                     created_at AS "created_at: LocalTime", updated_at AS "updated_at: LocalTime""#,
        id,
        fields.version,
        fields.name,
        fields.description,
        fields.price,
        fields.inventory_quantity,
        fields.category_id,
        fields.is_active,
        at
    )
    .fetch_optional(conn)
    .await
}

/// Discontinues product `id` at `at`; `false` when there is no such product.
pub async fn discontinue(
    conn: &mut PgConnection,
    id: Uuid,
    at: NaiveDateTime,
) -> sqlx::Result<bool> {
    let updated = sqlx::query!(
        "UPDATE products SET is_active = FALSE, updated_at = $2, version = version + 1
         WHERE id = $1",
        id,
        at
    )
    .execute(conn)
    .await?;
    Ok(updated.rows_affected() > 0)
}

/// A product's price, stock and state, as a cart operation checks them.
pub struct Stock {
    pub price: Decimal,
    pub available: i32,
    pub is_active: bool,
}

/// The [`Stock`] of `product_id`, or `None`.
pub async fn stock(conn: &mut PgConnection, product_id: Uuid) -> sqlx::Result<Option<Stock>> {
    sqlx::query_as!(
        Stock,
        "SELECT price, inventory_quantity AS available, is_active FROM products WHERE id = $1",
        product_id
    )
    .fetch_optional(conn)
    .await
}

/// A product as a checkout sells it.
pub struct ForSale {
    pub id: Uuid,
    pub sku: String,
    pub name: String,
    pub inventory_quantity: i32,
    pub price: Decimal,
    pub is_active: bool,
}

/// Locks the products of `ids` (sorted) in id order, so that concurrent checkouts and
/// returns never deadlock, and reads them.
pub async fn lock_for_sale(conn: &mut PgConnection, ids: &[Uuid]) -> sqlx::Result<Vec<ForSale>> {
    sqlx::query_as!(
        ForSale,
        "SELECT id, sku, name, inventory_quantity, price, is_active FROM products
         WHERE id = ANY($1) ORDER BY id FOR UPDATE",
        ids
    )
    .fetch_all(conn)
    .await
}

/// Locks the products of `ids` (sorted) in id order, as [`lock_for_sale`] does.
pub async fn lock(conn: &mut PgConnection, ids: &[Uuid]) -> sqlx::Result<()> {
    sqlx::query_scalar!(
        "SELECT id FROM products WHERE id = ANY($1) ORDER BY id FOR UPDATE",
        ids
    )
    .fetch_all(conn)
    .await
    .map(drop)
}

/// Adds `quantities[i]` to the stock of `ids[i]` at `at`; returns the products that
/// exist.
pub async fn give_back(
    conn: &mut PgConnection,
    ids: &[Uuid],
    quantities: &[i32],
    at: NaiveDateTime,
) -> sqlx::Result<HashSet<Uuid>> {
    // Summed per product first: UPDATE ... FROM changes a row once however many source
    // rows match it, so two lines of one product would otherwise return only one.
    let applied = sqlx::query_scalar!(
        "UPDATE products p
         SET inventory_quantity = p.inventory_quantity + u.quantity,
             version = p.version + 1, updated_at = $3
         FROM (SELECT id, SUM(quantity)::int AS quantity
               FROM UNNEST($1::uuid[], $2::int[]) AS t(id, quantity)
               GROUP BY id) u
         WHERE p.id = u.id
         RETURNING p.id",
        ids,
        quantities,
        at
    )
    .fetch_all(conn)
    .await?;
    Ok(applied.into_iter().collect())
}
