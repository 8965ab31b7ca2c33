//! `orders.created`: one statement records the event and creates the order, its items
//! and its payment; with a payment slot free, the order is created already claimed
//! (PROCESSING) and paid at once in that slot, otherwise it waits PENDING for the retry
//! worker.

use super::{db_error, decode};
use crate::db;
use crate::db::events::{Created, NewPayment};
use crate::db::payments::Claim;
use crate::metrics::OrderMetrics;
use crate::payment::PaymentProcessor;
use events::OrderCreated;
use futures::future::BoxFuture;
use platform::db::Db;
use platform::kafka::{Handler, HandlerError, Record};
use rust_decimal::Decimal;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Largest amount `DECIMAL(10, 2)` holds.
const MAX_AMOUNT: Decimal = Decimal::from_parts(1_410_065_407, 2, 0, false, 2);

/// Handles OrderCreated records.
pub struct OrderCreatedHandler {
    pub db: Db,
    pub payments: PaymentProcessor,
    pub metrics: OrderMetrics,
    /// How long the retry worker leaves a new payment to the consumer's own hand-off.
    pub hand_off_grace: Duration,
}

impl Handler for OrderCreatedHandler {
    fn handle<'a>(&'a self, record: &'a Record) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(self.handle_record(record))
    }
}

impl OrderCreatedHandler {
    async fn handle_record(&self, record: &Record) -> Result<(), HandlerError> {
        let started = Instant::now();
        let event: OrderCreated = decode(record)?;
        validate(&event).map_err(|message| HandlerError::poison("ValidationException", message))?;
        // A slot first, so the order can be created already claimed for it: the
        // payment then starts without another transaction.
        let slot = self.payments.reserve().await;
        let payment = NewPayment {
            id: Uuid::new_v4(),
            grace_secs: self.hand_off_grace.as_secs_f64(),
            claimed_for_secs: slot.as_ref().map(|_| self.payments.claim_lease_secs()),
        };
        let mut conn = self.db.acquire().await.map_err(db_error)?;
        let created = db::events::create_order(&mut conn, &event, payment)
            .await
            .map_err(db_error)?;
        drop(conn);
        match created {
            Created::Duplicate => {
                tracing::info!(eventId = %event.event_id, orderNumber = %event.order_number,
                    "OrderCreated already processed; skipped");
                return Ok(());
            }
            Created::OrderExists => {
                tracing::warn!(eventId = %event.event_id, sourceOrderId = %event.order_id,
                    orderNumber = %event.order_number,
                    "an order for this checkout exists already; event recorded, nothing created");
                return Ok(());
            }
            Created::Order => {}
        }
        self.metrics.orders_created.inc();
        self.metrics
            .order_processing
            .observe(started.elapsed().as_secs_f64());
        tracing::info!(orderId = %event.order_id, orderNumber = %event.order_number,
            eventId = %event.event_id, "order created");
        match slot {
            Some(slot) => self.payments.pay_claimed(
                slot,
                Claim {
                    order_id: event.order_id,
                    source_order_id: event.order_id,
                    order_number: event.order_number,
                    customer_email: event.customer.email,
                    correlation_id: event.correlation_id,
                    amount: event.subtotal,
                    payment_id: payment.id,
                    attempt_count: 0,
                },
            ),
            None => tracing::info!(orderId = %event.order_id,
                "every payment slot is busy; the retry worker will pay this order"),
        }
        Ok(())
    }
}

/// What the schema and the payment need of an event; the message names the field.
pub fn validate(event: &OrderCreated) -> Result<(), String> {
    fn text(name: &str, value: &str, max: usize) -> Result<(), String> {
        if value.trim().is_empty() {
            return Err(format!("{name} must not be blank"));
        }
        if value.chars().count() > max {
            return Err(format!("{name} must be at most {max} characters"));
        }
        Ok(())
    }
    fn amount(name: &str, value: Decimal) -> Result<(), String> {
        if value.is_sign_negative() || value > MAX_AMOUNT {
            return Err(format!("{name} must be between 0 and {MAX_AMOUNT}"));
        }
        Ok(())
    }
    if event.event_type != events::ORDER_CREATED {
        return Err(format!(
            "eventType must be {}, not '{}'",
            events::ORDER_CREATED,
            event.event_type
        ));
    }
    text("orderNumber", &event.order_number, 20)?;
    let c = &event.customer;
    text("customer.name", &c.name, 200)?;
    text("customer.email", &c.email, 100)?;
    text("customer.phone", &c.phone, 20)?;
    amount("subtotal", event.subtotal)?;
    if event.items.is_empty() {
        return Err("items must not be empty".into());
    }
    for (i, item) in event.items.iter().enumerate() {
        text(&format!("items[{i}].productSku"), &item.product_sku, 50)?;
        text(&format!("items[{i}].productName"), &item.product_name, 200)?;
        if item.quantity <= 0 {
            return Err(format!("items[{i}].quantity must be positive"));
        }
        amount(&format!("items[{i}].priceSnapshot"), item.price_snapshot)?;
        amount(
            &format!("items[{i}].subtotal"),
            item.price_snapshot * Decimal::from(item.quantity),
        )?;
    }
    Ok(())
}
