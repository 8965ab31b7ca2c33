use crate::helpers::{customer_db, minutes_ago, order_db};
use opsctl::cli::ReconcileArgs;
use opsctl::reconcile::{self, Kind};
use serde_json::json;
use sqlx::PgPool;
use std::time::Duration;
use uuid::Uuid;

async fn checkout(customer: &PgPool, order_id: Uuid, number: &str, minutes: i64) {
    sqlx::query(
        "INSERT INTO order_created_outbox (id, aggregate_id, payload, status, topic, created_at)
         VALUES ($1, $2, $3, 'PUBLISHED', 'orders.created', $4)",
    )
    .bind(Uuid::new_v4())
    .bind(order_id)
    .bind(json!({"orderId": order_id, "orderNumber": number}))
    .bind(minutes_ago(minutes))
    .execute(customer)
    .await
    .expect("checkout inserted");
}

async fn order(pool: &PgPool, source: Uuid, number: &str, status: &str, minutes: i64) {
    sqlx::query(
        "INSERT INTO orders (order_number, customer_name, customer_email, customer_phone,
                             shipping_address, subtotal, status, source_order_id, created_at)
         VALUES ($1, 'Ada', 'ada@example.com', '+44', '{}', 10.00, $2::order_status, $3, $4)",
    )
    .bind(number)
    .bind(status)
    .bind(source)
    .bind(minutes_ago(minutes))
    .execute(pool)
    .await
    .expect("order inserted");
}

fn args() -> ReconcileArgs {
    ReconcileArgs {
        grace: Duration::from_secs(300),
        stuck_after: Duration::from_secs(600),
        window: Duration::from_secs(7 * 86_400),
        no_ledger: false,
    }
}

#[tokio::test]
async fn reconcile_finds_a_missing_a_stuck_and_a_double_charged_order_and_nothing_else() {
    let (customer, _) = customer_db().await;
    let (orders, _) = order_db().await;
    let (paid, missing, young, stuck) = (
        Uuid::new_v4(),
        Uuid::new_v4(),
        Uuid::new_v4(),
        Uuid::new_v4(),
    );
    checkout(&customer, paid, "ORD-20260101-000001", 60).await;
    checkout(&customer, missing, "ORD-20260101-000002", 60).await;
    checkout(&customer, young, "ORD-20260101-000003", 1).await;
    checkout(&customer, stuck, "ORD-20260101-000004", 60).await;
    order(&orders, paid, "ORD-20260101-000001", "PAID", 59).await;
    order(&orders, stuck, "ORD-20260101-000004", "PROCESSING", 59).await;

    let (base, stop) = payment_gateway::testing::spawn()
        .await
        .expect("gateway starts on a fresh database");
    let http = reqwest::Client::new();
    for key in ["first-key", "second-key"] {
        let response = http
            .post(format!("{base}/api/v1/payments"))
            .header("Idempotency-Key", key)
            .json(&json!({"orderId": paid, "orderNumber": "ORD-20260101-000001", "amount": 10.0}))
            .send()
            .await
            .expect("charged");
        assert_eq!(response.status(), 201);
    }

    let ledger = reconcile::fetch_ledger(&base).await.expect("ledger read");
    let report = reconcile::reconcile(&customer, &orders, Some(&ledger), &args())
        .await
        .expect("reconciled");
    stop.cancel();

    let of = |kind| report.of_kind(kind).map(|f| f.order_id).collect::<Vec<_>>();
    assert_eq!(of(Kind::Missing), [Some(missing)], "{report:#?}");
    assert_eq!(of(Kind::Stuck), [Some(stuck)], "{report:#?}");
    assert_eq!(of(Kind::DoubleCharged), [Some(paid)], "{report:#?}");
    assert_eq!(of(Kind::Duplicated), [], "{report:#?}");
    assert_eq!(report.findings.len(), 3);
    assert_eq!(report.checkouts, 4);
    assert_eq!(report.ledger_lines, Some(2));
}

#[tokio::test]
async fn a_healthy_platform_reconciles_with_no_findings() {
    let (customer, _) = customer_db().await;
    let (orders, _) = order_db().await;
    let id = Uuid::new_v4();
    checkout(&customer, id, "ORD-20260101-000009", 60).await;
    order(&orders, id, "ORD-20260101-000009", "PAID", 59).await;
    let report = reconcile::reconcile(&customer, &orders, Some(&[]), &args())
        .await
        .expect("reconciled");
    assert!(report.findings.is_empty(), "{report:#?}");
}
