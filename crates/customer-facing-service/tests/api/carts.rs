use crate::helpers::{assert_problem, session, spawn_app, spawn_app_with};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

#[tokio::test]
async fn a_new_session_gets_an_empty_cart_that_expires_in_thirty_minutes() {
    let app = spawn_app().await;
    let sid = session();
    let cart = app.get_json(&format!("/api/v1/carts/{sid}")).await;
    assert_eq!(cart["sessionId"], sid.as_str());
    assert_eq!(cart["items"], json!([]));
    assert_eq!(cart["subtotal"], 0.0);
    let parse = |field: &str| {
        chrono::NaiveDateTime::parse_from_str(
            cart[field].as_str().expect("time"),
            "%Y-%m-%dT%H:%M:%S%.f",
        )
        .expect("local date-time")
    };
    assert_eq!((parse("expiresAt") - parse("createdAt")).num_minutes(), 30);
    let again = app.get_json(&format!("/api/v1/carts/{sid}")).await;
    assert_eq!(again["id"], cart["id"]);
}

#[tokio::test]
async fn adding_a_product_twice_merges_the_line_and_freezes_the_first_price() {
    let app = spawn_app().await;
    let product = app.create_product("SKU-1", 10.0, 10).await;
    let second = app
        .create_product_in(&product["categoryId"], "SKU-2", 5.5, 10)
        .await;
    let sid = session();
    let first = app.add_to_cart(&sid, &product["id"], 2).await;
    assert_eq!(first.status(), StatusCode::OK);
    let path = format!("/api/v1/products/{}", product["id"].as_str().expect("id"));
    let renamed = app
        .as_manager(
            Method::PUT,
            &path,
            Some(json!({"price": 99.0, "name": "Renamed"})),
        )
        .await;
    assert_eq!(renamed.status(), StatusCode::OK);
    app.add_to_cart(&sid, &second["id"], 1).await;
    let cart: Value = app
        .add_to_cart(&sid, &product["id"], 3)
        .await
        .json()
        .await
        .expect("JSON");
    let items = cart["items"].as_array().expect("items");
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["productId"], product["id"]);
    assert_eq!(items[0]["quantity"], 5);
    assert_eq!(items[0]["priceSnapshot"], 10.0);
    assert_eq!(items[0]["subtotal"], 50.0);
    assert_eq!(items[0]["productName"], "Renamed");
    assert_eq!(items[0]["productSku"], "SKU-1");
    assert_eq!(items[1]["productId"], second["id"]);
    assert_eq!(cart["subtotal"], 55.5);
    let read = app.get_json(&format!("/api/v1/carts/{sid}")).await;
    assert_eq!(read["items"], cart["items"]);
    assert_eq!(app.metric("cart_items_added_total", &[]).await, 3.0);
}

#[tokio::test]
async fn stock_is_checked_on_add_including_the_merged_quantity() {
    let app = spawn_app().await;
    let product = app.create_product("SKU-1", 10.0, 5).await;
    let id = product["id"].as_str().expect("id");
    let sid = session();
    let too_many = app.add_to_cart(&sid, &product["id"], 6).await;
    let body = assert_problem(too_many, StatusCode::CONFLICT).await;
    assert_eq!(
        body["detail"],
        format!("Insufficient inventory for product {id}. Requested: 6, Available: 5")
    );
    assert!(body["type"]
        .as_str()
        .is_some_and(|t| t.ends_with("insufficient-inventory")));
    assert_eq!(
        app.add_to_cart(&sid, &product["id"], 4).await.status(),
        StatusCode::OK
    );
    let merged = app.add_to_cart(&sid, &product["id"], 2).await;
    let body = assert_problem(merged, StatusCode::CONFLICT).await;
    assert_eq!(
        body["detail"],
        format!("Insufficient inventory for product {id}. Requested: 6, Available: 5")
    );
}

#[tokio::test]
async fn unknown_and_discontinued_products_cannot_be_added() {
    let app = spawn_app().await;
    let product = app.create_product("SKU-1", 10.0, 5).await;
    let id = product["id"].as_str().expect("id");
    app.as_manager(Method::DELETE, &format!("/api/v1/products/{id}"), None)
        .await;
    let sid = session();
    let inactive = app.add_to_cart(&sid, &product["id"], 1).await;
    let body = assert_problem(inactive, StatusCode::CONFLICT).await;
    assert_eq!(body["detail"], format!("Product is not active: {id}"));
    let unknown = app.add_to_cart(&sid, &json!(uuid::Uuid::new_v4()), 1).await;
    assert_problem(unknown, StatusCode::NOT_FOUND).await;
}

