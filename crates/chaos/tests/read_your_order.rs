//! Read your own order (issue 11): a checkout's 201 promises the order exists, so the
//! order lookup on the customer-facing service never answers 404 for it, whatever the
//! order service's lag: PENDING from what the checkout recorded until the order
//! service has the order, then the order service's own answer.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

async fn lookup(base: &str, number: &str, email: Option<&str>) -> (StatusCode, Value) {
    let mut request = reqwest::Client::new().get(format!("{base}/api/v1/orders/{number}"));
    if let Some(email) = email {
        request = request.header("X-Customer-Email", email);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn checkout(base: &str, product: &str) -> String {
    let http = reqwest::Client::new();
    let session = uuid::Uuid::new_v4().to_string();
    let added = http
        .post(format!("{base}/api/v1/carts/{session}/items"))
        .json(&json!({"productId": product, "quantity": 2}))
        .send()
        .await
        .unwrap();
    assert!(
        added.status().is_success(),
        "{}",
        added.text().await.unwrap()
    );
    let placed = http
        .post(format!("{base}/api/v1/checkout"))
        .header("Idempotency-Key", uuid::Uuid::new_v4().to_string())
        .json(&chaos::checkout_body(&session))
        .send()
        .await
        .unwrap();
    assert_eq!(placed.status(), StatusCode::CREATED);
    let body: Value = placed.json().await.unwrap();
    body["orderNumber"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checked_out_order_reads_pending_until_the_order_service_has_it_and_never_404() {
    let mut platform = chaos::Platform::start(&[]).await.unwrap();
    let customer = platform.customer.url();
    let order_base = platform.order.url();
    let product = platform.create_products(1, 50).await.unwrap().remove(0);

    // With the order service stopped, the lookup answers from the checkout's record.
    platform.order.process.stop().await.unwrap();
    let mut numbers = Vec::new();
    for _ in 0..3 {
        let number = checkout(&customer, &product).await;
        let (status, order) = lookup(&customer, &number, None).await;
        assert_eq!(status, StatusCode::OK, "{order}");
        assert_eq!(order["orderNumber"], number.as_str());
        assert_eq!(order["status"], "PENDING");
        assert_eq!(order["paymentStatus"], Value::Null);
        assert_eq!(order["items"][0]["quantity"], 2);
        assert_eq!(order["customerInfo"]["email"], "c***@example.com");
        numbers.push(number);
    }
    let (status, owned) = lookup(&customer, &numbers[0], Some("CHAOS@example.com")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(owned["customerInfo"]["email"], "chaos@example.com");
    assert_eq!(
        owned["customerInfo"]["shippingAddress"]["street"],
        "1 Main St"
    );
    let (status, unknown) = lookup(&customer, "ORD-19700101-999999", None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{unknown}");

    // The order service's own lookup, while it has not consumed the orders: PENDING
    // too, from what the checkout recorded (asked of the customer-facing service).
    platform
        .order
        .process
        .set_flag("--consumers-enabled", "false");
    platform.order.start().await.unwrap();
    let (status, order) = lookup(&order_base, &numbers[0], None).await;
    assert_eq!(status, StatusCode::OK, "{order}");
    assert_eq!(order["status"], "PENDING");
    assert_eq!(order["customerInfo"]["email"], "c***@example.com");
    let (status, owned) = lookup(&order_base, &numbers[0], Some("chaos@example.com")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(owned["customerInfo"]["phone"], "+14155551234");
    let (status, unknown) = lookup(&order_base, "ORD-19700101-999999", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{unknown}");
    platform.order.process.stop().await.unwrap();

    // Once the order service consumes again, the lookup answers its view: the same
    // order (same ids), paid.
    platform
        .order
        .process
        .set_flag("--consumers-enabled", "true");
    platform.order.start().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    for number in &numbers {
        let pending = lookup(&customer, number, Some("chaos@example.com")).await.1;
        loop {
            let (status, order) = lookup(&customer, number, Some("chaos@example.com")).await;
            assert_eq!(status, StatusCode::OK, "{order}");
            if order["status"] == "PAID" {
                let (_, direct) = lookup(&order_base, number, Some("chaos@example.com")).await;
                assert_eq!(order, direct, "the order service's own answer is passed on");
                assert_eq!(order["id"], pending["id"]);
                assert_eq!(order["items"][0]["id"], pending["items"][0]["id"]);
                break;
            }
            assert!(Instant::now() < deadline, "{number} not PAID: {order}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    // A number no checkout took is 404 once the order service can say so.
    let (status, unknown) = lookup(&customer, "ORD-19700101-999999", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{unknown}");

    // Right after checkout, with everything running: never a 404.
    for _ in 0..10 {
        let number = checkout(&customer, &product).await;
        let (status, order) = lookup(&customer, &number, None).await;
        assert_eq!(status, StatusCode::OK, "{number}: {order}");
    }
    platform.stop().await.unwrap();
}

/// A lookup from `local` (any 127.x address reaches the loopback listeners).
async fn lookup_from(local: &str, base: &str, number: &str) -> StatusCode {
    reqwest::Client::builder()
        .local_address(local.parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap()
        .get(format!("{base}/api/v1/orders/{number}"))
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookups_passed_on_by_the_customer_service_count_against_their_own_client_on_the_order_service(
) {
    let mut platform = chaos::Platform::start(&[("order-lookup-burst", "3")])
        .await
        .unwrap();
    // The order service trusts the customer service (127.0.0.1) as a proxy.
    platform.order.process.stop().await.unwrap();
    platform
        .order
        .process
        .set_flag("--trusted-proxies", "127.0.0.1");
    platform.order.start().await.unwrap();
    let (customer, order) = (platform.customer.url(), platform.order.url());
    let number = "ORD-19700101-1";

    // Three lookups each (the burst), from two clients, through the customer service,
    // which asks the order service each time: were the order service counting them
    // against the customer service's address, the fourth would be refused.
    for client in ["127.0.0.2", "127.0.0.3"] {
        for _ in 0..3 {
            let status = lookup_from(client, &customer, number).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{client}");
        }
    }
    // Each client's lookups are spent, on both services.
    for base in [&customer, &order] {
        let status = lookup_from("127.0.0.2", base, number).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{base}");
    }
    let fresh = lookup_from("127.0.0.4", &order, number).await;
    assert_eq!(fresh, StatusCode::NOT_FOUND);
    platform.stop().await.unwrap();
}
