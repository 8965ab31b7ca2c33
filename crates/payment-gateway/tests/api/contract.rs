//! The committed OpenAPI document matches the code; `UPDATE_CONTRACTS=1` rewrites it.

use crate::helpers::spawn_gateway;

const CONTRACT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../specs/001-e-commerce-platform/contracts/payment-gateway.json"
);

#[tokio::test]
async fn the_served_openapi_document_matches_the_committed_contract() {
    let gw = spawn_gateway().await;
    let served = gw
        .client
        .get(format!("{}/v3/api-docs", gw.address))
        .send()
        .await
        .expect("sent")
        .text()
        .await
        .expect("text");
    let generated = payment_gateway::openapi::document();
    assert_eq!(served, generated);
    if std::env::var("UPDATE_CONTRACTS").is_ok_and(|v| v == "1") {
        std::fs::write(CONTRACT, format!("{generated}\n")).expect("contract written");
    }
    let committed = std::fs::read_to_string(CONTRACT).unwrap_or_default();
    assert_eq!(
        committed.trim_end(),
        generated,
        "the OpenAPI contract drifted; run UPDATE_CONTRACTS=1 cargo test -p payment-gateway and commit it"
    );
}

#[tokio::test]
async fn swagger_ui_is_served_for_trying_the_api() {
    let gw = spawn_gateway().await;
    let page = gw
        .client
        .get(format!("{}/swagger-ui.html", gw.address))
        .send()
        .await
        .expect("sent");
    assert_eq!(page.status(), 200);
    let html = page.text().await.expect("text");
    assert!(html.contains("swagger-ui-bundle.js"), "{html}");
}
