//! The OpenAPI documents say exactly what each service accepts and answers: schemathesis
//! reads each service's own `/v3/api-docs`, generates requests from it (examples,
//! coverage, fuzzing, and the stateful phase that follows the documents' links from
//! what one call creates to the calls that use it) and runs every check it has: no 5xx,
//! no undocumented status or content type, answers matching their schemas, requests the
//! schema allows accepted and requests it forbids refused, protected routes refused
//! without the token. Zero failures pass.
//!
//! The platform runs as real processes (see [`chaos::Platform`]) and gets one order
//! through checkout first, so the order service's links reach real orders. The seed is
//! fixed and the example count is `CONTRACT_MAX_EXAMPLES` (30 unless set), so a run is
//! repeatable. Run by `scripts/test.sh`, and with more examples by `scripts/chaos.sh`;
//! both install schemathesis and point `SCHEMATHESIS` at it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;

const SEED: &str = "1";

fn schemathesis() -> String {
    std::env::var("SCHEMATHESIS").unwrap_or_else(|_| "schemathesis".into())
}

fn max_examples() -> String {
    std::env::var("CONTRACT_MAX_EXAMPLES").unwrap_or_else(|_| "30".into())
}

/// Runs schemathesis with every check against `base`, with `token` as the bearer token
/// when given; returns its report when it found anything.
async fn contract_failures(base: &str, token: Option<&str>, workdir: &Path) -> Option<String> {
    let mut command = tokio::process::Command::new(schemathesis());
    command
        .current_dir(workdir)
        // Every check, and the per-operation exceptions with their reasons.
        .args([
            "--config-file",
            concat!(env!("CARGO_MANIFEST_DIR"), "/schemathesis.toml"),
        ])
        .args(["run", &format!("{base}/v3/api-docs")])
        .args(["--seed", SEED])
        .args(["--max-examples", &max_examples()])
        .args(["--generation-database", "none", "--no-color"])
        // The gateway's fault knobs are the fault suite's controls: generated values
        // would make it hang or fail on purpose. Their schema is checked by the
        // gateway's own tests.
        .args(["--exclude-path-regex", "^/admin"]);
    if let Some(token) = token {
        command.args(["--header", &format!("Authorization: Bearer {token}")]);
    }
    let output = command
        .output()
        .await
        .expect("schemathesis runs (scripts/test.sh installs it)");
    (!output.status.success()).then(|| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

/// Puts one order through checkout and waits until the order service lists it.
async fn place_an_order(platform: &chaos::Platform, token: &str) {
    let http = reqwest::Client::new();
    let products = platform.create_products(1, 1000).await.unwrap();
    let customer = platform.customer.url();
    let added = http
        .post(format!("{customer}/api/v1/carts/contract-seed/items"))
        .json(&json!({"productId": products[0], "quantity": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(added.status(), 200, "the seed product goes into the cart");
    let placed = http
        .post(format!("{customer}/api/v1/checkout"))
        .header("Idempotency-Key", "contract-seed")
        .json(&chaos::checkout_body("contract-seed"))
        .send()
        .await
        .unwrap();
    assert_eq!(placed.status(), 201, "the seed order is placed");
    let orders = format!("{}/api/v1/orders", platform.order.url());
    for _ in 0..600 {
        let listed: Value = http
            .get(&orders)
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap_or(Value::Null);
        if listed["totalElements"].as_i64().unwrap_or(0) > 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the seed order never reached the order service");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "contract suite: needs schemathesis and the service binaries; run by scripts/test.sh"]
async fn every_service_answers_exactly_what_its_openapi_document_says() {
    let platform = chaos::Platform::start(&[]).await.unwrap();
    let token = chaos::manager_token(&platform.customer.url())
        .await
        .unwrap();
    place_an_order(&platform, &token).await;
    let mut failures = Vec::new();
    // The gateway's callers hold its service token, not a manager's JWT.
    let gateway_token = platform.gateway_service_token.clone();
    for (service, credential) in [
        (&platform.customer, &token),
        (&platform.order, &token),
        (&platform.gateway, &gateway_token),
    ] {
        for token in [Some(credential.as_str()), None] {
            if let Some(report) = contract_failures(&service.url(), token, &platform.dir).await {
                let who = if token.is_some() {
                    "with a credential"
                } else {
                    "anonymous"
                };
                failures.push(format!("{} ({who}):\n{report}", service.process.name));
            }
        }
    }
    platform.stop().await.unwrap();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
