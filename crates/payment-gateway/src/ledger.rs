//! The charge ledger in `payment_gateway_db`: one `gateway_charges` row per
//! `Idempotency-Key`, ever.
//!
//! A charge is decided first (latency, success roll) and only then inserted with
//! `INSERT ... ON CONFLICT (idempotency_key) DO NOTHING`: of any number of requests
//! racing with one key, in one process or across restarts, exactly one inserts, and the
//! others read that row back and replay it. A request abandoned mid-way (the client
//! timed out) has written nothing, so the next request with the key charges once.
//!
//! A key voided by a refund before any charge (see [`crate::refunds`]) holds a
//! `DECLINED` row with no order; the first charge request with the key records its
//! order on that row and is answered with the decline, so the key is never charged.

use crate::db::ledger::{self as sql, ChargeRow, LineRow, NewCharge};
use chrono::{DateTime, Utc};
use platform::db::Db;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use utoipa::ToSchema;
use uuid::Uuid;

/// Currency of a charge whose request names none, and of a voided key.
pub const DEFAULT_CURRENCY: &str = "USD";
/// Failure reason of a key voided by a refund before it was charged.
pub const VOIDED_REASON: &str = "Voided before it was charged";

/// Outcome of a charge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ChargeStatus {
    Succeeded,
    Declined,
}

impl ChargeStatus {
    /// The value stored in `gateway_charges.status` and used as metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Succeeded => "SUCCEEDED",
            Self::Declined => "DECLINED",
        }
    }

    fn parse(value: &str) -> Result<Self, LedgerError> {
        match value {
            "SUCCEEDED" => Ok(Self::Succeeded),
            "DECLINED" => Ok(Self::Declined),
            other => Err(LedgerError::Corrupt(format!("charge status '{other}'"))),
        }
    }
}

/// What a client asks to charge.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChargeRequest {
    /// The merchant's order id.
    pub order_id: Uuid,
    #[schema(schema_with = crate::rules::schema::order_number)]
    pub order_number: Option<String>,
    /// Amount to charge, greater than zero, at most two decimals.
    #[schema(schema_with = crate::rules::schema::amount)]
    #[serde(with = "rust_decimal::serde::float")]
    pub amount: Decimal,
    /// ISO currency code; `USD` when absent.
    #[schema(schema_with = crate::rules::schema::currency)]
    pub currency: Option<String>,
    #[schema(schema_with = crate::rules::schema::customer_email)]
    pub customer_email: Option<String>,
}

/// One charge, as the API returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Payment {
    pub id: Uuid,
    pub order_id: Uuid,
    pub order_number: Option<String>,
    pub status: ChargeStatus,
    #[schema(value_type = f64, example = 299.98)]
    #[serde(with = "rust_decimal::serde::float")]
    pub amount: Decimal,
    pub currency: String,
    /// `pgw_tx_<32 hex digits>` on success, null on a decline.
    pub external_transaction_id: Option<String>,
    /// Why the charge was declined; null on success.
    pub failure_reason: Option<String>,
    /// ISO-8601 local date-time in UTC, no zone.
    #[schema(value_type = String, example = "2025-10-06T14:03:27.51234")]
    #[serde(serialize_with = "platform::time::serialize_utc")]
    pub created_at: DateTime<Utc>,
}

/// A ledger line: the charge, its key, how often the key was charged and requested, and
/// what was refunded of it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LedgerEntry {
    #[serde(flatten)]
    pub payment: Payment,
    /// Never sent: it is what a refund names the charge by.
    #[serde(skip)]
    pub idempotency_key: String,
    /// Charges made for this key: 1, always (the key is unique in the ledger).
    pub charge_count: u64,
    /// Requests received with this key, replays included.
    pub request_count: u64,
    /// Sum of the refunds of this charge.
    #[schema(value_type = f64, example = 0.0)]
    #[serde(with = "rust_decimal::serde::float")]
    pub refunded_amount: Decimal,
    /// What the customer paid in the end: amount minus refunds; 0 for a decline.
    #[schema(value_type = f64, example = 299.98)]
    #[serde(with = "rust_decimal::serde::float")]
    pub net_amount: Decimal,
}

/// One page of a listing: at most `limit` lines after the first `offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub limit: i64,
    pub offset: i64,
}

/// Why the ledger refused or failed a charge.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("Idempotency-Key '{0}' was already used for a different request")]
    KeyReused(String),
    /// A stored value this code cannot read: a bug or a hand-edited row.
    #[error("unreadable ledger row: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

