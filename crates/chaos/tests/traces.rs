//! Traces across every hop (issue 25): the three real service processes export their
//! spans over OTLP/HTTP to a real receiver started here, and each journey is one trace:
//! a checkout that ends PAID (customer → broker → order → gateway), a paid order
//! cancelled, refunded and its stock returned (order → gateway, order → broker →
//! customer), and a declined charge, whose spans say it failed. The ids every service
//! logs are the exported ones.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chaos::otlp::{ReceivedSpan, Receiver};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::time::{Duration, Instant};

const CUSTOMER: &str = "customer-facing-service";
const ORDER: &str = "order-management-service";
const GATEWAY: &str = "payment-gateway";
const SERVER: i32 = 2;
const CLIENT: i32 = 3;
const PRODUCER: i32 = 4;
const CONSUMER: i32 = 5;

/// A `traceparent` of the test's own: the journey's trace id, and a client span of the
/// test that the first service's span must name as its parent.
fn test_traceparent() -> (String, String, String) {
    let trace = uuid::Uuid::new_v4().simple().to_string();
    let span = uuid::Uuid::new_v4().simple().to_string()[..16].to_owned();
    let header = format!("00-{trace}-{span}-01");
    (trace, span, header)
}

async fn checkout(base: &str, product: &str, traceparent: &str) -> String {
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
        .header("traceparent", traceparent)
        .json(&chaos::checkout_body(&session))
        .send()
        .await
        .unwrap();
    assert_eq!(placed.status(), StatusCode::CREATED);
    let body: Value = placed.json().await.unwrap();
    body["orderNumber"].as_str().unwrap().to_owned()
}

async fn wait_for_state(platform: &chaos::Platform, number: &str, want: (&str, Option<&str>)) {
    // About 3 s on an idle machine; a CI run with two platforms starting at once on two
    // busy cores once needed more than 30.
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let states = platform.order_states().await.unwrap();
        let now = states.get(number).cloned();
        if now
            .as_ref()
            .is_some_and(|(o, p)| o == want.0 && p.as_deref() == want.1)
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "order {number} is {now:?}, not {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The one span of `service` named `name` in `spans`.
fn span<'a>(spans: &'a [ReceivedSpan], service: &str, name: &str) -> &'a ReceivedSpan {
    let found: Vec<&ReceivedSpan> = spans
        .iter()
        .filter(|s| s.service == service && s.name == name)
        .collect();
    assert_eq!(
        found.len(),
        1,
        "one span {name:?} of {service} expected among:\n{}",
        describe(spans)
    );
    found[0]
}

fn has(spans: &[ReceivedSpan], service: &str, name: &str) -> bool {
    spans.iter().any(|s| s.service == service && s.name == name)
}

/// Every span's parent has arrived too (a parent ends, and is exported, after its
/// children: it may come in a later batch), or is the test's own span.
fn whole(spans: &[ReceivedSpan], test_span: &str) -> bool {
    let ids: HashSet<&str> = spans.iter().map(|s| s.span_id.as_str()).collect();
    spans.iter().all(|s| {
        s.parent_span_id
            .as_deref()
            .is_some_and(|p| p == test_span || ids.contains(p))
    })
}

