//! Who may call the gateway: the order service (its service token) charges, refunds and
//! reads; operators (the admin token) read the ledger; nobody else gets anything, and
//! the ledger is read a page at a time, without the keys that would replay a refund.

use crate::helpers::{charge_body, spawn_gateway};
use serde_json::{json, Value};
use uuid::Uuid;

#[tokio::test]
async fn a_stranger_can_neither_refund_a_charge_nor_read_the_ledger() {
    let gw = spawn_gateway().await;
    let order_id = Uuid::new_v4();
    let key = order_id.to_string();
    assert_eq!(gw.charge(&key, &charge_body(order_id)).await.status(), 201);

    let stranger = reqwest::Client::new();
    let refund = stranger
        .post(format!("{}/api/v1/refunds", gw.address))
        .header("Idempotency-Key", format!("refund-{order_id}"))
        .json(&json!({"paymentKey": key}))
        .send()
        .await
        .expect("answered");
    assert_eq!(refund.status(), 401);
    assert_eq!(refund.headers()["www-authenticate"], "Bearer");
    let problem: Value = refund.json().await.expect("problem details");
    assert_eq!(problem["status"], 401);
    for path in [
        "/api/v1/payments".to_owned(),
        format!("/api/v1/payments?orderId={order_id}"),
        "/api/v1/refunds".to_owned(),
    ] {
        let read = stranger
            .get(format!("{}{path}", gw.address))
            .bearer_auth("a-guess-of-the-token-0123456789abcdef")
            .send()
            .await
            .expect("answered");
        assert_eq!(read.status(), 401, "{path}");
    }
    let line = &gw.ledger(order_id).await[0];
    assert_eq!(line["netAmount"], 299.98, "nothing was refunded: {line}");
    assert!(gw.refunds(order_id).await.is_empty());
}

#[tokio::test]
async fn operators_read_the_ledger_with_the_admin_token_but_cannot_move_money_with_it() {
    let gw = spawn_gateway().await;
    let order_id = Uuid::new_v4();
    let operator = reqwest::Client::new();
    let admin = payment_gateway::testing::ADMIN_TOKEN;
    let charge = operator
        .post(format!("{}/api/v1/payments", gw.address))
        .bearer_auth(admin)
        .header("Idempotency-Key", order_id.to_string())
        .json(&charge_body(order_id))
        .send()
        .await
        .expect("answered");
    assert_eq!(charge.status(), 401);
    assert_eq!(
        gw.charge(&order_id.to_string(), &charge_body(order_id))
            .await
            .status(),
        201
    );
    let read = operator
        .get(format!("{}/api/v1/payments?orderId={order_id}", gw.address))
        .bearer_auth(admin)
        .send()
        .await
        .expect("answered");
    assert_eq!(read.status(), 200);
    let lines: Vec<Value> = read.json().await.expect("lines");
    assert_eq!(lines.len(), 1);
}

#[tokio::test]
async fn a_previous_service_token_still_works_during_a_rotation() {
    let mut settings = payment_gateway::testing::settings()
        .await
        .expect("settings");
    let old = payment_gateway::testing::SERVICE_TOKEN;
    let new = "the-rotated-service-token-0123456789abcdef";
    settings.service_token = platform::config::Secret::new(new);
    settings.previous_service_tokens = vec![platform::config::Secret::new(old)];
    let (base, shutdown) = payment_gateway::testing::start(settings)
        .await
        .expect("gateway");
    let http = reqwest::Client::new();
    for (token, order_id) in [(old, Uuid::new_v4()), (new, Uuid::new_v4())] {
        let charged = http
            .post(format!("{base}/api/v1/payments"))
            .bearer_auth(token)
            .header("Idempotency-Key", order_id.to_string())
            .json(&charge_body(order_id))
            .send()
            .await
            .expect("answered");
        assert_eq!(charged.status(), 201, "{token}");
    }
    shutdown.cancel();
}

#[tokio::test]
async fn the_ledger_is_listed_a_page_at_a_time_without_idempotency_keys() {
    let gw = spawn_gateway().await;
    let mut orders = Vec::new();
    for _ in 0..5 {
        let order_id = Uuid::new_v4();
        assert_eq!(
            gw.charge(&order_id.to_string(), &charge_body(order_id))
                .await
                .status(),
            201
        );
        orders.push(order_id.to_string());
    }
    let mut seen = Vec::new();
    for page in 0.. {
        let lines = gw
            .get_json(&format!("/api/v1/payments?size=2&page={page}"))
            .await;
        let lines = lines.as_array().cloned().expect("a list");
        assert!(lines.len() <= 2, "size is honoured: {}", lines.len());
        for line in &lines {
            assert!(line.get("idempotencyKey").is_none(), "{line}");
            seen.push(line["orderId"].as_str().expect("orderId").to_owned());
        }
        if lines.len() < 2 {
            break;
        }
    }
    assert_eq!(seen, orders, "every line once, oldest first");
    for bad in ["size=501", "size=0", "page=-1"] {
        let answer = gw
            .client
            .get(format!("{}/api/v1/payments?{bad}", gw.address))
            .send()
            .await
            .expect("answered");
        assert_eq!(answer.status(), 400, "{bad}");
    }
    let refund = gw
        .refund(
            &format!("refund-{}", orders[0]),
            &json!({"paymentKey": orders[0]}),
        )
        .await;
    assert_eq!(refund.status(), 201);
    let refunds = gw.get_json("/api/v1/refunds?size=1").await;
    let refunds = refunds.as_array().cloned().expect("a list");
    assert_eq!(refunds.len(), 1);
    assert!(refunds[0].get("idempotencyKey").is_none(), "{}", refunds[0]);
}
