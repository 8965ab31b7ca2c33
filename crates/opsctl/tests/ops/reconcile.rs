use crate::helpers::{adr_0007_schema, customer_db, gateway, minutes_ago, order_db};
use opsctl::cli::ReconcileArgs;
use opsctl::reconcile::{self, Kind, Ledger, LedgerLine, Report};
use serde_json::json;
use sqlx::PgPool;
use std::time::Duration;
use uuid::Uuid;

async fn checkout(customer: &PgPool, order_id: Uuid, number: &str, minutes: i64) {
    checkout_with_status(customer, order_id, number, minutes, "PUBLISHED").await;
}

async fn checkout_with_status(
    customer: &PgPool,
    order_id: Uuid,
    number: &str,
    minutes: i64,
    status: &str,
) {
    sqlx::query(
        "INSERT INTO order_created_outbox (id, aggregate_id, payload, status, topic, created_at,
                                           next_attempt_at)
         VALUES ($1, $2, $3, $4, 'orders.created', $5, $5)",
    )
    .bind(Uuid::new_v4())
    .bind(order_id)
    .bind(json!({"orderId": order_id, "orderNumber": number}))
    .bind(status)
    .bind(minutes_ago(minutes))
    .execute(customer)
    .await
    .expect("checkout inserted");
}

/// An order (subtotal 10.00) created and last updated `minutes` ago.
async fn order(pool: &PgPool, source: Uuid, number: &str, status: &str, minutes: i64) {
    sqlx::query(
        "INSERT INTO orders (order_number, customer_name, customer_email, customer_phone,
                             shipping_address, subtotal, status, source_order_id, created_at,
                             updated_at)
         VALUES ($1, 'Ada', 'ada@example.com', '+44', '{}', 10.00, $2::order_status, $3, $4, $4)",
    )
    .bind(number)
    .bind(status)
    .bind(source)
    .bind(minutes_ago(minutes))
    .execute(pool)
    .await
    .expect("order inserted");
}

/// The payment of order `source`, due `due_in_minutes` from now.
async fn payment(pool: &PgPool, source: Uuid, status: &str, due_in_minutes: i64) {
    sqlx::query(
        "INSERT INTO payment_transactions (order_id, amount, status, payment_method, next_attempt_at)
         SELECT id, 10.00, $2::payment_status, 'CREDIT_CARD', $3 FROM orders WHERE source_order_id = $1",
    )
    .bind(source)
    .bind(status)
    .bind(minutes_ago(-due_in_minutes))
    .execute(pool)
    .await
    .expect("payment inserted");
}

/// Marks the refund of order `source` requested `minutes` ago and due in an hour.
async fn refund_requested(pool: &PgPool, source: Uuid, minutes: i64) {
    sqlx::query(
        "UPDATE payment_transactions p
         SET refund_requested_at = $2, refund_reason = 'cancelled', refund_attempt_count = 3,
             refund_last_error = 'gateway unreachable', refund_next_attempt_at = $3
         FROM orders o WHERE p.order_id = o.id AND o.source_order_id = $1",
    )
    .bind(source)
    .bind(minutes_ago(minutes))
    .bind(minutes_ago(-60))
    .execute(pool)
    .await
    .expect("refund requested");
}

async fn stock_returned(customer: &PgPool, source: Uuid, number: &str, status: &str) {
    sqlx::query(
        "INSERT INTO stock_returns (order_id, order_number, event_id, order_status, reason, items,
                                    returned_at)
         VALUES ($1, $2, gen_random_uuid(), $3, 'declined', '[]', (now() AT TIME ZONE 'UTC'))",
    )
    .bind(source)
    .bind(number)
    .bind(status)
    .execute(customer)
    .await
    .expect("stock return inserted");
}

