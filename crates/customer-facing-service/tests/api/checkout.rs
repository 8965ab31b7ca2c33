use crate::helpers::{assert_problem, checkout_body, session, spawn_app, spawn_app_with, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// A product with `stock` units and a cart holding `quantity` of it.
async fn cart_with(app: &TestApp, stock: i64, quantity: i64) -> (String, Value) {
    let product = app
        .create_product(
            &format!("SKU-{}", uuid::Uuid::new_v4().simple()).to_uppercase(),
            25.0,
            stock,
        )
        .await;
    let sid = session();
    let added = app.add_to_cart(&sid, &product["id"], quantity).await;
    assert_eq!(added.status(), StatusCode::OK);
    (sid, product)
}

fn is_order_number(value: &Value) -> bool {
    let Some(text) = value.as_str() else {
        return false;
    };
    let parts: Vec<&str> = text.split('-').collect();
    parts.len() == 3
        && parts[0] == "ORD"
        && parts[1].len() == 8
        && parts[1].bytes().all(|b| b.is_ascii_digit())
        && !parts[2].is_empty()
        && !parts[2].starts_with('0')
        && parts[2].bytes().all(|b| b.is_ascii_digit())
}

#[tokio::test]
async fn a_checkout_places_the_order_takes_the_stock_and_deletes_the_cart() {
    let app = spawn_app().await;
    let (sid, product) = cart_with(&app, 10, 3).await;
    let response = app.checkout(&sid, "key-1").await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(response.headers()["content-type"], "application/json");
    let body: Value = response.json().await.expect("JSON");
    assert!(is_order_number(&body["orderNumber"]), "{body}");
    assert_eq!(body["status"], "PENDING");
    assert_eq!(
        body["message"],
        "Order submitted successfully. You will receive a confirmation email at ada@example.com"
    );
    assert_eq!(app.stock(&product["id"]).await, 7);
    assert_eq!(app.count("order_created_outbox").await, 1);
    let cart = app.get_json(&format!("/api/v1/carts/{sid}")).await;
    assert_eq!(cart["items"], json!([]));
    // The runbook's query (section 5.3) runs as written.
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT idempotency_key, status, created_at
         FROM checkout_idempotency
         ORDER BY created_at DESC LIMIT 10",
    )
    .fetch_all(&app.db)
    .await
    .map(|rows: Vec<(String, String, chrono::NaiveDateTime)>| {
        rows.into_iter().map(|(k, s, _)| (k, s)).collect()
    })
    .expect("runbook query");
    assert_eq!(rows, vec![("key-1".to_owned(), "COMPLETED".to_owned())]);
    assert_eq!(app.metric("checkout_attempt_total", &[]).await, 1.0);
    assert_eq!(app.metric("checkout_success_total", &[]).await, 1.0);
    assert_eq!(
        app.metric("checkout_duration_seconds_count", &[]).await,
        1.0
    );
}

#[tokio::test]
async fn order_numbers_count_up_within_the_day() {
    let app = spawn_app().await;
    let mut numbers = Vec::new();
    for key in ["a", "b"] {
        let (sid, _) = cart_with(&app, 5, 1).await;
        let body: Value = app.checkout(&sid, key).await.json().await.expect("JSON");
        numbers.push(body["orderNumber"].as_str().expect("number").to_owned());
    }
    assert!(numbers[0].ends_with("-1"), "{numbers:?}");
    assert!(numbers[1].ends_with("-2"), "{numbers:?}");
    assert_eq!(numbers[0][..12], numbers[1][..12]);
}

#[tokio::test]
async fn a_replayed_checkout_returns_a_byte_identical_body_and_changes_nothing() {
    let app = spawn_app().await;
    let (sid, product) = cart_with(&app, 10, 2).await;
    let first = app.checkout(&sid, "replay-key").await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let first = first.bytes().await.expect("body");
    let second = app.checkout(&sid, "replay-key").await;
    assert_eq!(second.status(), StatusCode::CREATED);
    assert_eq!(second.bytes().await.expect("body"), first);
    assert_eq!(app.stock(&product["id"]).await, 8);
    assert_eq!(app.count("order_created_outbox").await, 1);
    assert_eq!(app.metric("checkout_attempt_total", &[]).await, 1.0);
}

