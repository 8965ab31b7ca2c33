//! The `orders.released` consumer: stock comes back once per order, through the real
//! broker, PostgreSQL and Redis, with the cache invalidated.

use crate::helpers::{spawn_app_with, TestApp};
use events::{EventTime, OrderReleased, ReleasedItem, ReleasedStatus};
use platform::kafka::{Producer, TopicSpec};
use rdkafka::message::Headers;
use rdkafka::Message;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::Duration;
use uuid::Uuid;

/// How long a test waits for the consumer (joining the group takes a few seconds).
const PATIENCE: Duration = Duration::from_secs(60);

/// An app consuming its own `orders.released` topic, created before anything is
/// published to it, and a producer to publish with.
async fn spawn_consuming_app() -> (TestApp, Producer) {
    let app = spawn_app_with(|s| {
        s.consumer.consumers_enabled = true;
        s.consumer.session_timeout_ms = 6000;
        s.consumer.record_max_attempts = 2;
    })
    .await;
    let bootstrap = platform::testing::kafka_brokers();
    platform::kafka::ensure_topics(&bootstrap, &TopicSpec::with_dlq(&app.released_topic))
        .await
        .expect("topics created");
    let producer = Producer::new(&bootstrap, Duration::from_secs(10)).expect("producer");
    (app, producer)
}

/// An OrderReleased event for a new order with `items` (`(product id, quantity)`).
fn released(status: ReleasedStatus, items: &[(&Value, i32)]) -> OrderReleased {
    OrderReleased {
        event_id: Uuid::new_v4(),
        event_type: events::ORDER_RELEASED.into(),
        event_version: events::EVENT_VERSION.into(),
        timestamp: EventTime::now(),
        correlation_id: Some("corr-released".into()),
        order_id: Uuid::new_v4(),
        order_number: "ORD-20261201-7".into(),
        order_status: status,
        reason: "Card declined by issuer (simulated)".into(),
        items: items
            .iter()
            .enumerate()
            .map(|(i, (id, quantity))| ReleasedItem {
                product_id: serde_json::from_value((*id).clone()).expect("a product id"),
                product_sku: format!("SKU-{i}"),
                quantity: *quantity,
            })
            .collect(),
    }
}

/// Publishes `event` as the order service's outbox does: keyed by order id, with the
/// type headers.
async fn publish(app: &TestApp, producer: &Producer, event: &OrderReleased) {
    let payload = serde_json::to_vec(event).expect("JSON");
    let event_id = event.event_id.to_string();
    producer
        .send(
            &app.released_topic,
            Some(&event.order_id.to_string()),
            &payload,
            &[
                (events::TYPE_ID_HEADER, events::ORDER_RELEASED_TYPE_ID),
                ("eventId", &event_id),
                ("eventType", events::ORDER_RELEASED),
            ],
        )
        .await
        .expect("published");
}