async fn released_row(order: &PgPool, source: Uuid, status: &str) {
    sqlx::query(
        "INSERT INTO payment_completed_outbox (id, aggregate_id, event_type, payload, status, topic,
                                               created_at, next_attempt_at)
         VALUES (gen_random_uuid(), $1, 'OrderReleasedEvent', '{}', $2, 'orders.released',
                 $3, $3)",
    )
    .bind(source)
    .bind(status)
    .bind(minutes_ago(50))
    .execute(order)
    .await
    .expect("orders.released row inserted");
}

/// Charges `amount` for `order_id` at the gateway, with the order id as the key (ADR 0007).
async fn charge(base: &str, order_id: Uuid, number: &str, amount: f64) {
    let response = reqwest::Client::new()
        .post(format!("{base}/api/v1/payments"))
        .bearer_auth(payment_gateway::testing::SERVICE_TOKEN)
        .header("Idempotency-Key", order_id.to_string())
        .json(&json!({"orderId": order_id, "orderNumber": number, "amount": amount}))
        .send()
        .await
        .expect("charged");
    assert_eq!(response.status(), 201);
}

/// A successful ledger line of `amount` for `order_id`, as the gateway lists it.
fn line(order_id: Uuid, amount: f64) -> LedgerLine {
    LedgerLine {
        id: Uuid::new_v4(),
        order_id,
        order_number: None,
        status: "SUCCEEDED".to_owned(),
        amount: Some(amount),
        refunded_amount: Some(0.0),
        net_amount: Some(amount),
        idempotency_key: Some(order_id.to_string()),
        charge_count: 1,
    }
}

fn args() -> ReconcileArgs {
    ReconcileArgs {
        grace: Duration::from_secs(300),
        stuck_after: Duration::from_secs(600),
        window: Duration::from_secs(7 * 86_400),
        no_ledger: false,
        repair: false,
    }
}

fn of(report: &Report, kind: Kind) -> Vec<Option<Uuid>> {
    report.of_kind(kind).map(|f| f.order_id).collect()
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

    let (base, stop) = gateway().await;
    let http = reqwest::Client::new();
    for key in ["first-key", "second-key"] {
        let response = http
            .post(format!("{base}/api/v1/payments"))
            .bearer_auth(payment_gateway::testing::SERVICE_TOKEN)
            .header("Idempotency-Key", key)
            .json(&json!({"orderId": paid, "orderNumber": "ORD-20260101-000001", "amount": 10.0}))
            .send()
            .await
            .expect("charged");
        assert_eq!(response.status(), 201);
    }

    let ledger = reconcile::fetch_ledger(&base, Some(payment_gateway::testing::ADMIN_TOKEN))
        .await
        .expect("ledger read");
    let report = reconcile::reconcile(&customer, &orders, Some(&ledger), &args())
        .await
        .expect("reconciled");
    stop();

    assert_eq!(of(&report, Kind::Missing), [Some(missing)], "{report:#?}");
    assert_eq!(of(&report, Kind::Stuck), [Some(stuck)], "{report:#?}");
    assert_eq!(
        of(&report, Kind::DoubleCharged),
        [Some(paid)],
        "{report:#?}"
    );
    assert_eq!(of(&report, Kind::Duplicated), [], "{report:#?}");
    assert_eq!(report.findings.len(), 3, "{report:#?}");
    assert_eq!(report.checkouts, 4);
    assert_eq!(report.ledger_lines, Some(2));
}

#[tokio::test]
async fn a_healthy_platform_reconciles_with_no_findings() {
    let (customer, _) = customer_db().await;
    let (orders, _) = order_db().await;
    adr_0007_schema(&customer, &orders).await;
    let (paid, declined) = (Uuid::new_v4(), Uuid::new_v4());
    checkout(&customer, paid, "ORD-20260101-000009", 60).await;
    order(&orders, paid, "ORD-20260101-000009", "PAID", 59).await;
    checkout(&customer, declined, "ORD-20260101-000010", 60).await;
    order(&orders, declined, "ORD-20260101-000010", "FAILED", 59).await;
    stock_returned(&customer, declined, "ORD-20260101-000010", "FAILED").await;
    let ledger = Ledger {
        charges: vec![line(paid, 10.0)],
        refunds: Some(Vec::new()),
    };
    let report = reconcile::reconcile(&customer, &orders, Some(&ledger), &args())
        .await
        .expect("reconciled");
    assert!(report.findings.is_empty(), "{report:#?}");
    assert!(report.notes.is_empty(), "{report:#?}");
}

