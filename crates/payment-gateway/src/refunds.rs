//! Refunds in `payment_gateway_db`: one `gateway_refunds` row per refund
//! `Idempotency-Key`, ever (ADR 0007).
//!
//! A refund names the charge by the charge's own `Idempotency-Key` (`paymentKey`).
//! Every refund of one charge runs in a transaction holding the charge row's lock
//! (`SELECT ... FOR UPDATE`), so two refunds can never together give back more than was
//! charged. A key with no charge gets a `DECLINED` row first ("Voided before it was
//! charged"), inside the same transaction, so a charge request arriving later with that
//! key replays the decline and never charges; a key declined or voided answers
//! `NOTHING_CHARGED`.

use crate::db::refunds::{self as sql, NewRefund, RefundRow};
use crate::ledger::{self, ChargeStatus, LedgerError, DEFAULT_CURRENCY};
use chrono::{DateTime, Utc};
use platform::db::Db;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use utoipa::ToSchema;
use uuid::Uuid;

/// Outcome of a refund.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RefundStatus {
    /// Money was given back.
    Refunded,
    /// The key was declined or never charged (now voided): there was nothing to give back.
    NothingCharged,
}

impl RefundStatus {
    /// The value stored in `gateway_refunds.status` and used as metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Refunded => "REFUNDED",
            Self::NothingCharged => "NOTHING_CHARGED",
        }
    }

    fn parse(value: &str) -> Result<Self, LedgerError> {
        match value {
            "REFUNDED" => Ok(Self::Refunded),
            "NOTHING_CHARGED" => Ok(Self::NothingCharged),
            other => Err(LedgerError::Corrupt(format!("refund status '{other}'"))),
        }
    }
}

/// What a client asks to refund.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RefundRequest {
    /// The `Idempotency-Key` the charge was requested with.
    #[schema(schema_with = crate::rules::schema::payment_key)]
    pub payment_key: String,
    /// Amount to give back, greater than zero, at most two decimals; all that is left to
    /// refund when absent.
    #[schema(schema_with = crate::rules::schema::amount_or_null)]
    #[serde(default, with = "rust_decimal::serde::float_option")]
    pub amount: Option<Decimal>,
    /// Why the refund was asked for.
    #[schema(schema_with = crate::rules::schema::reason)]
    pub reason: Option<String>,
}

/// One refund, as the API returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Refund {
    pub id: Uuid,
    /// The refunded charge; null when nothing was charged.
    pub payment_id: Option<Uuid>,
    /// The refunded charge's order; null when nothing was charged.
    pub order_id: Option<Uuid>,
    /// The `Idempotency-Key` of the charge.
    pub payment_key: String,
    pub status: RefundStatus,
    /// What was given back: 0 when nothing was charged.
    #[schema(value_type = f64, example = 299.98)]
    #[serde(with = "rust_decimal::serde::float")]
    pub amount: Decimal,
    pub currency: String,
    pub reason: Option<String>,
    /// ISO-8601 local date-time in UTC, no zone.
    #[schema(value_type = String, example = "2025-10-06T14:03:27.51234")]
    #[serde(serialize_with = "platform::time::serialize_utc")]
    pub created_at: DateTime<Utc>,
}

/// A refund with its key and how often the key was requested.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RefundLine {
    #[serde(flatten)]
    pub refund: Refund,
    /// Never sent: a listing must not hand out what replays a refund.
    #[serde(skip)]
    pub idempotency_key: String,
    /// Requests received with this key, replays included.
    pub request_count: u64,
}

/// Why a refund was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum RefundError {
    #[error("Idempotency-Key '{0}' was already used for a different refund")]
    KeyReused(String),
    #[error("Refund of {requested} is more than the {left} left to refund of payment '{key}'")]
    TooLarge {
        key: String,
        requested: Decimal,
        left: Decimal,
    },
    #[error("Payment '{0}' is already fully refunded")]
    NothingLeft(String),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

impl From<sqlx::Error> for RefundError {
    fn from(e: sqlx::Error) -> Self {
        Self::Ledger(LedgerError::Database(e))
    }
}

/// The result of [`refund`].
#[derive(Debug)]
pub enum Refunded {
    /// This request made the refund; `voided` when it also closed a key never charged.
    New { refund: Refund, voided: bool },
    /// The refund made earlier with this key, replayed.
    Replayed(Refund),
}

