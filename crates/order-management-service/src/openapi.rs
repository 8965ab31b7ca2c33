//! The OpenAPI 3.1 document, generated from the handlers and served at `/v3/api-docs`.
//! A test compares it with
//! `specs/001-e-commerce-platform/contracts/order-management-service.json`.

use axum::Router;
use utoipa::OpenApi;

use platform::openapi::{
    empty_means_default, link, parameter_schema, BearerAuth, StandardResponses,
};

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
    modifiers(&BearerAuth, &Contract)
)]
pub struct ApiDoc;

/// What the handlers' attributes cannot say: the answers every route can give, the
/// order number's rule, empty list parameters meaning "absent", and the links from the
/// list and the lookup to what a manager does with an order.
struct Contract;

impl utoipa::Modify for Contract {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        StandardResponses {
            bad_token_anywhere: false,
        }
        .modify(doc);
        parameter_schema(
            doc,
            "orderNumber",
            crate::routes::orders::ORDER_NUMBER.schema(),
        );
        empty_means_default(
            doc,
            "listOrders",
            &[
                "status",
                "customerEmail",
                "startDate",
                "endDate",
                "page",
                "size",
                "sortBy",
                "sortDir",
            ],
        );
        for target in ["getOrder", "cancelOrder", "fulfillOrder"] {
            link(
                doc,
                "listOrders",
                "200",
                target,
                target,
                &[("orderNumber", "$response.body#/content/0/orderNumber")],
            );
        }
        for target in ["cancelOrder", "fulfillOrder"] {
            link(
                doc,
                "getOrder",
                "200",
                target,
                target,
                &[("orderNumber", "$response.body#/orderNumber")],
            );
        }
    }
}

/// The document as pretty JSON, as committed.
pub fn document() -> String {
    platform::openapi::document::<ApiDoc>(env!("CARGO_PKG_VERSION"))
}

/// `GET /v3/api-docs`.
pub fn router() -> Router {
    platform::openapi::router(document())
}
