//! The OpenAPI 3.1 document, generated from the handlers and served at `/v3/api-docs`.
//! A test compares it with `specs/001-e-commerce-platform/contracts/payment-gateway.json`.

use axum::routing::get;
use axum::Router;
use serde::Serialize;
use std::collections::BTreeMap;
use utoipa::{OpenApi, ToSchema};

/// RFC 7807 problem details, as every error of the platform is answered.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProblemDetail {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    pub instance: Option<String>,
    pub correlation_id: Option<String>,
    pub field_errors: Option<BTreeMap<String, String>>,
}

/// The gateway's API description.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "payment-gateway",
        description = "Payment gateway stub: idempotent charges, a ledger and fault knobs."
    ),
    paths(
        crate::routes::create_payment,
        crate::routes::get_payment,
        crate::routes::list_payments,
        crate::routes::get_faults,
        crate::routes::put_faults,
    ),
    components(schemas(ProblemDetail))
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
    Router::new().route(
        "/v3/api-docs",
        get(|| async {
            (
                [(axum::http::header::CONTENT_TYPE, "application/json")],
                document(),
            )
        }),
    )
}
