//! The HTTP API: `/api/v1/orders`.

pub mod orders;

use crate::state::AppState;
use axum::Router;

/// Every API route.
pub fn router(state: AppState) -> Router {
    orders::router(state)
}
