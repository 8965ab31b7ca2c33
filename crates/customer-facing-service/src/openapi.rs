//! The OpenAPI 3.1 document, generated from the handlers and types, served at
//! `/v3/api-docs` and committed under `specs/001-e-commerce-platform/contracts/`
//! (a test fails when the two drift).

use crate::startup::AppState;
use axum::Router;
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "customer-facing-service",
        description = "Catalogue, guest carts and checkout of the e-commerce platform. \
                       Errors are RFC 7807 problem details."
    ),
    paths(
        crate::routes::auth::login,
        crate::routes::categories::list,
        crate::routes::categories::read,
        crate::routes::categories::create,
        crate::routes::categories::update,
        crate::routes::categories::remove,
        crate::routes::products::list,
        crate::routes::products::read,
        crate::routes::products::create,
        crate::routes::products::update,
        crate::routes::products::remove,
        crate::routes::carts::read,
        crate::routes::carts::clear,
        crate::routes::carts::add_item,
        crate::routes::carts::update_item,
        crate::routes::carts::remove_item,
        crate::routes::checkout::checkout,
        crate::routes::orders::get_order,
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "auth", description = "Log in"),
        (name = "categories", description = "Product categories"),
        (name = "products", description = "The catalogue"),
        (name = "carts", description = "Guest carts keyed by session id"),
        (name = "checkout", description = "Turning a cart into an order"),
        (name = "orders", description = "The order lookup, PENDING until the order service has the order"),
    )
)]
pub struct ApiDoc;

pub use platform::Problem as ProblemDetails;

use platform::openapi::BearerAuth;

/// The document as pretty JSON, as committed.
pub fn document_json() -> String {
    ApiDoc::openapi().to_pretty_json().unwrap_or_default()
}

/// `GET /v3/api-docs`.
pub fn router() -> Router<AppState> {
    platform::openapi::router(document_json())
}
