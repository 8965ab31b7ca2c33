//! Payment transactions: claiming one for a gateway call, recording the answer, and
//! finding the ones the retry worker must resume.
//!
//! A claim is a lease (`locked_until`) taken under the order's row lock: while it
//! lasts no other worker calls the gateway for the order and a cancel is refused, so a
//! cancel can never race a charge.

use crate::domain::{OrderStatus, PaymentStatus};
use rust_decimal::Decimal;
use sqlx::PgConnection;
use uuid::Uuid;

/// A payment claimed for one gateway call.
#[derive(Debug, Clone)]
pub struct Claim {
    pub order_id: Uuid,
    pub order_number: String,
    pub customer_email: String,
    pub correlation_id: Option<String>,
    pub amount: Decimal,
    pub payment_id: Uuid,
    pub attempt_count: i32,
}

/// Claims the PENDING payment of an order awaiting payment, moving the order to
/// PROCESSING. `None` when there is nothing to pay or another worker holds the lease.
pub async fn claim(
    conn: &mut PgConnection,
    order_id: Uuid,
    lease_secs: f64,
) -> Result<Option<Claim>, sqlx::Error> {
    let row = sqlx::query!(
        r#"SELECT o.order_number, o.customer_email, o.correlation_id,
                  o.status AS "order_status: OrderStatus",
                  p.id AS payment_id, p.amount, p.attempt_count,
                  p.status AS "payment_status: PaymentStatus",
                  (p.locked_until IS NOT NULL AND p.locked_until > (now() AT TIME ZONE 'UTC')) AS "leased!"
           FROM orders o JOIN payment_transactions p ON p.order_id = o.id
           WHERE o.id = $1
           FOR UPDATE OF o, p"#,
        order_id
    )
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    if row.payment_status != PaymentStatus::Pending
        || !row.order_status.awaits_payment()
        || row.leased
    {
        return Ok(None);
    }
    sqlx::query!(
        "UPDATE orders SET status = 'PROCESSING', updated_at = (now() AT TIME ZONE 'UTC') \
         WHERE id = $1 AND status = 'PENDING'",
        order_id
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query!(
        "UPDATE payment_transactions \
         SET locked_until = (now() AT TIME ZONE 'UTC') + make_interval(secs => $2), \
             updated_at = (now() AT TIME ZONE 'UTC') \
         WHERE id = $1",
        row.payment_id,
        lease_secs
    )
    .execute(&mut *conn)
    .await?;
    Ok(Some(Claim {
        order_id,
        order_number: row.order_number,
        customer_email: row.customer_email,
        correlation_id: row.correlation_id,
        amount: row.amount,
        payment_id: row.payment_id,
        attempt_count: row.attempt_count,
    }))
}

/// Records the gateway's answer on a still PENDING payment; false when it is no
/// longer pending (recorded by another worker, or the order was cancelled).
#[allow(clippy::too_many_arguments)]
pub async fn record_result(
    conn: &mut PgConnection,
    payment_id: Uuid,
    status: PaymentStatus,
    external_transaction_id: Option<&str>,
    failure_reason: Option<&str>,
    gateway_payment_id: Option<&str>,
) -> Result<bool, sqlx::Error> {
    let result = sqlx::query!(
        "UPDATE payment_transactions \
         SET status = $2, external_transaction_id = $3, failure_reason = $4, \
             gateway_payment_id = $5, attempt_count = attempt_count + 1, \
             completed_at = (now() AT TIME ZONE 'UTC'), updated_at = (now() AT TIME ZONE 'UTC'), \
             locked_until = NULL, last_error = NULL \
         WHERE id = $1 AND status = 'PENDING'",
        payment_id,
        status as PaymentStatus,
        external_transaction_id,
        failure_reason,
        gateway_payment_id
    )
    .execute(conn)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Releases the claim of a payment the gateway did not answer, due again in `retry_secs`.
pub async fn postpone(
    conn: &mut PgConnection,
    payment_id: Uuid,
    error: &str,
    called: bool,
    retry_secs: f64,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE payment_transactions \
         SET locked_until = NULL, last_error = $2, \
             attempt_count = attempt_count + CASE WHEN $3 THEN 1 ELSE 0 END, \
             next_attempt_at = (now() AT TIME ZONE 'UTC') + make_interval(secs => $4), \
             updated_at = (now() AT TIME ZONE 'UTC') \
         WHERE id = $1 AND status = 'PENDING'",
        payment_id,
        error,
        called,
        retry_secs
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Orders whose PENDING payment is due and unclaimed, oldest due first.
pub async fn due(conn: &mut PgConnection, limit: i64) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar!(
        "SELECT p.order_id FROM payment_transactions p JOIN orders o ON o.id = p.order_id \
         WHERE p.status = 'PENDING' AND o.status IN ('PENDING', 'PROCESSING') \
           AND p.next_attempt_at <= (now() AT TIME ZONE 'UTC') \
           AND (p.locked_until IS NULL OR p.locked_until <= (now() AT TIME ZONE 'UTC')) \
         ORDER BY p.next_attempt_at LIMIT $1",
        limit
    )
    .fetch_all(conn)
    .await
}

/// The order a PaymentCompleted event is about, locked, with its payment transaction.
#[derive(Debug)]
pub struct CompletionTarget {
    pub order_id: Uuid,
    pub order_status: OrderStatus,
    pub payment_status: PaymentStatus,
}

/// Locks the order and payment a PaymentCompleted event names; `None` if they do not
/// exist or do not belong together.
pub async fn lock_for_completion(
    conn: &mut PgConnection,
    order_id: Uuid,
    payment_id: Uuid,
) -> Result<Option<CompletionTarget>, sqlx::Error> {
    let row = sqlx::query!(
        r#"SELECT o.id, o.status AS "order_status: OrderStatus",
                  p.status AS "payment_status: PaymentStatus"
           FROM orders o JOIN payment_transactions p ON p.order_id = o.id
           WHERE o.id = $1 AND p.id = $2
           FOR UPDATE OF o, p"#,
        order_id,
        payment_id
    )
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|r| CompletionTarget {
        order_id: r.id,
        order_status: r.order_status,
        payment_status: r.payment_status,
    }))
}

/// Moves an order awaiting payment to PAID or FAILED.
pub async fn complete_order(
    conn: &mut PgConnection,
    order_id: Uuid,
    status: OrderStatus,
) -> Result<bool, sqlx::Error> {
    let result = sqlx::query!(
        "UPDATE orders SET status = $2, updated_at = (now() AT TIME ZONE 'UTC') \
         WHERE id = $1 AND status IN ('PENDING', 'PROCESSING')",
        order_id,
        status as OrderStatus
    )
    .execute(conn)
    .await?;
    Ok(result.rows_affected() == 1)
}