#[tokio::test]
async fn the_same_key_with_another_body_is_a_409_conflict() {
    let app = spawn_app().await;
    let (sid, _) = cart_with(&app, 10, 1).await;
    assert_eq!(app.checkout(&sid, "k").await.status(), StatusCode::CREATED);
    let mut other = checkout_body(&sid);
    other["customerInfo"]["name"] = json!("Grace Hopper");
    let response = app
        .request(Method::POST, "/api/v1/checkout")
        .header("Idempotency-Key", "k")
        .json(&other)
        .send()
        .await
        .expect("checkout");
    let body = assert_problem(response, StatusCode::CONFLICT).await;
    assert_eq!(
        body["detail"],
        "Idempotency key already used with different request body. Please use a new idempotency key or retry with the same request."
    );
    assert_eq!(app.count("order_created_outbox").await, 1);
}

#[tokio::test]
async fn whitespace_key_order_and_unknown_fields_do_not_change_the_fingerprint() {
    let app = spawn_app().await;
    let (sid, _) = cart_with(&app, 10, 1).await;
    let first = app.checkout(&sid, "k").await.bytes().await.expect("body");
    let reordered = format!(
        r#"{{ "customerInfo": {{"shippingAddress": {{"country": "USA", "postalCode": "94105",
            "state": "CA", "city": "San Francisco", "street": "1 Market St"}},
            "phone": "+14155551234", "email": "ada@example.com", "name": "Ada Lovelace"}},
            "extra": true, "sessionId": "{sid}" }}"#
    );
    let response = app
        .request(Method::POST, "/api/v1/checkout")
        .header("Idempotency-Key", "k")
        .header("content-type", "application/json")
        .body(reordered)
        .send()
        .await
        .expect("checkout");
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(response.bytes().await.expect("body"), first);
}

#[tokio::test]
async fn twenty_parallel_requests_with_one_key_create_one_order() {
    let app = spawn_app().await;
    let (sid, product) = cart_with(&app, 50, 2).await;
    let responses = futures::future::join_all((0..20).map(|_| async {
        let response = app.checkout(&sid, "one-key").await;
        let status = response.status();
        (status, response.bytes().await.expect("body"))
    }))
    .await;
    let created: Vec<_> = responses
        .iter()
        .filter(|(s, _)| *s == StatusCode::CREATED)
        .collect();
    assert!(!created.is_empty());
    assert!(
        created.windows(2).all(|w| w[0].1 == w[1].1),
        "replays differ"
    );
    for (status, body) in &responses {
        assert!(
            *status == StatusCode::CREATED || *status == StatusCode::CONFLICT,
            "{status}: {body:?}"
        );
    }
    assert_eq!(app.count("order_created_outbox").await, 1);
    assert_eq!(app.stock(&product["id"]).await, 48);
}

#[tokio::test]
async fn thirty_parallel_checkouts_for_ten_units_create_ten_orders() {
    let app = spawn_app().await;
    let product = app.create_product("LAST-10", 5.0, 10).await;
    let mut sessions = Vec::new();
    for _ in 0..30 {
        let sid = session();
        assert_eq!(
            app.add_to_cart(&sid, &product["id"], 1).await.status(),
            StatusCode::OK
        );
        sessions.push(sid);
    }
    let responses = futures::future::join_all(sessions.iter().enumerate().map(|(i, sid)| {
        let app = &app;
        async move {
            let response = app.checkout(sid, &format!("k-{i}")).await;
            let status = response.status();
            (status, response.json::<Value>().await.expect("JSON"))
        }
    }))
    .await;
    let created = responses
        .iter()
        .filter(|(s, _)| *s == StatusCode::CREATED)
        .count();
    assert_eq!(created, 10, "{responses:?}");
    let id = product["id"].as_str().expect("id");
    for (status, body) in responses.iter().filter(|(s, _)| *s != StatusCode::CREATED) {
        assert_eq!(*status, StatusCode::CONFLICT, "{body}");
        assert_eq!(body["orderNumber"], Value::Null);
        assert_eq!(body["status"], "FAILED");
        assert_eq!(
            body["message"],
            format!("Insufficient inventory for product {id}. Requested: 1, Available: 0")
        );
    }
    assert_eq!(app.stock(&product["id"]).await, 0);
    assert_eq!(app.count("order_created_outbox").await, 10);
    assert_eq!(app.metric("checkout_failures_total", &[]).await, 20.0);
}

