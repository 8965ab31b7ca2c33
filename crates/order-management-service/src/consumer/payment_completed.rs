//! `payments.completed`: a check, no longer a state change (ADR 0007). The payment
//! processor records the gateway's answer and the order's new state in one transaction
//! and writes this event in it, so by the time the event arrives there is nothing left
//! to apply. The consumer still reads the topic, so its DLQ and replay work as the
//! runbook has them: an undecodable event, or one naming an order or payment that does
//! not exist, is poison and dead-lettered; an event that disagrees with what was
//! recorded (a replay from elsewhere, a restored database) is logged as a warning and
//! changes nothing.

use super::{db_error, decode};
use crate::db;
use crate::domain::{OrderStatus, PaymentStatus};
use events::{PaymentCompleted, PaymentOutcome};
use futures::future::BoxFuture;
use platform::db::Db;
use platform::kafka::{Handler, HandlerError, Record};

/// Handles PaymentCompleted records.
pub struct PaymentCompletedHandler {
    pub db: Db,
}

impl Handler for PaymentCompletedHandler {
    fn handle<'a>(&'a self, record: &'a Record) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(self.handle_record(record))
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
        let mut conn = self.db.acquire().await.map_err(db_error)?;
        let recorded =
            db::payments::recorded(&mut conn, event.order_id, event.payment_transaction_id)
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
        match mismatch(&event, &recorded) {
            None => tracing::debug!(orderId = %event.order_id, eventId = %event.event_id,
                "PaymentCompleted agrees with the recorded payment"),
            Some(why) => tracing::warn!(
                orderId = %event.order_id, orderNumber = %event.order_number,
                eventId = %event.event_id, event = ?event.status,
                payment = %recorded.payment_status, order = %recorded.order_status,
                mismatch = why,
                "PaymentCompleted disagrees with the recorded payment; nothing changed"
            ),
        }
        Ok(())
    }
}

/// How `event` disagrees with what `order_db` recorded, if it does.
fn mismatch(event: &PaymentCompleted, recorded: &db::payments::Recorded) -> Option<&'static str> {
    let payment_agrees = match event.status {
        // A paid order may have been refunded since.
        PaymentOutcome::Success => matches!(
            recorded.payment_status,
            PaymentStatus::Success | PaymentStatus::Refunded
        ),
        // A voided key can be "refunded" with nothing charged: it stays FAILED.
        PaymentOutcome::Failed => recorded.payment_status == PaymentStatus::Failed,
    };
    if !payment_agrees {
        return Some("payment status");
    }
    if event.status == PaymentOutcome::Success
        && event.external_transaction_id.is_some()
        && event.external_transaction_id != recorded.external_transaction_id
    {
        return Some("external transaction id");
    }
    let order_agrees = match event.status {
        PaymentOutcome::Success => matches!(
            recorded.order_status,
            OrderStatus::Paid
                | OrderStatus::Fulfilled
                | OrderStatus::Cancelled
                | OrderStatus::Failed
        ),
        PaymentOutcome::Failed => matches!(
            recorded.order_status,
            OrderStatus::Failed | OrderStatus::Cancelled
        ),
    };
    (!order_agrees).then_some("order status")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(status: PaymentOutcome, ext: Option<&str>) -> PaymentCompleted {
        PaymentCompleted {
            event_id: uuid::Uuid::new_v4(),
            event_type: events::PAYMENT_COMPLETED.to_owned(),
            event_version: events::EVENT_VERSION.to_owned(),
            timestamp: events::EventTime::now(),
            correlation_id: None,
            order_id: uuid::Uuid::new_v4(),
            order_number: "ORD-1".into(),
            payment_transaction_id: uuid::Uuid::new_v4(),
            status,
            amount: rust_decimal::Decimal::ONE,
            payment_method: "MOCK".into(),
            external_transaction_id: ext.map(str::to_owned),
            failure_reason: None,
        }
    }

    fn recorded(
        order: OrderStatus,
        payment: PaymentStatus,
        ext: Option<&str>,
    ) -> db::payments::Recorded {
        db::payments::Recorded {
            order_status: order,
            payment_status: payment,
            external_transaction_id: ext.map(str::to_owned),
        }
    }

    #[test]
    fn an_event_agreeing_with_the_recorded_payment_is_no_mismatch() {
        let paid = event(PaymentOutcome::Success, Some("tx1"));
        assert_eq!(
            mismatch(
                &paid,
                &recorded(OrderStatus::Paid, PaymentStatus::Success, Some("tx1"))
            ),
            None
        );
        assert_eq!(
            mismatch(
                &paid,
                &recorded(OrderStatus::Cancelled, PaymentStatus::Refunded, Some("tx1"))
            ),
            None
        );
        let declined = event(PaymentOutcome::Failed, None);
        assert_eq!(
            mismatch(
                &declined,
                &recorded(OrderStatus::Failed, PaymentStatus::Failed, None)
            ),
            None
        );
    }

    #[test]
    fn an_event_disagreeing_with_the_recorded_payment_says_how() {
        let paid = event(PaymentOutcome::Success, Some("tx1"));
        assert_eq!(
            mismatch(
                &paid,
                &recorded(OrderStatus::Processing, PaymentStatus::Pending, None)
            ),
            Some("payment status")
        );
        assert_eq!(
            mismatch(
                &paid,
                &recorded(OrderStatus::Paid, PaymentStatus::Success, Some("tx2"))
            ),
            Some("external transaction id")
        );
        let declined = event(PaymentOutcome::Failed, None);
        assert_eq!(
            mismatch(
                &declined,
                &recorded(OrderStatus::Processing, PaymentStatus::Failed, None)
            ),
            Some("order status")
        );
    }
}
