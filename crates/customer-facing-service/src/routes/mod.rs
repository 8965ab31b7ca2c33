//! The HTTP API under `/api/v1`, one module per resource, merged here. Handlers only
//! extract, validate and reply; the work is in the domain modules below them.
//!
//! Manager routes take the [`platform::auth::Manager`] extractor first, so 401/403 come
//! before any body check.

pub mod auth;
pub mod carts;
pub mod categories;
pub mod checkout;
pub mod orders;
pub mod params;
pub mod products;

use crate::state::AppState;
use axum::Router;

/// Every API route, without state.
pub fn router() -> Router<AppState> {
    Router::new()
        .merge(auth::router())
        .merge(categories::router())
        .merge(products::router())
        .merge(carts::router())
        .merge(checkout::router())
        .merge(orders::router())
}
