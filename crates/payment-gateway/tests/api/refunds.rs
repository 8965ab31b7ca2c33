//! `POST /api/v1/refunds` (ADR 0007): refunds of charges, voiding keys never charged,
//! idempotency, and the fault knobs.

use crate::helpers::{charge_body, spawn_gateway, TestGateway};
use serde_json::{json, Value};
use std::time::Duration;
use uuid::Uuid;

/// Charges 299.98 for a new order under its id as key; returns the order id and charge.
async fn charged(gw: &TestGateway) -> (Uuid, Value) {
    let order_id = Uuid::new_v4();
    let response = gw
        .charge(&order_id.to_string(), &charge_body(order_id))
        .await;
    assert_eq!(response.status(), 201);
    (order_id, response.json().await.expect("json"))
}

#[tokio::test]
async fn a_refund_without_an_amount_gives_back_the_whole_charge() {
    let gw = spawn_gateway().await;
    let (order_id, charge) = charged(&gw).await;
    let response = gw
        .refund(
            &format!("refund-{order_id}"),
            &json!({"paymentKey": order_id.to_string(), "reason": "Order cancelled"}),
        )
        .await;
    assert_eq!(response.status(), 201);
    let refund: Value = response.json().await.expect("json");
    assert_eq!(refund["status"], "REFUNDED");
    assert_eq!(refund["amount"], 299.98);
    assert_eq!(refund["currency"], "USD");
    assert_eq!(refund["paymentId"], charge["id"]);
    assert_eq!(refund["orderId"], order_id.to_string());
    assert_eq!(refund["paymentKey"], order_id.to_string());
    assert_eq!(refund["reason"], "Order cancelled");
    assert!(!refund["createdAt"].as_str().expect("ts").ends_with('Z'));

    let ledger = gw.ledger(order_id).await;
    assert_eq!(ledger[0]["refundedAmount"], 299.98);
    assert_eq!(ledger[0]["netAmount"], 0.0);
    let refunds = gw.refunds(order_id).await;
    assert_eq!(refunds.len(), 1);
    assert_eq!(refunds[0]["id"], refund["id"]);
    assert_eq!(refunds[0]["paymentKey"], order_id.to_string());
    let one = gw
        .get_json(&format!(
            "/api/v1/refunds/{}",
            refund["id"].as_str().expect("id")
        ))
        .await;
    assert_eq!(one["amount"], 299.98);
    let metrics = gw.metrics().await;
    assert_eq!(
        platform::testing::metric_value(
            &metrics,
            "payments_gateway_refunds_total",
            &[("status", "REFUNDED")]
        ),
        Some(1.0)
    );
}

#[tokio::test]
async fn partial_refunds_add_up_and_one_more_than_is_left_is_a_409() {
    let gw = spawn_gateway().await;
    let (order_id, _) = charged(&gw).await;
    let key = order_id.to_string();
    let first = gw
        .refund("r1", &json!({"paymentKey": key, "amount": 100.0}))
        .await;
    assert_eq!(first.status(), 201);
    let too_much = gw
        .refund("r2", &json!({"paymentKey": key, "amount": 200.0}))
        .await;
    assert_eq!(too_much.status(), 409);
    assert_eq!(
        too_much.headers()["content-type"],
        "application/problem+json"
    );
    let problem: Value = too_much.json().await.expect("json");
    assert!(problem["type"]
        .as_str()
        .is_some_and(|t| t.ends_with("refund-exceeds-charge")));

    let rest = gw.refund("r3", &json!({"paymentKey": key})).await;
    assert_eq!(rest.status(), 201);
    let rest: Value = rest.json().await.expect("json");
    assert_eq!(rest["amount"], 199.98);
    let nothing_left = gw.refund("r4", &json!({"paymentKey": key})).await;
    assert_eq!(nothing_left.status(), 409);

    let ledger = gw.ledger(order_id).await;
    assert_eq!(ledger[0]["refundedAmount"], 299.98);
    assert_eq!(ledger[0]["netAmount"], 0.0);
    assert_eq!(gw.refunds(order_id).await.len(), 2);
}

