//! `GET /api/v1/orders/{orderNumber}`: the order lookup right after checkout, never 404
//! for an order this service took (see [`crate::orders`]). Order numbers count up per
//! day, so anonymous lookups are limited per client address, an `X-Customer-Email`
//! that does not match counts as a failed login of the client, and no answer may be
//! stored.

use crate::error::{Error, Result};
use crate::orders::Found;
use crate::state::AppState;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use events::order_view::{claim_matches, Order, CUSTOMER_EMAIL_HEADER};
use platform::auth::Principal;
use platform::http::Json;
use std::net::SocketAddr;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/orders/{orderNumber}", get(get_order))
        // Every answer may carry the customer's details.
        .layer(axum::middleware::map_response(platform::web::no_store))
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
        (status = 429, description = "Too many anonymous lookups, or wrong emails, from this client; see Retry-After",
         body = platform::Problem),
        (status = 503, description = "The order service is not answering and the order is not known here",
         body = platform::Problem),
    )
)]
pub async fn get_order(
    State(state): State<AppState>,
    principal: Option<Extension<Principal>>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    Path(order_number): Path<String>,
) -> Result<Response> {
    let manager = principal.is_some_and(|Extension(p)| p.has_role(platform::auth::ROLE_MANAGER));
    let peer = peer.map(|Extension(ConnectInfo(addr))| addr);
    let client = state.clients.key(peer, &headers);
    let claimed = headers
        .get(CUSTOMER_EMAIL_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|_| !manager);
    platform::limit::admit_lookup(
        &state.lookups,
        &state.logins.per_client,
        &client,
        manager,
        claimed.is_some(),
    )
    .map_err(|refused| Error::TooManyRequests {
        detail: refused.detail().into(),
        retry_after: refused.retry_after(),
    })?;
    let forwarded = peer.map(|peer| state.clients.forwarded(peer.ip(), &headers));
    let found = state
        .orders
        .find(&state.db, &order_number, &headers, manager, forwarded)
        .await?;
    if let Some(claimed) = claimed {
        if claim_matched(&found, claimed) {
            state.logins.per_client.give_back(&client);
        } else {
            tracing::info!(client = %client, orderNumber = %order_number,
                "order lookup with a wrong email");
        }
    }
    Ok(match found {
        Found::OrderService(answer) => answer.into_response(),
        Found::Pending(order) => Json(*order).into_response(),
    })
}

/// Whether what was found shows the customer unmasked to the holder of `claimed`.
fn claim_matched(found: &Found, claimed: &str) -> bool {
    match found {
        Found::Pending(order) => order.is_owned_by(claimed),
        Found::OrderService(answer) => {
            answer.status == StatusCode::OK
                && serde_json::from_slice::<serde_json::Value>(&answer.body).is_ok_and(|order| {
                    order["customerInfo"]["email"]
                        .as_str()
                        .is_some_and(|email| claim_matches(email, claimed))
                })
        }
    }
}