fn describe(spans: &[ReceivedSpan]) -> String {
    spans
        .iter()
        .map(|s| {
            format!(
                "  {} {:?} kind={} id={} parent={:?} error={}",
                s.service, s.name, s.kind, s.span_id, s.parent_span_id, s.error
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `child`'s parent is `parent`, in the same trace.
fn assert_child_of(child: &ReceivedSpan, parent: &ReceivedSpan) {
    assert_eq!(child.trace_id, parent.trace_id);
    assert_eq!(
        child.parent_span_id.as_deref(),
        Some(parent.span_id.as_str()),
        "{} {:?} should be a child of {} {:?}",
        child.service,
        child.name,
        parent.service,
        parent.name
    );
}

/// The trace is one tree: the test's span is the only parent not in it.
fn assert_one_tree(spans: &[ReceivedSpan], test_span: &str) {
    let ids: HashSet<&str> = spans.iter().map(|s| s.span_id.as_str()).collect();
    for s in spans {
        let parent = s.parent_span_id.as_deref().unwrap_or("none");
        assert!(
            ids.contains(parent) || parent == test_span,
            "{} {:?} has a parent outside the trace:\n{}",
            s.service,
            s.name,
            describe(spans)
        );
    }
}

/// Every log line of `trace_id` names an exported span of it.
fn assert_logged_ids_are_exported(
    platform: &chaos::Platform,
    spans: &[ReceivedSpan],
    trace_id: &str,
) {
    let exported: HashSet<&str> = spans.iter().map(|s| s.span_id.as_str()).collect();
    let mut lines = 0;
    for service in [&platform.customer, &platform.order, &platform.gateway] {
        for line in service.process.log_tail(100_000).lines() {
            let Ok(line) = serde_json::from_str::<Value>(line) else {
                continue;
            };
            if line["traceId"] != trace_id {
                continue;
            }
            lines += 1;
            let span_id = line["spanId"].as_str().unwrap_or_default();
            assert!(
                exported.contains(span_id),
                "a log line names span {span_id}, which was not exported: {line}"
            );
        }
    }
    assert!(lines > 0, "no log line names trace {trace_id}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paid_checkout_and_a_refunded_cancel_each_form_one_trace_across_the_services() {
    let receiver = Receiver::start().await.unwrap();
    let platform = chaos::Platform::start(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint.as_str()),
        ("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=chaos"),
        ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
        ("OTEL_TRACES_SAMPLER_ARG", "1.0"),
        ("OTEL_BSP_SCHEDULE_DELAY", "200"),
    ])
    .await
    .unwrap();
    let customer = platform.customer.url();
    let product = platform.create_products(1, 20).await.unwrap().remove(0);

    // 1. A checkout that ends PAID.
    let (trace, test_span, traceparent) = test_traceparent();
    let number = checkout(&customer, &product, &traceparent).await;
    wait_for_state(&platform, &number, ("PAID", Some("SUCCESS"))).await;
    let spans = receiver
        .trace_when(&trace, Duration::from_secs(20), |s| {
            has(s, GATEWAY, "gateway charge")
                && has(s, ORDER, "payment record")
                && whole(s, &test_span)
        })
        .await;
    let checkout_span = span(&spans, CUSTOMER, "POST /api/v1/checkout");
    assert_eq!(checkout_span.kind, SERVER);
    assert_eq!(
        checkout_span.parent_span_id.as_deref(),
        Some(test_span.as_str())
    );
    assert_eq!(checkout_span.resource["deployment.environment"], "chaos");
    let transaction = span(&spans, CUSTOMER, "checkout transaction");
    assert_child_of(transaction, checkout_span);
    // The outbox row kept the checkout's trace: its publish continues it...
    let publish = span(
        &spans,
        CUSTOMER,
        &format!("{} publish", platform.orders_topic),
    );
    assert_eq!(publish.kind, PRODUCER);
    assert_child_of(publish, transaction);
    // ...and the order service's handling of the record is the publish's child.
    let consume = span(&spans, ORDER, &format!("{} process", platform.orders_topic));
    assert_eq!(consume.kind, CONSUMER);
    assert_child_of(consume, publish);
    let charge = span(&spans, ORDER, "payment charge");
    assert_child_of(charge, consume);
    assert!(!charge.error);
    let call = span(&spans, ORDER, "POST /api/v1/payments");
    assert_eq!(call.kind, CLIENT);
    assert_child_of(call, charge);
    let served = span(&spans, GATEWAY, "POST /api/v1/payments");
    assert_eq!(served.kind, SERVER);
    assert_child_of(served, call);
    assert_child_of(span(&spans, GATEWAY, "gateway charge"), served);
    assert_child_of(span(&spans, ORDER, "payment record"), consume);
    assert_one_tree(&spans, &test_span);
    assert!(spans.iter().all(|s| !s.error), "{}", describe(&spans));
    assert_logged_ids_are_exported(&platform, &spans, &trace);

    // 2. That paid order cancelled: refunded and its stock returned, in the cancel's trace.
    let token = chaos::manager_token(&customer).await.unwrap();
    let (cancel_trace, cancel_test_span, cancel_traceparent) = test_traceparent();
    let cancelled = reqwest::Client::new()
        .post(format!(
            "{}/api/v1/orders/{number}/cancel",
            platform.order.url()
        ))
        .bearer_auth(&token)
        .header("traceparent", &cancel_traceparent)
        .json(&json!({"reason": chaos::CANCEL_REASON}))
        .send()
        .await
        .unwrap();
    assert_eq!(cancelled.status(), StatusCode::OK);
    wait_for_state(&platform, &number, ("CANCELLED", Some("REFUNDED"))).await;
    let spans = receiver
        .trace_when(&cancel_trace, Duration::from_secs(20), |s| {
            has(s, GATEWAY, "gateway refund")
                && has(s, CUSTOMER, "stock return")
                && whole(s, &cancel_test_span)
        })
        .await;
    let cancel = span(&spans, ORDER, "POST /api/v1/orders/{orderNumber}/cancel");
    assert_eq!(
        cancel.parent_span_id.as_deref(),
        Some(cancel_test_span.as_str())
    );
    let released = span(
        &spans,
        ORDER,
        &format!("{} publish", platform.released_topic),
    );
    assert_child_of(released, cancel);
    let returned = span(
        &spans,
        CUSTOMER,
        &format!("{} process", platform.released_topic),
    );
    assert_child_of(returned, released);
    assert_child_of(span(&spans, CUSTOMER, "stock return"), returned);
    let refund = span(&spans, ORDER, "payment refund");
    assert_child_of(refund, cancel);
    let call = span(&spans, ORDER, "POST /api/v1/refunds");
    assert_eq!(call.kind, CLIENT);
    assert_child_of(call, refund);
    let served = span(&spans, GATEWAY, "POST /api/v1/refunds");
    assert_child_of(served, call);
    assert_child_of(span(&spans, GATEWAY, "gateway refund"), served);
    assert_one_tree(&spans, &cancel_test_span);
    let services: HashSet<&str> = spans.iter().map(|s| s.service.as_str()).collect();
    assert_eq!(services, HashSet::from([CUSTOMER, ORDER, GATEWAY]));
    assert_logged_ids_are_exported(&platform, &spans, &cancel_trace);

    // 3. A declined charge: the gateway answers, the order FAILS, and the spans say so.
    platform
        .gateway_faults(json!({"successRate": 0.0}))
        .await
        .unwrap();
    let (declined_trace, declined_test_span, traceparent) = test_traceparent();
    let declined = checkout(&customer, &product, &traceparent).await;
    wait_for_state(&platform, &declined, ("FAILED", Some("FAILED"))).await;
    let spans = receiver
        .trace_when(&declined_trace, Duration::from_secs(20), |s| {
            has(s, GATEWAY, "gateway charge")
                && has(s, ORDER, "payment charge")
                && whole(s, &declined_test_span)
        })
        .await;
    let gateway_charge = span(&spans, GATEWAY, "gateway charge");
    assert!(gateway_charge.error, "{}", describe(&spans));
    assert_eq!(gateway_charge.status_message, "payment declined");
    let order_charge = span(&spans, ORDER, "payment charge");
    assert!(order_charge.error);
    assert!(
        order_charge.status_message.starts_with("declined"),
        "{}",
        order_charge.status_message
    );
    // The gateway's answer itself was a success (201): HTTP spans are not failed.
    assert!(!span(&spans, GATEWAY, "POST /api/v1/payments").error);

    assert!(receiver.rejected().is_empty(), "{:?}", receiver.rejected());
    platform.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_endpoint_nothing_is_exported_and_the_logs_keep_their_ids() {
    // The receiver listens where an OpenTelemetry SDK sends when told no endpoint
    // (localhost:4318): a service that exported without being asked would reach it.
    let receiver = Receiver::start_on(4318)
        .await
        .expect("port 4318 is free for this test (no local collector running)");
    let platform = chaos::Platform::start(&[]).await.unwrap();
    let product = platform.create_products(1, 5).await.unwrap().remove(0);
    let (trace, _, traceparent) = test_traceparent();
    let number = checkout(&platform.customer.url(), &product, &traceparent).await;
    wait_for_state(&platform, &number, ("PAID", Some("SUCCESS"))).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(receiver.spans().is_empty());
    let logged = platform
        .customer
        .process
        .log_tail(100_000)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .any(|l| l["traceId"] == trace.as_str());
    assert!(logged, "the checkout's trace id is logged");
    platform.stop().await.unwrap();
}
