//! The catalogue: categories and products in PostgreSQL, products served through the
//! Redis cache.
//!
//! Cached entries: `product:<id>` (one product, with its version) and
//! `products:v<generation>:<query>` (one page of a listing). Every product write
//! replaces the product's entry with a tombstone as new as the write (so a read that
//! raced the write cannot put the old state back) and bumps the generation, so the next
//! read of any listing misses and goes to PostgreSQL. A write made while Redis is
//! unreachable cannot invalidate; entries also expire after the catalogue TTL, which
//! bounds how stale such an entry can get. The public reads answer with JSON bytes
//! kept in the [`near_cache`](crate::near_cache) when they can.

use crate::cache::{Cache, Versioned};
use crate::error::{Error, Result};
use crate::near_cache::{NearCache, Ticket};
use axum::body::Bytes;
use platform::time::LocalTime;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use utoipa::ToSchema;
use uuid::Uuid;

/// A category of products.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Category {
    pub id: Uuid,
    pub name: String,
    pub description: Option<String>,
    #[schema(value_type = String, example = "2025-10-06T14:03:27.51234")]
    pub created_at: LocalTime,
    #[schema(value_type = String, example = "2025-10-06T14:03:27.51234")]
    pub updated_at: LocalTime,
}

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

/// One page of products, Spring Data's shape.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProductPage {
    pub content: Vec<Product>,
    pub total_elements: i64,
    pub total_pages: i64,
    pub size: i64,
    pub number: i64,
}

/// A product property clients may sort by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortField {
    Id,
    Sku,
    Name,
    Description,
    Price,
    InventoryQuantity,
    CategoryId,
    IsActive,
    CreatedAt,
    UpdatedAt,
}

impl SortField {
    /// Every property name [`parse`](Self::parse) accepts, as the API spells them.
    pub const NAMES: [&'static str; 10] = [
        "id",
        "sku",
        "name",
        "description",
        "price",
        "inventoryQuantity",
        "categoryId",
        "isActive",
        "createdAt",
        "updatedAt",
    ];

    /// The property named `name`, as the API spells it.
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "id" => Self::Id,
            "sku" => Self::Sku,
            "name" => Self::Name,
            "description" => Self::Description,
            "price" => Self::Price,
            "inventoryQuantity" => Self::InventoryQuantity,
            "categoryId" => Self::CategoryId,
            "isActive" => Self::IsActive,
            "createdAt" => Self::CreatedAt,
            "updatedAt" => Self::UpdatedAt,
            _ => return None,
        })
    }

    fn column(self) -> &'static str {
        match self {
            Self::Id => "id",
            Self::Sku => "sku",
            Self::Name => "name",
            Self::Description => "description",
            Self::Price => "price",
            Self::InventoryQuantity => "inventory_quantity",
            Self::CategoryId => "category_id",
            Self::IsActive => "is_active",
            Self::CreatedAt => "created_at",
            Self::UpdatedAt => "updated_at",
        }
    }
}

/// What a product listing asks for.
#[derive(Debug, Clone)]
pub struct ProductQuery {
    pub category_id: Option<Uuid>,
    pub is_active: bool,
    pub page: i64,
    pub size: i64,
    pub sort: SortField,
    pub descending: bool,
    /// Only products whose name or description has every word of the search, each as a
    /// word prefix: a PostgreSQL `to_tsquery` (`'lap':* & 'bag':*`) built by [`search_terms`]
    /// from letters and digits only. Empty: nothing matches.
    pub search: Option<String>,
}

/// Longest search a listing accepts, in characters.
pub const MAX_SEARCH_CHARS: usize = 200;

/// The `to_tsquery` text of what a customer typed: its words (runs of letters and
/// digits, so no query syntax gets through), each matched as a prefix, all required.
/// Empty when there is no word in it.
pub fn search_terms(typed: &str) -> String {
    typed
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .take(16)
        // Quoted, so whatever PostgreSQL's parser makes of a word is a lexeme, never syntax.
        .map(|w| format!("'{}':*", w.to_lowercase()))
        .collect::<Vec<_>>()
        .join(" & ")
}

impl ProductQuery {
    /// What identifies the listing, whatever the generation.
    fn shape(&self) -> String {
        format!(
            "{}:{}:{}:{}:{}:{}:{}",
            self.category_id
                .map_or_else(|| "all".to_owned(), |id| id.to_string()),
            self.is_active,
            self.page,
            self.size,
            self.sort.column(),
            if self.descending { "desc" } else { "asc" },
            self.search
                .as_deref()
                .map_or_else(|| "-".to_owned(), |s| format!("q={s}"))
        )
    }

    fn cache_key(&self, generation: i64) -> String {
        format!("products:v{generation}:{}", self.shape())
    }
}

const PRODUCT_CACHE: &str = "product";
const PAGE_CACHE: &str = "product_page";
const NEAR_PRODUCT_CACHE: &str = "product_near";
const NEAR_PAGE_CACHE: &str = "product_page_near";
const GENERATION_KEY: &str = "products:generation";

