//! Walks `docs/runbook.md` and the seed runbook against the running platform: every
//! metric they and the alert rules and dashboards name is exported, the SQL they print
//! runs as written, the scripts they name run, and a poison record goes to the DLQ, is
//! seen with `opsctl dlq show`, is replayed with `manual-tests/replay-dlq.sh` exactly
//! once, and `opsctl reconcile` then finds nothing wrong.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chaos::metric_names::metric_names;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

async fn scrape(base: &str) -> String {
    reqwest::get(format!("{base}/actuator/prometheus"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

fn exported(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| l.starts_with("# TYPE "))
        .filter_map(|l| l.split_whitespace().nth(2).map(str::to_owned))
        .collect()
}

fn rand_suffix() -> u32 {
    uuid::Uuid::new_v4().as_u128() as u32 % 1_000_000
}

fn opsctl(platform: &chaos::Platform, args: &[&str]) -> std::process::Output {
    std::process::Command::new(chaos::bin_dir().join("opsctl"))
        .arg("--kafka-bootstrap-servers")
        .arg(format!("127.0.0.1:{}", platform.broker_port))
        .args(args)
        .args([
            "--customer-database-url",
            &platform.customer_db,
            "--order-database-url",
            &platform.order_db,
        ])
        .args([
            "--customer-base",
            &platform.customer.url(),
            "--order-base",
            &platform.order.url(),
        ])
        .args(["--gateway-base", &platform.gateway.url()])
        .env("PAYMENT_GATEWAY_ADMIN_TOKEN", &platform.gateway_admin_token)
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runbook_works_as_written_against_the_platform() {
    let platform = chaos::Platform::start(&[]).await.unwrap();

    // The quickstart smoke, as the runbook's deployments section runs it.
    let quickstart = std::process::Command::new(root().join("scripts/validate-quickstart.sh"))
        .env("OPSCTL_SMOKE_PASSWORD", "manager123")
        .args([
            "--target",
            "local",
            "--customer-base",
            &platform.customer.url(),
            "--order-base",
            &platform.order.url(),
        ])
        .output()
        .unwrap();
    assert!(
        quickstart.status.success(),
        "quickstart: {}",
        String::from_utf8_lossy(&quickstart.stderr)
    );

    // Every metric named by the runbooks, the alert rules and the dashboards is exported.
    let mut names = BTreeSet::new();
    for file in [
        "../shared/seed/operations-runbook.md",
        "docs/runbook.md",
        "infrastructure/prometheus/alerts.yml",
        "infrastructure/grafana/dashboards/platform-overview.json",
    ] {
        if let Ok(text) = std::fs::read_to_string(root().join(file)) {
            names.extend(metric_names(&text));
        }
    }
    for must in [
        "checkout_success_total",
        "checkout_attempt_total",
        "orders_created_total",
        "payments_completed_total",
        "payments_attempted_total",
        "kafka_consumer_records_lag_max",
        "resilience4j_circuitbreaker_state",
        "hikaricp_connections_active",
        "outbox_pending_rows",
        "dlq_messages_total",
    ] {
        assert!(names.contains(must), "{must} not found in the documents");
    }
    // Produce one dead letter so the DLQ counter has a series.
    let producer: FutureProducer = ClientConfig::new()
        .set(
            "bootstrap.servers",
            format!("127.0.0.1:{}", platform.broker_port),
        )
        .create()
        .unwrap();
    producer
        .send(
            FutureRecord::to(&platform.orders_topic)
                .key("poison")
                .payload("{not json"),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    let dlq = format!("{}.dlq", platform.orders_topic);
    let mut shown = String::new();
    for _ in 0..100 {
        let out = opsctl(&platform, &["dlq", "show", &dlq, "--num", "5"]);
        shown = String::from_utf8_lossy(&out.stdout).into_owned();
        if shown.contains("{not json") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        shown.contains("{not json"),
        "the poison record is on the DLQ: {shown}"
    );
    assert!(
        shown.contains(&platform.orders_topic),
        "its headers name the original topic: {shown}"
    );

    // Consumer lag is read from the client's statistics every few seconds.
    let mut missing = Vec::new();
    for _ in 0..60 {
        let mut exported_names = BTreeSet::new();
        for service in [&platform.customer, &platform.order, &platform.gateway] {
            exported_names.extend(exported(&scrape(&service.url()).await));
        }
        missing = names
            .iter()
            .filter(|n| !exported_names.contains(*n))
            .cloned()
            .collect();
        if missing.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(
        missing.is_empty(),
        "named in the documents but not exported: {missing:?}"
    );

    // The runbook's SQL (section 5.3), as written.
    let customer = sqlx::PgPool::connect(&platform.customer_db).await.unwrap();
    let rows = sqlx::query(
        "SELECT idempotency_key, status, created_at\n   FROM checkout_idempotency\n   ORDER BY created_at DESC LIMIT 10;",
    )
    .fetch_all(&customer)
    .await
    .unwrap();
    assert!(!rows.is_empty(), "the quickstart's key is listed");

    // A good event that was dead-lettered earlier (its processing failed while order_db
    // was down, say): after the fix, replaying it makes the order, once.
    let mut event: serde_json::Value = serde_json::from_str(include_str!(
        "../../../specs/001-e-commerce-platform/contracts/events/order-created.json"
    ))
    .unwrap();
    let order_id = uuid::Uuid::new_v4().to_string();
    let number = format!("ORD-19990101-{}", rand_suffix());
    event["eventId"] = serde_json::json!(uuid::Uuid::new_v4());
    event["orderId"] = serde_json::json!(order_id);
    event["orderNumber"] = serde_json::json!(number);
    let payload = event.to_string();
    let headers = rdkafka::message::OwnedHeaders::new()
        .insert(rdkafka::message::Header {
            key: "kafka_dlt-original-topic",
            value: Some(platform.orders_topic.as_str()),
        })
        .insert(rdkafka::message::Header {
            key: "kafka_dlt-original-partition",
            value: Some("0"),
        })
        .insert(rdkafka::message::Header {
            key: "kafka_dlt-original-offset",
            value: Some("0"),
        })
        .insert(rdkafka::message::Header {
            key: "kafka_dlt-exception-fqcn",
            value: Some("RetriesExhausted"),
        })
        .insert(rdkafka::message::Header {
            key: "kafka_dlt-exception-message",
            value: Some("order_db unreachable"),
        });
    producer
        .send(
            FutureRecord::to(&dlq)
                .key(&order_id)
                .payload(&payload)
                .headers(headers),
            Duration::from_secs(10),
        )
        .await
        .unwrap();

    // Replay the DLQ with the runbook's script: each record exactly once.
    let replay = |args: &[&str]| {
        std::process::Command::new(root().join("manual-tests/replay-dlq.sh"))
            .arg(&dlq)
            .args(args)
            .env("OPSCTL", chaos::bin_dir().join("opsctl"))
            .env(
                "OPSCTL_KAFKA_BOOTSTRAP_SERVERS",
                format!("127.0.0.1:{}", platform.broker_port),
            )
            .output()
            .unwrap()
    };
    let first = replay(&["--json"]);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let first: serde_json::Value = serde_json::from_slice(&first.stdout).unwrap();
    assert_eq!(first["replayed"], 2, "{first}");
    let order_url = format!("{}/api/v1/orders/{number}", platform.order.url());
    let mut status = String::new();
    for _ in 0..100 {
        let response = reqwest::get(&order_url).await.unwrap();
        if response.status() == 200 {
            let order: serde_json::Value = response.json().await.unwrap();
            status = order["status"].as_str().unwrap_or_default().to_owned();
            if status == "PAID" {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, "PAID", "the replayed event became an order");
    // The poison is handled once more: dead-lettered again, once, not in a loop.
    let order = &platform.order;
    for _ in 0..100 {
        if order
            .metric("dlq_messages_total", &[("topic", &dlq)])
            .await
            .unwrap()
            >= Some(2.0)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        order
            .metric("dlq_messages_total", &[("topic", &dlq)])
            .await
            .unwrap(),
        Some(2.0)
    );
    // A second run replays only that new dead letter, never a record it replayed before.
    let second: serde_json::Value =
        serde_json::from_slice(&replay(&["--json", "--dry-run"]).stdout).unwrap();
    let keys: Vec<&str> = second["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["key"].as_str())
        .collect();
    assert_eq!(keys, vec!["poison"], "{second}");
    let orders = sqlx::PgPool::connect(&platform.order_db).await.unwrap();
    let copies: i64 = sqlx::query_scalar("SELECT count(*) FROM orders WHERE order_number = $1")
        .bind(&number)
        .fetch_one(&orders)
        .await
        .unwrap();
    assert_eq!(copies, 1);

    // The books balance.
    let reconcile = opsctl(&platform, &["reconcile", "--grace", "0s"]);
    assert!(
        reconcile.status.success(),
        "reconcile found problems: {}{}",
        String::from_utf8_lossy(&reconcile.stdout),
        String::from_utf8_lossy(&reconcile.stderr)
    );
    let lag = opsctl(
        &platform,
        &["kafka", "group", "describe", "order-service-group"],
    );
    assert!(
        lag.status.success(),
        "{}",
        String::from_utf8_lossy(&lag.stderr)
    );
    platform.stop().await.unwrap();
}
