//! `/api/v1/products`: public browsing (through the cache), manager create, partial
//! update with optimistic locking, and soft delete.

use super::params::PathParams;
use crate::catalog::{
    self, NewProduct, Product, ProductChanges, ProductPage, ProductQuery, SortField,
};
use crate::error::{Error, Result};
use crate::state::AppState;
use crate::validate::{path_id, Validator};
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use platform::auth::Manager;
use platform::http::{Json, JsonBytes, Query};
use platform::rules::{count_from, Int, Pattern, Text, TextViolation};
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
/// Page sizes a listing serves.
const PAGE_SIZE: Int = Int {
    min: 1,
    max: MAX_PAGE_SIZE,
};
/// Page indexes a listing serves (a Java `int`).
const PAGE_INDEX: Int = count_from(0);
/// Prices are NUMERIC(10,2): this is the largest. Checked before rounding, so that a
/// JSON number read as a float cannot round up past it.
const PRICE_CEILING: Decimal = Decimal::from_parts(1_410_065_407, 2, 0, false, 2);
/// The smallest price.
const PRICE_FLOOR: Decimal = Decimal::from_parts(1, 0, 0, false, 2);

const SKU_PATTERN: &str = "SKU must contain only uppercase letters, numbers, and hyphens";
/// SKUs: 1 to 50 of `A-Z`, `0-9` and `-`.
pub const SKU: Text = Text::non_blank(1, 50).with_pattern(Pattern {
    regex: "^[A-Z0-9-]+$",
    matches: |sku| {
        sku.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-')
    },
    message: SKU_PATTERN,
});
/// Product names.
pub const NAME: Text = Text::non_blank(1, 200);
/// Product descriptions.
pub const DESCRIPTION: Text = Text::up_to(5000);
/// The `search` parameter: words, at most this many characters, no NUL.
pub const SEARCH: Text = Text::up_to(catalog::MAX_SEARCH_CHARS);
/// Stock counts (an `INTEGER` column).
pub const INVENTORY: Int = count_from(0);

/// Query of a product listing; every value is checked by hand so a bad one is a 400
/// naming the parameter. An empty value means the default, as in the original.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only products of this category.
    #[param(schema_with = schema::category_filter)]
    pub category_id: Option<String>,
    /// Active (default) or discontinued products.
    #[param(schema_with = schema::is_active_filter)]
    pub is_active: Option<String>,
    /// 0-based page index (default 0).
    #[param(schema_with = schema::page)]
    pub page: Option<String>,
    /// Page size (default 20).
    #[param(schema_with = schema::size)]
    pub size: Option<String>,
    /// Property to sort by (default `name`).
    #[param(schema_with = schema::sort_by)]
    pub sort_by: Option<String>,
    /// `desc` (any case) sorts descending; anything else ascending.
    #[param(schema_with = schema::any_text)]
    pub sort_dir: Option<String>,
    /// Words to find in the name or description (each as a word prefix, all required,
    /// English stemming: `lap` finds "Laptop", `bags` finds "bag"); at most 200
    /// characters. Blank: no filter.
    #[param(schema_with = schema::search)]
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
        if !PAGE_INDEX.contains(page) {
            return Err(Error::BadRequest(
                "Page index must not be less than zero".into(),
            ));
        }
        let size = match self.size.as_deref().map(str::trim) {
            None | Some("") => 20,
            Some(raw) => i64::from(raw.parse::<i32>().map_err(|_| invalid(raw, "size"))?),
        };
        if size < PAGE_SIZE.min {
            return Err(Error::BadRequest(
                "Page size must not be less than one".into(),
            ));
        }
        if size > PAGE_SIZE.max {
            return Err(Error::BadRequest(format!(
                "Page size must not be greater than {MAX_PAGE_SIZE}"
            )));
        }
        let sort = match self.sort_by.as_deref().map(str::trim) {
            None | Some("") => SortField::Name,
            Some(raw) => SortField::parse(raw).ok_or_else(|| {
                Error::BadRequest(format!(
                    "Invalid sort field '{raw}'; use one of {}",
                    SortField::NAMES.join(", ")
                ))
            })?,
        };
        let descending = self
            .sort_dir
            .as_deref()
            .is_some_and(|d| d.trim().eq_ignore_ascii_case("desc"));
        let search = match self.search.as_deref() {
            None => None,
            Some(raw) => {
                SEARCH.check(raw).map_err(|violation| {
                    Error::BadRequest(match violation {
                        TextViolation::Pattern => {
                            "Search must not contain NUL characters".to_owned()
                        }
                        _ => format!(
                            "Search must not exceed {} characters",
                            catalog::MAX_SEARCH_CHARS
                        ),
                    })
                })?;
                match raw.trim() {
                    "" => None,
                    words => Some(catalog::search_terms(words)),
                }
            }
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

/// Body of a product create. `isActive` is ignored: a new product is active.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NewProductRequest {
    #[schema(required = true, schema_with = schema::sku)]
    pub sku: Option<String>,
    #[schema(required = true, schema_with = schema::name)]
    pub name: Option<String>,
    #[schema(schema_with = schema::description)]
    pub description: Option<String>,
    #[schema(required = true, schema_with = schema::price)]
    pub price: Option<Decimal>,
    #[schema(required = true, schema_with = schema::inventory)]
    pub inventory_quantity: Option<i64>,
    #[schema(required = true, schema_with = schema::category_id)]
    pub category_id: Option<Uuid>,
    #[schema(schema_with = schema::is_active)]
    pub is_active: Option<bool>,
}