/// What a refund of a charge gives back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    Refund(Decimal),
    NothingCharged,
}

/// Decides a refund of a charge with `status` and `charged`, of which `refunded` was
/// given back already: `requested`, or all that is left when `None`.
pub fn plan(
    key: &str,
    status: ChargeStatus,
    charged: Decimal,
    refunded: Decimal,
    requested: Option<Decimal>,
) -> Result<Plan, RefundError> {
    if status == ChargeStatus::Declined {
        return Ok(Plan::NothingCharged);
    }
    let left = (charged - refunded).max(Decimal::ZERO);
    match requested {
        None if left.is_zero() => Err(RefundError::NothingLeft(key.to_owned())),
        None => Ok(Plan::Refund(left)),
        Some(requested) if requested > left => Err(RefundError::TooLarge {
            key: key.to_owned(),
            requested,
            left,
        }),
        Some(requested) => Ok(Plan::Refund(requested)),
    }
}

// What a refund reads in a row; the row itself is the database's.
impl RefundRow {
    fn refund(&self) -> Result<Refund, LedgerError> {
        Ok(Refund {
            id: self.id,
            payment_id: self.charge_id,
            order_id: self.order_id,
            payment_key: self.payment_key.clone(),
            status: RefundStatus::parse(&self.status)?,
            amount: self.amount,
            currency: self.currency.clone(),
            reason: self.reason.clone(),
            created_at: self.created_at.and_utc(),
        })
    }

    fn line(self) -> Result<RefundLine, LedgerError> {
        Ok(RefundLine {
            refund: self.refund()?,
            request_count: u64::try_from(self.request_count).unwrap_or(0),
            idempotency_key: self.idempotency_key,
        })
    }

    /// Whether `request` asks for the refund this row records. What the request leaves
    /// out matches anything; an amount matches the amount given back (any amount
    /// matches a refund of nothing, since nothing was given back whatever was asked).
    pub fn matches(&self, request: &RefundRequest) -> bool {
        self.payment_key == request.payment_key
            && request
                .amount
                .is_none_or(|a| a == self.amount || self.status == "NOTHING_CHARGED")
            && request
                .reason
                .as_deref()
                .is_none_or(|r| Some(r) == self.reason.as_deref())
    }
}

/// The earlier refund of `key` replayed to `request`, if there is one.
async fn replay(
    conn: &mut PgConnection,
    key: &str,
    request: &RefundRequest,
) -> Result<Option<Refund>, RefundError> {
    let Some(row) = sql::find_counting(conn, key).await? else {
        return Ok(None);
    };
    if !row.matches(request) {
        return Err(RefundError::KeyReused(key.to_owned()));
    }
    Ok(Some(row.refund()?))
}

/// Refunds `request` under the refund key `key` once.
pub async fn refund(db: &Db, key: &str, request: &RefundRequest) -> Result<Refunded, RefundError> {
    {
        let mut conn = db.acquire().await?;
        if let Some(refund) = replay(&mut conn, key, request).await? {
            return Ok(Refunded::Replayed(refund));
        }
    }
    let mut tx = db.begin().await?;
    let voided = ledger::void(&mut tx, &request.payment_key).await?;
    let charge = crate::db::ledger::lock(&mut tx, &request.payment_key)
        .await?
        .ok_or_else(|| {
            LedgerError::Corrupt(format!("charge of key '{}' vanished", request.payment_key))
        })?;
    // A concurrent request with this refund key (and this payment key) may have
    // committed while this one waited for the charge's lock.
    if sql::exists(&mut tx, key).await? {
        tx.rollback().await?;
        return replay_after_race(db, key, request).await;
    }
    let refunded = sql::refunded_amount(&mut tx, charge.id).await?;
    let plan = plan(
        &request.payment_key,
        charge.status()?,
        charge.amount,
        refunded,
        request.amount,
    )?;
    let (status, amount, charge_id, order_id) = match plan {
        Plan::Refund(amount) => (
            RefundStatus::Refunded,
            amount,
            Some(charge.id),
            charge.order_id,
        ),
        Plan::NothingCharged => (RefundStatus::NothingCharged, Decimal::ZERO, None, None),
    };
    let currency = if charge.currency.is_empty() {
        DEFAULT_CURRENCY.to_owned()
    } else {
        charge.currency.clone()
    };
    let inserted = sql::insert(
        &mut tx,
        &NewRefund {
            key,
            payment_key: &request.payment_key,
            charge_id,
            order_id,
            amount,
            currency: &currency,
            status: status.as_str(),
            reason: request.reason.as_deref(),
        },
    )
    .await?;
    let Some(row) = inserted else {
        // The key was taken by a refund of another payment key, committed meanwhile.
        tx.rollback().await?;
        return replay_after_race(db, key, request).await;
    };
    tx.commit().await?;
    Ok(Refunded::New {
        refund: row.refund()?,
        voided,
    })
}

