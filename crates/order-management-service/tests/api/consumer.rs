use crate::helpers::{order_created, spawn_app, wait_until, PATIENCE};
use rdkafka::message::{Headers, Message};
use serde_json::Value;
use std::collections::HashMap;
use std::time::Duration;

#[tokio::test]
async fn an_order_created_event_becomes_a_paid_order_readable_by_number() {
    let app = spawn_app().await;
    let event = order_created("ada@example.com");
    app.publish(&event).await;

    let order = app.wait_for_status(&event.order_number, "PAID").await;
    assert_eq!(order["paymentStatus"], "SUCCESS");
    assert_eq!(order["orderNumber"], event.order_number.as_str());
    assert_eq!(order["subtotal"], 329.97);
    // Anonymous: the customer is masked; the rest is the order as the client reads it.
    assert_eq!(order["customerInfo"]["email"], "a***@example.com");
    let owner: Value = app
        .client
        .get(format!(
            "{}/api/v1/orders/{}",
            app.address, event.order_number
        ))
        .header("X-Customer-Email", "ADA@example.com")
        .send()
        .await
        .expect("lookup")
        .json()
        .await
        .expect("JSON");
    assert_eq!(owner["customerInfo"]["email"], "ada@example.com");
    assert_eq!(
        owner["customerInfo"]["shippingAddress"]["postalCode"],
        "N1 9GU"
    );
    assert_eq!(order["completedAt"], Value::Null);
    let items = order["items"].as_array().expect("items");
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["productSku"], "SKU-LAPTOP");
    assert_eq!(items[0]["subtotal"], 299.98);
    assert!(!order["createdAt"]
        .as_str()
        .expect("createdAt")
        .ends_with('Z'));

    let ledger = app.ledger(event.order_id).await;
    assert_eq!(ledger.len(), 1);
    assert_eq!(ledger[0]["chargeCount"], 1);
    assert_eq!(ledger[0]["status"], "SUCCEEDED");

    assert_eq!(app.metric("orders_created_total", &[]).await, Some(1.0));
    assert_eq!(app.metric("payments_attempted_total", &[]).await, Some(1.0));
    assert_eq!(app.metric("payments_completed_total", &[]).await, Some(1.0));
    assert_eq!(app.metric("payments_success_total", &[]).await, Some(1.0));
    assert!(
        app.metric("order_processing_duration_seconds_count", &[])
            .await
            >= Some(1.0)
    );
    assert_eq!(
        app.metric(
            "resilience4j_circuitbreaker_state",
            &[("name", "paymentService"), ("state", "CLOSED")]
        )
        .await,
        Some(1.0)
    );
    assert!(app
        .metric("hikaricp_connections_max", &[("pool", "order_db")])
        .await
        .is_some());
    let published = wait_until(PATIENCE, || async {
        app.metric(
            "outbox_published_total",
            &[("outbox", "payment_completed_outbox")],
        )
        .await
            == Some(1.0)
    })
    .await;
    assert!(published, "the PaymentCompleted outbox row was published");
}

#[tokio::test]
async fn the_same_event_delivered_twice_creates_one_order_and_one_charge() {
    let app = spawn_app().await;
    let event = order_created("twice@example.com");
    app.publish(&event).await;
    app.publish(&event).await;
    app.wait_for_status(&event.order_number, "PAID").await;

    // A re-sent checkout (same orderId, new event id) does not create a second order either.
    let mut resent = event.clone();
    resent.event_id = uuid::Uuid::new_v4();
    app.publish(&resent).await;
    let marker = order_created("marker@example.com");
    app.publish(&marker).await;
    app.wait_for_status(&marker.order_number, "PAID").await;

    assert_eq!(app.order_count().await, 2);
    let processed: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM processed_events WHERE event_id = $1 AND order_id IS NOT NULL",
    )
    .bind(event.event_id)
    .fetch_one(&app.db)
    .await
    .expect("count");
    assert_eq!(processed, 1);
    let ledger = app.ledger(event.order_id).await;
    assert_eq!(ledger.len(), 1);
    assert_eq!(ledger[0]["chargeCount"], 1);
    assert_eq!(app.metric("orders_created_total", &[]).await, Some(2.0));
}