/// Body of a partial product update: absent or null fields stay as they are. The SKU
/// cannot change; a `sku` sent is ignored.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProductChangesRequest {
    #[schema(schema_with = schema::name_or_null)]
    pub name: Option<String>,
    #[schema(schema_with = schema::description)]
    pub description: Option<String>,
    #[schema(schema_with = schema::price_or_null)]
    pub price: Option<Decimal>,
    #[schema(schema_with = schema::inventory_or_null)]
    pub inventory_quantity: Option<i64>,
    #[schema(schema_with = schema::category_id_or_null)]
    pub category_id: Option<Uuid>,
    /// `false` discontinues the product, `true` reactivates it.
    #[schema(schema_with = schema::is_active)]
    pub is_active: Option<bool>,
}

/// Schemas of the product fields, built from the rules the validation uses.
mod schema {
    use super::*;
    use platform::rules::{boolean_schema, uuid_schema};
    use rust_decimal::prelude::ToPrimitive;
    use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
    use utoipa::openapi::Object;

    pub fn sku() -> Object {
        SKU.schema()
    }
    pub fn name() -> Object {
        NAME.schema()
    }
    pub fn name_or_null() -> Object {
        NAME.nullable_schema()
    }
    pub fn description() -> Object {
        DESCRIPTION.nullable_schema()
    }
    pub fn search() -> Object {
        SEARCH.schema()
    }
    fn price_schema(kind: SchemaType) -> Object {
        ObjectBuilder::new()
            .schema_type(kind)
            .minimum(PRICE_FLOOR.to_f64())
            .maximum(PRICE_CEILING.to_f64())
            .examples([19.99])
            .description(Some("Rounded to 2 decimals when stored"))
            .build()
    }
    pub fn price() -> Object {
        price_schema(SchemaType::new(Type::Number))
    }
    pub fn price_or_null() -> Object {
        price_schema(SchemaType::from_iter([Type::Number, Type::Null]))
    }
    pub fn inventory() -> Object {
        INVENTORY.schema()
    }
    pub fn inventory_or_null() -> Object {
        INVENTORY.nullable_schema()
    }
    pub fn category_id() -> Object {
        uuid_schema(false)
    }
    pub fn category_id_or_null() -> Object {
        uuid_schema(true)
    }
    pub fn is_active() -> Object {
        boolean_schema(true)
    }
    pub fn category_filter() -> Object {
        uuid_schema(false)
    }
    pub fn is_active_filter() -> Object {
        // `true` or `false` in any case.
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some("^([Tt][Rr][Uu][Ee]|[Ff][Aa][Ll][Ss][Ee])$"))
            .build()
    }
    pub fn any_text() -> Object {
        Text::any().schema()
    }
    pub fn page() -> Object {
        PAGE_INDEX.schema()
    }
    pub fn size() -> Object {
        PAGE_SIZE.schema()
    }
    pub fn sort_by() -> Object {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(SortField::NAMES))
            .build()
    }
}