#[tokio::test]
async fn concurrent_refunds_of_one_charge_never_give_back_more_than_was_charged() {
    let gw = spawn_gateway().await;
    let (order_id, _) = charged(&gw).await;
    let key = order_id.to_string();
    let gw = &gw;
    let requests: Vec<_> = (0..10)
        .map(|i| {
            let body = json!({"paymentKey": key, "amount": 100.0});
            let refund_key = format!("r{i}");
            async move { gw.refund(&refund_key, &body).await.status() }
        })
        .collect();
    let statuses = futures::future::join_all(requests).await;
    assert_eq!(statuses.iter().filter(|s| s.as_u16() == 201).count(), 2);
    assert_eq!(statuses.iter().filter(|s| s.as_u16() == 409).count(), 8);
    let ledger = gw.ledger(order_id).await;
    assert_eq!(ledger[0]["refundedAmount"], 200.0);
    assert_eq!(ledger[0]["netAmount"], 99.98);
}

#[tokio::test]
async fn a_refund_of_an_unknown_key_voids_it_and_a_later_charge_with_that_key_is_declined() {
    let gw = spawn_gateway().await;
    let order_id = Uuid::new_v4();
    let key = order_id.to_string();
    let response = gw
        .refund(
            &format!("refund-{order_id}"),
            &json!({"paymentKey": key, "reason": "Payment gateway did not answer within 900 s"}),
        )
        .await;
    assert_eq!(response.status(), 201);
    let refund: Value = response.json().await.expect("json");
    assert_eq!(refund["status"], "NOTHING_CHARGED");
    assert_eq!(refund["amount"], 0.0);
    assert_eq!(refund["paymentId"], Value::Null);
    assert_eq!(refund["orderId"], Value::Null);
    assert!(
        gw.ledger(order_id).await.is_empty(),
        "a voided key is no charge"
    );

    let body = charge_body(order_id);
    let requests = (0..5).map(|_| gw.charge(&key, &body));
    for response in futures::future::join_all(requests).await {
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["Idempotent-Replayed"], "true");
        let payment: Value = response.json().await.expect("json");
        assert_eq!(payment["status"], "DECLINED");
        assert_eq!(payment["failureReason"], "Voided before it was charged");
        assert_eq!(payment["externalTransactionId"], Value::Null);
        assert_eq!(payment["orderId"], key);
    }
    let ledger = gw.ledger(order_id).await;
    assert_eq!(ledger.len(), 1);
    assert_eq!(ledger[0]["status"], "DECLINED");
    assert_eq!(ledger[0]["netAmount"], 0.0);
    assert_eq!(ledger[0]["requestCount"], 5);
    let metrics = gw.metrics().await;
    for result in ["SUCCEEDED", "DECLINED"] {
        assert_eq!(
            platform::testing::metric_value(
                &metrics,
                "payments_gateway_charges_total",
                &[("result", result)]
            ),
            Some(0.0),
            "nothing was charged"
        );
    }
    assert_eq!(
        platform::testing::metric_value(
            &metrics,
            "payments_gateway_refunds_total",
            &[("status", "NOTHING_CHARGED")]
        ),
        Some(1.0)
    );
}

#[tokio::test]
async fn a_declined_charge_refunds_nothing() {
    let gw = spawn_gateway().await;
    gw.set_faults(json!({"successRate": 0.0})).await;
    let (order_id, charge) = charged(&gw).await;
    assert_eq!(charge["status"], "DECLINED");
    gw.set_faults(json!({"successRate": 1.0})).await;
    let response = gw
        .refund(
            "refund-declined",
            &json!({"paymentKey": order_id.to_string(), "amount": 10.0}),
        )
        .await;
    assert_eq!(response.status(), 201);
    let refund: Value = response.json().await.expect("json");
    assert_eq!(refund["status"], "NOTHING_CHARGED");
    assert_eq!(refund["amount"], 0.0);
}

#[tokio::test]
async fn a_refund_key_replays_its_refund_and_is_refused_for_a_different_one() {
    let gw = spawn_gateway().await;
    let (order_id, _) = charged(&gw).await;
    let body = json!({"paymentKey": order_id.to_string(), "amount": 50.0});
    let requests = (0..10).map(|_| gw.refund("refund-once", &body));
    let mut ids = std::collections::HashSet::new();
    let mut created = 0;
    for response in futures::future::join_all(requests).await {
        if response.status() == 201 {
            created += 1;
        } else {
            assert_eq!(response.status(), 200);
            assert_eq!(response.headers()["Idempotent-Replayed"], "true");
        }
        let refund: Value = response.json().await.expect("json");
        ids.insert(refund["id"].as_str().expect("id").to_owned());
    }
    assert_eq!(created, 1);
    assert_eq!(ids.len(), 1);
    let refunds = gw.refunds(order_id).await;
    assert_eq!(refunds.len(), 1);
    assert_eq!(refunds[0]["requestCount"], 10);
    assert_eq!(gw.ledger(order_id).await[0]["refundedAmount"], 50.0);

    let other_amount = json!({"paymentKey": order_id.to_string(), "amount": 60.0});
    assert_eq!(gw.refund("refund-once", &other_amount).await.status(), 409);
    let other_payment = json!({"paymentKey": "another-key"});
    assert_eq!(gw.refund("refund-once", &other_payment).await.status(), 409);
    assert!(
        gw.ledger(Uuid::nil()).await.is_empty(),
        "a refused refund voids nothing"
    );
}

