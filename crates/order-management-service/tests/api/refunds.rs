//! Refunds (ADR 0007): a cancelled paid order is refunded once through the gateway's
//! refund route, and a payment the gateway never answers ends at the deadline with its
//! key voided. These need the gateway's `POST /api/v1/refunds`.

use crate::helpers::{
    order_created, read_records, spawn_app, spawn_app_with, wait_until, PATIENCE,
};
use events::{OrderReleased, ReleasedStatus};
use serde_json::{json, Value};

#[tokio::test]
async fn cancelling_a_paid_order_releases_its_items_and_refunds_it_once() {
    let app = spawn_app().await;
    let event = order_created("refund@example.com");
    app.publish(&event).await;
    app.wait_for_status(&event.order_number, "PAID").await;

    let cancelled = app
        .cancel_when_idle(&event.order_number, "changed mind")
        .await;
    assert_eq!(cancelled["status"], "CANCELLED");
    // The money is still taken until the gateway answers the refund.
    assert!(
        ["SUCCESS", "REFUNDED"].contains(&cancelled["paymentStatus"].as_str().unwrap_or("")),
        "{cancelled}"
    );
    let read = read_records::<OrderReleased>(&app.released_topic, 1).await;
    assert_eq!(read[0].value.order_status, ReleasedStatus::Cancelled);
    assert_eq!(read[0].value.order_id, event.order_id);
    assert_eq!(read[0].value.items.len(), event.items.len());

    let refunded = wait_until(PATIENCE, || async {
        app.get_order(&event.order_number).await.1["paymentStatus"] == "REFUNDED"
    })
    .await;
    assert!(refunded, "the payment became REFUNDED");
    let (_, order) = app.get_order(&event.order_number).await;
    assert_eq!(order["status"], "CANCELLED");
    assert_eq!(
        app.payment_column(&event.order_number, "refunded_amount")
            .await
            .as_deref(),
        Some("329.97")
    );
    assert!(app
        .payment_column(&event.order_number, "refund_id")
        .await
        .is_some());
    assert!(app
        .payment_column(&event.order_number, "refunded_at")
        .await
        .is_some());
    assert_eq!(app.metric("payments_refunded_total", &[]).await, Some(1.0));
    let pending_cleared = wait_until(PATIENCE, || async {
        app.metric("payment_refunds_pending", &[]).await == Some(0.0)
    })
    .await;
    assert!(pending_cleared, "no refund is left pending");

    // One refund at the gateway, and the charge's net amount is zero.
    let refunds = app.refunds(event.order_id).await;
    assert_eq!(refunds.len(), 1, "{refunds:?}");
    assert_eq!(refunds[0]["status"], "REFUNDED");
    let ledger = app.ledger(event.order_id).await;
    assert_eq!(ledger.len(), 1, "{ledger:?}");
    assert_eq!(ledger[0]["netAmount"].as_f64(), Some(0.0), "{ledger:?}");

    // A second cancel is refused and refunds nothing more.
    let (status, _) = app.cancel(&event.order_number, "again").await;
    assert_eq!(status, 409);
}

