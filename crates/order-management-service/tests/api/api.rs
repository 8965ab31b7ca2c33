use crate::helpers::{order_created, spawn_app, spawn_app_with, TestApp};
use serde_json::{json, Value};

async fn post(app: &TestApp, path: &str, token: Option<&str>, body: Value) -> (u16, Value) {
    let mut request = app
        .client
        .post(format!("{}{path}", app.address))
        .json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("sent");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn get(app: &TestApp, path: &str, token: Option<&str>) -> (u16, Value) {
    let mut request = app.client.get(format!("{}{path}", app.address));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("sent");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn an_unknown_order_is_a_404_problem_and_health_shows_every_dependency() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(format!("{}/api/v1/orders/ORD-NOPE", app.address))
        .header("X-Correlation-ID", "corr-404")
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 404);
    assert_eq!(response.headers()["X-Correlation-ID"], "corr-404");
    let problem: Value = response.json().await.expect("json");
    assert_eq!(problem["detail"], "Order not found with id: ORD-NOPE");
    assert_eq!(problem["correlationId"], "corr-404");
    assert_eq!(problem["instance"], "/api/v1/orders/ORD-NOPE");

    let (status, _) = get(&app, "/actuator/health/readiness", None).await;
    assert_eq!(status, 200);
    let (status, health) = get(&app, "/actuator/health", None).await;
    assert_eq!(status, 200, "{health}");
    assert!(
        health["components"]["paymentGateway"]
            .get("details")
            .is_none(),
        "anonymous callers see no details (the gateway's URL): {health}"
    );
    let (status, health) = get(&app, "/actuator/health", Some(&app.manager_token())).await;
    assert_eq!(status, 200, "{health}");
    assert!(
        health["components"]["paymentGateway"]["details"]["url"].is_string(),
        "a manager sees details: {health}"
    );
    for component in ["db", "kafka", "paymentGateway", "circuitBreakers"] {
        assert_eq!(
            health["components"][component]["status"], "UP",
            "{component}: {health}"
        );
    }
    assert_eq!(
        health["components"]["circuitBreakers"]["details"]["paymentService"]["state"],
        "CLOSED"
    );
    let (status, doc) = get(&app, "/v3/api-docs", None).await;
    assert_eq!(status, 200);
    assert!(doc["paths"]["/api/v1/orders"].is_object());
}

#[tokio::test]
async fn manager_routes_need_a_manager_token_and_a_bad_token_is_refused_even_on_public_routes() {
    let app = spawn_app().await;
    assert_eq!(get(&app, "/api/v1/orders", None).await.0, 401);
    assert_eq!(
        get(&app, "/api/v1/orders", Some(&app.guest_token()))
            .await
            .0,
        403
    );
    assert_eq!(
        get(&app, "/api/v1/orders", Some(&app.manager_token()))
            .await
            .0,
        200
    );
    assert_eq!(
        get(&app, "/api/v1/orders/ORD-X", Some("not-a-token"))
            .await
            .0,
        401
    );
    let cancel = "/api/v1/orders/ORD-X/cancel";
    assert_eq!(
        post(&app, cancel, None, json!({"reason": "x"})).await.0,
        401
    );
    assert_eq!(
        post(
            &app,
            cancel,
            Some(&app.guest_token()),
            json!({"reason": "x"})
        )
        .await
        .0,
        403
    );
    let fulfil = "/api/v1/orders/ORD-X/fulfill";
    assert_eq!(
        post(&app, fulfil, Some(&app.guest_token()), json!({}))
            .await
            .0,
        403
    );
    assert_eq!(
        post(&app, fulfil, Some(&app.manager_token()), json!({}))
            .await
            .0,
        404
    );
}