fn product_key(id: Uuid) -> String {
    format!("product:{id}")
}

/// A product in the cache with its version (`updatedAt` in microseconds): an entry is
/// only ever replaced by a newer state, so a read that loaded a product just before a
/// write cannot put the old state back after the write invalidated it.
#[derive(Serialize, Deserialize)]
struct CachedProduct {
    version: i64,
    product: Product,
}

/// What a write leaves in place of a product's entry: as new as the write, and not a
/// product, so the next read goes to PostgreSQL.
#[derive(Serialize)]
struct Tombstone {
    version: i64,
}

fn version_of(t: &LocalTime) -> i64 {
    t.0.and_utc().timestamp_micros()
}

/// `product` as a cache entry.
fn product_entry(product: &Product) -> Versioned {
    let version = version_of(&product.updated_at);
    let entry = CachedProduct {
        version,
        product: product.clone(),
    };
    Versioned::new(&product_key(product.id), &entry, version)
}

/// Copies products just read from PostgreSQL into the cache, in one round trip. A fill:
/// skipped while Redis looks hung, since a missing entry only costs a miss.
async fn cache_products(cache: &Cache, products: &[Product]) {
    let entries: Vec<Versioned> = products.iter().map(product_entry).collect();
    cache.fill_many_if_newer(&entries, cache.ttl()).await;
}

fn to_json<T: Serialize>(value: &T) -> Result<Bytes> {
    serde_json::to_vec(value)
        .map(Bytes::from)
        .map_err(|e| Error::Internal(e.into()))
}

/// The JSON answer of `load`, through the near cache: `cached` looks it up there,
/// `keep` stores it; counted under `name`.
async fn near_json<T, Fut>(
    cache: &Cache,
    name: &str,
    cached: impl FnOnce(&NearCache) -> Option<Bytes>,
    load: impl FnOnce() -> Fut,
    keep: impl FnOnce(&NearCache, Ticket, Bytes),
) -> Result<Bytes>
where
    T: Serialize,
    Fut: std::future::Future<Output = Result<T>>,
{
    let near = cache.near();
    if let Some(body) = cached(near) {
        cache.count(name, true);
        return Ok(body);
    }
    let ticket = near.ticket();
    if ticket.is_some() {
        cache.count(name, false);
    }
    let body = to_json(&load().await?)?;
    if let Some(ticket) = ticket {
        keep(near, ticket, body.clone());
    }
    Ok(body)
}

/// A product's JSON answer, from the near cache, Redis or PostgreSQL.
pub async fn product_json(db: &platform::db::Db, cache: &Cache, id: Uuid) -> Result<Bytes> {
    near_json(
        cache,
        NEAR_PRODUCT_CACHE,
        |near| near.product(id),
        || product(db, cache, id),
        |near, ticket, body| near.store_product(ticket, id, body),
    )
    .await
}

/// A listing's JSON answer, from the near cache, Redis or PostgreSQL.
pub async fn product_page_json(
    db: &platform::db::Db,
    cache: &Cache,
    query: &ProductQuery,
) -> Result<Bytes> {
    let shape = query.shape();
    near_json(
        cache,
        NEAR_PAGE_CACHE,
        |near| near.page(&shape),
        || product_page(db, cache, query),
        |near, ticket, body| near.store_page(ticket, shape.clone(), body),
    )
    .await
}

/// A product by id, from the cache or PostgreSQL.
pub async fn product(db: &platform::db::Db, cache: &Cache, id: Uuid) -> Result<Product> {
    if let Some(entry) = cache
        .get::<CachedProduct>(PRODUCT_CACHE, &product_key(id))
        .await
    {
        return Ok(entry.product);
    }
    let product = load_product(&mut *db.acquire().await?, id)
        .await?
        .ok_or_else(|| Error::not_found("Product", id))?;
    cache_products(cache, std::slice::from_ref(&product)).await;
    Ok(product)
}

/// Products by id, from the cache where possible; unknown ids are left out.
pub async fn products_by_ids(
    db: &platform::db::Db,
    cache: &Cache,
    ids: &[Uuid],
) -> Result<Vec<Product>> {
    let keys: Vec<String> = ids.iter().map(|id| product_key(*id)).collect();
    let cached = cache.get_many::<CachedProduct>(PRODUCT_CACHE, &keys).await;
    let mut found: Vec<Product> = Vec::with_capacity(ids.len());
    let mut missing: Vec<Uuid> = Vec::new();
    for (id, hit) in ids.iter().zip(cached) {
        match hit {
            Some(entry) => found.push(entry.product),
            None => missing.push(*id),
        }
    }
    if !missing.is_empty() {
        let loaded = sqlx::query_as!(
            Product,
            r#"SELECT id, sku, name, description, price, inventory_quantity, category_id, is_active,
                      created_at AS "created_at: LocalTime", updated_at AS "updated_at: LocalTime"
               FROM products WHERE id = ANY($1)"#,
            &missing
        )
        .fetch_all(&mut *db.acquire().await?)
        .await?;
        // One round trip for all of them, not one per product.
        cache_products(cache, &loaded).await;
        found.extend(loaded);
    }
    Ok(found)
}

