//! The events on `orders.created` and `payments.completed`, field for field as the
//! original Spring system writes them (see `shared/design/events/`), and
//! `orders.released`, which this platform adds: an order ended FAILED or CANCELLED and
//! its stock goes back to the catalogue.
//!
//! `timestamp` goes on the wire as a JSON number (epoch seconds with a nanosecond
//! fraction), as Spring Kafka writes it; consumers also accept an ISO-8601 string.
//! Amounts are JSON numbers. Nulls are written explicitly.
//!
//! [`order_view`] is the other contract between the two services: the order as both
//! services' lookups answer it. [`EventHeaders`] builds the Kafka headers every event
//! carries.

pub mod headers;
pub mod order_view;

pub use headers::EventHeaders;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

/// `eventType` of [`OrderCreated`].
pub const ORDER_CREATED: &str = "ORDER_CREATED";
/// `eventType` of [`PaymentCompleted`].
pub const PAYMENT_COMPLETED: &str = "PAYMENT_COMPLETED";
/// `eventType` of [`OrderReleased`].
pub const ORDER_RELEASED: &str = "ORDER_RELEASED";
/// `eventVersion` of every event.
pub const EVENT_VERSION: &str = "1.0";
/// Spring's `__TypeId__` header values, so a Java consumer resolves the type.
pub const ORDER_CREATED_TYPE_ID: &str = "com.ecommerce.shared.event.OrderCreatedEvent";
pub const PAYMENT_COMPLETED_TYPE_ID: &str = "com.ecommerce.shared.event.PaymentCompletedEvent";
/// In the same namespace, so a Java consumer written the original's way resolves it too.
pub const ORDER_RELEASED_TYPE_ID: &str = "com.ecommerce.shared.event.OrderReleasedEvent";
/// Header name of Spring's type hint.
pub const TYPE_ID_HEADER: &str = "__TypeId__";

/// Default topic names.
pub const ORDERS_CREATED_TOPIC: &str = "orders.created";
pub const PAYMENTS_COMPLETED_TOPIC: &str = "payments.completed";
pub const ORDERS_RELEASED_TOPIC: &str = "orders.released";
/// The consumer group of the order service.
pub const ORDER_SERVICE_GROUP: &str = "order-service-group";
/// The consumer group of the customer-facing service (reads `orders.released`).
pub const CUSTOMER_SERVICE_GROUP: &str = "customer-service-group";

/// An event's time: numeric epoch seconds on the wire, ISO-8601 also accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct EventTime(pub DateTime<Utc>);

impl EventTime {
    pub fn now() -> Self {
        Self(Utc::now())
    }
}

impl Serialize for EventTime {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // Exactly nine fractional digits, as Jackson writes an Instant.
        let text = format!(
            "{}.{:09}",
            self.0.timestamp(),
            self.0.timestamp_subsec_nanos()
        );
        serde_json::value::RawValue::from_string(text)
            .map_err(serde::ser::Error::custom)?
            .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for EventTime {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(f64),
            Text(String),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Number(seconds) => {
                let whole = seconds.floor();
                let nanos = ((seconds - whole) * 1e9).round().clamp(0.0, 999_999_999.0) as u32;
                DateTime::from_timestamp(whole as i64, nanos)
                    .map(EventTime)
                    .ok_or_else(|| serde::de::Error::custom("timestamp out of range"))
            }
            Raw::Text(text) => DateTime::parse_from_rfc3339(&text)
                .map(|t| t.with_timezone(&Utc))
                .or_else(|_| {
                    // Jackson's LocalDateTime form: no offset, taken as UTC.
                    chrono::NaiveDateTime::parse_from_str(&text, "%Y-%m-%dT%H:%M:%S%.f")
                        .map(|t| t.and_utc())
                })
                .map(EventTime)
                .map_err(|_| serde::de::Error::custom(format!("invalid timestamp '{text}'"))),
        }
    }
}

/// A shipping address.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShippingAddress {
    pub street: String,
    pub city: String,
    pub state: String,
    pub postal_code: String,
    pub country: String,
}

/// The customer of an order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Customer {
    pub name: String,
    pub email: String,
    pub phone: String,
    pub shipping_address: ShippingAddress,
}

/// One line of an order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderItem {
    pub product_id: Uuid,
    pub product_sku: String,
    pub product_name: String,
    pub quantity: i32,
    #[serde(with = "rust_decimal::serde::float")]
    pub price_snapshot: Decimal,
    #[serde(with = "rust_decimal::serde::float")]
    pub subtotal: Decimal,
}

