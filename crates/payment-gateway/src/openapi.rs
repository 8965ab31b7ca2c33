//! The OpenAPI 3.1 document, generated from the handlers and served at `/v3/api-docs`.
//! A test compares it with `specs/001-e-commerce-platform/contracts/payment-gateway.json`.

use axum::Router;
use platform::openapi::{link, link_body, parameter_schema, StandardResponses};
use utoipa::OpenApi;

/// The gateway's API description.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "payment-gateway",
        description = "Payment gateway stub: idempotent charges and refunds, a durable ledger and fault knobs."
    ),
    paths(
        crate::routes::payments::create_payment,
        crate::routes::payments::get_payment,
        crate::routes::payments::list_payments,
        crate::routes::refunds::create_refund,
        crate::routes::refunds::list_refunds,
        crate::routes::refunds::get_refund,
        crate::routes::admin::get_faults,
        crate::routes::admin::put_faults,
    ),
    components(schemas(platform::Problem)),
    modifiers(&Contract)
)]
pub struct ApiDoc;

/// What the handlers' attributes cannot say: the answers every route can give, who may
/// call which route, the
/// idempotency key's rule, and the links from a charge to its ledger line, its order's
/// lines and its refund, and from a refund to its line.
struct Contract;

impl utoipa::Modify for Contract {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        StandardResponses {
            bad_token_anywhere: false,
        }
        .modify(doc);
        platform::openapi::require_service_token(
            doc,
            "/api/v1/",
            "serviceToken",
            "The order service's token (PAYMENT_GATEWAY_SERVICE_TOKEN)",
            &["adminToken"],
        );
        platform::openapi::require_service_token(
            doc,
            "/admin/",
            "adminToken",
            "The operators' token (PAYMENT_GATEWAY_ADMIN_TOKEN); it also reads the ledger",
            &[],
        );
        parameter_schema(
            doc,
            crate::routes::IDEMPOTENCY_KEY,
            platform::rules::IDEMPOTENCY_KEY.schema(),
        );
        parameter_schema(doc, "id", platform::rules::uuid_schema(false));
        for status in ["201", "200"] {
            link(
                doc,
                "createPayment",
                status,
                "getPayment",
                "getPayment",
                &[("id", "$response.body#/id")],
            );
            link(
                doc,
                "createPayment",
                status,
                "listPayments",
                "listPayments",
                &[("orderId", "$response.body#/orderId")],
            );
            link_body(
                doc,
                "createPayment",
                status,
                "createRefund",
                serde_json::json!({"paymentKey": "$request.header.Idempotency-Key"}),
            );
            link(
                doc,
                "createRefund",
                status,
                "getRefund",
                "getRefund",
                &[("id", "$response.body#/id")],
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
