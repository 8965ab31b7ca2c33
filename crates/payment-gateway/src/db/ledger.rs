//! The statements on `gateway_charges`, each a function on a connection, so that the
//! ledger's rules ([`crate::ledger`]) read apart from its SQL.

use chrono::NaiveDateTime;
use rust_decimal::Decimal;
use sqlx::PgConnection;
use uuid::Uuid;

/// A `gateway_charges` row.
#[derive(Debug, Clone)]
pub struct ChargeRow {
    pub id: Uuid,
    pub idempotency_key: String,
    pub order_id: Option<Uuid>,
    pub order_number: Option<String>,
    pub amount: Decimal,
    pub currency: String,
    pub status: String,
    pub external_transaction_id: Option<String>,
    pub failure_reason: Option<String>,
    pub request_count: i64,
    pub created_at: NaiveDateTime,
}

/// A `gateway_charges` row with the sum of its refunds.
#[derive(Debug, Clone)]
pub struct LineRow {
    pub id: Uuid,
    pub idempotency_key: String,
    pub order_id: Option<Uuid>,
    pub order_number: Option<String>,
    pub amount: Decimal,
    pub currency: String,
    pub status: String,
    pub external_transaction_id: Option<String>,
    pub failure_reason: Option<String>,
    pub request_count: i64,
    pub created_at: NaiveDateTime,
    pub refunded_amount: Decimal,
}

/// A decided charge, as it is inserted.
#[derive(Debug, Clone)]
pub struct NewCharge<'a> {
    pub key: &'a str,
    pub order_id: Uuid,
    pub order_number: Option<&'a str>,
    pub amount: Decimal,
    pub currency: &'a str,
    pub status: &'a str,
    pub external_transaction_id: Option<&'a str>,
    pub failure_reason: Option<&'a str>,
}

/// The charge of `key`, if there is one, counting this request.
pub async fn find_counting(
    conn: &mut PgConnection,
    key: &str,
) -> Result<Option<ChargeRow>, sqlx::Error> {
    sqlx::query_as!(
        ChargeRow,
        "UPDATE gateway_charges SET request_count = request_count + 1 \
         WHERE idempotency_key = $1 \
         RETURNING id, idempotency_key, order_id, order_number, amount, currency, status, \
                   external_transaction_id, failure_reason, request_count, created_at",
        key
    )
    .fetch_optional(&mut *conn)
    .await
}

/// Records an order on the voided charge `id`, unless one is recorded already (the
/// guard `order_id IS NULL`); the adopted row, or `None` when another request won.
pub async fn adopt(
    conn: &mut PgConnection,
    id: Uuid,
    order_id: Uuid,
    order_number: Option<&str>,
    amount: Decimal,
    currency: &str,
) -> Result<Option<ChargeRow>, sqlx::Error> {
    sqlx::query_as!(
        ChargeRow,
        "UPDATE gateway_charges SET order_id = $2, order_number = $3, amount = $4, currency = $5 \
         WHERE id = $1 AND order_id IS NULL \
         RETURNING id, idempotency_key, order_id, order_number, amount, currency, status, \
                   external_transaction_id, failure_reason, request_count, created_at",
        id,
        order_id,
        order_number,
        amount,
        currency
    )
    .fetch_optional(&mut *conn)
    .await
}

/// The row of charge `id`.
pub async fn get(conn: &mut PgConnection, id: Uuid) -> Result<Option<ChargeRow>, sqlx::Error> {
    sqlx::query_as!(
        ChargeRow,
        "SELECT id, idempotency_key, order_id, order_number, amount, currency, status, \
                external_transaction_id, failure_reason, request_count, created_at \
         FROM gateway_charges WHERE id = $1",
        id
    )
    .fetch_optional(&mut *conn)
    .await
}

