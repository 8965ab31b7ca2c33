//! The OpenAPI 3.1 document, generated from the handlers and types, served at
//! `/v3/api-docs` and committed under `specs/001-e-commerce-platform/contracts/`
//! (a test fails when the two drift).

use crate::state::AppState;
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
    modifiers(&BearerAuth, &Contract),
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

use platform::openapi::{
    empty_means_default, link, link_body, parameter_schema, BearerAuth, StandardResponses,
};
use utoipa::openapi::OpenApi as Document;

/// What the handlers' attributes cannot say: the answers every route can give (a bad
/// bearer token is refused on every route, public ones too), the rules of the path
/// parameters, and the links between operations that let a client (and schemathesis's
/// stateful phase) follow a category to its products, a product into a cart, and a
/// cart to its checkout.
struct Contract;

impl utoipa::Modify for Contract {
    fn modify(&self, doc: &mut Document) {
        StandardResponses {
            bad_token_anywhere: true,
        }
        .modify(doc);
        parameter_schema(doc, "sessionId", crate::carts::SESSION_ID.schema());
        parameter_schema(
            doc,
            platform::idempotency::HEADER,
            platform::rules::IDEMPOTENCY_KEY.schema(),
        );
        // Malformed ids are 404s, as in the original; well-formed ones are what exists.
        for id in ["id", "cartItemId"] {
            parameter_schema(doc, id, platform::rules::uuid_schema(false));
        }
        empty_means_default(
            doc,
            "listProducts",
            &[
                "categoryId",
                "isActive",
                "page",
                "size",
                "sortBy",
                "sortDir",
            ],
        );
        let id = [("id", "$response.body#/id")];
        for target in ["getCategory", "updateCategory", "deleteCategory"] {
            link(doc, "createCategory", "201", target, target, &id);
        }
        link(
            doc,
            "createCategory",
            "201",
            "listProducts",
            "listProducts",
            &[("categoryId", "$response.body#/id")],
        );
        // A product in stock at an everyday price, so that the cart and checkout links
        // after it get past the stock and cart-total checks.
        link_body(
            doc,
            "createCategory",
            "201",
            "createProduct",
            serde_json::json!({
                "categoryId": "$response.body#/id",
                "price": 9.99,
                "inventoryQuantity": 1000
            }),
        );
        for target in ["getProduct", "updateProduct", "deleteProduct"] {
            link(doc, "createProduct", "201", target, target, &id);
        }
        link_body(
            doc,
            "createProduct",
            "201",
            "addCartItem",
            serde_json::json!({"productId": "$response.body#/id", "quantity": 1}),
        );
        let session = ("sessionId", "$request.path.sessionId");
        let line = ("cartItemId", "$response.body#/items/0/id");
        link(doc, "addCartItem", "200", "getCart", "getCart", &[session]);
        link(
            doc,
            "addCartItem",
            "200",
            "updateCartItem",
            "updateCartItem",
            &[session, line],
        );
        link(
            doc,
            "addCartItem",
            "200",
            "removeCartItem",
            "removeCartItem",
            &[session, line],
        );
        link_body(
            doc,
            "addCartItem",
            "200",
            "checkout",
            serde_json::json!({"sessionId": "$request.path.sessionId"}),
        );
    }
}

/// The document as pretty JSON, as committed.
pub fn document_json() -> String {
    ApiDoc::openapi().to_pretty_json().unwrap_or_default()
}

/// `GET /v3/api-docs`.
pub fn router() -> Router<AppState> {
    platform::openapi::router(document_json())
}
