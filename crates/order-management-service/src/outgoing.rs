//! The events this service writes to its outbox, in the transaction that changes what
//! they tell: `payments.completed` (PaymentCompleted) and `orders.released`
//! (OrderReleased, ADR 0007). Their headers are built in one place, so every event
//! carries the same ones (`__TypeId__`, `eventId`, `eventType`, `X-Correlation-ID`,
//! `traceparent`).

use crate::db;
use crate::db::outbox::NewEvent;
use anyhow::Context as _;
use events::{EventHeaders, OrderReleased, PaymentCompleted, ReleasedStatus};
use platform::context::{self, TraceContext};
use platform::outbox::OutboxMessage;
use sqlx::PgConnection;
use std::time::Duration;
use uuid::Uuid;

/// `event_type` column of PaymentCompleted rows.
pub const PAYMENT_COMPLETED_EVENT_TYPE: &str = "PaymentCompletedEvent";
/// `event_type` column of OrderReleased rows.
pub const ORDER_RELEASED_EVENT_TYPE: &str = "OrderReleasedEvent";

/// How long the relay loop leaves a fresh outbox row to the immediate publish.
pub const HANDOFF_LEASE: Duration = Duration::from_secs(15);

/// What tells one outgoing event from another on the wire, besides its payload.
struct Kind {
    /// The outbox row's `event_type` column.
    row_type: &'static str,
    /// Spring's `__TypeId__`.
    type_id: &'static str,
    /// The `eventType` header, as in the payload.
    event_type: &'static str,
}

const PAYMENT_COMPLETED: Kind = Kind {
    row_type: PAYMENT_COMPLETED_EVENT_TYPE,
    type_id: events::PAYMENT_COMPLETED_TYPE_ID,
    event_type: events::PAYMENT_COMPLETED,
};

const ORDER_RELEASED: Kind = Kind {
    row_type: ORDER_RELEASED_EVENT_TYPE,
    type_id: events::ORDER_RELEASED_TYPE_ID,
    event_type: events::ORDER_RELEASED,
};

/// The headers of an event: its type for Spring consumers, its id and type, the
/// correlation id, and the current trace (a new one outside a request).
fn headers(kind: &Kind, event_id: Uuid, correlation_id: &str) -> EventHeaders {
    let trace = context::current().map_or_else(TraceContext::new_root, |c| c.trace);
    EventHeaders::new(kind.type_id, event_id, kind.event_type)
        .correlation(correlation_id)
        .trace(&trace)
}

/// The correlation id events of an order carry: the checkout's, or one made from the
/// order number for orders that came without.
pub fn correlation_id(checkout: Option<&str>, order_number: &str) -> String {
    checkout.map_or_else(|| format!("payment-{order_number}"), str::to_owned)
}

/// The outbox row of one event, keyed by `key`, with the headers every event carries.
fn new_event<'a>(
    topic: &'a str,
    kind: &Kind,
    key: Uuid,
    event_id: Uuid,
    correlation_id: &str,
    payload: serde_json::Value,
) -> NewEvent<'a> {
    NewEvent {
        id: Uuid::new_v4(),
        aggregate_id: key,
        event_type: kind.row_type,
        topic,
        payload,
        headers: headers(kind, event_id, correlation_id),
        lease: HANDOFF_LEASE,
    }
}

/// The PaymentCompleted row of `event`, keyed by the order service's order id as before.
pub fn payment_completed<'a>(
    topic: &'a str,
    event: &PaymentCompleted,
) -> anyhow::Result<NewEvent<'a>> {
    let payload = serde_json::to_value(event).context("PaymentCompleted serialization")?;
    let correlation = correlation_id(event.correlation_id.as_deref(), &event.order_number);
    Ok(new_event(
        topic,
        &PAYMENT_COMPLETED,
        event.order_id,
        event.event_id,
        &correlation,
        payload,
    ))
}

/// Writes the OrderReleased row of order `order_id` (the order service's id), which
/// ended in `status` for `reason`: its items go back to the catalogue. The event's
/// `orderId` and record key are the checkout's order id.
pub async fn order_released(
    conn: &mut PgConnection,
    topic: &str,
    order_id: Uuid,
    status: ReleasedStatus,
    reason: &str,
) -> anyhow::Result<OutboxMessage> {
    let order = db::orders::release_details(conn, order_id).await?;
    let correlation = correlation_id(order.correlation_id.as_deref(), &order.order_number);
    let event = OrderReleased {
        event_id: Uuid::new_v4(),
        event_type: events::ORDER_RELEASED.to_owned(),
        event_version: events::EVENT_VERSION.to_owned(),
        timestamp: events::EventTime::now(),
        correlation_id: Some(correlation.clone()),
        order_id: order.source_order_id,
        order_number: order.order_number,
        order_status: status,
        reason: reason.to_owned(),
        items: order.items,
    };
    let payload = serde_json::to_value(&event).context("OrderReleased serialization")?;
    let row = new_event(
        topic,
        &ORDER_RELEASED,
        event.order_id,
        event.event_id,
        &correlation,
        payload,
    );
    Ok(db::outbox::insert(conn, row).await?)
}
