//! The gateway's HTTP API: charges, refunds, the ledger, and the fault knobs.

use crate::error::Error;
use crate::faults::{FaultSwitch, Faults, FaultsUpdate};
use crate::ledger::{self, ChargeRequest, ChargeStatus, Charged, Decision, LedgerEntry, Payment};
use crate::refunds::{self, Refund, RefundLine, RefundRequest, Refunded};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use platform::db::Db;
use platform::http::{Json, Query};
use platform::metrics::Metrics;
use platform::rules::{self, Pattern, Text};
use platform::FieldErrors;
use prometheus::{IntCounterVec, IntGauge};
use rand::Rng;
use rust_decimal::Decimal;
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;
use utoipa::IntoParams;
use uuid::Uuid;

/// Header that makes a charge or a refund idempotent.
pub const IDEMPOTENCY_KEY: &str = "Idempotency-Key";
/// Response header set when the answer is a replay of an earlier charge or refund.
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
    /// `payments_gateway_ledger_charges`: rows in `gateway_charges`.
    ledger_size: IntGauge,
    /// `payments_gateway_refunds_total{status="REFUNDED"|"NOTHING_CHARGED"}`: refunds made.
    refunds: IntCounterVec,
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
        let refunds = metrics.counter_vec(
            "payments_gateway_refunds_total",
            "Refunds made by the gateway, by status.",
            &["status"],
        )?;
        for status in ["REFUNDED", "NOTHING_CHARGED"] {
            refunds.with_label_values(&[status]);
        }
        Ok(Self {
            charges,
            refunds,
            requests: metrics.counter_vec(
                "payments_gateway_requests_total",
                "Charge requests by outcome (charged, replayed, injected_error, rejected).",
                &["outcome"],
            )?,
            ledger_size: metrics.gauge(
                "payments_gateway_ledger_charges",
                "Charges in the gateway's ledger (payment_gateway_db), voided keys included.",
            )?,
        })
    }

    /// Sets the ledger gauge to the stored count (at start-up).
    pub fn set_ledger_size(&self, charges: i64) {
        self.ledger_size.set(charges);
    }
}

/// Shared state of the routes.
#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub faults: FaultSwitch,
    pub metrics: GatewayMetrics,
    /// What `/admin/faults` requires as a bearer token; open when `None` (local only).
    pub admin_token: Option<Arc<platform::config::Secret>>,
}

/// Lets an admin request through when it carries the admin token.
fn authorize_admin(state: &AppState, headers: &HeaderMap) -> Result<(), Error> {
    let Some(expected) = &state.admin_token else {
        return Ok(());
    };
    let given = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if platform::auth::constant_time_eq(given.as_bytes(), expected.expose().as_bytes()) {
        Ok(())
    } else {
        tracing::warn!("admin request refused: missing or wrong admin token");
        Err(Error::Unauthorized)
    }
}

/// The API routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/api/v1/payments", post(create_payment).get(list_payments))
        .route("/api/v1/payments/{id}", get(get_payment))
        .route("/api/v1/refunds", post(create_refund).get(list_refunds))
        .route("/api/v1/refunds/{id}", get(get_refund))
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
    rules::IDEMPOTENCY_KEY
        .check(key)
        .map_err(|_| Error::InvalidIdempotencyKey)?;
    Ok(key.to_owned())
}

/// Largest amount a ledger column (`NUMERIC(12, 2)`) holds.
fn max_amount() -> Decimal {
    Decimal::new(999_999_999_999, 2)
}

/// Order numbers a charge may carry.
const ORDER_NUMBER: Text = Text::up_to(100);
/// Why a refund was asked for.
const REFUND_REASON: Text = Text::up_to(500);
/// Currency codes: three ASCII letters.
const CURRENCY: Text = Text::non_blank(3, 3).with_pattern(Pattern {
    regex: "^[A-Za-z]{3}$",
    matches: |c| c.bytes().all(|b| b.is_ascii_alphabetic()),
    message: "Currency must be a 3-letter ISO code",
});

/// Schemas of the request fields, from the rules the handlers check.
pub(crate) mod schema {
    use super::*;
    use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
    use utoipa::openapi::Object;

