use crate::helpers::{customer_db, minutes_ago, order_db};
use opsctl::outbox::{self, Outbox};
use sqlx::PgPool;
use std::time::Duration;
use uuid::Uuid;

async fn row(pool: &PgPool, table: &str, status: &str, created_minutes_ago: i64) -> Uuid {
    let id = Uuid::new_v4();
    sqlx::query(&format!(
        "INSERT INTO {table} (id, aggregate_id, payload, status, retry_count, topic, created_at, next_attempt_at, error_message)
         VALUES ($1, $2, '{{}}', $3, 7, 'orders.created', $4, $5, 'broker down')"
    ))
    .bind(id)
    .bind(Uuid::new_v4())
    .bind(status)
    .bind(minutes_ago(created_minutes_ago))
    .bind(minutes_ago(-30))
    .execute(pool)
    .await
    .expect("row inserted");
    id
}

#[tokio::test]
async fn status_counts_rows_by_state_and_ages_the_oldest_pending_one() {
    let (customer, _) = customer_db().await;
    row(&customer, "order_created_outbox", "PENDING", 30).await;
    row(&customer, "order_created_outbox", "PENDING", 1).await;
    row(&customer, "order_created_outbox", "FAILED", 5).await;
    row(&customer, "order_created_outbox", "PUBLISHED", 60).await;

    let status = outbox::status(&customer, Outbox::OrderCreated)
        .await
        .expect("status");

    assert_eq!((status.pending, status.failed, status.published), (2, 1, 1));
    let age = status.oldest_pending_age_secs.expect("a pending row");
    assert!((29 * 60..=31 * 60).contains(&age), "{age}");
    assert_eq!(status.last_error.as_deref(), Some("broker down"));
}

#[tokio::test]
async fn requeue_failed_makes_old_failed_rows_pending_and_due_with_the_backoff_reset() {
    let (order, _) = order_db().await;
    let old = row(&order, "payment_completed_outbox", "FAILED", 120).await;
    let young = row(&order, "payment_completed_outbox", "FAILED", 1).await;
    let waiting = row(&order, "payment_completed_outbox", "PENDING", 120).await;

    let n = outbox::requeue(
        &order,
        Outbox::PaymentCompleted,
        true,
        Some(Duration::from_secs(600)),
    )
    .await
    .expect("requeued");

    assert_eq!(n, 1);
    let state = |id: Uuid| {
        let order = order.clone();
        async move {
            sqlx::query_as::<_, (String, i32, bool)>(
                "SELECT status, retry_count, next_attempt_at <= (now() AT TIME ZONE 'UTC')
                 FROM payment_completed_outbox WHERE id = $1",
            )
            .bind(id)
            .fetch_one(&order)
            .await
            .expect("row")
        }
    };
    assert_eq!(state(old).await, ("PENDING".into(), 0, true));
    assert_eq!(state(young).await.0, "FAILED");
    assert_eq!(
        state(waiting).await,
        ("PENDING".into(), 7, false),
        "--failed leaves pending rows"
    );

    let n = outbox::requeue(&order, Outbox::PaymentCompleted, false, None)
        .await
        .expect("requeued");
    assert_eq!(n, 2, "the young failed row and the backing-off pending row");
    assert_eq!(state(waiting).await, ("PENDING".into(), 0, true));
    let status = outbox::status(&order, Outbox::PaymentCompleted)
        .await
        .expect("status");
    assert_eq!((status.pending, status.failed), (3, 0));
}
