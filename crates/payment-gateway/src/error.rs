//! The gateway's one error type, answered as problem details.

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
    NotFound(String),
    #[error("invalid request body")]
    Validation(FieldErrors),
    /// The `errorStatus` fault knob is set.
    #[error("injected fault: HTTP {0}")]
    InjectedFault(u16),
}

impl Error {
    fn problem(&self) -> Problem {
        match self {
            Self::MissingIdempotencyKey | Self::InvalidIdempotencyKey => {
                Problem::bad_request(self.to_string())
            }
            Self::KeyReused(detail) => Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency-key-reused",
                "Idempotency Key Reused",
                detail.clone(),
            ),
            Self::NotFound(_) => Problem::not_found(self.to_string()),
            Self::Validation(fields) => Problem::validation(fields.clone()),
            Self::InjectedFault(status) => Problem::new(
                StatusCode::from_u16(*status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
                "injected-fault",
                "Injected Fault",
                "The gateway is configured to fail this request (fault knob errorStatus)",
            ),
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        self.problem().into_response()
    }
}
