//! The OpenAPI 3.1 document, generated from the handlers and types, served at
//! `/v3/api-docs` and committed under `specs/001-e-commerce-platform/contracts/`
//! (a test fails when the two drift).

use crate::startup::AppState;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

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
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "auth", description = "Log in"),
        (name = "categories", description = "Product categories"),
        (name = "products", description = "The catalogue"),
        (name = "carts", description = "Guest carts keyed by session id"),
        (name = "checkout", description = "Turning a cart into an order"),
    )
)]
pub struct ApiDoc;

/// The RFC 7807 body of every error (`fieldErrors` only on validation failures).
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProblemDetails {
    #[serde(rename = "type")]
    #[schema(example = "https://api.ecommerce.com/problems/resource-not-found")]
    pub kind: String,
    #[schema(example = "Resource Not Found")]
    pub title: String,
    #[schema(example = 404)]
    pub status: u16,
    #[schema(example = "Product not found with id: 3b7e4c2a-0d9f-4e61-8c55-1f2a3b4c5d6e")]
    pub detail: String,
    #[schema(example = "/api/v1/products/3b7e4c2a-0d9f-4e61-8c55-1f2a3b4c5d6e")]
    pub instance: Option<String>,
    pub correlation_id: Option<String>,
    pub field_errors: Option<std::collections::BTreeMap<String, String>>,
}

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// The document as pretty JSON, as committed.
pub fn document_json() -> String {
    ApiDoc::openapi().to_pretty_json().unwrap_or_default()
}

pub fn router() -> Router<AppState> {
    Router::new().route("/v3/api-docs", get(api_docs))
}

async fn api_docs() -> Response {
    let mut response = document_json().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
