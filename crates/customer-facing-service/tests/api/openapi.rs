use crate::helpers::spawn_app;
use serde_json::Value;
use std::path::PathBuf;

fn contract_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../specs/001-e-commerce-platform/contracts/customer-facing-service.json")
}

/// Fails when the served document and the committed contract differ; run with
/// `UPDATE_CONTRACTS=1` to rewrite the contract from the code.
#[tokio::test]
async fn the_served_openapi_document_matches_the_committed_contract() {
    let app = spawn_app().await;
    let served: Value = app.get_json("/v3/api-docs").await;
    assert!(served["openapi"]
        .as_str()
        .is_some_and(|v| v.starts_with("3.1")));
    for path in [
        "/api/v1/auth/login",
        "/api/v1/products",
        "/api/v1/products/{id}",
        "/api/v1/categories",
        "/api/v1/carts/{sessionId}/items",
        "/api/v1/checkout",
    ] {
        assert!(served["paths"][path].is_object(), "{path} missing");
    }
    let generated = customer_facing_service::openapi::document_json();
    if std::env::var_os("UPDATE_CONTRACTS").is_some() {
        std::fs::write(contract_path(), format!("{generated}\n")).expect("write the contract");
    }
    let committed = std::fs::read_to_string(contract_path())
        .expect("the committed contract (regenerate with UPDATE_CONTRACTS=1)");
    let committed: Value = serde_json::from_str(&committed).expect("contract JSON");
    assert_eq!(
        served, committed,
        "the API changed: run `UPDATE_CONTRACTS=1 cargo test -p customer-facing-service openapi` and commit the contract"
    );
}
