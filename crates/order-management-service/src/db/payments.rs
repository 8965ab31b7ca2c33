//! Payment transactions: claiming one for a gateway call, recording the answer with
//! the order's new state, finding the ones the retry worker must resume or end at the
//! payment deadline, and the refunds the refund worker asks the gateway for.
//!
//! A claim is a lease (`locked_until`) taken under the order's row lock: while it
//! lasts no other worker calls the gateway for the order and a cancel is refused, so a
//! cancel can never race a charge. A charge answered after its lease ran out may find
//! the order cancelled or expired; it is then recorded and refunded, never dropped.

use crate::db::outbox::NewEvent;
use crate::domain::{OrderStatus, PaymentStatus};
use rust_decimal::Decimal;
use sqlx::PgConnection;
use uuid::Uuid;

/// A payment claimed for one gateway call.
#[derive(Debug, Clone)]
pub struct Claim {
    pub order_id: Uuid,
    /// The checkout's order id: the gateway's idempotency key and the charge's orderId.
    pub source_order_id: Uuid,
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
        r#"SELECT o.order_number, o.customer_email, o.correlation_id, o.source_order_id,
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
        source_order_id: row.source_order_id,
        order_number: row.order_number,
        customer_email: row.customer_email,
        correlation_id: row.correlation_id,
        amount: row.amount,
        payment_id: row.payment_id,
        attempt_count: row.attempt_count,
    }))
}

/// Records an approved charge of a PENDING payment in one statement, the common answer
/// in one round trip: the payment SUCCESS, the order PAID if it still awaits payment,
/// and the PaymentCompleted row `event`; returns the row's payload as stored. It takes
/// the same locks as [`lock_for_record`], order and payment together. `None`, with
/// nothing written,
/// when the payment is no longer PENDING: the caller then records the answer step by
/// step (a late charge is refunded, see `PaymentProcessor::record`).
pub async fn record_approved(
    conn: &mut PgConnection,
    payment_id: Uuid,
    external_transaction_id: &str,
    gateway_payment_id: &str,
    event: &NewEvent<'_>,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar!(
        r#"WITH target AS (
               SELECT o.id FROM payment_transactions p JOIN orders o ON o.id = p.order_id
               WHERE p.id = $1 AND p.status = 'PENDING'
               FOR UPDATE OF o, p),
           paid AS (
               UPDATE payment_transactions
               SET status = 'SUCCESS', external_transaction_id = $2, failure_reason = NULL,
                   gateway_payment_id = $3, attempt_count = attempt_count + 1,
                   completed_at = (now() AT TIME ZONE 'UTC'), updated_at = (now() AT TIME ZONE 'UTC'),
                   locked_until = NULL, last_error = NULL
               WHERE id = $1 AND status = 'PENDING' AND EXISTS (SELECT 1 FROM target)
               RETURNING order_id),
           settled AS (
               UPDATE orders SET status = 'PAID', updated_at = (now() AT TIME ZONE 'UTC')
               WHERE id = (SELECT order_id FROM paid) AND status IN ('PENDING', 'PROCESSING')),
           event AS (
               INSERT INTO payment_completed_outbox (id, aggregate_id, event_type, payload, topic, headers, locked_until)
               SELECT $4, $5, $6, $7, $8, $9, (now() AT TIME ZONE 'UTC') + make_interval(secs => $10)
               FROM paid
               RETURNING payload::text AS payload)
           SELECT (SELECT payload FROM event) AS "payload?""#,
        payment_id,
        external_transaction_id,
        gateway_payment_id,
        event.id,
        event.aggregate_id,
        event.event_type,
        event.payload,
        event.topic,
        event.headers.to_json(),
        event.lease.as_secs_f64()
    )
    .fetch_one(conn)
    .await
}

/// The order and payment a gateway answer is about, locked.
#[derive(Debug)]
pub struct RecordTarget {
    pub order_status: OrderStatus,
    pub payment_status: PaymentStatus,
    /// The gateway already answered a refund for this payment.
    pub refund_done: bool,
}

/// Locks the order and payment of `payment_id` before an answer is recorded.
pub async fn lock_for_record(
    conn: &mut PgConnection,
    payment_id: Uuid,
) -> Result<Option<RecordTarget>, sqlx::Error> {
    let row = sqlx::query!(
        r#"SELECT o.status AS "order_status: OrderStatus",
                  p.status AS "payment_status: PaymentStatus",
                  (p.refunded_at IS NOT NULL) AS "refund_done!"
           FROM payment_transactions p JOIN orders o ON o.id = p.order_id
           WHERE p.id = $1
           FOR UPDATE OF o, p"#,
        payment_id
    )
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|r| RecordTarget {
        order_status: r.order_status,
        payment_status: r.payment_status,
        refund_done: r.refund_done,
    }))
}