const NAME_REQUIRED: &str = "Product name is required";
const NAME_LENGTH: &str = "Product name must be between 1 and 200 characters";
const DESCRIPTION_LENGTH: &str = "Product description must not exceed 5000 characters";
const PRICE_REQUIRED: &str = "Price is required";
const PRICE_MIN: &str = "Price must be at least 0.01";
const PRICE_MAX: &str = "Price must not exceed 99999999.99";
const QUANTITY_REQUIRED: &str = "Inventory quantity is required";
const QUANTITY_MIN: &str = "Inventory quantity cannot be negative";
const QUANTITY_MAX: &str = "Inventory quantity must not exceed 2147483647";
const CATEGORY_REQUIRED: &str = "Category ID is required";

/// Checks the fields a create and an update share, when present.
fn validate_common(
    v: &mut Validator,
    description: Option<&str>,
    price: Option<Decimal>,
    quantity: Option<i64>,
) {
    v.optional_text("description", description, &DESCRIPTION, DESCRIPTION_LENGTH);
    if let Some(price) = price {
        v.check("price", price >= PRICE_FLOOR, PRICE_MIN).check(
            "price",
            price <= PRICE_CEILING,
            PRICE_MAX,
        );
    }
    if let Some(quantity) = quantity {
        v.check("inventoryQuantity", quantity >= INVENTORY.min, QUANTITY_MIN)
            .check("inventoryQuantity", quantity <= INVENTORY.max, QUANTITY_MAX);
    }
}

impl NewProductRequest {
    fn validate(&self) -> Result<()> {
        let mut v = Validator::new();
        v.required_text(
            "sku",
            self.sku.as_deref(),
            &SKU,
            "SKU is required",
            "SKU must be between 1 and 50 characters",
        )
        .required_text(
            "name",
            self.name.as_deref(),
            &NAME,
            NAME_REQUIRED,
            NAME_LENGTH,
        )
        .check("price", self.price.is_some(), PRICE_REQUIRED)
        .check(
            "inventoryQuantity",
            self.inventory_quantity.is_some(),
            QUANTITY_REQUIRED,
        )
        .check("categoryId", self.category_id.is_some(), CATEGORY_REQUIRED);
        validate_common(
            &mut v,
            self.description.as_deref(),
            self.price,
            self.inventory_quantity,
        );
        v.finish()
    }
}

impl ProductChangesRequest {
    fn validate(&self) -> Result<()> {
        let mut v = Validator::new();
        if self.name.is_some() {
            v.required_text(
                "name",
                self.name.as_deref(),
                &NAME,
                NAME_REQUIRED,
                NAME_LENGTH,
            );
        }
        validate_common(
            &mut v,
            self.description.as_deref(),
            self.price,
            self.inventory_quantity,
        );
        v.finish()
    }
}

/// The price as stored: two decimals, half away from zero as PostgreSQL rounds.
fn stored_price(price: Decimal) -> Decimal {
    price.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
}