#[tokio::test]
async fn cancel_and_fulfil_follow_the_original_state_rules_with_409_for_a_wrong_state() {
    let app = spawn_app().await;
    let token = app.manager_token();
    let paid = order_created("rules@example.com");
    app.publish(&paid).await;
    app.wait_for_status(&paid.order_number, "PAID").await;
    let number = &paid.order_number;

    let (status, order) = post(
        &app,
        &format!("/api/v1/orders/{number}/fulfill"),
        Some(&token),
        json!({"trackingNumber": "TRK1", "carrier": "UPS"}),
    )
    .await;
    assert_eq!(status, 200, "{order}");
    assert_eq!(order["status"], "FULFILLED");
    assert!(order["completedAt"].is_string());

    let (status, problem) = post(
        &app,
        &format!("/api/v1/orders/{number}/fulfill"),
        Some(&token),
        json!({}),
    )
    .await;
    assert_eq!(status, 409);
    assert_eq!(problem["detail"], format!("Order can only be fulfilled in PAID status. Current status: FULFILLED, Order number: {number}"));

    // A fulfilled order can no longer be cancelled (a PAID one can: see refunds.rs).
    let (status, problem) = post(
        &app,
        &format!("/api/v1/orders/{number}/cancel"),
        Some(&token),
        json!({"reason": "changed mind"}),
    )
    .await;
    assert_eq!(status, 409);
    assert_eq!(
        problem["type"],
        "https://api.ecommerce.com/problems/invalid-order-state"
    );
    assert_eq!(
        problem["detail"],
        format!("Order cannot be cancelled in status: FULFILLED. Order number: {number}")
    );

    // An order waiting for the gateway can be cancelled, and is then never charged.
    app.set_gateway_faults(json!({"errorStatus": 503})).await;
    let waiting = order_created("waiting@example.com");
    app.publish(&waiting).await;
    app.wait_for_status(&waiting.order_number, "PROCESSING")
        .await;
    let path = format!("/api/v1/orders/{}/cancel", waiting.order_number);
    let (status, problem) = post(&app, &path, Some(&token), json!({})).await;
    assert_eq!(status, 400);
    assert!(problem["fieldErrors"]["reason"].is_string(), "{problem}");
    let deadline = tokio::time::Instant::now() + crate::helpers::PATIENCE;
    let cancelled = loop {
        // 409 while a gateway call is in flight; retried until it is not.
        let (status, body) = post(
            &app,
            &path,
            Some(&token),
            json!({"reason": "customer asked"}),
        )
        .await;
        if status == 200 {
            break body;
        }
        assert_eq!(status, 409, "{body}");
        assert!(
            tokio::time::Instant::now() < deadline,
            "cancel never succeeded"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(cancelled["status"], "CANCELLED");
    assert_eq!(cancelled["paymentStatus"], "FAILED");
    assert!(cancelled["completedAt"].is_string());
    app.set_gateway_faults(json!({"errorStatus": null})).await;
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let (_, after) = app.get_order(&waiting.order_number).await;
    assert_eq!(after["status"], "CANCELLED");
    // Never charged (a refund by key may have closed the key: a DECLINED line at most).
    assert!(app
        .ledger(waiting.order_id)
        .await
        .iter()
        .all(|line| line["status"] != "SUCCEEDED"));
    let (status, _) = post(&app, &path, Some(&token), json!({"reason": "again"})).await;
    assert_eq!(status, 409);
}

#[tokio::test]
async fn the_list_filters_pages_exactly_and_refuses_bad_query_values() {
    let app = spawn_app().await;
    let token = app.manager_token();
    let events: Vec<_> = ["a@example.com", "b@example.com", "a@example.com"]
        .iter()
        .map(|email| order_created(email))
        .collect();
    for event in &events {
        app.publish(event).await;
    }
    for event in &events {
        app.wait_for_status(&event.order_number, "PAID").await;
    }

    let (status, page) = get(&app, "/api/v1/orders?size=2", Some(&token)).await;
    assert_eq!(status, 200);
    assert_eq!(page["totalElements"], 3);
    assert_eq!(page["totalPages"], 2);
    assert_eq!(page["size"], 2);
    assert_eq!(page["number"], 0);
    assert_eq!(page["content"].as_array().expect("content").len(), 2);
    let (_, second) = get(&app, "/api/v1/orders?size=2&page=1", Some(&token)).await;
    assert_eq!(second["content"].as_array().expect("content").len(), 1);

    let (_, by_email) = get(
        &app,
        "/api/v1/orders?customerEmail=a@example.com&status=PAID",
        Some(&token),
    )
    .await;
    assert_eq!(by_email["totalElements"], 2);
    let (_, none) = get(&app, "/api/v1/orders?status=CANCELLED", Some(&token)).await;
    assert_eq!(none["totalElements"], 0);
    assert_eq!(none["totalPages"], 0);
    let (_, in_range) = get(
        &app,
        "/api/v1/orders?startDate=2000-01-01T00:00:00Z&endDate=2999-01-01T00:00:00Z",
        Some(&token),
    )
    .await;
    assert_eq!(in_range["totalElements"], 3);
    let (_, future) = get(
        &app,
        "/api/v1/orders?startDate=2999-01-01T00:00:00Z",
        Some(&token),
    )
    .await;
    assert_eq!(future["totalElements"], 0);

    for (query, detail) in [
        (
            "status=BOGUS",
            "Invalid value 'BOGUS' for parameter 'status'",
        ),
        (
            "startDate=yesterday",
            "Invalid value 'yesterday' for parameter 'startDate'",
        ),
        (
            "endDate=2025-13-01",
            "Invalid value '2025-13-01' for parameter 'endDate'",
        ),
        ("page=-1", "Page index must not be less than zero"),
        ("size=0", "Page size must not be less than one"),
        ("page=x", "Invalid value 'x' for parameter 'page'"),
    ] {
        let (status, problem) = get(&app, &format!("/api/v1/orders?{query}"), Some(&token)).await;
        assert_eq!(status, 400, "{query}");
        assert_eq!(problem["detail"], detail, "{query}");
        assert_eq!(
            problem["type"],
            "https://api.ecommerce.com/problems/bad-request"
        );
    }
}

#[tokio::test]
async fn the_instance_is_unready_while_the_broker_is_unreachable() {
    let app = spawn_app_with(&[("kafka-bootstrap-servers", "127.0.0.1:1")]).await;
    let (status, body) = get(&app, "/actuator/health/readiness", None).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["down"], json!(["kafka"]));
    let (status, _) = get(&app, "/actuator/health/liveness", None).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn the_storefronts_origin_may_read_orders_from_the_browser_and_swagger_ui_is_served() {
    let shop = "http://shop.example.com:8080";
    let app = spawn_app_with(&[("cors-allowed-origins", shop)]).await;
    let preflight = app
        .client
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/api/v1/orders/ORD-1", app.address),
        )
        .header("Origin", shop)
        .header("Access-Control-Request-Method", "GET")
        .header("Access-Control-Request-Headers", "x-customer-email")
        .send()
        .await
        .expect("sent");
    assert_eq!(preflight.status(), 204);
    assert_eq!(preflight.headers()["access-control-allow-origin"], shop);
    // The answer itself, a 404 problem here, carries the header too.
    let lookup = app
        .client
        .get(format!("{}/api/v1/orders/ORD-1", app.address))
        .header("Origin", shop)
        .send()
        .await
        .expect("sent");
    assert_eq!(lookup.status(), 404);
    assert_eq!(lookup.headers()["access-control-allow-origin"], shop);
    let elsewhere = app
        .client
        .get(format!("{}/api/v1/orders/ORD-1", app.address))
        .header("Origin", "http://127.0.0.1:8080")
        .send()
        .await
        .expect("sent");
    assert!(elsewhere
        .headers()
        .get("access-control-allow-origin")
        .is_none());

    let page = app
        .client
        .get(format!("{}/swagger-ui.html", app.address))
        .send()
        .await
        .expect("sent");
    assert_eq!(page.status(), 200);
}
