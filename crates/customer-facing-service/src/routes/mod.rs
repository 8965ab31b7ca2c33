//! The HTTP API under `/api/v1`, one module per resource, merged here.
//!
//! Every route sits behind `reject_invalid_bearer`: a request that carries a bad token
//! is 401 even on a public route, as in the original. Manager routes take the
//! [`platform::auth::Manager`] extractor first, so 401/403 come before any body check.

pub mod auth;
pub mod carts;
pub mod categories;
pub mod checkout;
pub mod orders;
pub mod products;

use crate::error::Error;
use crate::startup::AppState;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::Router;
use serde::de::DeserializeOwned;

/// The API routes with their state, and the pages built on them.
pub fn api(state: AppState, order_api: &str) -> Router {
    Router::new()
        .merge(crate::storefront::router(order_api))
        .merge(auth::router())
        .merge(categories::router())
        .merge(products::router())
        .merge(carts::router())
        .merge(checkout::router())
        .merge(orders::router())
        .merge(crate::openapi::router())
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            platform::auth::reject_invalid_bearer::<AppState>,
        ))
        .with_state(state)
}

/// Path parameters whose rejection is a problem details body.
#[derive(Debug)]
pub struct PathParams<T>(pub T);

impl<T, S> FromRequestParts<S> for PathParams<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|path| Self(path.0))
            .map_err(|rejection| Error::BadRequest(rejection.body_text()))
    }
}