#[tokio::test]
async fn lines_are_updated_removed_and_the_cart_emptied() {
    let app = spawn_app().await;
    let product = app.create_product("SKU-1", 10.0, 5).await;
    let sid = session();
    let cart: Value = app
        .add_to_cart(&sid, &product["id"], 1)
        .await
        .json()
        .await
        .expect("JSON");
    let item = cart["items"][0]["id"].as_str().expect("item id").to_owned();
    let item_path = format!("/api/v1/carts/{sid}/items/{item}");

    let updated = app
        .request(Method::PUT, &item_path)
        .json(&json!({"quantity": 4}))
        .send()
        .await
        .expect("update");
    assert_eq!(updated.status(), StatusCode::OK);
    let updated: Value = updated.json().await.expect("JSON");
    assert_eq!(updated["items"][0]["quantity"], 4);
    assert_eq!(updated["subtotal"], 40.0);

    let too_many = app
        .request(Method::PUT, &item_path)
        .json(&json!({"quantity": 6}))
        .send()
        .await
        .expect("update");
    assert_problem(too_many, StatusCode::CONFLICT).await;

    let unknown = app
        .request(
            Method::PUT,
            &format!("/api/v1/carts/{sid}/items/{}", uuid::Uuid::new_v4()),
        )
        .json(&json!({"quantity": 1}))
        .send()
        .await
        .expect("update");
    let body = assert_problem(unknown, StatusCode::NOT_FOUND).await;
    assert!(body["detail"]
        .as_str()
        .is_some_and(|d| d.starts_with("CartItem not found with id: ")));

    let removed = app
        .request(Method::DELETE, &item_path)
        .send()
        .await
        .expect("delete");
    assert_eq!(removed.status(), StatusCode::OK);
    let removed: Value = removed.json().await.expect("JSON");
    assert_eq!(removed["items"], json!([]));
    assert_eq!(removed["subtotal"], 0.0);

    app.add_to_cart(&sid, &product["id"], 1).await;
    let cleared = app
        .request(Method::DELETE, &format!("/api/v1/carts/{sid}"))
        .send()
        .await
        .expect("clear");
    assert_eq!(cleared.status(), StatusCode::NO_CONTENT);
    let cart = app.get_json(&format!("/api/v1/carts/{sid}")).await;
    assert_eq!(cart["items"], json!([]));
}

#[tokio::test]
async fn an_expired_cart_is_replaced_by_a_new_one_never_a_500() {
    // Without Redis the cart is read from PostgreSQL, where we can expire it.
    let app = spawn_app_with(|s| s.redis.port = 1).await;
    let product = app.create_product("SKU-1", 10.0, 5).await;
    let sid = session();
    let cart: Value = app
        .add_to_cart(&sid, &product["id"], 1)
        .await
        .json()
        .await
        .expect("JSON");
    sqlx::query("UPDATE carts SET expires_at = (now() AT TIME ZONE 'utc') - interval '1 hour' WHERE session_id = $1")
        .bind(&sid)
        .execute(&app.db)
        .await
        .expect("expire");
    let fresh = app.get_json(&format!("/api/v1/carts/{sid}")).await;
    assert_ne!(fresh["id"], cart["id"]);
    assert_eq!(fresh["items"], json!([]));
    assert_eq!(
        app.add_to_cart(&sid, &product["id"], 1).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn the_cleanup_job_deletes_expired_carts_and_idempotency_keys() {
    let app = spawn_app().await;
    let sid = session();
    app.get_json(&format!("/api/v1/carts/{sid}")).await;
    sqlx::query("UPDATE carts SET expires_at = (now() AT TIME ZONE 'utc') - interval '1 hour'")
        .execute(&app.db)
        .await
        .expect("expire");
    sqlx::query(
        "INSERT INTO checkout_idempotency (idempotency_key, request_fingerprint, status,
             response_status, response_body, created_at, expires_at)
         VALUES ('old', 'f', 'COMPLETED', 201, '{}', (now() AT TIME ZONE 'utc') - interval '2 days', (now() AT TIME ZONE 'utc') - interval '1 day')",
    )
    .execute(&app.db)
    .await
    .expect("insert");
    customer_facing_service::jobs::cleanup_once(&platform::db::Db::new(app.db.clone())).await;
    assert_eq!(app.count("carts").await, 0);
    assert_eq!(app.count("checkout_idempotency").await, 0);
}

#[tokio::test]
async fn parallel_adds_to_one_cart_merge_into_one_line_without_errors() {
    let app = spawn_app().await;
    let product = app.create_product("SKU-1", 2.0, 100).await;
    let sid = session();
    let statuses =
        futures::future::join_all((0..10).map(|_| app.add_to_cart(&sid, &product["id"], 1)))
            .await
            .into_iter()
            .map(|r| r.status())
            .collect::<Vec<_>>();
    assert!(
        statuses.iter().all(|s| *s == StatusCode::OK),
        "{statuses:?}"
    );
    let cart = app.get_json(&format!("/api/v1/carts/{sid}")).await;
    assert_eq!(cart["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(cart["items"][0]["quantity"], 10);
    assert_eq!(cart["subtotal"], 20.0);
    assert_eq!(app.count("carts").await, 1);
}

#[tokio::test]
async fn a_quantity_whose_total_the_cart_cannot_hold_is_a_409_conflict() {
    let app = spawn_app().await;
    let product = app.create_product("SKU-DEAR", 99_999_999.0, 5).await;
    let sid = session();
    let response = app.add_to_cart(&sid, &product["id"], 2).await;
    let body = assert_problem(response, StatusCode::CONFLICT).await;
    assert_eq!(body["detail"], "The cart's total would exceed 99999999.99");
    let one = app.add_to_cart(&sid, &product["id"], 1).await;
    assert_eq!(one.status(), StatusCode::OK, "one still fits");
}
