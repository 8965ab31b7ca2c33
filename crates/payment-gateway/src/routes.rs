//! The gateway's HTTP API: charges, the ledger, and the fault knobs.

use crate::error::Error;
use crate::faults::{FaultSwitch, Faults, FaultsUpdate};
use crate::ledger::{ChargeRequest, ChargeStatus, Ledger, LedgerEntry, LedgerError, Payment};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use platform::http::{Json, Query};
use platform::metrics::Metrics;
use platform::FieldErrors;
use prometheus::{IntCounterVec, IntGauge};
use rand::Rng;
use rust_decimal::Decimal;
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;
use utoipa::IntoParams;
use uuid::Uuid;

/// Header that makes a charge idempotent.
pub const IDEMPOTENCY_KEY: &str = "Idempotency-Key";
/// Response header set when the answer is a replay of an earlier charge.
pub const REPLAYED_HEADER: &str = "Idempotent-Replayed";
/// Failure reason of a simulated decline.
pub const DECLINE_REASON: &str = "Card declined by issuer (simulated)";

/// The gateway's own metrics.
#[derive(Clone)]
pub struct GatewayMetrics {
    /// `payments_gateway_charges_total{result="SUCCEEDED"|"DECLINED"}`: charges made.
    charges: IntCounterVec,
    /// `payments_gateway_requests_total{outcome}`: charged, replayed, injected_error, rejected.
    requests: IntCounterVec,
    /// `payments_gateway_ledger_charges`: charges in the ledger.
    ledger_size: IntGauge,
}

impl GatewayMetrics {
    pub fn new(metrics: &Metrics) -> prometheus::Result<Self> {
        let charges = metrics.counter_vec(
            "payments_gateway_charges_total",
            "Charges made by the gateway, by result.",
            &["result"],
        )?;
        for result in ["SUCCEEDED", "DECLINED"] {
            charges.with_label_values(&[result]);
        }
        Ok(Self {
            charges,
            requests: metrics.counter_vec(
                "payments_gateway_requests_total",
                "Charge requests by outcome (charged, replayed, injected_error, rejected).",
                &["outcome"],
            )?,
            ledger_size: metrics.gauge(
                "payments_gateway_ledger_charges",
                "Charges held in the in-memory ledger.",
            )?,
        })
    }
}

/// Shared state of the routes.
#[derive(Clone)]
pub struct AppState {
    pub ledger: Arc<Ledger>,
    pub faults: FaultSwitch,
    pub metrics: GatewayMetrics,
}

/// The API routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/api/v1/payments", post(create_payment).get(list_payments))
        .route("/api/v1/payments/{id}", get(get_payment))
        .route("/admin/faults", get(get_faults).put(put_faults))
        .with_state(state)
}

fn idempotency_key(headers: &HeaderMap) -> Result<String, Error> {
    let value = headers
        .get(IDEMPOTENCY_KEY)
        .ok_or(Error::MissingIdempotencyKey)?;
    let key = value
        .to_str()
        .map_err(|_| Error::InvalidIdempotencyKey)?
        .trim();
    if key.is_empty() || key.len() > 255 {
        return Err(Error::InvalidIdempotencyKey);
    }
    Ok(key.to_owned())
}

fn validate(request: &ChargeRequest) -> Result<(), Error> {
    let mut fields = FieldErrors::new();
    if request.amount <= Decimal::ZERO {
        fields.insert("amount".into(), "Amount must be greater than 0".into());
    }
    if request
        .currency
        .as_deref()
        .is_some_and(|c| c.len() != 3 || !c.bytes().all(|b| b.is_ascii_alphabetic()))
    {
        fields.insert(
            "currency".into(),
            "Currency must be a 3-letter ISO code".into(),
        );
    }
    if fields.is_empty() {
        Ok(())
    } else {
        Err(Error::Validation(fields))
    }
}