/// Inserts `charge` unless a row for its key exists; `None` when one did.
pub async fn insert(
    conn: &mut PgConnection,
    charge: &NewCharge<'_>,
) -> Result<Option<ChargeRow>, sqlx::Error> {
    sqlx::query_as!(
        ChargeRow,
        "INSERT INTO gateway_charges (id, idempotency_key, order_id, order_number, amount, \
                                      currency, status, external_transaction_id, failure_reason, \
                                      request_count) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 1) \
         ON CONFLICT (idempotency_key) DO NOTHING \
         RETURNING id, idempotency_key, order_id, order_number, amount, currency, status, \
                   external_transaction_id, failure_reason, request_count, created_at",
        Uuid::new_v4(),
        charge.key,
        charge.order_id,
        charge.order_number,
        charge.amount,
        charge.currency,
        charge.status,
        charge.external_transaction_id,
        charge.failure_reason
    )
    .fetch_optional(&mut *conn)
    .await
}

/// Writes a `DECLINED` row with no order under `key`, in `currency` and failed for
/// `reason`, unless the key has a row. Returns whether it wrote one.
pub async fn void(
    conn: &mut PgConnection,
    key: &str,
    currency: &str,
    reason: &str,
) -> Result<bool, sqlx::Error> {
    let written = sqlx::query!(
        "INSERT INTO gateway_charges (id, idempotency_key, amount, currency, status, \
                                      failure_reason, request_count) \
         VALUES ($1, $2, 0, $3, 'DECLINED', $4, 0) \
         ON CONFLICT (idempotency_key) DO NOTHING",
        Uuid::new_v4(),
        key,
        currency,
        reason
    )
    .execute(&mut *conn)
    .await?;
    Ok(written.rows_affected() == 1)
}

/// The row of `key`, locked until the transaction ends: what serialises the refunds of
/// one charge.
pub async fn lock(conn: &mut PgConnection, key: &str) -> Result<Option<ChargeRow>, sqlx::Error> {
    sqlx::query_as!(
        ChargeRow,
        "SELECT id, idempotency_key, order_id, order_number, amount, currency, status, \
                external_transaction_id, failure_reason, request_count, created_at \
         FROM gateway_charges WHERE idempotency_key = $1 FOR UPDATE",
        key
    )
    .fetch_optional(&mut *conn)
    .await
}

/// The line of charge `id`: its row and what was refunded of it.
pub async fn line(conn: &mut PgConnection, id: Uuid) -> Result<Option<LineRow>, sqlx::Error> {
    sqlx::query_as!(
        LineRow,
        r#"SELECT c.id, c.idempotency_key, c.order_id, c.order_number, c.amount, c.currency,
                  c.status, c.external_transaction_id, c.failure_reason, c.request_count,
                  c.created_at,
                  COALESCE((SELECT SUM(r.amount) FROM gateway_refunds r
                            WHERE r.charge_id = c.id AND r.status = 'REFUNDED'), 0)
                      AS "refunded_amount!"
           FROM gateway_charges c WHERE c.id = $1"#,
        id
    )
    .fetch_optional(&mut *conn)
    .await
}

/// The lines of the charges with an order, or of those of `order_id`, oldest first:
/// `limit` of them after the first `offset`.
pub async fn lines(
    conn: &mut PgConnection,
    order_id: Option<Uuid>,
    limit: i64,
    offset: i64,
) -> Result<Vec<LineRow>, sqlx::Error> {
    sqlx::query_as!(
        LineRow,
        r#"SELECT c.id, c.idempotency_key, c.order_id, c.order_number, c.amount, c.currency,
                  c.status, c.external_transaction_id, c.failure_reason, c.request_count,
                  c.created_at,
                  COALESCE((SELECT SUM(r.amount) FROM gateway_refunds r
                            WHERE r.charge_id = c.id AND r.status = 'REFUNDED'), 0)
                      AS "refunded_amount!"
           FROM gateway_charges c
           WHERE c.order_id IS NOT NULL AND ($1::uuid IS NULL OR c.order_id = $1)
           ORDER BY c.created_at, c.id
           LIMIT $2 OFFSET $3"#,
        order_id,
        limit,
        offset
    )
    .fetch_all(&mut *conn)
    .await
}

/// Rows in `gateway_charges`, for the ledger gauge at start-up.
pub async fn count(conn: &mut PgConnection) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar!(r#"SELECT count(*) AS "count!" FROM gateway_charges"#)
        .fetch_one(&mut *conn)
        .await
}
