//! `/api/v1/products`: public browsing (through the cache), manager create, partial
//! update with optimistic locking, and soft delete.

use super::PathParams;
use crate::catalog::{self, Product, ProductPage, ProductQuery, SortField};
use crate::error::{Error, Result, LOST_UPDATE};
use crate::startup::AppState;
use crate::validate::{path_id, Validator};
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use platform::auth::Manager;
use platform::http::{Json, JsonBytes, Query};
use platform::time::{now, LocalTime};
use rust_decimal::{Decimal, RoundingStrategy};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/products", get(list).post(create))
        .route(
            "/api/v1/products/{id}",
            get(read).put(update).delete(remove),
        )
}

/// Largest page a listing serves.
pub const MAX_PAGE_SIZE: i64 = 1000;
/// Prices are NUMERIC(10,2): below this.
const PRICE_LIMIT: Decimal = Decimal::from_parts(100_000_000, 0, 0, false, 0);

/// Query of a product listing; every value is checked by hand so a bad one is a 400
/// naming the parameter.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only products of this category (UUID).
    pub category_id: Option<String>,
    /// Active (default) or discontinued products.
    pub is_active: Option<String>,
    /// 0-based page index (default 0).
    pub page: Option<String>,
    /// Page size, 1 to 1000 (default 20).
    pub size: Option<String>,
    /// Property to sort by (default `name`).
    pub sort_by: Option<String>,
    /// `asc` (default) or `desc`.
    pub sort_dir: Option<String>,
    /// Words to find in the name or description (each as a word prefix, all required,
    /// English stemming: `lap` finds "Laptop", `bags` finds "bag"); at most 200
    /// characters. Blank: no filter.
    pub search: Option<String>,
}

fn invalid(value: &str, parameter: &str) -> Error {
    Error::BadRequest(format!(
        "Invalid value '{value}' for parameter '{parameter}'"
    ))
}

impl ListParams {
    fn into_query(self) -> Result<ProductQuery> {
        let category_id = match self.category_id.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(raw) => Some(Uuid::parse_str(raw).map_err(|_| invalid(raw, "categoryId"))?),
        };
        let is_active = match self.is_active.as_deref().map(str::trim) {
            None | Some("") => true,
            Some(raw) if raw.eq_ignore_ascii_case("true") => true,
            Some(raw) if raw.eq_ignore_ascii_case("false") => false,
            Some(raw) => return Err(invalid(raw, "isActive")),
        };
        let page = match self.page.as_deref().map(str::trim) {
            None | Some("") => 0,
            Some(raw) => i64::from(raw.parse::<i32>().map_err(|_| invalid(raw, "page"))?),
        };
        if page < 0 {
            return Err(Error::BadRequest(
                "Page index must not be less than zero".into(),
            ));
        }
        let size = match self.size.as_deref().map(str::trim) {
            None | Some("") => 20,
            Some(raw) => i64::from(raw.parse::<i32>().map_err(|_| invalid(raw, "size"))?),
        };
        if size < 1 {
            return Err(Error::BadRequest(
                "Page size must not be less than one".into(),
            ));
        }
        if size > MAX_PAGE_SIZE {
            return Err(Error::BadRequest(format!(
                "Page size must not be greater than {MAX_PAGE_SIZE}"
            )));
        }
        let sort = match self.sort_by.as_deref().map(str::trim) {
            None | Some("") => SortField::Name,
            Some(raw) => SortField::parse(raw).ok_or_else(|| {
                Error::BadRequest(format!(
                    "Invalid sort field '{raw}'; use one of id, sku, name, description, price, \
                     inventoryQuantity, categoryId, isActive, createdAt, updatedAt"
                ))
            })?,
        };
        let descending = self
            .sort_dir
            .as_deref()
            .is_some_and(|d| d.trim().eq_ignore_ascii_case("desc"));
        let search = match self.search.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(raw) if raw.chars().count() > catalog::MAX_SEARCH_CHARS => {
                return Err(Error::BadRequest(format!(
                    "Search must not exceed {} characters",
                    catalog::MAX_SEARCH_CHARS
                )))
            }
            Some(raw) => Some(catalog::search_terms(raw)),
        };
        Ok(ProductQuery {
            category_id,
            is_active,
            page,
            size,
            sort,
            descending,
            search,
        })
    }
}

/// Body of a product create, or of a partial update (absent fields unchanged; `sku`
/// is ignored on update, `isActive` on create).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProductRequest {
    pub sku: Option<String>,
    pub name: Option<String>,
    pub description: Option<String>,
    #[schema(value_type = Option<f64>, example = 19.99)]
    pub price: Option<Decimal>,
    pub inventory_quantity: Option<i64>,
    pub category_id: Option<Uuid>,
    pub is_active: Option<bool>,
}

