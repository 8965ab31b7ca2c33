//! The order as the lookup `GET /api/v1/orders/{orderNumber}` answers it, on both
//! services: the order service answers from `order_db`; the customer-facing service
//! passes that answer on, or, while the order service does not have the order yet,
//! answers it PENDING from the checkout's own `orders.created` event. One type, so the
//! two answers cannot drift apart.

use crate::OrderCreated;
use chrono::NaiveDateTime;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use utoipa::ToSchema;
use uuid::Uuid;

/// Header with which a customer proves an order is theirs: the order's email.
pub const CUSTOMER_EMAIL_HEADER: &str = "X-Customer-Email";

/// Header with which the order service asks the customer-facing service's lookup for
/// an order it does not have: answer only from what the checkout recorded, without
/// asking the order service back.
pub const RECORDED_ONLY_HEADER: &str = "X-Order-Lookup-Recorded-Only";

/// `order_status`: PENDING → PROCESSING → PAID → FULFILLED, or CANCELLED / FAILED.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "sqlx", derive(sqlx::Type))]
#[cfg_attr(
    feature = "sqlx",
    sqlx(type_name = "order_status", rename_all = "SCREAMING_SNAKE_CASE")
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrderStatus {
    Pending,
    Processing,
    Paid,
    Fulfilled,
    Cancelled,
    Failed,
}

impl OrderStatus {
    pub const ALL: [Self; 6] = [
        Self::Pending,
        Self::Processing,
        Self::Paid,
        Self::Fulfilled,
        Self::Cancelled,
        Self::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Processing => "PROCESSING",
            Self::Paid => "PAID",
            Self::Fulfilled => "FULFILLED",
            Self::Cancelled => "CANCELLED",
            Self::Failed => "FAILED",
        }
    }

    /// Whether a manager may cancel an order in this state (a PAID order is refunded).
    pub fn cancellable(self) -> bool {
        matches!(self, Self::Pending | Self::Processing | Self::Paid)
    }

    /// Whether a payment result may still move the order.
    pub fn awaits_payment(self) -> bool {
        matches!(self, Self::Pending | Self::Processing)
    }
}

impl fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for OrderStatus {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or(())
    }
}

/// `payment_status` of a payment transaction: PENDING → SUCCESS or FAILED; a charge
/// the gateway gave back is REFUNDED (ADR 0007).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "sqlx", derive(sqlx::Type))]
#[cfg_attr(
    feature = "sqlx",
    sqlx(type_name = "payment_status", rename_all = "SCREAMING_SNAKE_CASE")
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PaymentStatus {
    Pending,
    Success,
    Failed,
    Refunded,
}

impl fmt::Display for PaymentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Pending => "PENDING",
            Self::Success => "SUCCESS",
            Self::Failed => "FAILED",
            Self::Refunded => "REFUNDED",
        })
    }
}

/// A shipping address.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ShippingAddress {
    pub street: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub postal_code: Option<String>,
    pub country: Option<String>,
}

/// The customer of an order.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CustomerInfo {
    pub name: String,
    pub email: String,
    pub phone: String,
    pub shipping_address: ShippingAddress,
}

/// One line of an order.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderItem {
    pub id: Uuid,
    pub product_id: Uuid,
    pub product_sku: String,
    pub product_name: String,
    pub quantity: i32,
    #[schema(value_type = f64, example = 149.99)]
    #[serde(with = "rust_decimal::serde::float")]
    pub price_snapshot: Decimal,
    #[schema(value_type = f64, example = 299.98)]
    #[serde(with = "rust_decimal::serde::float")]
    pub subtotal: Decimal,
}

/// An order as the API returns it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Order {
    /// The checkout's order id (the `orderId` of `orders.created`).
    pub id: Uuid,
    pub order_number: String,
    pub customer_info: CustomerInfo,
    pub items: Vec<OrderItem>,
    #[schema(value_type = f64, example = 299.98)]
    #[serde(with = "rust_decimal::serde::float")]
    pub subtotal: Decimal,
    pub status: OrderStatus,
    /// PENDING, SUCCESS, FAILED, or REFUNDED once the gateway gave a cancelled paid
    /// order's money back; null when the order has no payment transaction (yet).
    pub payment_status: Option<PaymentStatus>,
    #[schema(value_type = String, example = "2025-10-06T14:03:27.51234")]
    #[serde(serialize_with = "platform::time::serialize")]
    pub created_at: NaiveDateTime,
    #[schema(value_type = String, example = "2025-10-06T14:03:27.51234")]
    #[serde(serialize_with = "platform::time::serialize")]
    pub updated_at: NaiveDateTime,
    #[schema(value_type = Option<String>, example = "2025-10-06T15:00:00")]
    #[serde(serialize_with = "platform::time::serialize_option")]
    pub completed_at: Option<NaiveDateTime>,
}

