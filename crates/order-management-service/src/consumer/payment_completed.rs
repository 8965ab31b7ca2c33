//! `payments.completed`: moves the order from PROCESSING to PAID or FAILED, as the
//! original does, under the order's row lock. An order that left PROCESSING meanwhile
//! (cancelled) keeps its state.

use super::{db_error, decode};
use crate::db;
use crate::domain::{OrderStatus, PaymentStatus};
use crate::metrics::OrderMetrics;
use events::{PaymentCompleted, PaymentOutcome};
use futures::future::BoxFuture;
use platform::db::Db;
use platform::kafka::{Handler, HandlerError, Record};

/// Handles PaymentCompleted records.
pub struct PaymentCompletedHandler {
    pub db: Db,
    pub metrics: OrderMetrics,
}

impl Handler for PaymentCompletedHandler {
    fn handle<'a>(&'a self, record: &'a Record) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(super::ride_out_outages(super::OUTAGE_PATIENCE, || {
            self.handle_record(record)
        }))
    }
}

impl PaymentCompletedHandler {
    async fn handle_record(&self, record: &Record) -> Result<(), HandlerError> {
        let event: PaymentCompleted = decode(record)?;
        if event.event_type != events::PAYMENT_COMPLETED {
            return Err(HandlerError::poison(
                "ValidationException",
                format!(
                    "eventType must be {}, not '{}'",
                    events::PAYMENT_COMPLETED,
                    event.event_type
                ),
            ));
        }
        let mut tx = self.db.begin().await.map_err(db_error)?;
        let target = db::payments::lock_for_completion(
            &mut tx,
            event.order_id,
            event.payment_transaction_id,
        )
        .await
        .map_err(db_error)?
        .ok_or_else(|| {
            HandlerError::poison(
                "ResourceNotFoundException",
                format!(
                    "Order {} with payment transaction {} not found",
                    event.order_id, event.payment_transaction_id
                ),
            )
        })?;
        if !db::events::claim_event(&mut tx, event.event_id, &event.event_type)
            .await
            .map_err(db_error)?
        {
            tracing::info!(eventId = %event.event_id, "PaymentCompleted already processed; skipped");
            return Ok(());
        }
        db::events::link_event(&mut tx, event.event_id, target.order_id)
            .await
            .map_err(db_error)?;
        let (payment_status, order_status) = match event.status {
            PaymentOutcome::Success => (PaymentStatus::Success, OrderStatus::Paid),
            PaymentOutcome::Failed => (PaymentStatus::Failed, OrderStatus::Failed),
        };
        if target.payment_status == PaymentStatus::Pending {
            // A replayed or foreign event: record the result it carries.
            db::payments::record_result(
                &mut tx,
                event.payment_transaction_id,
                payment_status,
                event.external_transaction_id.as_deref(),
                event.failure_reason.as_deref(),
                None,
            )
            .await
            .map_err(db_error)?;
        }
        let moved = if target.order_status.awaits_payment() {
            db::payments::complete_order(&mut tx, target.order_id, order_status)
                .await
                .map_err(db_error)?
        } else {
            false
        };
        tx.commit().await.map_err(db_error)?;
        match event.status {
            PaymentOutcome::Success => self.metrics.payments_success.inc(),
            PaymentOutcome::Failed => self.metrics.payments_failed.inc(),
        }
        if moved {
            tracing::info!(orderId = %target.order_id, orderNumber = %event.order_number,
                status = %order_status, "order payment completed");
        } else {
            tracing::warn!(orderId = %target.order_id, orderNumber = %event.order_number,
                current = %target.order_status, payment = ?event.status,
                "payment completed for an order no longer awaiting payment; state kept");
        }
        Ok(())
    }
}
