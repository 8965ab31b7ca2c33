//! The OpenAPI 3.1 document, generated from the handlers and served at `/v3/api-docs`.
//! A test compares it with
//! `specs/001-e-commerce-platform/contracts/order-management-service.json`.

use axum::Router;
use utoipa::OpenApi;

pub use platform::Problem as ProblemDetails;

use platform::openapi::BearerAuth;

/// The service's API description.
#[derive(OpenApi)]
#[openapi(
    info(title = "order-management-service", description = "Orders created from orders.created events, paid through the payment gateway."),
    paths(
        crate::routes::orders::get_order,
        crate::routes::orders::list_orders,
        crate::routes::orders::cancel_order,
        crate::routes::orders::fulfill_order,
    ),
    components(schemas(platform::Problem)),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

/// The document as pretty JSON, as committed.
pub fn document() -> String {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    doc.to_pretty_json().unwrap_or_default()
}

/// `GET /v3/api-docs`.
pub fn router() -> Router {
    platform::openapi::router(document())
}
