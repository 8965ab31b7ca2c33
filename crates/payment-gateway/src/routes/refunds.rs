//! `/api/v1/refunds`: refunds of charges, once per `Idempotency-Key`, and their list.

use super::{answer, apply_faults, idempotency_key, LedgerQuery};
use crate::error::Error;
use crate::refunds::{self, Refund, RefundLine, RefundRequest, Refunded};
use crate::rules::{amount_error, REFUND_REASON};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use platform::http::{Json, Query};
use platform::rules;
use platform::FieldErrors;
use std::time::Duration;
use uuid::Uuid;

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
    let refunded = platform::otel::in_span(
        "gateway refund",
        platform::otel::SpanKind::Internal,
        refunds::refund(&state.db, &key, &request),
    );
    match refunded.await? {
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

/// The refunds (or those of one order), a page at a time, oldest first. Refunds of
/// nothing carry no order.
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
    let window = query.window()?;
    let mut conn = state.db.acquire().await?;
    Ok(Json(
        refunds::list(&mut conn, query.order_id, window).await?,
    ))
}
