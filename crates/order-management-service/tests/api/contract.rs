//! The committed OpenAPI document matches the code; `UPDATE_CONTRACTS=1` rewrites it.

const CONTRACT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../specs/001-e-commerce-platform/contracts/order-management-service.json"
);

#[test]
fn the_openapi_document_matches_the_committed_contract() {
    let generated = order_management_service::openapi::document();
    if std::env::var("UPDATE_CONTRACTS").is_ok_and(|v| v == "1") {
        std::fs::write(CONTRACT, format!("{generated}\n")).expect("contract written");
    }
    let committed = std::fs::read_to_string(CONTRACT).unwrap_or_default();
    assert_eq!(
        committed.trim_end(),
        generated,
        "the OpenAPI contract drifted; run UPDATE_CONTRACTS=1 cargo test -p order-management-service and commit it"
    );
}
