//! Bad input on every route: a 4xx problem details body and no change.

use crate::helpers::{assert_problem, checkout_body, session, spawn_app, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// Rows of every table a bad request could have touched.
async fn footprint(app: &TestApp) -> Vec<i64> {
    let mut counts = Vec::new();
    for table in [
        "categories",
        "products",
        "carts",
        "cart_items",
        "checkout_idempotency",
        "order_created_outbox",
    ] {
        counts.push(app.count(table).await);
    }
    counts
}

async fn send_raw(
    app: &TestApp,
    method: Method,
    path: &str,
    body: &'static str,
) -> reqwest::Response {
    app.request(method, path)
        .bearer_auth(app.manager_token().await)
        .header("content-type", "application/json")
        .header("Idempotency-Key", "bad-input")
        .body(body)
        .send()
        .await
        .expect("request")
}

#[tokio::test]
async fn malformed_json_and_missing_bodies_are_400_on_every_body_route() {
    let app = spawn_app().await;
    let product = app.create_product("SKU-1", 10.0, 5).await;
    let pid = product["id"].as_str().expect("id").to_owned();
    let cid = product["categoryId"].as_str().expect("id").to_owned();
    let sid = session();
    let before = footprint(&app).await;
    let routes = [
        (Method::POST, "/api/v1/auth/login".to_owned()),
        (Method::POST, "/api/v1/categories".to_owned()),
        (Method::PUT, format!("/api/v1/categories/{cid}")),
        (Method::POST, "/api/v1/products".to_owned()),
        (Method::PUT, format!("/api/v1/products/{pid}")),
        (Method::POST, format!("/api/v1/carts/{sid}/items")),
        (
            Method::PUT,
            format!("/api/v1/carts/{sid}/items/{}", uuid::Uuid::new_v4()),
        ),
        (Method::POST, "/api/v1/checkout".to_owned()),
    ];
    for (method, path) in &routes {
        for body in ["{\"name\": ", "", "[1, 2]", "\"text\""] {
            let response = send_raw(&app, method.clone(), path, body).await;
            assert!(
                response.status() == StatusCode::BAD_REQUEST,
                "{method} {path} with {body:?}: {}",
                response.status()
            );
            assert_problem(response, StatusCode::BAD_REQUEST).await;
        }
        let wrong_type = app
            .request(method.clone(), path)
            .bearer_auth(app.manager_token().await)
            .header("content-type", "text/plain")
            .body("{}")
            .send()
            .await
            .expect("request");
        assert_problem(wrong_type, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;
    }
    assert_eq!(footprint(&app).await, before);
}

#[tokio::test]
async fn wrong_types_name_the_field() {
    let app = spawn_app().await;
    let product = app.create_product("SKU-1", 10.0, 5).await;
    let sid = session();
    let cases: Vec<(Method, String, Value, &str)> = vec![
        (
            Method::POST,
            format!("/api/v1/carts/{sid}/items"),
            json!({"productId": "not-a-uuid", "quantity": 1}),
            "productId",
        ),
        (
            Method::POST,
            format!("/api/v1/carts/{sid}/items"),
            json!({"productId": product["id"], "quantity": "two"}),
            "quantity",
        ),
        (
            Method::POST,
            "/api/v1/products".into(),
            json!({"sku": "S-2", "name": "x", "price": "cheap", "inventoryQuantity": 1,
                "categoryId": product["categoryId"]}),
            "price",
        ),
        (
            Method::POST,
            "/api/v1/products".into(),
            json!({"sku": "S-2", "name": "x", "price": 1, "inventoryQuantity": 1.5,
                "categoryId": product["categoryId"]}),
            "inventoryQuantity",
        ),
        (
            Method::POST,
            "/api/v1/categories".into(),
            json!({"name": 42}),
            "name",
        ),
        (
            Method::POST,
            "/api/v1/checkout".into(),
            json!({"sessionId": sid, "customerInfo": "x"}),
            "customerInfo",
        ),
    ];
    let before = footprint(&app).await;
    for (method, path, body, field) in cases {
        let response = app
            .as_manager(method.clone(), &path, Some(body.clone()))
            .await;
        let problem = assert_problem(response, StatusCode::BAD_REQUEST).await;
        assert!(
            problem["fieldErrors"][field].is_string(),
            "{method} {path} {body}: {problem}"
        );
    }
    assert_eq!(footprint(&app).await, before);
}

#[tokio::test]
async fn over_long_strings_are_field_errors() {
    let app = spawn_app().await;
    let product = app.create_product("SKU-1", 10.0, 5).await;
    let long = |n: usize| "x".repeat(n);
    let before = footprint(&app).await;
    let cases: Vec<(&str, Value, &str)> = vec![
        ("/api/v1/categories", json!({"name": long(101)}), "name"),
        (
            "/api/v1/categories",
            json!({"name": "ok", "description": long(1001)}),
            "description",
        ),
        (
            "/api/v1/products",
            json!({"sku": "A".repeat(51), "name": "x", "price": 1,
            "inventoryQuantity": 1, "categoryId": product["categoryId"]}),
            "sku",
        ),
        (
            "/api/v1/products",
            json!({"sku": "S-3", "name": long(201), "price": 1,
            "inventoryQuantity": 1, "categoryId": product["categoryId"]}),
            "name",
        ),
    ];
    for (path, body, field) in cases {
        let response = app.as_manager(Method::POST, path, Some(body)).await;
        let problem = assert_problem(response, StatusCode::BAD_REQUEST).await;
        assert!(
            problem["fieldErrors"][field].is_string(),
            "{path}: {problem}"
        );
    }
    let mut checkout = checkout_body(&session());
    checkout["customerInfo"]["name"] = json!(long(201));
    checkout["customerInfo"]["email"] = json!("not-an-email");
    checkout["customerInfo"]["phone"] = json!("123");
    checkout["customerInfo"]["shippingAddress"]["postalCode"] = json!(long(21));
    let response = app
        .request(Method::POST, "/api/v1/checkout")
        .header("Idempotency-Key", "long")
        .json(&checkout)
        .send()
        .await
        .expect("checkout");
    let problem = assert_problem(response, StatusCode::BAD_REQUEST).await;
    let fields = &problem["fieldErrors"];
    assert_eq!(fields["customerInfo.email"], "Invalid email format");
    assert_eq!(
        fields["customerInfo.phone"],
        "Phone must be 10-20 digits, optionally starting with +"
    );
    assert!(fields["customerInfo.name"].is_string());
    assert!(fields["customerInfo.shippingAddress.postalCode"].is_string());
    let long_session = app.get(&format!("/api/v1/carts/{}", long(101))).await;
    assert_problem(long_session, StatusCode::BAD_REQUEST).await;
    assert_eq!(footprint(&app).await, before);
}

#[tokio::test]
async fn non_uuid_ids_are_not_found_problems() {
    let app = spawn_app().await;
    let sid = session();
    for (method, path) in [
        (Method::GET, "/api/v1/products/not-a-uuid".to_owned()),
        (Method::GET, "/api/v1/categories/12".to_owned()),
        (Method::DELETE, "/api/v1/products/xyz".to_owned()),
        (Method::DELETE, format!("/api/v1/carts/{sid}/items/abc")),
    ] {
        let response = app.as_manager(method, &path, None).await;
        let problem = assert_problem(response, StatusCode::NOT_FOUND).await;
        assert!(problem["detail"]
            .as_str()
            .is_some_and(|d| d.starts_with("Resource not found with id: ")));
        assert_eq!(problem["instance"], path.as_str());
    }
    let put = app
        .request(Method::PUT, &format!("/api/v1/carts/{sid}/items/abc"))
        .json(&json!({"quantity": 1}))
        .send()
        .await
        .expect("request");
    assert_problem(put, StatusCode::NOT_FOUND).await;
}

#[tokio::test]
async fn negative_and_huge_numbers_are_rejected() {
    let app = spawn_app().await;
    let product = app.create_product("SKU-1", 10.0, 5).await;
    let sid = session();
    let before = footprint(&app).await;
    for quantity in [json!(0), json!(-1), json!(3_000_000_000_i64), json!(1e30)] {
        let response = app.add_to_cart(&sid, &product["id"], 0).await;
        assert_problem(response, StatusCode::BAD_REQUEST).await;
        let response = app
            .request(Method::POST, &format!("/api/v1/carts/{sid}/items"))
            .json(&json!({"productId": product["id"], "quantity": quantity}))
            .send()
            .await
            .expect("request");
        assert_problem(response, StatusCode::BAD_REQUEST).await;
    }
    let path = format!("/api/v1/products/{}", product["id"].as_str().expect("id"));
    for body in [
        json!({"price": 100_000_000}),
        json!({"price": 1e40}),
        json!({"price": -5}),
        json!({"inventoryQuantity": -1}),
        json!({"inventoryQuantity": 3_000_000_000_i64}),
        json!({"name": ""}),
    ] {
        let response = app.as_manager(Method::PUT, &path, Some(body.clone())).await;
        let problem = assert_problem(response, StatusCode::BAD_REQUEST).await;
        assert!(problem["fieldErrors"].is_object(), "{body}: {problem}");
    }
    for query in [
        "page=-1",
        "size=0",
        "size=99999999999",
        "size=100000",
        "page=abc",
        "isActive=maybe",
        "categoryId=not-a-uuid",
        "sortBy=password",
        "page=1&page=2",
    ] {
        let response = app.get(&format!("/api/v1/products?{query}")).await;
        assert_problem(response, StatusCode::BAD_REQUEST).await;
    }
    assert_eq!(footprint(&app).await, before);
    assert_eq!(app.get_json(&path).await["price"], 10.0);
}

#[tokio::test]
async fn oversized_bodies_unknown_routes_and_methods_are_problems() {
    let app = spawn_app().await;
    let huge = json!({"name": "x".repeat(300 * 1024)});
    let response = app
        .as_manager(Method::POST, "/api/v1/categories", Some(huge))
        .await;
    assert_problem(response, StatusCode::PAYLOAD_TOO_LARGE).await;
    let unknown = app.get("/api/v1/nothing-here").await;
    assert_problem(unknown, StatusCode::NOT_FOUND).await;
    let method = app
        .request(Method::PATCH, "/api/v1/products")
        .send()
        .await
        .expect("request");
    assert_problem(method, StatusCode::METHOD_NOT_ALLOWED).await;
    assert_eq!(app.count("categories").await, 0);
}
