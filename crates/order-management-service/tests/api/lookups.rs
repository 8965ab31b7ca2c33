//! The anonymous order lookup cannot be walked: order numbers count up per day, so
//! lookups are limited per client address, an `X-Customer-Email` that does not match
//! is counted as a guess, and no answer carrying personal data may be stored.

use crate::helpers::{order_created, spawn_app_with, TestApp};
use reqwest::{Response, StatusCode};
use serde_json::Value;

/// The default limit: thirty lookups at once, thirty a minute after that.
const DEFAULT_LOOKUPS: &[(&str, &str)] = &[("order-lookup-burst", "30")];

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
    assert!(
        problem["type"]
            .as_str()
            .is_some_and(|t| t.ends_with("too-many-requests")),
        "{problem}"
    );
}

#[tokio::test]
async fn walking_order_numbers_meets_429_with_retry_after_once_the_clients_lookups_are_spent() {
    let app = spawn_app_with(DEFAULT_LOOKUPS).await;
    for n in 1..=30 {
        let response = lookup(&app, &format!("ORD-20260101-{n}"), None).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "lookup {n}");
    }
    assert_too_many(lookup(&app, "ORD-20260101-31", None).await).await;
    // A manager is not walking: the token's lookups are not limited.
    let managed = app
        .client
        .get(format!("{}/api/v1/orders/ORD-20260101-32", app.address))
        .bearer_auth(app.manager_token())
        .send()
        .await
        .expect("lookup answered");
    assert_eq!(managed.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_lookups() {
    let app = spawn_app_with(&[
        ("order-lookup-burst", "3"),
        ("trusted-proxies", "127.0.0.1"),
    ])
    .await;
    let from = |client: &'static str| {
        app.client
            .get(format!("{}/api/v1/orders/ORD-20260101-1", app.address))
            .header("X-Forwarded-For", format!("203.0.113.5, {client}"))
    };
    for _ in 0..3 {
        let response = from("198.51.100.1").send().await.expect("answered");
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
    }
    assert_too_many(from("198.51.100.1").send().await.expect("answered")).await;
    // The left-most entry is the caller's own claim; only the proxy's counts.
    let other = from("198.51.100.2").send().await.expect("answered");
    assert_eq!(other.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn wrong_emails_are_counted_as_guesses_and_the_right_one_is_not() {
    let app = spawn_app_with(&[]).await;
    let event = order_created("grace@example.com");
    app.publish(&event).await;
    app.wait_for_status(&event.order_number, "PAID").await;
    // The owner reads the order as often as they like.
    for _ in 0..40 {
        let response = lookup(&app, &event.order_number, Some("Grace@Example.com")).await;
        assert_eq!(response.status(), StatusCode::OK);
        let order: Value = response.json().await.expect("order JSON");
        assert_eq!(order["customerInfo"]["email"], "grace@example.com");
    }
    for i in 0..30 {
        let guess = format!("guess-{i}@example.com");
        let response = lookup(&app, &event.order_number, Some(&guess)).await;
        assert_eq!(response.status(), StatusCode::OK, "guess {i}");
        let order: Value = response.json().await.expect("order JSON");
        assert_eq!(order["customerInfo"]["email"], "g***@example.com");
    }
    // Guesses spent: even the right email waits now, so the oracle says nothing more.
    assert_too_many(lookup(&app, &event.order_number, Some("grace@example.com")).await).await;
    // Without a claim the masked order still answers: only the guesses are spent.
    let masked = lookup(&app, &event.order_number, None).await;
    assert_eq!(masked.status(), StatusCode::OK);
}

#[tokio::test]
async fn no_answer_carrying_an_order_may_be_stored() {
    let app = spawn_app_with(&[]).await;
    let event = order_created("grace@example.com");
    app.publish(&event).await;
    app.wait_for_status(&event.order_number, "PAID").await;
    let no_store = |response: &Response| {
        response
            .headers()
            .get("cache-control")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let anonymous = lookup(&app, &event.order_number, None).await;
    assert_eq!(anonymous.status(), StatusCode::OK);
    assert_eq!(no_store(&anonymous).as_deref(), Some("no-store"));
    let owner = lookup(&app, &event.order_number, Some("grace@example.com")).await;
    assert_eq!(no_store(&owner).as_deref(), Some("no-store"));
    let list = app
        .client
        .get(format!("{}/api/v1/orders", app.address))
        .bearer_auth(app.manager_token())
        .send()
        .await
        .expect("list answered");
    assert_eq!(list.status(), StatusCode::OK);
    assert_eq!(no_store(&list).as_deref(), Some("no-store"));
}
