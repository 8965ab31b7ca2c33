//! `/api/v1/carts/{sessionId}`: the guest cart and its lines.

use super::params::PathParams;
use crate::carts::{self, Cart, QUANTITY_MAX};
use crate::error::{Error, Result};
use crate::state::AppState;
use crate::validate::{path_id, Validator};
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use axum::Router;
use platform::http::Json;
use platform::rules::{count_from, Int};
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
    carts::clear(&state.db, &state.cache, &session_id).await?;
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
    let cart = carts::add_item(&state.db, &state.cache, &session_id, product_id, quantity).await?;
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
    let cart =
        carts::set_item_quantity(&state.db, &state.cache, &session_id, item_id, quantity).await?;
    Ok(Json(cart))
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
    Ok(Json(
        carts::remove_item(&state.db, &state.cache, &session_id, item_id).await?,
    ))
}
