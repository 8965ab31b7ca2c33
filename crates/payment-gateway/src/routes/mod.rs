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

/// The API routes: `/api/v1/*` only for callers holding a credential ([`authorize_caller`]),
/// `/admin/faults` only with the admin token.
pub fn router(state: AppState) -> Router {
    let api = Router::new()
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
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            authorize_caller,
        ));
    Router::new()
        .merge(api)
        .route(
            "/admin/faults",
            get(admin::get_faults).put(admin::put_faults),
        )
        .with_state(state)
}

/// The bearer token of a request, if it carries one.
pub(crate) fn bearer(headers: &HeaderMap) -> &str {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default()
}

/// Lets a charge or refund through only with a service token (the order service's,
/// current or previous during a rotation); a read of the ledger also with the admin
/// token, which operators hold. Everybody else gets 401 before anything is read.
async fn authorize_caller(
    axum::extract::State(state): axum::extract::State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Result<Response, Error> {
    let given = bearer(request.headers()).as_bytes();
    let matches = |secret: &platform::config::Secret| {
        platform::auth::constant_time_eq(given, secret.expose().as_bytes())
    };
    let service = state.credentials.service_tokens.iter().any(matches);
    let operator =
        request.method() == axum::http::Method::GET && matches(&state.credentials.admin_token);
    if service || operator {
        Ok(next.run(request).await)
    } else {
        tracing::warn!(method = %request.method(), path = request.uri().path(),
            "API request refused: missing or wrong service token");
        Err(Error::Unauthorized)
    }
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

/// Filter and page of the ledger and refund listings.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct LedgerQuery {
    /// Only the charges (or refunds) of this order.
    pub order_id: Option<Uuid>,
    /// Page number, from 0, oldest lines first; a page shorter than `size` is the last.
    #[param(minimum = 0, maximum = 2147483647)]
    pub page: Option<i64>,
    /// Lines per page, 1 to 500 (default 100).
    #[param(minimum = 1, maximum = 500)]
    pub size: Option<i64>,
}

/// Most lines one listing answers: the whole ledger is never one answer.
pub const MAX_PAGE_SIZE: i64 = 500;
const DEFAULT_PAGE_SIZE: i64 = 100;

impl LedgerQuery {
    /// The page asked for, as `(limit, offset)`; a 400 naming the field when out of range.
    pub fn window(&self) -> Result<crate::ledger::Window, Error> {
        let size = self.size.unwrap_or(DEFAULT_PAGE_SIZE);
        let page = self.page.unwrap_or(0);
        let mut fields = platform::FieldErrors::new();
        if !(1..=MAX_PAGE_SIZE).contains(&size) {
            fields.insert(
                "size".into(),
                format!("size must be between 1 and {MAX_PAGE_SIZE}"),
            );
        }
        if !(0..=i64::from(i32::MAX)).contains(&page) {
            fields.insert(
                "page".into(),
                format!("page must be between 0 and {}", i32::MAX),
            );
        }
        if !fields.is_empty() {
            return Err(Error::Validation(fields));
        }
        Ok(crate::ledger::Window {
            limit: size,
            offset: page * size,
        })
    }
}
