//! Stock given back by orders that ended FAILED or CANCELLED (ADR 0007): the consumer
//! of `orders.released` (group `customer-service-group`) and the transaction that
//! returns the stock (its statements are in [`crate::db::stock_returns`]).
//!
//! Each record is one `customer_db` transaction. Its first statement inserts the
//! order's `stock_returns` row `ON CONFLICT (order_id) DO NOTHING`; only when that
//! inserted does the transaction add the quantities back to the products. The guard is
//! the order, not the event id, so a second event for the same order (a re-sent outbox
//! row, a DLQ replay, a manual re-drive) returns nothing twice. After the commit the
//! returned products' cache entries are invalidated through the same path a product
//! write takes (Redis, this replica's near cache, and every other replica's).
//!
//! Undecodable or invalid records are poison (dead-lettered at once by the platform's
//! consumer); transient database trouble (an outage, a failover, no free connection, a
//! deadlock) is waited out by the platform's consumer for its transient budget instead
//! of dead-lettering a record whose stock is owed.

use crate::cache::Cache;
use crate::catalog;
use crate::db;
use crate::metrics::{status_label, AppMetrics};
use events::OrderReleased;
use futures::future::BoxFuture;
use platform::db::Db;
use platform::kafka::{decode, Handler, HandlerError, Record};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Longest `order_number` the table holds.
const ORDER_NUMBER_MAX: usize = 20;

/// One line of a `stock_returns` row's `items`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReturnedLine {
    pub product_id: Uuid,
    pub product_sku: String,
    pub quantity: i32,
    /// False when the product no longer existed, so nothing was added back for it.
    pub applied: bool,
}

/// What one event did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// This event returned the order's stock.
    Returned {
        lines: Vec<ReturnedLine>,
        /// The products' new `updatedAt` (and the row's `returned_at`).
        at: chrono::NaiveDateTime,
    },
    /// The order's stock was returned before, by event `event_id`.
    Duplicate {
        event_id: Uuid,
        lines: Vec<ReturnedLine>,
        returned_at: chrono::NaiveDateTime,
    },
}

/// Handles OrderReleased records.
pub struct StockReturnHandler {
    pub db: Db,
    pub cache: Cache,
    pub metrics: AppMetrics,
}

impl Handler for StockReturnHandler {
    fn handle<'a>(&'a self, record: &'a Record) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(self.handle_record(record))
    }
}

impl StockReturnHandler {
    async fn handle_record(&self, record: &Record) -> Result<(), HandlerError> {
        let event: OrderReleased = decode(record)?;
        validate(&event).map_err(|message| HandlerError::poison("ValidationException", message))?;
        let returned = platform::otel::in_span(
            "stock return",
            platform::otel::SpanKind::Internal,
            return_stock(&self.db, &event),
        );
        match returned.await.map_err(db_error)? {
            Outcome::Returned { lines, at } => {
                let (applied, not_applied): (Vec<&ReturnedLine>, Vec<&ReturnedLine>) =
                    lines.iter().partition(|l| l.applied);
                let units: u64 = applied
                    .iter()
                    .map(|l| u64::try_from(l.quantity).unwrap_or_default())
                    .sum();
                self.metrics
                    .stock_returns
                    .with_label_values(&[status_label(event.order_status)])
                    .inc();
                self.metrics.stock_returned_units.inc_by(units);
                self.metrics
                    .stock_return_lines_not_applied
                    .inc_by(not_applied.len() as u64);
                for line in &not_applied {
                    tracing::warn!(orderId = %event.order_id, orderNumber = %event.order_number,
                        productId = %line.product_id, productSku = %line.product_sku,
                        quantity = line.quantity,
                        "product of a released line no longer exists; its stock was not returned");
                }
                tracing::info!(orderId = %event.order_id, orderNumber = %event.order_number,
                    eventId = %event.event_id, status = status_label(event.order_status),
                    units, "stock returned");
                invalidate(&self.cache, &lines, at).await;
            }
            Outcome::Duplicate {
                event_id,
                lines,
                returned_at,
            } => {
                self.metrics.stock_return_duplicates.inc();
                tracing::info!(orderId = %event.order_id, orderNumber = %event.order_number,
                    eventId = %event.event_id, returnedBy = %event_id,
                    "stock of this order was returned already; nothing returned");
                // Announced again: if the process died between the first commit and its
                // invalidation, this redelivery is what clears the stale entries. Entries
                // newer than the return are kept (the tombstone is only as new as it).
                invalidate(&self.cache, &lines, returned_at).await;
            }
        }
        Ok(())
    }
}

/// Invalidates the products of the applied lines, written at `at`.
async fn invalidate(cache: &Cache, lines: &[ReturnedLine], at: chrono::NaiveDateTime) {
    let mut ids: Vec<Uuid> = lines
        .iter()
        .filter(|l| l.applied)
        .map(|l| l.product_id)
        .collect();
    ids.sort_unstable();
    ids.dedup();
    // No product changed: nothing to invalidate (an empty list would retire every
    // listing for nothing).
    if !ids.is_empty() {
        catalog::invalidate_products(cache, &ids, at).await;
    }
}