#[tokio::test]
async fn a_charge_on_a_failed_order_is_an_amount_mismatch() {
    let (customer, _) = customer_db().await;
    let (orders, _) = order_db().await;
    adr_0007_schema(&customer, &orders).await;
    let failed = Uuid::new_v4();
    checkout(&customer, failed, "ORD-20260101-000011", 60).await;
    order(&orders, failed, "ORD-20260101-000011", "FAILED", 59).await;
    payment(&orders, failed, "FAILED", 0).await;
    stock_returned(&customer, failed, "ORD-20260101-000011", "FAILED").await;
    let (base, stop) = gateway().await;
    charge(&base, failed, "ORD-20260101-000011", 10.0).await;

    let ledger = reconcile::fetch_ledger(&base, Some(payment_gateway::testing::ADMIN_TOKEN))
        .await
        .expect("ledger read");
    let report = reconcile::reconcile(&customer, &orders, Some(&ledger), &args())
        .await
        .expect("reconciled");
    stop();

    assert_eq!(
        of(&report, Kind::AmountMismatch),
        [Some(failed)],
        "{report:#?}"
    );
    let finding = report
        .of_kind(Kind::AmountMismatch)
        .next()
        .expect("a finding");
    assert!(finding.detail.contains("10.00"), "{}", finding.detail);
    assert_eq!(report.problems(), 1, "{report:#?}");
}

#[tokio::test]
async fn a_paid_order_without_a_charge_is_an_amount_mismatch() {
    let (customer, _) = customer_db().await;
    let (orders, _) = order_db().await;
    let (paid, charged) = (Uuid::new_v4(), Uuid::new_v4());
    checkout(&customer, paid, "ORD-20260101-000012", 60).await;
    order(&orders, paid, "ORD-20260101-000012", "PAID", 59).await;
    checkout(&customer, charged, "ORD-20260101-000013", 60).await;
    order(&orders, charged, "ORD-20260101-000013", "PAID", 59).await;
    let (base, stop) = gateway().await;
    charge(&base, charged, "ORD-20260101-000013", 10.0).await;

    let ledger = reconcile::fetch_ledger(&base, Some(payment_gateway::testing::ADMIN_TOKEN))
        .await
        .expect("ledger read");
    let report = reconcile::reconcile(&customer, &orders, Some(&ledger), &args())
        .await
        .expect("reconciled");
    stop();

    assert_eq!(
        of(&report, Kind::AmountMismatch),
        [Some(paid)],
        "{report:#?}"
    );
    assert_eq!(report.findings.len(), 1, "{report:#?}");
}

#[tokio::test]
async fn a_charge_for_no_order_is_an_orphan_charge() {
    let (customer, _) = customer_db().await;
    let (orders, _) = order_db().await;
    let stranger = Uuid::new_v4();
    let (base, stop) = gateway().await;
    charge(&base, stranger, "ORD-20260101-000014", 25.0).await;

    let ledger = reconcile::fetch_ledger(&base, Some(payment_gateway::testing::ADMIN_TOKEN))
        .await
        .expect("ledger read");
    let report = reconcile::reconcile(&customer, &orders, Some(&ledger), &args())
        .await
        .expect("reconciled");
    stop();

    assert_eq!(
        of(&report, Kind::OrphanCharge),
        [Some(stranger)],
        "{report:#?}"
    );
}