async fn replay_after_race(
    db: &Db,
    key: &str,
    request: &RefundRequest,
) -> Result<Refunded, RefundError> {
    let mut conn = db.acquire().await?;
    replay(&mut conn, key, request)
        .await?
        .map(Refunded::Replayed)
        .ok_or_else(|| LedgerError::Corrupt(format!("refund of key '{key}' vanished")).into())
}

/// One refund by id.
pub async fn get(conn: &mut PgConnection, id: Uuid) -> Result<Option<RefundLine>, LedgerError> {
    let row = sql::get(conn, id).await?;
    row.map(RefundRow::line).transpose()
}

/// Every refund, or those of one order, oldest first.
pub async fn list(
    conn: &mut PgConnection,
    order_id: Option<Uuid>,
    window: crate::ledger::Window,
) -> Result<Vec<RefundLine>, LedgerError> {
    let rows = sql::list(conn, order_id, window.limit, window.offset).await?;
    rows.into_iter().map(RefundRow::line).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(cents: i64) -> Decimal {
        Decimal::new(cents, 2)
    }

    #[test]
    fn a_refund_without_an_amount_gives_back_all_that_is_left() {
        let plan = plan("k", ChargeStatus::Succeeded, d(1000), d(300), None).expect("plan");
        assert_eq!(plan, Plan::Refund(d(700)));
    }

    #[test]
    fn a_refund_of_more_than_is_left_is_refused() {
        let err = plan("k", ChargeStatus::Succeeded, d(1000), d(300), Some(d(701)))
            .expect_err("too large");
        assert!(matches!(err, RefundError::TooLarge { left, .. } if left == d(700)));
        assert_eq!(
            plan("k", ChargeStatus::Succeeded, d(1000), d(300), Some(d(700))).expect("exact"),
            Plan::Refund(d(700))
        );
    }

    #[test]
    fn a_fully_refunded_charge_has_nothing_left() {
        let err = plan("k", ChargeStatus::Succeeded, d(1000), d(1000), None).expect_err("none");
        assert!(matches!(err, RefundError::NothingLeft(_)));
    }

    #[test]
    fn a_declined_charge_refunds_nothing_whatever_is_asked() {
        for requested in [None, Some(d(1)), Some(d(1_000_000))] {
            assert_eq!(
                plan("k", ChargeStatus::Declined, d(1000), d(0), requested).expect("plan"),
                Plan::NothingCharged
            );
        }
    }

    fn row(status: &str, amount: i64, reason: Option<&str>) -> RefundRow {
        RefundRow {
            id: Uuid::new_v4(),
            idempotency_key: "refund-1".into(),
            payment_key: "pay-1".into(),
            charge_id: None,
            order_id: None,
            amount: d(amount),
            currency: "USD".into(),
            status: status.into(),
            reason: reason.map(str::to_owned),
            request_count: 1,
            created_at: Utc::now().naive_utc(),
        }
    }

    fn request(key: &str, amount: Option<i64>, reason: Option<&str>) -> RefundRequest {
        RefundRequest {
            payment_key: key.into(),
            amount: amount.map(d),
            reason: reason.map(str::to_owned),
        }
    }

    #[test]
    fn a_replayed_refund_must_name_the_same_payment_amount_and_reason() {
        let made = row("REFUNDED", 500, Some("cancelled"));
        assert!(made.matches(&request("pay-1", None, None)));
        assert!(made.matches(&request("pay-1", Some(500), Some("cancelled"))));
        assert!(!made.matches(&request("pay-2", None, None)));
        assert!(!made.matches(&request("pay-1", Some(400), None)));
        assert!(!made.matches(&request("pay-1", None, Some("other"))));
        let nothing = row("NOTHING_CHARGED", 0, None);
        assert!(nothing.matches(&request("pay-1", Some(999), None)));
    }
}
