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
use crate::db;
use crate::error::{Error, Result, LOST_UPDATE};
use crate::near_cache::{NearCache, Ticket};
use axum::body::Bytes;
use platform::db::Db;
use platform::time::{now, LocalTime};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

pub use crate::db::categories::Category;
pub use crate::db::products::{NewProduct, Product};

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
pub async fn product_json(db: &Db, cache: &Cache, id: Uuid) -> Result<Bytes> {
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
pub async fn product_page_json(db: &Db, cache: &Cache, query: &ProductQuery) -> Result<Bytes> {
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
pub async fn product(db: &Db, cache: &Cache, id: Uuid) -> Result<Product> {
    if let Some(entry) = cache
        .get::<CachedProduct>(PRODUCT_CACHE, &product_key(id))
        .await
    {
        return Ok(entry.product);
    }
    let product = db::products::find(&mut *db.acquire().await?, id)
        .await?
        .ok_or_else(|| Error::not_found("Product", id))?;
    cache_products(cache, std::slice::from_ref(&product)).await;
    Ok(product)
}

/// Products by id, from the cache where possible; unknown ids are left out.
pub async fn products_by_ids(db: &Db, cache: &Cache, ids: &[Uuid]) -> Result<Vec<Product>> {
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
        let loaded = db::products::find_many(&mut *db.acquire().await?, &missing).await?;
        // One round trip for all of them, not one per product.
        cache_products(cache, &loaded).await;
        found.extend(loaded);
    }
    Ok(found)
}

/// A page of products, from the cache or PostgreSQL.
pub async fn product_page(db: &Db, cache: &Cache, query: &ProductQuery) -> Result<ProductPage> {
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

async fn load_product_page(db: &Db, query: &ProductQuery) -> Result<ProductPage> {
    let mut conn = db.acquire().await?;
    let listing = db::products::Listing {
        category_id: query.category_id,
        is_active: query.is_active,
        search: query.search.as_deref(),
        sort_column: query.sort.column(),
        descending: query.descending,
    };
    let total = db::products::count_listed(&mut conn, &listing).await?;
    let offset = query.page.saturating_mul(query.size);
    let content = if offset >= total {
        Vec::new()
    } else {
        db::products::list(&mut conn, &listing, query.size, offset).await?
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

/// Every category, by name.
pub async fn categories(db: &Db) -> Result<Vec<Category>> {
    Ok(db::categories::list(&mut *db.acquire().await?).await?)
}

/// Category `id`; 404 when there is none.
pub async fn category(db: &Db, id: Uuid) -> Result<Category> {
    db::categories::find(&mut *db.acquire().await?, id)
        .await?
        .ok_or_else(|| Error::not_found("Category", id))
}

/// A taken name is a 409 naming it.
fn duplicate_name(e: sqlx::Error, name: &str) -> Error {
    if platform::db::is_unique_violation(&e, "uk_category_name") {
        Error::Duplicate(format!("Category with name '{name}' already exists"))
    } else {
        e.into()
    }
}

/// Creates a category.
pub async fn create_category(db: &Db, name: &str, description: Option<&str>) -> Result<Category> {
    db::categories::insert(&mut *db.acquire().await?, name, description, now())
        .await
        .map_err(|e| duplicate_name(e, name))
}

/// Changes the name and description given of category `id`.
pub async fn update_category(
    db: &Db,
    id: Uuid,
    name: Option<&str>,
    description: Option<&str>,
) -> Result<Category> {
    db::categories::update(&mut *db.acquire().await?, id, name, description, now())
        .await
        .map_err(|e| duplicate_name(e, name.unwrap_or_default()))?
        .ok_or_else(|| Error::not_found("Category", id))
}

/// Deletes category `id` unless a product, active or discontinued, is in it (a 409, as
/// the original's published contract says; its code answered 400).
pub async fn delete_category(db: &Db, id: Uuid) -> Result<()> {
    let mut tx = db.begin().await?;
    if !db::categories::exists(&mut tx, id).await? {
        return Err(Error::not_found("Category", id));
    }
    let in_use = || {
        Error::Conflict(format!(
            "Cannot delete category with associated products. Category ID: {id}"
        ))
    };
    if db::categories::has_products(&mut tx, id).await? {
        return Err(in_use());
    }
    match db::categories::delete(&mut tx, id).await {
        Ok(()) => {}
        // A product created meanwhile references it.
        Err(sqlx::Error::Database(e)) if e.is_foreign_key_violation() => return Err(in_use()),
        Err(e) => return Err(e.into()),
    }
    tx.commit().await?;
    Ok(())
}

/// Creates an active product in an existing category; a taken SKU is a 409.
pub async fn create_product(db: &Db, cache: &Cache, product: &NewProduct<'_>) -> Result<Product> {
    let mut tx = db.begin().await?;
    if !db::categories::exists(&mut tx, product.category_id).await? {
        return Err(Error::not_found("Category", product.category_id));
    }
    let duplicate =
        || Error::Duplicate(format!("Product with SKU '{}' already exists", product.sku));
    if db::products::sku_taken(&mut tx, product.sku).await? {
        return Err(duplicate());
    }
    let created = db::products::insert(&mut tx, product, now())
        .await
        .map_err(|e| {
            if platform::db::is_unique_violation(&e, "uk_product_sku") {
                duplicate()
            } else {
                e.into()
            }
        })?;
    tx.commit().await?;
    invalidate_products(cache, &[created.id], created.updated_at.0).await;
    Ok(created)
}

/// What a product update sets; absent fields stay as they are.
#[derive(Debug, Clone, Default)]
pub struct ProductChanges {
    pub name: Option<String>,
    pub description: Option<String>,
    /// Already rounded as stored.
    pub price: Option<rust_decimal::Decimal>,
    pub inventory_quantity: Option<i32>,
    pub category_id: Option<Uuid>,
    pub is_active: Option<bool>,
}

/// Applies `changes` to product `id` (into an existing category); a concurrent change
/// since it was read is a 409.
pub async fn update_product(
    db: &Db,
    cache: &Cache,
    id: Uuid,
    changes: ProductChanges,
) -> Result<Product> {
    let mut tx = db.begin().await?;
    let current = db::products::find_editable(&mut tx, id)
        .await?
        .ok_or_else(|| Error::not_found("Product", id))?;
    if let Some(category_id) = changes.category_id {
        if category_id != current.category_id
            && !db::categories::exists(&mut tx, category_id).await?
        {
            return Err(Error::not_found("Category", category_id));
        }
    }
    let fields = db::products::Editable {
        name: changes.name.unwrap_or(current.name),
        description: changes.description.or(current.description),
        price: changes.price.unwrap_or(current.price),
        inventory_quantity: changes
            .inventory_quantity
            .unwrap_or(current.inventory_quantity),
        category_id: changes.category_id.unwrap_or(current.category_id),
        is_active: changes.is_active.unwrap_or(current.is_active),
        version: current.version,
    };
    let product = db::products::update_unless_changed(&mut tx, id, &fields, now())
        .await?
        .ok_or_else(|| Error::Conflict(LOST_UPDATE.into()))?;
    tx.commit().await?;
    invalidate_products(cache, &[id], product.updated_at.0).await;
    Ok(product)
}

/// Discontinues product `id`: it stays readable by id and leaves the default listing.
pub async fn discontinue_product(db: &Db, cache: &Cache, id: Uuid) -> Result<()> {
    let at = now();
    if !db::products::discontinue(&mut *db.acquire().await?, id, at).await? {
        return Err(Error::not_found("Product", id));
    }
    invalidate_products(cache, &[id], at).await;
    Ok(())
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