/// `orders.created`: a checkout committed in the customer-facing service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderCreated {
    pub event_id: Uuid,
    pub event_type: String,
    pub event_version: String,
    pub timestamp: EventTime,
    pub correlation_id: Option<String>,
    /// The customer-facing service's id of the order; also the record key.
    pub order_id: Uuid,
    pub order_number: String,
    pub customer: Customer,
    pub items: Vec<OrderItem>,
    #[serde(with = "rust_decimal::serde::float")]
    pub subtotal: Decimal,
    pub cart_id: Option<Uuid>,
}

/// `SUCCESS` or `FAILED`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum PaymentOutcome {
    Success,
    Failed,
}

/// `payments.completed`: the order service charged (or failed to charge) an order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentCompleted {
    pub event_id: Uuid,
    pub event_type: String,
    pub event_version: String,
    pub timestamp: EventTime,
    pub correlation_id: Option<String>,
    /// The order service's own order id.
    pub order_id: Uuid,
    pub order_number: String,
    pub payment_transaction_id: Uuid,
    pub status: PaymentOutcome,
    #[serde(with = "rust_decimal::serde::float")]
    pub amount: Decimal,
    pub payment_method: String,
    pub external_transaction_id: Option<String>,
    pub failure_reason: Option<String>,
}

/// Why an order released its stock: the status it ended in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ReleasedStatus {
    /// The payment was declined, or never answered within the payment deadline.
    Failed,
    /// A manager cancelled the order (refunded first if it was paid).
    Cancelled,
}

/// One line of stock to give back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReleasedItem {
    pub product_id: Uuid,
    pub product_sku: String,
    pub quantity: i32,
}

/// `orders.released`: an order ended FAILED or CANCELLED; the customer-facing service
/// returns `items` to the catalogue exactly once per `orderId`, whatever the `eventId`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderReleased {
    pub event_id: Uuid,
    pub event_type: String,
    pub event_version: String,
    pub timestamp: EventTime,
    pub correlation_id: Option<String>,
    /// The customer-facing service's id of the order (the checkout's `orderId`, the
    /// `orders.created` key); also this record's key.
    pub order_id: Uuid,
    pub order_number: String,
    pub order_status: ReleasedStatus,
    /// Human-readable: the decline reason, the cancel reason, or the payment deadline.
    pub reason: String,
    pub items: Vec<ReleasedItem>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORDER_CREATED_FIXTURE: &str =
        include_str!("../../../specs/001-e-commerce-platform/contracts/events/order-created.json");
    const PAYMENT_COMPLETED_FIXTURE: &str = include_str!(
        "../../../specs/001-e-commerce-platform/contracts/events/payment-completed.json"
    );

    #[test]
    fn the_original_order_created_example_is_accepted_and_written_back_the_same() {
        let event: OrderCreated = serde_json::from_str(ORDER_CREATED_FIXTURE).unwrap();
        assert_eq!(event.order_number, "ORD-20251124-42");
        assert_eq!(event.items[0].quantity, 2);
        let original: serde_json::Value = serde_json::from_str(ORDER_CREATED_FIXTURE).unwrap();
        let written = serde_json::to_value(&event).unwrap();
        assert_eq!(written, original);
    }

    #[test]
    fn the_original_payment_completed_example_is_accepted_and_written_back_the_same() {
        let event: PaymentCompleted = serde_json::from_str(PAYMENT_COMPLETED_FIXTURE).unwrap();
        assert_eq!(event.status, PaymentOutcome::Success);
        let original: serde_json::Value = serde_json::from_str(PAYMENT_COMPLETED_FIXTURE).unwrap();
        assert_eq!(serde_json::to_value(&event).unwrap(), original);
    }

    const ORDER_RELEASED_FIXTURE: &str =
        include_str!("../../../specs/001-e-commerce-platform/contracts/events/order-released.json");

    #[test]
    fn the_order_released_example_is_accepted_and_written_back_the_same() {
        let event: OrderReleased = serde_json::from_str(ORDER_RELEASED_FIXTURE).unwrap();
        assert_eq!(event.order_status, ReleasedStatus::Failed);
        assert_eq!(event.items[0].quantity, 2);
        let original: serde_json::Value = serde_json::from_str(ORDER_RELEASED_FIXTURE).unwrap();
        assert_eq!(serde_json::to_value(&event).unwrap(), original);
    }

    #[test]
    fn timestamps_are_numeric_on_the_wire_and_iso_strings_are_accepted() {
        let t: EventTime = serde_json::from_str("\"2025-10-06T14:03:27.51234\"").unwrap();
        assert_eq!(t.0.timestamp(), 1_759_759_407);
        let t2: EventTime = serde_json::from_str("\"2025-10-06T14:03:27.51234Z\"").unwrap();
        assert_eq!(t, t2);
        let text = serde_json::to_string(&t).unwrap();
        assert_eq!(text, "1759759407.512340000");
    }
}
