//! `/api/v1/carts/{sessionId}`: the guest cart and its lines.

use super::params::PathParams;
use crate::carts::{self, Cart};
use crate::error::{Error, Result};
use crate::state::AppState;
use crate::validate::{path_id, Validator};
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use axum::Router;
use platform::http::Json;
use platform::rules::{count_from, Int};
use platform::time::now;
use serde::Deserialize;
use utoipa::openapi::Object;
use utoipa::ToSchema;
use uuid::Uuid;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/carts/{sessionId}", get(read).delete(clear))
        .route("/api/v1/carts/{sessionId}/items", post(add_item))
        .route(
            "/api/v1/carts/{sessionId}/items/{cartItemId}",
            put(update_item).delete(remove_item),
        )
}

/// How many of a product a line may hold (an `INTEGER` column).
pub const QUANTITY: Int = count_from(1);

/// A product and how many of it to add.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AddItemRequest {
    #[schema(required = true, schema_with = product_id_schema)]
    pub product_id: Option<Uuid>,
    #[schema(required = true, schema_with = quantity_schema)]
    pub quantity: Option<i64>,
}

/// The new quantity of a line.
#[derive(Debug, Deserialize, ToSchema)]
pub struct UpdateItemRequest {
    #[schema(required = true, schema_with = quantity_schema)]
    pub quantity: Option<i64>,
}

fn product_id_schema() -> Object {
    platform::rules::uuid_schema(false)
}

fn quantity_schema() -> Object {
    QUANTITY.schema()
}

const QUANTITY_MIN: &str = "Quantity must be at least 1";
const QUANTITY_MAX: &str = "Quantity must not exceed 2147483647";

fn check_quantity(v: &mut Validator, quantity: Option<i64>) {
    v.check("quantity", quantity.is_some(), "Quantity is required");
    if let Some(q) = quantity {
        v.check("quantity", q >= QUANTITY.min, QUANTITY_MIN).check(
            "quantity",
            q <= QUANTITY.max,
            QUANTITY_MAX,
        );
    }
}

/// Told when a line's or the cart's total would not fit the amount columns.
const CART_LIMIT: &str = "The cart's total would exceed 99999999.99";

/// A line or cart total beyond what its `DECIMAL(10, 2)` column holds: the cart, with
/// the prices it has, cannot take this quantity (a conflict with what is stored, not a
/// malformed request).
fn beyond_cart_limit(e: Error) -> Error {
    match &e {
        Error::Database(sqlx::Error::Database(db)) if db.code().as_deref() == Some("22003") => {
            Error::Conflict(CART_LIMIT.into())
        }
        _ => e,
    }
}

async fn committed(
    state: &AppState,
    mut tx: sqlx::Transaction<'static, sqlx::Postgres>,
    cart_id: Uuid,
) -> Result<Cart> {
    let cart = carts::touch_and_load(&mut tx, cart_id)
        .await
        .map_err(beyond_cart_limit)?;
    tx.commit().await?;
    carts::cache_cart(&state.cache, &cart).await;
    carts::view(&state.db, &state.cache, cart).await
}

/// The session's cart; a new empty one when it has none.
#[utoipa::path(get, path = "/api/v1/carts/{sessionId}", tag = "carts", operation_id = "getCart",
    params(("sessionId" = String, Path, description = "Client-chosen session id")),
    responses((status = 200, body = Cart)))]
pub async fn read(
    State(state): State<AppState>,
    PathParams(session_id): PathParams<String>,
) -> Result<Json<Cart>> {
    carts::check_session_id(&session_id)?;
    let cart = carts::get_or_create(&state.db, &state.cache, &session_id).await?;
    Ok(Json(carts::view(&state.db, &state.cache, cart).await?))
}

/// Empties the session's cart.
#[utoipa::path(delete, path = "/api/v1/carts/{sessionId}", tag = "carts", operation_id = "clearCart",
    params(("sessionId" = String, Path, description = "Client-chosen session id")),
    responses((status = 204, description = "Emptied")))]
pub async fn clear(
    State(state): State<AppState>,
    PathParams(session_id): PathParams<String>,
) -> Result<StatusCode> {
    carts::check_session_id(&session_id)?;
    let mut tx = state.db.begin().await?;
    let cart_id = carts::lock_or_create(&mut tx, &session_id).await?;
    sqlx::query!("DELETE FROM cart_items WHERE cart_id = $1", cart_id)
        .execute(&mut *tx)
        .await?;
    committed(&state, tx, cart_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Adds a product; a product already in the cart gets the quantities added together.
#[utoipa::path(post, path = "/api/v1/carts/{sessionId}/items", tag = "carts", operation_id = "addCartItem",
    params(("sessionId" = String, Path, description = "Client-chosen session id")),
    request_body = AddItemRequest,
    responses((status = 200, body = Cart), (status = 400, description = "Invalid body or session id", body = platform::Problem, content_type = "application/problem+json"),
        (status = 404, description = "Product not found", body = platform::Problem, content_type = "application/problem+json"),
        (status = 409, description = "Insufficient inventory (insufficient-inventory), or the product is discontinued or the cart's total would exceed 99999999.99 (conflict)", body = platform::Problem, content_type = "application/problem+json")))]