#[tokio::test]
async fn an_invalid_refund_is_a_400_problem_and_unknown_ids_are_404() {
    let gw = spawn_gateway().await;
    let (order_id, _) = charged(&gw).await;
    let response = gw
        .client
        .post(format!("{}/api/v1/refunds", gw.address))
        .json(&json!({"paymentKey": order_id.to_string()}))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 400, "no Idempotency-Key");
    let response = gw
        .refund(
            "r",
            &json!({"paymentKey": order_id.to_string(), "amount": -1}),
        )
        .await;
    assert_eq!(response.status(), 400);
    let problem: Value = response.json().await.expect("json");
    assert!(problem["fieldErrors"]["amount"].is_string());
    let response = gw.refund("r", &json!({"paymentKey": ""})).await;
    assert_eq!(response.status(), 400);
    let response = gw.refund("r", &json!({"amount": 1.0})).await;
    assert_eq!(response.status(), 400, "no paymentKey");
    for path in [
        "/api/v1/refunds/not-a-uuid",
        "/api/v1/refunds/00000000-0000-0000-0000-000000000000",
    ] {
        let response = gw
            .client
            .get(format!("{}{path}", gw.address))
            .send()
            .await
            .expect("sent");
        assert_eq!(response.status(), 404, "{path}");
    }
    assert!(gw.refunds(order_id).await.is_empty());
}

#[tokio::test]
async fn the_error_status_and_hang_knobs_apply_to_refunds_and_the_success_rate_does_not() {
    let gw = spawn_gateway().await;
    let (order_id, _) = charged(&gw).await;
    let body = json!({"paymentKey": order_id.to_string(), "amount": 10.0});

    gw.set_faults(json!({"errorStatus": 503})).await;
    assert_eq!(gw.refund("r1", &body).await.status(), 503);
    assert!(gw.refunds(order_id).await.is_empty());

    gw.set_faults(json!({"errorStatus": null, "hang": true}))
        .await;
    let pending = tokio::time::timeout(Duration::from_millis(300), gw.refund("r1", &body)).await;
    assert!(pending.is_err(), "a hanging gateway must not answer");
    assert!(gw.refunds(order_id).await.is_empty());

    gw.set_faults(json!({"hang": false, "successRate": 0.0, "latencyMs": 300}))
        .await;
    let started = std::time::Instant::now();
    let response = gw.refund("r1", &body).await;
    assert_eq!(response.status(), 201);
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "latencyMs applies"
    );
    let refund: Value = response.json().await.expect("json");
    assert_eq!(refund["status"], "REFUNDED");
}

#[tokio::test]
async fn a_charge_racing_the_void_of_its_key_is_either_refunded_or_never_made() {
    let gw = spawn_gateway().await;
    for _ in 0..10 {
        let order_id = Uuid::new_v4();
        let key = order_id.to_string();
        let body = charge_body(order_id);
        let refund_body = json!({"paymentKey": key});
        let refund_key = format!("refund-{order_id}");
        let (charge, refund) =
            tokio::join!(gw.charge(&key, &body), gw.refund(&refund_key, &refund_body));
        let charge: Value = charge.json().await.expect("charge json");
        let refund: Value = refund.json().await.expect("refund json");
        match charge["status"].as_str() {
            Some("SUCCEEDED") => assert_eq!(refund["status"], "REFUNDED", "{refund}"),
            Some("DECLINED") => assert_eq!(refund["status"], "NOTHING_CHARGED", "{refund}"),
            other => panic!("unexpected charge status {other:?}"),
        }
        let ledger = gw.ledger(order_id).await;
        assert_eq!(ledger.len(), 1);
        assert_eq!(ledger[0]["netAmount"], 0.0, "{}", ledger[0]);
    }
}