#[tokio::test]
async fn a_refund_pending_within_the_grace_period_is_informational_and_after_it_a_mismatch() {
    let (customer, _) = customer_db().await;
    let (orders, _) = order_db().await;
    adr_0007_schema(&customer, &orders).await;
    let (young, old) = (Uuid::new_v4(), Uuid::new_v4());
    for (id, number) in [(young, "ORD-20260101-000015"), (old, "ORD-20260101-000016")] {
        checkout(&customer, id, number, 60).await;
        order(&orders, id, number, "CANCELLED", 59).await;
        payment(&orders, id, "SUCCESS", 0).await;
        stock_returned(&customer, id, number, "CANCELLED").await;
    }
    refund_requested(&orders, young, 1).await;
    refund_requested(&orders, old, 30).await;
    let ledger = Ledger {
        charges: vec![line(young, 10.0), line(old, 10.0)],
        refunds: Some(Vec::new()),
    };

    let report = reconcile::reconcile(&customer, &orders, Some(&ledger), &args())
        .await
        .expect("reconciled");

    assert_eq!(
        of(&report, Kind::RefundPending),
        [Some(young)],
        "{report:#?}"
    );
    assert_eq!(
        of(&report, Kind::AmountMismatch),
        [Some(old)],
        "{report:#?}"
    );
    assert_eq!(report.problems(), 1, "{report:#?}");
}

#[tokio::test]
async fn an_ended_order_without_its_stock_back_is_reported_and_stock_given_back_for_a_paid_one_too()
{
    let (customer, _) = customer_db().await;
    let (orders, _) = order_db().await;
    adr_0007_schema(&customer, &orders).await;
    let (lost, returned, young, paid, unknown) = (
        Uuid::new_v4(),
        Uuid::new_v4(),
        Uuid::new_v4(),
        Uuid::new_v4(),
        Uuid::new_v4(),
    );
    order(&orders, lost, "ORD-20260101-000017", "FAILED", 60).await;
    order(&orders, returned, "ORD-20260101-000018", "CANCELLED", 60).await;
    order(&orders, young, "ORD-20260101-000019", "FAILED", 1).await;
    order(&orders, paid, "ORD-20260101-000020", "PAID", 60).await;
    stock_returned(&customer, returned, "ORD-20260101-000018", "CANCELLED").await;
    stock_returned(&customer, paid, "ORD-20260101-000020", "FAILED").await;
    stock_returned(&customer, unknown, "ORD-20260101-000021", "FAILED").await;
    released_row(&orders, lost, "PUBLISHED").await;

    let report = reconcile::reconcile(&customer, &orders, None, &args())
        .await
        .expect("reconciled");

    assert_eq!(
        of(&report, Kind::StockNotReturned),
        [Some(lost)],
        "{report:#?}"
    );
    let lost_detail = &report
        .of_kind(Kind::StockNotReturned)
        .next()
        .expect("a finding")
        .detail;
    assert!(lost_detail.contains("PUBLISHED"), "{lost_detail}");
    let mut wrongly = of(&report, Kind::StockReturnedWrongly);
    wrongly.sort();
    let mut expected = vec![Some(paid), Some(unknown)];
    expected.sort();
    assert_eq!(wrongly, expected, "{report:#?}");
    assert_eq!(report.findings.len(), 3, "{report:#?}");
}

/// A fresh database with only the first migration of `schema`: a deployment older than
/// ADR 0007.
async fn before_adr_0007(schema: &str) -> PgPool {
    let options = platform::testing::fresh_database("ops")
        .await
        .expect("fresh database");
    let pool = PgPool::connect_with(options).await.expect("connects");
    sqlx::raw_sql(schema)
        .execute(&pool)
        .await
        .expect("migration 0001 applies");
    pool
}