const SKU_REQUIRED: &str = "SKU is required";
const SKU_LENGTH: &str = "SKU must be between 1 and 50 characters";
const SKU_PATTERN: &str = "SKU must contain only uppercase letters, numbers, and hyphens";
const NAME_REQUIRED: &str = "Product name is required";
const NAME_LENGTH: &str = "Product name must be between 1 and 200 characters";
const DESCRIPTION_LENGTH: &str = "Product description must not exceed 5000 characters";
const PRICE_REQUIRED: &str = "Price is required";
const PRICE_MIN: &str = "Price must be at least 0.01";
const PRICE_MAX: &str = "Price must be less than 100000000";
const QUANTITY_REQUIRED: &str = "Inventory quantity is required";
const QUANTITY_MIN: &str = "Inventory quantity cannot be negative";
const QUANTITY_MAX: &str = "Inventory quantity must not exceed 2147483647";
const CATEGORY_REQUIRED: &str = "Category ID is required";

impl ProductRequest {
    /// Checks the fields that are present; `creating` also requires the mandatory ones.
    fn validate(&self, creating: bool) -> Result<()> {
        let mut v = Validator::new();
        if creating {
            v.required_text(
                "sku",
                self.sku.as_deref(),
                (1, 50),
                SKU_REQUIRED,
                SKU_LENGTH,
            );
            if let Some(sku) = &self.sku {
                v.check(
                    "sku",
                    sku.bytes()
                        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-'),
                    SKU_PATTERN,
                );
            }
            v.check("price", self.price.is_some(), PRICE_REQUIRED)
                .check(
                    "inventoryQuantity",
                    self.inventory_quantity.is_some(),
                    QUANTITY_REQUIRED,
                )
                .check("categoryId", self.category_id.is_some(), CATEGORY_REQUIRED);
        }
        if creating || self.name.is_some() {
            v.required_text(
                "name",
                self.name.as_deref(),
                (1, 200),
                NAME_REQUIRED,
                NAME_LENGTH,
            );
        }
        v.optional_text(
            "description",
            self.description.as_deref(),
            (0, 5000),
            DESCRIPTION_LENGTH,
        );
        if let Some(price) = self.price {
            v.check("price", price >= Decimal::new(1, 2), PRICE_MIN)
                .check("price", price < PRICE_LIMIT, PRICE_MAX);
        }
        if let Some(quantity) = self.inventory_quantity {
            v.check("inventoryQuantity", quantity >= 0, QUANTITY_MIN)
                .check(
                    "inventoryQuantity",
                    quantity <= i64::from(i32::MAX),
                    QUANTITY_MAX,
                );
        }
        v.finish()
    }
}

/// The price as stored: two decimals, half away from zero as PostgreSQL rounds.
fn stored_price(price: Decimal) -> Decimal {
    price.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
}

/// A page of products.
#[utoipa::path(get, path = "/api/v1/products", tag = "products", params(ListParams),
    responses((status = 200, body = ProductPage), (status = 400, description = "Bad parameter", body = crate::openapi::ProblemDetails, content_type = "application/problem+json")))]
pub async fn list(
    State(state): State<AppState>,
    Query(params): Query<ListParams>,
) -> Result<JsonBytes> {
    let query = params.into_query()?;
    Ok(JsonBytes(
        catalog::product_page_json(&state.db, &state.cache, &query).await?,
    ))
}

/// One product, active or discontinued.
#[utoipa::path(get, path = "/api/v1/products/{id}", tag = "products",
    params(("id" = String, Path, description = "Product id (UUID)")),
    responses((status = 200, body = Product), (status = 404, description = "Not found", body = crate::openapi::ProblemDetails, content_type = "application/problem+json")))]
pub async fn read(
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
) -> Result<JsonBytes> {
    let id = path_id(&id)?;
    Ok(JsonBytes(
        catalog::product_json(&state.db, &state.cache, id).await?,
    ))
}

/// Creates a product (manager).
#[utoipa::path(post, path = "/api/v1/products", tag = "products",
    request_body = ProductRequest, security(("bearer" = [])),
    responses((status = 201, body = Product), (status = 400, description = "Invalid", body = crate::openapi::ProblemDetails, content_type = "application/problem+json"),
        (status = 404, description = "Category not found", body = crate::openapi::ProblemDetails, content_type = "application/problem+json"), (status = 409, description = "SKU taken", body = crate::openapi::ProblemDetails, content_type = "application/problem+json")))]
