use crate::helpers::{charge_body, spawn_gateway, spawn_gateway_on};
use serde_json::Value;
use sqlx::{ConnectOptions, Connection};
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
    assert_eq!(line["orderId"], order_id.to_string());
    assert_eq!(line["chargeCount"], 1);
}

#[tokio::test]
async fn a_key_is_charged_once_under_twenty_concurrent_requests() {
    let gw = spawn_gateway().await;
    let order_id = Uuid::new_v4();
    let key = order_id.to_string();
    let body = charge_body(order_id);
    let requests = (0..20).map(|_| gw.charge(&key, &body));
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
    assert_eq!(ledger[0]["requestCount"], 20);
    assert_eq!(ledger[0]["refundedAmount"], 0.0);
    assert_eq!(ledger[0]["netAmount"], 299.98);
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
async fn a_charge_survives_a_restart_and_its_replay_after_the_restart_returns_the_same_charge() {
    let first = spawn_gateway().await;
    let order_id = Uuid::new_v4();
    let key = order_id.to_string();
    let response = first.charge(&key, &charge_body(order_id)).await;
    assert_eq!(response.status(), 201);
    let charged: Value = response.json().await.expect("json");
    first.stop();

    let second = spawn_gateway_on(first.database.clone()).await;
    let ledger = second.ledger(order_id).await;
    assert_eq!(ledger.len(), 1);
    assert_eq!(ledger[0]["id"], charged["id"]);
    let response = second.charge(&key, &charge_body(order_id)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["Idempotent-Replayed"], "true");
    let replayed: Value = response.json().await.expect("json");
    assert_eq!(replayed, charged);
    let line = second
        .get_json(&format!(
            "/api/v1/payments/{}",
            charged["id"].as_str().expect("id")
        ))
        .await;
    assert_eq!(line["chargeCount"], 1);
    assert_eq!(line["requestCount"], 2);
    let metrics = second.metrics().await;
    assert_eq!(
        platform::testing::metric_value(&metrics, "payments_gateway_ledger_charges", &[]),
        Some(1.0),
        "the ledger gauge starts from the stored count"
    );
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
    assert_eq!(response.status(), 409);
    let mut other_amount = charge_body(first);
    other_amount["amount"] = serde_json::json!(1.5);
    let response = gw.charge("shared-key", &other_amount).await;
    assert_eq!(response.status(), 409);
    let problem: Value = response.json().await.expect("json");
    assert!(problem["type"]
        .as_str()
        .is_some_and(|t| t.ends_with("idempotency-key-reused")));
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
    body["amount"] = serde_json::json!(1.005);
    assert_eq!(gw.charge("k", &body).await.status(), 400);
    let response = gw
        .client
        .post(format!("{}/api/v1/payments", gw.address))
        .header("Idempotency-Key", "k")
        .body(charge_body(order_id).to_string())
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 415);
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

#[tokio::test]
async fn the_gateway_is_unready_while_its_database_is_gone() {
    let gw = spawn_gateway().await;
    let readiness = || async {
        gw.client
            .get(format!("{}/actuator/health/readiness", gw.address))
            .send()
            .await
            .expect("sent")
            .status()
    };
    assert_eq!(readiness().await, 200);
    let name = gw.database.get_database().expect("name").to_owned();
    let server = std::str::FromStr::from_str(&platform::testing::server_url())
        .map(|o: sqlx::postgres::PgConnectOptions| o.database("postgres"))
        .expect("server url");
    let mut admin = server.connect().await.expect("admin connection");
    sqlx::query(&format!("DROP DATABASE \"{name}\" WITH (FORCE)"))
        .execute(&mut admin)
        .await
        .expect("database dropped");
    admin.close().await.expect("closed");
    // Readiness answers from checks refreshed every 2 s: it flips within a few seconds.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while readiness().await != 503 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "never unready without a database"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let order_id = Uuid::new_v4();
    let response = gw
        .charge(&order_id.to_string(), &charge_body(order_id))
        .await;
    assert!(response.status().is_server_error(), "{}", response.status());
}