/// Records the gateway's answer on a still PENDING payment; false when it is no
/// longer pending (recorded by another worker, or the order was cancelled).
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

/// Records a charge that landed after its payment had FAILED (the order was cancelled
/// or expired while the call's lease had run out): the payment is SUCCESS, and a refund
/// is requested now unless one was already.
pub async fn record_late_charge(
    conn: &mut PgConnection,
    payment_id: Uuid,
    external_transaction_id: &str,
    gateway_payment_id: &str,
    refund_reason: &str,
) -> Result<bool, sqlx::Error> {
    let result = sqlx::query!(
        "UPDATE payment_transactions \
         SET status = 'SUCCESS', external_transaction_id = $2, gateway_payment_id = $3, \
             failure_reason = NULL, attempt_count = attempt_count + 1, locked_until = NULL, \
             completed_at = (now() AT TIME ZONE 'UTC'), updated_at = (now() AT TIME ZONE 'UTC'), \
             refund_requested_at = COALESCE(refund_requested_at, (now() AT TIME ZONE 'UTC')), \
             refund_reason = COALESCE(refund_reason, $4), \
             refund_next_attempt_at = (now() AT TIME ZONE 'UTC') \
         WHERE id = $1 AND status = 'FAILED'",
        payment_id,
        external_transaction_id,
        gateway_payment_id,
        refund_reason
    )
    .execute(conn)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Moves an order awaiting payment to PAID or FAILED.
pub async fn settle_order(
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

/// Ends the PENDING payments created more than `deadline_secs` ago that no worker
/// holds, with their orders: payment FAILED for `reason`, order FAILED, and a refund by
/// key requested (it voids the key if nothing was charged). Returns the orders ended;
/// rows another transaction holds are left to the next pass.
pub async fn expire(
    conn: &mut PgConnection,
    deadline_secs: f64,
    reason: &str,
    limit: i64,
) -> Result<Vec<Uuid>, sqlx::Error> {
    let rows = sqlx::query!(
        "SELECT o.id AS order_id, p.id AS payment_id \
         FROM payment_transactions p JOIN orders o ON o.id = p.order_id \
         WHERE p.status = 'PENDING' AND o.status IN ('PENDING', 'PROCESSING') \
           AND p.created_at <= (now() AT TIME ZONE 'UTC') - make_interval(secs => $1) \
           AND (p.locked_until IS NULL OR p.locked_until <= (now() AT TIME ZONE 'UTC')) \
         ORDER BY p.created_at LIMIT $2 \
         FOR UPDATE OF o, p SKIP LOCKED",
        deadline_secs,
        limit
    )
    .fetch_all(&mut *conn)
    .await?;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let orders: Vec<Uuid> = rows.iter().map(|r| r.order_id).collect();
    let payments: Vec<Uuid> = rows.iter().map(|r| r.payment_id).collect();
    sqlx::query!(
        "UPDATE payment_transactions \
         SET status = 'FAILED', failure_reason = $2, locked_until = NULL, \
             completed_at = (now() AT TIME ZONE 'UTC'), updated_at = (now() AT TIME ZONE 'UTC'), \
             refund_requested_at = (now() AT TIME ZONE 'UTC'), refund_reason = $2, \
             refund_next_attempt_at = (now() AT TIME ZONE 'UTC') \
         WHERE id = ANY($1)",
        &payments,
        reason
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query!(
        "UPDATE orders SET status = 'FAILED', updated_at = (now() AT TIME ZONE 'UTC') \
         WHERE id = ANY($1)",
        &orders
    )
    .execute(conn)
    .await?;
    Ok(orders)
}

/// A refund claimed for one gateway call.
#[derive(Debug, Clone)]
pub struct RefundClaim {
    pub payment_id: Uuid,
    pub order_id: Uuid,
    pub order_number: String,
    /// The checkout's order id: the charge's idempotency key.
    pub source_order_id: Uuid,
    pub correlation_id: Option<String>,
    pub reason: Option<String>,
    pub attempt_count: i32,
    /// The `traceparent` of the request that asked for the refund.
    pub traceparent: Option<String>,
}

/// Claims up to `limit` due refunds for `lease_secs` (their next attempt moves past the
/// lease, so another replica skips them until then; `SKIP LOCKED` keeps two passes
/// from taking the same row at once).
pub async fn claim_refunds(
    conn: &mut PgConnection,
    limit: i64,
    lease_secs: f64,
) -> Result<Vec<RefundClaim>, sqlx::Error> {
    let rows = sqlx::query!(
        r#"UPDATE payment_transactions p
           SET refund_next_attempt_at = (now() AT TIME ZONE 'UTC') + make_interval(secs => $2)
           FROM orders o
           WHERE o.id = p.order_id AND p.id IN (
               SELECT id FROM payment_transactions
               WHERE refund_requested_at IS NOT NULL AND refunded_at IS NULL
                 AND refund_next_attempt_at <= (now() AT TIME ZONE 'UTC')
               ORDER BY refund_next_attempt_at
               LIMIT $1
               FOR UPDATE SKIP LOCKED)
           RETURNING p.id, p.order_id, o.order_number, o.source_order_id, o.correlation_id,
                     p.refund_reason, p.refund_attempt_count, p.refund_traceparent"#,
        limit,
        lease_secs
    )
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| RefundClaim {
            payment_id: r.id,
            order_id: r.order_id,
            order_number: r.order_number,
            source_order_id: r.source_order_id,
            correlation_id: r.correlation_id,
            reason: r.refund_reason,
            attempt_count: r.refund_attempt_count,
            traceparent: r.refund_traceparent,
        })
        .collect())
}

/// Records the gateway's answer to a refund: `status` is the payment's new status
/// (REFUNDED), or `None` when nothing had been charged and it stays as it is. False if
/// the refund was recorded already.
pub async fn record_refund(
    conn: &mut PgConnection,
    payment_id: Uuid,
    status: Option<PaymentStatus>,
    refund_id: &str,
    amount: Decimal,
) -> Result<bool, sqlx::Error> {
    let result = sqlx::query!(
        "UPDATE payment_transactions \
         SET status = COALESCE($2, status), refund_id = $3, refunded_amount = $4, \
             refunded_at = (now() AT TIME ZONE 'UTC'), refund_last_error = NULL, \
             updated_at = (now() AT TIME ZONE 'UTC') \
         WHERE id = $1 AND refund_requested_at IS NOT NULL AND refunded_at IS NULL",
        payment_id,
        status as Option<PaymentStatus>,
        refund_id,
        amount
    )
    .execute(conn)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Leaves a refund the gateway did not answer for another try in `retry_secs`.
pub async fn postpone_refund(
    conn: &mut PgConnection,
    payment_id: Uuid,
    error: &str,
    called: bool,
    retry_secs: f64,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE payment_transactions \
         SET refund_last_error = $2, \
             refund_attempt_count = refund_attempt_count + CASE WHEN $3 THEN 1 ELSE 0 END, \
             refund_next_attempt_at = (now() AT TIME ZONE 'UTC') + make_interval(secs => $4), \
             updated_at = (now() AT TIME ZONE 'UTC') \
         WHERE id = $1 AND refunded_at IS NULL",
        payment_id,
        error,
        called,
        retry_secs
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Refunds requested and not yet answered.
pub async fn refunds_pending(conn: &mut PgConnection) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar!(
        r#"SELECT COUNT(*) AS "count!" FROM payment_transactions
           WHERE refund_requested_at IS NOT NULL AND refunded_at IS NULL"#
    )
    .fetch_one(conn)
    .await
}

/// What `order_db` recorded for the payment a PaymentCompleted event names.
#[derive(Debug)]
pub struct Recorded {
    pub order_status: OrderStatus,
    pub payment_status: PaymentStatus,
    pub external_transaction_id: Option<String>,
}

/// The recorded state of order `order_id` and its payment `payment_id`; `None` if they
/// do not exist or do not belong together.
pub async fn recorded(
    conn: &mut PgConnection,
    order_id: Uuid,
    payment_id: Uuid,
) -> Result<Option<Recorded>, sqlx::Error> {
    let row = sqlx::query!(
        r#"SELECT o.status AS "order_status: OrderStatus",
                  p.status AS "payment_status: PaymentStatus",
                  p.external_transaction_id
           FROM orders o JOIN payment_transactions p ON p.order_id = o.id
           WHERE o.id = $1 AND p.id = $2"#,
        order_id,
        payment_id
    )
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|r| Recorded {
        order_status: r.order_status,
        payment_status: r.payment_status,
        external_transaction_id: r.external_transaction_id,
    }))
}