pub async fn create(
    _manager: Manager,
    State(state): State<AppState>,
    Json(body): Json<ProductRequest>,
) -> Result<(StatusCode, Json<Product>)> {
    body.validate(true)?;
    let (Some(sku), Some(name), Some(price), Some(quantity), Some(category_id)) = (
        body.sku,
        body.name,
        body.price,
        body.inventory_quantity,
        body.category_id,
    ) else {
        return Err(Error::BadRequest("Invalid request body".into()));
    };
    let quantity =
        i32::try_from(quantity).map_err(|_| Error::field("inventoryQuantity", QUANTITY_MAX))?;
    let mut tx = state.db.begin().await?;
    if !catalog::category_exists(&mut tx, category_id).await? {
        return Err(Error::not_found("Category", category_id));
    }
    let duplicate = || Error::Duplicate(format!("Product with SKU '{sku}' already exists"));
    let taken = sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM products WHERE sku = $1) AS "exists!""#,
        sku
    )
    .fetch_one(&mut *tx)
    .await?;
    if taken {
        return Err(duplicate());
    }
    let at = now();
    let product = sqlx::query_as!(
        Product,
        r#"INSERT INTO products (id, sku, name, description, price, inventory_quantity, category_id,
                                 is_active, created_at, updated_at, version)
           VALUES ($1, $2, $3, $4, $5, $6, $7, TRUE, $8, $8, 0)
           RETURNING id, sku, name, description, price, inventory_quantity, category_id, is_active,
                     created_at AS "created_at: LocalTime", updated_at AS "updated_at: LocalTime""#,
        Uuid::new_v4(),
        sku,
        name,
        body.description,
        stored_price(price),
        quantity,
        category_id,
        at
    )
    .fetch_one(&mut *tx)
    .await
    .map_err(|e| {
        if platform::db::is_unique_violation(&e, "uk_product_sku") {
            duplicate()
        } else {
            e.into()
        }
    })?;
    tx.commit().await?;
    catalog::invalidate_products(&state.cache, &[product.id], product.updated_at.0).await;
    Ok((StatusCode::CREATED, Json(product)))
}

/// Changes the fields present in the body (manager); `isActive` discontinues or
/// reactivates. A concurrent change in between is a 409.
#[utoipa::path(put, path = "/api/v1/products/{id}", tag = "products",
    params(("id" = String, Path, description = "Product id (UUID)")),
    request_body = ProductRequest, security(("bearer" = [])),
    responses((status = 200, body = Product), (status = 400, description = "Invalid", body = crate::openapi::ProblemDetails, content_type = "application/problem+json"),
        (status = 404, description = "Product or category not found", body = crate::openapi::ProblemDetails, content_type = "application/problem+json"),
        (status = 409, description = "Modified concurrently", body = crate::openapi::ProblemDetails, content_type = "application/problem+json")))]
pub async fn update(
    _manager: Manager,
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
    Json(body): Json<ProductRequest>,
) -> Result<Json<Product>> {
    let id = path_id(&id)?;
    body.validate(false)?;
    let mut tx = state.db.begin().await?;
    let current = sqlx::query!(
        "SELECT name, description, price, inventory_quantity, category_id, is_active, version
         FROM products WHERE id = $1",
        id
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| Error::not_found("Product", id))?;
    if let Some(category_id) = body.category_id {
        if category_id != current.category_id
            && !catalog::category_exists(&mut tx, category_id).await?
        {
            return Err(Error::not_found("Category", category_id));
        }
    }
    let quantity = match body.inventory_quantity {
        Some(q) => i32::try_from(q).map_err(|_| Error::field("inventoryQuantity", QUANTITY_MAX))?,
        None => current.inventory_quantity,
    };
    let product = sqlx::query_as!(
        Product,
        r#"UPDATE products
           SET name = $3, description = $4, price = $5, inventory_quantity = $6, category_id = $7,
               is_active = $8, updated_at = $9, version = version + 1
           WHERE id = $1 AND version = $2
           RETURNING id, sku, name, description, price, inventory_quantity, category_id, is_active,
                     created_at AS "created_at: LocalTime", updated_at AS "updated_at: LocalTime""#,
        id,
        current.version,
        body.name.unwrap_or(current.name),
        body.description.or(current.description),
        body.price.map(stored_price).unwrap_or(current.price),
        quantity,
        body.category_id.unwrap_or(current.category_id),
        body.is_active.unwrap_or(current.is_active),
        now()
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| Error::Conflict(LOST_UPDATE.into()))?;
    tx.commit().await?;
    catalog::invalidate_products(&state.cache, &[id], product.updated_at.0).await;
    Ok(Json(product))
}

/// Discontinues a product (manager): it stays readable by id and leaves the default
/// listing. Deleting twice is still 204.
#[utoipa::path(delete, path = "/api/v1/products/{id}", tag = "products",
    params(("id" = String, Path, description = "Product id (UUID)")),
    security(("bearer" = [])),
    responses((status = 204, description = "Discontinued"), (status = 404, description = "Not found", body = crate::openapi::ProblemDetails, content_type = "application/problem+json")))]
pub async fn remove(
    _manager: Manager,
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
) -> Result<StatusCode> {
    let id = path_id(&id)?;
    let at = now();
    let updated = sqlx::query!(
        "UPDATE products SET is_active = FALSE, updated_at = $2, version = version + 1
         WHERE id = $1",
        id,
        at
    )
    .execute(&mut *state.db.acquire().await?)
    .await?;
    if updated.rows_affected() == 0 {
        return Err(Error::not_found("Product", id));
    }
    catalog::invalidate_products(&state.cache, &[id], at).await;
    Ok(StatusCode::NO_CONTENT)
}
