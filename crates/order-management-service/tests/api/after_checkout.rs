//! After checkout (ADR 0007): the gateway's answer and the order's state commit
//! together, an order that ends FAILED or CANCELLED releases its stock through
//! `orders.released`, a cancel and a charge never both win, and a gateway that refuses
//! requests (401, 404) is an outage, not a decline.

use crate::helpers::{
    order_created, read_records, spawn_app, wait_until, Snapshot, TestApp, PATIENCE,
};
use events::{OrderCreated, OrderReleased, ReleasedStatus};
use serde_json::json;
use std::time::Duration;

/// Polls the order's snapshot until `done` holds, checking `invariant` on every one.
async fn watch(
    app: &TestApp,
    order_number: &str,
    invariant: impl Fn(&Snapshot),
    done: impl Fn(&Snapshot) -> bool,
) -> Snapshot {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        if let Some(snapshot) = app.snapshot(order_number).await {
            invariant(&snapshot);
            if done(&snapshot) {
                return snapshot;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "order {order_number} never reached its end"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The released event says which stock goes back, keyed by the checkout's order id.
fn assert_releases(
    read: &crate::helpers::Read<OrderReleased>,
    event: &OrderCreated,
    status: ReleasedStatus,
) {
    let released = &read.value;
    assert_eq!(
        read.key.as_deref(),
        Some(event.order_id.to_string().as_str())
    );
    assert_eq!(released.order_id, event.order_id);
    assert_eq!(released.order_number, event.order_number);
    assert_eq!(released.event_type, events::ORDER_RELEASED);
    assert_eq!(released.event_version, events::EVENT_VERSION);
    assert_eq!(released.order_status, status);
    assert_eq!(released.correlation_id, event.correlation_id);
    let items: Vec<_> = released
        .items
        .iter()
        .map(|i| (i.product_id, i.product_sku.as_str(), i.quantity))
        .collect();
    let expected: Vec<_> = event
        .items
        .iter()
        .map(|i| (i.product_id, i.product_sku.as_str(), i.quantity))
        .collect();
    assert_eq!(items, expected);
    assert_eq!(
        read.headers[events::TYPE_ID_HEADER],
        events::ORDER_RELEASED_TYPE_ID
    );
    assert_eq!(read.headers["eventType"], events::ORDER_RELEASED);
    assert_eq!(read.headers["eventId"], released.event_id.to_string());
    assert_eq!(
        Some(read.headers["X-Correlation-ID"].clone()),
        event.correlation_id
    );
    assert!(read.headers.contains_key("traceparent"));
}

#[tokio::test]
async fn a_declined_payment_fails_the_order_in_the_same_transaction_and_releases_its_items() {
    let app = spawn_app().await;
    app.set_gateway_faults(json!({"successRate": 0.0})).await;
    let event = order_created("declined-release@example.com");
    app.publish(&event).await;
    let end = watch(
        &app,
        &event.order_number,
        |s| {
            // Never a declined payment on an order still waiting, nor one without its events.
            if s.payment_status == "FAILED" {
                assert_eq!(s.order_status, "FAILED", "{s:?}");
                assert_eq!((s.completed_rows, s.released_rows), (1, 1), "{s:?}");
            } else {
                assert_eq!(s.payment_status, "PENDING", "{s:?}");
                assert_eq!((s.completed_rows, s.released_rows), (0, 0), "{s:?}");
            }
        },
        |s| s.payment_status == "FAILED",
    )
    .await;
    assert_eq!(end.order_status, "FAILED");
    let read = read_records::<OrderReleased>(&app.released_topic, 1).await;
    assert_releases(&read[0], &event, ReleasedStatus::Failed);
    assert!(
        read[0].value.reason.contains("declined"),
        "{}",
        read[0].value.reason
    );
    assert_eq!(app.metric("payments_failed_total", &[]).await, Some(1.0));
}

#[tokio::test]
async fn an_approved_payment_makes_the_order_paid_in_the_same_transaction_without_the_payments_completed_consumer(
) {
    let app = spawn_app().await;
    let event = order_created("approved-same-tx@example.com");
    app.publish(&event).await;
    // Every snapshot is one statement: had the order waited for payments.completed to
    // come back through the broker, one would show SUCCESS with the order PROCESSING.
    let end = watch(
        &app,
        &event.order_number,
        |s| {
            if s.payment_status == "SUCCESS" {
                assert_eq!(s.order_status, "PAID", "{s:?}");
                assert_eq!(s.completed_rows, 1, "{s:?}");
            } else {
                assert_eq!(s.payment_status, "PENDING", "{s:?}");
                assert_ne!(s.order_status, "PAID", "{s:?}");
            }
            assert_eq!(s.released_rows, 0, "{s:?}");
        },
        |s| s.order_status == "PAID",
    )
    .await;
    assert_eq!(end.payment_status, "SUCCESS");
    assert_eq!(app.metric("payments_success_total", &[]).await, Some(1.0));
    // The charge's key and orderId are the checkout's order id.
    let ledger = app.ledger(event.order_id).await;
    assert_eq!(ledger.len(), 1, "{ledger:?}");
    assert_eq!(ledger[0]["status"], "SUCCEEDED");
}

#[tokio::test]
async fn cancelling_a_pending_order_fails_its_payment_and_releases_its_items() {
    let app = spawn_app().await;
    app.set_gateway_faults(json!({"errorStatus": 503})).await;
    let event = order_created("cancel-pending@example.com");
    app.publish(&event).await;
    app.wait_for_status(&event.order_number, "PROCESSING").await;
    let cancelled = app
        .cancel_when_idle(&event.order_number, "customer asked")
        .await;
    assert_eq!(cancelled["status"], "CANCELLED");
    assert_eq!(cancelled["paymentStatus"], "FAILED");
    let read = read_records::<OrderReleased>(&app.released_topic, 1).await;
    assert_releases(&read[0], &event, ReleasedStatus::Cancelled);
    assert_eq!(read[0].value.reason, "customer asked");

    app.set_gateway_faults(json!({"errorStatus": null})).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (_, after) = app.get_order(&event.order_number).await;
    assert_eq!(after["status"], "CANCELLED");
    assert!(
        app.ledger(event.order_id)
            .await
            .iter()
            .all(|line| line["status"] != "SUCCEEDED"),
        "a cancelled order is never charged"
    );
}

#[tokio::test]
async fn a_cancel_racing_a_charge_ends_in_one_consistent_outcome_whichever_commits_first() {
    let app = spawn_app().await;
    // Slow enough charges that a cancel can land before, during and after the call.
    app.set_gateway_faults(json!({"latencyMs": 150})).await;
    let mut outcomes = Vec::new();
    let rounds = [
        (false, 0u64),
        (false, 100),
        (false, 300),
        (true, 0),
        (true, 50),
        (true, 150),
        (true, 400),
    ];
    for (resumed, delay_ms) in rounds {
        let event = order_created("race@example.com");
        if resumed {
            // The charge is the retry worker's: the gateway was down, and comes back
            // while the cancel is sent.
            app.set_gateway_faults(json!({"errorStatus": 503})).await;
        }
        app.publish(&event).await;
        let exists = wait_until(PATIENCE, || async {
            app.snapshot(&event.order_number)
                .await
                .is_some_and(|s| !resumed || s.order_status == "PROCESSING")
        })
        .await;
        assert!(exists, "order {} was created", event.order_number);
        let cancel = async {
            tokio::time::sleep(Duration::from_millis(delay_ms)).await;
            app.cancel(&event.order_number, "race").await
        };
        let ((status, body), ()) = if resumed {
            tokio::join!(cancel, app.set_gateway_faults(json!({"errorStatus": null})))
        } else {
            (cancel.await, ())
        };
        let charged = || async {
            app.ledger(event.order_id)
                .await
                .iter()
                .filter(|line| line["status"] == "SUCCEEDED")
                .count()
        };
        match status {
            409 => {
                // A charge was in flight: it wins, and the order is paid once.
                app.wait_for_status(&event.order_number, "PAID").await;
                assert_eq!(charged().await, 1);
                outcomes.push("409 then PAID");
            }
            200 if body["paymentStatus"] == "FAILED" => {
                // The cancel won: the charge never happens, even later.
                tokio::time::sleep(Duration::from_millis(1500)).await;
                let (_, after) = app.get_order(&event.order_number).await;
                assert_eq!(after["status"], "CANCELLED");
                assert_eq!(after["paymentStatus"], "FAILED");
                assert_eq!(charged().await, 0, "a cancelled order was charged");
                outcomes.push("CANCELLED, never charged");
            }
            200 => {
                // The charge committed first, then the cancel: PAID → CANCELLED, refunded.
                assert_eq!(body["status"], "CANCELLED", "{body}");
                assert_eq!(body["paymentStatus"], "SUCCESS", "{body}");
                let refunded = wait_until(PATIENCE, || async {
                    app.get_order(&event.order_number).await.1["paymentStatus"] == "REFUNDED"
                })
                .await;
                assert!(refunded, "the paid and cancelled order was refunded");
                outcomes.push("PAID, then CANCELLED and refunded");
            }
            other => panic!("unexpected cancel answer {other}: {body}"),
        }
        let snapshot = app.snapshot(&event.order_number).await.expect("order");
        match snapshot.order_status.as_str() {
            "PAID" => assert_eq!(snapshot.released_rows, 0, "{snapshot:?}"),
            "CANCELLED" => assert_eq!(snapshot.released_rows, 1, "{snapshot:?}"),
            _ => panic!("inconsistent end {snapshot:?}"),
        }
    }
    println!("race outcomes: {outcomes:?}");
}

#[tokio::test]
async fn a_gateway_answering_401_or_404_leaves_the_payment_pending_and_opens_the_breaker() {
    let app = spawn_app().await;
    for status in [401, 404] {
        app.set_gateway_faults(json!({"errorStatus": status})).await;
        let event = order_created(&format!("refused{status}@example.com"));
        app.publish(&event).await;
        let opened = wait_until(PATIENCE, || async {
            app.metric(
                "resilience4j_circuitbreaker_state",
                &[("name", "paymentService"), ("state", "OPEN")],
            )
            .await
                == Some(1.0)
        })
        .await;
        assert!(opened, "HTTP {status} opened the paymentService breaker");
        let order = app.wait_for_status(&event.order_number, "PROCESSING").await;
        assert_eq!(
            order["paymentStatus"], "PENDING",
            "HTTP {status} is no decline"
        );
        let error = app.payment_column(&event.order_number, "last_error").await;
        assert!(
            error
                .as_deref()
                .is_some_and(|e| e.contains(&status.to_string())),
            "{error:?}"
        );

        // Once the gateway is usable the payment goes through (a trial call of the
        // half-open breaker), so the next round starts with the breaker not open.
        app.set_gateway_faults(json!({"errorStatus": null})).await;
        app.wait_for_status(&event.order_number, "PAID").await;
        assert_ne!(
            app.metric(
                "resilience4j_circuitbreaker_state",
                &[("name", "paymentService"), ("state", "OPEN")],
            )
            .await,
            Some(1.0)
        );
    }
    assert_eq!(app.metric("payments_failed_total", &[]).await, Some(0.0));
}