#[tokio::test]
async fn against_a_deployment_older_than_adr_0007_reconcile_says_so_in_one_line_each() {
    let customer = before_adr_0007(include_str!(
        "../../../../migrations/customer_db/0001_initial_schema.sql"
    ))
    .await;
    let orders = before_adr_0007(include_str!(
        "../../../../migrations/order_db/0001_initial_schema.sql"
    ))
    .await;
    let failed = Uuid::new_v4();
    order(&orders, failed, "ORD-20260101-000022", "FAILED", 60).await;

    let report = reconcile::reconcile(&customer, &orders, None, &args())
        .await
        .expect("reconciled");

    assert_eq!(report.notes.len(), 2, "{report:#?}");
    assert!(
        report.notes[0].contains("no refund columns")
            && report.notes[1].contains("no stock_returns table"),
        "{report:#?}"
    );
    assert!(report.notes.iter().all(|n| !n.contains('\n')));
    assert!(report.findings.is_empty(), "{report:#?}");
}

async fn outbox_row(pool: &PgPool, table: &str, aggregate: Uuid) -> (String, bool) {
    sqlx::query_as(&format!(
        "SELECT status, next_attempt_at <= (now() AT TIME ZONE 'UTC') FROM {table}
         WHERE aggregate_id = $1"
    ))
    .bind(aggregate)
    .fetch_one(pool)
    .await
    .expect("outbox row")
}

#[tokio::test]
async fn repair_requeues_the_outbox_row_of_a_missing_order_and_a_second_run_changes_nothing() {
    let (customer, _) = customer_db().await;
    let (orders, _) = order_db().await;
    let missing = Uuid::new_v4();
    checkout_with_status(&customer, missing, "ORD-20260101-000023", 60, "FAILED").await;
    let mut args = args();
    args.no_ledger = true;

    let report = reconcile::reconcile(&customer, &orders, None, &args)
        .await
        .expect("reconciled");
    assert_eq!(of(&report, Kind::Missing), [Some(missing)], "{report:#?}");
    let repairs = reconcile::repair(&customer, &orders, &report)
        .await
        .expect("repaired");

    assert_eq!(repairs.len(), 1);
    assert!(repairs[0].changed, "{repairs:#?}");
    assert!(
        repairs[0].action.contains("order_created_outbox"),
        "{repairs:#?}"
    );
    assert_eq!(
        outbox_row(&customer, "order_created_outbox", missing).await,
        ("PENDING".to_owned(), true)
    );
    let again = reconcile::repair(&customer, &orders, &report)
        .await
        .expect("repaired again");
    assert!(!again[0].changed, "{again:#?}");
    assert!(again[0].action.contains("already PENDING"), "{again:#?}");
}

#[tokio::test]
async fn repair_requeues_the_orders_released_row_of_an_order_whose_stock_did_not_come_back() {
    let (customer, _) = customer_db().await;
    let (orders, _) = order_db().await;
    adr_0007_schema(&customer, &orders).await;
    let (published, none) = (Uuid::new_v4(), Uuid::new_v4());
    order(&orders, published, "ORD-20260101-000024", "CANCELLED", 60).await;
    order(&orders, none, "ORD-20260101-000025", "FAILED", 60).await;
    released_row(&orders, published, "PUBLISHED").await;

    let report = reconcile::reconcile(&customer, &orders, None, &args())
        .await
        .expect("reconciled");
    let repairs = reconcile::repair(&customer, &orders, &report)
        .await
        .expect("repaired");

    let of_order = |id| {
        repairs
            .iter()
            .find(|r| r.order_id == Some(id))
            .expect("a repair")
    };
    assert!(of_order(published).changed, "{repairs:#?}");
    assert_eq!(
        outbox_row(&orders, "payment_completed_outbox", published).await,
        ("PENDING".to_owned(), true)
    );
    assert!(!of_order(none).changed, "{repairs:#?}");
    assert!(
        of_order(none).action.contains("no orders.released row"),
        "{repairs:#?}"
    );
}