/// Records the order's return and, if it is the first, adds its quantities back, in one
/// transaction.
pub async fn return_stock(db: &Db, event: &OrderReleased) -> Result<Outcome, sqlx::Error> {
    let at = platform::time::now();
    let mut lines: Vec<ReturnedLine> = event
        .items
        .iter()
        .map(|item| ReturnedLine {
            product_id: item.product_id,
            product_sku: item.product_sku.clone(),
            quantity: item.quantity,
            applied: false,
        })
        .collect();
    let mut tx = db.begin().await?;
    let row = db::stock_returns::NewReturn {
        order_id: event.order_id,
        order_number: &event.order_number,
        event_id: event.event_id,
        order_status: status_label(event.order_status),
        reason: &event.reason,
        items: json(&lines)?,
    };
    if !db::stock_returns::insert(&mut tx, &row, at).await? {
        let recorded = db::stock_returns::find(&mut tx, event.order_id).await?;
        tx.commit().await?;
        return Ok(Outcome::Duplicate {
            event_id: recorded.event_id,
            // A row written by hand may not parse; it then invalidates nothing.
            lines: serde_json::from_value(recorded.items).unwrap_or_default(),
            returned_at: recorded.returned_at,
        });
    }
    let mut ids: Vec<Uuid> = lines.iter().map(|l| l.product_id).collect();
    ids.sort_unstable();
    ids.dedup();
    // Locked in id order, as checkout locks them, so the two never deadlock.
    db::products::lock(&mut tx, &ids).await?;
    let line_ids: Vec<Uuid> = lines.iter().map(|l| l.product_id).collect();
    let quantities: Vec<i32> = lines.iter().map(|l| l.quantity).collect();
    let applied = db::products::give_back(&mut tx, &line_ids, &quantities, at).await?;
    for line in &mut lines {
        line.applied = applied.contains(&line.product_id);
    }
    db::stock_returns::set_items(&mut tx, event.order_id, json(&lines)?).await?;
    tx.commit().await?;
    Ok(Outcome::Returned { lines, at })
}

fn json(lines: &[ReturnedLine]) -> Result<serde_json::Value, sqlx::Error> {
    serde_json::to_value(lines).map_err(|e| sqlx::Error::Encode(Box::new(e)))
}

/// What the table and the return need of an event; the message names the field.
pub fn validate(event: &OrderReleased) -> Result<(), String> {
    if event.event_type != events::ORDER_RELEASED {
        return Err(format!(
            "eventType must be {}, not '{}'",
            events::ORDER_RELEASED,
            event.event_type
        ));
    }
    if event.order_number.trim().is_empty() {
        return Err("orderNumber must not be blank".into());
    }
    if event.order_number.chars().count() > ORDER_NUMBER_MAX {
        return Err(format!(
            "orderNumber must be at most {ORDER_NUMBER_MAX} characters"
        ));
    }
    if event.items.is_empty() {
        return Err("items must not be empty".into());
    }
    for (i, item) in event.items.iter().enumerate() {
        if item.quantity <= 0 {
            return Err(format!("items[{i}].quantity must be positive"));
        }
    }
    Ok(())
}

/// Maps a database error: data errors (a quantity that overflows the column, a value
/// too long) can never succeed, the rest may.
fn db_error(e: sqlx::Error) -> HandlerError {
    platform::kafka::db_error("customer_db")(e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use events::{EventTime, ReleasedItem, ReleasedStatus};

    fn event() -> OrderReleased {
        OrderReleased {
            event_id: Uuid::new_v4(),
            event_type: events::ORDER_RELEASED.into(),
            event_version: events::EVENT_VERSION.into(),
            timestamp: EventTime::now(),
            correlation_id: None,
            order_id: Uuid::new_v4(),
            order_number: "ORD-20261201-1".into(),
            order_status: ReleasedStatus::Cancelled,
            reason: "Customer asked".into(),
            items: vec![ReleasedItem {
                product_id: Uuid::new_v4(),
                product_sku: "SKU-1".into(),
                quantity: 2,
            }],
        }
    }

    #[test]
    fn a_well_formed_event_is_valid() {
        assert_eq!(validate(&event()), Ok(()));
    }

    #[test]
    fn a_wrong_event_type_no_items_or_a_non_positive_quantity_is_invalid() {
        let mut e = event();
        e.event_type = events::ORDER_CREATED.into();
        assert!(validate(&e).is_err_and(|m| m.contains("eventType")));
        let mut e = event();
        e.items.clear();
        assert!(validate(&e).is_err_and(|m| m.contains("items")));
        let mut e = event();
        e.items[0].quantity = 0;
        assert!(validate(&e).is_err_and(|m| m.contains("items[0].quantity")));
        let mut e = event();
        e.order_number = "x".repeat(21);
        assert!(validate(&e).is_err_and(|m| m.contains("orderNumber")));
    }
}
