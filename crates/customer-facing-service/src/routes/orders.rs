//! `GET /api/v1/orders/{orderNumber}`: the order lookup right after checkout, never 404
//! for an order this service took (see [`crate::orders`]).

use crate::error::Result;
use crate::orders::Found;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use events::order_view::Order;
use platform::auth::Principal;
use platform::http::Json;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/orders/{orderNumber}", get(get_order))
}

/// An order by its number: the order service's view of it, or, until the order
/// service has it, the order as its checkout placed it (PENDING). Anonymous callers get
/// the name, email, phone and address masked; a manager's token, or the order's email
/// in `X-Customer-Email`, shows them.
#[utoipa::path(
    get, path = "/api/v1/orders/{orderNumber}", tag = "orders",
    params(("orderNumber" = String, Path, description = "e.g. ORD-20251006-7"),
           ("X-Customer-Email" = Option<String>, Header,
            description = "The order's email: proves the order is the caller's and unmasks the customer's details")),
    responses(
        (status = 200, body = Order),
        (status = 401, description = "A bearer token was sent and is invalid"),
        (status = 404, body = platform::Problem),
        (status = 503, description = "The order service is not answering and the order is not known here",
         body = platform::Problem),
    )
)]
pub async fn get_order(
    State(state): State<AppState>,
    principal: Option<Extension<Principal>>,
    headers: HeaderMap,
    Path(order_number): Path<String>,
) -> Result<Response> {
    let manager = principal.is_some_and(|Extension(p)| p.has_role(platform::auth::ROLE_MANAGER));
    let found = state
        .orders
        .find(&state.db, &order_number, &headers, manager)
        .await?;
    Ok(match found {
        Found::OrderService(answer) => answer.into_response(),
        Found::Pending(order) => Json(*order).into_response(),
    })
}
