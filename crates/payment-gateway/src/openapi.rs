//! The OpenAPI 3.1 document, generated from the handlers and served at `/v3/api-docs`.
//! A test compares it with `specs/001-e-commerce-platform/contracts/payment-gateway.json`.

use axum::Router;
use utoipa::OpenApi;

pub use platform::Problem as ProblemDetails;

/// The gateway's API description.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "payment-gateway",
        description = "Payment gateway stub: idempotent charges and refunds, a durable ledger and fault knobs."
    ),
    paths(
        crate::routes::create_payment,
        crate::routes::get_payment,
        crate::routes::list_payments,
        crate::routes::create_refund,
        crate::routes::list_refunds,
        crate::routes::get_refund,
        crate::routes::get_faults,
        crate::routes::put_faults,
    ),
    components(schemas(platform::Problem))
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
