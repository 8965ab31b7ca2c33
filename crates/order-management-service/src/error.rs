//! The service's one error type: clients see stable problem details, logs see causes.

use crate::domain::OrderStatus;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use platform::{FieldErrors, Problem};

/// Everything an API request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Order not found with id: {0}")]
    OrderNotFound(String),
    #[error("Order cannot be cancelled in status: {status}. Order number: {order_number}")]
    NotCancellable {
        status: OrderStatus,
        order_number: String,
    },
    #[error("Order can only be fulfilled in PAID status. Current status: {status}, Order number: {order_number}")]
    NotFulfillable {
        status: OrderStatus,
        order_number: String,
    },
    #[error("The payment of order {0} is being processed; retry in a few seconds")]
    PaymentInFlight(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("invalid request body")]
    Validation(FieldErrors),
    /// 429 with `Retry-After`: this client has spent its lookups or email claims.
    #[error("{detail}")]
    TooManyRequests {
        detail: String,
        retry_after: std::time::Duration,
    },
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl Error {
    fn problem(&self) -> Problem {
        match self {
            Self::OrderNotFound(_) => Problem::not_found(self.to_string()),
            // A conflict with the order's current state: 409, where the original
            // answered 400.
            Self::NotCancellable { .. } | Self::NotFulfillable { .. } => Problem::new(
                StatusCode::CONFLICT,
                "invalid-order-state",
                "Invalid Order State",
                self.to_string(),
            ),
            Self::PaymentInFlight(_) => Problem::conflict(self.to_string()),
            Self::BadRequest(detail) => Problem::bad_request(detail.clone()),
            Self::Validation(fields) => Problem::validation(fields.clone()),
            Self::TooManyRequests { detail, .. } => Problem::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too-many-requests",
                "Too Many Requests",
                detail.clone(),
            ),
            Self::Database(sqlx::Error::PoolTimedOut) => {
                Problem::service_unavailable("The database is not available; retry later")
            }
            Self::Database(_) | Self::Internal(_) => Problem::internal(),
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        if matches!(self, Self::Database(_) | Self::Internal(_)) {
            tracing::error!(error = %format!("{self:#}"), "request failed");
        }
        match &self {
            Self::TooManyRequests { retry_after, .. } => {
                platform::limit::with_retry_after(self.problem(), *retry_after)
            }
            _ => self.problem().into_response(),
        }
    }
}