/// One product row, without the cache.
pub async fn load_product(conn: &mut PgConnection, id: Uuid) -> Result<Option<Product>> {
    Ok(sqlx::query_as!(
        Product,
        r#"SELECT id, sku, name, description, price, inventory_quantity, category_id, is_active,
                  created_at AS "created_at: LocalTime", updated_at AS "updated_at: LocalTime"
           FROM products WHERE id = $1"#,
        id
    )
    .fetch_optional(conn)
    .await?)
}

/// A page of products, from the cache or PostgreSQL.
pub async fn product_page(
    db: &platform::db::Db,
    cache: &Cache,
    query: &ProductQuery,
) -> Result<ProductPage> {
    let generation = cache.counter(GENERATION_KEY).await;
    let key = generation.map(|g| query.cache_key(g));
    if let Some(key) = &key {
        if let Some(page) = cache.get::<ProductPage>(PAGE_CACHE, key).await {
            return Ok(page);
        }
    }
    let page = load_product_page(db, query).await?;
    if let Some(key) = &key {
        cache.fill(key, &page, cache.ttl()).await;
    }
    Ok(page)
}

async fn load_product_page(db: &platform::db::Db, query: &ProductQuery) -> Result<ProductPage> {
    let mut conn = db.acquire().await?;
    let total = sqlx::query_scalar!(
        r#"SELECT count(*) AS "count!" FROM products
           WHERE ($1::uuid IS NULL OR category_id = $1) AND is_active = $2
             AND ($3::text IS NULL OR ($3 <> '' AND (
                   to_tsvector('english', name) @@ to_tsquery('english', $3)
                   OR to_tsvector('english', coalesce(description, '')) @@ to_tsquery('english', $3))))"#,
        query.category_id,
        query.is_active,
        query.search
    )
    .fetch_one(&mut *conn)
    .await?;
    let offset = query.page.saturating_mul(query.size);
    let content = if offset >= total {
        Vec::new()
    } else {
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
            query.category_id,
            query.is_active,
            query.sort.column(),
            query.descending,
            query.size,
            offset,
            query.search
        )
        .fetch_all(&mut *conn)
        .await?
    };
    let total_pages = if total == 0 {
        0
    } else {
        (total + query.size - 1) / query.size
    };
    Ok(ProductPage {
        content,
        total_elements: total,
        total_pages,
        size: query.size,
        number: query.page,
    })
}

/// Replaces the cached entries of products written at `at` (their new `updatedAt`)
/// with tombstones, retires every cached listing and announces the products to every
/// replica's near cache, all in one Redis transaction (one round trip, so one timeout
/// at most whatever the number of products), then drops them from this process's near
/// cache; call after the commit. This process's near cache is cleared after Redis so
/// that a read in between cannot refill it from Redis's old entries; the other
/// replicas get the message only once the transaction has cleared Redis.
pub async fn invalidate_products(cache: &Cache, ids: &[Uuid], at: chrono::NaiveDateTime) {
    let version = version_of(&LocalTime(at));
    let tombstones: Vec<Versioned> = ids
        .iter()
        .map(|id| Versioned::new(&product_key(*id), &Tombstone { version }, version))
        .collect();
    cache
        .invalidate(
            &tombstones,
            cache.ttl(),
            GENERATION_KEY,
            crate::near_cache::message(ids),
        )
        .await;
    cache.near().invalidate(ids);
}

/// A category by id.
pub async fn category(conn: &mut PgConnection, id: Uuid) -> Result<Option<Category>> {
    Ok(sqlx::query_as!(
        Category,
        r#"SELECT id, name, description,
                  created_at AS "created_at: LocalTime", updated_at AS "updated_at: LocalTime"
           FROM categories WHERE id = $1"#,
        id
    )
    .fetch_optional(conn)
    .await?)
}

/// Whether category `id` exists.
pub async fn category_exists(conn: &mut PgConnection, id: Uuid) -> Result<bool> {
    Ok(sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM categories WHERE id = $1) AS "exists!""#,
        id
    )
    .fetch_one(conn)
    .await?)
}

#[cfg(test)]
mod search_tests {
    use super::search_terms;

    #[test]
    fn a_search_becomes_quoted_word_prefixes_and_drops_query_syntax() {
        assert_eq!(search_terms("Laptop  bags"), "'laptop':* & 'bags':*");
        assert_eq!(search_terms("a:*|b & !c"), "'a':* & 'b':* & 'c':*");
        assert_eq!(search_terms("'); --"), "");
    }
}