#[tokio::test]
async fn repair_makes_a_stuck_payment_and_a_pending_refund_due_now() {
    let (customer, _) = customer_db().await;
    let (orders, _) = order_db().await;
    adr_0007_schema(&customer, &orders).await;
    let (stuck, refund) = (Uuid::new_v4(), Uuid::new_v4());
    order(&orders, stuck, "ORD-20260101-000026", "PROCESSING", 60).await;
    payment(&orders, stuck, "PENDING", 30).await;
    order(&orders, refund, "ORD-20260101-000027", "CANCELLED", 60).await;
    payment(&orders, refund, "SUCCESS", 0).await;
    stock_returned(&customer, refund, "ORD-20260101-000027", "CANCELLED").await;
    refund_requested(&orders, refund, 1).await;

    let report = reconcile::reconcile(&customer, &orders, None, &args())
        .await
        .expect("reconciled");
    assert_eq!(of(&report, Kind::Stuck), [Some(stuck)], "{report:#?}");
    assert_eq!(
        of(&report, Kind::RefundPending),
        [Some(refund)],
        "{report:#?}"
    );
    let repairs = reconcile::repair(&customer, &orders, &report)
        .await
        .expect("repaired");

    assert!(repairs.iter().all(|r| r.changed), "{repairs:#?}");
    let (payment_due, refund_due): (bool, bool) = sqlx::query_as(
        "SELECT bool_or(p.next_attempt_at <= (now() AT TIME ZONE 'UTC')) FILTER (WHERE o.source_order_id = $1),
                bool_or(p.refund_next_attempt_at <= (now() AT TIME ZONE 'UTC')) FILTER (WHERE o.source_order_id = $2)
         FROM payment_transactions p JOIN orders o ON o.id = p.order_id",
    )
    .bind(stuck)
    .bind(refund)
    .fetch_one(&orders)
    .await
    .expect("payments read");
    assert!(payment_due && refund_due);
    let again = reconcile::repair(&customer, &orders, &report)
        .await
        .expect("repaired again");
    assert!(again.iter().all(|r| !r.changed), "{again:#?}");
}

/// Refunds `order_id`'s charge (or voids its key) at the gateway, as the order service's
/// refund worker does.
async fn refund(base: &str, order_id: Uuid) -> serde_json::Value {
    let response = reqwest::Client::new()
        .post(format!("{base}/api/v1/refunds"))
        .bearer_auth(payment_gateway::testing::SERVICE_TOKEN)
        .header("Idempotency-Key", format!("refund-{order_id}"))
        .json(&json!({"paymentKey": order_id.to_string(), "reason": "cancelled"}))
        .send()
        .await
        .expect("refunded");
    assert_eq!(response.status(), 201);
    response.json().await.expect("a refund")
}

#[tokio::test]
async fn a_refunded_cancelled_order_and_an_expired_one_whose_key_was_voided_reconcile_clean() {
    let (customer, _) = customer_db().await;
    let (orders, _) = order_db().await;
    adr_0007_schema(&customer, &orders).await;
    let (cancelled, expired) = (Uuid::new_v4(), Uuid::new_v4());
    for (id, number, status) in [
        (cancelled, "ORD-20260101-000028", "CANCELLED"),
        (expired, "ORD-20260101-000029", "FAILED"),
    ] {
        checkout(&customer, id, number, 60).await;
        order(&orders, id, number, status, 59).await;
        stock_returned(&customer, id, number, status).await;
    }
    let (base, stop) = gateway().await;
    charge(&base, cancelled, "ORD-20260101-000028", 10.0).await;
    assert_eq!(refund(&base, cancelled).await["status"], "REFUNDED");
    assert_eq!(refund(&base, expired).await["status"], "NOTHING_CHARGED");

    let ledger = reconcile::fetch_ledger(&base, Some(payment_gateway::testing::ADMIN_TOKEN))
        .await
        .expect("ledger read");
    let report = reconcile::reconcile(&customer, &orders, Some(&ledger), &args())
        .await
        .expect("reconciled");
    stop();

    assert!(report.findings.is_empty(), "{report:#?}");
    assert_eq!(report.ledger_refunds, Some(2), "{report:#?}");
    assert!(report.notes.is_empty(), "{report:#?}");
}
