use crate::helpers::{session, spawn_app, spawn_app_with, TestApp};
use platform::outbox::Requeue;
use rdkafka::message::Headers;
use rdkafka::Message;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::time::Duration;

/// Waits until every outbox row has `status`.
async fn wait_for_outbox(app: &TestApp, status: &str, timeout: Duration) {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let statuses: Vec<String> = sqlx::query_scalar("SELECT status FROM order_created_outbox")
            .fetch_all(&app.db)
            .await
            .expect("statuses");
        if !statuses.is_empty() && statuses.iter().all(|s| s == status) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "outbox never became {status}: {statuses:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_checkouts_order_created_event_reaches_the_broker_with_the_correlation_id() {
    let app = spawn_app().await;
    let product = app.create_product("EVT-1", 149.99, 10).await;
    let sid = session();
    app.add_to_cart(&sid, &product["id"], 2).await;
    let response = app
        .request(Method::POST, "/api/v1/checkout")
        .header("Idempotency-Key", "evt")
        .header("X-Correlation-ID", "corr-checkout-42")
        .json(&crate::helpers::checkout_body(&sid))
        .send()
        .await
        .expect("checkout");
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(response.headers()["x-correlation-id"], "corr-checkout-42");
    let order: Value = response.json().await.expect("JSON");
    wait_for_outbox(&app, "PUBLISHED", Duration::from_secs(20)).await;

    let consumer = platform::testing::reader(&app.topic).expect("consumer");
    let message = tokio::time::timeout(Duration::from_secs(30), consumer.recv())
        .await
        .expect("a record within 30 s")
        .expect("a record");
    let event: Value = serde_json::from_slice(message.payload().expect("payload")).expect("JSON");
    let header = |name: &str| {
        message.headers().and_then(|headers| {
            headers
                .iter()
                .find(|h| h.key == name)
                .and_then(|h| h.value)
                .map(|v| String::from_utf8_lossy(v).into_owned())
        })
    };
    assert_eq!(
        message
            .key()
            .map(|k| String::from_utf8_lossy(k).into_owned()),
        event["orderId"].as_str().map(str::to_owned)
    );
    assert_eq!(
        header("__TypeId__").as_deref(),
        Some(events::ORDER_CREATED_TYPE_ID)
    );
    assert_eq!(header("eventType").as_deref(), Some("ORDER_CREATED"));
    assert_eq!(
        header("eventId"),
        event["eventId"].as_str().map(str::to_owned)
    );
    assert_eq!(
        header("X-Correlation-ID").as_deref(),
        Some("corr-checkout-42")
    );
    assert!(header("traceparent").is_some());

    let mut fields: Vec<&str> = event
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        [
            "cartId",
            "correlationId",
            "customer",
            "eventId",
            "eventType",
            "eventVersion",
            "items",
            "orderId",
            "orderNumber",
            "subtotal",
            "timestamp"
        ]
    );
    assert_eq!(event["eventType"], "ORDER_CREATED");
    assert_eq!(event["eventVersion"], "1.0");
    assert!(event["timestamp"].is_number());
    assert_eq!(event["correlationId"], "corr-checkout-42");
    assert_eq!(event["orderNumber"], order["orderNumber"]);
    assert_eq!(event["customer"]["shippingAddress"]["postalCode"], "94105");
    assert_eq!(event["items"][0]["productId"], product["id"]);
    assert_eq!(event["items"][0]["productSku"], "EVT-1");
    assert_eq!(event["items"][0]["quantity"], 2);
    assert_eq!(event["items"][0]["priceSnapshot"], 149.99);
    assert_eq!(event["items"][0]["subtotal"], 299.98);
    assert_eq!(event["subtotal"], 299.98);
    assert!(event["cartId"].is_string());
    // It is also parseable as the shared event type the order service consumes.
    let typed: events::OrderCreated = serde_json::from_value(event).expect("OrderCreated");
    assert_eq!(typed.items.len(), 1);
}

#[tokio::test]
async fn with_the_broker_unreachable_checkout_succeeds_and_the_outbox_fails_once_older_than_its_max_age(
) {
    let app = spawn_app_with(|s| {
        s.kafka.bootstrap_servers = "127.0.0.1:1".into();
        s.kafka.create_topics = false;
        s.delivery_timeout_ms = 300;
        s.outbox_max_age_secs = 1;
    })
    .await;
    let product = app.create_product("OFF-1", 10.0, 5).await;
    let sid = session();
    app.add_to_cart(&sid, &product["id"], 1).await;
    assert_eq!(app.checkout(&sid, "k").await.status(), StatusCode::CREATED);
    assert_eq!(
        app.get("/actuator/health/readiness").await.status(),
        StatusCode::OK
    );
    wait_for_outbox(&app, "FAILED", Duration::from_secs(30)).await;
    let (retries, error): (i32, Option<String>) =
        sqlx::query_as("SELECT retry_count, error_message FROM order_created_outbox")
            .fetch_one(&app.db)
            .await
            .expect("row");
    // By age, not count: how many attempts fit in the max age depends on the timing.
    assert!(retries >= 1, "{retries}");
    assert!(error.is_some());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while app
        .metric("outbox_failed_rows", &[("outbox", "order_created_outbox")])
        .await
        < 1.0
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "failed gauge never rose"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let db = platform::db::Db::new(app.db.clone());
    let failed_only = Requeue {
        failed_only: true,
        ..Requeue::default()
    };
    assert_eq!(
        customer_facing_service::outbox::store(&db)
            .requeue(&failed_only)
            .await
            .expect("requeue"),
        1
    );
    let (status, retries): (String, i32) =
        sqlx::query_as("SELECT status, retry_count FROM order_created_outbox")
            .fetch_one(&app.db)
            .await
            .expect("row");
    assert_eq!((status.as_str(), retries), ("PENDING", 0));
}

#[tokio::test]
async fn two_replicas_relay_a_backlog_once_each_row() {
    let first = spawn_app().await;
    let topic = first.topic.clone();
    let second = crate::helpers::spawn_app_on(first.db_options.clone(), |s| {
        s.orders_created_topic = topic.clone();
    })
    .await;
    // A backlog as a crash after commit leaves it: PENDING rows nobody is publishing.
    for i in 0..40 {
        let event_id = uuid::Uuid::new_v4();
        sqlx::query(
            "INSERT INTO order_created_outbox (id, aggregate_id, payload, topic, headers)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(uuid::Uuid::new_v4())
        .bind(uuid::Uuid::new_v4())
        .bind(serde_json::json!({"eventId": event_id, "n": i}))
        .bind(&first.topic)
        .bind(serde_json::json!({"eventId": event_id.to_string()}))
        .execute(&first.db)
        .await
        .expect("backlog row");
    }
    wait_for_outbox(&first, "PUBLISHED", Duration::from_secs(30)).await;
    let consumer = platform::testing::reader(&first.topic).expect("consumer");
    let mut seen = std::collections::HashMap::<String, usize>::new();
    loop {
        match tokio::time::timeout(Duration::from_secs(5), consumer.recv()).await {
            Ok(Ok(message)) => {
                let event: Value =
                    serde_json::from_slice(message.payload().unwrap_or_default()).expect("JSON");
                *seen.entry(event["eventId"].to_string()).or_default() += 1;
            }
            Ok(Err(e)) => panic!("consumer error: {e}"),
            Err(_) => break,
        }
    }
    assert_eq!(seen.len(), 40);
    assert!(seen.values().all(|n| *n == 1), "{seen:?}");
    drop(second);
}
