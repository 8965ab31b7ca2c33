//! The in-memory ledger: every charge the gateway ever made, one per `Idempotency-Key`.
//!
//! A key's first request creates its entry and runs the charge; every later or
//! concurrent request with the same key waits for that same charge and gets it back.
//! A charge is recorded only when it completes, so a request abandoned mid-way (the
//! client timed out) charges nothing and the next request with the key charges once.
//! The lock is a plain mutex held only to look entries up, never across an await.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::OnceCell;
use utoipa::ToSchema;
use uuid::Uuid;

/// Outcome of a charge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ChargeStatus {
    Succeeded,
    Declined,
}

/// What a client asks to charge.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChargeRequest {
    /// The merchant's order id.
    pub order_id: Uuid,
    pub order_number: Option<String>,
    /// Amount to charge, greater than zero.
    #[schema(value_type = f64, example = 299.98)]
    #[serde(with = "rust_decimal::serde::float")]
    pub amount: Decimal,
    /// ISO currency code; `USD` when absent.
    pub currency: Option<String>,
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

/// A ledger line: the charge, its key and how often the key was charged and requested.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LedgerEntry {
    #[serde(flatten)]
    pub payment: Payment,
    pub idempotency_key: String,
    /// Charges made for this key: 1, always; anything else is a double charge.
    pub charge_count: u64,
    /// Requests received with this key, replays included.
    pub request_count: u64,
}

/// Why a charge request was refused by the ledger.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LedgerError {
    #[error("Idempotency-Key '{0}' was already used for a different request")]
    KeyReused(String),
}

struct Entry {
    key: String,
    order_id: Uuid,
    amount: Decimal,
    charge: OnceCell<Payment>,
    charges: AtomicU64,
    requests: AtomicU64,
}

impl Entry {
    fn line(&self) -> Option<LedgerEntry> {
        self.charge.get().map(|payment| LedgerEntry {
            payment: payment.clone(),
            idempotency_key: self.key.clone(),
            charge_count: self.charges.load(Ordering::SeqCst),
            request_count: self.requests.load(Ordering::SeqCst),
        })
    }
}

/// The ledger of one gateway instance.
#[derive(Default)]
pub struct Ledger {
    entries: Mutex<Entries>,
}

#[derive(Default)]
struct Entries {
    by_key: HashMap<String, Arc<Entry>>,
    by_charge_id: HashMap<Uuid, Arc<Entry>>,
}

impl Ledger {
    fn lock(&self) -> MutexGuard<'_, Entries> {
        // A panic while holding the lock cannot leave the maps half-updated (each
        // critical section is a single insert), so a poisoned lock is still usable.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Charges `request` under `key` once; `decide` runs only for the key's first
    /// charge and returns the status and failure reason. Returns the charge and whether
    /// it is a replay of an earlier one.
    pub async fn charge<F, Fut>(
        &self,
        key: &str,
        request: &ChargeRequest,
        decide: F,
    ) -> Result<(Payment, bool), LedgerError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = (ChargeStatus, Option<String>)>,
    {
        let entry = {
            let mut entries = self.lock();
            let entry = entries
                .by_key
                .entry(key.to_owned())
                .or_insert_with(|| {
                    Arc::new(Entry {
                        key: key.to_owned(),
                        order_id: request.order_id,
                        amount: request.amount,
                        charge: OnceCell::new(),
                        charges: AtomicU64::new(0),
                        requests: AtomicU64::new(0),
                    })
                })
                .clone();
            entry.requests.fetch_add(1, Ordering::SeqCst);
            entry
        };
        if entry.order_id != request.order_id || entry.amount != request.amount {
            return Err(LedgerError::KeyReused(key.to_owned()));
        }
        let mut charged_now = false;
        let payment = entry
            .charge
            .get_or_init(|| async {
                let (status, failure_reason) = decide().await;
                charged_now = true;
                entry.charges.fetch_add(1, Ordering::SeqCst);
                Payment {
                    id: Uuid::new_v4(),
                    order_id: request.order_id,
                    order_number: request.order_number.clone(),
                    status,
                    amount: request.amount,
                    currency: request.currency.clone().unwrap_or_else(|| "USD".to_owned()),
                    external_transaction_id: (status == ChargeStatus::Succeeded)
                        .then(|| format!("pgw_tx_{}", Uuid::new_v4().simple())),
                    failure_reason,
                    created_at: Utc::now(),
                }
            })
            .await
            .clone();
        if charged_now {
            self.lock().by_charge_id.insert(payment.id, entry.clone());
        }
        Ok((payment, !charged_now))
    }

    /// The ledger line of a charge.
    pub fn get(&self, id: Uuid) -> Option<LedgerEntry> {
        self.lock().by_charge_id.get(&id).and_then(|e| e.line())
    }

    /// Every completed charge, optionally of one order, oldest first.
    pub fn list(&self, order_id: Option<Uuid>) -> Vec<LedgerEntry> {
        let mut lines: Vec<LedgerEntry> = self
            .lock()
            .by_key
            .values()
            .filter(|e| order_id.is_none_or(|id| e.order_id == id))
            .filter_map(|e| e.line())
            .collect();
        lines.sort_by_key(|l| l.payment.created_at);
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(amount: i64) -> ChargeRequest {
        ChargeRequest {
            order_id: Uuid::nil(),
            order_number: Some("ORD-1".into()),
            amount: Decimal::new(amount, 2),
            currency: None,
            customer_email: None,
        }
    }

    #[tokio::test]
    async fn concurrent_requests_with_one_key_charge_once() {
        let ledger = Arc::new(Ledger::default());
        let calls = Arc::new(AtomicU64::new(0));
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                let ledger = ledger.clone();
                let calls = calls.clone();
                tokio::spawn(async move {
                    ledger
                        .charge("k", &request(1000), || async move {
                            calls.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                            (ChargeStatus::Succeeded, None)
                        })
                        .await
                })
            })
            .collect();
        let mut ids = std::collections::HashSet::new();
        for task in tasks {
            let (payment, _) = task.await.expect("joined").expect("charged");
            ids.insert(payment.id);
        }
        assert_eq!(ids.len(), 1);
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        let lines = ledger.list(Some(Uuid::nil()));
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].charge_count, 1);
        assert_eq!(lines[0].request_count, 20);
    }

    #[tokio::test]
    async fn a_key_reused_for_another_amount_is_refused() {
        let ledger = Ledger::default();
        let ok = || async { (ChargeStatus::Succeeded, None) };
        ledger.charge("k", &request(1000), ok).await.expect("first");
        assert_eq!(
            ledger.charge("k", &request(2000), ok).await,
            Err(LedgerError::KeyReused("k".into()))
        );
    }
}