// What the ledger reads in a row; the row itself is the database's.
impl ChargeRow {
    /// The charge as the API returns it; `None` for a voided key no request has named
    /// an order for yet.
    pub fn payment(&self) -> Result<Option<Payment>, LedgerError> {
        let Some(order_id) = self.order_id else {
            return Ok(None);
        };
        Ok(Some(Payment {
            id: self.id,
            order_id,
            order_number: self.order_number.clone(),
            status: ChargeStatus::parse(&self.status)?,
            amount: self.amount,
            currency: self.currency.clone(),
            external_transaction_id: self.external_transaction_id.clone(),
            failure_reason: self.failure_reason.clone(),
            created_at: self.created_at.and_utc(),
        }))
    }

    /// The charge's status.
    pub fn status(&self) -> Result<ChargeStatus, LedgerError> {
        ChargeStatus::parse(&self.status)
    }

    /// Whether `request` is the request this row was charged for. A voided key has no
    /// request yet and is adopted by the first one instead.
    pub fn matches(&self, request: &ChargeRequest) -> bool {
        self.order_id == Some(request.order_id) && self.amount == request.amount
    }
}

/// A decided charge, about to be inserted.
#[derive(Debug, Clone)]
pub struct Decision {
    pub status: ChargeStatus,
    pub failure_reason: Option<String>,
}

/// The result of [`charge`].
#[derive(Debug)]
pub enum Charged {
    /// This request inserted the key's charge.
    New(Payment),
    /// The key was charged earlier (or by a concurrent request): that charge, replayed.
    Replayed(Payment),
}

/// Replays an existing charge row to `request`: refused when the key was used for
/// another request; a voided key records the request's order and answers its decline.
pub async fn replay(
    conn: &mut PgConnection,
    row: ChargeRow,
    request: &ChargeRequest,
) -> Result<Payment, LedgerError> {
    let row = if row.order_id.is_none() {
        adopt_void(conn, row, request).await?
    } else {
        row
    };
    if !row.matches(request) {
        return Err(LedgerError::KeyReused(row.idempotency_key));
    }
    row.payment()?
        .ok_or_else(|| LedgerError::Corrupt(format!("charge {} has no order", row.id)))
}

/// Records the order of the first charge request on a voided key. The guard
/// `order_id IS NULL` lets exactly one of racing requests adopt it; the others get the
/// adopted row back and are compared with it like any replay.
async fn adopt_void(
    conn: &mut PgConnection,
    row: ChargeRow,
    request: &ChargeRequest,
) -> Result<ChargeRow, LedgerError> {
    let currency = request
        .currency
        .clone()
        .unwrap_or_else(|| DEFAULT_CURRENCY.to_owned());
    let adopted = sql::adopt(
        conn,
        row.id,
        request.order_id,
        request.order_number.as_deref(),
        request.amount,
        &currency,
    )
    .await?;
    match adopted {
        Some(row) => Ok(row),
        None => Ok(sql::get(conn, row.id)
            .await?
            .ok_or_else(|| LedgerError::Corrupt(format!("charge {} vanished", row.id)))?),
    }
}

/// Inserts the decided charge of `key` unless a row for the key exists; `None` when one
/// did (a concurrent request, or a refund voiding the key, got there first).
async fn insert(
    conn: &mut PgConnection,
    key: &str,
    request: &ChargeRequest,
    decision: &Decision,
) -> Result<Option<ChargeRow>, sqlx::Error> {
    let currency = request.currency.as_deref().unwrap_or(DEFAULT_CURRENCY);
    let transaction_id = (decision.status == ChargeStatus::Succeeded)
        .then(|| format!("pgw_tx_{}", Uuid::new_v4().simple()));
    let charge = NewCharge {
        key,
        order_id: request.order_id,
        order_number: request.order_number.as_deref(),
        amount: request.amount,
        currency,
        status: decision.status.as_str(),
        external_transaction_id: transaction_id.as_deref(),
        failure_reason: decision.failure_reason.as_deref(),
    };
    sql::insert(conn, &charge).await
}

/// Voids `key`: writes a `DECLINED` row with no order under it unless the key has a
/// row, so no later request can charge it. Returns whether it wrote one.
pub async fn void(conn: &mut PgConnection, key: &str) -> Result<bool, sqlx::Error> {
    sql::void(conn, key, DEFAULT_CURRENCY, VOIDED_REASON).await
}

/// Charges `request` under `key` once: replays the key's charge if it has one,
/// otherwise runs `decide` and inserts its outcome; a request that loses the insert
/// race replays the winner's row. No connection is held while `decide` runs (it sleeps
/// the injected latency), so slow charges do not starve the pool.
pub async fn charge<F, Fut>(
    db: &Db,
    key: &str,
    request: &ChargeRequest,
    decide: F,
) -> Result<Charged, LedgerError>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Decision>,
{
    {
        let mut conn = db.acquire().await?;
        if let Some(row) = sql::find_counting(&mut conn, key).await? {
            return Ok(Charged::Replayed(replay(&mut conn, row, request).await?));
        }
    }
    let decision = decide().await;
    let mut conn = db.acquire().await?;
    if let Some(row) = insert(&mut conn, key, request, &decision).await? {
        let payment = row
            .payment()?
            .ok_or_else(|| LedgerError::Corrupt(format!("charge {} has no order", row.id)))?;
        return Ok(Charged::New(payment));
    }
    // Lost the race: the winner's row is committed (ON CONFLICT waited for it).
    let row = sql::find_counting(&mut conn, key)
        .await?
        .ok_or_else(|| LedgerError::Corrupt(format!("charge of key '{key}' vanished")))?;
    Ok(Charged::Replayed(replay(&mut conn, row, request).await?))
}

