//! The order and payment states, as PostgreSQL enums and as the API writes them.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use utoipa::ToSchema;

/// `order_status`: PENDING → PROCESSING → PAID → FULFILLED, or CANCELLED / FAILED.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, sqlx::Type, ToSchema)]
#[sqlx(type_name = "order_status", rename_all = "SCREAMING_SNAKE_CASE")]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, sqlx::Type, ToSchema)]
#[sqlx(type_name = "payment_status", rename_all = "SCREAMING_SNAKE_CASE")]
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_parse_by_their_exact_names_only() {
        assert_eq!("PAID".parse::<OrderStatus>(), Ok(OrderStatus::Paid));
        assert!("paid".parse::<OrderStatus>().is_err());
        assert!("BOGUS".parse::<OrderStatus>().is_err());
    }
}
