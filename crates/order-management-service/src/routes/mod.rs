//! The HTTP API: `/api/v1/orders`.

pub mod orders;

use axum::Router;
use platform::auth::{HasJwtKeys, JwtKeys};
use platform::db::Db;

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub jwt: JwtKeys,
}

impl HasJwtKeys for AppState {
    fn jwt_keys(&self) -> &JwtKeys {
        &self.jwt
    }
}

/// Every API route.
pub fn router(state: AppState) -> Router {
    orders::router(state)
}