#[tokio::test]
async fn a_payment_the_gateway_never_answers_fails_at_the_deadline_releases_its_items_and_voids_its_key(
) {
    let app = spawn_app_with(&[("payment-deadline-secs", "2")]).await;
    app.set_gateway_faults(json!({"errorStatus": 503})).await;
    let event = order_created("deadline@example.com");
    app.publish(&event).await;
    let order = app.wait_for_status(&event.order_number, "FAILED").await;
    assert_eq!(order["paymentStatus"], "FAILED");
    assert_eq!(
        app.payment_column(&event.order_number, "failure_reason")
            .await
            .as_deref(),
        Some("Payment gateway did not answer within 2 s")
    );
    let read = read_records::<OrderReleased>(&app.released_topic, 1).await;
    assert_eq!(read[0].value.order_status, ReleasedStatus::Failed);
    assert_eq!(read[0].value.order_id, event.order_id);
    assert_eq!(
        read[0].value.reason,
        "Payment gateway did not answer within 2 s"
    );
    assert_eq!(app.metric("payments_expired_total", &[]).await, Some(1.0));

    // The refund by key waits for the gateway, counted, never dropped.
    let counted = wait_until(PATIENCE, || async {
        app.metric("payment_refunds_pending", &[]).await == Some(1.0)
    })
    .await;
    assert!(counted, "the pending refund is counted");
    app.set_gateway_faults(json!({"errorStatus": null})).await;
    let done = wait_until(PATIENCE, || async {
        app.payment_column(&event.order_number, "refunded_at")
            .await
            .is_some()
    })
    .await;
    assert!(done, "the gateway answered the refund");
    assert_eq!(
        app.payment_column(&event.order_number, "status")
            .await
            .as_deref(),
        Some("FAILED"),
        "nothing was charged, so nothing was refunded"
    );
    assert_eq!(
        app.payment_column(&event.order_number, "refunded_amount")
            .await
            .as_deref(),
        Some("0.00")
    );

    // The key is closed: a late charge under it takes no money.
    let response = app
        .client
        .post(format!("{}/api/v1/payments", app.gateway_address))
        .header(
            "Authorization",
            payment_gateway::testing::service_authorization(),
        )
        .header("Idempotency-Key", event.order_id.to_string())
        .json(&json!({
            "orderId": event.order_id,
            "orderNumber": event.order_number,
            "amount": 329.97,
            "customerEmail": "deadline@example.com",
        }))
        .send()
        .await
        .expect("sent");
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    assert!(
        status == 409 || body["status"] == "DECLINED",
        "a voided key charged: {status} {body}"
    );
    assert!(app
        .ledger(event.order_id)
        .await
        .iter()
        .all(|line| line["status"] != "SUCCEEDED"));
    let (_, order) = app.get_order(&event.order_number).await;
    assert_eq!(order["status"], "FAILED");
}

#[tokio::test]
async fn a_charge_landing_after_its_lease_ran_out_and_the_order_was_cancelled_is_recorded_and_refunded(
) {
    let app = spawn_app_with(&[("payment-timeout-ms", "5000")]).await;
    app.set_gateway_faults(json!({"latencyMs": 1500})).await;
    let event = order_created("late-charge@example.com");
    app.publish(&event).await;
    let leased = wait_until(PATIENCE, || async {
        app.payment_column(&event.order_number, "locked_until")
            .await
            .is_some()
    })
    .await;
    assert!(leased, "the charge is in flight");
    // The lease runs out while the gateway is still deciding (a stalled worker).
    sqlx::query(
        "UPDATE payment_transactions SET locked_until = (now() AT TIME ZONE 'UTC') - interval '1 second' \
         WHERE order_id = (SELECT id FROM orders WHERE order_number = $1)",
    )
    .bind(&event.order_number)
    .execute(&app.db)
    .await
    .expect("lease expired");
    let (status, body) = app.cancel(&event.order_number, "too slow").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "CANCELLED");

    // Whether the charge or the refund by key reaches the gateway first, no money is kept.
    let settled = wait_until(PATIENCE, || async {
        app.payment_column(&event.order_number, "refunded_at")
            .await
            .is_some()
    })
    .await;
    assert!(settled, "the refund by key was answered");
    let settled_late = wait_until(std::time::Duration::from_secs(5), || async {
        let ledger = app.ledger(event.order_id).await;
        let payment = app.payment_column(&event.order_number, "status").await;
        ledger.iter().all(|l| l["netAmount"].as_f64() == Some(0.0))
            && (payment.as_deref() == Some("REFUNDED")
                || ledger.iter().all(|l| l["status"] != "SUCCEEDED"))
    })
    .await;
    let ledger = app.ledger(event.order_id).await;
    let payment = app.payment_column(&event.order_number, "status").await;
    assert!(
        settled_late,
        "money kept: payment {payment:?}, ledger {ledger:?}"
    );
    let (_, order) = app.get_order(&event.order_number).await;
    assert_eq!(order["status"], "CANCELLED");
    println!("late charge outcome: payment {payment:?}, ledger {ledger:?}");
}