#[tokio::test]
async fn a_garbage_record_is_dead_lettered_with_its_headers_and_the_next_record_is_processed() {
    let app = spawn_app().await;
    app.publish_raw(
        "garbage-key",
        b"{this is not json",
        &[("X-Correlation-ID", "corr-garbage")],
    )
    .await;
    let mut invalid = order_created("invalid@example.com");
    invalid.items.clear();
    app.publish(&invalid).await;
    let good = order_created("good@example.com");
    app.publish(&good).await;
    app.wait_for_status(&good.order_number, "PAID").await;
    assert_eq!(app.get_order(&invalid.order_number).await.0, 404);

    let dlq = platform::kafka::dlq_topic(&app.orders_topic);
    let consumer = platform::testing::reader(&dlq).expect("dlq consumer");
    let mut dead = Vec::new();
    while dead.len() < 2 {
        let message = tokio::time::timeout(Duration::from_secs(30), consumer.recv())
            .await
            .expect("a dead letter arrives")
            .expect("record");
        let headers: HashMap<String, String> = message
            .headers()
            .map(|h| {
                h.iter()
                    .filter_map(|h| {
                        Some((h.key.to_owned(), String::from_utf8(h.value?.to_vec()).ok()?))
                    })
                    .collect()
            })
            .unwrap_or_default();
        dead.push((
            message.key().map(<[u8]>::to_vec),
            message.payload().map(<[u8]>::to_vec),
            headers,
        ));
    }
    // The two records sit on different partitions, so their dead letters come in any order.
    dead.sort_by_key(|(key, _, _)| key.as_deref() != Some(&b"garbage-key"[..]));
    let (key, payload, headers) = &dead[0];
    assert_eq!(key.as_deref(), Some(&b"garbage-key"[..]));
    assert_eq!(payload.as_deref(), Some(&b"{this is not json"[..]));
    assert_eq!(headers["kafka_dlt-original-topic"], app.orders_topic);
    assert!(headers.contains_key("kafka_dlt-original-partition"));
    assert!(headers.contains_key("kafka_dlt-original-offset"));
    assert_eq!(
        headers["kafka_dlt-exception-fqcn"],
        "DeserializationException"
    );
    assert!(!headers["kafka_dlt-exception-message"].is_empty());
    assert_eq!(headers["X-Correlation-ID"], "corr-garbage");
    let (key, _, headers) = &dead[1];
    assert_eq!(
        key.as_deref(),
        Some(invalid.order_id.to_string().as_bytes())
    );
    assert_eq!(headers["kafka_dlt-exception-fqcn"], "ValidationException");
    assert!(headers["kafka_dlt-exception-message"].contains("items"));
    assert_eq!(
        app.metric("dlq_messages_total", &[("topic", dlq.as_str())])
            .await,
        Some(2.0)
    );
}

#[tokio::test]
async fn a_payment_completed_for_an_unknown_order_is_dead_lettered() {
    let app = spawn_app().await;
    let event = events::PaymentCompleted {
        event_id: uuid::Uuid::new_v4(),
        event_type: events::PAYMENT_COMPLETED.to_owned(),
        event_version: events::EVENT_VERSION.to_owned(),
        timestamp: events::EventTime::now(),
        correlation_id: None,
        order_id: uuid::Uuid::new_v4(),
        order_number: "ORD-GHOST".into(),
        payment_transaction_id: uuid::Uuid::new_v4(),
        status: events::PaymentOutcome::Success,
        amount: rust_decimal::Decimal::new(100, 2),
        payment_method: "MOCK".into(),
        external_transaction_id: Some("pgw_tx_x".into()),
        failure_reason: None,
    };
    let payload = serde_json::to_vec(&event).expect("json");
    app.producer
        .send(&app.payments_topic, Some("ghost"), &payload, &[])
        .await
        .expect("produced");
    let dlq = platform::kafka::dlq_topic(&app.payments_topic);
    let dead_lettered = wait_until(PATIENCE, || async {
        app.metric("dlq_messages_total", &[("topic", dlq.as_str())])
            .await
            == Some(1.0)
    })
    .await;
    assert!(
        dead_lettered,
        "the PaymentCompleted of an unknown order was dead-lettered"
    );
}

#[tokio::test]
async fn a_stranger_sees_the_order_with_the_customer_masked_and_a_manager_sees_everything() {
    let app = spawn_app().await;
    let event = order_created("grace@example.com");
    app.publish(&event).await;
    let anonymous = app.wait_for_status(&event.order_number, "PAID").await;
    let customer = &anonymous["customerInfo"];
    assert_eq!(customer["email"], "g***@example.com");
    assert!(customer["name"].as_str().expect("name").ends_with("***"));
    assert!(customer["phone"]
        .as_str()
        .expect("phone")
        .starts_with("***"));
    assert_eq!(customer["shippingAddress"]["street"], "***");
    assert_eq!(customer["shippingAddress"]["postalCode"], "***");
    assert_eq!(anonymous["items"].as_array().map(Vec::len), Some(2));
    assert_eq!(anonymous["subtotal"], 329.97);

    let wrong: Value = app
        .client
        .get(format!(
            "{}/api/v1/orders/{}",
            app.address, event.order_number
        ))
        .header("X-Customer-Email", "someone-else@example.com")
        .send()
        .await
        .expect("lookup")
        .json()
        .await
        .expect("JSON");
    assert_eq!(wrong["customerInfo"]["email"], "g***@example.com");

    let manager: Value = app
        .client
        .get(format!(
            "{}/api/v1/orders/{}",
            app.address, event.order_number
        ))
        .bearer_auth(app.manager_token())
        .send()
        .await
        .expect("lookup")
        .json()
        .await
        .expect("JSON");
    assert_eq!(manager["customerInfo"]["email"], "grace@example.com");
    assert_eq!(
        manager["customerInfo"]["shippingAddress"]["postalCode"],
        "N1 9GU"
    );
}