/// Charges an order once per `Idempotency-Key`.
#[utoipa::path(
    post, path = "/api/v1/payments", tag = "payments",
    params(("Idempotency-Key" = String, Header, description = "Same key, same charge: never a second one")),
    request_body = ChargeRequest,
    responses(
        (status = 201, description = "Charged now (SUCCEEDED or DECLINED)", body = Payment),
        (status = 200, description = "Replay of the charge made earlier with this key", body = Payment),
        (status = 400, description = "Missing key or invalid body", body = crate::openapi::ProblemDetails),
        (status = 422, description = "Key reused for a different request", body = crate::openapi::ProblemDetails),
        (status = 503, description = "Injected fault (errorStatus knob); nothing charged", body = crate::openapi::ProblemDetails),
    )
)]
pub async fn create_payment(
    State(state): State<AppState>,
    headers: HeaderMap,
    Json(request): Json<ChargeRequest>,
) -> Result<Response, Error> {
    let rejected = |e: Error| {
        state
            .metrics
            .requests
            .with_label_values(&["rejected"])
            .inc();
        e
    };
    let key = idempotency_key(&headers).map_err(rejected)?;
    validate(&request).map_err(rejected)?;
    let faults = state.faults.wait_unless_hanging().await;
    if let Some(status) = faults.error_status {
        state
            .metrics
            .requests
            .with_label_values(&["injected_error"])
            .inc();
        tracing::info!(idempotencyKey = %key, status, "charge refused by injected fault");
        return Err(Error::InjectedFault(status));
    }
    let decide = || async move {
        tokio::time::sleep(Duration::from_millis(faults.latency_ms)).await;
        let roll: f64 = rand::rng().random();
        if roll < faults.success_rate {
            (ChargeStatus::Succeeded, None)
        } else {
            (ChargeStatus::Declined, Some(DECLINE_REASON.to_owned()))
        }
    };
    let (payment, replayed) = state.ledger.charge(&key, &request, decide).await.map_err(
        |LedgerError::KeyReused(k)| {
            rejected(Error::KeyReused(LedgerError::KeyReused(k).to_string()))
        },
    )?;
    let metrics = &state.metrics;
    if replayed {
        metrics.requests.with_label_values(&["replayed"]).inc();
    } else {
        metrics.requests.with_label_values(&["charged"]).inc();
        let result = match payment.status {
            ChargeStatus::Succeeded => "SUCCEEDED",
            ChargeStatus::Declined => "DECLINED",
        };
        metrics.charges.with_label_values(&[result]).inc();
        metrics.ledger_size.inc();
        tracing::info!(
            idempotencyKey = %key, paymentId = %payment.id, orderId = %payment.order_id,
            status = result, amount = %payment.amount, "charge made"
        );
    }
    let status = if replayed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    let mut response = (status, Json(payment)).into_response();
    if replayed {
        response
            .headers_mut()
            .insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
    }
    Ok(response)
}

/// One ledger line by charge id.
#[utoipa::path(
    get, path = "/api/v1/payments/{id}", tag = "payments",
    params(("id" = Uuid, Path, description = "Charge id")),
    responses(
        (status = 200, body = LedgerEntry),
        (status = 404, body = crate::openapi::ProblemDetails),
    )
)]
pub async fn get_payment(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<LedgerEntry>, Error> {
    Uuid::parse_str(&id)
        .ok()
        .and_then(|uuid| state.ledger.get(uuid))
        .map(Json)
        .ok_or(Error::NotFound(id))
}

/// Filter of the ledger listing.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct LedgerQuery {
    /// Only the charges of this order.
    pub order_id: Option<Uuid>,
}

/// The ledger: every charge (or those of one order), with charge and request counts per key.
#[utoipa::path(
    get, path = "/api/v1/payments", tag = "payments",
    params(LedgerQuery),
    responses(
        (status = 200, body = Vec<LedgerEntry>),
        (status = 400, body = crate::openapi::ProblemDetails),
    )
)]
pub async fn list_payments(
    State(state): State<AppState>,
    Query(query): Query<LedgerQuery>,
) -> Json<Vec<LedgerEntry>> {
    Json(state.ledger.list(query.order_id))
}

/// The fault knobs now.
#[utoipa::path(get, path = "/admin/faults", tag = "admin", responses((status = 200, body = Faults)))]
pub async fn get_faults(State(state): State<AppState>) -> Json<Faults> {
    Json(state.faults.current())
}

/// Changes the fault knobs; absent fields keep their value.
#[utoipa::path(
    put, path = "/admin/faults", tag = "admin",
    request_body = FaultsUpdate,
    responses(
        (status = 200, description = "The knobs after the change", body = Faults),
        (status = 400, body = crate::openapi::ProblemDetails),
    )
)]
pub async fn put_faults(
    State(state): State<AppState>,
    Json(update): Json<FaultsUpdate>,
) -> Result<Json<Faults>, Error> {
    let next = update
        .apply(&state.faults.current())
        .map_err(|(field, message)| Error::Validation(FieldErrors::from([(field, message)])))?;
    state.faults.set(next);
    tracing::warn!(faults = ?next, "fault knobs changed");
    Ok(Json(next))
}