// What the ledger reads in a line; the row itself is the database's.
impl LineRow {
    fn entry(self) -> Result<Option<LedgerEntry>, LedgerError> {
        let refunded_amount = self.refunded_amount;
        let request_count = u64::try_from(self.request_count).unwrap_or(0);
        let row = ChargeRow {
            id: self.id,
            idempotency_key: self.idempotency_key,
            order_id: self.order_id,
            order_number: self.order_number,
            amount: self.amount,
            currency: self.currency,
            status: self.status,
            external_transaction_id: self.external_transaction_id,
            failure_reason: self.failure_reason,
            request_count: self.request_count,
            created_at: self.created_at,
        };
        let Some(payment) = row.payment()? else {
            return Ok(None);
        };
        Ok(Some(LedgerEntry {
            net_amount: net_amount(payment.status, payment.amount, refunded_amount),
            payment,
            idempotency_key: row.idempotency_key,
            charge_count: 1,
            request_count,
            refunded_amount,
        }))
    }
}

/// What the customer paid in the end: nothing for a decline, else the charge less its
/// refunds.
pub fn net_amount(status: ChargeStatus, amount: Decimal, refunded: Decimal) -> Decimal {
    match status {
        ChargeStatus::Succeeded => amount - refunded,
        ChargeStatus::Declined => Decimal::ZERO,
    }
}

/// The ledger line of a charge; a voided key nobody asked to charge is no line.
pub async fn get(conn: &mut PgConnection, id: Uuid) -> Result<Option<LedgerEntry>, LedgerError> {
    match sql::line(conn, id).await? {
        Some(row) => row.entry(),
        None => Ok(None),
    }
}

/// Every charge, or those of one order, oldest first.
pub async fn list(
    conn: &mut PgConnection,
    order_id: Option<Uuid>,
    window: Window,
) -> Result<Vec<LedgerEntry>, LedgerError> {
    let rows = sql::lines(conn, order_id, window.limit, window.offset).await?;
    let mut lines = Vec::with_capacity(rows.len());
    for row in rows {
        if let Some(line) = row.entry()? {
            lines.push(line);
        }
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(order_id: Option<Uuid>, amount: i64, status: &str) -> ChargeRow {
        ChargeRow {
            id: Uuid::new_v4(),
            idempotency_key: "k".into(),
            order_id,
            order_number: Some("ORD-1".into()),
            amount: Decimal::new(amount, 2),
            currency: "USD".into(),
            status: status.into(),
            external_transaction_id: None,
            failure_reason: None,
            request_count: 1,
            created_at: Utc::now().naive_utc(),
        }
    }

    fn request(order_id: Uuid, amount: i64) -> ChargeRequest {
        ChargeRequest {
            order_id,
            order_number: Some("ORD-1".into()),
            amount: Decimal::new(amount, 2),
            currency: None,
            customer_email: None,
        }
    }

    #[test]
    fn a_replay_matches_only_the_same_order_and_amount() {
        let order = Uuid::new_v4();
        let charged = row(Some(order), 1000, "SUCCEEDED");
        assert!(charged.matches(&request(order, 1000)));
        assert!(!charged.matches(&request(order, 2000)));
        assert!(!charged.matches(&request(Uuid::new_v4(), 1000)));
    }

    #[test]
    fn a_voided_key_is_no_ledger_line_until_a_request_names_its_order() {
        let voided = row(None, 0, "DECLINED");
        assert!(voided.payment().expect("readable").is_none());
        assert!(!voided.matches(&request(Uuid::new_v4(), 0)));
    }

    #[test]
    fn an_unknown_stored_status_is_an_error_not_a_guess() {
        let odd = row(Some(Uuid::new_v4()), 1000, "PENDING");
        assert!(matches!(odd.payment(), Err(LedgerError::Corrupt(_))));
    }

    #[test]
    fn the_net_amount_is_the_charge_less_refunds_and_nothing_for_a_decline() {
        let ten = Decimal::new(1000, 2);
        let three = Decimal::new(300, 2);
        assert_eq!(
            net_amount(ChargeStatus::Succeeded, ten, three),
            Decimal::new(700, 2)
        );
        assert_eq!(
            net_amount(ChargeStatus::Declined, ten, Decimal::ZERO),
            Decimal::ZERO
        );
    }
}