/// The id of line `line` (from 0) of order `order_id`: the same in both services'
/// answers, so a line keeps its id when the order service takes the order over.
pub fn line_id(order_id: Uuid, line: usize) -> Uuid {
    let (high, low) = order_id.as_u64_pair();
    Uuid::from_u64_pair(high, low ^ (line as u64 + 1))
}

impl Order {
    /// The order a checkout placed, as it stands until the order service has it:
    /// PENDING, no payment yet, created when the checkout committed.
    pub fn pending(event: &OrderCreated, created_at: NaiveDateTime) -> Self {
        let customer = &event.customer;
        let address = &customer.shipping_address;
        Self {
            id: event.order_id,
            order_number: event.order_number.clone(),
            customer_info: CustomerInfo {
                name: customer.name.clone(),
                email: customer.email.clone(),
                phone: customer.phone.clone(),
                shipping_address: ShippingAddress {
                    street: Some(address.street.clone()),
                    city: Some(address.city.clone()),
                    state: Some(address.state.clone()),
                    postal_code: Some(address.postal_code.clone()),
                    country: Some(address.country.clone()),
                },
            },
            items: event
                .items
                .iter()
                .enumerate()
                .map(|(line, item)| OrderItem {
                    id: line_id(event.order_id, line),
                    product_id: item.product_id,
                    product_sku: item.product_sku.clone(),
                    product_name: item.product_name.clone(),
                    quantity: item.quantity,
                    price_snapshot: item.price_snapshot,
                    // As the order service: recomputed, not trusted.
                    subtotal: item.price_snapshot * Decimal::from(item.quantity),
                })
                .collect(),
            subtotal: event.subtotal,
            status: OrderStatus::Pending,
            payment_status: None,
            created_at,
            updated_at: created_at,
            completed_at: None,
        }
    }

    /// The order as `manager` or the holder of `claimed_email` may see it: whole for
    /// a manager or for the order's own email (compared case-insensitively, in
    /// constant time), [`Order::masked`] for anyone else.
    pub fn as_seen_by(self, manager: bool, claimed_email: Option<&str>) -> Self {
        if manager || claimed_email.is_some_and(|claimed| self.is_owned_by(claimed)) {
            self
        } else {
            self.masked()
        }
    }

    /// Whether `claimed` is the order's email (compared case-insensitively, in constant
    /// time): the claim that unmasks the order, and a guess to count when it is wrong.
    pub fn is_owned_by(&self, claimed: &str) -> bool {
        claim_matches(&self.customer_info.email, claimed)
    }

    /// The order as a stranger may see it: status, items, totals and times as they
    /// are; who bought it and where it goes masked. Order numbers count up from 1
    /// each day, so anyone can guess them.
    pub fn masked(mut self) -> Self {
        let initial = |text: &str| {
            let first: String = text.chars().take(1).collect();
            format!("{first}***")
        };
        let info = &mut self.customer_info;
        info.name = initial(&info.name);
        info.email = match info.email.split_once('@') {
            Some((local, domain)) => format!("{}@{domain}", initial(local)),
            None => "***".into(),
        };
        let digits: Vec<char> = info.phone.chars().filter(char::is_ascii_digit).collect();
        let last: String = digits[digits.len().saturating_sub(2)..].iter().collect();
        info.phone = format!("***{last}");
        let address = &mut info.shipping_address;
        for field in [
            &mut address.street,
            &mut address.city,
            &mut address.postal_code,
        ] {
            if field.is_some() {
                *field = Some("***".into());
            }
        }
        self
    }
}

/// Whether `claimed` is `email` (case-insensitively, in constant time). An email as
/// [`Order::masked`] shows it never matches, so a lookup answer tells whether its
/// claim was right: unmasked answers show the real email.
pub fn claim_matches(email: &str, claimed: &str) -> bool {
    !email.contains("***")
        && platform::auth::constant_time_eq(
            claimed.trim().to_lowercase().as_bytes(),
            email.trim().to_lowercase().as_bytes(),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_parse_by_their_exact_names_only() {
        assert_eq!("PAID".parse::<OrderStatus>(), Ok(OrderStatus::Paid));
        assert!("paid".parse::<OrderStatus>().is_err());
        assert!("BOGUS".parse::<OrderStatus>().is_err());
    }

    #[test]
    fn line_ids_differ_per_line_and_from_the_order() {
        let order = Uuid::new_v4();
        let ids: std::collections::HashSet<Uuid> = (0..50).map(|n| line_id(order, n)).collect();
        assert_eq!(ids.len(), 50);
        assert!(!ids.contains(&order));
        assert_eq!(line_id(order, 3), line_id(order, 3));
    }
}