    fn amount_schema(kind: SchemaType) -> Object {
        use rust_decimal::prelude::ToPrimitive;
        ObjectBuilder::new()
            .schema_type(kind)
            .exclusive_minimum(Some(0))
            .maximum(max_amount().to_f64())
            .multiple_of(Some(0.01))
            .description(Some("At most two decimals"))
            .examples([299.98])
            .build()
    }
    pub fn amount() -> Object {
        amount_schema(SchemaType::new(Type::Number))
    }
    pub fn amount_or_null() -> Object {
        amount_schema(SchemaType::from_iter([Type::Number, Type::Null]))
    }
    pub fn order_number() -> Object {
        ORDER_NUMBER.nullable_schema()
    }
    pub fn currency() -> Object {
        CURRENCY.nullable_schema()
    }
    pub fn customer_email() -> Object {
        Text::any().nullable_schema()
    }
    pub fn payment_key() -> Object {
        rules::IDEMPOTENCY_KEY.schema()
    }
    pub fn reason() -> Object {
        REFUND_REASON.nullable_schema()
    }
}

/// Why `amount` cannot be charged or refunded, if it cannot.
fn amount_error(amount: Decimal) -> Option<String> {
    if amount <= Decimal::ZERO {
        Some("Amount must be greater than 0".into())
    } else if amount.normalize().scale() > 2 {
        Some("Amount must have at most 2 decimal places".into())
    } else if amount > max_amount() {
        Some(format!("Amount must be at most {}", max_amount()))
    } else {
        None
    }
}

fn validate(request: &ChargeRequest) -> Result<(), Error> {
    let mut fields = FieldErrors::new();
    if let Some(message) = amount_error(request.amount) {
        fields.insert("amount".into(), message);
    }
    if request
        .currency
        .as_deref()
        .is_some_and(|c| CURRENCY.check(c).is_err())
    {
        fields.insert(
            "currency".into(),
            "Currency must be a 3-letter ISO code".into(),
        );
    }
    if request
        .order_number
        .as_deref()
        .is_some_and(|n| ORDER_NUMBER.check(n).is_err())
    {
        fields.insert(
            "orderNumber".into(),
            "Order number must be at most 100 characters".into(),
        );
    }
    if fields.is_empty() {
        Ok(())
    } else {
        Err(Error::Validation(fields))
    }
}