#[tokio::test]
async fn insufficient_stock_at_checkout_is_the_originals_409_body_and_rolls_back() {
    let app = spawn_app().await;
    let (sid, product) = cart_with(&app, 5, 4).await;
    let path = format!("/api/v1/products/{}", product["id"].as_str().expect("id"));
    app.as_manager(Method::PUT, &path, Some(json!({"inventoryQuantity": 2})))
        .await;
    let response = app.checkout(&sid, "k").await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    assert_eq!(response.headers()["content-type"], "application/json");
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(
        body,
        json!({"orderNumber": null, "status": "FAILED",
               "message": format!("Insufficient inventory for product {}. Requested: 4, Available: 2",
                                  product["id"].as_str().expect("id"))})
    );
    assert_eq!(app.stock(&product["id"]).await, 2);
    assert_eq!(app.count("checkout_idempotency").await, 0);
    assert_eq!(app.count("order_number_sequence").await, 0);
    // The key was rolled back with the rest: after a restock the same key works.
    app.as_manager(Method::PUT, &path, Some(json!({"inventoryQuantity": 4})))
        .await;
    assert_eq!(app.checkout(&sid, "k").await.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn checking_out_an_empty_cart_is_a_409_conflict() {
    let app = spawn_app().await;
    let response = app.checkout(&session(), "k").await;
    let body = assert_problem(response, StatusCode::CONFLICT).await;
    assert_eq!(body["detail"], "Cannot checkout with empty cart");
    assert_eq!(app.metric("checkout_failures_total", &[]).await, 1.0);
}

#[tokio::test]
async fn the_idempotency_key_is_required_and_bounded() {
    let app = spawn_app().await;
    let (sid, product) = cart_with(&app, 5, 1).await;
    let missing = app
        .request(Method::POST, "/api/v1/checkout")
        .json(&checkout_body(&sid))
        .send()
        .await
        .expect("checkout");
    let body = assert_problem(missing, StatusCode::BAD_REQUEST).await;
    assert_eq!(body["detail"], "Missing required header 'Idempotency-Key'");
    let long = app.checkout(&sid, &"k".repeat(256)).await;
    assert_problem(long, StatusCode::BAD_REQUEST).await;
    assert_eq!(app.stock(&product["id"]).await, 5);
    assert_eq!(app.count("checkout_idempotency").await, 0);
}

#[tokio::test]
async fn a_duplicate_still_in_flight_gets_409_and_no_second_order() {
    let app = spawn_app().await;
    let (sid, product) = cart_with(&app, 5, 1).await;
    // Another request holds the key: its claim is not committed yet.
    let mut first = app.db.begin().await.expect("tx");
    sqlx::query(
        "INSERT INTO checkout_idempotency (idempotency_key, request_fingerprint, status, expires_at)
         VALUES ('busy', 'f', 'IN_PROGRESS', (now() AT TIME ZONE 'utc') + interval '1 day')",
    )
    .execute(&mut *first)
    .await
    .expect("claim");
    let response = app.checkout(&sid, "busy").await;
    let body = assert_problem(response, StatusCode::CONFLICT).await;
    assert!(body["detail"]
        .as_str()
        .is_some_and(|d| d.contains("still being processed")));
    first.rollback().await.expect("rollback");
    assert_eq!(app.stock(&product["id"]).await, 5);
    assert_eq!(app.count("order_created_outbox").await, 0);
}

#[tokio::test]
async fn an_expired_key_is_replaced_by_a_new_checkout() {
    let app = spawn_app().await;
    let (sid, _) = cart_with(&app, 5, 1).await;
    sqlx::query(
        "INSERT INTO checkout_idempotency (idempotency_key, request_fingerprint, status,
             response_status, response_body, created_at, expires_at)
         VALUES ('old', 'other', 'COMPLETED', 201, '{}',
                 (now() AT TIME ZONE 'utc') - interval '2 days', (now() AT TIME ZONE 'utc') - interval '1 day')",
    )
    .execute(&app.db)
    .await
    .expect("insert");
    let response = app.checkout(&sid, "old").await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let status: String =
        sqlx::query_scalar("SELECT status FROM checkout_idempotency WHERE idempotency_key = 'old'")
            .fetch_one(&app.db)
            .await
            .expect("row");
    assert_eq!(status, "COMPLETED");
}

#[tokio::test]
async fn with_redis_unreachable_browsing_and_checkout_still_work() {
    let app = spawn_app_with(|s| s.redis.port = 1).await;
    let (sid, product) = cart_with(&app, 5, 2).await;
    let cart = app.get_json(&format!("/api/v1/carts/{sid}")).await;
    assert_eq!(cart["items"][0]["quantity"], 2);
    assert_eq!(app.get_json("/api/v1/products").await["totalElements"], 1);
    assert_eq!(app.checkout(&sid, "k").await.status(), StatusCode::CREATED);
    assert_eq!(app.stock(&product["id"]).await, 3);
    let health: Value = app.get_json("/actuator/health").await;
    assert_eq!(health["components"]["redis"]["status"], "DOWN");
    assert_eq!(
        app.get("/actuator/health/readiness").await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn checkout_after_a_price_change_is_refused_naming_the_line_and_the_cart_shows_todays_price()
{
    let app = spawn_app().await;
    let (sid, product) = cart_with(&app, 10, 2).await;
    let id = product["id"].as_str().expect("id");
    let updated = app
        .as_manager(
            Method::PUT,
            &format!("/api/v1/products/{id}"),
            Some(json!({"price": 30.0})),
        )
        .await;
    assert_eq!(updated.status(), StatusCode::OK);

    let problem = assert_problem(app.checkout(&sid, "reprice-1").await, StatusCode::CONFLICT).await;
    assert!(
        problem["type"]
            .as_str()
            .expect("type")
            .ends_with("cart-changed"),
        "{problem}"
    );
    let line = problem["fieldErrors"][format!("items[{id}]")]
        .as_str()
        .expect("the changed line is named");
    assert!(
        line.contains("now costs 30") && line.contains("was 25"),
        "{line}"
    );
    assert_eq!(app.stock(&product["id"]).await, 10, "nothing was taken");
    assert_eq!(app.count("order_created_outbox").await, 0);

    let cart = app.get_json(&format!("/api/v1/carts/{sid}")).await;
    assert_eq!(cart["items"][0]["priceSnapshot"], json!(30.0), "{cart}");
    assert_eq!(cart["subtotal"], json!(60.0), "{cart}");

    // Once the customer has seen the new price, the same checkout goes through at it.
    let response = app.checkout(&sid, "reprice-2").await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let outbox: (serde_json::Value,) = sqlx::query_as("SELECT payload FROM order_created_outbox")
        .fetch_one(&app.db)
        .await
        .expect("outbox row");
    assert_eq!(outbox.0["subtotal"], json!(60.0));
}

#[tokio::test]
async fn checkout_of_a_product_no_longer_sold_is_refused_and_takes_no_stock() {
    let app = spawn_app().await;
    let (sid, product) = cart_with(&app, 10, 1).await;
    let id = product["id"].as_str().expect("id");
    let deleted = app
        .as_manager(Method::DELETE, &format!("/api/v1/products/{id}"), None)
        .await;
    assert!(deleted.status().is_success(), "{}", deleted.status());

    let problem = assert_problem(app.checkout(&sid, "gone-1").await, StatusCode::CONFLICT).await;
    let line = problem["fieldErrors"][format!("items[{id}]")]
        .as_str()
        .expect("the line is named");
    assert!(line.contains("no longer sold"), "{line}");
    assert_eq!(app.count("order_created_outbox").await, 0);
    assert_eq!(app.stock(&product["id"]).await, 10);
}
