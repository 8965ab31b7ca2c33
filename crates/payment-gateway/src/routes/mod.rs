//! The gateway's HTTP API: charges ([`payments`]), refunds ([`refunds`]), and the fault
//! knobs ([`admin`]); and what their handlers share: the idempotency key, injected
//! faults, and the `201`/replay answer.

pub mod admin;
pub mod payments;
pub mod refunds;

use crate::error::Error;
use crate::faults::Faults;
use crate::state::AppState;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use platform::http::Json;
use platform::idempotency::{IdempotencyKey, KeyError};
use serde::Deserialize;
use utoipa::IntoParams;
use uuid::Uuid;

/// Header that makes a charge or a refund idempotent.
pub const IDEMPOTENCY_KEY: &str = platform::idempotency::HEADER;
/// Response header set when the answer is a replay of an earlier charge or refund.
pub const REPLAYED_HEADER: &str = "Idempotent-Replayed";
pub use payments::DECLINE_REASON;

/// The API routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route(
            "/api/v1/payments",
            post(payments::create_payment).get(payments::list_payments),
        )
        .route("/api/v1/payments/{id}", get(payments::get_payment))
        .route(
            "/api/v1/refunds",
            post(refunds::create_refund).get(refunds::list_refunds),
        )
        .route("/api/v1/refunds/{id}", get(refunds::get_refund))
        .route(
            "/admin/faults",
            get(admin::get_faults).put(admin::put_faults),
        )
        .with_state(state)
}

fn idempotency_key(headers: &HeaderMap) -> Result<String, Error> {
    match IdempotencyKey::from_headers(headers) {
        Ok(key) => Ok(key.as_str().to_owned()),
        Err(KeyError::Missing) => Err(Error::MissingIdempotencyKey),
        Err(_) => Err(Error::InvalidIdempotencyKey),
    }
}

/// Waits out `hang`, then answers the `errorStatus` knob if it is set; returns the knobs.
async fn apply_faults(state: &AppState, what: &str, key: &str) -> Result<Faults, Error> {
    let faults = state.faults.wait_unless_hanging().await;
    if let Some(status) = faults.error_status {
        tracing::info!(idempotencyKey = %key, status, "{what} refused by injected fault");
        return Err(Error::InjectedFault(status));
    }
    Ok(faults)
}

/// `201` for something made now, `200` and `Idempotent-Replayed: true` for a replay.
fn answer<T: serde::Serialize>(body: T, replayed: bool) -> Response {
    let status = if replayed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    let mut response = (status, Json(body)).into_response();
    if replayed {
        response
            .headers_mut()
            .insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
    }
    response
}

/// Filter of the ledger and refund listings.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct LedgerQuery {
    /// Only the charges (or refunds) of this order.
    pub order_id: Option<Uuid>,
}
