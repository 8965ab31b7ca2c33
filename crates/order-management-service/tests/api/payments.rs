use crate::helpers::{order_created, spawn_app, wait_until, PATIENCE};
use serde_json::json;

#[tokio::test]
async fn a_declined_payment_fails_the_order() {
    let app = spawn_app().await;
    app.set_gateway_faults(json!({"successRate": 0.0})).await;
    let event = order_created("declined@example.com");
    app.publish(&event).await;
    let order = app.wait_for_status(&event.order_number, "FAILED").await;
    assert_eq!(order["paymentStatus"], "FAILED");
    let reason: Option<String> = sqlx::query_scalar(
        "SELECT failure_reason FROM payment_transactions p JOIN orders o ON o.id = p.order_id \
         WHERE o.order_number = $1",
    )
    .bind(&event.order_number)
    .fetch_one(&app.db)
    .await
    .expect("payment row");
    assert!(reason.is_some_and(|r| r.contains("declined")));
    assert_eq!(app.metric("payments_failed_total", &[]).await, Some(1.0));
    assert_eq!(app.metric("payments_completed_total", &[]).await, Some(0.0));
}

#[tokio::test]
async fn with_the_gateway_down_the_breaker_opens_orders_wait_and_all_are_paid_once_after_recovery()
{
    let app = spawn_app().await;
    app.set_gateway_faults(json!({"errorStatus": 503})).await;
    let events: Vec<_> = (0..6)
        .map(|i| order_created(&format!("outage{i}@example.com")))
        .collect();
    for event in &events {
        app.publish(event).await;
    }
    let opened = wait_until(PATIENCE, || async {
        app.metric(
            "resilience4j_circuitbreaker_state",
            &[("name", "paymentService"), ("state", "OPEN")],
        )
        .await
            == Some(1.0)
    })
    .await;
    assert!(opened, "the paymentService breaker opened");
    for event in &events {
        let order = app.wait_for_status(&event.order_number, "PROCESSING").await;
        assert_eq!(order["paymentStatus"], "PENDING");
        assert!(app.ledger(event.order_id).await.is_empty());
    }
    let health: serde_json::Value = app
        .client
        .get(format!("{}/actuator/health", app.address))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    assert!(
        health["components"]["circuitBreakers"].is_object(),
        "{health}"
    );

    app.set_gateway_faults(json!({"errorStatus": null})).await;
    for event in &events {
        let order = app.wait_for_status(&event.order_number, "PAID").await;
        assert_eq!(order["paymentStatus"], "SUCCESS");
        let ledger = app.ledger(event.order_id).await;
        assert_eq!(
            ledger.len(),
            1,
            "exactly one charge for {}",
            event.order_number
        );
        assert_eq!(ledger[0]["chargeCount"], 1);
    }
    let closed = wait_until(PATIENCE, || async {
        app.metric(
            "resilience4j_circuitbreaker_state",
            &[("name", "paymentService"), ("state", "CLOSED")],
        )
        .await
            == Some(1.0)
    })
    .await;
    assert!(closed, "the breaker closed again");
    assert_eq!(app.metric("payments_completed_total", &[]).await, Some(6.0));
}

#[tokio::test]
async fn a_hanging_gateway_times_out_and_the_order_is_paid_once_it_answers() {
    let app = spawn_app().await;
    app.set_gateway_faults(json!({"hang": true})).await;
    let event = order_created("hang@example.com");
    app.publish(&event).await;
    let order = app.wait_for_status(&event.order_number, "PROCESSING").await;
    let order_id = order["id"].as_str().expect("id").to_owned();
    let attempted = wait_until(PATIENCE, || async {
        let attempts: Option<i32> = sqlx::query_scalar(
            "SELECT attempt_count FROM payment_transactions WHERE order_id = $1::uuid",
        )
        .bind(&order_id)
        .fetch_optional(&app.db)
        .await
        .ok()
        .flatten();
        attempts.is_some_and(|a| a >= 1)
    })
    .await;
    assert!(attempted, "the timed-out call was recorded as an attempt");
    app.set_gateway_faults(json!({"hang": false})).await;
    app.wait_for_status(&event.order_number, "PAID").await;
    let ledger = app.ledger(event.order_id).await;
    assert_eq!(ledger.len(), 1);
    assert_eq!(ledger[0]["chargeCount"], 1);
}