pub async fn add_item(
    State(state): State<AppState>,
    PathParams(session_id): PathParams<String>,
    Json(body): Json<AddItemRequest>,
) -> Result<Json<Cart>> {
    carts::check_session_id(&session_id)?;
    let mut v = Validator::new();
    v.check(
        "productId",
        body.product_id.is_some(),
        "Product ID is required",
    );
    check_quantity(&mut v, body.quantity);
    v.finish()?;
    let (Some(product_id), Some(quantity)) = (body.product_id, body.quantity) else {
        return Err(Error::field("quantity", QUANTITY_MIN));
    };
    let mut tx = state.db.begin().await?;
    let cart_id = carts::lock_or_create(&mut tx, &session_id).await?;
    let (stock, existing) = carts::stock_and_line(&mut tx, cart_id, product_id).await?;
    if !stock.is_active {
        return Err(Error::Conflict(format!(
            "Product is not active: {product_id}"
        )));
    }
    let total = quantity + existing.as_ref().map_or(0, |line| i64::from(line.quantity));
    if total > i64::from(stock.available) {
        return Err(carts::insufficient(product_id, total, stock.available));
    }
    let total = i32::try_from(total).map_err(|_| Error::field("quantity", QUANTITY_MAX))?;
    let at = now();
    match existing {
        Some(line) => {
            sqlx::query!(
                "UPDATE cart_items SET quantity = $2::int, subtotal = price_snapshot * $2::int, updated_at = $3
                 WHERE id = $1",
                line.id,
                total,
                at
            )
            .execute(&mut *tx)
            .await
            .map_err(|e| beyond_cart_limit(e.into()))?;
        }
        None => {
            sqlx::query!(
                "INSERT INTO cart_items (id, cart_id, product_id, quantity, price_snapshot, subtotal,
                                         created_at, updated_at, item_index)
                 VALUES ($1, $2, $3, $4::int, $5::numeric, $5::numeric * $4::int, $6, $6,
                         (SELECT COALESCE(MAX(item_index) + 1, 0) FROM cart_items WHERE cart_id = $2))",
                Uuid::new_v4(),
                cart_id,
                product_id,
                total,
                stock.price,
                at
            )
            .execute(&mut *tx)
            .await
            .map_err(|e| beyond_cart_limit(e.into()))?;
        }
    }
    let cart = committed(&state, tx, cart_id).await?;
    state.metrics.cart_items_added.inc();
    Ok(Json(cart))
}

/// Sets the quantity of a line.
#[utoipa::path(put, path = "/api/v1/carts/{sessionId}/items/{cartItemId}", tag = "carts", operation_id = "updateCartItem",
    params(("sessionId" = String, Path, description = "Client-chosen session id"),
        ("cartItemId" = String, Path, description = "Cart line id")),
    request_body = UpdateItemRequest,
    responses((status = 200, body = Cart), (status = 400, description = "Invalid", body = platform::Problem, content_type = "application/problem+json"),
        (status = 404, description = "Line not found", body = platform::Problem, content_type = "application/problem+json"),
        (status = 409, description = "Insufficient inventory (insufficient-inventory), or the cart's total would exceed 99999999.99 (conflict)", body = platform::Problem, content_type = "application/problem+json")))]
pub async fn update_item(
    State(state): State<AppState>,
    PathParams((session_id, item_id)): PathParams<(String, String)>,
    Json(body): Json<UpdateItemRequest>,
) -> Result<Json<Cart>> {
    carts::check_session_id(&session_id)?;
    let item_id = path_id(&item_id)?;
    let mut v = Validator::new();
    check_quantity(&mut v, body.quantity);
    v.finish()?;
    let quantity = body
        .quantity
        .and_then(|q| i32::try_from(q).ok())
        .ok_or_else(|| Error::field("quantity", QUANTITY_MAX))?;
    let mut tx = state.db.begin().await?;
    let cart_id = carts::lock_or_create(&mut tx, &session_id).await?;
    let product_id = sqlx::query_scalar!(
        "SELECT product_id FROM cart_items WHERE id = $1 AND cart_id = $2",
        item_id,
        cart_id
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| Error::not_found("CartItem", item_id))?;
    let stock = carts::stock(&mut tx, product_id).await?;
    if quantity > stock.available {
        return Err(carts::insufficient(
            product_id,
            i64::from(quantity),
            stock.available,
        ));
    }
    sqlx::query!(
        "UPDATE cart_items SET quantity = $2::int, subtotal = price_snapshot * $2::int, updated_at = $3
         WHERE id = $1",
        item_id,
        quantity,
        now()
    )
    .execute(&mut *tx)
    .await
            .map_err(|e| beyond_cart_limit(e.into()))?;
    Ok(Json(committed(&state, tx, cart_id).await?))
}

/// Removes a line.
#[utoipa::path(delete, path = "/api/v1/carts/{sessionId}/items/{cartItemId}", tag = "carts", operation_id = "removeCartItem",
    params(("sessionId" = String, Path, description = "Client-chosen session id"),
        ("cartItemId" = String, Path, description = "Cart line id")),
    responses((status = 200, body = Cart), (status = 404, description = "Line not found", body = platform::Problem, content_type = "application/problem+json")))]
pub async fn remove_item(
    State(state): State<AppState>,
    PathParams((session_id, item_id)): PathParams<(String, String)>,
) -> Result<Json<Cart>> {
    carts::check_session_id(&session_id)?;
    let item_id = path_id(&item_id)?;
    let mut tx = state.db.begin().await?;
    let cart_id = carts::lock_or_create(&mut tx, &session_id).await?;
    let deleted = sqlx::query!(
        "DELETE FROM cart_items WHERE id = $1 AND cart_id = $2",
        item_id,
        cart_id
    )
    .execute(&mut *tx)
    .await?;
    if deleted.rows_affected() == 0 {
        return Err(Error::not_found("CartItem", item_id));
    }
    Ok(Json(committed(&state, tx, cart_id).await?))
}