fn validate_refund(request: &RefundRequest) -> Result<(), Error> {
    let mut fields = FieldErrors::new();
    if rules::IDEMPOTENCY_KEY.check(&request.payment_key).is_err() {
        fields.insert(
            "paymentKey".into(),
            "Payment key must be the charge's Idempotency-Key (1 to 255 visible characters)".into(),
        );
    }
    if let Some(message) = request.amount.and_then(amount_error) {
        fields.insert("amount".into(), message);
    }
    if request
        .reason
        .as_deref()
        .is_some_and(|r| REFUND_REASON.check(r).is_err())
    {
        fields.insert(
            "reason".into(),
            "Reason must be at most 500 characters".into(),
        );
    }
    if fields.is_empty() {
        Ok(())
    } else {
        Err(Error::Validation(fields))
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

/// Charges an order once per `Idempotency-Key`.
#[utoipa::path(
    post, path = "/api/v1/payments", tag = "payments", operation_id = "createPayment",
    params(("Idempotency-Key" = String, Header, description = "Same key, same charge: never a second one")),
    request_body = ChargeRequest,
    responses(
        (status = 201, description = "Charged now (SUCCEEDED or DECLINED)", body = Payment),
        (status = 200, description = "Replay of the charge made earlier with this key (header Idempotent-Replayed: true)", body = Payment),
        (status = 400, description = "Missing key or invalid body", body = platform::Problem, content_type = "application/problem+json"),
        (status = 415, description = "Body is not application/json", body = platform::Problem, content_type = "application/problem+json"),
        (status = 409, description = "Key reused for a different request", body = platform::Problem, content_type = "application/problem+json"),
        (status = 503, description = "Injected fault (errorStatus knob) or ledger unavailable; nothing charged", body = platform::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn create_payment(
    State(state): State<AppState>,
    headers: HeaderMap,
    Json(request): Json<ChargeRequest>,
) -> Result<Response, Error> {
    let outcome = |label: &str| state.metrics.requests.with_label_values(&[label]).inc();
    let key = match idempotency_key(&headers).and_then(|key| validate(&request).map(|()| key)) {
        Ok(key) => key,
        Err(e) => {
            outcome("rejected");
            return Err(e);
        }
    };
    let faults = match apply_faults(&state, "charge", &key).await {
        Ok(faults) => faults,
        Err(e) => {
            outcome("injected_error");
            return Err(e);
        }
    };
    let decide = || async move {
        tokio::time::sleep(Duration::from_millis(faults.latency_ms)).await;
        let roll: f64 = rand::rng().random();
        if roll < faults.success_rate {
            Decision {
                status: ChargeStatus::Succeeded,
                failure_reason: None,
            }
        } else {
            Decision {
                status: ChargeStatus::Declined,
                failure_reason: Some(DECLINE_REASON.to_owned()),
            }
        }
    };
    let charged = match ledger::charge(&state.db, &key, &request, decide).await {
        Ok(charged) => charged,
        Err(e @ ledger::LedgerError::KeyReused(_)) => {
            outcome("rejected");
            return Err(e.into());
        }
        Err(e) => return Err(e.into()),
    };
    let metrics = &state.metrics;
    match charged {
        Charged::Replayed(payment) => {
            outcome("replayed");
            Ok(answer(payment, true))
        }
        Charged::New(payment) => {
            outcome("charged");
            let result = payment.status.as_str();
            metrics.charges.with_label_values(&[result]).inc();
            metrics.ledger_size.inc();
            tracing::info!(
                idempotencyKey = %key, paymentId = %payment.id, orderId = %payment.order_id,
                status = result, amount = %payment.amount, "charge made"
            );
            Ok(answer(payment, false))
        }
    }
}

/// One ledger line by charge id.
#[utoipa::path(
    get, path = "/api/v1/payments/{id}", tag = "payments", operation_id = "getPayment",
    params(("id" = Uuid, Path, description = "Charge id")),
    responses(
        (status = 200, body = LedgerEntry),
        (status = 404, body = platform::Problem, content_type = "application/problem+json"),
        (status = 503, description = "Ledger unavailable", body = platform::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get_payment(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<LedgerEntry>, Error> {
    let Ok(uuid) = Uuid::parse_str(&id) else {
        return Err(Error::PaymentNotFound(id));
    };
    let mut conn = state.db.acquire().await?;
    ledger::get(&mut conn, uuid)
        .await?
        .map(Json)
        .ok_or(Error::PaymentNotFound(id))
}

/// Filter of the ledger and refund listings.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct LedgerQuery {
    /// Only the charges (or refunds) of this order.
    pub order_id: Option<Uuid>,
}

/// The ledger: every charge (or those of one order), with request counts and refunds.
#[utoipa::path(
    get, path = "/api/v1/payments", tag = "payments", operation_id = "listPayments",
    params(LedgerQuery),
    responses(
        (status = 200, body = Vec<LedgerEntry>),
        (status = 400, body = platform::Problem, content_type = "application/problem+json"),
        (status = 503, description = "Ledger unavailable", body = platform::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list_payments(
    State(state): State<AppState>,
    Query(query): Query<LedgerQuery>,
) -> Result<Json<Vec<LedgerEntry>>, Error> {
    let mut conn = state.db.acquire().await?;
    Ok(Json(ledger::list(&mut conn, query.order_id).await?))
}

/// Refunds a charge, named by its `Idempotency-Key`, once per refund `Idempotency-Key`.
/// A key with no charge is voided: a later charge request with it is declined.
#[utoipa::path(
    post, path = "/api/v1/refunds", tag = "refunds", operation_id = "createRefund",
    params(("Idempotency-Key" = String, Header, description = "Same key, same refund: never a second one")),
    request_body = RefundRequest,
    responses(
        (status = 201, description = "Refunded now (REFUNDED, or NOTHING_CHARGED for a declined or never-charged key, which is now voided)", body = Refund),
        (status = 200, description = "Replay of the refund made earlier with this key (header Idempotent-Replayed: true)", body = Refund),
        (status = 400, description = "Missing key or invalid body", body = platform::Problem, content_type = "application/problem+json"),
        (status = 415, description = "Body is not application/json", body = platform::Problem, content_type = "application/problem+json"),
        (status = 409, description = "More than what is left to refund, or the key was used for a different refund", body = platform::Problem, content_type = "application/problem+json"),
        (status = 503, description = "Injected fault (errorStatus knob) or ledger unavailable; nothing refunded", body = platform::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn create_refund(
    State(state): State<AppState>,
    headers: HeaderMap,
    Json(request): Json<RefundRequest>,
) -> Result<Response, Error> {
    let key = idempotency_key(&headers)?;
    validate_refund(&request)?;
    let faults = apply_faults(&state, "refund", &key).await?;
    // successRate does not apply: a refund is never declined.
    tokio::time::sleep(Duration::from_millis(faults.latency_ms)).await;
    match refunds::refund(&state.db, &key, &request).await? {
        Refunded::Replayed(refund) => Ok(answer(refund, true)),
        Refunded::New { refund, voided } => {
            let status = refund.status.as_str();
            state.metrics.refunds.with_label_values(&[status]).inc();
            if voided {
                state.metrics.ledger_size.inc();
            }
            tracing::info!(
                idempotencyKey = %key, refundId = %refund.id, paymentKey = %refund.payment_key,
                paymentId = ?refund.payment_id, status, amount = %refund.amount, voided,
                "refund made"
            );
            Ok(answer(refund, false))
        }
    }
}

/// One refund by id.
#[utoipa::path(
    get, path = "/api/v1/refunds/{id}", tag = "refunds", operation_id = "getRefund",
    params(("id" = Uuid, Path, description = "Refund id")),
    responses(
        (status = 200, body = RefundLine),
        (status = 404, body = platform::Problem, content_type = "application/problem+json"),
        (status = 503, description = "Ledger unavailable", body = platform::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get_refund(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<RefundLine>, Error> {
    let Ok(uuid) = Uuid::parse_str(&id) else {
        return Err(Error::RefundNotFound(id));
    };
    let mut conn = state.db.acquire().await?;
    refunds::get(&mut conn, uuid)
        .await?
        .map(Json)
        .ok_or(Error::RefundNotFound(id))
}

/// Every refund (or those of one order), oldest first. Refunds of nothing carry no order.
#[utoipa::path(
    get, path = "/api/v1/refunds", tag = "refunds", operation_id = "listRefunds",
    params(LedgerQuery),
    responses(
        (status = 200, body = Vec<RefundLine>),
        (status = 400, body = platform::Problem, content_type = "application/problem+json"),
        (status = 503, description = "Ledger unavailable", body = platform::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list_refunds(
    State(state): State<AppState>,
    Query(query): Query<LedgerQuery>,
) -> Result<Json<Vec<RefundLine>>, Error> {
    let mut conn = state.db.acquire().await?;
    Ok(Json(refunds::list(&mut conn, query.order_id).await?))
}

/// The fault knobs now.
#[utoipa::path(get, path = "/admin/faults", tag = "admin", operation_id = "getFaults",
    responses((status = 200, body = Faults),
        (status = 401, description = "The gateway has an admin token and the request does not carry it", body = platform::Problem, content_type = "application/problem+json")))]
pub async fn get_faults(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Faults>, Error> {
    authorize_admin(&state, &headers)?;
    Ok(Json(state.faults.current()))
}

/// Changes the fault knobs; absent fields keep their value.
#[utoipa::path(
    put, path = "/admin/faults", tag = "admin", operation_id = "putFaults",
    request_body = FaultsUpdate,
    responses(
        (status = 200, description = "The knobs after the change", body = Faults),
        (status = 400, body = platform::Problem, content_type = "application/problem+json"),
        (status = 401, description = "The gateway has an admin token and the request does not carry it", body = platform::Problem, content_type = "application/problem+json"),
        (status = 415, description = "Body is not application/json", body = platform::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn put_faults(
    State(state): State<AppState>,
    headers: HeaderMap,
    Json(update): Json<FaultsUpdate>,
) -> Result<Json<Faults>, Error> {
    authorize_admin(&state, &headers)?;
    let next = update
        .apply(&state.faults.current())
        .map_err(|(field, message)| Error::Validation(FieldErrors::from([(field, message)])))?;
    state.faults.set(next);
    tracing::warn!(faults = ?next, "fault knobs changed");
    Ok(Json(next))
}
