//! The one error type of the service and how each variant reaches the client: as a
//! problem details body with a stable message. Database and internal causes are logged
//! with their chain and never shown.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use platform::{FieldErrors, Problem};

/// Everything a handler can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// 404: `"<Type> not found with id: <id>"`.
    #[error("{0}")]
    NotFound(String),
    /// 400 bad-request: a business rule or a bad header, path or query value.
    #[error("{0}")]
    BadRequest(String),
    /// 400 validation-failed with one message per field.
    #[error("invalid request body")]
    Validation(FieldErrors),
    /// 409 conflict: a lost update or a concurrent duplicate.
    #[error("{0}")]
    Conflict(String),
    /// 409 duplicate-resource: a unique value already taken.
    #[error("{0}")]
    Duplicate(String),
    /// 409 insufficient-inventory on cart operations.
    #[error("{0}")]
    InsufficientInventory(String),
    /// 409 cart-changed: checkout found lines whose price changed or whose product is
    /// no longer sold; one message per line in `fieldErrors`.
    #[error("{detail}")]
    CartChanged { detail: String, lines: FieldErrors },
    /// 503 with `Retry-After`: the service sheds this request to stay within its memory.
    #[error("{0}")]
    Busy(String),
    /// 503 with `Retry-After`: a service this answer needs is not answering.
    #[error("{0}")]
    Unavailable(String),
    /// 429 with `Retry-After`: this caller has spent its attempts for now.
    #[error("{detail}")]
    TooManyRequests {
        detail: String,
        retry_after: std::time::Duration,
    },
    #[error("database error")]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// Message of a lost optimistic-locking race, as the original words it.
pub const LOST_UPDATE: &str = "The resource was modified by another request. Please retry.";

impl Error {
    /// `"<kind> not found with id: <id>"`.
    pub fn not_found(kind: &str, id: impl std::fmt::Display) -> Self {
        Self::NotFound(format!("{kind} not found with id: {id}"))
    }

    /// One field's validation failure.
    pub fn field(field: &str, message: &str) -> Self {
        Self::Validation(FieldErrors::from([(field.to_owned(), message.to_owned())]))
    }

    fn problem(self) -> Problem {
        match self {
            Self::NotFound(detail) => Problem::not_found(detail),
            Self::BadRequest(detail) => Problem::bad_request(detail),
            Self::Validation(fields) => Problem::validation(fields),
            Self::Conflict(detail) => Problem::conflict(detail),
            Self::Duplicate(detail) => Problem::new(
                StatusCode::CONFLICT,
                "duplicate-resource",
                "Duplicate Resource",
                detail,
            ),
            Self::InsufficientInventory(detail) => Problem::new(
                StatusCode::CONFLICT,
                "insufficient-inventory",
                "Insufficient Inventory",
                detail,
            ),
            Self::CartChanged { detail, lines } => {
                let mut problem =
                    Problem::new(StatusCode::CONFLICT, "cart-changed", "Cart Changed", detail);
                problem.field_errors = Some(lines);
                problem
            }
            Self::Busy(detail) | Self::Unavailable(detail) => Problem::service_unavailable(detail),
            Self::TooManyRequests { detail, .. } => Problem::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too-many-requests",
                "Too Many Requests",
                detail,
            ),
            Self::Database(e) => database_problem(&e),
            Self::Internal(e) => {
                tracing::error!(error = %format!("{e:#}"), "request failed");
                Problem::internal()
            }
        }
    }
}

/// Client-visible problem for a database error; the cause is logged.
fn database_problem(e: &sqlx::Error) -> Problem {
    match e {
        sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
            tracing::error!(error = %e, "database unavailable");
            Problem::service_unavailable("The database is unavailable. Please try again later.")
        }
        sqlx::Error::Database(db) => match db.code().as_deref() {
            // serialization_failure, deadlock_detected, lock_not_available
            Some("40001") | Some("40P01") | Some("55P03") => {
                tracing::warn!(error = %e, "concurrent update conflict");
                Problem::conflict(LOST_UPDATE)
            }
            // numeric_value_out_of_range: an amount too large for NUMERIC(10,2).
            Some("22003") => Problem::bad_request("A numeric value is out of range"),
            Some("23505") => Problem::conflict("A resource with this value already exists"),
            Some("23503") => Problem::conflict("Referenced resource does not exist"),
            Some(code) if code.starts_with("23") => {
                Problem::conflict("Data integrity constraint violated")
            }
            _ => {
                tracing::error!(error = %e, "database error");
                Problem::internal()
            }
        },
        _ => {
            tracing::error!(error = %e, "database error");
            Problem::internal()
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let retry_after = match &self {
            Self::Busy(_) | Self::Unavailable(_) => Some(std::time::Duration::from_secs(1)),
            Self::TooManyRequests { retry_after, .. } => Some(*retry_after),
            _ => None,
        };
        let problem = self.problem();
        match retry_after {
            Some(after) => platform::limit::with_retry_after(problem, after),
            None => problem.into_response(),
        }
    }
}

/// Result of a handler.
pub type Result<T, E = Error> = std::result::Result<T, E>;
