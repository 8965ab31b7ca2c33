//! What every service's OpenAPI document shares: the problem-details schema (derived on
//! [`Problem`](crate::Problem), named `ProblemDetails`), the bearer-token scheme, and
//! the route that serves the document.

use axum::http::header;
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::Modify;

/// `GET /v3/api-docs` serving `document` (JSON), rendered once at start-up rather than
/// on every request, and the Swagger UI that reads it at `/swagger-ui.html`.
pub fn router<S: Clone + Send + Sync + 'static>(document: String) -> Router<S> {
    let document = Bytes::from(document);
    Router::new()
        .route(
            "/v3/api-docs",
            get(move || {
                let document = document.clone();
                async move { ([(header::CONTENT_TYPE, "application/json")], document) }
            }),
        )
        .merge(crate::swagger_ui::router())
}

/// Adds the `bearer` (JWT) security scheme that manager routes require.
#[derive(Debug, Clone, Copy)]
pub struct BearerAuth;

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