/// A page of products.
#[utoipa::path(get, path = "/api/v1/products", tag = "products", operation_id = "listProducts", params(ListParams),
    responses((status = 200, body = ProductPage), (status = 400, description = "Bad parameter", body = platform::Problem, content_type = "application/problem+json")))]
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
#[utoipa::path(get, path = "/api/v1/products/{id}", tag = "products", operation_id = "getProduct",
    params(("id" = String, Path, description = "Product id (UUID)")),
    responses((status = 200, body = Product), (status = 404, description = "Not found", body = platform::Problem, content_type = "application/problem+json")))]
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
#[utoipa::path(post, path = "/api/v1/products", tag = "products", operation_id = "createProduct",
    request_body = NewProductRequest, security(("bearer" = [])),
    responses((status = 201, body = Product), (status = 400, description = "Invalid", body = platform::Problem, content_type = "application/problem+json"),
        (status = 404, description = "Category not found", body = platform::Problem, content_type = "application/problem+json"), (status = 409, description = "SKU taken", body = platform::Problem, content_type = "application/problem+json")))]
pub async fn create(
    _manager: Manager,
    State(state): State<AppState>,
    Json(body): Json<NewProductRequest>,
) -> Result<(StatusCode, Json<Product>)> {
    body.validate()?;
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
    let new = NewProduct {
        sku: &sku,
        name: &name,
        description: body.description.as_deref(),
        price: stored_price(price),
        inventory_quantity: quantity,
        category_id,
    };
    let product = catalog::create_product(&state.db, &state.cache, &new).await?;
    Ok((StatusCode::CREATED, Json(product)))
}

/// Changes the fields present in the body (manager); `isActive` discontinues or
/// reactivates. A concurrent change in between is a 409.
#[utoipa::path(put, path = "/api/v1/products/{id}", tag = "products", operation_id = "updateProduct",
    params(("id" = String, Path, description = "Product id (UUID)")),
    request_body = ProductChangesRequest, security(("bearer" = [])),
    responses((status = 200, body = Product), (status = 400, description = "Invalid", body = platform::Problem, content_type = "application/problem+json"),
        (status = 404, description = "Product or category not found", body = platform::Problem, content_type = "application/problem+json"),
        (status = 409, description = "Modified concurrently", body = platform::Problem, content_type = "application/problem+json")))]
pub async fn update(
    _manager: Manager,
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
    Json(body): Json<ProductChangesRequest>,
) -> Result<Json<Product>> {
    let id = path_id(&id)?;
    body.validate()?;
    let inventory_quantity = body
        .inventory_quantity
        .map(|q| i32::try_from(q).map_err(|_| Error::field("inventoryQuantity", QUANTITY_MAX)))
        .transpose()?;
    let changes = ProductChanges {
        name: body.name,
        description: body.description,
        price: body.price.map(stored_price),
        inventory_quantity,
        category_id: body.category_id,
        is_active: body.is_active,
    };
    Ok(Json(
        catalog::update_product(&state.db, &state.cache, id, changes).await?,
    ))
}

/// Discontinues a product (manager): it stays readable by id and leaves the default
/// listing. Deleting twice is still 204.
#[utoipa::path(delete, path = "/api/v1/products/{id}", tag = "products", operation_id = "deleteProduct",
    params(("id" = String, Path, description = "Product id (UUID)")),
    security(("bearer" = [])),
    responses((status = 204, description = "Discontinued"), (status = 404, description = "Not found", body = platform::Problem, content_type = "application/problem+json")))]
pub async fn remove(
    _manager: Manager,
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
) -> Result<StatusCode> {
    let id = path_id(&id)?;
    catalog::discontinue_product(&state.db, &state.cache, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_price_ceiling_is_the_largest_numeric_10_2() {
        assert_eq!(PRICE_CEILING, Decimal::new(9_999_999_999, 2));
    }

    #[test]
    fn every_documented_sort_field_is_accepted() {
        for name in SortField::NAMES {
            assert!(SortField::parse(name).is_some(), "{name}");
        }
    }

    #[test]
    fn skus_are_uppercase_letters_digits_and_hyphens() {
        assert!(SKU.check("ABC-123").is_ok());
        assert!(SKU.check("abc").is_err());
        assert!(SKU.check("A B").is_err());
        assert!(SKU.check(&"A".repeat(51)).is_err());
    }
}
