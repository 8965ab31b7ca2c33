use crate::helpers::{charge_body, spawn_gateway};
use serde_json::{json, Value};
use std::time::Duration;
use uuid::Uuid;

#[tokio::test]
async fn an_error_status_fault_answers_that_status_and_charges_nothing() {
    let gw = spawn_gateway().await;
    let response = gw.set_faults(json!({"errorStatus": 503})).await;
    assert_eq!(response.status(), 200);
    let faults: Value = response.json().await.expect("json");
    assert_eq!(faults["errorStatus"], 503);

    let order_id = Uuid::new_v4();
    let key = order_id.to_string();
    assert_eq!(gw.charge(&key, &charge_body(order_id)).await.status(), 503);
    assert!(gw.ledger(order_id).await.is_empty());

    gw.set_faults(json!({"errorStatus": null})).await;
    assert_eq!(gw.charge(&key, &charge_body(order_id)).await.status(), 201);
    let ledger = gw.ledger(order_id).await;
    assert_eq!(ledger.len(), 1);
    assert_eq!(ledger[0]["chargeCount"], 1);
}

#[tokio::test]
async fn a_zero_success_rate_declines_with_a_reason() {
    let gw = spawn_gateway().await;
    gw.set_faults(json!({"successRate": 0.0})).await;
    let order_id = Uuid::new_v4();
    let response = gw
        .charge(&order_id.to_string(), &charge_body(order_id))
        .await;
    assert_eq!(response.status(), 201);
    let payment: Value = response.json().await.expect("json");
    assert_eq!(payment["status"], "DECLINED");
    assert!(payment["failureReason"].is_string());
    assert_eq!(payment["externalTransactionId"], Value::Null);
}

#[tokio::test]
async fn a_hanging_gateway_answers_only_after_the_fault_is_cleared() {
    let gw = spawn_gateway().await;
    gw.set_faults(json!({"hang": true})).await;
    let order_id = Uuid::new_v4();
    let key = order_id.to_string();
    let body = charge_body(order_id);
    let pending = gw.charge(&key, &body);
    let timed_out = tokio::time::timeout(Duration::from_millis(300), pending).await;
    assert!(timed_out.is_err(), "a hanging gateway must not answer");
    assert!(gw.ledger(order_id).await.is_empty());

    let pending = tokio::spawn({
        let client = gw.client.clone();
        let url = format!("{}/api/v1/payments", gw.address);
        async move {
            client
                .post(url)
                .header("Idempotency-Key", order_id.to_string())
                .json(&charge_body(order_id))
                .send()
                .await
                .expect("sent")
                .status()
        }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!pending.is_finished());
    gw.set_faults(json!({"hang": false})).await;
    assert_eq!(pending.await.expect("joined"), 201);
    assert_eq!(gw.ledger(order_id).await.len(), 1);
}

#[tokio::test]
async fn out_of_range_knobs_are_a_400_problem() {
    let gw = spawn_gateway().await;
    let response = gw.set_faults(json!({"successRate": 3})).await;
    assert_eq!(response.status(), 400);
    let response = gw.set_faults(json!({"unknown": 1})).await;
    assert_eq!(response.status(), 400);
}

#[tokio::test]
async fn the_fault_knobs_refuse_every_caller_without_the_admin_token_even_locally() {
    let gw = spawn_gateway().await;
    let http = reqwest::Client::new();
    let url = format!("{}/admin/faults", gw.address);
    let body = json!({"successRate": 0.0});
    let service_token = payment_gateway::testing::SERVICE_TOKEN;
    for token in [None, Some("wrong-token-0123456789"), Some(service_token)] {
        let mut request = http.put(&url).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let refused = request.send().await.expect("answered");
        assert_eq!(refused.status(), 401, "{token:?}");
        assert_eq!(refused.headers()["www-authenticate"], "Bearer");
    }
    assert_eq!(http.get(&url).send().await.expect("answered").status(), 401);
    let allowed = gw.set_faults(body).await;
    assert_eq!(allowed.status(), 200);
}

#[tokio::test]
async fn outside_local_development_the_gateway_refuses_to_start_with_placeholder_tokens() {
    let mut settings = payment_gateway::testing::settings()
        .await
        .expect("settings");
    settings.common.environment = "staging".parse().expect("environment");
    let error = payment_gateway::Application::build(settings.clone())
        .await
        .err()
        .expect("refused");
    assert!(
        error.to_string().contains("PAYMENT_GATEWAY_ADMIN_TOKEN"),
        "{error}"
    );
    assert!(
        !error
            .to_string()
            .contains(payment_gateway::testing::ADMIN_TOKEN),
        "never echoed: {error}"
    );
    settings.admin_token = platform::config::Secret::new("an-admin-token-of-our-own-0123");
    let error = payment_gateway::Application::build(settings)
        .await
        .err()
        .expect("refused");
    assert!(
        error.to_string().contains("PAYMENT_GATEWAY_SERVICE_TOKEN"),
        "{error}"
    );
}
