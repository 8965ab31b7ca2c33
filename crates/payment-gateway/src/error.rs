//! The gateway's one error type, answered as problem details; internal causes are
//! logged, never sent.

use crate::ledger::LedgerError;
use crate::refunds::RefundError;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use platform::{FieldErrors, Problem};

/// Everything a gateway request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Missing required header 'Idempotency-Key'")]
    MissingIdempotencyKey,
    #[error("Idempotency-Key must be 1 to 255 visible characters")]
    InvalidIdempotencyKey,
    #[error("{0}")]
    KeyReused(String),
    #[error("Payment not found with id: {0}")]
    PaymentNotFound(String),
    #[error("Refund not found with id: {0}")]
    RefundNotFound(String),
    /// More than what is left of the charge to refund.
    #[error("{0}")]
    RefundExceedsCharge(String),
    #[error("invalid request body")]
    Validation(FieldErrors),
    /// A request without the credential its route needs (the service token for
    /// `/api/v1/*`, the admin token for the fault knobs).
    #[error("This route needs the gateway's credential (Authorization: Bearer ...)")]
    Unauthorized,
    /// The `errorStatus` fault knob is set.
    #[error("injected fault: HTTP {0}")]
    InjectedFault(u16),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error("{0}")]
    Internal(String),
}

impl From<LedgerError> for Error {
    fn from(e: LedgerError) -> Self {
        match e {
            LedgerError::KeyReused(_) => Self::KeyReused(e.to_string()),
            LedgerError::Corrupt(detail) => Self::Internal(detail),
            LedgerError::Database(e) => Self::Database(e),
        }
    }
}

impl From<RefundError> for Error {
    fn from(e: RefundError) -> Self {
        match e {
            RefundError::KeyReused(_) => Self::KeyReused(e.to_string()),
            RefundError::TooLarge { .. } | RefundError::NothingLeft(_) => {
                Self::RefundExceedsCharge(e.to_string())
            }
            RefundError::Ledger(e) => e.into(),
        }
    }
}

impl Error {
    fn problem(&self) -> Problem {
        match self {
            Self::MissingIdempotencyKey | Self::InvalidIdempotencyKey => {
                Problem::bad_request(self.to_string())
            }
            // Both conflict with what the ledger already holds: 409.
            Self::KeyReused(detail) => Problem::new(
                StatusCode::CONFLICT,
                "idempotency-key-reused",
                "Idempotency Key Reused",
                detail.clone(),
            ),
            Self::RefundExceedsCharge(detail) => Problem::new(
                StatusCode::CONFLICT,
                "refund-exceeds-charge",
                "Refund Exceeds Charge",
                detail.clone(),
            ),
            Self::PaymentNotFound(_) | Self::RefundNotFound(_) => {
                Problem::not_found(self.to_string())
            }
            Self::Validation(fields) => Problem::validation(fields.clone()),
            Self::Unauthorized => Problem::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "Unauthorized",
                self.to_string(),
            ),
            Self::InjectedFault(status) => Problem::new(
                StatusCode::from_u16(*status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
                "injected-fault",
                "Injected Fault",
                "The gateway is configured to fail this request (fault knob errorStatus)",
            ),
            // The ledger is unreachable: nothing was charged or refunded, so the client
            // may retry with the same key.
            Self::Database(
                sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_),
            ) => Problem::service_unavailable(
                "The gateway's ledger is not available; retry with the same Idempotency-Key",
            ),
            Self::Database(_) | Self::Internal(_) => Problem::internal(),
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        if matches!(self, Self::Database(_) | Self::Internal(_)) {
            tracing::error!(error = %self, "request failed");
        }
        let mut response = self.problem().into_response();
        if matches!(self, Self::Unauthorized) {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}
