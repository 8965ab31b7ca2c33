//! The statements on `gateway_refunds`, each a function on a connection, so that the
//! refund rules ([`crate::refunds`]) read apart from their SQL.

use chrono::NaiveDateTime;
use rust_decimal::Decimal;
use sqlx::PgConnection;
use uuid::Uuid;

/// A `gateway_refunds` row.
#[derive(Debug, Clone)]
pub struct RefundRow {
    pub id: Uuid,
    pub idempotency_key: String,
    pub payment_key: String,
    pub charge_id: Option<Uuid>,
    pub order_id: Option<Uuid>,
    pub amount: Decimal,
    pub currency: String,
    pub status: String,
    pub reason: Option<String>,
    pub request_count: i64,
    pub created_at: NaiveDateTime,
}

/// A planned refund, as it is inserted.
#[derive(Debug, Clone)]
pub struct NewRefund<'a> {
    pub key: &'a str,
    pub payment_key: &'a str,
    pub charge_id: Option<Uuid>,
    pub order_id: Option<Uuid>,
    pub amount: Decimal,
    pub currency: &'a str,
    pub status: &'a str,
    pub reason: Option<&'a str>,
}

/// The refund of `key`, if there is one, counting this request.
pub async fn find_counting(
    conn: &mut PgConnection,
    key: &str,
) -> Result<Option<RefundRow>, sqlx::Error> {
    sqlx::query_as!(
        RefundRow,
        "UPDATE gateway_refunds SET request_count = request_count + 1 \
         WHERE idempotency_key = $1 \
         RETURNING id, idempotency_key, payment_key, charge_id, order_id, amount, currency, \
                   status, reason, request_count, created_at",
        key
    )
    .fetch_optional(&mut *conn)
    .await
}

/// Inserts `refund` unless a refund with its key exists; `None` when one did.
pub async fn insert(
    conn: &mut PgConnection,
    refund: &NewRefund<'_>,
) -> Result<Option<RefundRow>, sqlx::Error> {
    sqlx::query_as!(
        RefundRow,
        "INSERT INTO gateway_refunds (id, idempotency_key, payment_key, charge_id, order_id, \
                                      amount, currency, status, reason, request_count) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 1) \
         ON CONFLICT (idempotency_key) DO NOTHING \
         RETURNING id, idempotency_key, payment_key, charge_id, order_id, amount, currency, \
                   status, reason, request_count, created_at",
        Uuid::new_v4(),
        refund.key,
        refund.payment_key,
        refund.charge_id,
        refund.order_id,
        refund.amount,
        refund.currency,
        refund.status,
        refund.reason
    )
    .fetch_optional(&mut *conn)
    .await
}

/// Whether a refund with `key` exists.
pub async fn exists(conn: &mut PgConnection, key: &str) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM gateway_refunds WHERE idempotency_key = $1) AS "exists!""#,
        key
    )
    .fetch_one(&mut *conn)
    .await
}

/// What was refunded of charge `charge_id` so far.
pub async fn refunded_amount(
    conn: &mut PgConnection,
    charge_id: Uuid,
) -> Result<Decimal, sqlx::Error> {
    sqlx::query_scalar!(
        r#"SELECT COALESCE(SUM(amount), 0) AS "refunded!" FROM gateway_refunds
           WHERE charge_id = $1 AND status = 'REFUNDED'"#,
        charge_id
    )
    .fetch_one(&mut *conn)
    .await
}

/// The row of refund `id`.
pub async fn get(conn: &mut PgConnection, id: Uuid) -> Result<Option<RefundRow>, sqlx::Error> {
    sqlx::query_as!(
        RefundRow,
        "SELECT id, idempotency_key, payment_key, charge_id, order_id, amount, currency, \
                status, reason, request_count, created_at \
         FROM gateway_refunds WHERE id = $1",
        id
    )
    .fetch_optional(&mut *conn)
    .await
}

/// Every refund, or those of `order_id`, oldest first.
pub async fn list(
    conn: &mut PgConnection,
    order_id: Option<Uuid>,
    limit: i64,
    offset: i64,
) -> Result<Vec<RefundRow>, sqlx::Error> {
    sqlx::query_as!(
        RefundRow,
        "SELECT id, idempotency_key, payment_key, charge_id, order_id, amount, currency, \
                status, reason, request_count, created_at \
         FROM gateway_refunds \
         WHERE ($1::uuid IS NULL OR order_id = $1) \
         ORDER BY created_at, id \
         LIMIT $2 OFFSET $3",
        order_id,
        limit,
        offset
    )
    .fetch_all(&mut *conn)
    .await
}
