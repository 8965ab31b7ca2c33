//! The order lookup cannot be walked: order numbers count up per day, so anonymous
//! lookups are limited per client address, an `X-Customer-Email` that does not match
//! counts as a failed login of the client, and no answer may be stored. The order
//! service is not running here, so the lookup answers from the checkout's record.

use crate::helpers::{session, spawn_app_with, TestApp};
use customer_facing_service::Settings;
use reqwest::{Response, StatusCode};
use serde_json::Value;

/// The service with no order service to ask (a port nothing listens on).
fn without_order_service(settings: &mut Settings) {
    let port = platform::testing::free_port().expect("a free port");
    settings.order_service_url = format!("http://127.0.0.1:{port}");
}

/// An order checked out for ada@example.com; its number.
async fn checked_out(app: &TestApp) -> String {
    let product = app.create_product("SKU-1", 12.5, 10).await;
    let session = session();
    let added = app.add_to_cart(&session, &product["id"], 1).await;
    assert!(added.status().is_success());
    let placed = app
        .checkout(&session, &uuid::Uuid::new_v4().to_string())
        .await;
    assert_eq!(placed.status(), StatusCode::CREATED);
    let body: Value = placed.json().await.expect("checkout JSON");
    body["orderNumber"].as_str().expect("a number").to_owned()
}

async fn lookup(app: &TestApp, number: &str, email: Option<&str>) -> Response {
    let mut request = app
        .client
        .get(format!("{}/api/v1/orders/{number}", app.address));
    if let Some(email) = email {
        request = request.header("X-Customer-Email", email);
    }
    request.send().await.expect("lookup answered")
}

async fn assert_too_many(response: Response) {
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!((1..=120).contains(&retry_after), "{retry_after}");
    let problem: Value = response.json().await.expect("problem JSON");
    assert_eq!(problem["status"], 429);
}

#[tokio::test]
async fn walking_order_numbers_meets_429_with_retry_after_once_the_clients_lookups_are_spent() {
    let app = spawn_app_with(without_order_service).await;
    let number = checked_out(&app).await;
    let (day, _) = number.rsplit_once('-').expect("ORD-yyyyMMdd-n");
    // Thirty lookups: the order itself, then its neighbours (unknown here, and the
    // order service not answering: 503).
    let first = lookup(&app, &number, None).await;
    assert_eq!(first.status(), StatusCode::OK);
    for n in 2..=30 {
        let response = lookup(&app, &format!("{day}-{}", 1000 + n), None).await;
        assert_ne!(
            response.status(),
            StatusCode::TOO_MANY_REQUESTS,
            "lookup {n}"
        );
    }
    assert_too_many(lookup(&app, &number, None).await).await;
    // A manager is not walking: the token's lookups are not limited.
    let managed = app
        .request(reqwest::Method::GET, &format!("/api/v1/orders/{number}"))
        .bearer_auth(app.manager_token().await)
        .send()
        .await
        .expect("lookup answered");
    assert_eq!(managed.status(), StatusCode::OK);
}

#[tokio::test]
async fn wrong_emails_count_as_failed_logins_of_the_client_and_the_right_one_does_not() {
    let app = spawn_app_with(|s| {
        without_order_service(s);
        // Only the guesses are under test here.
        s.lookup_limits.burst = 1_000;
    })
    .await;
    let number = checked_out(&app).await;
    for _ in 0..40 {
        let response = lookup(&app, &number, Some("ADA@example.com")).await;
        assert_eq!(response.status(), StatusCode::OK);
        let order: Value = response.json().await.expect("order JSON");
        assert_eq!(order["customerInfo"]["email"], "ada@example.com");
    }
    assert_eq!(
        app.login("manager", "manager123").await.status(),
        StatusCode::OK,
        "the owner's lookups cost the client nothing"
    );
    for i in 0..30 {
        let guess = format!("guess-{i}@example.com");
        let response = lookup(&app, &number, Some(&guess)).await;
        assert_eq!(response.status(), StatusCode::OK, "guess {i}");
        let order: Value = response.json().await.expect("order JSON");
        assert_eq!(order["customerInfo"]["email"], "a***@example.com");
    }
    // Thirty wrong emails are thirty failed logins: the client waits for both.
    assert_too_many(lookup(&app, &number, Some("ada@example.com")).await).await;
    assert_too_many(app.login("manager", "manager123").await).await;
}

#[tokio::test]
async fn no_lookup_answer_may_be_stored() {
    let app = spawn_app_with(without_order_service).await;
    let number = checked_out(&app).await;
    for email in [None, Some("ada@example.com")] {
        let response = lookup(&app, &number, email).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["cache-control"], "no-store");
    }
    let unknown = lookup(&app, "ORD-19700101-1", None).await;
    assert_eq!(unknown.headers()["cache-control"], "no-store");
}