/// Waits until the consumer has finished `n` records of the app's topic with `result`
/// (`success` or `dead_lettered`): counted only once the handler is done, cache
/// invalidation included.
async fn wait_for_consumed(app: &TestApp, result: &str, n: f64) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let consumed = app
            .metric(
                "kafka_consumer_records_consumed_total",
                &[("topic", &app.released_topic), ("result", result)],
            )
            .await;
        if consumed >= n {
            assert_eq!(consumed, n, "more records than published were {result}");
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{n} records never {result}: {consumed}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The order's `stock_returns` row: `(event_id, order_status, reason, items)`.
async fn stock_return(app: &TestApp, order_id: Uuid) -> (Uuid, String, Option<String>, Value) {
    sqlx::query_as(
        "SELECT event_id, order_status, reason, items FROM stock_returns WHERE order_id = $1",
    )
    .bind(order_id)
    .fetch_one(&app.db)
    .await
    .expect("the order's stock_returns row")
}

#[tokio::test]
async fn a_released_orders_stock_comes_back_and_the_product_shows_it_at_once() {
    let (app, producer) = spawn_consuming_app().await;
    let engine = app.create_product("REL-ENGINE", 99.0, 10).await;
    let wheel = app.create_product("REL-WHEEL", 15.0, 5).await;
    let engine_path = format!("/api/v1/products/{}", engine["id"].as_str().expect("id"));
    // Read twice, so the product sits in Redis and in the near cache.
    for _ in 0..2 {
        assert_eq!(app.get_json(&engine_path).await["inventoryQuantity"], 10);
    }

    let event = released(
        ReleasedStatus::Failed,
        &[(&engine["id"], 3), (&wheel["id"], 2)],
    );
    publish(&app, &producer, &event).await;
    wait_for_consumed(&app, "success", 1.0).await;

    assert_eq!(app.get_json(&engine_path).await["inventoryQuantity"], 13);
    assert_eq!(app.stock(&wheel["id"]).await, 7);
    let (event_id, status, reason, items) = stock_return(&app, event.order_id).await;
    assert_eq!(event_id, event.event_id);
    assert_eq!(status, "FAILED");
    assert_eq!(
        reason.as_deref(),
        Some("Card declined by issuer (simulated)")
    );
    assert_eq!(
        items,
        json!([
            {"productId": engine["id"], "productSku": "SKU-0", "quantity": 3, "applied": true},
            {"productId": wheel["id"], "productSku": "SKU-1", "quantity": 2, "applied": true},
        ])
    );
    assert_eq!(
        app.metric("stock_returns_total", &[("status", "FAILED")])
            .await,
        1.0
    );
    assert_eq!(
        app.metric("stock_returns_total", &[("status", "CANCELLED")])
            .await,
        0.0
    );
    assert_eq!(app.metric("stock_returned_units_total", &[]).await, 5.0);
    assert_eq!(app.metric("stock_return_duplicates_total", &[]).await, 0.0);
}

#[tokio::test]
async fn an_orders_event_delivered_twice_returns_its_stock_once_whatever_its_event_id() {
    let (app, producer) = spawn_consuming_app().await;
    let product = app.create_product("REL-TWICE", 20.0, 10).await;
    let first = released(ReleasedStatus::Cancelled, &[(&product["id"], 4)]);
    let mut resent = first.clone();
    resent.event_id = Uuid::new_v4();
    publish(&app, &producer, &first).await;
    publish(&app, &producer, &first).await;
    publish(&app, &producer, &resent).await;
    wait_for_consumed(&app, "success", 3.0).await;

    assert_eq!(app.stock(&product["id"]).await, 14);
    assert_eq!(app.count("stock_returns").await, 1);
    let (event_id, status, _, _) = stock_return(&app, first.order_id).await;
    assert_eq!(
        event_id, first.event_id,
        "the first event is the one recorded"
    );
    assert_eq!(status, "CANCELLED");
    assert_eq!(
        app.metric("stock_returns_total", &[("status", "CANCELLED")])
            .await,
        1.0
    );
    assert_eq!(app.metric("stock_returned_units_total", &[]).await, 4.0);
    assert_eq!(app.metric("stock_return_duplicates_total", &[]).await, 2.0);
    let path = format!("/api/v1/products/{}", product["id"].as_str().expect("id"));
    assert_eq!(app.get_json(&path).await["inventoryQuantity"], 14);
}

#[tokio::test]
async fn undecodable_and_invalid_records_go_to_the_dead_letter_topic_and_the_consumer_moves_on() {
    let (app, producer) = spawn_consuming_app().await;
    let product = app.create_product("REL-DLQ", 20.0, 1).await;
    producer
        .send(
            &app.released_topic,
            Some("garbage-key"),
            b"{this is not json",
            &[("X-Correlation-ID", "corr-garbage")],
        )
        .await
        .expect("published");
    let mut invalid = released(ReleasedStatus::Failed, &[(&product["id"], 1)]);
    invalid.items[0].quantity = 0;
    publish(&app, &producer, &invalid).await;
    let good = released(ReleasedStatus::Failed, &[(&product["id"], 2)]);
    publish(&app, &producer, &good).await;
    wait_for_consumed(&app, "success", 1.0).await;
    wait_for_consumed(&app, "dead_lettered", 2.0).await;
    assert_eq!(app.stock(&product["id"]).await, 3);
    assert_eq!(app.count("stock_returns").await, 1);

    let dlq = platform::kafka::dlq_topic(&app.released_topic);
    assert_eq!(dlq, format!("{}.dlq", app.released_topic));
    let consumer = platform::testing::reader(&dlq).expect("DLQ reader");
    let mut dead: HashMap<String, HashMap<String, String>> = HashMap::new();
    while dead.len() < 2 {
        let message = tokio::time::timeout(Duration::from_secs(30), consumer.recv())
            .await
            .expect("a dead letter within 30 s")
            .expect("a record");
        let key = String::from_utf8_lossy(message.key().unwrap_or_default()).into_owned();
        let headers = message
            .headers()
            .map(|h| {
                h.iter()
                    .filter_map(|h| {
                        Some((h.key.to_owned(), String::from_utf8(h.value?.to_vec()).ok()?))
                    })
                    .collect()
            })
            .unwrap_or_default();
        dead.insert(key, headers);
    }
    let garbage = &dead["garbage-key"];
    assert_eq!(
        garbage["kafka_dlt-exception-fqcn"],
        "DeserializationException"
    );
    assert_eq!(garbage["kafka_dlt-original-topic"], app.released_topic);
    assert_eq!(garbage["X-Correlation-ID"], "corr-garbage");
    let invalid_headers = &dead[&invalid.order_id.to_string()];
    assert_eq!(
        invalid_headers["kafka_dlt-exception-fqcn"],
        "ValidationException"
    );
    assert!(invalid_headers["kafka_dlt-exception-message"].contains("items[0].quantity"));
    assert_eq!(
        app.metric("dlq_messages_total", &[("topic", &dlq)]).await,
        2.0
    );
}

#[tokio::test]
async fn a_line_whose_product_was_deleted_is_recorded_as_not_applied_and_the_others_return() {
    let (app, producer) = spawn_consuming_app().await;
    let kept = app.create_product("REL-KEPT", 20.0, 1).await;
    let gone = app.create_product("REL-GONE", 20.0, 1).await;
    let gone_id: Uuid = serde_json::from_value(gone["id"].clone()).expect("id");
    sqlx::query("DELETE FROM products WHERE id = $1")
        .bind(gone_id)
        .execute(&app.db)
        .await
        .expect("product deleted");
    let event = released(
        ReleasedStatus::Cancelled,
        &[(&kept["id"], 2), (&gone["id"], 3)],
    );
    publish(&app, &producer, &event).await;
    wait_for_consumed(&app, "success", 1.0).await;

    assert_eq!(app.stock(&kept["id"]).await, 3);
    let (_, _, _, items) = stock_return(&app, event.order_id).await;
    assert_eq!(items[0]["applied"], true);
    assert_eq!(items[1]["productId"], gone["id"]);
    assert_eq!(items[1]["quantity"], 3);
    assert_eq!(items[1]["applied"], false);
    assert_eq!(app.metric("stock_returned_units_total", &[]).await, 2.0);
    assert_eq!(
        app.metric("stock_return_lines_not_applied_total", &[])
            .await,
        1.0
    );
}

#[tokio::test]
async fn the_consumers_lag_is_reported_under_its_group() {
    let (app, producer) = spawn_consuming_app().await;
    let product = app.create_product("REL-LAG", 20.0, 1).await;
    publish(
        &app,
        &producer,
        &released(ReleasedStatus::Failed, &[(&product["id"], 1)]),
    )
    .await;
    wait_for_consumed(&app, "success", 1.0).await;
    let group = format!("group=\"{}\"", app.consumer_group);
    let topic = format!("topic=\"{}\"", app.released_topic);
    let deadline = tokio::time::Instant::now() + PATIENCE;
    // librdkafka reports statistics every 2 s.
    while !app.metrics().await.lines().any(|l| {
        l.starts_with("kafka_consumer_records_lag_max{") && l.contains(&group) && l.contains(&topic)
    }) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no lag series for the group"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test]
async fn with_the_broker_unreachable_the_consumer_leaves_the_service_ready() {
    let app = spawn_app_with(|s| {
        s.kafka.bootstrap_servers = "127.0.0.1:1".into();
        s.kafka.create_topics = false;
        s.consumer.consumers_enabled = true;
    })
    .await;
    // Long enough for the consumer to have tried and failed to reach the broker.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        app.get("/actuator/health/readiness").await.status(),
        StatusCode::OK
    );
}
