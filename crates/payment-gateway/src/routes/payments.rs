//! `/api/v1/payments`: charges, once per `Idempotency-Key`, and the ledger.

use super::{answer, apply_faults, idempotency_key, LedgerQuery};
use crate::error::Error;
use crate::ledger::{self, ChargeRequest, ChargeStatus, Charged, Decision, LedgerEntry, Payment};
use crate::rules::{amount_error, CURRENCY, ORDER_NUMBER};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use platform::http::{Json, Query};
use platform::FieldErrors;
use rand::Rng;
use std::time::Duration;
use uuid::Uuid;

/// Failure reason of a simulated decline.
pub const DECLINE_REASON: &str = "Card declined by issuer (simulated)";

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
    // The charge's span fails on a decline too: the answer is a 201, the payment is not made.
    let charged = platform::otel::in_span_judged(
        "gateway charge",
        platform::otel::SpanKind::Internal,
        ledger::charge(&state.db, &key, &request, decide),
        |charged, span| match charged {
            Ok(Charged::New(payment)) | Ok(Charged::Replayed(payment)) => {
                span.attribute("payment.status", payment.status.as_str().to_owned());
                if payment.status == ChargeStatus::Declined {
                    span.error("payment declined");
                }
            }
            Err(e) => span.error(e.to_string()),
        },
    );
    let charged = match charged.await {
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

/// The ledger, a page at a time: the charges (or those of one order), oldest first, with
/// request counts and refunds.
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
    let window = query.window()?;
    let mut conn = state.db.acquire().await?;
    Ok(Json(ledger::list(&mut conn, query.order_id, window).await?))
}
