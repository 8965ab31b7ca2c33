use crate::helpers::{charge_body, spawn_gateway};
use serde_json::Value;
use uuid::Uuid;

#[tokio::test]
async fn a_charge_succeeds_by_default_and_is_in_the_ledger() {
    let gw = spawn_gateway().await;
    let order_id = Uuid::new_v4();
    let response = gw
        .charge(&order_id.to_string(), &charge_body(order_id))
        .await;
    assert_eq!(response.status(), 201);
    let payment: Value = response.json().await.expect("json");
    assert_eq!(payment["status"], "SUCCEEDED");
    assert_eq!(payment["amount"], 299.98);
    assert_eq!(payment["currency"], "USD");
    assert_eq!(payment["failureReason"], Value::Null);
    let tx = payment["externalTransactionId"].as_str().expect("tx id");
    assert!(tx.starts_with("pgw_tx_"), "{tx}");
    assert!(!payment["createdAt"].as_str().expect("ts").ends_with('Z'));

    let id = payment["id"].as_str().expect("id");
    let line: Value = gw
        .client
        .get(format!("{}/api/v1/payments/{id}", gw.address))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    assert_eq!(line["idempotencyKey"], order_id.to_string());
    assert_eq!(line["chargeCount"], 1);
}

#[tokio::test]
async fn the_same_idempotency_key_returns_the_same_charge_and_never_charges_twice() {
    let gw = spawn_gateway().await;
    let order_id = Uuid::new_v4();
    let key = order_id.to_string();
    let body = charge_body(order_id);
    let requests = (0..10).map(|_| gw.charge(&key, &body));
    let responses = futures::future::join_all(requests).await;
    let mut ids = std::collections::HashSet::new();
    let mut created = 0;
    for response in responses {
        if response.status() == 201 {
            created += 1;
        } else {
            assert_eq!(response.status(), 200);
            assert_eq!(response.headers()["Idempotent-Replayed"], "true");
        }
        let payment: Value = response.json().await.expect("json");
        ids.insert(payment["id"].as_str().expect("id").to_owned());
    }
    assert_eq!(created, 1);
    assert_eq!(ids.len(), 1);
    let ledger = gw.ledger(order_id).await;
    assert_eq!(ledger.len(), 1);
    assert_eq!(ledger[0]["chargeCount"], 1);
    assert_eq!(ledger[0]["requestCount"], 10);
    let metrics = gw.metrics().await;
    let succeeded = metrics
        .lines()
        .find(|l| {
            l.starts_with("payments_gateway_charges_total{") && l.contains("result=\"SUCCEEDED\"")
        })
        .expect("charges series");
    assert!(succeeded.ends_with(" 1"), "{succeeded}");
}

#[tokio::test]
async fn a_key_reused_for_a_different_order_is_refused() {
    let gw = spawn_gateway().await;
    let first = Uuid::new_v4();
    assert_eq!(
        gw.charge("shared-key", &charge_body(first)).await.status(),
        201
    );
    let response = gw.charge("shared-key", &charge_body(Uuid::new_v4())).await;
    assert_eq!(response.status(), 422);
}

#[tokio::test]
async fn a_charge_without_key_or_with_a_bad_amount_is_a_400_problem() {
    let gw = spawn_gateway().await;
    let order_id = Uuid::new_v4();
    let response = gw
        .client
        .post(format!("{}/api/v1/payments", gw.address))
        .json(&charge_body(order_id))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 400);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let mut body = charge_body(order_id);
    body["amount"] = serde_json::json!(0);
    let response = gw.charge("k", &body).await;
    assert_eq!(response.status(), 400);
    let problem: Value = response.json().await.expect("json");
    assert!(problem["fieldErrors"]["amount"].is_string());
    let response = gw
        .client
        .get(format!("{}/api/v1/payments/not-a-uuid", gw.address))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 404);
    let response = gw
        .client
        .get(format!("{}/api/v1/payments?orderId=nope", gw.address))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 400);
}

#[tokio::test]
async fn health_and_metrics_are_served() {
    let gw = spawn_gateway().await;
    let health = gw
        .client
        .get(format!("{}/actuator/health", gw.address))
        .send()
        .await
        .expect("sent");
    assert_eq!(health.status(), 200);
    let metrics = gw.metrics().await;
    assert!(metrics.contains("payments_gateway_charges_total"));
}
